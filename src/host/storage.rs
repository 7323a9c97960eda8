//! Storage pools and volumes over libvirt's storage API.

use std::path::Path;

use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use super::libvirt::{call_error, LibvirtHost};
use super::{xml, HostError, HostErrorKind, PoolInfo, VolumeInfo};
use crate::vmd::{PoolName, VolumeName};

impl LibvirtHost {
    /// `virStoragePoolLookupByName`.
    pub(super) fn lookup_pool(&self, name: &PoolName) -> Result<StoragePool, HostError> {
        self.conn()
            .lookup_storage_pool_by_name(name.as_str())
            .map_err(|e| call_error("virStoragePoolLookupByName", name.as_str(), e))
    }

    /// `virStoragePoolDefineXML`, `virStoragePoolBuild`, `virStoragePoolCreate`,
    /// `virStoragePoolSetAutostart`; each step only when needed.
    pub(super) fn ensure_dir_pool_impl(
        &self,
        name: &PoolName,
        path: &Path,
    ) -> Result<PoolInfo, HostError> {
        let pool = match self.lookup_pool(name) {
            Ok(pool) => pool,
            Err(e) if e.kind() == HostErrorKind::NotFound => {
                let doc = xml::dir_pool(name.as_str(), &path.to_string_lossy());
                let pool = self
                    .conn()
                    .define_storage_pool_xml(&doc, 0)
                    .map_err(|e| call_error("virStoragePoolDefineXML", name.as_str(), e))?;
                pool.build(0)
                    .map_err(|e| call_error("virStoragePoolBuild", name.as_str(), e))?;
                pool
            }
            Err(e) => return Err(e),
        };
        let active = pool
            .is_active()
            .map_err(|e| call_error("virStoragePoolIsActive", name.as_str(), e))?;
        if !active {
            pool.create(0)
                .map_err(|e| call_error("virStoragePoolCreate", name.as_str(), e))?;
        }
        let autostart = pool
            .autostart()
            .map_err(|e| call_error("virStoragePoolGetAutostart", name.as_str(), e))?;
        if !autostart {
            pool.set_autostart(true)
                .map_err(|e| call_error("virStoragePoolSetAutostart", name.as_str(), e))?;
        }
        Self::pool_info(&pool)
    }

    /// `virStoragePoolRefresh`, then the pool's info.
    pub(super) fn pool_impl(&self, name: &PoolName) -> Result<PoolInfo, HostError> {
        let pool = self.lookup_pool(name)?;
        if pool.is_active().unwrap_or(false) {
            pool.refresh(0)
                .map_err(|e| call_error("virStoragePoolRefresh", name.as_str(), e))?;
        }
        Self::pool_info(&pool)
    }

    /// `virStorageVolCreateXML`.
    pub(super) fn create_volume_impl(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        capacity: u64,
        format: &'static str,
    ) -> Result<VolumeInfo, HostError> {
        let p = self.lookup_pool(pool)?;
        let doc = xml::volume(name.as_str(), capacity, format);
        let vol = StorageVol::create_xml(&p, &doc, 0)
            .map_err(|e| call_error("virStorageVolCreateXML", name.as_str(), e))?;
        volume_info(&vol, name.as_str())
    }

    /// `virStorageVolLookupByName`.
    fn lookup_volume(&self, pool: &PoolName, name: &VolumeName) -> Result<StorageVol, HostError> {
        let p = self.lookup_pool(pool)?;
        p.lookup_storage_vol_by_name(name.as_str())
            .map_err(|e| call_error("virStorageVolLookupByName", name.as_str(), e))
    }

    pub(super) fn volume_impl(
        &self,
        pool: &PoolName,
        name: &VolumeName,
    ) -> Result<VolumeInfo, HostError> {
        volume_info(&self.lookup_volume(pool, name)?, name.as_str())
    }

    /// `virStorageVolDelete`; a volume that is gone already is not an error.
    pub(super) fn delete_volume_impl(
        &self,
        pool: &PoolName,
        name: &VolumeName,
    ) -> Result<(), HostError> {
        match self.lookup_volume(pool, name) {
            Ok(vol) => vol
                .delete(0)
                .map_err(|e| call_error("virStorageVolDelete", name.as_str(), e)),
            Err(e) if e.kind() == HostErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `virStoragePoolListAllVolumes`.
    pub(super) fn list_volumes_impl(&self, pool: &PoolName) -> Result<Vec<VolumeInfo>, HostError> {
        let p = self.lookup_pool(pool)?;
        let vols = p
            .list_all_volumes(0)
            .map_err(|e| call_error("virStoragePoolListAllVolumes", pool.as_str(), e))?;
        let mut out = Vec::with_capacity(vols.len());
        for vol in &vols {
            let name = vol
                .name()
                .map_err(|e| call_error("virStorageVolGetName", pool.as_str(), e))?;
            out.push(volume_info(vol, &name)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// `virStorageVolGetPath`, `virStorageVolGetInfo`.
fn volume_info(vol: &StorageVol, name: &str) -> Result<VolumeInfo, HostError> {
    let path = vol
        .path()
        .map_err(|e| call_error("virStorageVolGetPath", name, e))?;
    let info = vol
        .info()
        .map_err(|e| call_error("virStorageVolGetInfo", name, e))?;
    Ok(VolumeInfo {
        name: name.to_string(),
        path,
        capacity_bytes: info.capacity,
        allocation_bytes: info.allocation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Host;

    fn test_host() -> LibvirtHost {
        LibvirtHost::connect("test:///default").unwrap()
    }

    #[test]
    fn volume_create_list_delete_on_test_driver() {
        let host = test_host();
        let pool: PoolName = "default-pool".parse().unwrap();
        let vol: VolumeName = "vmd-test-d0.qcow2".parse().unwrap();
        let made = host.create_volume(&pool, &vol, 1 << 20, "qcow2").unwrap();
        assert_eq!(made.capacity_bytes, 1 << 20);
        assert!(host
            .list_volumes(&pool)
            .unwrap()
            .iter()
            .any(|v| v.name == vol.as_str()));
        host.delete_volume(&pool, &vol).unwrap();
        host.delete_volume(&pool, &vol).unwrap();
        let err = host.volume(&pool, &vol).unwrap_err();
        assert_eq!(err.kind(), HostErrorKind::NotFound, "{err}");
    }

    #[test]
    fn ensure_dir_pool_twice_defines_once_and_runs() {
        let host = test_host();
        let name: PoolName = "vmd-unit".parse().unwrap();
        let first = host.ensure_dir_pool(&name, Path::new("/vmd-unit")).unwrap();
        let second = host.ensure_dir_pool(&name, Path::new("/vmd-unit")).unwrap();
        assert_eq!(first.state, "running");
        assert_eq!(second.path.as_deref(), Some("/vmd-unit"));
    }

    #[test]
    fn pool_missing_is_not_found() {
        let err = test_host().pool(&"nope".parse().unwrap()).unwrap_err();
        assert_eq!(err.kind(), HostErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
