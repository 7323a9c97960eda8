//! A life-cycle soak (SECURITY.md item 35) on the real libvirtd: 50 cycles of snapshot,
//! undeploy, redeploy, revert and snapshot delete of one linked clone (its domain defined but
//! never started, so every snapshot goes through `qemu-img`). Afterwards nothing has leaked:
//! no volume, domain, temporary file, process, or file descriptor in libvirtd or
//! virtlogd; the backing chain is still clone over master; the snapshots are the ones the
//! cycle keeps.
//!
//! The descriptor counts are those of the daemons, which outlive every `vmd` run; other work
//! on the same libvirtd (another test binary, another user of the host) moves them a little, so a
//! small difference is allowed, far below the 50 a leak of one per cycle would show.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
#[path = "reliability/lab.rs"]
mod lab;

use std::time::{Duration, Instant};

use lab::{backing_chain, Lab};

const CYCLES: usize = 50;
/// Descriptors a daemon may gain over the run without it counting as a leak.
const FD_NOISE: usize = 12;

/// The pid of the process whose command name is `comm` (the first found).
fn pid_of(comm: &str) -> u32 {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == comm)
                .unwrap_or(false)
        })
        .unwrap_or_else(|| panic!("no {comm} process"))
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Processes working for this lab: a `vmd` run (its environment names the lab's state
/// directory) or anything it started (`qemu-img`, whose arguments name the lab's files).
/// Matching on the binary's path would also catch other test runs of the same build.
fn lab_processes(lab: &Lab) -> Vec<String> {
    let state = format!("VMD_STATE_DIR={}", lab.env.state_dir().display());
    let dir = lab.env.dir().display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| {
            let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let environ = String::from_utf8_lossy(&environ);
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let ours = environ.split('\0').any(|v| v == state) || cmdline.contains(&dir);
            ours.then(|| format!("{}: {cmdline}", e.file_name().to_string_lossy()))
        })
        .collect()
}

/// Waits (up to 10 s, as daemons close a finished client's descriptors asynchronously) for
/// `pid`'s descriptor count to come within the noise of `before`; returns the last count.
fn settled_fds(pid: u32, before: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = fd_count(pid);
        if now <= before + FD_NOISE || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The internal snapshots of a qcow2 image, by name.
fn qcow2_snapshots(path: &str) -> Vec<String> {
    let chain = backing_chain(path);
    chain[0]["snapshots"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn catalog_snapshots(lab: &Lab, name: &str) -> Vec<String> {
    lab.json(&["snapshots", name])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every disk of the clone: a chain of two (clone over master) holding exactly `snaps`.
fn assert_disks(lab: &Lab, name: &str, snaps: &[&str], when: &str) {
    for path in lab.disk_paths(name) {
        let chain = backing_chain(&path);
        assert_eq!(chain.len(), 2, "{when}: {path} chain {chain:?}");
        assert!(
            chain[1].get("backing-filename").is_none(),
            "{when}: {chain:?}"
        );
        assert_eq!(qcow2_snapshots(&path), snaps, "{when}: {path}");
    }
}

/// One cycle: snapshot, undeploy, redeploy (back at the snapshot, alternately through
/// `redeploy --snapshot` and through `revert`), delete the snapshot.
fn cycle(lab: &Lab, inst: &str, i: usize) {
    let snap = format!("s{i}");
    lab.ok(&["snapshot", inst, &snap]);
    lab.ok(&["undeploy", inst]);
    if i.is_multiple_of(2) {
        lab.ok(&["redeploy", inst, "--snapshot", &snap]);
    } else {
        lab.ok(&["redeploy", inst]);
        lab.ok(&["revert", inst, &snap]);
    }
    lab.ok(&["snapshots", inst, "--delete", &snap]);
}

#[test]
fn soak_fifty_snapshot_undeploy_redeploy_cycles_leak_nothing_and_chain_stays_bounded() {
    let lab = Lab::new("soak");
    let (master, inst) = (lab.name("m"), lab.name("i"));
    lab.import_tiny(&master);
    lab.ok(&["clone", &master, &inst]);
    lab.ok(&["deploy", &inst]);
    lab.ok(&["snapshot", &inst, "base"]);
    // One cycle first, so that whatever libvirtd opens once (the pool, the driver's files)
    // is open before counting.
    cycle(&lab, &inst, 0);
    let volumes = lab.env.volumes();
    let sizes: Vec<u64> = lab
        .disk_paths(&inst)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    let (libvirtd, virtlogd) = (pid_of("libvirtd"), pid_of("virtlogd"));
    let (libvirtd_fds, virtlogd_fds) = (fd_count(libvirtd), fd_count(virtlogd));
    let started = Instant::now();

    for i in 1..=CYCLES {
        cycle(&lab, &inst, i);
        if i.is_multiple_of(10) {
            assert_disks(&lab, &inst, &["base"], &format!("cycle {i}"));
        }
    }
    eprintln!("{CYCLES} cycles in {:?}", started.elapsed());

    assert_eq!(
        pid_of("libvirtd"),
        libvirtd,
        "libvirtd restarted during the soak"
    );
    assert_eq!(
        pid_of("virtlogd"),
        virtlogd,
        "virtlogd restarted during the soak"
    );
    let after = settled_fds(libvirtd, libvirtd_fds);
    eprintln!("libvirtd descriptors {libvirtd_fds} -> {after}");
    assert!(
        after <= libvirtd_fds + FD_NOISE,
        "libvirtd descriptors {libvirtd_fds} -> {after}"
    );
    let after = settled_fds(virtlogd, virtlogd_fds);
    eprintln!("virtlogd descriptors {virtlogd_fds} -> {after}");
    assert!(
        after <= virtlogd_fds + FD_NOISE,
        "virtlogd descriptors {virtlogd_fds} -> {after}"
    );
    assert_eq!(lab_processes(&lab), Vec::<String>::new(), "processes left");

    assert_eq!(lab.env.volumes(), volumes, "volumes");
    assert_eq!(catalog_snapshots(&lab, &inst), ["base"]);
    assert_disks(&lab, &inst, &["base"], "the end");
    assert_eq!(lab.show(&inst)["state"], "deployed");
    let domain = format!("vmd-{inst}");
    let snaps = common::run(std::process::Command::new("virsh").args([
        "-c",
        "qemu:///system",
        "snapshot-list",
        &domain,
        "--name",
    ]));
    assert_eq!(snaps.trim(), "", "libvirt keeps snapshot metadata");
    // Snapshots made and deleted 50 times leave the images about the size they were.
    for (path, before) in lab.disk_paths(&inst).iter().zip(&sizes) {
        let now = std::fs::metadata(path).unwrap().len();
        assert!(now <= before + (4 << 20), "{path}: {before} -> {now} bytes");
    }
    lab.assert_consistent();

    lab.ok(&["delete", &inst]);
    lab.ok(&["delete", &master]);
    lab.assert_consistent();
    assert!(lab.env.volumes().is_empty());
}
