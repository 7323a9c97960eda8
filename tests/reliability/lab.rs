//! The shared bench of the reliability tests: an isolated [`TestEnv`] with names unique to the
//! run, `vmd` run with TCG guests, and the checks every fault test ends with: the catalog
//! parses, it and the pool agree (no orphan volume, no missing one), every backing file is
//! there, the host's domains are the deployed instances', and no temporary file is left.
#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::env::TestEnv;
use crate::common::{run, tiny_ova};

pub struct Lab {
    pub env: TestEnv,
    pub tag: String,
}

impl Lab {
    pub fn new(tag: &str) -> Self {
        let env = TestEnv::new(tag);
        let tag = format!("{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        Self { env, tag }
    }

    /// A VMD name unique to this run (domain names are host-wide).
    pub fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.tag)
    }

    /// `vmd` with this lab's state, pool and TCG guests.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command();
        cmd.env("VMD_VIRT_TYPE", "qemu").args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run vmd")
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run vmd")
    }

    /// Runs vmd and panics, with its stderr, unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vmd {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("vmd {args:?}: {e}: {out}"))
    }

    pub fn show(&self, name: &str) -> serde_json::Value {
        self.json(&["show", name])
    }

    /// Imports the tiny appliance as master `name`.
    pub fn import_tiny(&self, name: &str) {
        self.ok(&["import", tiny_ova().to_str().unwrap(), "--name", name]);
    }

    /// The disk paths of a VMD.
    pub fn disk_paths(&self, name: &str) -> Vec<String> {
        self.show(name)["disks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap().to_string())
            .collect()
    }

    /// Every catalog record, each read and parsed from its file (a torn or empty record
    /// fails the test here).
    pub fn records(&self) -> Vec<serde_json::Value> {
        let dir = self.env.state_dir().join("catalog");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("catalog record {} does not parse: {e}", path.display())
            });
            out.push(v);
        }
        out
    }

    /// The domains on the host whose name carries this lab's tag.
    pub fn domains(&self) -> BTreeSet<String> {
        let out =
            run(Command::new("virsh").args(["-c", "qemu:///system", "list", "--all", "--name"]));
        self.tagged(&out)
    }

    fn tagged(&self, list: &str) -> BTreeSet<String> {
        list.lines()
            .map(str::trim)
            .filter(|l| l.contains(&self.tag))
            .map(str::to_string)
            .collect()
    }

    /// Files in the lab's directories that look like an operation's leftovers: catalog
    /// temporaries, import staging and partial files.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(self.env.dir(), &mut |p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            if n.ends_with(".tmp")
                || n.ends_with(".new")
                || n.ends_with(".part")
                || n.ends_with(".vmd-stage")
            {
                found.push(p.to_path_buf());
            }
        });
        found
    }

    /// What a clean run leaves: the catalog parses; the pool holds exactly the catalog's
    /// volumes; every disk and backing file exists; a domain exists exactly for each
    /// deployed instance; no temporary file is left.
    pub fn assert_consistent(&self) {
        self.assert_consistent_in(&[]);
    }

    /// [`Lab::assert_consistent`], checking `extra` pools besides the lab's own.
    pub fn assert_consistent_in(&self, extra: &[&str]) {
        let records = self.records();
        let mut pools: Vec<&str> = vec![self.env.pool.as_str()];
        pools.extend_from_slice(extra);
        let mut expected = BTreeSet::new();
        let mut deployed = BTreeSet::new();
        for r in &records {
            let name = r["name"].as_str().unwrap();
            for d in r["disks"].as_array().unwrap() {
                let path = d["path"].as_str().unwrap();
                assert!(Path::new(path).is_file(), "{name}: disk {path} is missing");
                if let Some(b) = d["backing"].as_str() {
                    assert!(
                        Path::new(b).is_file(),
                        "{name}: backing file {b} is missing"
                    );
                }
                let pool = d["pool"].as_str().unwrap();
                assert!(
                    pools.contains(&pool),
                    "{name}: disk in unchecked pool {pool}"
                );
                expected.insert(format!("{pool}/{}", d["volume"].as_str().unwrap()));
            }
            if r["state"] == "deployed" {
                deployed.insert(r["deployment"]["domain"].as_str().unwrap().to_string());
            }
        }
        let volumes: BTreeSet<String> = pools
            .iter()
            .flat_map(|p| volumes_of(p).into_iter().map(move |v| format!("{p}/{v}")))
            .collect();
        assert_eq!(volumes, expected, "pool volumes vs catalog");
        assert_eq!(
            self.domains(),
            deployed,
            "host domains vs deployed instances"
        );
        assert_eq!(
            self.temp_files(),
            Vec::<PathBuf>::new(),
            "temporary files left"
        );
    }
}

/// The volumes of a pool, by name, after a refresh.
pub fn volumes_of(pool: &str) -> Vec<String> {
    virt::error::clear_error_callback();
    let c = virt::connect::Connect::open(Some("qemu:///system")).unwrap();
    let p = c.lookup_storage_pool_by_name(pool).unwrap();
    p.refresh(0).unwrap();
    let mut names = p.list_volumes().unwrap();
    names.sort();
    names
}

impl Drop for Lab {
    /// Removes the domains a failed test left (a passing one deletes its own); the
    /// environment then removes the pool and the state directory.
    fn drop(&mut self) {
        // Never panics: it may run while a test unwinds, with libvirtd down.
        let Ok(list) = Command::new("virsh")
            .args(["-c", "qemu:///system", "list", "--all", "--name"])
            .output()
        else {
            return;
        };
        for d in self.tagged(&String::from_utf8_lossy(&list.stdout)) {
            for args in [
                &["destroy", d.as_str()][..],
                &["undefine", d.as_str(), "--snapshots-metadata"],
            ] {
                let _ = Command::new("virsh")
                    .args(["-c", "qemu:///system"])
                    .args(args)
                    .output();
            }
        }
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, f),
            _ => f(&p),
        }
    }
}

/// Asserts a failure as a user sees it: a non-zero exit (`code` when given) and one line of
/// stderr, starting `vmd: `, holding every needle (case-insensitive).
pub fn assert_fails(out: &Output, code: Option<i32>, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "succeeded; stderr: {stderr}");
    if let Some(c) = code {
        assert_eq!(out.status.code(), Some(c), "stderr: {stderr}");
    }
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    assert!(lines[0].starts_with("vmd: "), "{stderr}");
    let lower = lines[0].to_lowercase();
    for n in needles {
        assert!(lower.contains(&n.to_lowercase()), "{n:?} not in {stderr:?}");
    }
    lines[0].to_string()
}

/// `qemu-img info --backing-chain` of an image: one JSON object per image in the chain.
pub fn backing_chain(path: &str) -> Vec<serde_json::Value> {
    let out = run(Command::new("qemu-img").args([
        "info",
        "--backing-chain",
        "-U",
        "--output=json",
        path,
    ]));
    serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
}
