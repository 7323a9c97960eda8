//! `QemuImg` against the real `qemu-img` (skipped, with a note, where it is not installed):
//! info, backing-file rejection, overlays, convert round trips and in-place slices.

use std::fs;
use std::path::Path;

use super::*;
use crate::image::inspect::{fixtures, inspect_path};
use crate::image::test_support::{real_qemu_img, TempDir};

#[test]
fn real_version_is_parsed() {
    let Some(q) = real_qemu_img("real_version_is_parsed") else {
        return;
    };
    let v = q.version().unwrap();
    assert!(v.major >= 2, "{v}");
}

#[test]
fn real_info_on_good_qcow2_reports_its_size() {
    let Some(q) = real_qemu_img("real_info_on_good_qcow2_reports_its_size") else {
        return;
    };
    let dir = TempDir::new("real-info");
    let path = dir.path().join("a.qcow2");
    q.create(&path, ImageFormat::Qcow2, 3 << 30).unwrap();
    let info = q.info(&path, ImageFormat::Qcow2).unwrap();
    assert_eq!(
        (info.format, info.virtual_size),
        (ImageFormat::Qcow2, 3 << 30)
    );
}

#[test]
fn real_info_with_raw_format_never_probes_a_qcow2() {
    let Some(q) = real_qemu_img("real_info_with_raw_format_never_probes_a_qcow2") else {
        return;
    };
    let dir = TempDir::new("real-mismatch");
    let path = dir.path().join("a.qcow2");
    q.create(&path, ImageFormat::Qcow2, 1 << 20).unwrap();
    // With -f raw qemu-img reads the file as raw: it reports raw, not qcow2; the
    // inspector is what catches the confusion.
    let info = q.info(&path, ImageFormat::Raw).unwrap();
    assert_eq!(info.format, ImageFormat::Raw);
    assert_ne!(info.virtual_size, 1 << 20);
}

#[test]
fn real_info_rejects_backing_file() {
    let Some(q) = real_qemu_img("real_info_rejects_backing_file") else {
        return;
    };
    let dir = TempDir::new("real-backing");
    let path = dir.path().join("child.qcow2");
    q.create_overlay(&path, Path::new("/etc/hosts"), ImageFormat::Raw)
        .unwrap();
    let err = q.info(&path, ImageFormat::Qcow2).unwrap_err();
    assert!(
        err.to_string()
            .contains("has a backing file \"/etc/hosts\""),
        "{err}"
    );
    assert!(err.is_rejection());
}

#[test]
fn real_create_overlay_records_absolute_backing_and_format() {
    let Some(q) = real_qemu_img("real_create_overlay_records_absolute_backing_and_format") else {
        return;
    };
    let dir = TempDir::new("real-overlay");
    let master = dir.path().join("master.qcow2");
    q.create(&master, ImageFormat::Qcow2, 1 << 20).unwrap();
    let clone = dir.path().join("clone.qcow2");
    q.create_overlay(&clone, &master, ImageFormat::Qcow2)
        .unwrap();
    let bytes = fs::read(&clone).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(master.to_str().unwrap()));
    let err = inspect_path(&clone).unwrap_err();
    assert!(std::error::Error::source(&err)
        .unwrap()
        .to_string()
        .contains("backing file"));
    assert!(
        q.create_overlay(&clone, &master, ImageFormat::Qcow2)
            .is_err(),
        "overwrote"
    );
}

#[test]
fn real_convert_raw_to_qcow2_and_back_keeps_content() {
    let Some(q) = real_qemu_img("real_convert_raw_to_qcow2_and_back_keeps_content") else {
        return;
    };
    let dir = TempDir::new("real-convert");
    let raw = dir.path().join("in.raw");
    let content: Vec<u8> = (0..(4u32 << 20))
        .map(|i| (i * 7 + i / 4096) as u8)
        .collect();
    fs::write(&raw, &content).unwrap();
    let qcow = dir.path().join("mid.qcow2");
    let opts = ConvertOptions {
        limits: Limits::convert_for(content.len() as u64),
        target_exists: false,
        max_output: None,
    };
    q.convert(&raw, ImageFormat::Raw, &qcow, ImageFormat::Qcow2, &opts)
        .unwrap();
    assert_eq!(
        inspect_path(&qcow).unwrap().virtual_size,
        content.len() as u64
    );
    let back = dir.path().join("out.raw");
    q.convert(&qcow, ImageFormat::Qcow2, &back, ImageFormat::Raw, &opts)
        .unwrap();
    assert!(
        fs::read(&back).unwrap() == content,
        "content differs after round trip"
    );
    let err = q
        .convert(&qcow, ImageFormat::Qcow2, &back, ImageFormat::Raw, &opts)
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn real_convert_failure_removes_the_target_it_created() {
    let Some(q) = real_qemu_img("real_convert_failure_removes_the_target_it_created") else {
        return;
    };
    let dir = TempDir::new("real-convert-fail");
    let src = dir.path().join("garbage.qcow2");
    fs::write(&src, b"not an image at all").unwrap();
    let dst = dir.path().join("out.raw");
    let opts = ConvertOptions {
        limits: Limits::convert_for(1 << 20),
        target_exists: false,
        max_output: None,
    };
    let err = q
        .convert(&src, ImageFormat::Qcow2, &dst, ImageFormat::Raw, &opts)
        .unwrap_err();
    assert!(
        matches!(err, ImageError::Failed { op: "convert", .. }),
        "{err:?}"
    );
    assert!(!dst.exists());
}

#[test]
fn real_slice_of_archive_is_read_in_place() {
    let Some(q) = real_qemu_img("real_slice_of_archive_is_read_in_place") else {
        return;
    };
    let dir = TempDir::new("real-slice");
    let vmdk = dir.path().join("disk.vmdk");
    fs::write(
        &vmdk,
        fixtures::vmdk_sparse(2048, &fixtures::sparse_descriptor(2048)),
    )
    .unwrap();
    let mut archive = vec![0x5au8; 1536];
    let member = fs::read(&vmdk).unwrap();
    archive.extend_from_slice(&member);
    archive.extend_from_slice(&[0xa5u8; 4096]);
    let ova = dir.path().join("x.ova");
    fs::write(&ova, &archive).unwrap();
    let src = ImageSource::Slice {
        file: &ova,
        offset: 1536,
        size: member.len() as u64,
    };
    let info = q.info(src, ImageFormat::Vmdk).unwrap();
    assert_eq!(info.virtual_size, 2048 * 512);
    let out = dir.path().join("out.raw");
    let opts = ConvertOptions {
        limits: Limits::convert_for(info.virtual_size),
        target_exists: false,
        max_output: None,
    };
    q.convert(src, ImageFormat::Vmdk, &out, ImageFormat::Raw, &opts)
        .unwrap();
    assert_eq!(fs::read(&out).unwrap(), vec![0u8; 2048 * 512]);
}

/// A qcow2 at `path` holding `content`, written by `convert` from a raw file.
fn qcow2_with(q: &QemuImg, dir: &TempDir, path: &Path, content: &[u8], target_exists: bool) {
    let raw = dir.path().join("content.raw");
    fs::write(&raw, content).unwrap();
    let opts = ConvertOptions {
        limits: Limits::convert_for(content.len() as u64),
        target_exists,
        max_output: None,
    };
    q.convert(&raw, ImageFormat::Raw, path, ImageFormat::Qcow2, &opts)
        .unwrap();
    fs::remove_file(&raw).unwrap();
}

/// What a guest would read from the qcow2 (or overlay) at `path`.
fn read_back(q: &QemuImg, dir: &TempDir, path: &Path) -> Vec<u8> {
    let out = dir.path().join("read-back.raw");
    let opts = ConvertOptions {
        limits: Limits::convert_for(1 << 20),
        target_exists: false,
        max_output: None,
    };
    q.convert(path, ImageFormat::Qcow2, &out, ImageFormat::Raw, &opts)
        .unwrap();
    let bytes = fs::read(&out).unwrap();
    fs::remove_file(&out).unwrap();
    bytes
}

fn pattern(seed: u8) -> Vec<u8> {
    (0..(1u32 << 20)).map(|i| (i / 512) as u8 ^ seed).collect()
}

#[test]
fn real_snapshot_apply_restores_content_written_after_create() {
    let Some(q) = real_qemu_img("real_snapshot_apply_restores_content_written_after_create") else {
        return;
    };
    let dir = TempDir::new("real-snap-apply");
    let disk = dir.path().join("disk.qcow2");
    let (before, after) = (pattern(0x11), pattern(0x22));
    qcow2_with(&q, &dir, &disk, &before, false);

    q.snapshot_create(&disk, ImageFormat::Qcow2, "before")
        .unwrap();
    qcow2_with(&q, &dir, &disk, &after, true);
    let written = read_back(&q, &dir, &disk);
    q.snapshot_apply(&disk, ImageFormat::Qcow2, "before")
        .unwrap();

    assert!(
        written == after,
        "the write after the snapshot did not land"
    );
    assert!(
        read_back(&q, &dir, &disk) == before,
        "apply did not restore"
    );
    assert_eq!(
        q.snapshot_list(&disk, ImageFormat::Qcow2).unwrap(),
        ["before"]
    );
}

#[test]
fn real_snapshot_create_taken_name_is_refused_delete_twice_is_ok() {
    let Some(q) = real_qemu_img("real_snapshot_create_taken_name_is_refused_delete_twice_is_ok")
    else {
        return;
    };
    let dir = TempDir::new("real-snap-names");
    let disk = dir.path().join("disk.qcow2");
    q.create(&disk, ImageFormat::Qcow2, 1 << 20).unwrap();
    q.snapshot_create(&disk, ImageFormat::Qcow2, "s 1").unwrap();
    q.snapshot_create(&disk, ImageFormat::Qcow2, "s2").unwrap();

    let taken = q
        .snapshot_create(&disk, ImageFormat::Qcow2, "s 1")
        .unwrap_err();
    let missing = q
        .snapshot_apply(&disk, ImageFormat::Qcow2, "s3")
        .unwrap_err();
    q.snapshot_delete(&disk, ImageFormat::Qcow2, "s 1").unwrap();
    q.snapshot_delete(&disk, ImageFormat::Qcow2, "s 1").unwrap();

    assert!(
        taken
            .to_string()
            .ends_with("snapshot \"s 1\" exists already"),
        "{taken}"
    );
    assert!(
        missing
            .to_string()
            .ends_with("snapshot \"s3\" does not exist"),
        "{missing}"
    );
    assert_eq!(q.snapshot_list(&disk, ImageFormat::Qcow2).unwrap(), ["s2"]);
}

#[test]
fn real_snapshot_apply_on_overlay_reads_through_to_the_master_again() {
    let Some(q) = real_qemu_img("real_snapshot_apply_on_overlay_reads_through_to_the_master_again")
    else {
        return;
    };
    let dir = TempDir::new("real-snap-overlay");
    let master = dir.path().join("master.qcow2");
    let (base, changed) = (pattern(0x33), pattern(0x44));
    qcow2_with(&q, &dir, &master, &base, false);
    let clone = dir.path().join("clone.qcow2");
    q.create_overlay(&clone, &master, ImageFormat::Qcow2)
        .unwrap();

    q.snapshot_create(&clone, ImageFormat::Qcow2, "fresh")
        .unwrap();
    qcow2_with(&q, &dir, &clone, &changed, true);
    q.snapshot_apply(&clone, ImageFormat::Qcow2, "fresh")
        .unwrap();

    assert!(read_back(&q, &dir, &clone) == base, "apply did not restore");
    let err = inspect_path(&clone).unwrap_err();
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("backing file"),
        "the overlay lost its backing file: {err}"
    );
    assert!(read_back(&q, &dir, &master) == base, "the master changed");
}

#[test]
fn real_snapshot_list_of_raw_path_is_refused_not_probed() {
    let Some(q) = real_qemu_img("real_snapshot_list_of_raw_path_is_refused_not_probed") else {
        return;
    };
    let dir = TempDir::new("real-snap-raw");
    let raw = dir.path().join("disk.raw");
    fs::write(&raw, vec![0u8; 1 << 20]).unwrap();

    let declared_raw = q.snapshot_list(&raw, ImageFormat::Raw).unwrap_err();
    let read_as_qcow2 = q.snapshot_list(&raw, ImageFormat::Qcow2).unwrap_err();

    assert!(matches!(
        declared_raw,
        ImageError::SnapshotFormat(ImageFormat::Raw)
    ));
    assert!(
        matches!(read_as_qcow2, ImageError::Failed { op: "info", .. }),
        "{read_as_qcow2:?}"
    );
}

// SECURITY.md item 42: the conversion of an image that maps more than its bound stops at
// the bound (RLIMIT_FSIZE), fails as a rejection, and removes the target it created.
#[test]
fn real_convert_stops_at_max_output_and_removes_the_target() {
    let Some(q) = real_qemu_img("real_convert_stops_at_max_output_and_removes_the_target") else {
        return;
    };
    let dir = TempDir::new("real-convert-cap");
    let src = dir.path().join("in.raw");
    let content: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8 | 1).collect();
    fs::write(&src, &content).unwrap();
    let dst = dir.path().join("out.qcow2");
    let opts = ConvertOptions {
        limits: Limits::convert_for(content.len() as u64),
        target_exists: false,
        max_output: Some(1 << 20),
    };
    let err = q
        .convert(&src, ImageFormat::Raw, &dst, ImageFormat::Qcow2, &opts)
        .unwrap_err();
    assert!(
        matches!(err, ImageError::OutputLimit { op: "convert", limit } if limit == 1 << 20),
        "{err:?}"
    );
    assert!(err.is_rejection());
    assert!(!dst.exists(), "target left behind");
}
