//! One fixture per producer: what a user would check after import (sizes, devices, buses,
//! firmware, networks) comes out right whatever prefixes and quirks the producer used.

use super::*;

const GIB: u64 = 1 << 30;

#[test]
fn vmware_bios_descriptor_yields_disks_files_and_hardware() {
    let env = parse_ok(&fixture("vmware-ovftool-bios.ovf"));
    assert_eq!(env.version, OvfVersion::V1);
    let hrefs: Vec<_> = env
        .files
        .iter()
        .map(|f| (f.href.as_str(), f.size))
        .collect();
    assert_eq!(
        hrefs,
        [
            ("ubuntu-22.04-server-disk1.vmdk", Some(1_153_862_144)),
            ("ubuntu-22.04-server-disk2.vmdk", Some(68_096))
        ]
    );
    assert_eq!(env.disks[0].capacity_bytes, 20 * GIB);
    assert_eq!(env.disks[1].capacity_bytes, 100 * GIB);
    assert_eq!(env.disks[0].format, DiskFormat::VmdkStreamOptimized);
    assert_eq!(env.disks[0].populated_size, Some(3_892_314_112));

    let app = select(&env, None, None).unwrap();
    let hw = &app.system.hardware;
    assert_eq!(
        (hw.vcpus, hw.cores_per_socket, hw.memory_mib),
        (4, Some(2), 4096)
    );
    assert_eq!(hw.firmware, Firmware::Bios);
    assert_eq!(hw.virtual_system_type.as_deref(), Some("vmx-13"));
    let kinds: Vec<_> = hw
        .controllers
        .iter()
        .map(|c| (c.instance_id.as_str(), &c.kind))
        .collect();
    let pvscsi = ControllerKind::Scsi {
        subtype: Some("VirtualSCSI".to_owned()),
    };
    assert_eq!(
        kinds,
        [
            ("3", &pvscsi),
            ("4", &ControllerKind::Ide),
            ("5", &ControllerKind::Ide)
        ]
    );
    let disks: Vec<_> = app
        .disks
        .iter()
        .map(|d| (d.disk.id.as_str(), d.role, d.bus, d.unit))
        .collect();
    assert_eq!(
        disks,
        [
            ("vmdisk1", Role::Os, Bus::Scsi, 0),
            ("vmdisk2", Role::Data, Bus::Scsi, 1)
        ]
    );
    assert_eq!(
        app.disks[0].file.as_ref().map(|f| f.id.as_str()),
        Some("file1")
    );
    assert_eq!(
        hw.cdroms,
        [CdromAttachment {
            controller: Some("4".to_owned()),
            bus: Bus::Ide,
            unit: 0,
            file: None
        }]
    );
    assert_eq!(
        hw.nics,
        [Nic {
            network: Some("VM Network".to_owned()),
            model: Some("VmxNet3".to_owned()),
            mac: None
        }]
    );
    assert_eq!(
        app.networks[0].description.as_deref(),
        Some("The VM Network network")
    );
    let os = app.system.os.as_ref().unwrap();
    assert_eq!(
        (os.id, os.vmw_os_type.as_deref()),
        (Some(94), Some("ubuntu64Guest"))
    );
    assert_eq!(
        app.system.annotation.as_deref(),
        Some("Ubuntu 22.04 LTS base image, cloud-init enabled.")
    );
}

#[test]
fn vmware_efi_descriptor_yields_secure_boot_nvme_disks_and_sata_cdrom() {
    let app = appliance(&fixture("vmware-ovftool-efi.ovf"));
    let hw = &app.system.hardware;
    assert_eq!(hw.firmware, Firmware::Efi { secure_boot: true });
    assert_eq!(hw.virtual_system_type.as_deref(), Some("vmx-19"));
    assert_eq!(hw.controllers[0].kind, ControllerKind::Nvme);
    assert_eq!(hw.controllers[1].kind, ControllerKind::Sata);
    assert!(app.disks.iter().all(|d| d.bus == Bus::Nvme));
    assert_eq!(hw.cdroms[0].bus, Bus::Sata);
    assert_eq!(hw.nics[0].model.as_deref(), Some("E1000e"));
}

#[test]
fn vmware_efi_without_secure_boot_key_is_plain_efi() {
    let doc = edit(
        &fixture("vmware-ovftool-efi.ovf"),
        r#"<vmw:Config ovf:required="false" vmw:key="uefi.secureBoot.enabled" vmw:value="true"/>"#,
        "",
    );
    assert_eq!(
        appliance(&doc).system.hardware.firmware,
        Firmware::Efi { secure_boot: false }
    );
}

#[test]
fn vmware_unknown_firmware_value_is_rejected() {
    let doc = edit(
        &fixture("vmware-ovftool-bios.ovf"),
        r#"vmw:value="bios""#,
        r#"vmw:value="coreboot""#,
    );
    assert_eq!(
        chain(&parse_err(&doc)),
        "system 'ubuntu-22.04-server': firmware 'coreboot' is neither bios nor efi"
    );
}

#[test]
fn virtualbox_descriptor_reads_slash_disk_refs_megabytes_and_vbox_firmware() {
    let app = appliance(&fixture("virtualbox-1.0.ovf"));
    let hw = &app.system.hardware;
    assert_eq!((hw.vcpus, hw.memory_mib), (2, 2048));
    assert_eq!(hw.firmware, Firmware::Efi { secure_boot: false });
    assert_eq!(hw.virtual_system_type.as_deref(), Some("virtualbox-2.2"));
    let disk = &app.disks[0];
    assert_eq!(
        (disk.disk.id.as_str(), disk.bus, disk.unit),
        ("vmdisk1", Bus::Sata, 0)
    );
    assert_eq!(disk.disk.capacity_bytes, 20 * GIB);
    assert_eq!(disk.file.as_ref().map(|f| f.size), Some(None));
    assert_eq!(hw.cdroms[0].controller.as_deref(), Some("4"));
    assert_eq!(hw.nics[0].network.as_deref(), Some("NAT"));
    let os = app.system.os.as_ref().unwrap();
    assert_eq!(
        (os.id, os.vbox_os_type.as_deref()),
        (Some(96), Some("Debian_64"))
    );
    let product = app.system.product.as_ref().unwrap();
    assert_eq!(product.product.as_deref(), Some("Debian 12 appliance"));
    assert_eq!(product.vendor_url.as_deref(), Some("https://example.org/"));
}

#[test]
fn virtualbox_machine_marked_required_is_rejected() {
    let doc = edit(
        &fixture("virtualbox-1.0.ovf"),
        r#"<vbox:Machine ovf:required="false""#,
        r#"<vbox:Machine ovf:required="true""#,
    );
    assert_eq!(
        chain(&parse_err(&doc)),
        "unsupported required section {http://www.virtualbox.org/ovf/machine}Machine"
    );
}

#[test]
fn virtualbox_bios_machine_is_bios() {
    let doc = edit(
        &fixture("virtualbox-1.0.ovf"),
        r#"<Firmware type="EFI"/>"#,
        r#"<Firmware type="BIOS"/>"#,
    );
    assert_eq!(appliance(&doc).system.hardware.firmware, Firmware::Bios);
}

#[test]
fn ovirt_descriptor_with_unqualified_sections_and_slash_namespace_parses() {
    let env = parse_ok(&fixture("ovirt-4.4-ova.ovf"));
    assert_eq!(env.version, OvfVersion::V1);
    let disk = &env.disks[0];
    assert_eq!(disk.format, DiskFormat::Qcow2);
    assert_eq!(disk.capacity_bytes, 10 * GIB);
    assert_eq!((disk.bus_hint, disk.bootable), (Some(Bus::Scsi), true));
    assert_eq!(env.files[0].href, "b0a35f83-3a18-4e55-9d0e-5c2e1c77f2c1");

    let app = select(&env, None, None).unwrap();
    let hw = &app.system.hardware;
    assert_eq!(
        (hw.vcpus, hw.cores_per_socket, hw.memory_mib),
        (4, Some(2), 4096)
    );
    assert_eq!(hw.firmware, Firmware::Efi { secure_boot: false });
    assert!(
        hw.controllers.is_empty(),
        "the video item (type 20, no subtype) is no controller"
    );
    let d = &app.disks[0];
    assert_eq!(
        (d.role, d.controller.as_deref(), d.bus, d.unit),
        (Role::Os, None, Bus::Scsi, 0)
    );
    assert_eq!(hw.disks[0].boot_order, Some(1));
    assert_eq!(
        hw.nics,
        [Nic {
            network: Some("ovirtmgmt".to_owned()),
            model: Some("3".to_owned()),
            mac: Some("56:6f:1d:b4:00:1a".to_owned())
        }]
    );
    assert_eq!(hw.cdroms.len(), 1);
    let os = app.system.os.as_ref().unwrap();
    assert_eq!(
        (os.id, os.description.as_deref()),
        (None, Some("rhel_9x64"))
    );
    assert_eq!(app.system.name.as_deref(), Some("centos-stream9"));
}

#[test]
fn ovirt_raw_volume_labelled_as_sparse_vmdk_is_raw() {
    let doc = edit(
        &fixture("ovirt-4.4-ova.ovf"),
        r#"ovf:format="http://www.gnome.org/~markmc/qcow-image-format.html" ovf:volume-format="COW""#,
        r#"ovf:format="http://www.vmware.com/specifications/vmdk.html#sparse" ovf:volume-format="RAW""#,
    );
    assert_eq!(parse_ok(&doc).disks[0].format, DiskFormat::Raw);
}

#[test]
fn ovirt_secure_boot_bios_type_is_secure_efi() {
    let doc = edit(
        &fixture("ovirt-4.4-ova.ovf"),
        "<BiosType>3</BiosType>",
        "<BiosType>4</BiosType>",
    );
    assert_eq!(
        appliance(&doc).system.hardware.firmware,
        Firmware::Efi { secure_boot: true }
    );
}

#[test]
fn ovf2_storage_and_ethernet_port_items_become_disks_cdrom_and_nics() {
    let env = parse_ok(&fixture("ovf-2.0-storage-ethernet.ovf"));
    assert_eq!(env.version, OvfVersion::V2);
    let app = select(&env, None, None).unwrap();
    let disks: Vec<_> = app
        .disks
        .iter()
        .map(|d| (d.disk.id.as_str(), d.role, d.bus, d.unit, d.file.is_some()))
        .collect();
    assert_eq!(
        disks,
        [
            ("vmdisk1", Role::Os, Bus::Sata, 0, true),
            ("scratch", Role::Data, Bus::Sata, 1, false)
        ]
    );
    assert_eq!(app.disks[1].disk.capacity_bytes, 4 * GIB);
    let hw = &app.system.hardware;
    assert_eq!(
        hw.cdroms,
        [CdromAttachment {
            controller: Some("5".to_owned()),
            bus: Bus::Sata,
            unit: 2,
            file: Some("file2".to_owned())
        }]
    );
    let nics: Vec<_> = hw
        .nics
        .iter()
        .map(|n| (n.network.as_deref(), n.model.as_deref(), n.mac.as_deref()))
        .collect();
    assert_eq!(
        nics,
        [
            (Some("External"), Some("virtio"), Some("08:00:27:4f:1a:2b")),
            (Some("Internal"), Some("virtio"), None)
        ]
    );
    let networks: Vec<_> = app
        .networks
        .iter()
        .map(|n| (n.name.as_str(), n.description.as_deref()))
        .collect();
    assert_eq!(
        networks,
        [
            ("External", Some("Uplink network")),
            ("Internal", Some("Protected network"))
        ]
    );
}

#[test]
fn ovf_0_9_sections_typed_by_xsi_type_are_read() {
    let env = parse_ok(&fixture("vmware-ovf-0.9.ovf"));
    assert_eq!(env.version, OvfVersion::V0_9);
    assert_eq!(env.disks[0].format, DiskFormat::VmdkMonolithicSparse);
    assert_eq!(env.disks[0].capacity_bytes, 4 * GIB);
    assert_eq!(env.networks[0].name, "VM Network");
    let app = select(&env, None, None).unwrap();
    let hw = &app.system.hardware;
    assert_eq!((hw.vcpus, hw.memory_mib), (1, 512));
    assert_eq!((app.disks[0].bus, app.disks[0].unit), (Bus::Scsi, 0));
    assert_eq!(hw.nics[0].model.as_deref(), Some("PCNet32"));
    assert_eq!(app.system.os.as_ref().and_then(|o| o.id), Some(36));
    let product = app
        .system
        .product
        .as_ref()
        .and_then(|p| p.product.as_deref());
    assert_eq!(product, Some("LAMP appliance"));
}

#[test]
fn xenserver_vhd_disk_is_rejected_naming_the_format() {
    let e = parse_err(&fixture("xenserver-vhd.ovf"));
    assert_eq!(
        chain(&e),
        "disk '7c1f0b2e-3d4a-4b5c-8d6e-9f0a1b2c3d4e' has format \
         'http://www.microsoft.com/technet/virtualserver/downloads/vhdspec.mspx', \
         which vmd cannot import"
    );
}

#[test]
fn xenserver_storage_extent_items_attach_disks_without_controllers() {
    let doc = edit(
        &fixture("xenserver-vhd.ovf"),
        "http://www.microsoft.com/technet/virtualserver/downloads/vhdspec.mspx",
        "http://en.wikipedia.org/wiki/Byte",
    );
    let app = appliance(&doc);
    let d = &app.disks[0];
    assert_eq!(
        (d.disk.format, d.controller.as_deref(), d.bus, d.unit),
        (DiskFormat::Raw, None, Bus::Unspecified, 0)
    );
    let hw = &app.system.hardware;
    assert_eq!((hw.vcpus, hw.memory_mib), (2, 2048));
    assert_eq!(hw.cdroms.len(), 1, "the DVD drive is kept, empty");
    assert_eq!(hw.nics[0].mac.as_deref(), Some("4a:1f:6c:2e:88:01"));
    assert_eq!(app.system.name.as_deref(), Some("CentOS 7 (Xen)"));
}

#[test]
fn product_sections_with_class_and_instance_qualify_property_keys() {
    let env = parse_ok(&fixture("product-properties-eula.ovf"));
    let system = &env.systems[0];
    let keys: Vec<_> = system.properties.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "guestinfo.hostname",
            "guestinfo.root_password",
            "guestinfo.debug",
            "vami.gateway.photon",
            "vami.DNS.photon",
            "vami.ip0.photon",
            "vami.netmask0.photon",
            "vm.vmname"
        ]
    );
    let password = &system.properties[1];
    assert!(password.password && password.user_configurable);
    assert_eq!(password.value, None);
    let hostname = &system.properties[0];
    assert_eq!(hostname.label.as_deref(), Some("Hostname"));
    assert_eq!(hostname.value.as_deref(), Some("photon"));
    assert_eq!(system.properties[2].kind, "boolean");
    let product = system.product.as_ref().unwrap();
    assert_eq!(
        product.full_version.as_deref(),
        Some("4.0.2-build-21447667")
    );
    assert_eq!(
        product.app_url.as_deref(),
        Some("https://${vami.ip0.photon}/")
    );
}

#[test]
fn eula_text_keeps_its_lines() {
    let env = parse_ok(&fixture("product-properties-eula.ovf"));
    let eula = &env.systems[0].eulas[0];
    assert!(
        eula.starts_with("EXAMPLE, INC. END USER LICENSE AGREEMENT\n\n1. Grant."),
        "{eula:?}"
    );
    assert!(eula.ends_with("You may not reverse engineer the Software."));
}

#[test]
fn gzip_file_and_mebibyte_capacity_are_read() {
    let env = parse_ok(&fixture("product-properties-eula.ovf"));
    assert_eq!(env.files[0].compression, Some(Compression::Gzip));
    assert_eq!(env.disks[0].capacity_bytes, 16 * GIB);
    let app = select(&env, None, None).unwrap();
    assert_eq!(
        app.system.hardware.firmware,
        Firmware::Efi { secure_boot: false }
    );
    assert_eq!(app.system.properties.len(), 8);
}
