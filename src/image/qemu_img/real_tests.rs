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
    };
    q.convert(src, ImageFormat::Vmdk, &out, ImageFormat::Raw, &opts)
        .unwrap();
    assert_eq!(fs::read(&out).unwrap(), vec![0u8; 2048 * 512]);
}
