//! Items 9, 10 and 11: a disk's content must be exactly the format declared (no polyglots,
//! no QED); guest data that merely looks like qcow2 is kept and read as raw; `qemu-img`
//! only ever sees images the inspector passed, always with an explicit `-f`.

use crate::fixtures::{
    gzip_member, patch, pattern, qcow2_extensions, qemu_img, set_qcow2_extensions, Disk, Trial,
    MIB, QCOW2, RAW, VMDK_STREAM,
};

/// Makes a 1 MiB qcow2 `name` in `dir` with `qemu-img create <opts>`.
fn qcow2_in(dir: &std::path::Path, name: &str, opts: &[&str]) {
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    args.extend_from_slice(opts);
    args.extend([name, "1M"]);
    qemu_img(dir, &args);
}

/// A package of one clean 1 MiB qcow2 `disk.img`, patched by `patch`, declared `format`.
fn qcow2_declared(tag: &str, format: &'static str, patch: impl FnOnce(&std::path::Path)) -> Trial {
    let t = Trial::new(tag);
    qcow2_in(&t.pkg, "disk.img", &[]);
    patch(&t.file("disk.img"));
    t.package(&[Disk::file("disk.img", format, MIB)]);
    t
}

/// 1 MiB of guest data that starts with a qcow2 header whose backing file is /etc/shadow.
fn qcow2_lookalike(t: &Trial) -> Vec<u8> {
    qcow2_in(
        t.env.dir(),
        "header.qcow2",
        &["-u", "-b", "/etc/shadow", "-F", "raw"],
    );
    let mut data = std::fs::read(t.env.dir().join("header.qcow2")).unwrap();
    data.resize(MIB as usize, 0);
    data
}

// ---- item 9: format confusion ----

#[test]
fn import_raw_declared_qcow2_content_is_rejected() {
    let t = qcow2_declared("raw-qcow2", RAW, |_| {});
    t.assert_rejected(&["disk.img", "declared raw but its content is qcow2"]);
}

#[test]
fn import_vmdk_declared_qcow2_content_is_rejected() {
    let t = qcow2_declared("vmdk-qcow2", VMDK_STREAM, |_| {});
    t.assert_rejected(&["disk.img", "declared vmdk but its content is qcow2"]);
}

#[test]
fn import_qcow2_declared_raw_content_is_rejected() {
    let t = Trial::new("qcow2-raw");
    std::fs::write(t.file("disk.img"), pattern(MIB as usize, 1)).unwrap();
    t.package(&[Disk::file("disk.img", QCOW2, MIB)]);
    t.assert_rejected(&["disk.img", "declared qcow2 but its content is raw"]);
}

#[test]
fn import_raw_declared_vmdk_content_is_rejected() {
    let t = Trial::new("raw-vmdk");
    qemu_img(&t.pkg, &["create", "-q", "-f", "vmdk", "disk.img", "1M"]);
    t.package(&[Disk::file("disk.img", RAW, MIB)]);
    t.assert_rejected(&["disk.img", "declared raw but its content is vmdk"]);
}

#[test]
fn import_raw_declared_with_qcow2_backing_header_in_sector_0_is_rejected() {
    let t = Trial::new("raw-hdr");
    std::fs::write(t.file("disk.img"), qcow2_lookalike(&t)).unwrap();
    t.package(&[Disk::file("disk.img", RAW, MIB)]);
    t.assert_rejected(&["disk.img", "has a backing file", "/etc/shadow"]);
}

#[test]
fn import_gzip_raw_declared_holding_qcow2_is_rejected() {
    let t = Trial::new("gz-raw-qcow2");
    qcow2_in(t.env.dir(), "inner.qcow2", &[]);
    let inner = std::fs::read(t.env.dir().join("inner.qcow2")).unwrap();
    std::fs::write(t.file("disk.img.gz"), gzip_member(&inner)).unwrap();
    t.package(&[Disk::file("disk.img.gz", RAW, MIB).gzip()]);
    t.assert_rejected(&["disk.img.gz", "is qcow2 but the descriptor declares raw"]);
}

#[test]
fn import_polyglot_qcow2_iso9660_is_rejected() {
    let t = qcow2_declared("poly-iso", QCOW2, |p| patch(p, 0x8001, b"CD001"));
    t.assert_rejected(&[
        "disk.img",
        "matches more than one format",
        "qcow2",
        "iso9660",
    ]);
}

#[test]
fn import_polyglot_qcow2_vdi_is_rejected() {
    // 0x40 is the (unused, no snapshots) snapshots_offset of qcow2 and VDI's signature.
    let t = qcow2_declared("poly-vdi", QCOW2, |p| {
        patch(p, 0x40, &[0x7f, 0x10, 0xda, 0xbe])
    });
    t.assert_rejected(&["disk.img", "matches more than one format", "qcow2", "vdi"]);
}

#[test]
fn import_qed_declared_raw_is_rejected() {
    let t = Trial::new("qed-raw");
    qemu_img(&t.pkg, &["create", "-q", "-f", "qed", "disk.img", "1M"]);
    t.package(&[Disk::file("disk.img", RAW, MIB)]);
    t.assert_rejected(&["disk.img", "qed images are not supported"]);
}

#[test]
fn import_qed_declared_qcow2_is_rejected() {
    let t = Trial::new("qed-qcow2");
    qemu_img(&t.pkg, &["create", "-q", "-f", "qed", "disk.img", "1M"]);
    t.package(&[Disk::file("disk.img", QCOW2, MIB)]);
    t.assert_rejected(&["disk.img", "qed images are not supported"]);
}

// ---- item 10: guest data that looks like qcow2 stays raw ----

#[test]
fn import_raw_volume_whose_content_starts_with_qcow2_header_is_recorded_and_read_as_raw() {
    let t = Trial::new("lookalike");
    let content = qcow2_lookalike(&t);
    let raw = t.env.dir().join("content.raw");
    std::fs::write(&raw, &content).unwrap();
    let args = ["convert", "-q", "-f", "raw", "-O", "vmdk", "-o"];
    let out = t.file("disk.vmdk");
    qemu_img(
        t.env.dir(),
        &[
            &args[..],
            &["subformat=streamOptimized", raw.to_str().unwrap()],
            &[out.to_str().unwrap()],
        ]
        .concat(),
    );
    t.package(&[Disk::file("disk.vmdk", VMDK_STREAM, MIB)]);

    let result = t.import(&["--format", "raw"]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(0), "stderr: {stderr}");

    let show = t.env.json(&["show", "rejects"]);
    let disk = &show["disks"][0];
    assert_eq!(disk["format"], "raw");
    let path = disk["path"].as_str().unwrap();
    let volume = std::fs::read(path).unwrap();
    assert!(volume == content, "the volume is not the guest data");
    let shadow = std::fs::read("/etc/shadow").unwrap();
    assert!(
        !volume.windows(shadow.len()).any(|w| w == shadow),
        "the volume holds /etc/shadow"
    );
    let calls = t.stub.calls();
    assert!(!calls.is_empty(), "qemu-img never ran");
    for call in &calls {
        assert!(call.contains(" -f raw "), "{call}");
    }
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("info ") && c.ends_with(path)),
        "no qemu-img info of {path}: {calls:?}"
    );
}

// ---- item 11: qemu-img sees only what the inspector passed, always with -f ----

#[test]
fn import_clean_qcow2_runs_qemu_img_only_with_explicit_formats() {
    let t = Trial::new("qcow2-ok");
    qcow2_in(&t.pkg, "disk.qcow2", &[]);
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    let out = t.import(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = t.stub.calls();
    assert!(calls.iter().any(|c| c.starts_with("convert ")), "{calls:?}");
    assert!(calls.iter().any(|c| c.starts_with("info ")), "{calls:?}");
    for call in &calls {
        assert!(call.contains(" -f qcow2 "), "{call}");
    }
    // The staged copy qemu-img converted from is gone; only the volume is left.
    assert_eq!(t.pool_files(), t.env.volumes());
    assert_eq!(t.env.volumes().len(), 1);
}

#[test]
fn import_qcow2_json_data_file_never_reaches_qemu_img() {
    let t = Trial::new("json-df");
    let data = t.file("data.raw");
    let opt = format!("data_file={},data_file_raw=on", data.display());
    qcow2_in(&t.pkg, "disk.qcow2", &["-o", &opt]);
    std::fs::remove_file(&data).unwrap();
    let json = br#"json:{"driver":"raw","file":{"driver":"file","filename":"/etc/shadow"}}"#;
    let disk = t.file("disk.qcow2");
    let exts: Vec<(u32, Vec<u8>)> = qcow2_extensions(&disk)
        .into_iter()
        .map(|(k, d)| {
            if k == 0x4441_5441 {
                (k, json.to_vec())
            } else {
                (k, d)
            }
        })
        .collect();
    set_qcow2_extensions(&disk, &exts);
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    t.assert_rejected(&["disk.qcow2", "external data file"]);
}
