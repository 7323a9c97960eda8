//! Per-VMD locks and failure injection in the life-cycle operations, without booting a
//! guest: a busy VMD makes a second command wait and exit 5; parallel clones of one master
//! all succeed; a delete racing clones never orphans one; deploy, snapshot and undeploy
//! interrupted at their failure points converge after `doctor --fix` and a retry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
mod doctor_support;

use std::process::Command;
use std::time::{Duration, Instant};

use common::env::TestEnv;
use doctor_support::*;

fn assert_busy_after_timeout(env: &TestEnv, args: &[&str]) {
    let started = Instant::now();
    let out = vmd_with(env, args, &[("VMD_LOCK_TIMEOUT", "1")]);
    let waited = started.elapsed();
    assert_eq!(out.status.code(), Some(5), "{args:?}: {}", stderr(&out));
    assert!(stderr(&out).contains("busy"), "{}", stderr(&out));
    assert!(waited >= Duration::from_secs(1), "gave up after {waited:?}");
}

#[test]
fn snapshot_of_busy_vmd_waits_then_exits_5_busy_and_works_once_released() {
    let env = TestEnv::new("dr-busy");
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", "c1"]);
    let held = hold_lock(&env, "c1");
    assert_busy_after_timeout(&env, &["snapshot", "c1", "s1"]);
    assert_eq!(env.json(&["snapshots", "c1"]), serde_json::json!([]));
    drop(held);
    env.vmd_ok(&["snapshot", "c1", "s1"]);
    assert_eq!(env.json(&["snapshots", "c1"])[0]["name"], "s1");
}

#[test]
fn deploy_of_busy_vmd_waits_then_exits_5_busy_and_defines_nothing() {
    let env = TestEnv::new("dr-busyd");
    let name = unique("bd");
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", &name]);
    let _held = hold_lock(&env, &name);
    assert_busy_after_timeout(&env, &["deploy", &name]);
    assert_eq!(env.json(&["show", &name])["state"], "cloned");
    assert!(!domain_defined(&format!("vmd-{name}")));
}

#[test]
fn clone_eight_parallel_of_one_master_all_succeed() {
    let env = TestEnv::new("dr-par");
    env.vmd_ok(&["import", &ova()]);
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut cmd = env.command();
            cmd.args(["clone", "tiny", &format!("p{i}")]);
            (i, cmd.stderr(std::process::Stdio::piped()).spawn().unwrap())
        })
        .collect();
    for (i, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "clone p{i}: {}", stderr(&out));
    }
    let state = end_state(&env);
    assert_eq!(state.vmds.len(), 9, "{state:?}");
    assert_eq!(state.volumes.len(), 18, "{state:?}");
    assert!(
        state.volumes.iter().all(|v| !v.starts_with('?')),
        "{state:?}"
    );
    for i in 0..8 {
        assert_backing_present(&env, &format!("p{i}"));
    }
    assert_no_problems(&env);
}

#[test]
fn delete_of_master_racing_clones_never_orphans_a_clone() {
    let env = TestEnv::new("dr-race");
    env.vmd_ok(&["import", &ova()]);
    let spawn = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.args(args).stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let mut children = vec![
        spawn(&["clone", "tiny", "r0"]),
        spawn(&["clone", "tiny", "r1"]),
    ];
    children.push(spawn(&["delete", "tiny"]));
    children.push(spawn(&["clone", "tiny", "r2"]));
    children.push(spawn(&["clone", "tiny", "r3"]));
    for child in children {
        let out = child.wait_with_output().unwrap();
        // Each either succeeds, finds the master gone (4) or refuses for clones (5).
        assert!(
            matches!(out.status.code(), Some(0 | 4 | 5)),
            "{:?}: {}",
            out.status,
            stderr(&out)
        );
    }
    let state = end_state(&env);
    let master_left = state.vmds.iter().any(|v| v.0 == "tiny");
    let clones: Vec<&str> = state
        .vmds
        .iter()
        .filter(|v| v.1 == "instance")
        .map(|v| v.0.as_str())
        .collect();
    assert!(master_left || clones.is_empty(), "{state:?}");
    for c in &clones {
        assert_backing_present(&env, c);
    }
    assert!(
        state.volumes.iter().all(|v| !v.starts_with('?')),
        "{state:?}"
    );
    assert!(state.leftover_files.is_empty(), "{state:?}");
    assert_no_problems(&env);
}

#[test]
fn deploy_exit_after_define_doctor_removes_domain_and_retry_deploys() {
    let env = TestEnv::new("dr-dx");
    let name = unique("dx");
    let _guard = DomainGuard(format!("vmd-{name}"));
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", &name]);
    let out = vmd_with(
        &env,
        &["deploy", &name],
        &[("VMD_FAIL", "deploy.defined:exit")],
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(domain_defined(&format!("vmd-{name}")));
    let (code, report) = doctor(&env, false);
    assert_eq!(code, 1);
    assert_eq!(report["problems"][0]["kind"], "orphan-domain", "{report:#}");
    let (code, report) = doctor(&env, true);
    assert_eq!(code, 0, "{report:#}");
    assert!(!domain_defined(&format!("vmd-{name}")));
    env.vmd_ok(&["deploy", &name]);
    assert_eq!(env.json(&["show", &name])["state"], "deployed");
    assert_no_problems(&env);
    env.vmd_ok(&["undeploy", &name]);
}

#[test]
fn deploy_error_before_commit_undefines_the_new_domain() {
    let env = TestEnv::new("dr-de");
    let name = unique("de");
    let _guard = DomainGuard(format!("vmd-{name}"));
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", &name]);
    let out = vmd_with(
        &env,
        &["deploy", &name],
        &[("VMD_FAIL", "deploy.before-commit:error")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!domain_defined(&format!("vmd-{name}")));
    assert_eq!(env.json(&["show", &name])["state"], "cloned");
    assert_no_problems(&env);
}

/// The internal snapshots of a qcow2 file, by name.
fn disk_snapshots(path: &str) -> Vec<String> {
    let out = common::run(Command::new("qemu-img").args(["snapshot", "-U", "-l", path]));
    out.lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

fn disk_paths(env: &TestEnv, name: &str) -> Vec<String> {
    env.json(&["show", name])["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn snapshot_error_after_taken_removes_it_from_the_disks() {
    let env = TestEnv::new("lf-se");
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", "c1"]);
    let out = vmd_with(
        &env,
        &["snapshot", "c1", "s1"],
        &[("VMD_FAIL", "snapshot.taken:error")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(env.json(&["snapshots", "c1"]), serde_json::json!([]));
    for path in disk_paths(&env, "c1") {
        assert!(disk_snapshots(&path).is_empty(), "{path}");
    }
}

#[test]
fn snapshot_exit_after_taken_retry_replaces_the_unrecorded_snapshot() {
    let env = TestEnv::new("lf-sx");
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", "c1"]);
    let out = vmd_with(
        &env,
        &["snapshot", "c1", "s1"],
        &[("VMD_FAIL", "snapshot.taken:exit")],
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert_eq!(env.json(&["snapshots", "c1"]), serde_json::json!([]));
    env.vmd_ok(&["snapshot", "c1", "s1"]);
    assert_eq!(env.json(&["snapshots", "c1"])[0]["name"], "s1");
    for path in disk_paths(&env, "c1") {
        assert_eq!(disk_snapshots(&path), ["s1"], "{path}");
    }
    assert_no_problems(&env);
}

#[test]
fn undeploy_exit_after_undefine_doctor_records_undeployed() {
    let env = TestEnv::new("lf-ux");
    let name = unique("ux");
    let _guard = DomainGuard(format!("vmd-{name}"));
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", &name]);
    env.vmd_ok(&["deploy", &name]);
    let out = vmd_with(
        &env,
        &["undeploy", &name],
        &[("VMD_FAIL", "undeploy.undefined:exit")],
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(!domain_defined(&format!("vmd-{name}")));
    let (code, report) = doctor(&env, true);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["problems"][0]["kind"], "missing-domain",
        "{report:#}"
    );
    env.vmd_ok(&["undeploy", &name]);
    assert_eq!(env.json(&["show", &name])["state"], "undeployed");
    assert_no_problems(&env);
}

#[test]
fn undeploy_as_master_exit_after_captured_volume_converges() {
    let env = TestEnv::new("lf-cap");
    let name = unique("cap");
    let _guard = DomainGuard(format!("vmd-{name}"));
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", &name]);
    env.vmd_ok(&["deploy", &name]);
    let args = ["undeploy", &name, "--as-master", "gold"];
    let out = vmd_with(
        &env,
        &args,
        &[("VMD_FAIL", "undeploy.captured-volume:exit")],
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(end_state(&env).volumes.iter().any(|v| v.starts_with('?')));
    let (code, report) = doctor(&env, true);
    assert_eq!(code, 0, "{report:#}");
    env.vmd_ok(&args);
    let state = end_state(&env);
    assert_eq!(
        state.vmds,
        [
            (name.clone(), "instance".into(), "undeployed".into()),
            ("gold".into(), "master".into(), "ready".into()),
            ("tiny".into(), "master".into(), "ready".into()),
        ]
    );
    assert_eq!(state.volumes.len(), 6, "{state:?}");
    assert!(
        state.volumes.iter().all(|v| !v.starts_with('?')),
        "{state:?}"
    );
    assert!(state.leftover_files.is_empty(), "{state:?}");
    assert_no_problems(&env);
}
