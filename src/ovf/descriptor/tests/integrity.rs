//! Referential integrity, required sections, and hardware that cannot be resolved
//! (SECURITY.md checklist item 22): each is a deterministic reject naming the problem.

use super::*;

const SECOND_DISK: &str = r#"<Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk2" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>"#;

#[test]
fn minimal_descriptor_parses() {
    let app = appliance(&fixture("minimal.ovf"));
    assert_eq!(app.disks.len(), 1);
    assert_eq!(app.system.hardware.memory_mib, 512);
}

#[test]
fn disk_naming_missing_file_is_rejected() {
    let doc = minimal_with(r#"ovf:fileRef="file1""#, r#"ovf:fileRef="nope""#);
    assert_eq!(
        parse_err(&doc).to_string(),
        "disk 'vmdisk1' names file 'nope', which References does not list"
    );
}

#[test]
fn two_disks_on_one_file_are_rejected() {
    let doc = minimal_with("</DiskSection>", SECOND_DISK);
    assert_eq!(
        parse_err(&doc).to_string(),
        "disks 'vmdisk1' and 'vmdisk2' both use file 'file1'"
    );
}

#[test]
fn host_resource_naming_missing_disk_is_rejected() {
    let doc = minimal_with("ovf:/disk/vmdisk1", "ovf:/disk/ghost");
    let line = line_of(&doc, "ovf:/disk/ghost") - 3;
    assert_eq!(
        parse_err(&doc).to_string(),
        format!(
            "system 'vm': item at line {line} names disk 'ghost', which DiskSection does not list"
        )
    );
}

#[test]
fn disk_drive_naming_a_file_is_rejected() {
    let doc = minimal_with("ovf:/disk/vmdisk1", "ovf:/file/file1");
    let e = parse_err(&doc).to_string();
    assert!(
        e.contains("has host resource 'ovf:/file/file1', which vmd cannot use for a disk drive"),
        "{e}"
    );
}

#[test]
fn cdrom_naming_missing_file_is_rejected() {
    let doc = minimal_with(
        "</VirtualHardwareSection>",
        r#"<Item><rasd:HostResource>ovf:/file/tools-iso</rasd:HostResource><rasd:InstanceID>8</rasd:InstanceID><rasd:ResourceType>15</rasd:ResourceType></Item>
    </VirtualHardwareSection>"#,
    );
    let e = parse_err(&doc).to_string();
    assert!(
        e.ends_with("names file 'tools-iso', which References does not list"),
        "{e}"
    );
}

#[test]
fn disk_item_without_host_resource_is_rejected() {
    let doc = minimal_with(
        "<rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>",
        "",
    );
    assert!(parse_err(&doc).to_string().ends_with("has no HostResource"));
}

#[test]
fn zero_systems_are_rejected() {
    let doc = fixture("minimal.ovf");
    let start = doc.find("<VirtualSystem").unwrap();
    let end = doc.find("</VirtualSystem>").unwrap() + "</VirtualSystem>".len();
    let doc = format!("{}{}", &doc[..start], &doc[end..]);
    assert_eq!(
        parse_err(&doc).to_string(),
        "ovf descriptor holds no VirtualSystem"
    );
}

#[test]
fn unknown_required_section_is_rejected_with_its_namespace() {
    let doc = minimal_with(
        "<NetworkSection>",
        r#"<x:LicensingSection xmlns:x="http://example.com/ovf/licensing" ovf:required="true"><Info>Node-locked</Info></x:LicensingSection>
  <NetworkSection>"#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "unsupported required section {http://example.com/ovf/licensing}LicensingSection"
    );
}

#[test]
fn unknown_optional_or_unmarked_sections_are_ignored() {
    for marker in [r#" ovf:required="false""#, ""] {
        let doc = minimal_with(
            "<NetworkSection>",
            &format!(
                r#"<x:LicensingSection xmlns:x="http://example.com/ovf/licensing"{marker}><Info>i</Info></x:LicensingSection>
  <NetworkSection>"#
            ),
        );
        assert_eq!(parse_ok(&doc).systems.len(), 1, "marker {marker:?}");
    }
}

#[test]
fn unknown_required_ovf_section_in_system_is_rejected() {
    let doc = minimal_with(
        "<Name>vm</Name>",
        r#"<Name>vm</Name>
    <TeleportSection ovf:required="true"><Info>from a future OVF</Info></TeleportSection>"#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "unsupported required section {http://schemas.dmtf.org/ovf/envelope/1}TeleportSection"
    );
}

#[test]
fn unknown_required_vendor_element_in_hardware_is_rejected() {
    let doc = minimal_with(
        "</VirtualHardwareSection>",
        r#"<vmw:Config xmlns:vmw="http://www.vmware.com/schema/ovf" ovf:required="true" vmw:key="sched.cpu.latencySensitivity" vmw:value="high"/>
    </VirtualHardwareSection>"#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "unsupported required section {http://www.vmware.com/schema/ovf}Config"
    );
}

#[test]
fn known_section_marked_required_is_accepted() {
    let doc = minimal_with(
        "<Name>vm</Name>",
        r#"<Name>vm</Name>
    <AnnotationSection ovf:required="true"><Info>i</Info><Annotation>kept</Annotation></AnnotationSection>"#,
    );
    assert_eq!(
        parse_ok(&doc).systems[0].annotation.as_deref(),
        Some("kept")
    );
}

#[test]
fn required_attribute_with_garbage_value_is_rejected() {
    let doc = minimal_with(
        "<NetworkSection>",
        r#"<x:S xmlns:x="urn:x" ovf:required="maybe"/><NetworkSection>"#,
    );
    let e = parse_err(&doc).to_string();
    assert!(
        e.contains("is 'maybe', which is not a valid boolean"),
        "{e}"
    );
}

#[test]
fn encryption_section_is_rejected() {
    let doc = minimal_with(
        "<NetworkSection>",
        "<EncryptionSection><Info>e</Info></EncryptionSection><NetworkSection>",
    );
    assert!(parse_err(&doc)
        .to_string()
        .starts_with("ovf descriptor has an EncryptionSection"));
}

#[test]
fn root_that_is_not_an_envelope_is_rejected() {
    let e = parse_err(r#"<domain type="kvm"><name>x</name></domain>"#);
    assert_eq!(
        e.to_string(),
        "ovf descriptor root is <domain>, not an OVF 0.9, 1.x or 2.x Envelope"
    );
    let e = parse_err(r#"<Envelope xmlns="urn:not-ovf"/>"#);
    assert_eq!(
        e.to_string(),
        "ovf descriptor root is <{urn:not-ovf}Envelope>, not an OVF 0.9, 1.x or 2.x Envelope"
    );
}

#[test]
fn duplicate_ids_are_rejected() {
    let doc = minimal_with(
        "</References>",
        r#"<File ovf:href="other.vmdk" ovf:id="file1"/></References>"#,
    );
    assert!(parse_err(&doc)
        .to_string()
        .starts_with("file 'file1' is declared twice"));
    let doc = minimal_with("</DiskSection>", &SECOND_DISK.replace("vmdisk2", "vmdisk1"));
    assert!(parse_err(&doc)
        .to_string()
        .starts_with("disk 'vmdisk1' is declared twice"));
}

#[test]
fn duplicate_system_ids_are_rejected() {
    let doc = fixture("collection-lamp.ovf").replace(r#"ovf:id="db""#, r#"ovf:id="web""#);
    assert!(parse_err(&doc)
        .to_string()
        .starts_with("virtual system 'web' is declared twice"));
}

#[test]
fn two_files_with_one_href_are_rejected() {
    let doc = minimal_with(
        "</References>",
        r#"<File ovf:href="disk1.vmdk" ovf:id="file2"/></References>"#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "files 'file1' and 'file2' both have href 'disk1.vmdk'"
    );
}

#[test]
fn capacity_overflow_is_rejected() {
    let doc = minimal_with(
        r#"ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30""#,
        r#"ovf:capacity="16" ovf:capacityAllocationUnits="byte * 2^60""#,
    );
    let e = parse_err(&doc);
    assert_eq!(
        e.to_string(),
        "capacity '16' (units 'byte * 2^60') of disk 'vmdisk1' is not a valid size"
    );
    assert!(chain(&e).ends_with("overflows 64 bits"), "{}", chain(&e));
}

#[test]
fn capacity_that_is_negative_or_a_property_reference_is_rejected() {
    for bad in ["-1", "${disk.size}", "1e9", ""] {
        let doc = minimal_with(r#"ovf:capacity="1""#, &format!(r#"ovf:capacity="{bad}""#));
        let e = chain(&parse_err(&doc));
        assert!(
            e.contains("disk 'vmdisk1'") || e.contains("has no ovf:capacity"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn capacity_with_garbage_units_is_rejected() {
    let doc = minimal_with("byte * 2^30", "furlongs * 2^30");
    let e = parse_err(&doc);
    assert_eq!(
        e.to_string(),
        "capacity '1' (units 'furlongs * 2^30') of disk 'vmdisk1' is not a valid size"
    );
    assert!(
        chain(&e).len() > e.to_string().len(),
        "the units error is the cause"
    );
}

#[test]
fn zero_capacity_is_rejected() {
    let doc = minimal_with(r#"ovf:capacity="1""#, r#"ovf:capacity="0""#);
    assert!(parse_err(&doc)
        .to_string()
        .starts_with("capacity of disk 'vmdisk1' is 0"));
}

#[test]
fn delta_disk_is_rejected() {
    let doc = minimal_with(
        r#"ovf:diskId="vmdisk1""#,
        r#"ovf:diskId="vmdisk1" ovf:parentRef="base""#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "disk 'vmdisk1' is a delta of disk 'base' (ovf:parentRef); disk chains are not supported"
    );
}

#[test]
fn unsupported_disk_format_is_rejected() {
    let doc = minimal_with(
        "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized",
        "http://www.vmware.com/interfaces/specifications/vmdk.html#monolithicFlat",
    );
    assert!(parse_err(&doc)
        .to_string()
        .ends_with("#monolithicFlat', which vmd cannot import"));
}

#[test]
fn unsupported_compression_is_rejected() {
    let doc = minimal_with(
        r#"ovf:id="file1""#,
        r#"ovf:id="file1" ovf:compression="bzip2""#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "file 'file1' uses compression 'bzip2'; only gzip is supported"
    );
}

#[test]
fn chunked_file_reports_chunk_size() {
    let doc = minimal_with(
        r#"ovf:id="file1""#,
        r#"ovf:id="file1" ovf:chunkSize="2147483648" ovf:size="4882023564""#,
    );
    let file = &parse_ok(&doc).files[0];
    assert_eq!(
        (file.chunk_size, file.size),
        (Some(2_147_483_648), Some(4_882_023_564))
    );
    let doc = minimal_with(r#"ovf:id="file1""#, r#"ovf:id="file1" ovf:chunkSize="0""#);
    assert!(parse_err(&doc).to_string().contains("chunk size"));
}

#[test]
fn too_many_deployment_options_are_rejected() {
    let options: String = (0..65)
        .map(|i| format!(r#"<Configuration ovf:id="c{i}"/>"#))
        .collect();
    let doc = minimal_with(
        "<VirtualSystem",
        &format!("<DeploymentOptionSection><Info>i</Info>{options}</DeploymentOptionSection><VirtualSystem"),
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "ovf descriptor declares more than 64 deployment options"
    );
}

#[test]
fn vendor_attribute_named_required_without_ovf_prefix_is_not_the_ovf_rule() {
    let doc = minimal_with(
        "<NetworkSection>",
        r#"<x:Policy xmlns:x="urn:x" required="true"/><NetworkSection>"#,
    );
    assert_eq!(parse_ok(&doc).systems.len(), 1);
}
