//! A state directory's default pool belongs to it: two state directories on one host, both
//! without `--pool`, each write under their own directory, whatever pools the host already
//! has (a pool named `vmd` of another state directory included).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Scratch;

fn vmd(state: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vmd"))
        .env_remove("VMD_POOL")
        .env("VMD_STATE_DIR", state)
        .env("VMD_CONNECT", "qemu:///system")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vmd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Deletes the VMDs and undefines the pools that `state` made, found by their path.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let c = virt::connect::Connect::open(Some("qemu:///system")).unwrap();
        for p in c.list_all_storage_pools(0).unwrap() {
            let xml = p.xml_desc(0).unwrap_or_default();
            if self
                .0
                .iter()
                .any(|d| xml.contains(&d.display().to_string()))
            {
                if let Ok(vols) = p.list_all_volumes(0) {
                    for v in vols {
                        let _ = v.delete(0);
                    }
                }
                let _ = p.destroy();
                let _ = p.undefine();
            }
        }
    }
}

#[test]
fn create_without_pool_in_two_state_dirs_writes_under_each() {
    let (a, b) = (Scratch::new("defpool-a"), Scratch::new("defpool-b"));
    let _cleanup = Cleanup(vec![a.path().to_path_buf(), b.path().to_path_buf()]);
    let (sa, sb) = (a.path().join("state"), b.path().join("state"));

    let va = vmd(&sa, &["create", "defpool-a1", "--os-disk", "1M"]);
    let vb = vmd(&sb, &["create", "defpool-b1", "--os-disk", "1M"]);

    let (da, db) = (&va["disks"][0], &vb["disks"][0]);
    assert!(
        da["path"]
            .as_str()
            .unwrap()
            .starts_with(sa.join("pools").to_str().unwrap()),
        "{da}"
    );
    assert!(
        db["path"]
            .as_str()
            .unwrap()
            .starts_with(sb.join("pools").to_str().unwrap()),
        "{db}"
    );
    assert_ne!(da["pool"], db["pool"], "one pool per state directory");
    // A second command in each state directory finds its own pool again.
    let va2 = vmd(&sa, &["create", "defpool-a2", "--os-disk", "1M"]);
    assert_eq!(va2["disks"][0]["pool"], da["pool"]);
}
