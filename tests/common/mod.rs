//! Shared helpers for the integration tests: the test appliance, the `vmd` binary, and
//! throwaway guests on the real libvirtd (`qemu:///system`, TCG).
#![allow(dead_code)]

pub mod env;
pub mod guest;
pub mod ovf;
pub mod packages;
pub mod remote;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds (or finds in its cache) the tiny test appliance and returns the `.ova` path.
pub fn tiny_ova() -> PathBuf {
    static OVA: OnceLock<PathBuf> = OnceLock::new();
    OVA.get_or_init(|| {
        let out = Command::new(repo().join("ovf/build-tiny"))
            .output()
            .expect("run ovf/build-tiny");
        assert!(
            out.status.success(),
            "ovf/build-tiny failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert!(
            path.is_file(),
            "ovf/build-tiny printed {path:?}, not a file"
        );
        path
    })
    .clone()
}

/// Runs the `vmd` binary built for these tests.
pub fn vmd(args: &[&str]) -> Output {
    vmd_env(args, &[])
}

/// Runs `vmd` with extra environment variables.
pub fn vmd_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmd"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run vmd")
}

/// A directory removed when dropped, readable by QEMU (which runs as another user under
/// `qemu:///system`), under libvirt's own image directory.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let base = Path::new("/var/lib/libvirt/images");
        let path = base.join(format!(
            "vmd-test-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).expect("create scratch dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs a command and panics with its stderr if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
