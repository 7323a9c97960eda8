//! What the names and limits tests share: a test package of one blank disk, a hand edit of a
//! catalog record (a record written before a rule existed), and the assertions of a refusal:
//! its exit status, its one-line message, and a state directory and pool left as they were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::env::TestEnv;
use crate::common::ovf::{descriptor, Disk};
use crate::common::packages::package_dir;

pub const MIB: u64 = 1 << 20;

/// Writes the directory package `<stem>/<stem>.ovf` (vmd names a package after its
/// directory): system `system`, one blank 1 MiB disk at `AddressOnParent` `unit`. Returns
/// the descriptor's path.
pub fn blank_package(env: &TestEnv, stem: &str, system: &str, unit: u32) -> PathBuf {
    let dir = package_dir(env.dir(), stem);
    let text = descriptor(&dir, system, &[Disk::blank(MIB)]).replace(
        "<rasd:AddressOnParent>0</rasd:AddressOnParent>",
        &format!("<rasd:AddressOnParent>{unit}</rasd:AddressOnParent>"),
    );
    let path = dir.join(format!("{stem}.ovf"));
    std::fs::write(&path, text).unwrap();
    path
}

pub fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A blank instance `name` (1 MiB OS disk, `data` data disks of 1 MiB); returns its id.
pub fn create(env: &TestEnv, name: &str, data: usize) -> String {
    let mut args = vec!["create", name, "--os-disk", "1M", "--memory", "64"];
    for _ in 0..data {
        args.extend(["--data-disk", "1M"]);
    }
    env.vmd_ok(&args);
    env.json(&["show", name])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Rewrites the catalog record of VMD `id` through `edit`, as an older vmd (or a person)
/// could have written it.
pub fn edit_record(env: &TestEnv, id: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = env.state_dir().join("catalog").join(format!("{id}.json"));
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut record);
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
}

/// Every file under the state directory with its bytes, and the pool's volumes: what a
/// refused command must leave exactly as it was.
#[derive(Debug, PartialEq, Eq)]
pub struct Written {
    files: BTreeMap<PathBuf, Vec<u8>>,
    volumes: Vec<String>,
}

impl Written {
    pub fn now(env: &TestEnv) -> Self {
        let mut files = BTreeMap::new();
        let mut dirs = vec![env.state_dir()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.insert(path.clone(), std::fs::read(&path).unwrap());
                }
            }
        }
        Self {
            files,
            volumes: env.volumes(),
        }
    }
}

/// A refusal by vmd itself: exit `status`, stderr one line `vmd: ...` naming every needle,
/// nothing written since `before`.
pub fn assert_refused(
    env: &TestEnv,
    out: &Output,
    status: i32,
    needles: &[&str],
    before: &Written,
) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(status), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr is not one line:\n{err}");
    assert!(err.starts_with("vmd: "), "{err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "stderr does not name {needle:?}: {err}"
        );
    }
    assert_eq!(
        &Written::now(env),
        before,
        "the refusal wrote or removed something"
    );
}

/// A refusal by the argument parser (clap): exit 2, the first line `error: ...` naming every
/// needle, then only clap's pointer to `--help`; nothing written since `before`.
pub fn assert_usage(env: &TestEnv, out: &Output, needles: &[&str], before: &Written) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{err}");
    assert_eq!(
        err.lines().filter(|l| !l.trim().is_empty()).count(),
        2,
        "more than the error and the --help hint:\n{err}"
    );
    for needle in needles {
        assert!(
            first.contains(needle),
            "stderr does not name {needle:?}: {err}"
        );
    }
    assert_eq!(
        &Written::now(env),
        before,
        "the refusal wrote or removed something"
    );
}
