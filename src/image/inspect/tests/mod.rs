//! Inspector tests on hand-written fixtures (no `qemu-img` needed): qcow2 and VMDK cases in
//! their own files, format detection, polyglots, raw and I/O budgets here.

use std::io::Cursor;

mod qcow2;
mod qcow2_map;
mod vmdk;

use super::fixtures::*;
use super::*;

pub(super) fn run(bytes: &[u8]) -> Result<ImageInfo, ImageError> {
    inspect(&mut Cursor::new(bytes), bytes.len() as u64)
}

pub(super) fn reject(bytes: &[u8]) -> ImageError {
    let err = run(bytes).expect_err("image must be rejected");
    assert!(err.is_rejection(), "not a rejection: {err:?}");
    err
}

pub(super) const GIB: u64 = 1 << 30;

// ---- other formats, polyglots, raw ----

#[test]
fn inspect_qed_is_rejected() {
    let mut b = vec![0u8; 4096];
    poke(&mut b, 0, b"QED\0");
    assert_eq!(reject(&b).to_string(), "qed images are not supported");
}

#[test]
fn inspect_foreign_formats_are_rejected() {
    let cases: [(usize, &[u8], &str); 6] = [
        (0, b"conectix", "vhd"),
        (0, b"vhdxfile", "vhdx"),
        (0x40, &[0x7f, 0x10, 0xda, 0xbe], "vdi"),
        (0, b"LUKS\xba\xbe", "luks"),
        (0, b"COWD", "vmdk3 (COWD)"),
        (0x8001, b"CD001", "iso9660"),
    ];
    for (at, magic, name) in cases {
        let mut b = vec![0u8; 0x10000];
        poke(&mut b, at, magic);
        let err = reject(&b);
        assert!(
            matches!(err, ImageError::UnsupportedFormat(n) if n == name),
            "{name}: {err}"
        );
    }
}

#[test]
fn inspect_vmdk_descriptor_file_is_rejected() {
    let text = descriptor("monolithicFlat", "RW 2048 FLAT \"/etc/shadow\" 0");
    let err = reject(text.as_bytes());
    assert_eq!(
        err.to_string(),
        "vmdk descriptor file images are not supported"
    );
}

#[test]
fn inspect_qcow2_iso_polyglot_is_rejected() {
    let mut b = qcow2(3, GIB);
    poke(&mut b, 0x8001, b"CD001");
    let err = reject(&b);
    assert_eq!(
        err.to_string(),
        "image matches more than one format: qcow2, iso9660"
    );
}

#[test]
fn inspect_qcow2_vdi_polyglot_is_rejected() {
    let mut b = qcow2(3, GIB);
    poke(&mut b, 0x40, &[0x7f, 0x10, 0xda, 0xbe]);
    assert!(matches!(reject(&b), ImageError::MultipleFormats(_)));
}

#[test]
fn inspect_raw_is_accepted_with_its_length() {
    let mut b = vec![0u8; 1 << 20];
    poke(&mut b, 510, &[0x55, 0xaa]);
    let info = run(&b).unwrap();
    assert_eq!(info.format, ImageFormat::Raw);
    assert_eq!(info.virtual_size, 1 << 20);
    assert_eq!((info.qcow2, info.vmdk), (None, None));
}

#[test]
fn inspect_empty_raw_is_rejected() {
    assert!(matches!(reject(&[]), ImageError::Empty));
}

#[test]
fn inspect_reader_shorter_than_len_is_truncated() {
    let b = qcow2(3, GIB);
    let err = inspect(&mut Cursor::new(&b[..100]), b.len() as u64).unwrap_err();
    assert!(matches!(err, ImageError::Truncated { .. }), "{err}");
}

#[test]
fn inspect_slice_inside_larger_reader_uses_len_not_reader_end() {
    // A stream image followed by unrelated bytes: the footer must be found at `len`.
    let mut b = vmdk_stream(2048, &stream_descriptor(2048));
    let len = b.len() as u64;
    b.extend_from_slice(&[0xab; 4096]);
    let info = inspect(&mut Cursor::new(&b), len).unwrap();
    assert!(info.vmdk.unwrap().footer);
}

#[test]
fn check_declared_raw_declared_but_qcow2_is_rejected() {
    let info = run(&qcow2(3, GIB)).unwrap();
    let err = check_declared(&info, ImageFormat::Raw).unwrap_err();
    assert_eq!(
        err.to_string(),
        "image was declared raw but its content is qcow2"
    );
    assert!(check_declared(&info, ImageFormat::Qcow2).is_ok());
}

#[test]
fn check_virtual_size_above_caller_limit_is_rejected() {
    let info = run(&qcow2(3, GIB)).unwrap();
    assert!(check_virtual_size(&info, GIB).is_ok());
    let err = check_virtual_size(&info, GIB - 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "virtual size 1073741824 bytes exceeds the limit of 1073741823 bytes"
    );
}

#[test]
fn detect_prefix_classifies_magics() {
    assert_eq!(
        detect_prefix(b"QFI\xfb\0\0\0\x03").unwrap(),
        Some(ImageFormat::Qcow2)
    );
    assert_eq!(
        detect_prefix(b"KDMV\x01\0\0\0").unwrap(),
        Some(ImageFormat::Vmdk)
    );
    assert_eq!(detect_prefix(&[0u8; 512]).unwrap(), None);
    assert_eq!(detect_prefix(b"").unwrap(), None);
    assert!(matches!(
        detect_prefix(b"QED\0"),
        Err(ImageError::UnsupportedFormat("qed"))
    ));
    let mut iso_qcow2 = qcow2(3, GIB);
    poke(&mut iso_qcow2, 0x8001, b"CD001");
    assert!(matches!(
        detect_prefix(&iso_qcow2),
        Err(ImageError::MultipleFormats(_))
    ));
}

#[test]
fn inspect_path_error_names_the_file() {
    let dir = crate::image::test_support::TempDir::new("inspect-path");
    let path = dir.path().join("disk.qed");
    let mut b = vec![0u8; 4096];
    poke(&mut b, 0, b"QED\0");
    std::fs::write(&path, &b).unwrap();
    let err = inspect_path(&path).unwrap_err();
    assert!(err.is_rejection());
    assert_eq!(
        err.to_string(),
        format!("cannot accept image {}", path.display())
    );
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "qed images are not supported"
    );
}

/// A miniature fuzz run: random byte flips in valid fixtures and random garbage must give
/// a result, never a panic, and never an allocation beyond the descriptor cap.
#[test]
fn inspect_mutated_fixtures_never_panic() {
    let seeds = [
        qcow2(3, GIB),
        qcow2_with_extensions(qcow2(2, GIB), &[(0x6803_f857, &[1u8; 24])]),
        vmdk_sparse(2048, &sparse_descriptor(2048)),
        vmdk_stream(2048, &stream_descriptor(2048)),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let mut b = seeds[round % seeds.len()].clone();
        for _ in 0..(1 + rng.next() % 8) {
            // Mostly the header and descriptor, sometimes anywhere.
            let span = if rng.next().is_multiple_of(4) {
                b.len()
            } else {
                1024
            };
            let at = (rng.next() as usize) % span;
            b[at] = rng.next() as u8;
        }
        if rng.next().is_multiple_of(8) {
            let cut = (rng.next() as usize) % b.len();
            b.truncate(cut);
        }
        let _ = run(&b);
    }
    for _ in 0..500 {
        let len = (rng.next() % 4096) as usize;
        let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = run(&b);
    }
}

/// A reader of `len` zero bytes (with an optional prefix) that counts what is read, so
/// tests can show the inspector reads headers, not images.
struct CountingZeros {
    prefix: Vec<u8>,
    len: u64,
    pos: u64,
    read: u64,
}

impl std::io::Read for CountingZeros {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.prefix.get(self.pos as usize + i).copied().unwrap_or(0);
        }
        self.pos += n as u64;
        self.read += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for CountingZeros {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            std::io::SeekFrom::Start(n) => n,
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

#[test]
fn inspect_large_raw_reads_only_a_few_kib() {
    let mut r = CountingZeros {
        prefix: Vec::new(),
        len: 100 * GIB,
        pos: 0,
        read: 0,
    };
    let info = inspect(&mut r, 100 * GIB).unwrap();
    assert_eq!(info.virtual_size, 100 * GIB);
    assert!(r.read <= 4096, "read {} bytes", r.read);
}

#[test]
fn inspect_vmdk_with_largest_descriptor_reads_below_1_mib_plus_headers() {
    let mut prefix = vmdk_sparse(2048, &sparse_descriptor(2048));
    poke_le64(&mut prefix, 36, 2047);
    let mut r = CountingZeros {
        prefix,
        len: 4 << 20,
        pos: 0,
        read: 0,
    };
    assert_eq!(inspect(&mut r, 4 << 20).unwrap().virtual_size, 2048 * 512);
    assert!(r.read < (1 << 20) + 8192, "read {} bytes", r.read);
}
