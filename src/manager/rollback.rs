//! The undo list of an operation that makes a new VMD (import, clone, create, capture as a
//! master): the volumes and staging files it created, removed unless it commits, and the lock
//! on the new id that marks the work as in progress.
//!
//! The lock is taken before the first volume exists and its file is removed only once every
//! volume is gone again, so an interrupted operation always leaves either nothing or a lock
//! file that lets `doctor` claim its leftovers. This module must not decide when to commit:
//! the operation does, after its catalog record is written.

use std::path::PathBuf;

use super::{lock_new, Error};
use crate::host::Host;
use crate::vmd::catalog::Catalog;
use crate::vmd::lock::VmdLock;
use crate::vmd::{PoolName, VmdId, VolumeName};

/// What a new VMD's operation has created so far.
pub(super) struct NewVmd<'h> {
    host: &'h dyn Host,
    lock: Option<VmdLock>,
    volumes: Vec<(PoolName, VolumeName)>,
    files: Vec<PathBuf>,
    committed: bool,
}

impl<'h> NewVmd<'h> {
    /// Locks `id` (never seen before, so the wait is short) before anything is created.
    pub(super) fn begin(host: &'h dyn Host, catalog: &Catalog, id: &VmdId) -> Result<Self, Error> {
        Ok(Self {
            host,
            lock: Some(lock_new(catalog, id)?),
            volumes: Vec::new(),
            files: Vec::new(),
            committed: false,
        })
    }

    /// Records a volume just created.
    pub(super) fn volume(&mut self, pool: PoolName, name: VolumeName) {
        self.volumes.push((pool, name));
    }

    /// Records a staging file, removed whether the operation commits or not.
    pub(super) fn file(&mut self, path: PathBuf) {
        self.files.push(path);
    }

    /// The catalog record is written: the volumes stay (staging files still go when this
    /// is dropped).
    pub(super) fn commit(&mut self) {
        self.committed = true;
    }
}

impl Drop for NewVmd<'_> {
    fn drop(&mut self) {
        let mut clean = true;
        for f in self.files.drain(..) {
            clean &= match std::fs::remove_file(f) {
                Ok(()) => true,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            };
        }
        if self.committed {
            return;
        }
        // Newest first, as each step undoes the ones after it.
        for (pool, vol) in self.volumes.drain(..).rev() {
            clean &= self.host.delete_volume(&pool, &vol).is_ok();
        }
        if clean {
            if let Some(lock) = self.lock.take() {
                let _ = lock.remove();
            }
        }
        // Otherwise the lock file stays as the claim `doctor` needs on what is left.
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::host::libvirt::LibvirtHost;
    use crate::host::HostErrorKind;

    fn setup() -> (std::path::PathBuf, Catalog, LibvirtHost) {
        let dir = std::env::temp_dir().join(format!("vmd-rollback-{}", VmdId::new().simple()));
        let catalog = Catalog::open(&dir).unwrap();
        (
            dir,
            catalog,
            LibvirtHost::connect("test:///default").unwrap(),
        )
    }

    fn pool() -> PoolName {
        "default-pool".parse().unwrap()
    }

    #[test]
    fn new_vmd_dropped_uncommitted_deletes_volumes_and_lock_file() {
        let (dir, catalog, host) = setup();
        let id = VmdId::new();
        let vol = VolumeName::for_disk(&id, 0, "qcow2");
        {
            let mut made = NewVmd::begin(&host, &catalog, &id).unwrap();
            host.create_volume(&pool(), &vol, 1 << 20, "qcow2", false)
                .unwrap();
            made.volume(pool(), vol.clone());
            assert!(catalog.has_lock_file(&id));
            // Held while the operation runs: doctor leaves its objects alone.
            assert!(catalog.try_lock_vmd(&id).unwrap().is_none());
        }
        let err = host.volume(&pool(), &vol).unwrap_err();
        assert_eq!(err.kind(), HostErrorKind::NotFound, "{err}");
        assert!(!catalog.has_lock_file(&id));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn new_vmd_committed_keeps_volumes_and_releases_lock() {
        let (dir, catalog, host) = setup();
        let id = VmdId::new();
        let vol = VolumeName::for_disk(&id, 0, "qcow2");
        let stage = dir.join("x.vmd-stage");
        std::fs::write(&stage, b"staged").unwrap();
        {
            let mut made = NewVmd::begin(&host, &catalog, &id).unwrap();
            host.create_volume(&pool(), &vol, 1 << 20, "qcow2", false)
                .unwrap();
            made.volume(pool(), vol.clone());
            made.file(stage.clone());
            made.commit();
        }
        assert!(host.volume(&pool(), &vol).is_ok());
        assert!(!stage.exists(), "staging files go even on commit");
        assert!(catalog.lock_vmd(&id, Duration::ZERO).is_ok());
        host.delete_volume(&pool(), &vol).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
