//! Items 5, 6, 7 and 12: qcow2 disks that name other files (backing files, external data
//! files) or whose header is out of range. All are refused by vmd's inspector while planning,
//! before any volume exists and before `qemu-img` runs.

use std::path::PathBuf;

use crate::fixtures::{
    patch_be32, patch_be64, qcow2_extensions, qemu_img, set_qcow2_extensions, Disk, Trial, MIB,
    QCOW2,
};

const EXT_DATA_FILE: u32 = 0x4441_5441;

/// Makes the 1 MiB qcow2 `name` in the package with `qemu-img create <opts>`.
fn qcow2(t: &Trial, name: &str, opts: &[&str]) -> PathBuf {
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    args.extend_from_slice(opts);
    args.extend([name, "1M"]);
    qemu_img(&t.pkg, &args);
    t.file(name)
}

/// A package of one clean 1 MiB qcow2 disk, `disk.qcow2`, patched by `patch`.
fn patched(tag: &str, patch: impl FnOnce(&std::path::Path)) -> Trial {
    let t = Trial::new(tag);
    let disk = qcow2(&t, "disk.qcow2", &[]);
    patch(&disk);
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    t
}

/// A package of one 1 MiB qcow2 disk whose backing file is `backing` (not checked).
fn with_backing(tag: &str, backing: &str) -> Trial {
    let t = Trial::new(tag);
    qcow2(&t, "disk.qcow2", &["-u", "-b", backing, "-F", "raw"]);
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    t
}

// ---- item 5: backing files ----

#[test]
fn import_qcow2_backing_etc_shadow_is_rejected_before_qemu_img() {
    let t = with_backing("bf-shadow", "/etc/shadow");
    t.assert_rejected(&["disk.qcow2", "has a backing file", "/etc/shadow"]);
}

#[test]
fn import_qcow2_backing_etc_shadow_in_ova_is_rejected_before_qemu_img() {
    let t = with_backing("bf-ova", "/etc/shadow");
    let ova = t.ova(&["disk.qcow2"]);
    let out = t.import_from(&ova, &[]);
    t.assert_failed_clean(
        &out,
        3,
        &["disk.qcow2", "has a backing file", "/etc/shadow"],
    );
    assert!(t.stub.calls().is_empty(), "{:?}", t.stub.calls());
}

#[test]
fn import_qcow2_backing_relative_master_outside_package_is_rejected() {
    let t = Trial::new("bf-rel");
    // The file the name points at exists, so only the inspector stands in the way.
    qemu_img(
        t.env.dir(),
        &["create", "-q", "-f", "qcow2", "master.qcow2", "1M"],
    );
    qcow2(
        &t,
        "disk.qcow2",
        &["-u", "-b", "../master.qcow2", "-F", "qcow2"],
    );
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    t.assert_rejected(&["disk.qcow2", "has a backing file", "../master.qcow2"]);
}

#[test]
fn import_qcow2_backing_json_spec_is_rejected() {
    let t = with_backing("bf-json", r#"json:{"file":{"filename":"/etc/shadow"}}"#);
    t.assert_rejected(&["disk.qcow2", "has a backing file", "json:{", "/etc/shadow"]);
}

#[test]
fn import_qcow2_backing_nbd_url_is_rejected() {
    let t = with_backing("bf-nbd", "nbd://127.0.0.1:10809/export");
    t.assert_rejected(&["disk.qcow2", "has a backing file", "nbd://127.0.0.1:10809"]);
}

#[test]
fn import_qcow2_backing_format_extension_without_backing_name_is_rejected() {
    let t = with_backing("bf-ext", "/etc/shadow");
    // Clear backing_file_offset and backing_file_size: only the extension is left.
    patch_be64(&t.file("disk.qcow2"), 8, 0);
    patch_be32(&t.file("disk.qcow2"), 16, 0);
    t.assert_rejected(&["disk.qcow2", "backing file", "declares a backing format"]);
}

// ---- item 6: external data files ----

/// A qcow2 made with an external raw data file, then pointed at `/etc/hosts` (qemu-img
/// would create, and so truncate, a data file named at creation).
fn with_data_file(tag: &str) -> Trial {
    let t = Trial::new(tag);
    let data = t.file("data.raw");
    let opt = format!("data_file={},data_file_raw=on", data.display());
    let disk = qcow2(&t, "disk.qcow2", &["-o", &opt]);
    std::fs::remove_file(&data).unwrap();
    let exts: Vec<(u32, Vec<u8>)> = qcow2_extensions(&disk)
        .into_iter()
        .map(|(kind, d)| match kind {
            EXT_DATA_FILE => (kind, b"/etc/hosts".to_vec()),
            _ => (kind, d),
        })
        .collect();
    assert!(exts.iter().any(|(k, _)| *k == EXT_DATA_FILE));
    set_qcow2_extensions(&disk, &exts);
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    t
}

#[test]
fn import_qcow2_data_file_etc_hosts_is_rejected_before_qemu_img() {
    let t = with_data_file("df-hosts");
    t.assert_rejected(&["disk.qcow2", "external data file", "bit 2"]);
}

#[test]
fn import_qcow2_data_file_extension_without_feature_bit_is_rejected() {
    let t = with_data_file("df-ext");
    patch_be64(&t.file("disk.qcow2"), 72, 0);
    t.assert_rejected(&["disk.qcow2", "external data file", "0x44415441"]);
}

#[test]
fn import_qcow2_data_file_feature_bit_alone_is_rejected() {
    let t = patched("df-bit", |p| patch_be64(p, 72, 1 << 2));
    t.assert_rejected(&["disk.qcow2", "external data file", "bit 2"]);
}

// ---- item 7: header oddities ----

#[test]
fn import_qcow2_version_1_is_rejected() {
    let t = patched("v1", |p| patch_be32(p, 4, 1));
    t.assert_rejected(&["disk.qcow2", "qcow2 header", "version 1 is not supported"]);
}

#[test]
fn import_qcow2_version_4_is_rejected() {
    let t = patched("v4", |p| patch_be32(p, 4, 4));
    t.assert_rejected(&["disk.qcow2", "qcow2 header", "version 4 is not supported"]);
}

#[test]
fn import_qcow2_unknown_incompatible_feature_bit_is_rejected() {
    let t = patched("incompat", |p| patch_be64(p, 72, 1 << 5));
    t.assert_rejected(&["disk.qcow2", "unknown incompatible feature bits 0x20"]);
}

#[test]
fn import_qcow2_corrupt_bit_is_rejected() {
    let t = patched("corrupt", |p| patch_be64(p, 72, 1 << 1));
    t.assert_rejected(&["disk.qcow2", "marked corrupt"]);
}

#[test]
fn import_qcow2_huge_header_length_is_rejected() {
    let t = patched("hdrlen", |p| patch_be32(p, 100, 0xffff_fff8));
    t.assert_rejected(&["disk.qcow2", "header_length 4294967288"]);
}

#[test]
fn import_qcow2_l1_size_max_is_rejected() {
    let t = patched("l1", |p| patch_be32(p, 36, u32::MAX));
    t.assert_rejected(&["disk.qcow2", "l1_size 4294967295"]);
}

#[test]
fn import_qcow2_huge_refcount_table_is_rejected() {
    let t = patched("reftable", |p| patch_be32(p, 56, u32::MAX));
    t.assert_rejected(&["disk.qcow2", "refcount table of 4294967295 clusters"]);
}

#[test]
fn import_qcow2_nb_snapshots_max_is_rejected() {
    let t = patched("snaps", |p| patch_be32(p, 60, u32::MAX));
    t.assert_rejected(&["disk.qcow2", "nb_snapshots 4294967295"]);
}

#[test]
fn import_qcow2_cluster_bits_below_range_is_rejected() {
    let t = patched("cbits-lo", |p| patch_be32(p, 20, 8));
    t.assert_rejected(&["disk.qcow2", "cluster_bits 8 is outside"]);
}

#[test]
fn import_qcow2_cluster_bits_above_range_is_rejected() {
    let t = patched("cbits-hi", |p| patch_be32(p, 20, 63));
    t.assert_rejected(&["disk.qcow2", "cluster_bits 63 is outside"]);
}

#[test]
fn import_qcow2_truncated_header_is_rejected() {
    let t = Trial::new("trunc");
    let disk = qcow2(&t, "disk.qcow2", &[]);
    let head = std::fs::read(&disk).unwrap()[..40].to_vec();
    std::fs::write(&disk, head).unwrap();
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    t.assert_rejected(&["disk.qcow2", "truncated", "qcow2 header", "40 bytes"]);
}

// ---- item 12: a master never has a backing file ----

#[test]
fn import_qcow2_overlay_of_packaged_master_is_rejected_whole() {
    let t = Trial::new("chain");
    qcow2(&t, "master.qcow2", &[]);
    qcow2(&t, "overlay.qcow2", &["-b", "master.qcow2", "-F", "qcow2"]);
    t.package(&[
        Disk::file("master.qcow2", QCOW2, MIB),
        Disk::file("overlay.qcow2", QCOW2, MIB),
    ]);
    // The clean first disk is not imported either: the package is refused as a whole.
    t.assert_rejected(&["overlay.qcow2", "has a backing file", "master.qcow2"]);
}
