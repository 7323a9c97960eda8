//! libvirtd stopped in the middle of an operation (SECURITY.md item 34), on the real host.
//!
//! **This test binary stops and restarts the host's libvirtd** (SIGTERM, then `libvirtd -d`).
//! Every other test that talks to libvirtd would fail meanwhile, so these tests live in a
//! binary of their own (cargo runs test binaries one after another) and take a lock so that
//! they never overlap each other; do not run it while anything else uses the host's
//! libvirtd. A drop guard starts libvirtd again and waits until it answers, also when a test
//! fails.
//!
//! Each test kills libvirtd while `vmd deploy --start` starts the domain, or while `vmd
//! snapshot --memory` saves a running guest, and expects a definite failure reported in one
//! line naming the libvirt call (and, while libvirtd is down, a one-line "cannot connect");
//! then, with libvirtd back, `vmd doctor --fix` and the same command converge to what a clean
//! run leaves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
#[path = "reliability/lab.rs"]
mod lab;

use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lab::{assert_fails, Lab};

/// The tests of this binary each restart libvirtd: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// How long libvirtd gets to stop, and to answer again.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a test tries to land its kill inside the operation.
const ATTEMPTS: usize = 3;

/// The system libvirtd, by its pid file (`/run/libvirtd.pid`), never by process name: a second
/// libvirtd (scripts/second-host) may run beside it. A stale pid file whose number now
/// belongs to another program does not count.
fn libvirtd_pid() -> Option<u32> {
    let pid: u32 = std::fs::read_to_string("/run/libvirtd.pid")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "libvirtd").then_some(pid)
}

fn libvirtd_answers() -> bool {
    Command::new("virsh")
        .args(["-c", "qemu:///system", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends SIGTERM to libvirtd and waits until it is gone.
fn stop_libvirtd() {
    let pid = libvirtd_pid().expect("libvirtd runs");
    common::run(Command::new("kill").args(["-TERM", &pid.to_string()]));
    let deadline = Instant::now() + DAEMON_TIMEOUT;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "libvirtd {pid} did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts libvirtd (unless one runs) and waits until it answers.
fn start_libvirtd() {
    if libvirtd_pid().is_none() {
        // Its own stdio, so that the daemon keeps no pipe of this test open.
        let _ = Command::new("libvirtd")
            .arg("-d")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let deadline = Instant::now() + DAEMON_TIMEOUT;
    while !libvirtd_answers() {
        assert!(Instant::now() < deadline, "libvirtd does not answer");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Makes sure libvirtd runs and answers when the test ends, however it ends.
struct Daemon;

impl Drop for Daemon {
    fn drop(&mut self) {
        if !libvirtd_answers() {
            if libvirtd_pid().is_none() {
                let _ = Command::new("libvirtd")
                    .arg("-d")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            let deadline = Instant::now() + DAEMON_TIMEOUT;
            while !libvirtd_answers() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// A test's bench: the guard that brings libvirtd back goes first when dropped, so that the
/// lab can then remove what the test left on the host.
struct Bench {
    _daemon: Daemon,
    lab: Lab,
}

/// Takes the binary's lock (surviving a poisoned one: a failed test still released it) and
/// sets up the bench.
fn exclusive(tag: &str) -> (std::sync::MutexGuard<'static, ()>, Bench) {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    start_libvirtd();
    let bench = Bench {
        _daemon: Daemon,
        lab: Lab::new(tag),
    };
    (guard, bench)
}

/// Whether a QEMU process for `domain` exists.
fn qemu_running(domain: &str) -> bool {
    let needle = format!("guest={domain},");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
}

/// The domain's state as `virsh domstate` words it (`running`, `paused`, `shut off`).
fn domstate(domain: &str) -> String {
    let out = Command::new("virsh")
        .args(["-c", "qemu:///system", "domstate", domain])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn spawn(lab: &Lab, args: &[&str]) -> Child {
    lab.cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vmd")
}

/// Polls `ready` every millisecond while `child` runs; when it holds, stops libvirtd.
/// Returns the child's output and whether libvirtd was stopped while it ran.
fn kill_libvirtd_when(mut child: Child, ready: impl Fn() -> bool) -> (Output, bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed = false;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "vmd did not finish");
        if ready() {
            stop_libvirtd();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (child.wait_with_output().unwrap(), killed)
}

/// `vmd doctor --fix`, then `vmd doctor --json` must report nothing.
fn doctor_fix_then_clean(lab: &Lab) {
    let fix = lab.run(&["doctor", "--fix", "--json"]);
    eprintln!(
        "doctor --fix: {}{}",
        String::from_utf8_lossy(&fix.stdout),
        String::from_utf8_lossy(&fix.stderr)
    );
    let report = lab.json(&["doctor"]);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
}

/// The snapshots libvirt keeps metadata of for `domain`.
fn libvirt_snapshots(domain: &str) -> Vec<String> {
    let out = common::run(Command::new("virsh").args([
        "-c",
        "qemu:///system",
        "snapshot-list",
        domain,
        "--name",
    ]));
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The guest's internal snapshots on every disk of `name`, by disk.
fn image_snapshots(lab: &Lab, name: &str) -> Vec<Vec<String>> {
    lab.disk_paths(name)
        .iter()
        .map(|p| {
            let out =
                common::run(Command::new("qemu-img").args(["info", "-U", "--output=json", p]));
            let info: serde_json::Value = serde_json::from_str(&out).unwrap();
            info["snapshots"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| s["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn libvirtd_stopped_during_deploy_start_fails_clearly_then_doctor_and_retry_converge() {
    let (_serial, bench) = exclusive("lvdep");
    let lab = &bench.lab;
    let (master, inst) = (lab.name("m"), lab.name("i"));
    let domain = format!("vmd-{inst}");
    lab.import_tiny(&master);
    lab.ok(&["clone", &master, &inst]);

    let mut failure = None;
    for attempt in 1..=ATTEMPTS {
        let child = spawn(lab, &["deploy", &inst, "--start"]);
        // QEMU exists: libvirtd is inside virDomainCreate, vmd waits for its answer.
        let (out, killed) = kill_libvirtd_when(child, || qemu_running(&domain));
        if killed {
            // libvirtd down when vmd starts: a clear refusal, nothing done.
            let down = lab.run(&["deploy", &inst, "--start"]);
            assert_fails(&down, Some(1), &["cannot connect to qemu:///system"]);
        }
        start_libvirtd();
        if killed && !out.status.success() {
            failure = Some(out);
            break;
        }
        eprintln!(
            "attempt {attempt}: the kill missed the deploy ({:?})",
            out.status
        );
        lab.ok(&["undeploy", &inst, "--force"]);
    }
    let out = failure.expect("libvirtd was never stopped during a deploy");
    let line = assert_fails(&out, None, &["virDomainCreate"]);
    eprintln!("deploy: {line}");

    doctor_fix_then_clean(lab);
    lab.ok(&["deploy", &inst, "--start"]);
    assert!(
        matches!(
            lab.show(&inst)["state"].as_str(),
            Some("running" | "deployed")
        ),
        "{}",
        lab.show(&inst)
    );
    lab.assert_consistent();
    let report = lab.json(&["doctor"]);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");

    lab.ok(&["delete", &inst, "--force"]);
    lab.ok(&["delete", &master]);
    lab.assert_consistent();
    assert!(lab.domains().is_empty());
}

#[test]
fn libvirtd_stopped_during_memory_snapshot_fails_clearly_then_doctor_and_retry_converge() {
    let (_serial, bench) = exclusive("lvsnap");
    let lab = &bench.lab;
    let (master, inst) = (lab.name("m"), lab.name("i"));
    let domain = format!("vmd-{inst}");
    lab.import_tiny(&master);
    lab.ok(&["clone", &master, &inst]);
    lab.ok(&["deploy", &inst]);

    let mut failure = None;
    for attempt in 1..=ATTEMPTS {
        lab.ok(&["start", &inst]);
        let child = spawn(lab, &["snapshot", &inst, "s1", "--memory"]);
        // libvirt pauses the guest while QEMU saves its state into the disks.
        let (out, killed) = kill_libvirtd_when(child, || domstate(&domain) == "paused");
        start_libvirtd();
        if killed && !out.status.success() {
            failure = Some(out);
            break;
        }
        eprintln!(
            "attempt {attempt}: the kill missed the snapshot ({:?})",
            out.status
        );
        if out.status.success() {
            lab.ok(&["snapshots", &inst, "--delete", "s1"]);
        }
        lab.ok(&["stop", &inst, "--force"]);
    }
    let out = failure.expect("libvirtd was never stopped during a snapshot");
    let line = assert_fails(&out, None, &["virDomainSnapshotCreateXML"]);
    eprintln!("snapshot: {line}");
    assert_eq!(lab.json(&["snapshots", &inst]), serde_json::json!([]));
    eprintln!(
        "after the failure: libvirt snapshots {:?}, disk snapshots {:?}, domain {}",
        libvirt_snapshots(&domain),
        image_snapshots(lab, &inst),
        domstate(&domain)
    );

    doctor_fix_then_clean(lab);
    // The guest may have finished its run meanwhile: the retry needs it running.
    if lab.show(&inst)["state"] != "running" {
        lab.ok(&["start", &inst]);
    }
    lab.ok(&["snapshot", &inst, "s1", "--memory"]);
    let snaps = lab.json(&["snapshots", &inst]);
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    assert_eq!(snaps[0]["name"], "s1");
    assert_eq!(snaps[0]["memory"], true);
    lab.ok(&["stop", &inst, "--force"]);
    for (i, names) in image_snapshots(lab, &inst).iter().enumerate() {
        assert_eq!(names, &["s1"], "disk {i}");
    }
    assert_eq!(libvirt_snapshots(&domain), Vec::<String>::new());
    lab.ok(&["revert", &inst, "s1"]);
    assert_eq!(
        lab.show(&inst)["state"],
        "running",
        "a memory snapshot reverts to a running guest"
    );
    lab.assert_consistent();
    let report = lab.json(&["doctor"]);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");

    lab.ok(&["delete", &inst, "--force"]);
    lab.ok(&["delete", &master]);
    lab.assert_consistent();
    assert!(lab.domains().is_empty());
}
