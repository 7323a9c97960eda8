//! Helpers for `tests/doctor.rs`: running vmd with failure injection, `vmd doctor`, and the
//! end state a user checks after a command, normalised so that two runs compare equal.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::process::{Command, Output};

use crate::common::env::TestEnv;
use crate::common::tiny_ova;

pub fn ova() -> String {
    tiny_ova().to_str().unwrap().to_string()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs vmd in `env` with extra environment variables.
pub fn vmd_with(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = env.command();
    cmd.args(args).env("VMD_VIRT_TYPE", "qemu");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// What a user checks after a command: the catalog's VMDs (name, kind, state), the pool's
/// volumes with each VMD id replaced by its name (an id the catalog does not know stays
/// visible as `?<id>`), the catalog's temporary files and lock files of unknown VMDs.
#[derive(Debug, PartialEq, Eq)]
pub struct EndState {
    pub vmds: Vec<(String, String, String)>,
    pub volumes: Vec<String>,
    pub leftover_files: Vec<String>,
}

pub fn end_state(env: &TestEnv) -> EndState {
    let list = env.json(&["list"]);
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut vmds = Vec::new();
    for v in list.as_array().unwrap() {
        let id = v["id"].as_str().unwrap().replace('-', "");
        let name = v["name"].as_str().unwrap().to_string();
        names.insert(id, name.clone());
        let kind = v["kind"].as_str().unwrap().to_string();
        vmds.push((name, kind, v["state"].as_str().unwrap().to_string()));
    }
    let mut volumes: Vec<String> = env
        .volumes()
        .into_iter()
        .map(
            |vol| match vol.strip_prefix("vmd-").and_then(|r| r.get(..32)) {
                Some(hex) => {
                    let owner = names.get(hex).cloned().unwrap_or(format!("?{hex}"));
                    format!("{owner}{}", &vol[4 + 32..])
                }
                None => vol,
            },
        )
        .collect();
    volumes.sort();
    let mut leftover_files = Vec::new();
    let catalog_dir = env.state_dir().join("catalog");
    for e in std::fs::read_dir(&catalog_dir).into_iter().flatten() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            leftover_files.push(format!("catalog/{name}"));
        }
    }
    for e in std::fs::read_dir(env.state_dir().join("locks"))
        .into_iter()
        .flatten()
    {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let hex = name.trim_end_matches(".lock").replace('-', "");
        if !names.contains_key(&hex) {
            leftover_files.push(format!("locks/{name}"));
        }
    }
    EndState {
        vmds,
        volumes,
        leftover_files,
    }
}

/// `vmd doctor --json` (and `--fix`), its exit status and report.
pub fn doctor(env: &TestEnv, fix: bool) -> (i32, serde_json::Value) {
    let mut args = vec!["doctor", "--json"];
    if fix {
        args.push("--fix");
    }
    let out = env.vmd(&args);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}", stderr(&out)));
    (out.status.code().unwrap(), report)
}

pub fn assert_no_problems(env: &TestEnv) {
    let (code, report) = doctor(env, false);
    assert_eq!(code, 0, "doctor found problems: {report:#}");
    assert_eq!(report["problems"], serde_json::json!([]));
}

/// A clean import's end state.
pub fn imported() -> EndState {
    EndState {
        vmds: vec![("tiny".into(), "master".into(), "ready".into())],
        volumes: vec!["tiny-d0.qcow2".into(), "tiny-d1.qcow2".into()],
        leftover_files: vec![],
    }
}

/// A clean import then clone's end state.
pub fn cloned() -> EndState {
    EndState {
        vmds: vec![
            ("c1".into(), "instance".into(), "cloned".into()),
            ("tiny".into(), "master".into(), "ready".into()),
        ],
        volumes: vec![
            "c1-d0.qcow2".into(),
            "c1-d1.qcow2".into(),
            "tiny-d0.qcow2".into(),
            "tiny-d1.qcow2".into(),
        ],
        leftover_files: vec![],
    }
}

/// Every disk of `name` is backed by a file that exists.
pub fn assert_backing_present(env: &TestEnv, name: &str) {
    for d in env.json(&["show", name])["disks"].as_array().unwrap() {
        if let Some(b) = d["backing"].as_str() {
            assert!(std::path::Path::new(b).exists(), "{name}: backing {b} gone");
        }
    }
}

pub fn empty() -> EndState {
    EndState {
        vmds: vec![],
        volumes: vec![],
        leftover_files: vec![],
    }
}

/// The lock file of a VMD, opened and locked exclusively by this test process.
pub fn hold_lock(env: &TestEnv, name: &str) -> std::fs::File {
    let id = env.json(&["show", name])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let locks = env.state_dir().join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(locks.join(format!("{id}.lock")))
        .unwrap();
    file.lock().unwrap();
    file
}

/// A VMD name unique on this host (domain names are host-wide).
pub fn unique(short: &str) -> String {
    format!(
        "{short}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

pub fn domain_defined(name: &str) -> bool {
    Command::new("virsh")
        .args(["-c", "qemu:///system", "dominfo", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// Undefines a test domain even when the test fails half-way.
pub struct DomainGuard(pub String);

impl Drop for DomainGuard {
    fn drop(&mut self) {
        for cmd in ["destroy", "undefine"] {
            let _ = Command::new("virsh")
                .args(["-c", "qemu:///system", cmd, &self.0])
                .output();
        }
    }
}
