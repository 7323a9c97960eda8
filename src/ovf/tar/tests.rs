//! Tar walker tests: hand-built headers for every hostile case, GNU tar for the good ones.

use super::header::parse_number;
use super::*;
use std::io::Cursor;
use std::path::PathBuf;
use std::process::Command;

#[path = "tests_trailing.rs"]
mod trailing;

/// A ustar (or GNU) header under construction; `bytes` fills in a valid checksum.
struct Hdr {
    name: Vec<u8>,
    typeflag: u8,
    size: u64,
    mode: u64,
    linkname: Vec<u8>,
    prefix: Vec<u8>,
    gnu: bool,
}

fn hdr(name: &str, typeflag: u8, size: u64) -> Hdr {
    Hdr {
        name: name.as_bytes().to_vec(),
        typeflag,
        size,
        mode: 0o644,
        linkname: Vec::new(),
        prefix: Vec::new(),
        gnu: false,
    }
}

fn octal(dst: &mut [u8], v: u64) {
    let s = format!("{:0width$o}\0", v, width = dst.len() - 1);
    dst.copy_from_slice(s.as_bytes());
}

fn seal(block: &mut Block) {
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

impl Hdr {
    fn bytes(&self) -> Block {
        let mut b = [0u8; 512];
        b[..self.name.len()].copy_from_slice(&self.name);
        octal(&mut b[100..108], self.mode);
        octal(&mut b[108..116], 1000);
        octal(&mut b[116..124], 1000);
        octal(&mut b[124..136], self.size);
        octal(&mut b[136..148], 1_700_000_000);
        b[156] = self.typeflag;
        b[157..157 + self.linkname.len()].copy_from_slice(&self.linkname);
        if self.gnu {
            b[257..265].copy_from_slice(b"ustar  \0");
        } else {
            b[257..265].copy_from_slice(b"ustar\x0000");
            b[345..345 + self.prefix.len()].copy_from_slice(&self.prefix);
        }
        seal(&mut b);
        b
    }
}

/// An archive under construction.
#[derive(Default)]
struct Ar(Vec<u8>);

impl Ar {
    fn raw(mut self, header: Block, data: &[u8]) -> Self {
        self.0.extend_from_slice(&header);
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.resize(self.0.len() + pad, 0);
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.raw(hdr(name, b'0', data.len() as u64).bytes(), data)
    }

    fn typed(self, name: &str, typeflag: u8, link: &str) -> Self {
        let mut h = hdr(name, typeflag, 0);
        h.linkname = link.as_bytes().to_vec();
        self.raw(h.bytes(), b"")
    }

    fn pax_raw(self, typeflag: u8, data: &[u8]) -> Self {
        self.raw(
            hdr("PaxHeaders/x", typeflag, data.len() as u64).bytes(),
            data,
        )
    }

    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        self.pax_raw(b'x', &data)
    }

    fn long_name(self, name: &[u8]) -> Self {
        let mut data = name.to_vec();
        data.push(0);
        let mut h = hdr("././@LongLink", b'L', data.len() as u64);
        h.gnu = true;
        self.raw(h.bytes(), &data)
    }

    fn end(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0u8; 1024]);
        self.0
    }
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    assert_eq!(rec.len(), len);
    rec
}

fn run(bytes: &[u8]) -> Result<TarIndex, TarError> {
    index(&mut Cursor::new(bytes), bytes.len() as u64)
}

fn member_bytes(archive: &[u8], m: &Member) -> Vec<u8> {
    let mut out = Vec::new();
    member_reader(Cursor::new(archive), m)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn assert_not_regular(err: TarError, want_name: &str, want_kind: &str) {
    match err {
        TarError::NotRegular { name, kind } => {
            assert_eq!((name.as_str(), kind), (want_name, want_kind));
        }
        other => panic!("expected NotRegular, got {other:?}"),
    }
}

#[test]
fn index_plain_files_records_offsets_and_contents() {
    let ar = Ar::default()
        .file("vm.ovf", b"<Envelope/>")
        .file("disk1.vmdk", &[7u8; 1000])
        .end();
    let idx = run(&ar).unwrap();
    let names: Vec<&str> = idx.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["vm.ovf", "disk1.vmdk"]);
    assert_eq!(
        idx.get("disk1.vmdk").map(|m| (m.offset, m.size)),
        Some((1536, 1000))
    );
    assert_eq!(
        member_bytes(&ar, idx.get("vm.ovf").unwrap()),
        b"<Envelope/>"
    );
    assert_eq!(
        member_bytes(&ar, idx.get("disk1.vmdk").unwrap()),
        vec![7u8; 1000]
    );
    assert!(idx.get("missing").is_none());
}

#[test]
fn index_rustsec_2021_0080_symlink_then_path_through_it_is_rejected() {
    let ar = Ar::default()
        .typed("x", b'2', "..")
        .file("x/exploit/foo", b"pwned")
        .end();
    assert_not_regular(run(&ar).unwrap_err(), "x", "symbolic link");
}

#[test]
fn index_path_through_a_directory_is_rejected_even_alone() {
    let ar = Ar::default().file("x/exploit/foo", b"pwned").end();
    assert!(matches!(run(&ar), Err(TarError::Name { name, .. }) if name == "x/exploit/foo"));
}

#[test]
fn index_symlink_then_directory_of_same_name_is_rejected() {
    let ar = Ar::default()
        .typed("x", b'2', "/etc")
        .typed("x", b'5', "")
        .end();
    assert_not_regular(run(&ar).unwrap_err(), "x", "symbolic link");
}

#[test]
fn index_directory_is_rejected() {
    let ar = Ar::default().typed("dir", b'5', "").end();
    assert_not_regular(run(&ar).unwrap_err(), "dir", "directory");
}

#[test]
fn index_hardlink_to_etc_shadow_is_rejected() {
    let ar = Ar::default()
        .file("vm.ovf", b"x")
        .typed("shadow", b'1', "/etc/shadow")
        .end();
    assert_not_regular(run(&ar).unwrap_err(), "shadow", "hard link");
}

#[test]
fn index_devices_and_fifo_are_rejected() {
    for (flag, kind) in [
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "FIFO"),
    ] {
        let ar = Ar::default().typed("dev", flag, "").end();
        assert_not_regular(run(&ar).unwrap_err(), "dev", kind);
    }
}

#[test]
fn index_gnu_sparse_and_unknown_types_are_rejected() {
    for (flag, kind) in [(b'S', "GNU sparse file"), (b'Z', "member of unknown type")] {
        let ar = Ar::default().typed("disk", flag, "").end();
        assert_not_regular(run(&ar).unwrap_err(), "disk", kind);
    }
}

#[test]
fn index_setuid_setgid_and_sticky_bits_are_rejected() {
    for mode in [0o4755, 0o2755, 0o1644] {
        let mut h = hdr("vm.ovf", b'0', 1);
        h.mode = mode;
        let ar = Ar::default().raw(h.bytes(), b"x").end();
        assert!(matches!(run(&ar), Err(TarError::Mode { mode: m, .. }) if m == mode));
    }
}

#[test]
fn index_traversal_and_odd_names_are_rejected() {
    let names = [
        "/etc/cron.d/x",
        "../x",
        "a/../../x",
        "./x",
        "./../x",
        "a//b",
        "..\\x",
        ".",
        "..",
        "a b",
        "",
        "x\n",
    ];
    for name in names {
        let ar = Ar::default().file(name, b"x").end();
        assert!(
            matches!(run(&ar), Err(TarError::Name { .. })),
            "{name:?} was accepted"
        );
    }
}

#[test]
fn index_name_with_bytes_after_nul_is_rejected() {
    let ar = Ar::default().file("a\0b", b"x").end();
    assert!(matches!(run(&ar), Err(TarError::Name { name, .. }) if name == "a\0b"));
}

#[test]
fn index_pax_path_with_nul_or_slash_is_rejected() {
    for path in [&b"a\0b"[..], b"../../etc/shadow", b"/etc/shadow"] {
        let ar = Ar::default().pax(&[("path", path)]).file("ok", b"x").end();
        assert!(
            matches!(run(&ar), Err(TarError::Name { .. })),
            "{path:?} was accepted"
        );
    }
}

#[test]
fn index_ustar_prefix_makes_a_rejected_path() {
    let mut h = hdr("x", b'0', 1);
    h.prefix = b"etc".to_vec();
    let ar = Ar::default().raw(h.bytes(), b"x").end();
    assert!(matches!(run(&ar), Err(TarError::Name { name, .. }) if name == "etc/x"));
}

#[test]
fn index_long_names_up_to_255_bytes_are_accepted_beyond_rejected() {
    let ok = "n".repeat(250) + ".vmdk";
    let too_long = "n".repeat(251) + ".vmdk";
    let pax_ok = Ar::default()
        .pax(&[("path", ok.as_bytes())])
        .file("short", b"x")
        .end();
    assert_eq!(run(&pax_ok).unwrap().members[0].name, ok);
    let gnu_ok = Ar::default()
        .long_name(ok.as_bytes())
        .file("short", b"x")
        .end();
    assert_eq!(run(&gnu_ok).unwrap().members[0].name, ok);
    let pax_long = Ar::default()
        .pax(&[("path", too_long.as_bytes())])
        .file("s", b"x")
        .end();
    assert!(matches!(run(&pax_long), Err(TarError::Name { .. })));
    let gnu_long = Ar::default()
        .long_name(too_long.as_bytes())
        .file("s", b"x")
        .end();
    assert!(matches!(run(&gnu_long), Err(TarError::Name { .. })));
}

#[test]
fn index_pax_size_larger_than_ustar_size_is_rejected() {
    let ar = Ar::default()
        .pax(&[("size", b"1024")])
        .file("disk", &[1u8; 512])
        .end();
    let err = run(&ar).unwrap_err();
    assert!(
        matches!(
            err,
            TarError::SizeMismatch {
                pax: 1024,
                ustar: 512,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn index_pax_size_smaller_than_ustar_size_is_rejected() {
    let ar = Ar::default()
        .pax(&[("size", b"10")])
        .file("disk", &[1u8; 512])
        .end();
    let err = run(&ar).unwrap_err();
    assert!(
        matches!(
            err,
            TarError::SizeMismatch {
                pax: 10,
                ustar: 512,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn index_pax_size_with_zero_ustar_size_reads_data_not_smuggled_headers() {
    // TARmageddon: a reader that trusts the ustar 0 would parse the data as a header.
    let smuggled = Ar::default().file("evil.ovf", b"smuggled").0;
    let size = smuggled.len().to_string();
    let ar = Ar::default()
        .pax(&[("size", size.as_bytes())])
        .raw(hdr("disk", b'0', 0).bytes(), &smuggled)
        .end();
    let idx = run(&ar).unwrap();
    assert_eq!(idx.members.len(), 1);
    assert_eq!(member_bytes(&ar, &idx.members[0]), smuggled);
}

#[test]
fn index_pax_followed_by_gnu_long_name_or_link_is_rejected() {
    let l = Ar::default()
        .pax(&[("path", b"a")])
        .long_name(b"b")
        .file("c", b"x")
        .end();
    assert!(matches!(run(&l), Err(TarError::Extended { offset: 0, .. })));
    let k = Ar::default()
        .pax(&[("path", b"a")])
        .typed("c", b'K', "")
        .end();
    assert!(matches!(run(&k), Err(TarError::Extended { offset: 0, .. })));
    let lx = Ar::default()
        .long_name(b"b")
        .pax(&[("path", b"a")])
        .file("c", b"x")
        .end();
    assert!(matches!(
        run(&lx),
        Err(TarError::Extended { offset: 1024, .. })
    ));
}

#[test]
fn index_extension_header_without_member_is_rejected() {
    let ar = Ar::default().file("a", b"x").pax(&[("path", b"b")]).end();
    assert!(matches!(
        run(&ar),
        Err(TarError::Extended { offset: 1024, .. })
    ));
}

#[test]
fn index_pax_sparse_duplicate_and_malformed_records_are_rejected() {
    let sparse = Ar::default()
        .pax(&[("GNU.sparse.major", b"1")])
        .file("d", b"x")
        .end();
    let twice = Ar::default()
        .pax(&[("path", b"a"), ("path", b"b")])
        .file("d", b"x")
        .end();
    let no_newline = Ar::default()
        .pax_raw(b'x', b"9 path=ab")
        .file("d", b"x")
        .end();
    let bad_len = Ar::default()
        .pax_raw(b'x', b"99 path=a\n")
        .file("d", b"x")
        .end();
    let bad_size = Ar::default().pax(&[("size", b"-1")]).file("d", b"x").end();
    for ar in [sparse, twice, no_newline, bad_len, bad_size] {
        assert!(matches!(run(&ar), Err(TarError::Extended { .. })));
    }
}

#[test]
fn index_pax_header_over_cap_is_rejected() {
    let big = vec![b'a'; MAX_PAX_SIZE as usize];
    let ar = Ar::default()
        .pax(&[("comment", &big)])
        .file("d", b"x")
        .end();
    let err = run(&ar).unwrap_err();
    assert!(err.to_string().contains("exceed the cap of 65536"), "{err}");
}

#[test]
fn index_global_header_is_ignored_unless_it_changes_members() {
    let comment = Ar::default()
        .pax_raw(b'g', &pax_record("comment", b"hi"))
        .file("a", b"x");
    assert_eq!(run(&comment.end()).unwrap().members.len(), 1);
    let path = Ar::default()
        .pax_raw(b'g', &pax_record("path", b"a"))
        .file("a", b"x")
        .end();
    assert!(matches!(run(&path), Err(TarError::Extended { .. })));
}

#[test]
fn index_duplicate_names_are_rejected() {
    let ar = Ar::default()
        .file("disk1.vmdk", b"good")
        .file("disk1.vmdk", b"evil")
        .end();
    assert!(matches!(run(&ar), Err(TarError::Duplicate { name }) if name == "disk1.vmdk"));
}

#[test]
fn index_zero_padding_after_end_marker_is_accepted() {
    let mut ar = Ar::default().file("a", b"x").end();
    ar.resize(10240, 0);
    assert_eq!(run(&ar).unwrap().members.len(), 1);
}

#[test]
fn index_trailing_garbage_after_end_marker_is_rejected() {
    let mut ar = Ar::default().file("a", b"x").end();
    ar.resize(10240, 0);
    ar[5000] = 1;
    assert!(matches!(
        run(&ar),
        Err(TarError::TrailingGarbage { offset: 5000 })
    ));
}

#[test]
fn index_header_after_a_lone_zero_block_is_rejected() {
    let mut ar = Ar::default().file("a", b"x").0;
    ar.extend_from_slice(&[0u8; 512]);
    let ar = Ar(ar).file("b", b"hidden").end();
    assert!(matches!(
        run(&ar),
        Err(TarError::TrailingGarbage { offset: 1536 })
    ));
}

#[test]
fn index_truncated_final_member_is_rejected() {
    let mut ar = Ar::default().file("a", b"x").file("disk", &[1u8; 2000]).0;
    ar.truncate(1024 + 512 + 1000);
    let err = run(&ar).unwrap_err();
    assert!(matches!(&err, TarError::Truncated { name, end: 3536, .. } if name == "disk"));
    assert_eq!(
        err.to_string(),
        "member disk runs to byte 3536 but the archive is only 2536 bytes long"
    );
}

#[test]
fn index_missing_or_half_end_marker_is_rejected() {
    let none = Ar::default().file("a", b"x").0;
    assert!(matches!(
        run(&none),
        Err(TarError::MissingEnd { offset: 1024 })
    ));
    let mut lone = none.clone();
    lone.extend_from_slice(&[0u8; 512]);
    assert!(matches!(
        run(&lone),
        Err(TarError::MissingEnd { offset: 1024 })
    ));
    assert!(matches!(run(&[]), Err(TarError::MissingEnd { offset: 0 })));
}

#[test]
fn index_bad_checksum_is_rejected() {
    let mut ar = Ar::default().file("a", b"x").end();
    ar[0] = b'b';
    assert!(matches!(run(&ar), Err(TarError::Checksum { offset: 0 })));
}

#[test]
fn index_v7_header_without_magic_is_rejected() {
    let mut h = hdr("a", b'0', 0).bytes();
    h[257..265].fill(0);
    seal(&mut h);
    let ar = Ar::default().raw(h, b"").end();
    assert!(matches!(run(&ar), Err(TarError::Format { offset: 0 })));
}

#[test]
fn index_more_than_max_members_is_rejected() {
    let mut ar = Ar::default();
    for i in 0..=MAX_MEMBERS {
        ar = ar.file(&format!("f{i}"), b"");
    }
    let err = run(&ar.end()).unwrap_err();
    assert!(matches!(err, TarError::TooManyMembers { cap: MAX_MEMBERS }));
}

#[test]
fn index_gnu_base256_size_is_used() {
    let mut h = hdr("disk", b'0', 0);
    h.gnu = true;
    let mut b = h.bytes();
    b[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
    seal(&mut b);
    let ar = Ar::default().raw(b, &[9u8; 1000]).end();
    assert_eq!(run(&ar).unwrap().members[0].size, 1000);
}

#[test]
fn parse_number_accepts_octal_terminators_and_base256() {
    assert_eq!(parse_number(b"0000644\0"), Some(0o644));
    assert_eq!(parse_number(b"   644 \0"), Some(0o644));
    assert_eq!(parse_number(b"\0\0\0\0"), Some(0));
    assert_eq!(
        parse_number(&[0x80, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]),
        Some(1 << 57)
    );
}

#[test]
fn parse_number_rejects_garbage_negative_and_overflow() {
    assert_eq!(parse_number(b"0000648\0"), None);
    assert_eq!(parse_number(b"64 4\0"), None);
    assert_eq!(parse_number(&[0xff; 12]), None);
    assert_eq!(parse_number(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(parse_number(b"7777777777777777777777777"), None);
}

#[test]
fn slice_reads_and_seeks_only_within_its_window() {
    let data: Vec<u8> = (0..100).collect();
    let mut s = Slice::new(Cursor::new(data), 10, 20).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    assert_eq!(buf, (10..30).collect::<Vec<u8>>());
    assert_eq!(s.seek(SeekFrom::End(-5)).unwrap(), 15);
    let mut tail = Vec::new();
    s.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, [25, 26, 27, 28, 29]);
    assert!(s.seek(SeekFrom::Current(-100)).is_err());
    assert_eq!(s.seek(SeekFrom::Start(40)).unwrap(), 40);
    assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 0);
}

#[test]
fn slice_over_a_shrunken_archive_fails_instead_of_ending_early() {
    let mut s = Slice::new(Cursor::new(vec![1u8; 50]), 40, 20).unwrap();
    let err = s.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

/// A scratch directory and the files (name, contents) archived in it.
type Fixture = (PathBuf, Vec<(String, Vec<u8>)>);

/// Files of awkward sizes (around block boundaries), with distinct contents.
fn gnu_tar_fixture(format: &str, long_names: bool) -> Option<Fixture> {
    let dir = std::env::temp_dir().join(format!("vmd-tar-{}-{format}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = [0usize, 1, 511, 512, 513, 100_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let data = (0..len).map(|j| (j * 31 + i * 7) as u8).collect();
            (format!("f{i}-{len}.img"), data)
        })
        .collect();
    if long_names {
        files.push(("L".repeat(200) + ".vmdk", b"long".to_vec()));
    }
    for (name, data) in &files {
        std::fs::write(dir.join(name), data).unwrap();
    }
    let archive = dir.join("out.ova");
    let status = Command::new("tar")
        .arg(format!("--format={format}"))
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir)
        .args(files.iter().map(|(n, _)| n))
        .status();
    match status {
        Ok(s) if s.success() => Some((dir, files)),
        Ok(s) => panic!("tar --format={format} failed: {s}"),
        Err(_) => None, // no tar on this machine: nothing to compare against
    }
}

fn check_gnu_tar_format(format: &str, long_names: bool) {
    let Some((dir, files)) = gnu_tar_fixture(format, long_names) else {
        return;
    };
    let archive = std::fs::read(dir.join("out.ova")).unwrap();
    let idx = run(&archive).unwrap();
    let names: Vec<&str> = idx.members.iter().map(|m| m.name.as_str()).collect();
    let want: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, want);
    for (name, data) in &files {
        assert_eq!(
            &member_bytes(&archive, idx.get(name).unwrap()),
            data,
            "{name}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn index_gnu_tar_ustar_archive_matches_original_files() {
    check_gnu_tar_format("ustar", false);
}

#[test]
fn index_gnu_tar_gnu_archive_with_long_name_matches_original_files() {
    check_gnu_tar_format("gnu", true);
}

#[test]
fn index_gnu_tar_pax_archive_with_long_name_matches_original_files() {
    check_gnu_tar_format("pax", true);
}

#[test]
fn index_any_single_byte_corruption_is_refused_or_stays_in_bounds() {
    let good = Ar::default()
        .pax(&[("path", b"vm.ovf"), ("size", b"600")])
        .raw(hdr("x", b'0', 600).bytes(), &[1u8; 600])
        .long_name(b"disk1.vmdk")
        .file("short", &[2u8; 100])
        .end();
    for at in 0..good.len() {
        for value in [0x00, 0x20, 0x31, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] = value;
            if let Ok(idx) = run(&bad) {
                for m in &idx.members {
                    assert!(
                        m.offset + m.size <= bad.len() as u64,
                        "byte {at} = {value:#x}"
                    );
                }
            }
        }
    }
}

#[test]
fn slice_whole_limits_a_fresh_reader_to_its_first_bytes() {
    let mut s = Slice::whole(Cursor::new(vec![3u8; 10]), 4);
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert_eq!(out, [3u8; 4]);
}
