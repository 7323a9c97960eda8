//! Inspector tests on images made by the real `qemu-img create` (skipped, with a note, where
//! it is not installed): the inspector must accept what QEMU makes safely, agree with
//! `qemu-img info` on the virtual size, and reject backing files, data files and flat VMDKs.

use std::path::{Path, PathBuf};

use super::{inspect_path, ImageInfo};
use crate::image::qemu_img::QemuImg;
use crate::image::test_support::{real_qemu_img, TempDir};
use crate::image::{ImageError, ImageFormat, VmdkSubformat};

/// Runs `qemu-img create -q -f <fmt> [extra...] <name> [size]` directly: these fixtures
/// include shapes `QemuImg` refuses to make (backing files, data files, flat VMDKs).
fn create(
    q: &QemuImg,
    dir: &TempDir,
    name: &str,
    fmt: &str,
    extra: &[&str],
    size: Option<&str>,
) -> PathBuf {
    let path = dir.path().join(name);
    let mut cmd = std::process::Command::new(q.binary());
    cmd.args(["create", "-q", "-f", fmt]).args(extra).arg(&path);
    if let Some(size) = size {
        cmd.arg(size);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn rejection(path: &Path) -> ImageError {
    let err = inspect_path(path).unwrap_err();
    assert!(err.is_rejection(), "{err:?}");
    match err {
        ImageError::Inspect { source, .. } => *source,
        other => other,
    }
}

fn accepted_and_agrees(q: &QemuImg, path: &Path, format: ImageFormat) -> ImageInfo {
    let info = inspect_path(path).unwrap();
    assert_eq!(info.format, format);
    let qemu = q.info(path, format).unwrap();
    assert_eq!(info.virtual_size, qemu.virtual_size, "{}", path.display());
    info
}

#[test]
fn real_qcow2_v3_and_v2_are_accepted_with_qemu_size() {
    let Some(q) = real_qemu_img("real_qcow2_v3_and_v2_are_accepted_with_qemu_size") else {
        return;
    };
    let dir = TempDir::new("real-qcow2");
    let v3 = create(&q, &dir, "v3.qcow2", "qcow2", &[], Some("1G"));
    assert_eq!(
        accepted_and_agrees(&q, &v3, ImageFormat::Qcow2)
            .qcow2
            .unwrap()
            .version,
        3
    );
    let v2 = create(
        &q,
        &dir,
        "v2.qcow2",
        "qcow2",
        &["-o", "compat=0.10"],
        Some("10G"),
    );
    assert_eq!(
        accepted_and_agrees(&q, &v2, ImageFormat::Qcow2)
            .qcow2
            .unwrap()
            .version,
        2
    );
    let odd = create(
        &q,
        &dir,
        "odd.qcow2",
        "qcow2",
        &["-o", "cluster_size=512"],
        Some("1000000000"),
    );
    accepted_and_agrees(&q, &odd, ImageFormat::Qcow2);
    let big = create(
        &q,
        &dir,
        "big.qcow2",
        "qcow2",
        &["-o", "cluster_size=2M,extended_l2=on"],
        Some("60T"),
    );
    accepted_and_agrees(&q, &big, ImageFormat::Qcow2);
}

#[test]
fn real_qcow2_with_backing_file_is_rejected() {
    let Some(q) = real_qemu_img("real_qcow2_with_backing_file_is_rejected") else {
        return;
    };
    let dir = TempDir::new("real-backing");
    let path = create(
        &q,
        &dir,
        "b.qcow2",
        "qcow2",
        &["-b", "/etc/hosts", "-F", "raw"],
        None,
    );
    let err = rejection(&path);
    assert!(matches!(err, ImageError::BackingFile { .. }), "{err}");
    assert!(err.to_string().contains("\"/etc/hosts\""), "{err}");
}

#[test]
fn real_qcow2_with_data_file_is_rejected() {
    let Some(q) = real_qemu_img("real_qcow2_with_data_file_is_rejected") else {
        return;
    };
    let dir = TempDir::new("real-datafile");
    let data = dir.path().join("data.raw");
    let opt = format!("data_file={},data_file_raw=on", data.display());
    let path = create(&q, &dir, "d.qcow2", "qcow2", &["-o", &opt], Some("1M"));
    assert!(matches!(rejection(&path), ImageError::DataFile { .. }));
}

#[test]
fn real_vmdk_monolithic_sparse_and_stream_are_accepted() {
    let Some(q) = real_qemu_img("real_vmdk_monolithic_sparse_and_stream_are_accepted") else {
        return;
    };
    let dir = TempDir::new("real-vmdk");
    for (sub, expect) in [
        ("monolithicSparse", VmdkSubformat::MonolithicSparse),
        ("streamOptimized", VmdkSubformat::StreamOptimized),
    ] {
        let opt = format!("subformat={sub}");
        let path = create(
            &q,
            &dir,
            &format!("{sub}.vmdk"),
            "vmdk",
            &["-o", &opt],
            Some("3G"),
        );
        let info = accepted_and_agrees(&q, &path, ImageFormat::Vmdk);
        assert_eq!(info.vmdk_subformat, Some(expect));
    }
}

#[test]
fn real_vmdk_flat_and_split_layouts_are_rejected() {
    let Some(q) = real_qemu_img("real_vmdk_flat_and_split_layouts_are_rejected") else {
        return;
    };
    let dir = TempDir::new("real-flat");
    for sub in [
        "monolithicFlat",
        "twoGbMaxExtentSparse",
        "twoGbMaxExtentFlat",
    ] {
        let opt = format!("subformat={sub}");
        let path = create(
            &q,
            &dir,
            &format!("{sub}.vmdk"),
            "vmdk",
            &["-o", &opt],
            Some("1M"),
        );
        let err = rejection(&path);
        assert!(
            matches!(err, ImageError::UnsupportedFormat("vmdk descriptor file")),
            "{sub}: {err}"
        );
    }
}

#[test]
fn real_converted_stream_vmdk_is_accepted() {
    let Some(q) = real_qemu_img("real_converted_stream_vmdk_is_accepted") else {
        return;
    };
    let dir = TempDir::new("real-stream-convert");
    let raw = dir.path().join("in.raw");
    let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(&raw, &data).unwrap();
    let out = dir.path().join("out.vmdk");
    let status = std::process::Command::new(q.binary())
        .args([
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
        ])
        .arg(&raw)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let info = accepted_and_agrees(&q, &out, ImageFormat::Vmdk);
    assert_eq!(info.virtual_size, data.len() as u64);
}
