//! A data disk on a network block device: the second host's userspace iSCSI target (tgtd)
//! serves one 256 MiB LUN, reached from the first host through an `iscsi-direct` pool this
//! test defines (transient, destroyed when the test ends). A full clone claims the LUN and
//! writes the master's data disk onto it with QEMU's iSCSI client; the guest counts its boots
//! on it; a linked clone and a snapshot are refused up front; delete releases the LUN.
//!
//! The target has one LUN, so everything that uses it runs in one test function.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::env::TestEnv;
use common::remote::{connect, second_host};
use common::{run, tiny_ova};

const GUEST_TIMEOUT: Duration = Duration::from_secs(240);
const TARGET: &str = "iqn.2026-12.dev.vmd:second-host";
const LUN: &str = "unit:0:0:1";

fn lun_url() -> String {
    format!("iscsi://127.0.0.1/{TARGET}/1")
}

/// Fills the LUN's last MiB with 0xab through `qemu-io`: what an earlier holder left,
/// which a claim must not show.
fn stamp_lun_tail() {
    let out = run(Command::new("qemu-io")
        .args(["-f", "raw", "-c", "write -P 0xab 255M 1M"])
        .arg(lun_url()));
    assert!(out.contains("wrote 1048576/1048576 bytes"), "{out}");
}

/// A transient `iscsi-direct` pool on the first host over the second host's target.
struct LunPool {
    name: String,
}

impl LunPool {
    fn new() -> Self {
        second_host(); // starts tgtd with the host
        let name = format!(
            "vmdtest-lun-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let xml = format!(
            "<pool type='iscsi-direct'><name>{name}</name><source><host name='127.0.0.1'/>\
             <device path='{TARGET}'/><initiator><iqn name='iqn.2026-12.dev.vmd:initiator'/>\
             </initiator></source></pool>"
        );
        connect("qemu:///system")
            .create_storage_pool_xml(&xml, 0)
            .expect("create the iscsi-direct pool");
        Self { name }
    }

    fn volumes(&self) -> Vec<String> {
        let c = connect("qemu:///system");
        let p = c.lookup_storage_pool_by_name(&self.name).unwrap();
        p.refresh(0).unwrap();
        let mut names = p.list_volumes().unwrap();
        names.sort();
        names
    }
}

impl Drop for LunPool {
    fn drop(&mut self) {
        if let Ok(p) = connect("qemu:///system").lookup_storage_pool_by_name(&self.name) {
            let _ = p.destroy();
        }
    }
}

struct Lab {
    env: TestEnv,
    tag: String,
}

impl Lab {
    fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.tag)
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.env.command();
        cmd.env("VMD_VIRT_TYPE", "qemu").args(args);
        cmd.output().unwrap()
    }

    fn vmd(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vmd {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must be refused as a usage error (exit 2) with one line on
    /// stderr; returns that line.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "vmd {args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        stderr
    }

    fn show(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.vmd(&["show", name, "--json"])).unwrap()
    }

    fn names(&self) -> Vec<String> {
        self.env.catalog()
    }

    /// Starts the instance (deploying it first when `deploy`), waits until the guest powers
    /// itself off, and returns the boot count it reported for its data disk.
    fn boot(&self, name: &str, deploy: bool) -> u64 {
        if deploy {
            self.vmd(&["deploy", name, "--start"]);
        } else {
            self.vmd(&["start", name]);
        }
        let start = Instant::now();
        while self.show(name)["state"] == "running" {
            assert!(start.elapsed() < GUEST_TIMEOUT, "{name} still running");
            std::thread::sleep(Duration::from_millis(500));
        }
        let show = self.show(name);
        let log = show["deployment"]["console_log"].as_str().unwrap();
        let console = std::fs::read_to_string(log).unwrap_or_default();
        let serial = show["disks"][1]["serial"].as_str().unwrap();
        let prefix = format!("VMD-GUEST disk={serial} boots=");
        assert!(
            console.lines().any(|l| l.trim() == "VMD-GUEST done"),
            "{name} did not finish; console:\n{console}"
        );
        console
            .lines()
            .find_map(|l| l.trim().strip_prefix(&prefix)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no boots line for {serial}; console:\n{console}"))
    }
}

/// Deletes what the test made even when an assertion fails half-way.
struct Cleanup<'a>(&'a Lab, Vec<String>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in self.1.iter().rev() {
            let _ = self.0.run(&["delete", name, "--force"]);
        }
    }
}

#[test]
fn iscsi_lun_data_disk_full_clone_counts_boots_refusals_up_front_delete_releases() {
    let pool = LunPool::new();
    let lab = Lab {
        env: TestEnv::new("lun"),
        tag: format!("lun{}", &uuid::Uuid::new_v4().simple().to_string()[..6]),
    };
    let (master, linked, full, second, again) = (
        lab.name("tiny"),
        lab.name("linked"),
        lab.name("full"),
        lab.name("second"),
        lab.name("again"),
    );
    let _cleanup = Cleanup(&lab, vec![master.clone(), full.clone(), again.clone()]);
    let place = format!("data={}", pool.name);
    let check: serde_json::Value =
        serde_json::from_str(&lab.vmd(&["host", "check", "--json"])).unwrap();
    let listed = check["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == pool.name.as_str())
        .cloned();
    assert_eq!(
        listed.as_ref().map(|p| (&p["type"], &p["access"])),
        Some((&"iscsi-direct".into(), &"iscsi".into())),
        "{check}"
    );
    lab.vmd(&["import", tiny_ova().to_str().unwrap(), "--name", &master]);
    let volumes_before = lab.env.volumes();

    // A linked clone onto the LUN pool: refused, naming the pool, its type and --full.
    let err = lab.refused(&["clone", &master, &linked, "--place", &place]);
    assert!(
        err.contains(&format!("pool {} (iscsi-direct)", pool.name)) && err.contains("--full"),
        "{err}"
    );
    assert_eq!(lab.names(), std::slice::from_ref(&master));
    assert_eq!(lab.env.volumes(), volumes_before, "nothing left behind");

    // A full clone claims the LUN: raw, the LUN's size, the OS disk in the file pool; what
    // an earlier holder left past the copied disk is zeroed.
    stamp_lun_tail();
    lab.vmd(&["clone", &master, &full, "--full", "--place", &place]);
    let tail = lab.env.dir().join("tail");
    run(Command::new("qemu-img")
        .args(["dd", "-f", "raw", "-O", "raw", "bs=1M", "skip=255"])
        .arg(format!("if={}", lun_url()))
        .arg(format!("of={}", tail.display())));
    let tail = std::fs::read(&tail).unwrap();
    assert_eq!(tail.len(), 1 << 20);
    assert!(tail.iter().all(|b| *b == 0), "the LUN's tail is zeroed");
    let data = lab.show(&full)["disks"][1].clone();
    assert_eq!(data["pool"], pool.name.as_str());
    assert_eq!(data["volume"], LUN);
    assert_eq!(data["format"], "raw");
    assert_eq!(data["capacity_bytes"], 256u64 << 20);

    // The only LUN is taken: a second full clone onto the pool is refused, nothing made.
    let err = lab.refused(&["clone", &master, &second, "--full", "--place", &place]);
    assert!(err.contains("no free volume"), "{err}");
    assert!(!lab.names().contains(&second));

    // The guest finds the LUN-backed disk by its serial and counts its boots on it.
    assert_eq!(lab.boot(&full, true), 1);
    assert_eq!(lab.boot(&full, false), 2);

    // A snapshot is refused up front, naming the disk and the pool.
    let err = lab.refused(&["snapshot", &full]);
    assert!(
        err.contains(&format!("vmdisk2 is on pool {} (iscsi-direct)", pool.name)),
        "{err}"
    );
    let snaps: serde_json::Value =
        serde_json::from_str(&lab.vmd(&["snapshots", &full, "--json"])).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 0);

    // The claimed LUN is no orphan.
    assert!(lab.vmd(&["doctor"]).contains("no problems"));

    // Delete releases the LUN: it is still there, and the next full clone can claim it.
    lab.vmd(&["delete", &full, "--force"]);
    assert!(pool.volumes().contains(&LUN.to_string()));
    lab.vmd(&["clone", &master, &again, "--full", "--place", &place]);
    assert_eq!(lab.show(&again)["disks"][1]["volume"], LUN);
    lab.vmd(&["delete", &again]);
    lab.vmd(&["delete", &master]);
    assert_eq!(lab.names(), Vec::<String>::new());
}
