//! The northbound API: [`StorageManager`] and the life-cycle operations, each with its
//! rollback. Async at the edge; libvirt's blocking calls run on tokio's blocking pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::host::libvirt::LibvirtHost;
use crate::host::{Host, HostInfo, DEFAULT_URI};
use crate::vmd::catalog::{Catalog, CatalogError};
use crate::vmd::lock::VmdLock;
use crate::vmd::Vmd;

mod block;
#[cfg(test)]
mod block_tests;
mod clone;
mod console;
mod copy;
mod delete;
pub mod deploy;
mod device;
mod doctor;
mod error;
pub(crate) mod fault;
mod import;
mod lifecycle;
#[cfg(test)]
mod memory_tests;
mod pools;
mod progress;
mod rollback;
mod snapshot;
mod views;

pub use clone::{CloneRequest, Placement};
pub use console::Console;
pub use deploy::{DeployRequest, Status, StopOptions};
pub use device::{AddDeviceRequest, AttachedDevice, CreateRequest};
pub use doctor::{DoctorReport, Problem, ProblemKind};
pub use error::{Error, ErrorKind};
pub use fault::STEPS as FAULT_STEPS;
pub use import::{
    ImportOutcome, ImportPlan, ImportRequest, PlannedDisk, PlannedSource, VerifyReport,
};
pub use lifecycle::UndeployRequest;
pub use progress::{NoProgress, Progress};
pub use snapshot::SnapshotInfo;
pub use views::VmdSummary;

/// Where vmd finds its host and keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The libvirt URI (`qemu:///system` by default).
    pub uri: String,
    /// The state directory holding the catalog and the default pool.
    pub state_dir: PathBuf,
}

impl Config {
    /// The state directory a user expects: `/var/lib/vmd` for root, else
    /// `$XDG_DATA_HOME/vmd` (or `~/.local/share/vmd`).
    pub fn default_state_dir() -> PathBuf {
        // The owner of /proc/self is the process's effective user: unlike $USER or $HOME,
        // it cannot be stale under sudo or in a cleared environment.
        let is_root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        if is_root {
            return PathBuf::from("/var/lib/vmd");
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("vmd");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".local/share/vmd")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            uri: DEFAULT_URI.to_string(),
            state_dir: Self::default_state_dir(),
        }
    }
}

/// Runs blocking work (file and image I/O, libvirt calls) on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

/// How long an operation waits for a VMD another process is working on before it fails as
/// busy: `VMD_LOCK_TIMEOUT` seconds, 30 by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

fn lock_timeout() -> Result<Duration, Error> {
    match std::env::var("VMD_LOCK_TIMEOUT") {
        Ok(v) => v.trim().parse().map(Duration::from_secs).map_err(|_| {
            Error::Request(format!(
                "VMD_LOCK_TIMEOUT={v:?} is not a whole number of seconds"
            ))
        }),
        Err(_) => Ok(DEFAULT_LOCK_TIMEOUT),
    }
}

/// Takes the lock of the VMD named `name_or_id` (shared, for reading it as a source, or
/// exclusive), waiting a bounded time, then re-reads its record: what was read before the
/// wait may be stale, or the VMD gone (the Nova pattern: lock, then re-check).
fn lock_vmd(catalog: &Catalog, name_or_id: &str, shared: bool) -> Result<(VmdLock, Vmd), Error> {
    let seen = catalog.get(name_or_id)?;
    let timeout = lock_timeout()?;
    let locked = if shared {
        catalog.lock_vmd_shared(&seen.id, timeout)
    } else {
        catalog.lock_vmd(&seen.id, timeout)
    };
    let lock = locked.map_err(|e| match e {
        CatalogError::Busy { waited_secs, .. } => CatalogError::Busy {
            vmd: seen.name.to_string(),
            waited_secs,
        },
        other => other,
    })?;
    match catalog.get_id(&seen.id) {
        Ok(vmd) => Ok((lock, vmd)),
        Err(CatalogError::NotFound(_)) => {
            // Deleted while we waited; our attempt made a new lock file, ours to clear when
            // nobody else holds it.
            drop(lock);
            if let Ok(Some(lock)) = catalog.try_lock_vmd(&seen.id) {
                if !catalog.contains(&seen.id) {
                    let _ = lock.remove();
                }
            }
            Err(CatalogError::NotFound(name_or_id.to_string()).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Locks the id of a VMD about to be made, before its first volume: while held, `doctor`
/// leaves its objects alone; if the process dies, the lock file tells `doctor` they are
/// this state directory's leftovers.
fn lock_new(catalog: &Catalog, id: &crate::vmd::VmdId) -> Result<VmdLock, Error> {
    Ok(catalog.lock_vmd(id, lock_timeout()?)?)
}

/// The image format `qemu-img` and vmd's inspector know a volume format by.
fn image_format(f: crate::vmd::DiskFormat) -> crate::image::ImageFormat {
    match f {
        crate::vmd::DiskFormat::Qcow2 => crate::image::ImageFormat::Qcow2,
        crate::vmd::DiskFormat::Raw => crate::image::ImageFormat::Raw,
    }
}

/// The qemu-img runner, from `VMD_QEMU_IMG` or the `PATH`.
fn qemu_img() -> Result<crate::image::qemu_img::QemuImg, Error> {
    Ok(crate::image::qemu_img::QemuImg::from_env()?)
}

/// The northbound API: every vmd operation on containers (VMDs) and their host.
#[derive(Clone)]
pub struct StorageManager {
    config: Config,
    /// The host given by injection ([`StorageManager::with_host`]); `None`: a libvirt
    /// connection to `config.uri`, opened for each operation.
    host: Option<Arc<dyn Host + Send + Sync>>,
}

impl std::fmt::Debug for StorageManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageManager")
            .field("config", &self.config)
            .field("host", &self.host.as_ref().map(|_| "injected"))
            .finish()
    }
}

impl StorageManager {
    /// A manager for the host and state directory in `config`. Connects lazily.
    pub fn new(config: Config) -> Self {
        Self { config, host: None }
    }

    /// A manager that drives `host` (any implementation of the southbound trait: another
    /// backend, or a test double) instead of a libvirt connection to `config.uri`.
    pub fn with_host(config: Config, host: Arc<dyn Host + Send + Sync>) -> Self {
        Self {
            config,
            host: Some(host),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs blocking host work on tokio's blocking pool, on the injected host or a fresh
    /// libvirt connection.
    async fn on_host<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Host) -> Result<T, Error> + Send + 'static,
    {
        let uri = self.config.uri.clone();
        let injected = self.host.clone();
        blocking(move || match injected {
            Some(host) => f(host.as_ref()),
            None => {
                let host = LibvirtHost::connect(&uri)?;
                f(&host)
            }
        })
        .await
    }

    /// Views of the host: libvirt and QEMU versions, domain types offered, storage pools.
    ///
    /// Each running pool's access is proved as import would prove it: a probe volume is
    /// created and deleted in every running `dir`, `fs` and `netfs` pool.
    pub async fn host_info(&self) -> Result<HostInfo, Error> {
        self.on_host(|h| {
            let mut info = h.info()?;
            for p in info.pools.iter_mut().filter(|p| p.state == "running") {
                let Ok(name) = p.name.parse::<crate::vmd::PoolName>() else {
                    continue;
                };
                // A pool libvirt cannot stream to is written by vmd's own writer for its
                // kind (`iscsi`: QEMU's iSCSI client), or not at all (`none`).
                if let Ok(caps) = h.pool_caps(&name) {
                    if !caps.streams {
                        p.access = Some(match caps.writer {
                            Some(crate::host::PoolWriter::Iscsi(_)) => "iscsi",
                            None => "none",
                        });
                        continue;
                    }
                }
                // A pool stopped or removed since the listing, or one that refuses the
                // probe volume (full, read-only), keeps its access unknown.
                p.access = h.pool_access(&name).ok().map(|a| match a {
                    crate::host::PoolAccess::Local(_) => "local",
                    crate::host::PoolAccess::Streams => "streams",
                });
            }
            Ok(info)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The injected host is the one operations drive: here libvirt's test driver, while the
    /// configured URI names a socket that does not exist.
    #[tokio::test]
    async fn with_host_injected_host_is_used_not_the_configured_uri() {
        let config = Config {
            uri: "qemu+unix:///system?socket=/nonexistent".to_string(),
            state_dir: std::env::temp_dir().join("vmd-with-host-unused"),
        };
        let host = LibvirtHost::connect("test:///default").unwrap();

        let info = StorageManager::with_host(config.clone(), Arc::new(host))
            .host_info()
            .await
            .unwrap();
        let plain = StorageManager::new(config).host_info().await.unwrap_err();

        assert_eq!(info.uri, "test:///default");
        assert!(plain.to_string().contains("/nonexistent"), "{plain}");
    }
}
