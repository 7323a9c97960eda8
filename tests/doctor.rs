//! Failure injection and `vmd doctor` on the real libvirtd: for each failure point of import
//! and clone, an abrupt exit then `doctor --fix` then the same command again ends where a
//! clean run ends; an injected error leaves nothing behind by itself; doctor reports what it
//! cannot repair and never touches another state directory's objects. Locks and the other
//! operations' failure points: `tests/locks_and_faults.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
mod doctor_support;

use std::process::Command;

use common::env::TestEnv;
use doctor_support::*;

/// Runs `args` with `VMD_FAIL=spec` (mode `exit`), then `doctor --fix`, then `args` again,
/// and checks the end state against a clean run's.
fn crash_then_doctor_then_retry(env: &TestEnv, args: &[&str], spec: &str, clean: EndState) {
    let out = vmd_with(env, args, &[("VMD_FAIL", spec)]);
    assert_eq!(out.status.code(), Some(137), "{spec}: {}", stderr(&out));
    let (code, report) = doctor(env, true);
    assert_eq!(code, 0, "{spec}: doctor --fix left problems: {report:#}");
    let committed = spec.contains(".committed");
    let again = env.vmd(args);
    if committed {
        // The first run had committed: the same command now finds the name taken.
        assert_eq!(again.status.code(), Some(5), "{spec}: {}", stderr(&again));
    } else {
        assert!(again.status.success(), "{spec}: {}", stderr(&again));
    }
    assert_eq!(end_state(env), clean, "{spec}");
    assert_no_problems(env);
}

/// Runs `args` with `VMD_FAIL=spec` (mode `error`): a clean failure leaves `before` as it
/// was, with no help from doctor; then the same command succeeds.
fn error_leaves_nothing(
    env: &TestEnv,
    args: &[&str],
    spec: &str,
    before: EndState,
    clean: EndState,
) {
    let out = vmd_with(env, args, &[("VMD_FAIL", spec)]);
    assert_eq!(out.status.code(), Some(1), "{spec}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("injected failure"),
        "{}",
        stderr(&out)
    );
    if spec.contains(".committed") {
        assert_eq!(end_state(env), clean, "{spec}");
    } else {
        assert_eq!(end_state(env), before, "{spec}");
        let again = env.vmd(args);
        assert!(again.status.success(), "{spec}: {}", stderr(&again));
        assert_eq!(end_state(env), clean, "{spec}");
    }
    assert_no_problems(env);
}

#[test]
fn import_clean_run_end_state_has_master_and_its_volumes_only() {
    let env = TestEnv::new("dr-clean");
    env.vmd_ok(&["import", &ova()]);
    assert_eq!(end_state(&env), imported());
    assert_no_problems(&env);
    env.vmd_ok(&["clone", "tiny", "c1"]);
    assert_eq!(end_state(&env), cloned());
    assert_no_problems(&env);
}

macro_rules! import_fault_tests {
    ($($exit:ident, $error:ident: $step:literal, $nth:literal;)*) => {$(
        #[test]
        fn $exit() {
            let env = TestEnv::new("dr-ix");
            let spec = format!("{}:exit:{}", $step, $nth);
            crash_then_doctor_then_retry(&env, &["import", &ova()], &spec, imported());
        }

        #[test]
        fn $error() {
            let env = TestEnv::new("dr-ie");
            let spec = format!("{}:error:{}", $step, $nth);
            error_leaves_nothing(&env, &["import", &ova()], &spec, empty(), imported());
        }
    )*};
}

import_fault_tests! {
    import_exit_after_plan_converges, import_error_after_plan_leaves_nothing:
        "import.planned", 1;
    import_exit_after_first_volume_converges, import_error_after_first_volume_leaves_nothing:
        "import.volume-created", 1;
    import_exit_after_second_volume_converges, import_error_after_second_volume_leaves_nothing:
        "import.volume-created", 2;
    import_exit_mid_write_converges, import_error_mid_write_leaves_nothing:
        "import.disk-written", 1;
    import_exit_after_last_disk_converges, import_error_after_last_disk_leaves_nothing:
        "import.disk-written", 2;
    import_exit_before_commit_converges, import_error_before_commit_leaves_nothing:
        "import.before-commit", 1;
    import_exit_after_commit_converges, import_error_after_commit_keeps_the_master:
        "import.committed", 1;
}

macro_rules! clone_fault_tests {
    ($($exit:ident, $error:ident: $step:literal, $nth:literal;)*) => {$(
        #[test]
        fn $exit() {
            let env = TestEnv::new("dr-cx");
            env.vmd_ok(&["import", &ova()]);
            let spec = format!("{}:exit:{}", $step, $nth);
            crash_then_doctor_then_retry(&env, &["clone", "tiny", "c1"], &spec, cloned());
            assert_backing_present(&env, "c1");
        }

        #[test]
        fn $error() {
            let env = TestEnv::new("dr-ce");
            env.vmd_ok(&["import", &ova()]);
            let spec = format!("{}:error:{}", $step, $nth);
            error_leaves_nothing(&env, &["clone", "tiny", "c1"], &spec, imported(), cloned());
        }
    )*};
}

clone_fault_tests! {
    clone_exit_after_first_volume_converges, clone_error_after_first_volume_leaves_nothing:
        "clone.volume-created", 1;
    clone_exit_after_second_volume_converges, clone_error_after_second_volume_leaves_nothing:
        "clone.volume-created", 2;
    clone_exit_before_commit_converges, clone_error_before_commit_leaves_nothing:
        "clone.before-commit", 1;
    clone_exit_after_commit_converges, clone_error_after_commit_keeps_the_clone:
        "clone.committed", 1;
}

#[test]
fn doctor_without_fix_reports_orphans_and_exits_1_then_fix_repairs_them() {
    let env = TestEnv::new("dr-report");
    let out = vmd_with(
        &env,
        &["import", &ova()],
        &[("VMD_FAIL", "import.volume-created:exit:2")],
    );
    assert_eq!(out.status.code(), Some(137));
    let (code, report) = doctor(&env, false);
    assert_eq!(code, 1, "{report:#}");
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["orphan-volume", "orphan-volume", "stale-lock"],
        "{report:#}"
    );
    assert_eq!(
        env.volumes().len(),
        2,
        "doctor without --fix changes nothing"
    );
    let (code, report) = doctor(&env, true);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["fixed"], 3);
    assert!(report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["fixed"] == true));
    assert_eq!(end_state(&env), empty());
}

#[test]
fn doctor_fix_marks_deployed_vmd_whose_domain_vanished_undeployed() {
    let env = TestEnv::new("dr-gone");
    let name = unique("gone");
    let _guard = DomainGuard(format!("vmd-{name}"));
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", &name]);
    env.vmd_ok(&["deploy", &name]);
    common::run(Command::new("virsh").args([
        "-c",
        "qemu:///system",
        "undefine",
        &format!("vmd-{name}"),
    ]));
    let (code, report) = doctor(&env, false);
    assert_eq!(code, 1);
    assert_eq!(
        report["problems"][0]["kind"], "missing-domain",
        "{report:#}"
    );
    let (code, report) = doctor(&env, true);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(env.json(&["show", &name])["state"], "undeployed");
    env.vmd_ok(&["redeploy", &name]);
    assert_eq!(env.json(&["show", &name])["state"], "deployed");
    env.vmd_ok(&["undeploy", &name]);
}

#[test]
fn doctor_reports_missing_volume_and_backing_and_keeps_the_records() {
    let env = TestEnv::new("dr-miss");
    env.vmd_ok(&["import", &ova()]);
    env.vmd_ok(&["clone", "tiny", "c1"]);
    let master_disk = env.json(&["show", "tiny"])["disks"][0]["volume"]
        .as_str()
        .unwrap()
        .to_string();
    common::run(Command::new("virsh").args([
        "-c",
        "qemu:///system",
        "vol-delete",
        "--pool",
        &env.pool,
        &master_disk,
    ]));
    for fix in [false, true] {
        let (code, report) = doctor(&env, fix);
        assert_eq!(code, 1, "{report:#}");
        let mut kinds: Vec<&str> = report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["kind"].as_str().unwrap())
            .collect();
        kinds.sort();
        assert_eq!(kinds, ["missing-backing", "missing-volume"], "{report:#}");
        assert_eq!(report["fixed"], 0);
    }
    assert_eq!(env.catalog(), ["c1", "tiny"]);
}

#[test]
fn doctor_fix_removes_dead_temp_file_and_leaves_foreign_volumes_alone() {
    let env = TestEnv::new("dr-foreign");
    env.vmd_ok(&["import", &ova()]);
    // A vmd-named volume of an id this state directory has no record or lock file for:
    // another state directory's, on a shared host.
    let foreign = format!("vmd-{}-d0.qcow2", uuid::Uuid::new_v4().simple());
    common::run(Command::new("virsh").args([
        "-c",
        "qemu:///system",
        "vol-create-as",
        &env.pool,
        &foreign,
        "1M",
        "--format",
        "qcow2",
    ]));
    let tmp = env.state_dir().join("catalog/.abc.json.99999999.tmp");
    std::fs::write(&tmp, b"{half").unwrap();
    let (code, report) = doctor(&env, true);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["problems"][0]["kind"], "temp-file", "{report:#}");
    assert_eq!(
        report["problems"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert!(report["foreign"].as_u64().unwrap() >= 1, "{report:#}");
    assert!(!tmp.exists());
    assert!(env.volumes().contains(&foreign));
}
