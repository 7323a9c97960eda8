//! An isolated vmd environment on the real libvirtd: its own state directory and its own
//! `dir` storage pool, both removed when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use virt::connect::Connect;

use super::Scratch;

pub struct TestEnv {
    scratch: Scratch,
    pub pool: String,
}

fn conn() -> Connect {
    virt::error::clear_error_callback();
    Connect::open(Some("qemu:///system")).expect("connect qemu:///system")
}

impl TestEnv {
    pub fn new(tag: &str) -> Self {
        let scratch = Scratch::new(tag);
        let pool_dir = scratch.path().join("pool");
        std::fs::create_dir_all(&pool_dir).unwrap();
        let pool = format!(
            "vmdtest-{tag}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let xml = format!(
            "<pool type='dir'><name>{pool}</name><target><path>{}</path></target></pool>",
            pool_dir.display()
        );
        let c = conn();
        let p = c
            .create_storage_pool_xml(&xml, 0)
            .expect("create test pool");
        drop(p);
        Self { scratch, pool }
    }

    pub fn dir(&self) -> &Path {
        self.scratch.path()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.scratch.path().join("state")
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmd"));
        cmd.env("VMD_STATE_DIR", self.state_dir())
            .env("VMD_POOL", &self.pool)
            .env("VMD_CONNECT", "qemu:///system");
        cmd
    }

    pub fn vmd(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run vmd")
    }

    /// Runs vmd and panics, with its stderr, unless it succeeds.
    pub fn vmd_ok(&self, args: &[&str]) -> String {
        let out = self.vmd(args);
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
        serde_json::from_str(&self.vmd_ok(&all)).expect("one JSON document")
    }

    /// The volumes in this environment's pool, by name.
    pub fn volumes(&self) -> Vec<String> {
        let c = conn();
        let p = c.lookup_storage_pool_by_name(&self.pool).unwrap();
        p.refresh(0).unwrap();
        let mut names = p.list_volumes().unwrap();
        names.sort();
        names
    }

    /// The names in the catalog.
    pub fn catalog(&self) -> Vec<String> {
        let list = self.json(&["list"]);
        list.as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let c = conn();
        if let Ok(p) = c.lookup_storage_pool_by_name(&self.pool) {
            let _ = p.refresh(0);
            if let Ok(vols) = p.list_all_volumes(0) {
                for v in vols {
                    let _ = v.delete(0);
                }
            }
            let _ = p.destroy();
        }
    }
}
