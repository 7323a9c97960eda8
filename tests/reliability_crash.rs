//! A crash at each step of deploy, snapshot and undeploy (SECURITY.md items 29, 30 and 34's
//! "unknown state"), on the real libvirtd: `VMD_FAIL=<step>:exit[:n]` ends vmd at once, as a
//! `SIGKILL` would, the `n`th time it reaches the step; then `vmd doctor --fix`, then the
//! same command again. The result must be what a clean run gives: the command succeeds, the
//! catalog parses and agrees with the pool and the host (no orphan volume or domain, no
//! missing backing file, no temporary file), and `vmd doctor` finds nothing.
//!
//! The same runs with `VMD_FAIL=<step>:error`, an ordinary failure at that step, must roll
//! back well enough that the retry alone converges, without `doctor --fix`.
//!
//! The steps come from `src/manager/fault.rs` (its `STEPS` list), so a step added there is
//! tested here too. Import and clone steps are `tests/doctor.rs`'s. Every step of an operation
//! is tried even when one fails; the test then lists all the failures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
#[path = "reliability/lab.rs"]
mod lab;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;

use lab::{assert_fails, Lab};

/// The status of an injected abrupt exit (`fault::EXIT_STATUS`).
const EXIT_STATUS: i32 = 137;
/// How many hits of one step are tried (a step reached once per disk is hit twice).
const MAX_HITS: u32 = 3;

/// The failure points declared in `src/manager/fault.rs`, in order.
fn steps() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/manager/fault.rs");
    let text = std::fs::read_to_string(path).expect("src/manager/fault.rs");
    let start = text
        .find("pub const STEPS")
        .expect("fault.rs declares STEPS");
    let list = &text[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find("];").unwrap()];
    list.split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// One operation under test.
struct Op<'a> {
    label: &'static str,
    /// Its failure points: the declared steps with this prefix.
    prefix: &'static str,
    /// Whether every such step must be reached by `command` (`undeploy` without
    /// `--as-master` never reaches the capture steps).
    all_reached: bool,
    /// Brings a fresh instance `inst` to where the command starts.
    setup: &'a dyn Fn(&Lab, &str),
    /// The command, for instance `inst` (and a second name `other`, for `--as-master`).
    command: &'a dyn Fn(&str, &str) -> Vec<String>,
    /// Run before the retry (a memory snapshot needs a running guest).
    before_retry: &'a dyn Fn(&Lab, &str),
    /// What a clean run leaves, beyond [`Lab::assert_consistent`].
    check: &'a dyn Fn(&Lab, &str, &str),
}

fn nothing(_: &Lab, _: &str) {}

/// `vmd doctor --json` must report no problem.
fn assert_doctor_clean(lab: &Lab, when: &str) {
    let out = lab.run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{when}: doctor --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        report["problems"],
        serde_json::json!([]),
        "{when}: doctor reports {report}"
    );
    assert!(out.status.success(), "{when}: doctor exit {:?}", out.status);
}

/// One crash (or injected error) and its recovery; panics on the first wrong thing.
/// Returns false when the command never reached the step `hit` times.
fn scenario(lab: &Lab, op: &Op, step: &str, mode: &str, hit: u32, inst: &str, other: &str) -> bool {
    let when = format!("{step}:{mode}:{hit}");
    (op.setup)(lab, inst);
    let args = (op.command)(inst, other);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let spec = format!("{step}:{mode}:{hit}");
    let out = lab.run_env(&args, &[("VMD_FAIL", spec.as_str())]);
    if out.status.success() {
        return false;
    }
    match mode {
        "exit" => assert_eq!(
            out.status.code(),
            Some(EXIT_STATUS),
            "{when}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        _ => {
            assert_fails(&out, Some(1), &[step]);
        }
    }
    if mode == "exit" {
        let fix = lab.run(&["doctor", "--fix"]);
        eprintln!(
            "{when}: doctor --fix ({:?}): {}{}",
            fix.status.code(),
            String::from_utf8_lossy(&fix.stdout).trim_end(),
            String::from_utf8_lossy(&fix.stderr).trim_end()
        );
    }
    (op.before_retry)(lab, inst);
    let retry = lab.run(&args);
    assert!(
        retry.status.success(),
        "{when}: the retry failed ({:?}): {}",
        retry.status.code(),
        String::from_utf8_lossy(&retry.stderr)
    );
    (op.check)(lab, inst, other);
    lab.assert_consistent();
    assert_doctor_clean(lab, &when);
    true
}

/// Runs `op` with every mode at each of its steps and hits; returns what went wrong.
fn exercise(lab: &Lab, op: &Op) -> Vec<String> {
    let mut failures = Vec::new();
    let steps: Vec<String> = steps()
        .into_iter()
        .filter(|s| s.starts_with(op.prefix))
        .collect();
    assert!(!steps.is_empty(), "no {} steps in fault.rs", op.prefix);
    let mut k = 0;
    for step in &steps {
        for mode in ["exit", "error"] {
            for hit in 1..=MAX_HITS {
                k += 1;
                let inst = lab.name(&format!("{}{k}", op.label));
                let other = lab.name(&format!("{}{k}g", op.label));
                let result = catch_unwind(AssertUnwindSafe(|| {
                    scenario(lab, op, step, mode, hit, &inst, &other)
                }));
                // Whatever happened, the instance (and a captured master) go.
                for name in [&other, &inst] {
                    let _ = lab.run(&["delete", name, "--force"]);
                }
                match result {
                    Ok(true) => eprintln!("{step}:{mode}:{hit}: converged"),
                    Ok(false) => {
                        if hit == 1 && op.all_reached {
                            failures.push(format!("{step}: never reached by {}", op.label));
                        }
                        break;
                    }
                    Err(panic) => {
                        let msg = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        failures.push(format!("{step}:{mode}:{hit}: {msg}"));
                        break;
                    }
                }
            }
        }
    }
    failures
}

fn assert_none(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing step(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn clone_of(lab: &Lab, master: &str, inst: &str) {
    lab.ok(&["clone", master, inst]);
}

fn state(lab: &Lab, name: &str) -> String {
    lab.show(name)["state"].as_str().unwrap().to_string()
}

fn image_snapshots(path: &str) -> Vec<String> {
    let out = common::run(Command::new("qemu-img").args(["info", "-U", "--output=json", path]));
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    info["snapshots"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The instance holds snapshot s1, once, in the catalog and on every disk, and libvirt
/// keeps no snapshot metadata of its own.
fn assert_one_snapshot(lab: &Lab, inst: &str, memory: bool) {
    let snaps = lab.json(&["snapshots", inst]);
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    assert_eq!(snaps[0]["name"], "s1");
    assert_eq!(snaps[0]["memory"], memory);
    for path in lab.disk_paths(inst) {
        assert_eq!(image_snapshots(&path), ["s1"], "{path}");
    }
    let listed = common::run(Command::new("virsh").args([
        "-c",
        "qemu:///system",
        "snapshot-list",
        &format!("vmd-{inst}"),
        "--name",
    ]));
    assert_eq!(listed.trim(), "", "libvirt keeps snapshot metadata");
}

#[test]
fn crash_at_each_deploy_step_then_doctor_and_retry_converge() {
    let lab = Lab::new("crdep");
    let master = lab.name("m");
    lab.import_tiny(&master);
    let setup = |lab: &Lab, inst: &str| clone_of(lab, &master, inst);
    let op = Op {
        label: "dep",
        prefix: "deploy.",
        all_reached: true,
        setup: &setup,
        command: &|inst, _| vec!["deploy".into(), inst.into(), "--start".into()],
        before_retry: &nothing,
        check: &|lab, inst, _| {
            let s = state(lab, inst);
            // The tiny guest powers itself off after its run.
            assert!(matches!(s.as_str(), "running" | "deployed"), "state {s}");
            assert_eq!(lab.domains().len(), 1, "{:?}", lab.domains());
        },
    };
    assert_none(exercise(&lab, &op));
}

#[test]
fn crash_at_each_snapshot_step_of_an_instance_that_is_off_then_doctor_and_retry_converge() {
    let lab = Lab::new("crsnap");
    let master = lab.name("m");
    lab.import_tiny(&master);
    let setup = |lab: &Lab, inst: &str| {
        clone_of(lab, &master, inst);
        lab.ok(&["deploy", inst]);
    };
    let op = Op {
        label: "snap",
        prefix: "snapshot.",
        all_reached: true,
        setup: &setup,
        command: &|inst, _| vec!["snapshot".into(), inst.into(), "s1".into()],
        before_retry: &nothing,
        check: &|lab, inst, _| {
            assert_one_snapshot(lab, inst, false);
            lab.ok(&["revert", inst, "s1"]);
        },
    };
    assert_none(exercise(&lab, &op));
}

#[test]
fn crash_at_each_snapshot_step_of_a_running_guest_with_memory_then_doctor_and_retry_converge() {
    let lab = Lab::new("crmem");
    let master = lab.name("m");
    lab.import_tiny(&master);
    let setup = |lab: &Lab, inst: &str| {
        clone_of(lab, &master, inst);
        lab.ok(&["deploy", inst, "--start"]);
    };
    let op = Op {
        label: "mem",
        prefix: "snapshot.",
        all_reached: true,
        setup: &setup,
        command: &|inst, _| {
            vec![
                "snapshot".into(),
                inst.into(),
                "s1".into(),
                "--memory".into(),
            ]
        },
        // The guest may have finished its run since: a memory snapshot needs it running.
        before_retry: &|lab, inst| {
            if state(lab, inst) != "running" {
                lab.ok(&["start", inst]);
            }
        },
        check: &|lab, inst, _| assert_one_snapshot(lab, inst, true),
    };
    assert_none(exercise(&lab, &op));
}

#[test]
fn crash_at_each_undeploy_step_then_doctor_and_retry_converge() {
    let lab = Lab::new("crund");
    let master = lab.name("m");
    lab.import_tiny(&master);
    let setup = |lab: &Lab, inst: &str| {
        clone_of(lab, &master, inst);
        lab.ok(&["deploy", inst, "--start"]);
    };
    let op = Op {
        label: "und",
        prefix: "undeploy.",
        all_reached: false,
        setup: &setup,
        command: &|inst, _| vec!["undeploy".into(), inst.into(), "--force".into()],
        before_retry: &nothing,
        check: &|lab, inst, _| {
            assert_eq!(state(lab, inst), "undeployed");
            assert!(lab.domains().is_empty(), "{:?}", lab.domains());
        },
    };
    assert_none(exercise(&lab, &op));
}

#[test]
fn crash_at_each_undeploy_as_master_step_then_doctor_and_retry_converge() {
    let lab = Lab::new("crcap");
    let master = lab.name("m");
    lab.import_tiny(&master);
    let setup = |lab: &Lab, inst: &str| {
        clone_of(lab, &master, inst);
        lab.ok(&["deploy", inst, "--start"]);
    };
    let op = Op {
        label: "cap",
        prefix: "undeploy.",
        all_reached: true,
        setup: &setup,
        command: &|inst, other| {
            vec![
                "undeploy".into(),
                inst.into(),
                "--force".into(),
                "--as-master".into(),
                other.into(),
            ]
        },
        before_retry: &nothing,
        check: &|lab, inst, other| {
            assert_eq!(state(lab, inst), "undeployed");
            assert!(lab.domains().is_empty(), "{:?}", lab.domains());
            let captured = lab.show(other);
            assert_eq!(captured["kind"], "master");
            let disks = captured["disks"].as_array().unwrap();
            assert_eq!(disks.len(), 2);
            assert!(disks.iter().all(|d| d["backing"].is_null()), "{captured}");
        },
    };
    assert_none(exercise(&lab, &op));
}
