//! Item 42 (SECURITY.md): the space an import may take comes from what the image really
//! maps, never from `ovf:populatedSize`, and the conversion stops at that bound. Item 44: a
//! stored disk far larger than its capacity is refused before it is read.

use std::path::Path;

use crate::fixtures::{patch_be64, pattern, qemu_img, Disk, Trial, MIB, QCOW2, VMDK_STREAM};

const GIB: u64 = 1 << 30;

fn be64(b: &[u8], at: u64) -> u64 {
    u64::from_be_bytes(b[at as usize..at as usize + 8].try_into().unwrap())
}

/// `disk.qcow2` of `capacity` bytes mapping its first 64 KiB cluster to data, made by
/// `qemu-img convert` from a sparse raw file.
fn one_cluster_qcow2(t: &Trial, capacity: u64) -> std::path::PathBuf {
    let raw = t.env.dir().join("seed.raw");
    std::fs::write(&raw, pattern(64 << 10, 42)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&raw)
        .unwrap()
        .set_len(capacity)
        .unwrap();
    let disk = t.file("disk.qcow2");
    qemu_img(
        &t.pkg,
        &[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "qcow2",
            raw.to_str().unwrap(),
            "disk.qcow2",
        ],
    );
    std::fs::remove_file(&raw).unwrap();
    disk
}

/// Points every L2 entry of the first L2 table at the one data cluster (the 400 KB image
/// that claims a whole table of data).
fn share_first_cluster(disk: &Path) {
    let b = std::fs::read(disk).unwrap();
    let l1 = be64(&b, 40);
    let l2 = be64(&b, l1) & 0x00ff_ffff_ffff_fe00;
    let entry = be64(&b, l2);
    assert_ne!(entry, 0, "the seed maps its first cluster");
    for j in 1..8192 {
        patch_be64(disk, l2 + 8 * j, entry);
    }
}

// SECURITY.md item 42: a qcow2 whose L2 entries all point at one cluster, declared
// populatedSize="0", is refused while planning, naming the file and the reason.
#[test]
fn import_qcow2_shared_cluster_is_refused_and_writes_nothing() {
    let t = Trial::new("shared-cluster");
    let disk = one_cluster_qcow2(&t, GIB);
    share_first_cluster(&disk);
    assert!(std::fs::metadata(&disk).unwrap().len() < MIB);
    t.package(&[Disk::file("disk.qcow2", QCOW2, GIB).populated(0)]);
    t.assert_rejected(&[
        "disk.qcow2",
        "is mapped more than once",
        "shared clusters are refused",
    ]);
}

// SECURITY.md item 42: the plan counts what the image maps, not what populatedSize says.
#[test]
fn import_dry_run_counts_mapped_bytes_not_populated_size() {
    let t = Trial::new("mapped-bytes");
    let raw = t.env.dir().join("seed.raw");
    std::fs::write(&raw, pattern(16 * MIB as usize, 7)).unwrap();
    qemu_img(
        &t.pkg,
        &[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "qcow2",
            raw.to_str().unwrap(),
            "disk.qcow2",
        ],
    );
    t.package(&[Disk::file("disk.qcow2", QCOW2, 16 * MIB).populated(0)]);
    let out = t.import(&["--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["disks"][0]["max_data_bytes"], 16 * MIB);
    // The volume's data and the staged copy: at least twice the mapped bytes.
    assert!(
        plan["required_bytes"].as_u64().unwrap() >= 32 * MIB,
        "{plan}"
    );
    assert!(t.pool_files().is_empty());
    assert!(t.env.catalog().is_empty());
}

// SECURITY.md item 42: a conversion that writes past the bound is stopped by the kernel's
// file-size limit, reported as a rejection, and its volume and staged copy are removed.
#[test]
fn import_qcow2_conversion_past_its_bound_is_stopped_and_leaves_nothing() {
    let mut t = Trial::new("convert-cap");
    one_cluster_qcow2(&t, 64 * MIB);
    // A qemu-img that appends 256 MiB to its target instead of converting; like the real
    // one it ignores SIGXFSZ, so the write fails with EFBIG.
    t.stub_body(
        "if [ \"$1\" = convert ]; then\n\
         set -o pipefail\ntrap '' XFSZ\n\
         head -c 268435456 /dev/zero | tr '\\0' x >> \"${@: -1}\"\n\
         exit $?\nfi\nexec /usr/bin/qemu-img \"$@\"",
    );
    t.package(&[Disk::file("disk.qcow2", QCOW2, 64 * MIB).populated(0)]);
    let out = t.import(&[]);
    t.assert_failed_clean(
        &out,
        3,
        &["qemu-img convert was stopped", "more than the image maps"],
    );
}

// SECURITY.md item 44: a streamOptimized VMDK followed by a sparse gigabyte of zeros is
// refused before any of it is read, naming the file.
#[test]
fn import_vmdk_with_a_gigabyte_of_padding_is_refused_promptly() {
    let t = Trial::new("vmdk-tail");
    let raw = t.env.dir().join("seed.raw");
    std::fs::write(&raw, pattern(MIB as usize, 9)).unwrap();
    qemu_img(
        &t.pkg,
        &[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            raw.to_str().unwrap(),
            "disk.vmdk",
        ],
    );
    let disk = t.file("disk.vmdk");
    let len = std::fs::metadata(&disk).unwrap().len();
    let f = std::fs::File::options().write(true).open(&disk).unwrap();
    f.set_len(len + GIB).unwrap();
    t.package(&[Disk::file("disk.vmdk", VMDK_STREAM, MIB)]);
    let started = std::time::Instant::now();
    t.assert_rejected(&["disk.vmdk is", "bytes stored, more than the"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
