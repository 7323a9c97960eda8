//! The second libvirt host (`scripts/second-host`): started once per test binary (the script
//! is idempotent; `make test` stops it at the end), and pools on it that tests own.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use virt::connect::Connect;

use super::{repo, run};

/// Starts the second host unless it runs, and returns its URI.
pub fn second_host() -> String {
    static URI: OnceLock<String> = OnceLock::new();
    URI.get_or_init(|| {
        run(Command::new(repo().join("scripts/second-host")).arg("start"))
            .trim()
            .to_string()
    })
    .clone()
}

/// A transient `dir` pool on the second host, destroyed (with its volumes) when dropped.
pub struct RemotePool {
    pub uri: String,
    pub name: String,
    pub path: String,
}

impl RemotePool {
    /// A pool at `<host's /var/lib/libvirt/images>/<name>`: a path that, in this namespace,
    /// names a directory of the *first* host, or nothing.
    pub fn new(tag: &str) -> Self {
        let uri = second_host();
        let name = format!(
            "vmdtest-{tag}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let path = format!("/var/lib/libvirt/images/{name}");
        let xml = format!(
            "<pool type='dir'><name>{name}</name><target><path>{path}</path></target></pool>"
        );
        let c = connect(&uri);
        // VIR_STORAGE_POOL_CREATE_WITH_BUILD: the host makes the directory.
        c.create_storage_pool_xml(&xml, 1)
            .expect("create pool on the second host");
        Self { uri, name, path }
    }
}

impl Drop for RemotePool {
    fn drop(&mut self) {
        let c = connect(&self.uri);
        if let Ok(p) = c.lookup_storage_pool_by_name(&self.name) {
            if let Ok(vols) = p.list_all_volumes(0) {
                for v in vols {
                    let _ = v.delete(0);
                }
            }
            let _ = p.destroy();
        }
        // A transient pool leaves its (empty) directory behind on the host.
        let _ = std::fs::remove_dir(self.real_path(&self.path));
    }
}

impl RemotePool {
    /// Where a path the second host reports under its `/var/lib/libvirt` really is in this
    /// namespace: under `scripts/second-host`'s state directory.
    pub fn real_path(&self, host_path: &str) -> PathBuf {
        let dir = std::env::var_os("VMD_SECOND_HOST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/vmd-second-host"));
        let rest = host_path
            .strip_prefix("/var/lib/libvirt/")
            .unwrap_or_else(|| panic!("{host_path} is not under /var/lib/libvirt"));
        dir.join("lib").join(rest)
    }
}

pub fn connect(uri: &str) -> Connect {
    virt::error::clear_error_callback();
    Connect::open(Some(uri)).expect("connect to the second host")
}
