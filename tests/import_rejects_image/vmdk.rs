//! Item 8: VMDK descriptors that name host files or layouts other than one self-contained
//! sparse extent, and sparse headers whose descriptor or footer QEMU and vmd could read
//! differently. Only monolithicSparse and streamOptimized pass.

use crate::fixtures::{
    edit_vmdk_descriptor, patch_le64, qemu_img, Disk, Trial, MIB, VMDK_SPARSE, VMDK_STREAM,
};

/// A package of one 1 MiB monolithicSparse `disk.vmdk` from `qemu-img create`, whose
/// embedded descriptor is rewritten by `edit`.
fn sparse_with_descriptor(tag: &str, edit: impl FnOnce(&str) -> String) -> Trial {
    let t = Trial::new(tag);
    qemu_img(&t.pkg, &["create", "-q", "-f", "vmdk", "disk.vmdk", "1M"]);
    edit_vmdk_descriptor(&t.file("disk.vmdk"), |text| {
        let new = edit(text);
        assert_ne!(new, text, "the edit changed nothing");
        new
    });
    t.package(&[Disk::file("disk.vmdk", VMDK_SPARSE, MIB)]);
    t
}

fn with_create_type(tag: &str, create_type: &str) -> Trial {
    sparse_with_descriptor(tag, |text| {
        text.replace(
            r#"createType="monolithicSparse""#,
            &format!(r#"createType="{create_type}""#),
        )
    })
}

#[test]
fn import_vmdk_descriptor_file_with_flat_extent_etc_shadow_is_rejected() {
    let t = Trial::new("vd-shadow");
    let text = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
                createType=\"monolithicFlat\"\n\nRW 2048 FLAT \"/etc/shadow\" 0\n";
    std::fs::write(t.file("disk.vmdk"), text).unwrap();
    t.package(&[Disk::file("disk.vmdk", VMDK_STREAM, MIB)]);
    t.assert_rejected(&["disk.vmdk", "vmdk descriptor file images are not supported"]);
}

#[test]
fn import_vmdk_qemu_made_monolithic_flat_descriptor_is_rejected() {
    let t = Trial::new("vd-flat");
    let args = [
        "create",
        "-q",
        "-f",
        "vmdk",
        "-o",
        "subformat=monolithicFlat",
    ];
    qemu_img(&t.pkg, &[&args[..], &["disk.vmdk", "1M"]].concat());
    assert!(t.file("disk-flat.vmdk").is_file());
    t.package(&[Disk::file("disk.vmdk", VMDK_SPARSE, MIB)]);
    t.assert_rejected(&["disk.vmdk", "vmdk descriptor file images are not supported"]);
}

#[test]
fn import_vmdk_create_type_monolithic_flat_is_rejected() {
    let t = with_create_type("ct-mflat", "monolithicFlat");
    t.assert_rejected(&["disk.vmdk", r#"createType "monolithicFlat" is not allowed"#]);
}

#[test]
fn import_vmdk_create_type_vmfs_is_rejected() {
    let t = with_create_type("ct-vmfs", "vmfs");
    t.assert_rejected(&["disk.vmdk", r#"createType "vmfs" is not allowed"#]);
}

#[test]
fn import_vmdk_create_type_two_gb_max_extent_sparse_is_rejected() {
    let t = with_create_type("ct-2gbs", "twoGbMaxExtentSparse");
    t.assert_rejected(&[
        "disk.vmdk",
        r#"createType "twoGbMaxExtentSparse" is not allowed"#,
    ]);
}

#[test]
fn import_vmdk_create_type_two_gb_max_extent_flat_is_rejected() {
    let t = with_create_type("ct-2gbf", "twoGbMaxExtentFlat");
    t.assert_rejected(&[
        "disk.vmdk",
        r#"createType "twoGbMaxExtentFlat" is not allowed"#,
    ]);
}

#[test]
fn import_vmdk_embedded_flat_extent_etc_shadow_is_rejected() {
    let t = sparse_with_descriptor("ext-shadow", |text| {
        text.replace(
            r#"RW 2048 SPARSE "disk.vmdk""#,
            r#"RW 2048 FLAT "/etc/shadow" 0"#,
        )
    });
    t.assert_rejected(&["disk.vmdk", "descriptor line", r#"extent type "FLAT""#]);
}

#[test]
fn import_vmdk_parent_file_name_hint_is_rejected() {
    let t = sparse_with_descriptor("parent-hint", |text| {
        format!("{text}parentFileNameHint=\"/etc/shadow\"\n")
    });
    t.assert_rejected(&["disk.vmdk", "has a backing file", "parentFileNameHint"]);
}

#[test]
fn import_vmdk_parent_cid_set_is_rejected() {
    let t = sparse_with_descriptor("parent-cid", |text| {
        text.replace("parentCID=ffffffff", "parentCID=12345678")
    });
    t.assert_rejected(&["disk.vmdk", "has a backing file", "parentCID"]);
}

#[test]
fn import_vmdk_descriptor_not_at_sector_1_is_rejected() {
    let t = Trial::new("desc-off");
    qemu_img(&t.pkg, &["create", "-q", "-f", "vmdk", "disk.vmdk", "1M"]);
    patch_le64(&t.file("disk.vmdk"), 28, 2);
    t.package(&[Disk::file("disk.vmdk", VMDK_SPARSE, MIB)]);
    t.assert_rejected(&["disk.vmdk", "descriptorOffset is sector 2"]);
}

#[test]
fn import_vmdk_descriptor_over_1_mib_is_rejected() {
    let t = Trial::new("desc-big");
    qemu_img(&t.pkg, &["create", "-q", "-f", "vmdk", "disk.vmdk", "1M"]);
    patch_le64(&t.file("disk.vmdk"), 36, 4096);
    t.package(&[Disk::file("disk.vmdk", VMDK_SPARSE, MIB)]);
    t.assert_rejected(&["disk.vmdk", "descriptorSize 4096 sectors is outside"]);
}

#[test]
fn import_vmdk_unknown_descriptor_line_is_rejected() {
    let t = sparse_with_descriptor("desc-line", |text| {
        format!("{text}this is no descriptor line\n")
    });
    t.assert_rejected(&[
        "disk.vmdk",
        "vmdk descriptor line",
        "is not a comment, key=value or extent line",
    ]);
}

#[test]
fn import_vmdk_descriptor_without_extent_is_rejected() {
    let t = sparse_with_descriptor("desc-noext", |text| {
        text.replace("RW 2048 SPARSE \"disk.vmdk\"\n", "")
    });
    t.assert_rejected(&["disk.vmdk", "descriptor has no extent line"]);
}

#[test]
fn import_vmdk_descriptor_with_nul_byte_is_rejected() {
    let t = sparse_with_descriptor("desc-nul", |text| {
        text.replacen("version=1\n", "version=1\n\0", 1)
    });
    t.assert_rejected(&["disk.vmdk", "data after the descriptor text"]);
}

#[test]
fn import_vmdk_gd_at_end_without_valid_footer_is_rejected() {
    let t = Trial::new("footer");
    let args = [
        "create",
        "-q",
        "-f",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
    ];
    qemu_img(&t.pkg, &[&args[..], &["disk.vmdk", "1M"]].concat());
    patch_le64(&t.file("disk.vmdk"), 56, u64::MAX);
    t.package(&[Disk::file("disk.vmdk", VMDK_STREAM, MIB)]);
    t.assert_rejected(&["disk.vmdk", "gdOffset is GD_AT_END", "footer"]);
}
