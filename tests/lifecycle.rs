//! The whole VMD life cycle on the real libvirtd with TCG, proven by the guest's own console:
//! import, linked and full clones, deploy, stop/start, snapshot, revert, undeploy, redeploy,
//! capture as a new master, isolation between clones, and clean deletion.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::time::{Duration, Instant};

use common::env::TestEnv;
use common::tiny_ova;
use sha2::{Digest, Sha256};

const GUEST_TIMEOUT: Duration = Duration::from_secs(240);

struct Lab {
    env: TestEnv,
    tag: String,
}

impl Lab {
    fn new(tag: &str) -> Self {
        let env = TestEnv::new(tag);
        let tag = format!("{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        Self { env, tag }
    }

    /// A VMD name unique to this test run (domain names are host-wide).
    fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.tag)
    }

    fn vmd(&self, args: &[&str]) -> String {
        let mut cmd = self.env.command();
        cmd.env("VMD_VIRT_TYPE", "qemu").args(args);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "vmd {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn show(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.vmd(&["show", name, "--json"])).unwrap()
    }

    fn state(&self, name: &str) -> String {
        self.show(name)["state"].as_str().unwrap().to_string()
    }

    /// Waits until the guest has powered itself off and returns the boot count its data
    /// disk reported on this boot's console.
    fn wait_boots(&self, name: &str) -> u64 {
        let start = Instant::now();
        while self.state(name) == "running" {
            assert!(
                start.elapsed() < GUEST_TIMEOUT,
                "{name} still running after {GUEST_TIMEOUT:?}"
            );
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

    fn start_and_count(&self, name: &str) -> u64 {
        self.vmd(&["start", name]);
        self.wait_boots(name)
    }
}

fn file_digest(path: &str) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn master_digests(lab: &Lab, master: &str) -> Vec<String> {
    lab.show(master)["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| file_digest(d["path"].as_str().unwrap()))
        .collect()
}

#[test]
fn lifecycle_clone_deploy_snapshot_undeploy_redeploy_capture_and_delete() {
    let lab = Lab::new("lc");
    let (tiny, a, b, c, gold) = (
        lab.name("tiny"),
        lab.name("a"),
        lab.name("b"),
        lab.name("c"),
        lab.name("gold"),
    );

    // 1. import; linked clone a, full clone b; deploy and start a.
    lab.vmd(&["import", tiny_ova().to_str().unwrap(), "--name", &tiny]);
    let pristine = master_digests(&lab, &tiny);
    lab.vmd(&["clone", &tiny, &a]);
    lab.vmd(&["clone", &tiny, &b, "--full"]);
    let shown_a = lab.show(&a);
    assert_eq!(shown_a["kind"], "instance");
    assert_eq!(shown_a["state"], "cloned");
    assert!(shown_a["disks"][0]["backing"].is_string(), "a is linked");
    assert!(
        lab.show(&b)["disks"][0]["backing"].is_null(),
        "b is a full copy"
    );
    lab.vmd(&["deploy", &a, "--start"]);
    assert_eq!(lab.wait_boots(&a), 1);

    // 2. stop/start counts on; a snapshot brings the count back.
    lab.vmd(&["stop", &a, "--timeout", "30"]);
    assert_eq!(lab.start_and_count(&a), 2);
    lab.vmd(&["snapshot", &a, "s1"]);
    assert_eq!(lab.start_and_count(&a), 3);
    lab.vmd(&["revert", &a, "s1"]);
    assert_eq!(lab.start_and_count(&a), 3, "the counter came back from 2");
    let snaps: serde_json::Value =
        serde_json::from_str(&lab.vmd(&["snapshots", &a, "--json"])).unwrap();
    assert_eq!(snaps[0]["name"], "s1");
    let shown = lab.show(&a);
    assert_eq!(shown["domain"], format!("vmd-{a}"));
    assert_eq!(
        shown["parent"].as_str().unwrap(),
        lab.show(&tiny)["id"].as_str().unwrap()
    );
    assert_eq!(shown["snapshots"][0]["name"], "s1");
    assert_eq!(shown["snapshots"][0]["memory"], false);
    assert!(shown["snapshots"][0].get("libvirt_xml").is_none());

    // 3. undeploy/redeploy keeps the disks; a captured master carries a's state on.
    lab.vmd(&["undeploy", &a]);
    assert_eq!(lab.state(&a), "undeployed");
    lab.vmd(&["undeploy", &a]); // undeploying an undeployed instance is no error
    lab.vmd(&["redeploy", &a, "--start"]);
    assert_eq!(lab.wait_boots(&a), 4);
    lab.vmd(&["undeploy", &a, "--as-master", &gold]);
    assert_eq!(lab.show(&gold)["kind"], "master");
    lab.vmd(&["clone", &gold, &c]);
    lab.vmd(&["deploy", &c, "--start"]);
    assert_eq!(lab.wait_boots(&c), 5, "c continues from a's count");
    lab.vmd(&["deploy", &b, "--start"]);
    assert_eq!(lab.wait_boots(&b), 1, "b is isolated from a");

    // 4. the master is untouched; it cannot go while clones exist; all goes cleanly.
    assert_eq!(master_digests(&lab, &tiny), pristine);
    let out = lab.env.command().args(["delete", &tiny]).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("clones"));
    for name in [&c, &gold, &a, &b, &tiny] {
        lab.vmd(&["delete", name, "--force"]);
    }
    assert!(lab.env.volumes().is_empty(), "{:?}", lab.env.volumes());
    assert!(lab.env.catalog().is_empty());
    let domains = std::process::Command::new("virsh")
        .args(["-c", "qemu:///system", "list", "--all", "--name"])
        .output()
        .unwrap();
    let domains = String::from_utf8_lossy(&domains.stdout);
    assert!(!domains.contains(&lab.tag), "domains left: {domains}");
}

#[test]
fn lifecycle_running_guest_memory_snapshot_revert_resumes_it_and_devices_attach_live() {
    let lab = Lab::new("mem");
    let vm = lab.name("vm");
    // A blank instance boots into the BIOS and keeps running: a guest that never stops.
    lab.vmd(&["create", &vm, "--os-disk", "64M", "--memory", "256"]);
    lab.vmd(&["deploy", &vm, "--start"]);
    assert_eq!(lab.state(&vm), "running");

    let snap: serde_json::Value =
        serde_json::from_str(&lab.vmd(&["snapshot", &vm, "m1", "--memory", "--json"])).unwrap();
    assert_eq!(snap["memory"], true);
    assert_eq!(
        lab.state(&vm),
        "running",
        "the guest runs on after the snapshot"
    );

    lab.vmd(&["stop", &vm, "--force"]);
    assert_eq!(lab.state(&vm), "deployed");
    lab.vmd(&["revert", &vm, "m1"]);
    assert_eq!(
        lab.state(&vm),
        "running",
        "a memory snapshot resumes the guest"
    );

    let added: serde_json::Value = serde_json::from_str(
        &lab.vmd(&["device", "add", &vm, "--size", "16M", "--live", "--json"]),
    )
    .unwrap();
    let id = added["id"].as_str().unwrap().to_string();
    assert_eq!(lab.show(&vm)["disks"].as_array().unwrap().len(), 2);
    lab.vmd(&["device", "remove", &vm, &id, "--live"]);
    assert_eq!(lab.show(&vm)["disks"].as_array().unwrap().len(), 1);

    lab.vmd(&["snapshots", &vm, "--delete", "m1"]);
    assert_eq!(lab.show(&vm)["snapshots"].as_array().unwrap().len(), 0);
    lab.vmd(&["delete", &vm, "--force"]);
    assert!(lab.env.volumes().is_empty(), "{:?}", lab.env.volumes());
}
