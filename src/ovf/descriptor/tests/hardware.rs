//! Hardware that cannot be resolved into a VM: each is a deterministic reject at parse
//! time, naming the system, the item line and the problem.

use super::*;

#[test]
fn missing_processor_item_is_rejected() {
    let doc = minimal_with(
        "<rasd:ResourceType>3</rasd:ResourceType>",
        "<rasd:ResourceType>1</rasd:ResourceType>",
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "system 'vm': 0 processor items apply; exactly one is needed"
    );
}

#[test]
fn two_processor_items_are_rejected() {
    let doc = minimal_with(
        "</VirtualHardwareSection>",
        r#"<Item><rasd:InstanceID>77</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
    </VirtualHardwareSection>"#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "system 'vm': 2 processor items apply; exactly one is needed"
    );
}

#[test]
fn vcpu_count_out_of_range_is_rejected() {
    // 256: one past what the default `pc` machine starts with (vmd::limits::MAX_VCPUS).
    for (count, expected) in [
        ("0", "vcpu count is 0"),
        ("256", "vcpu count is 256"),
        ("5000", "vcpu count is 5000"),
    ] {
        let doc = minimal_with(
            "<rasd:VirtualQuantity>1</rasd:VirtualQuantity>",
            &format!("<rasd:VirtualQuantity>{count}</rasd:VirtualQuantity>"),
        );
        let e = parse_err(&doc).to_string();
        assert!(
            e.starts_with(&format!(
                "system 'vm': {expected}, outside the supported range 1..=255"
            )),
            "{e}"
        );
    }
}

#[test]
fn memory_in_unknown_units_is_rejected() {
    let doc = minimal_with(
        "<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>",
        "<rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>",
    );
    let e = parse_err(&doc);
    assert_eq!(
        e.to_string(),
        "system 'vm': memory '512' in units 'hertz * 10^6' is not a valid size"
    );
    assert!(
        chain(&e).len() > e.to_string().len(),
        "the units error is the cause"
    );
}

#[test]
fn memory_beyond_limit_is_rejected() {
    let doc = minimal_with(
        "<rasd:VirtualQuantity>512</rasd:VirtualQuantity>",
        "<rasd:VirtualQuantity>18446744073709551615</rasd:VirtualQuantity>",
    );
    assert!(chain(&parse_err(&doc)).contains("overflows 64 bits"));
    let doc = minimal_with(
        "byte * 2^20</rasd:AllocationUnits>",
        "byte * 2^40</rasd:AllocationUnits>",
    );
    assert!(parse_err(&doc)
        .to_string()
        .starts_with("system 'vm': memory in MiB is 536870912, outside"));
}

#[test]
fn memory_in_gigabytes_and_odd_bytes_rounds_up_to_mib() {
    let doc = minimal_with(
        "byte * 2^20</rasd:AllocationUnits>",
        "GigaBytes</rasd:AllocationUnits>",
    );
    assert_eq!(appliance(&doc).system.hardware.memory_mib, 512 * 1024);
    let doc = minimal_with(
        "byte * 2^20</rasd:AllocationUnits>",
        "byte * 2^10</rasd:AllocationUnits>",
    );
    assert_eq!(appliance(&doc).system.hardware.memory_mib, 1);
}

#[test]
fn invalid_mac_address_is_rejected() {
    let doc = minimal_with(
        "<rasd:Connection>net</rasd:Connection>",
        "<rasd:Connection>net</rasd:Connection><rasd:Address>00:50:56:zz:00:01</rasd:Address>",
    );
    let e = parse_err(&doc).to_string();
    assert!(
        e.contains("MAC address at line")
            && e.contains("'00:50:56:zz:00:01', which is not a valid MAC address"),
        "{e}"
    );
}

#[test]
fn disk_on_unknown_controller_is_rejected() {
    let doc = minimal_with(
        "<rasd:Parent>3</rasd:Parent>",
        "<rasd:Parent>99</rasd:Parent>",
    );
    let e = parse_err(&doc).to_string();
    assert!(
        e.ends_with("is attached to '99', which is not a storage controller item"),
        "{e}"
    );
}

#[test]
fn two_devices_at_one_unit_are_rejected() {
    let doc = minimal_with(
        "</VirtualHardwareSection>",
        r#"<Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:InstanceID>8</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>15</rasd:ResourceType></Item>
    </VirtualHardwareSection>"#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "system 'vm': two devices sit at unit 0 of controller '3'"
    );
}

#[test]
fn disk_attached_twice_is_rejected() {
    let doc = minimal_with(
        "</VirtualHardwareSection>",
        r#"<Item><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>8</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>"#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "system 'vm': disk 'vmdisk1' is attached twice"
    );
}

#[test]
fn items_sharing_instance_id_with_different_types_are_rejected() {
    let doc = minimal_with(
        "<rasd:InstanceID>5</rasd:InstanceID>",
        "<rasd:InstanceID>4</rasd:InstanceID>",
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "system 'vm': items with InstanceID '4' disagree on their resource type"
    );
}

#[test]
fn item_without_resource_type_is_rejected() {
    let doc = minimal_with("<rasd:ResourceType>10</rasd:ResourceType>", "");
    assert!(parse_err(&doc).to_string().ends_with("has no ResourceType"));
}

#[test]
fn system_without_hardware_section_is_rejected() {
    let doc = fixture("minimal.ovf");
    let start = doc.find("<VirtualHardwareSection>").unwrap();
    let end = doc.find("</VirtualHardwareSection>").unwrap() + "</VirtualHardwareSection>".len();
    let doc = format!("{}{}", &doc[..start], &doc[end..]);
    let line = line_of(&doc, "<VirtualSystem");
    assert_eq!(
        parse_err(&doc).to_string(),
        format!("<VirtualSystem> at line {line} has no VirtualHardwareSection")
    );
}

#[test]
fn controller_sharing_instance_id_is_rejected() {
    let doc = minimal_with(
        "</VirtualHardwareSection>",
        r#"<Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>6</rasd:ResourceType><rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType></Item>
    </VirtualHardwareSection>"#,
    );
    // Same InstanceID and type: DSP0243 merges them into one controller, the later
    // subtype winning, rather than declaring two.
    let app = appliance(&doc);
    assert_eq!(
        app.system.hardware.controllers[0].kind,
        ControllerKind::Scsi {
            subtype: Some("VirtualSCSI".to_owned())
        }
    );
}
