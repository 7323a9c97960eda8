//! Item 13: huge or invalid declared sizes, in the descriptor and in image headers, and a
//! capacity the pool cannot hold. All are refused while planning, before any volume exists.

use crate::fixtures::{
    edit_vmdk_descriptor, patch_be64, patch_le64, pattern, qemu_img, Disk, Trial, MIB, QCOW2, RAW,
    VMDK_SPARSE, VMDK_STREAM,
};

/// A package of one 1 MiB raw `disk.img` whose Disk is `disk(...)`.
fn raw_disk(tag: &str, disk: impl FnOnce(Disk) -> Disk) -> Trial {
    let t = Trial::new(tag);
    std::fs::write(t.file("disk.img"), pattern(MIB as usize, 2)).unwrap();
    t.package(&[disk(Disk::file("disk.img", RAW, MIB))]);
    t
}

// ---- declared capacity ----

#[test]
fn import_capacity_2_pow_63_minus_1_is_rejected() {
    let t = raw_disk("cap-max", |d| d.capacity("9223372036854775807", None));
    t.assert_rejected(&[
        "pkg.ovf: disk 'vmdisk1' has a capacity of 9223372036854775807 bytes, above the limit of \
         70368744177664 bytes",
    ]);
}

#[test]
fn import_capacity_not_a_number_is_rejected() {
    let t = raw_disk("cap-nan", |d| d.capacity("lots", None));
    t.assert_rejected(&[
        "pkg.ovf: capacity 'lots' (units 'byte') of disk 'vmdisk1' is not a valid size",
    ]);
}

#[test]
fn import_capacity_negative_is_rejected() {
    let t = raw_disk("cap-neg", |d| d.capacity("-1", None));
    t.assert_rejected(&[
        "pkg.ovf: capacity '-1' (units 'byte') of disk 'vmdisk1' is not a valid size",
    ]);
}

#[test]
fn import_capacity_units_byte_2_pow_60_overflow_is_rejected() {
    let t = raw_disk("cap-ovf", |d| d.capacity("16", Some("byte * 2^60")));
    t.assert_rejected(&[
        "pkg.ovf: capacity '16' (units 'byte * 2^60') of disk 'vmdisk1' is not a valid size",
    ]);
}

#[test]
fn import_capacity_garbage_units_are_rejected() {
    let t = raw_disk("cap-units", |d| {
        d.capacity("1", Some("furlongs per fortnight"))
    });
    t.assert_rejected(&[
        "pkg.ovf: capacity '1' (units 'furlongs per fortnight') of disk 'vmdisk1' is not a valid \
         size",
    ]);
}

#[test]
fn import_declared_size_disagreeing_with_file_is_rejected() {
    let t = raw_disk("size", |d| d.declared_size("1048577"));
    t.assert_rejected(&["disk.img is 1048576 bytes but its ovf:size declares 1048577"]);
}

// ---- virtual sizes in image headers ----

#[test]
fn import_qcow2_virtual_size_1_pib_in_tiny_file_is_rejected() {
    let t = Trial::new("qcow2-pib");
    qemu_img(&t.pkg, &["create", "-q", "-f", "qcow2", "disk.qcow2", "1M"]);
    patch_be64(&t.file("disk.qcow2"), 24, 1 << 50);
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    t.assert_rejected(&["disk.qcow2", "qcow2 header", "1125899906842624"]);
}

#[test]
fn import_qcow2_virtual_size_u64_max_is_rejected() {
    let t = Trial::new("qcow2-max");
    qemu_img(&t.pkg, &["create", "-q", "-f", "qcow2", "disk.qcow2", "1M"]);
    patch_be64(&t.file("disk.qcow2"), 24, u64::MAX);
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    t.assert_rejected(&["disk.qcow2", "virtual size 18446744073709551615 is too big"]);
}

#[test]
fn import_vmdk_capacity_1_pib_in_tiny_file_is_rejected() {
    let t = Trial::new("vmdk-pib");
    qemu_img(&t.pkg, &["create", "-q", "-f", "vmdk", "disk.vmdk", "1M"]);
    let sectors: u64 = 1 << 41;
    patch_le64(&t.file("disk.vmdk"), 12, sectors);
    edit_vmdk_descriptor(&t.file("disk.vmdk"), |text| {
        text.replace("RW 2048 SPARSE", &format!("RW {sectors} SPARSE"))
    });
    t.package(&[Disk::file("disk.vmdk", VMDK_SPARSE, MIB)]);
    t.assert_rejected(&["disk.vmdk", "truncated", "grain directory"]);
}

#[test]
fn import_vmdk_capacity_above_ovf_capacity_is_rejected() {
    let t = Trial::new("vmdk-cap");
    let args = [
        "create",
        "-q",
        "-f",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
    ];
    qemu_img(&t.pkg, &[&args[..], &["disk.vmdk", "2M"]].concat());
    t.package(&[Disk::file("disk.vmdk", VMDK_STREAM, MIB)]);
    t.assert_rejected(&[
        "disk.vmdk has a virtual size of 2097152 bytes, more than its declared capacity of \
         1048576",
    ]);
}

#[test]
fn import_qcow2_virtual_size_above_ovf_capacity_is_rejected() {
    let t = Trial::new("qcow2-cap");
    qemu_img(&t.pkg, &["create", "-q", "-f", "qcow2", "disk.qcow2", "2M"]);
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    t.assert_rejected(&[
        "disk.qcow2 has a virtual size of 2097152 bytes, more than its declared capacity of \
         1048576",
    ]);
}

// ---- the pool ----

#[test]
fn import_capacity_above_pool_free_space_fails_before_writing() {
    let t = Trial::new("nospace");
    // 16 TiB: within vmd's limit, far above the test pool's free space.
    t.package(&[Disk::blank(16 << 40)]);
    let out = t.import(&[]);
    let pool = format!("pool {} has", t.env.pool);
    t.assert_failed_clean(&out, 1, &[&pool, "bytes free", "needs up to"]);
    assert!(t.stub.calls().is_empty(), "{:?}", t.stub.calls());
}
