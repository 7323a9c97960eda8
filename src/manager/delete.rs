//! `delete`: a VMD, its volumes and its catalog record.

use super::{Error, StorageManager};
use crate::host::Host;
use crate::vmd::Kind;

impl StorageManager {
    /// Deletes a VMD and its volumes. A master that still has clones is refused (their disks
    /// may be overlays of its volumes). Volumes go first and the record last, so an
    /// interrupted delete can simply be run again.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
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
        self.with_host(move |host| {
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
