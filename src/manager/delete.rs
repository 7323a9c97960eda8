//! `delete`: a VMD, its volumes and its catalog record.

use super::{Error, StorageManager};
use crate::host::{DomainState, Host};
use crate::vmd::{Kind, State};

impl StorageManager {
    /// Deletes a VMD and its volumes. A master that still has clones is refused (their disks
    /// may be overlays of its volumes). Volumes go first and the record last, so an
    /// interrupted delete can simply be run again.
    /// An instance whose domain runs is refused unless `force`, which powers it off first.
    pub async fn delete(&self, name: &str, force: bool) -> Result<(), Error> {
        let catalog = self.catalog()?;
        let _lock = catalog.lock()?;
        let vmd = catalog.get(name)?;
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
        let disks = vmd.disks.clone();
        let deployed = vmd.state == State::Deployed;
        let uuid = vmd.id.uuid();
        let label = vmd.name.to_string();
        self.with_host(move |host| {
            if deployed {
                let state = host.domain_state(&uuid)?;
                if matches!(state, Some(DomainState::Running | DomainState::Paused)) && !force {
                    return Err(Error::Busy(format!(
                        "{label} is running: stop it first, or delete it with --force"
                    )));
                }
                host.destroy_domain(&uuid)?;
                host.undefine_domain(&uuid)?;
            }
            for disk in &disks {
                host.delete_volume(&disk.pool, &disk.volume)?;
            }
            Ok(())
        })
        .await?;
        catalog.remove(&vmd.id)?;
        Ok(())
    }
}
