//! Storage pools and volumes over libvirt's storage API.

use std::path::Path;

use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::sys;

use super::libvirt::{call_error, reflink_refused, LibvirtHost};
use super::{xml, HostError, HostErrorKind, NewVolume, PoolInfo, VolumeInfo};
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
            // A stopped pool's directory may be gone (a cleaned-up state directory): building
            // a dir pool only creates its directory when missing.
            pool.build(0)
                .map_err(|e| call_error("virStoragePoolBuild", name.as_str(), e))?;
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
    ///
    /// libvirt refuses to refresh a pool while another client's volume job runs in it
    /// ("pool has asynchronous jobs running"): that is another vmd importing or cloning
    /// into the same pool, not a failure of this one. The refresh is retried for up to
    /// [`REFRESH_BUSY_WAIT`]; if the pool is still busy then, its info is read without a
    /// refresh (libvirt keeps a dir pool's sizes current as volumes are created and deleted).
    pub(super) fn pool_impl(&self, name: &PoolName) -> Result<PoolInfo, HostError> {
        let pool = self.lookup_pool(name)?;
        if pool.is_active().unwrap_or(false) {
            let deadline = std::time::Instant::now() + REFRESH_BUSY_WAIT;
            let mut pause = std::time::Duration::from_millis(20);
            loop {
                match pool.refresh(0) {
                    Ok(_) => break,
                    Err(e) if pool_busy(&e) && std::time::Instant::now() < deadline => {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(std::time::Duration::from_millis(500));
                    }
                    Err(e) if pool_busy(&e) => break,
                    Err(e) => return Err(call_error("virStoragePoolRefresh", name.as_str(), e)),
                }
            }
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
        readonly: bool,
    ) -> Result<VolumeInfo, HostError> {
        let p = self.lookup_pool(pool)?;
        let doc = xml::volume(name.as_str(), capacity, format, readonly);
        let vol = StorageVol::create_xml(&p, &doc, 0)
            .map_err(|e| call_error("virStorageVolCreateXML", name.as_str(), e))?;
        volume_info(&vol, name.as_str())
    }

    /// `virStorageVolCreateXML` with a `<backingStore>` that names the backing format.
    pub(super) fn create_overlay_impl(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        capacity: u64,
        backing: &str,
        backing_format: &'static str,
    ) -> Result<VolumeInfo, HostError> {
        let p = self.lookup_pool(pool)?;
        let doc = xml::overlay_volume(name.as_str(), capacity, backing, backing_format);
        let vol = StorageVol::create_xml(&p, &doc, 0)
            .map_err(|e| call_error("virStorageVolCreateXML", name.as_str(), e))?;
        volume_info(&vol, name.as_str())
    }

    /// `virStorageVolCreateXMLFrom`, with `VIR_STORAGE_VOL_CREATE_REFLINK` first and without
    /// it when libvirt or the filesystem refuses. The copy has the source's capacity (a
    /// larger one in the XML would grow it).
    ///
    /// The copy is standalone: for a format conversion or any qcow2 side libvirt runs
    /// `qemu-img convert` without `-B`, which reads through the source's backing chain, so a
    /// qcow2 overlay comes out flattened with no backing file. It does not carry the
    /// source's internal snapshots, and libvirt 9.0 writes qcow2 compat 0.10. A raw copy is
    /// fully allocated: libvirt raises the allocation to the source's capacity.
    pub(super) fn copy_volume_impl(
        &self,
        source_pool: &PoolName,
        source: &VolumeName,
        source_format: &'static str,
        to: &NewVolume<'_>,
    ) -> Result<VolumeInfo, HostError> {
        let (pool, name) = (to.pool, to.name);
        let src = self.lookup_volume(source_pool, source)?;
        check_view(&src, source, source_format)?;
        let capacity = volume_info(&src, source.as_str())?.capacity_bytes;
        let p = self.lookup_pool(pool)?;
        // libvirt reports a taken name here as an internal error, unlike
        // `virStorageVolCreateXML`; look first so that callers can tell.
        if p.lookup_storage_vol_by_name(name.as_str()).is_ok() {
            return Err(HostError::Call {
                call: "virStorageVolCreateXMLFrom",
                object: name.as_str().to_string(),
                message: format!("volume exists already in pool {pool}"),
                kind: HostErrorKind::AlreadyExists,
            });
        }
        let doc = xml::volume(name.as_str(), capacity, to.format, to.readonly);
        let reflinked =
            StorageVol::create_xml_from(&p, &doc, &src, sys::VIR_STORAGE_VOL_CREATE_REFLINK);
        let vol = match reflinked {
            Ok(vol) => vol,
            Err(e) if reflink_refused(&e) => StorageVol::create_xml_from(&p, &doc, &src, 0)
                .map_err(|e| call_error("virStorageVolCreateXMLFrom", name.as_str(), e))?,
            Err(e) => return Err(call_error("virStorageVolCreateXMLFrom", name.as_str(), e)),
        };
        volume_info(&vol, name.as_str())
    }

    /// `virStorageVolLookupByName`.
    pub(super) fn lookup_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
    ) -> Result<StorageVol, HostError> {
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

    /// `virConnectListAllStoragePools` with `VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE`: names
    /// only, so a pool stopped while being listed cannot fail the listing.
    pub(super) fn active_pools_impl(&self) -> Result<Vec<PoolName>, HostError> {
        let pools = self
            .conn()
            .list_all_storage_pools(sys::VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
            .map_err(|e| call_error("virConnectListAllStoragePools", self.uri(), e))?;
        let mut names: Vec<PoolName> = pools
            .iter()
            .filter_map(|p| p.name().ok()?.parse().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// `virStoragePoolListAllVolumes`. A volume deleted while being listed is left out.
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
            match volume_info(vol, &name) {
                Ok(info) => out.push(info),
                Err(e) if e.kind() == HostErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Refuses a volume whose format, as libvirt sees it (`virStorageVolGetXMLDesc`), is not
/// `declared`, or which libvirt believes has a backing file although vmd wrote it raw:
/// libvirt would act on its own view, and its view of a file volume comes from probing the
/// content.
fn check_view(vol: &StorageVol, name: &VolumeName, declared: &str) -> Result<(), HostError> {
    let doc = vol
        .xml_desc(0)
        .map_err(|e| call_error("virStorageVolGetXMLDesc", name.as_str(), e))?;
    let view = xml::volume_view(&doc).map_err(|e| HostError::BadXml {
        what: "volume description",
        message: e.to_string(),
    })?;
    let probed = view.format.as_deref().unwrap_or("unknown");
    let refuse = |why: String| HostError::Call {
        call: "virStorageVolCreateXMLFrom",
        object: name.as_str().to_string(),
        message: format!("refused: {why}; libvirt would read the volume as it probed it"),
        kind: HostErrorKind::InvalidState,
    };
    if probed != declared {
        return Err(refuse(format!(
            "vmd wrote it as {declared}, libvirt takes its content for {probed}"
        )));
    }
    if declared == "raw" && view.backing.is_some() {
        return Err(refuse(
            "libvirt sees a backing file under a raw volume".to_string(),
        ));
    }
    Ok(())
}

/// How long [`LibvirtHost::pool_impl`] waits for other clients' volume jobs in a pool.
const REFRESH_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether libvirt refused a pool refresh because volume jobs of other clients are running
/// in it (`storagePoolRefresh`: `VIR_ERR_INTERNAL_ERROR`, "has asynchronous jobs running";
/// libvirt has no code of its own for it).
fn pool_busy(err: &virt::error::Error) -> bool {
    err.message().contains("asynchronous jobs running")
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

    fn to<'a>(pool: &'a PoolName, name: &'a VolumeName) -> NewVolume<'a> {
        NewVolume {
            pool,
            name,
            format: "raw",
            readonly: false,
        }
    }

    fn test_host() -> LibvirtHost {
        LibvirtHost::connect("test:///default").unwrap()
    }

    #[test]
    fn volume_create_list_delete_on_test_driver() {
        let host = test_host();
        let pool: PoolName = "default-pool".parse().unwrap();
        let vol: VolumeName = "vmd-test-d0.qcow2".parse().unwrap();
        let made = host
            .create_volume(&pool, &vol, 1 << 20, "qcow2", false)
            .unwrap();
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
    fn active_pools_lists_running_pools_only() {
        let host = test_host();
        let names = host.active_pools().unwrap();
        assert!(
            names.iter().any(|n| n.as_str() == "default-pool"),
            "{names:?}"
        );
        let stopped: PoolName = "vmd-unit-stopped".parse().unwrap();
        host.ensure_dir_pool(&stopped, Path::new("/vmd-unit-stopped"))
            .unwrap();
        host.lookup_pool(&stopped).unwrap().destroy().unwrap();
        assert!(!host.active_pools().unwrap().contains(&stopped));
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

    #[test]
    fn copy_volume_on_test_driver_copies_capacity() {
        let host = test_host();
        let pool: PoolName = "default-pool".parse().unwrap();
        let src: VolumeName = "vmd-test-src.raw".parse().unwrap();
        let dst: VolumeName = "vmd-test-dst.raw".parse().unwrap();
        host.create_volume(&pool, &src, 3 << 20, "raw", false)
            .unwrap();

        let copy = host.copy_volume(&pool, &src, "raw", &to(&pool, &dst));

        host.delete_volume(&pool, &src).unwrap();
        host.delete_volume(&pool, &dst).unwrap();
        let copy = copy.unwrap();
        assert_eq!(copy.name, "vmd-test-dst.raw");
        assert_eq!(copy.capacity_bytes, 3 << 20);
    }

    #[test]
    fn copy_volume_missing_source_is_not_found() {
        let host = test_host();
        let pool: PoolName = "default-pool".parse().unwrap();
        let err = host
            .copy_volume(
                &pool,
                &"vmd-test-none.raw".parse().unwrap(),
                "raw",
                &to(&pool, &"vmd-test-none2.raw".parse().unwrap()),
            )
            .unwrap_err();
        assert_eq!(err.kind(), HostErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("vmd-test-none.raw"), "{err}");
    }

    #[test]
    fn create_overlay_on_test_driver_has_requested_capacity() {
        let host = test_host();
        let pool: PoolName = "default-pool".parse().unwrap();
        let vol: VolumeName = "vmd-test-overlay.qcow2".parse().unwrap();

        let made = host.create_overlay(&pool, &vol, 5 << 20, "/default-pool/base.qcow2", "qcow2");

        host.delete_volume(&pool, &vol).unwrap();
        assert_eq!(made.unwrap().capacity_bytes, 5 << 20);
    }

    #[test]
    fn copy_volume_onto_taken_name_is_already_exists() {
        let host = test_host();
        let pool: PoolName = "default-pool".parse().unwrap();
        let src: VolumeName = "vmd-test-src2.raw".parse().unwrap();
        let dst: VolumeName = "vmd-test-dst2.raw".parse().unwrap();
        host.create_volume(&pool, &src, 1 << 20, "raw", false)
            .unwrap();
        host.create_volume(&pool, &dst, 2 << 20, "raw", false)
            .unwrap();

        let err = host
            .copy_volume(&pool, &src, "raw", &to(&pool, &dst))
            .unwrap_err();

        let kept = host.volume(&pool, &dst).unwrap();
        host.delete_volume(&pool, &src).unwrap();
        host.delete_volume(&pool, &dst).unwrap();
        assert_eq!(err.kind(), HostErrorKind::AlreadyExists, "{err}");
        assert_eq!(kept.capacity_bytes, 2 << 20);
    }
}
