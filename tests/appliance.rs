//! The bootable test appliance proves the data path: built from Debian packages, booted under
//! libvirt with TCG on throwaway copies of its disks, it counts its boots on its data disk.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::guest::{boot, Disk};
use common::{run, tiny_ova, Scratch};
use sha2::{Digest, Sha256};

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

fn members(ova: &std::path::Path) -> Vec<String> {
    run(Command::new("tar").arg("-tf").arg(ova))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn tiny_ova_layout_ovf_first_and_manifest_matches() {
    let ova = tiny_ova();
    let names = members(&ova);
    assert_eq!(
        names[0], "tiny.ovf",
        "the descriptor comes first: {names:?}"
    );
    assert!(names.contains(&"tiny.mf".to_string()), "{names:?}");

    let scratch = Scratch::new("layout");
    run(Command::new("tar")
        .arg("-xf")
        .arg(&ova)
        .arg("-C")
        .arg(scratch.path()));
    let mf = std::fs::read_to_string(scratch.path().join("tiny.mf")).unwrap();
    let mut digests = HashMap::new();
    for line in mf.lines() {
        let (lhs, hex) = line.split_once("= ").unwrap();
        let file = lhs
            .strip_prefix("SHA256(")
            .unwrap()
            .strip_suffix(')')
            .unwrap();
        digests.insert(file.to_string(), hex.trim().to_lowercase());
    }
    for name in names.iter().filter(|n| *n != "tiny.mf") {
        let bytes = std::fs::read(scratch.path().join(name)).unwrap();
        let actual: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digests.get(name), Some(&actual), "digest of {name}");
    }
}

#[test]
fn tiny_guest_boots_under_tcg_and_counts_boots_on_its_data_disk() {
    let ova = tiny_ova();
    let scratch = Scratch::new("boot");
    run(Command::new("tar")
        .arg("-xf")
        .arg(&ova)
        .arg("-C")
        .arg(scratch.path()));
    let mut disks = Vec::new();
    // The data disk sits at the lower unit: the guest must find it by serial, not by order.
    for (vmdk, serial, unit, boot) in [
        ("tiny-disk1.vmdk", "vmd-test-os", 1, true),
        ("tiny-disk2.vmdk", "vmd-test-data", 0, false),
    ] {
        let qcow2 = scratch.path().join(format!("{serial}.qcow2"));
        run(Command::new("qemu-img")
            .args(["convert", "-f", "vmdk", "-O", "qcow2"])
            .arg(scratch.path().join(vmdk))
            .arg(&qcow2));
        disks.push(Disk {
            path: qcow2,
            format: "qcow2",
            serial: serial.to_string(),
            unit,
            boot,
        });
    }
    let console = scratch.path().join("console.log");
    let name = format!("vmd-test-boot-{}", std::process::id());

    let first = boot(&name, &disks, &console, BOOT_TIMEOUT);
    assert_eq!(
        first.boots("vmd-test-data"),
        Some(1),
        "console:\n{}",
        first.console
    );
    assert!(first.done(), "console:\n{}", first.console);

    let second = boot(&name, &disks, &console, BOOT_TIMEOUT);
    assert_eq!(
        second.boots("vmd-test-data"),
        Some(2),
        "console:\n{}",
        second.console
    );
    assert!(second.done(), "console:\n{}", second.console);
    eprintln!(
        "guest boot to power-off: {:?}, {:?}",
        first.elapsed, second.elapsed
    );
}
