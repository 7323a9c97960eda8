//! [`Host`] over libvirt, through the `virt` crate. Every function names the libvirt call
//! it makes; every libvirt error is classified here, once, into a [`HostErrorKind`].

use std::path::Path;
use std::sync::Once;

use quick_xml::events::Event;
use quick_xml::Reader;
use uuid::Uuid;
use virt::connect::Connect;
use virt::error::{Error as VirtError, ErrorNumber};
use virt::storage_pool::StoragePool;
use virt::sys;

use super::{
    capabilities::guest_domain_types, default_virt_type, version_string, xml, DiskSpec,
    DomainDefinition, DomainState, Host, HostError, HostErrorKind, HostInfo, NewVolume, PoolAccess,
    PoolCaps, PoolInfo, SavedSnapshot, SnapshotSpec, VmdDomain, VolumeInfo,
};
use crate::vmd::{PoolName, VolumeName};

/// A libvirt connection.
pub struct LibvirtHost {
    conn: Connect,
    uri: String,
}

impl std::fmt::Debug for LibvirtHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibvirtHost")
            .field("uri", &self.uri)
            .finish()
    }
}

/// The `<disk>` element for hot-plug.
fn disk_element(disk: &DiskSpec) -> Result<String, HostError> {
    xml::disk::element(disk, 0).map_err(|source| HostError::Unwritable {
        what: "disk element",
        source,
    })
}

/// libvirt prints every error to stderr by default; vmd reports errors itself, once.
fn silence_libvirt_stderr() {
    static ONCE: Once = Once::new();
    ONCE.call_once(virt::error::clear_error_callback);
}

/// Maps libvirt's error numbers onto what they mean to vmd. The only place that knows them.
fn classify(err: &VirtError) -> HostErrorKind {
    use virt::enumutil::Enum;
    match err.code() {
        Enum::Known(code) => match code {
            ErrorNumber::NoDomain
            | ErrorNumber::NoStoragePool
            | ErrorNumber::NoStorageVolume
            | ErrorNumber::NoNetwork
            | ErrorNumber::NoDomainSnapshot
            | ErrorNumber::NoDomainMetadata => HostErrorKind::NotFound,
            ErrorNumber::OperationInvalid => HostErrorKind::InvalidState,
            // `virStorageVolCreateXMLFrom` reports a taken name as an internal error, which
            // cannot be told apart; `virStorageVolCreateXML` uses `STORAGE_VOL_EXIST`.
            ErrorNumber::DomExist | ErrorNumber::StorageVolExist => HostErrorKind::AlreadyExists,
            ErrorNumber::NoConnect | ErrorNumber::InvalidConn => HostErrorKind::Unreachable,
            _ => HostErrorKind::Other,
        },
        Enum::Unknown(_) => HostErrorKind::Other,
    }
}

/// Whether libvirt refused a call for one of its flags: `virCheckFlags` in a driver or
/// storage backend that does not take the flag fails with `VIR_ERR_INVALID_ARG`
/// ("unsupported flags"); some refuse with `NO_SUPPORT` or `*_UNSUPPORTED`. Used only to drop
/// an optional flag and try again, so a real invalid argument recurs and is reported then.
pub(super) fn flag_refused(err: &VirtError) -> bool {
    use virt::enumutil::Enum;
    matches!(
        err.code(),
        Enum::Known(
            ErrorNumber::InvalidArg
                | ErrorNumber::NoSupport
                | ErrorNumber::ArgumentUnsupported
                | ErrorNumber::OperationUnsupported
        )
    )
}

/// Whether a `virStorageVolCreateXMLFrom` with `VIR_STORAGE_VOL_CREATE_REFLINK` failed
/// because no extent sharing is possible, so that a plain copy is worth trying: backends that
/// do not take the flag (every `qemu-img convert` path, i.e. anything but raw to raw, and
/// pools such as `rbd`) refuse it as a flag; a filesystem without reflink (ext4, or two
/// filesystems) fails `FICLONE` with `VIR_ERR_SYSTEM_ERROR`. A real failure hidden among
/// those recurs on the plain copy and is reported from there.
pub(super) fn reflink_refused(err: &VirtError) -> bool {
    use virt::enumutil::Enum;
    flag_refused(err) || matches!(err.code(), Enum::Known(ErrorNumber::SystemError))
}

/// libvirt messages may span lines; vmd's errors are one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn call_error(
    call: &'static str,
    object: impl Into<String>,
    err: VirtError,
) -> HostError {
    let mut message = one_line(err.message());
    if lost_connection(&err) {
        // The call may have completed on the host before the connection dropped.
        message.push_str(
            " (the connection to libvirtd was lost; the operation may have completed: \
             check with `vmd doctor`)",
        );
    }
    HostError::Call {
        call,
        object: object.into(),
        message,
        kind: classify(&err),
    }
}

/// True when libvirt's RPC layer lost the daemon mid-call.
fn lost_connection(err: &VirtError) -> bool {
    use virt::enumutil::Enum;
    use virt::error::ErrorDomain;
    matches!(err.domain(), Enum::Known(ErrorDomain::Rpc))
        || matches!(err.code(), Enum::Known(ErrorNumber::NoConnect))
}

impl LibvirtHost {
    /// Opens a read-write connection to `uri` (`virConnectOpen`).
    pub fn connect(uri: &str) -> Result<Self, HostError> {
        silence_libvirt_stderr();
        let conn = Connect::open(Some(uri)).map_err(|e| HostError::Unreachable {
            uri: uri.to_string(),
            message: one_line(e.message()),
        })?;
        Ok(Self {
            conn,
            uri: uri.to_string(),
        })
    }

    pub(super) fn conn(&self) -> &Connect {
        &self.conn
    }

    /// The URI as given by the user.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Describes one pool: `virStoragePoolGetName`, `virStoragePoolGetInfo`,
    /// `virStoragePoolGetXMLDesc`.
    pub(super) fn pool_info(pool: &StoragePool) -> Result<PoolInfo, HostError> {
        let name = pool
            .name()
            .map_err(|e| call_error("virStoragePoolGetName", "storage pool", e))?;
        let info = pool
            .info()
            .map_err(|e| call_error("virStoragePoolGetInfo", &name, e))?;
        let xml = pool
            .xml_desc(0)
            .map_err(|e| call_error("virStoragePoolGetXMLDesc", &name, e))?;
        let (pool_type, path) = pool_type_and_path(&xml)?;
        let state = match info.state {
            sys::VIR_STORAGE_POOL_INACTIVE => "inactive",
            sys::VIR_STORAGE_POOL_BUILDING => "building",
            sys::VIR_STORAGE_POOL_RUNNING => "running",
            sys::VIR_STORAGE_POOL_DEGRADED => "degraded",
            sys::VIR_STORAGE_POOL_INACCESSIBLE => "inaccessible",
            _ => "unknown",
        };
        Ok(PoolInfo {
            name,
            pool_type,
            state: state.to_string(),
            path,
            capacity_bytes: info.capacity,
            allocation_bytes: info.allocation,
            available_bytes: info.available,
            access: None,
        })
    }
}

/// The `type` attribute of `<pool>` and the text of `<target><path>`.
fn pool_type_and_path(xml: &str) -> Result<(String, Option<String>), HostError> {
    let bad = |message: String| HostError::BadXml {
        what: "storage pool description",
        message,
    };
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut pool_type = None;
    let mut target = None;
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Event::Start(e) => {
                if path.is_empty() && e.name().as_ref() == b"pool" {
                    pool_type = e
                        .try_get_attribute("type")
                        .map_err(|e| bad(e.to_string()))?
                        .map(|a| a.unescape_value().map(|v| v.into_owned()))
                        .transpose()
                        .map_err(|e| bad(e.to_string()))?;
                }
                path.push(e.name().as_ref().to_vec());
            }
            Event::Text(t) if path == [b"pool".to_vec(), b"target".to_vec(), b"path".to_vec()] => {
                target = Some(t.unescape().map_err(|e| bad(e.to_string()))?.into_owned());
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let pool_type = pool_type.ok_or_else(|| bad("no pool type".to_string()))?;
    Ok((pool_type, target))
}

impl Host for LibvirtHost {
    /// `virConnectGetHostname`, `virConnectGetLibVersion`, `virConnectGetVersion`,
    /// `virConnectGetCapabilities`, `virConnectListAllStoragePools`.
    fn info(&self) -> Result<HostInfo, HostError> {
        let uri = &self.uri;
        let hostname = self
            .conn
            .hostname()
            .map_err(|e| call_error("virConnectGetHostname", uri, e))?;
        let lib = self
            .conn
            .lib_version()
            .map_err(|e| call_error("virConnectGetLibVersion", uri, e))?;
        let hyp = self
            .conn
            .hyp_version()
            .map_err(|e| call_error("virConnectGetVersion", uri, e))?;
        let caps = self
            .conn
            .capabilities()
            .map_err(|e| call_error("virConnectGetCapabilities", uri, e))?;
        let virt_types = guest_domain_types(&caps)?;
        let mut pools = self
            .conn
            .list_all_storage_pools(0)
            .map_err(|e| call_error("virConnectListAllStoragePools", uri, e))?
            .iter()
            .map(Self::pool_info)
            .collect::<Result<Vec<_>, _>>()?;
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(HostInfo {
            uri: self.conn.uri().unwrap_or_else(|_| uri.clone()),
            hostname,
            libvirt_version: version_string(lib),
            qemu_version: version_string(hyp),
            default_virt_type: default_virt_type(&virt_types),
            virt_types,
            pools,
        })
    }

    fn ensure_dir_pool(&self, name: &PoolName, path: &Path) -> Result<PoolInfo, HostError> {
        self.ensure_dir_pool_impl(name, path)
    }

    fn pool(&self, name: &PoolName) -> Result<PoolInfo, HostError> {
        self.pool_impl(name)
    }

    fn create_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        capacity: u64,
        format: &'static str,
        readonly: bool,
    ) -> Result<VolumeInfo, HostError> {
        self.create_volume_impl(pool, name, capacity, format, readonly)
    }

    fn volume(&self, pool: &PoolName, name: &VolumeName) -> Result<VolumeInfo, HostError> {
        self.volume_impl(pool, name)
    }

    fn delete_volume(&self, pool: &PoolName, name: &VolumeName) -> Result<(), HostError> {
        self.delete_volume_impl(pool, name)
    }

    fn list_volumes(&self, pool: &PoolName) -> Result<Vec<VolumeInfo>, HostError> {
        self.list_volumes_impl(pool)
    }

    fn active_pools(&self) -> Result<Vec<PoolName>, HostError> {
        self.active_pools_impl()
    }

    fn create_overlay(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        capacity: u64,
        backing: &str,
        backing_format: &'static str,
    ) -> Result<VolumeInfo, HostError> {
        self.create_overlay_impl(pool, name, capacity, backing, backing_format)
    }

    fn copy_volume(
        &self,
        source_pool: &PoolName,
        source: &VolumeName,
        source_format: &'static str,
        to: &NewVolume<'_>,
    ) -> Result<VolumeInfo, HostError> {
        self.copy_volume_impl(source_pool, source, source_format, to)
    }

    fn pool_access(&self, pool: &PoolName) -> Result<PoolAccess, HostError> {
        self.pool_access_impl(pool)
    }

    fn pool_caps(&self, pool: &PoolName) -> Result<PoolCaps, HostError> {
        let p = self.lookup_pool(pool)?;
        let xml = p
            .xml_desc(0)
            .map_err(|e| call_error("virStoragePoolGetXMLDesc", pool.as_str(), e))?;
        let (pool_type, _) = pool_type_and_path(&xml)?;
        super::caps::pool_caps(&pool_type, &xml).map_err(|message| HostError::Call {
            call: "virStoragePoolGetXMLDesc",
            object: pool.as_str().to_string(),
            message: format!("pool {pool} ({pool_type}): {message}"),
            kind: HostErrorKind::InvalidState,
        })
    }

    fn upload_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        offset: u64,
        len: u64,
        source: &mut dyn std::io::Read,
    ) -> Result<(), HostError> {
        self.upload_impl(pool, name, offset, len, source)
    }

    fn download_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        offset: u64,
        len: u64,
        sink: &mut dyn std::io::Write,
    ) -> Result<u64, HostError> {
        self.download_impl(pool, name, offset, len, sink)
    }

    fn define_domain(&self, def: &DomainDefinition) -> Result<(), HostError> {
        self.define_domain_impl(&xml::template::render_definition(def)?)
    }

    fn domain_state(&self, uuid: &Uuid) -> Result<Option<DomainState>, HostError> {
        self.domain_state_impl(uuid)
    }

    fn start_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.start_domain_impl(uuid)
    }

    fn start_domain_paused(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.start_domain_paused_impl(uuid)
    }

    fn open_console(&self, uuid: &Uuid) -> Result<Box<dyn std::io::Read + Send>, HostError> {
        self.open_console_impl(uuid)
    }

    fn shutdown_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.shutdown_domain_impl(uuid)
    }

    fn destroy_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.destroy_domain_impl(uuid)
    }

    fn undefine_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.undefine_domain_impl(uuid)
    }

    fn suspend_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.suspend_domain_impl(uuid)
    }

    fn resume_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.resume_domain_impl(uuid)
    }

    fn snapshot_create(
        &self,
        uuid: &Uuid,
        spec: &SnapshotSpec<'_>,
    ) -> Result<SavedSnapshot, HostError> {
        self.snapshot_create_impl(uuid, &xml::snapshot::request(spec))
            .map(SavedSnapshot::from_record)
    }

    fn snapshot_revert(&self, uuid: &Uuid, saved: &SavedSnapshot) -> Result<(), HostError> {
        self.snapshot_revert_impl(uuid, saved.as_record())
    }

    fn snapshot_delete(&self, uuid: &Uuid, saved: &SavedSnapshot) -> Result<(), HostError> {
        self.snapshot_delete_impl(uuid, saved.as_record())
    }

    fn snapshot_drop_unrecorded(&self, uuid: &Uuid, name: &str) -> Result<bool, HostError> {
        self.snapshot_drop_unrecorded_impl(uuid, name)
    }

    fn snapshot_forget(&self, uuid: &Uuid, name: &str) -> Result<(), HostError> {
        self.snapshot_forget_impl(uuid, name)
    }

    fn attach_disk(&self, uuid: &Uuid, disk: &DiskSpec, live: bool) -> Result<(), HostError> {
        self.change_device_impl(uuid, &disk_element(disk)?, live, false)
    }

    fn detach_disk(&self, uuid: &Uuid, disk: &DiskSpec, live: bool) -> Result<(), HostError> {
        self.change_device_impl(uuid, &disk_element(disk)?, live, true)
    }

    fn vmd_domains(&self) -> Result<Vec<VmdDomain>, HostError> {
        self.vmd_domains_impl()
    }

    fn networks(&self) -> Result<Vec<String>, HostError> {
        self.networks_impl()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_type_and_path_dir_pool_reads_both() {
        let xml = "<pool type='dir'><name>vmd</name><target><path>/var/lib/vmd/pool</path>\
                   </target></pool>";
        let (t, p) = pool_type_and_path(xml).unwrap();
        assert_eq!(t, "dir");
        assert_eq!(p.as_deref(), Some("/var/lib/vmd/pool"));
    }

    #[test]
    fn pool_type_and_path_rbd_pool_has_no_path() {
        let xml = "<pool type='rbd'><name>ceph</name><source><name>rbd</name></source></pool>";
        let (t, p) = pool_type_and_path(xml).unwrap();
        assert_eq!(t, "rbd");
        assert_eq!(p, None);
    }

    #[test]
    fn info_test_driver_reports_versions_and_default_pool() {
        let host = LibvirtHost::connect("test:///default").unwrap();
        let info = host.info().unwrap();
        assert_eq!(info.uri, "test:///default");
        assert!(
            info.pools.iter().any(|p| p.name == "default-pool"),
            "{info:?}"
        );
        assert!(!info.libvirt_version.is_empty());
    }

    #[test]
    fn connect_missing_socket_is_unreachable_with_one_line() {
        let err = LibvirtHost::connect("qemu+unix:///system?socket=/nonexistent").unwrap_err();
        assert_eq!(err.kind(), HostErrorKind::Unreachable);
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
