//! `vmd import` of the real test appliance into a real libvirt pool, and what a user checks
//! afterwards: `show`, the volumes, a guest booting from an overlay of the master.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::process::Command;
use std::time::Duration;

use common::env::TestEnv;
use common::guest::{boot, Disk};
use common::{run, tiny_ova};
use sha2::{Digest, Sha256};

fn sha256_file(path: &str) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn qemu_info(path: &str) -> serde_json::Value {
    let out = run(Command::new("qemu-img").args(["info", "-U", "--output=json", path]));
    serde_json::from_str(&out).unwrap()
}

/// The virtual sizes of the appliance's own disks, as qemu-img reads them from the OVA.
fn tiny_capacities() -> Vec<u64> {
    let scratch = common::Scratch::new("caps");
    run(Command::new("tar")
        .arg("-xf")
        .arg(tiny_ova())
        .arg("-C")
        .arg(scratch.path()));
    ["tiny-disk1.vmdk", "tiny-disk2.vmdk"]
        .iter()
        .map(|f| {
            let p = scratch.path().join(f);
            qemu_info(p.to_str().unwrap())["virtual-size"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn import_tiny_show_matches_descriptor_and_volumes_have_declared_capacities() {
    let env = TestEnv::new("imp");
    let ova = tiny_ova();
    env.vmd_ok(&["import", ova.to_str().unwrap()]);

    let show = env.json(&["show", "tiny"]);
    assert_eq!(show["kind"], "master");
    assert_eq!(show["state"], "ready");
    assert_eq!(show["name"], "tiny");
    assert_eq!(show["source"]["ovf_version"], "1");
    assert_eq!(show["source"]["system"], "tiny");
    assert_eq!(show["source"]["manifest"], "SHA256");
    assert_eq!(show["source"]["package"], ova.to_str().unwrap());
    assert_eq!(
        show["source"]["product"]["product"],
        "vmd tiny test appliance"
    );
    assert_eq!(show["hardware"]["vcpus"], 1);
    assert_eq!(show["hardware"]["memory_mib"], 256);
    assert_eq!(show["hardware"]["firmware"], "bios");
    assert_eq!(show["networks"][0]["name"], "VM Network");
    assert!(show["descriptor"].as_str().unwrap().contains("Envelope"));

    let caps = tiny_capacities();
    let disks = show["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2);
    assert_eq!(disks[0]["role"], "os");
    assert_eq!(disks[1]["role"], "data");
    let volumes = env.volumes();
    for (i, d) in disks.iter().enumerate() {
        assert_eq!(d["bus"], "scsi");
        assert_eq!(d["unit"], i as u64);
        assert_eq!(d["format"], "qcow2");
        assert_eq!(d["pool"], env.pool.as_str());
        assert_eq!(d["capacity_bytes"], caps[i]);
        assert!(volumes.contains(&d["volume"].as_str().unwrap().to_string()));
        let info = qemu_info(d["path"].as_str().unwrap());
        assert_eq!(info["format"], "qcow2");
        assert_eq!(info["virtual-size"], caps[i]);
        assert!(info.get("backing-filename").is_none());
    }
    assert_eq!(volumes.len(), 2, "{volumes:?}");
}

#[test]
fn import_tiny_guest_boots_from_an_overlay_and_the_master_is_untouched() {
    let env = TestEnv::new("boot");
    env.vmd_ok(&["import", tiny_ova().to_str().unwrap(), "--name", "gold"]);
    let show = env.json(&["show", "gold"]);
    let paths: Vec<String> = show["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect();
    let before: Vec<String> = paths.iter().map(|p| sha256_file(p)).collect();

    // A throwaway overlay of each master volume, never the master itself.
    let mut disks = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let overlay = env.dir().join(format!("overlay{i}.qcow2"));
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", p])
            .arg(&overlay));
        disks.push(Disk {
            path: overlay,
            format: "qcow2",
            serial: format!("vmd-imp-{i}"),
            unit: i as u32,
            boot: i == 0,
        });
    }
    let console = env.dir().join("console.log");
    let name = format!("vmd-test-import-{}", std::process::id());
    let run1 = boot(&name, &disks, &console, Duration::from_secs(180));
    assert_eq!(
        run1.boots("vmd-imp-1"),
        Some(1),
        "console:\n{}",
        run1.console
    );
    assert!(run1.done(), "console:\n{}", run1.console);

    let after: Vec<String> = paths.iter().map(|p| sha256_file(p)).collect();
    assert_eq!(before, after, "the master's volumes changed");
}

#[test]
fn import_dry_run_prints_the_plan_and_writes_nothing() {
    let env = TestEnv::new("dry");
    let plan = env.json(&["import", tiny_ova().to_str().unwrap(), "--dry-run"]);
    assert_eq!(plan["name"], "tiny");
    assert_eq!(plan["disks"].as_array().unwrap().len(), 2);
    assert_eq!(plan["disks"][0]["format"], "qcow2");
    assert!(plan["disks"][0]["volume"]
        .as_str()
        .unwrap()
        .starts_with("vmd-"));
    assert!(plan["required_bytes"].as_u64().unwrap() > 0);
    assert!(env.volumes().is_empty());
    assert!(env.catalog().is_empty());
}

#[test]
fn import_same_name_twice_is_a_conflict_and_leaves_one_master() {
    let env = TestEnv::new("twice");
    let ova = tiny_ova();
    env.vmd_ok(&["import", ova.to_str().unwrap()]);
    let out = env.vmd(&["import", ova.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tiny") && stderr.contains("exists"),
        "{stderr}"
    );
    assert_eq!(env.catalog(), vec!["tiny"]);
    assert_eq!(env.volumes().len(), 2);
}

#[test]
fn verify_reads_every_disk_and_writes_nothing() {
    let env = TestEnv::new("verify");
    let report = env.json(&["verify", tiny_ova().to_str().unwrap()]);
    assert_eq!(report["disks_verified"], 2);
    assert_eq!(report["plan"]["manifest"], "SHA256");
    assert!(env.volumes().is_empty());
    assert!(env.catalog().is_empty());
}

#[test]
fn delete_master_removes_its_volumes_and_record() {
    let env = TestEnv::new("del");
    env.vmd_ok(&["import", tiny_ova().to_str().unwrap()]);
    env.vmd_ok(&["delete", "tiny"]);
    assert!(env.volumes().is_empty());
    assert!(env.catalog().is_empty());
    let out = env.vmd(&["show", "tiny"]);
    assert_eq!(out.status.code(), Some(4));
}
