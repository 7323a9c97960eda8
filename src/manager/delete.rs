//! `delete`: a VMD, its volumes and its catalog record. Volumes the VMD claimed (pre-existing
//! LUNs) are released, not deleted.

use super::{lock_vmd, Error, StorageManager};
use crate::host::DomainState;
use crate::vmd::catalog::Catalog;
use crate::vmd::{Kind, State};

impl StorageManager {
    /// Deletes a VMD and its volumes. A master that still has clones is refused (their disks
    /// may be overlays of its volumes). Volumes go first and the record last, so an
    /// interrupted delete can simply be run again.
    /// An instance whose domain runs is refused unless `force`, which powers it off first.
    ///
    /// The VMD's lock is held exclusively throughout: a clone of a master holds the master's
    /// lock shared, so a delete waits for clones in progress, then sees them and refuses.
    pub async fn delete(&self, name: &str, force: bool) -> Result<(), Error> {
        let state_dir = self.config.state_dir.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (lock, vmd) = lock_vmd(&catalog, &name, false)?;
            if vmd.kind == Kind::Master {
                let clones: Vec<String> = catalog
                    .list()?
                    .into_iter()
                    .filter(|v| v.parent == Some(vmd.id))
                    .map(|v| v.name.to_string())
                    .collect();
                if !clones.is_empty() {
                    return Err(Error::Busy(format!(
                        "master {} still has clones: {}; delete them first",
                        vmd.name,
                        clones.join(", ")
                    )));
                }
            }
            let uuid = vmd.id.uuid();
            if vmd.state == State::Deployed {
                let state = host.domain_state(&uuid)?;
                if matches!(state, Some(DomainState::Running | DomainState::Paused)) && !force {
                    return Err(Error::Busy(format!(
                        "{} is running: stop it first, or delete it with --force",
                        vmd.name
                    )));
                }
                host.destroy_domain(&uuid)?;
                host.undefine_domain(&uuid)?;
            }
            // A claimed volume (a LUN) pre-existed: dropping the record releases it; its
            // content stays until the next claim overwrites it.
            for disk in vmd.disks.iter().filter(|d| !d.claimed) {
                host.delete_volume(&disk.pool, &disk.volume)?;
            }
            catalog.remove(&vmd.id)?;
            // The VMD is gone: so is its lock file (removed while held, so waiters start over
            // and find no record).
            lock.remove()?;
            Ok(())
        })
        .await
    }
}
