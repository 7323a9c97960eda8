//! Collections, deployment options and the choice `select` makes.

use super::*;

#[test]
fn collection_is_flattened_with_paths_and_inherited_eulas() {
    let env = parse_ok(&fixture("collection-lamp.ovf"));
    let ids: Vec<_> = env.systems.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["web", "db"]);
    let db = &env.systems[1];
    let path: Vec<_> = db
        .collections
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_deref()))
        .collect();
    assert_eq!(
        path,
        [("lamp", Some("LAMP stack")), ("backend", Some("Back end"))]
    );
    assert_eq!(
        db.eulas,
        [
            "Stack license: use at your own risk.",
            "Database license: no benchmarks may be published."
        ]
    );
    assert_eq!(
        env.systems[0].eulas,
        ["Stack license: use at your own risk."]
    );
}

#[test]
fn select_without_system_in_multi_system_package_lists_ids() {
    let env = parse_ok(&fixture("collection-lamp.ovf"));
    let e = select(&env, None, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "package holds systems web, db: choose one with --system"
    );
}

#[test]
fn select_unknown_system_lists_ids() {
    let env = parse_ok(&fixture("collection-lamp.ovf"));
    let e = select(&env, Some("cache"), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "package has no system 'cache'; it holds web, db"
    );
}

#[test]
fn select_system_imports_only_its_disks_os_disk_first() {
    let env = parse_ok(&fixture("collection-lamp.ovf"));
    let app = select(&env, Some("db"), None).unwrap();
    let disks: Vec<_> = app
        .disks
        .iter()
        .map(|d| (d.disk.id.as_str(), d.role, d.unit))
        .collect();
    // The data disk's item comes first in the document, but the system disk sits at
    // unit 0 and the data disk takes the next free unit.
    assert_eq!(
        disks,
        [("db-disk", Role::Os, 0), ("db-data", Role::Data, 1)]
    );
    assert_eq!(app.system.hardware.memory_mib, 8192);
    let networks: Vec<_> = app.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(networks, ["Backend"]);
}

#[test]
fn select_web_system_uses_both_networks_in_nic_order() {
    let env = parse_ok(&fixture("collection-lamp.ovf"));
    let app = select(&env, Some("web"), None).unwrap();
    let networks: Vec<_> = app.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(networks, ["Frontend", "Backend"]);
    assert_eq!(app.disks.len(), 1);
}

#[test]
fn deployment_default_option_applies_when_none_is_given() {
    let app = appliance(&fixture("deployment-options.ovf"));
    assert_eq!(app.deployment.as_deref(), Some("small"));
    let hw = &app.system.hardware;
    assert_eq!((hw.vcpus, hw.memory_mib), (2, 4096));
    assert_eq!(
        app.disks.len(),
        1,
        "the metrics disk belongs to 'large' only"
    );
    assert_eq!(app.system.properties[0].value.as_deref(), Some("7"));
}

#[test]
fn deployment_large_overrides_cpu_memory_disks_and_property_values() {
    let env = parse_ok(&fixture("deployment-options.ovf"));
    let app = select(&env, None, Some("large")).unwrap();
    let hw = &app.system.hardware;
    assert_eq!((hw.vcpus, hw.memory_mib), (8, 32 * 1024));
    let disks: Vec<_> = app
        .disks
        .iter()
        .map(|d| (d.disk.id.as_str(), d.role, d.file.is_some(), d.unit))
        .collect();
    assert_eq!(
        disks,
        [
            ("system", Role::Os, true, 0),
            ("metrics", Role::Data, false, 1)
        ]
    );
    assert_eq!(app.system.properties[0].value.as_deref(), Some("90"));
}

#[test]
fn deployment_options_are_listed_with_labels() {
    let env = parse_ok(&fixture("deployment-options.ovf"));
    let options: Vec<_> = env
        .deployment_options
        .iter()
        .map(|o| (o.id.as_str(), o.label.as_deref(), o.default))
        .collect();
    assert_eq!(
        options,
        [
            ("small", Some("Small"), true),
            ("large", Some("Large"), false)
        ]
    );
}

#[test]
fn deployment_unknown_option_lists_the_offered_ones() {
    let env = parse_ok(&fixture("deployment-options.ovf"));
    let e = select(&env, None, Some("huge")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "package has no deployment option 'huge'; it offers small, large"
    );
}

#[test]
fn deployment_without_default_takes_the_first_option() {
    let doc = edit(
        &fixture("deployment-options.ovf"),
        r#" ovf:default="true""#,
        "",
    );
    let doc = edit(
        &doc,
        r#"<Configuration ovf:id="large">"#,
        r#"<Configuration ovf:id="large" ovf:default="false">"#,
    );
    assert_eq!(appliance(&doc).deployment.as_deref(), Some("small"));
}

#[test]
fn deployment_two_defaults_are_rejected() {
    let doc = edit(
        &fixture("deployment-options.ovf"),
        r#"<Configuration ovf:id="large">"#,
        r#"<Configuration ovf:id="large" ovf:default="true">"#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "deployment options 'small' and 'large' are both marked default"
    );
}

#[test]
fn deployment_item_naming_undeclared_configuration_is_rejected() {
    let doc = edit(
        &fixture("deployment-options.ovf"),
        r#"<Item ovf:configuration="large">
        <rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits>"#,
        r#"<Item ovf:configuration="large medium">
        <rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits>"#,
    );
    let line = line_of(&doc, r#"<Item ovf:configuration="large medium">"#);
    assert_eq!(
        parse_err(&doc).to_string(),
        format!(
            "item at line {line} names configuration 'medium', which DeploymentOptionSection \
             does not declare"
        )
    );
}

#[test]
fn deployment_option_missing_memory_is_rejected_at_parse() {
    // Drop the 'small' memory item: 'small' would have no memory at all.
    let doc = edit(
        &fixture("deployment-options.ovf"),
        r#"<Item ovf:configuration="small">"#,
        r#"<Item ovf:configuration="large">"#,
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "system 'monitor', configuration 'small': 0 memory items apply; exactly one is needed"
    );
}

#[test]
fn deployment_given_for_package_without_options_is_rejected() {
    let env = parse_ok(&fixture("minimal.ovf"));
    let e = select(&env, None, Some("large")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "package declares no deployment options, so 'large' cannot be chosen"
    );
}

#[test]
fn select_by_id_in_single_system_package_works() {
    let env = parse_ok(&fixture("minimal.ovf"));
    let app = select(&env, Some("vm"), None).unwrap();
    assert_eq!(app.system.id, "vm");
    assert_eq!(app.deployment, None);
}

#[test]
fn os_disk_prefers_explicit_boot_order_over_position() {
    // oVirt style: the second disk carries BootOrder 1.
    let doc = minimal_with(
        r#"<Disk ovf:capacity="1""#,
        r#"<Disk ovf:capacity="2" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="boot" ovf:format="http://en.wikipedia.org/wiki/Byte"/>
    <Disk ovf:capacity="1""#,
    );
    let doc = edit(
        &doc,
        "</VirtualHardwareSection>",
        r#"<Item>
        <rasd:HostResource>ovf:/disk/boot</rasd:HostResource>
        <rasd:InstanceID>9</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
        <BootOrder>1</BootOrder>
      </Item>
    </VirtualHardwareSection>"#,
    );
    let app = appliance(&doc);
    let disks: Vec<_> = app
        .disks
        .iter()
        .map(|d| (d.disk.id.as_str(), d.role, d.unit))
        .collect();
    assert_eq!(disks, [("boot", Role::Os, 1), ("vmdisk1", Role::Data, 0)]);
}

#[test]
fn appliance_serialises_for_the_catalog() {
    let app = appliance(&fixture("ovf-2.0-storage-ethernet.ovf"));
    let json = serde_json::to_value(&app).unwrap();
    assert_eq!(json["version"], "2");
    assert_eq!(json["disks"][0]["role"], "os");
    assert_eq!(json["disks"][0]["disk"]["format"], "vmdk-stream-optimized");
    assert_eq!(json["system"]["hardware"]["firmware"], "bios");
}
