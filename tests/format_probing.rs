//! Raw volumes are never read as anything but raw (SECURITY.md items 1, 2 and 39): a master
//! imported `--format raw` from a package whose *guest data* begins with a qcow2 header
//! naming a host file as its backing file. libvirt probes file volumes at every pool refresh
//! and takes such a volume for qcow2; any copy, convert, snapshot or domain disk that let
//! libvirt or qemu-img guess the format would read the host file. Each call site is a test
//! here, on the real libvirtd: the canary file's content must appear in no volume, every
//! copy must equal the master byte for byte, and the domain must never name the canary.
//! (Export does not exist yet; it gets the same test when it does.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::env::TestEnv;
use common::ovf::{descriptor, Disk, VMDK_STREAM};
use common::run;

const CAPACITY: u64 = 1 << 20;

/// An environment holding master `evilm` (raw) and the canary text its guest data points at.
struct Evil {
    env: TestEnv,
    canary: String,
}

fn evil_master(tag: &str) -> Evil {
    let env = TestEnv::new(tag);
    let dir = env.dir().join("pkg");
    std::fs::create_dir_all(&dir).unwrap();
    let canary = format!("CANARY-{}", uuid::Uuid::new_v4().simple());
    let canary_path = env.dir().join("canary.txt");
    std::fs::write(&canary_path, format!("{canary}\n").repeat(64)).unwrap();
    // The guest data: a qcow2 header whose backing file is the canary, padded to the disk.
    let guest = dir.join("guest.img");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&canary_path)
        .arg(&guest)
        .arg(CAPACITY.to_string()));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&guest)
        .unwrap()
        .set_len(CAPACITY)
        .unwrap();
    // An ordinary streamOptimized VMDK that holds those bytes as its content.
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vmdk"])
        .args(["-o", "subformat=streamOptimized"])
        .arg(&guest)
        .arg(dir.join("disk.vmdk")));
    std::fs::remove_file(&guest).unwrap();
    let ovf = descriptor(
        &dir,
        "evil",
        &[Disk::file("disk.vmdk", VMDK_STREAM, CAPACITY)],
    );
    std::fs::write(dir.join("evil.ovf"), ovf).unwrap();
    let ovf_path = dir.join("evil.ovf");
    env.vmd_ok(&[
        "import",
        ovf_path.to_str().unwrap(),
        "--format",
        "raw",
        "--name",
        "evilm",
    ]);
    Evil { env, canary }
}

impl Evil {
    /// The path of disk 0 of `name`.
    fn disk(&self, name: &str) -> PathBuf {
        let v = self.env.json(&["show", name]);
        PathBuf::from(v["disks"][0]["path"].as_str().unwrap())
    }

    /// Panics if any file in the pool holds the canary.
    fn assert_no_canary(&self) {
        for entry in std::fs::read_dir(self.env.dir().join("pool")).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let hit = bytes
                .windows(self.canary.len())
                .any(|w| w == self.canary.as_bytes());
            assert!(!hit, "{} holds the canary file's content", path.display());
        }
    }

    /// Panics unless `name`'s disk 0 (qcow2) holds exactly the master's (raw) bytes.
    fn assert_same_as_master(&self, name: &str) {
        let out = Command::new("qemu-img")
            .args(["compare", "-q", "-f", "qcow2", "-F", "raw"])
            .arg(self.disk(name))
            .arg(self.disk("evilm"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} differs from the master: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What libvirt believes the master's volume is: the premise of every test here.
fn libvirt_format(path: &Path) -> String {
    let out = run(Command::new("virsh")
        .args(["-c", "qemu:///system", "vol-dumpxml"])
        .arg(path));
    out.split("<format type='")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn clone_full_of_raw_master_copies_guest_bytes_not_backing_file() {
    let evil = evil_master("probe-full");
    assert_eq!(libvirt_format(&evil.disk("evilm")), "qcow2", "premise");

    evil.env.vmd_ok(&["clone", "evilm", "full1", "--full"]);

    evil.assert_same_as_master("full1");
    evil.assert_no_canary();
}

#[test]
fn capture_as_master_of_linked_clone_of_raw_master_copies_guest_bytes() {
    let evil = evil_master("probe-capture");
    evil.env.vmd_ok(&["clone", "evilm", "probe-cap1"]);
    evil.env
        .vmd_ok(&["deploy", "probe-cap1", "--virt-type", "qemu"]);

    evil.env
        .vmd_ok(&["undeploy", "probe-cap1", "--force", "--as-master", "m2"]);

    evil.assert_same_as_master("m2");
    evil.assert_no_canary();
}

#[test]
fn deploy_linked_clone_of_raw_master_never_names_backing_file() {
    let evil = evil_master("probe-deploy");
    evil.env.vmd_ok(&["clone", "evilm", "probe-dep1"]);

    evil.env
        .vmd_ok(&["deploy", "probe-dep1", "--start", "--virt-type", "qemu"]);
    let shown = evil.env.json(&["show", "probe-dep1"]);
    let xml = run(Command::new("virsh")
        .args(["-c", "qemu:///system", "dumpxml"])
        .arg(shown["domain"].as_str().unwrap()));
    evil.env.vmd_ok(&["undeploy", "probe-dep1", "--force"]);

    assert!(
        !xml.contains("canary.txt"),
        "the running domain's backing chain names the canary:\n{xml}"
    );
    assert!(xml.contains("<format type='raw'/>"), "{xml}");
    evil.assert_no_canary();
}

#[test]
fn offline_snapshot_and_revert_of_raw_backed_clone_keep_guest_bytes() {
    let evil = evil_master("probe-snap");
    evil.env.vmd_ok(&["clone", "evilm", "probe-snap1"]);
    evil.env
        .vmd_ok(&["deploy", "probe-snap1", "--virt-type", "qemu"]);

    evil.env.vmd_ok(&["snapshot", "probe-snap1", "s1"]);
    evil.env.vmd_ok(&["revert", "probe-snap1", "s1"]);

    evil.assert_same_as_master("probe-snap1");
    evil.assert_no_canary();
    evil.env.vmd_ok(&["undeploy", "probe-snap1"]);
}

#[test]
fn doctor_with_raw_master_and_its_full_clone_finds_no_problem_and_no_canary() {
    let evil = evil_master("probe-doctor");
    evil.env.vmd_ok(&["clone", "evilm", "full1", "--full"]);

    let report = evil.env.json(&["doctor"]);

    assert_eq!(
        report["problems"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    evil.assert_no_canary();
}

#[test]
fn host_copy_volume_of_raw_volume_libvirt_probes_as_qcow2_is_refused() {
    use vmd::host::Host;
    let evil = evil_master("probe-hostcopy");
    let shown = evil.env.json(&["show", "evilm"]);
    let pool: vmd::vmd::PoolName = shown["disks"][0]["pool"].as_str().unwrap().parse().unwrap();
    let source: vmd::vmd::VolumeName = shown["disks"][0]["volume"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let target: vmd::vmd::VolumeName = "vmd-probe-hostcopy-d0.qcow2".parse().unwrap();
    let host = vmd::host::libvirt::LibvirtHost::connect("qemu:///system").unwrap();

    let err = host
        .copy_volume(
            &pool,
            &source,
            "raw",
            &vmd::host::NewVolume {
                pool: &pool,
                name: &target,
                format: "qcow2",
                readonly: false,
            },
        )
        .unwrap_err();

    let msg = err.to_string();
    assert!(
        msg.contains("vmd wrote it as raw, libvirt takes its content for qcow2"),
        "{msg}"
    );
    assert!(!evil.env.volumes().contains(&target.to_string()));
    evil.assert_no_canary();
}
