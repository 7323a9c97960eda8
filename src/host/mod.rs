//! The southbound side: what the manager needs from a virtualization host, as a small trait,
//! and its one implementation over libvirt ([`libvirt::LibvirtHost`]).
//!
//! The trait speaks in typed descriptions ([`DomainDefinition`], [`DiskSpec`],
//! [`SnapshotSpec`]) and opaque records ([`SavedSnapshot`]); every libvirt XML document is
//! written and read in [`xml`], so no libvirt XML crosses the seam (`docs/architecture.md`).
//!
//! Only this module touches the `virt` crate. libvirt error codes become [`HostError`] kinds
//! here, in one place, so that callers can be idempotent without knowing libvirt's codes.

mod capabilities;
pub mod caps;
mod console;
mod domain;
mod domain_spec;
pub mod libvirt;
#[cfg(test)]
pub(crate) mod memory;
mod snapshot;
mod snapshot_spec;
mod storage;
#[cfg(test)]
mod test_support;
mod transfer;
pub mod xml;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::vmd::{PoolName, VolumeName};

pub use capabilities::guest_domain_types;
pub use caps::{IscsiLun, IscsiPortal, PoolCaps, PoolWriter};
pub use domain_spec::{DiskSpec, DomainDefinition, DomainSpec, DomainTemplate, NicSpec};
pub use snapshot_spec::{SavedSnapshot, SnapshotSpec};

/// The libvirt URI vmd connects to when none is given.
pub const DEFAULT_URI: &str = "qemu:///system";

/// What a host failure means to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostErrorKind {
    /// The host could not be reached at all.
    Unreachable,
    /// The object named does not exist.
    NotFound,
    /// An object of that name exists already.
    AlreadyExists,
    /// The object is not in a state that allows the operation.
    InvalidState,
    /// Anything else libvirt reported.
    Other,
}

/// A failure of the host (libvirt) side.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The connection could not be opened.
    #[error("cannot connect to {uri}: {message}")]
    Unreachable {
        /// The libvirt URI.
        uri: String,
        /// libvirt's own message.
        message: String,
    },
    /// A libvirt call failed.
    #[error("{call} failed for {object}: {message}")]
    Call {
        /// The libvirt API called, e.g. `virStoragePoolLookupByName`.
        call: &'static str,
        /// The object acted on, as a user names it.
        object: String,
        /// libvirt's own message.
        message: String,
        /// The meaning of the failure.
        kind: HostErrorKind,
    },
    /// The domain template did not render (a user's template, or a value it cannot carry).
    #[error(transparent)]
    Template(#[from] xml::template::RenderError),
    /// A description holds a value no libvirt document can carry.
    #[error("cannot write the {what}: {source}")]
    Unwritable {
        /// Which document.
        what: &'static str,
        /// The value's problem.
        #[source]
        source: xml::Unwritable,
    },
    /// libvirt answered with a document vmd could not read.
    #[error("cannot read libvirt's {what}: {message}")]
    BadXml {
        /// Which document.
        what: &'static str,
        /// What was wrong with it.
        message: String,
    },
}

impl HostError {
    /// What the failure means, independent of libvirt's codes.
    pub fn kind(&self) -> HostErrorKind {
        match self {
            HostError::Unreachable { .. } => HostErrorKind::Unreachable,
            HostError::Call { kind, .. } => *kind,
            HostError::BadXml { .. } | HostError::Template(_) | HostError::Unwritable { .. } => {
                HostErrorKind::Other
            }
        }
    }
}

/// A storage pool as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolInfo {
    /// The pool's name.
    pub name: String,
    /// The pool type (`dir`, `logical`, `netfs`, `rbd`, ...).
    #[serde(rename = "type")]
    pub pool_type: String,
    /// `running`, `inactive`, `building`, `degraded` or `inaccessible`.
    pub state: String,
    /// The target path, for pools that have one.
    pub path: Option<String>,
    /// Total size in bytes (0 when inactive).
    pub capacity_bytes: u64,
    /// Bytes in use.
    pub allocation_bytes: u64,
    /// Bytes free.
    pub available_bytes: u64,
    /// How vmd reaches the pool's volumes (`local`: their files here, proved by a probe
    /// volume; `streams`: only through libvirt; `iscsi`: QEMU's iSCSI client, for pools
    /// libvirt cannot stream to; `none`: not at all), when asked (`vmd host check`, running
    /// pools only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<&'static str>,
}

/// How vmd reaches the content of a pool's volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "access", content = "path")]
pub enum PoolAccess {
    /// The pool's directory is this directory here (proved, not assumed): vmd may read and
    /// write its volume files in place.
    Local(PathBuf),
    /// Only through libvirt: upload and download streams and the host's own copies.
    Streams,
}

/// What `vmd host check` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostInfo {
    /// The URI of the connection, as libvirt canonicalised it.
    pub uri: String,
    /// The host's name.
    pub hostname: String,
    /// The libvirt daemon's version, `major.minor.release`.
    pub libvirt_version: String,
    /// The hypervisor's (QEMU's) version, `major.minor.release`.
    pub qemu_version: String,
    /// Domain types the host offers for its native architecture: `kvm`, `qemu`.
    pub virt_types: Vec<String>,
    /// The type vmd deploys with unless told otherwise: `kvm` where offered.
    pub default_virt_type: Option<String>,
    /// The host's storage pools.
    pub pools: Vec<PoolInfo>,
}

/// The virt type vmd picks when the user does not: kvm where the host offers it.
pub fn default_virt_type(offered: &[String]) -> Option<String> {
    ["kvm", "qemu"]
        .iter()
        .find(|t| offered.iter().any(|o| o == *t))
        .map(|t| (*t).to_string())
}

/// libvirt encodes versions as `major * 1_000_000 + minor * 1000 + release`.
pub fn version_string(v: u32) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
}

/// A storage volume as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeInfo {
    /// The volume's name in its pool.
    pub name: String,
    /// Its path on the host.
    pub path: String,
    /// Virtual size in bytes.
    pub capacity_bytes: u64,
    /// Bytes allocated on the host.
    pub allocation_bytes: u64,
}

/// The operations vmd needs from a host. Each method names the libvirt call it makes in the
/// implementation's documentation.
pub trait Host {
    /// Versions, offered domain types and storage pools.
    fn info(&self) -> Result<HostInfo, HostError>;

    /// Makes sure a `dir` pool `name` at `path` exists, is built, started and autostarted.
    fn ensure_dir_pool(&self, name: &PoolName, path: &Path) -> Result<PoolInfo, HostError>;

    /// A pool's current state and free space, after a refresh.
    fn pool(&self, name: &PoolName) -> Result<PoolInfo, HostError>;

    /// Creates an empty volume of `capacity` bytes in `format` (`qcow2` or `raw`), mode 0600,
    /// or 0444 when `readonly` (a master's volume: only ever a backing file; vmd and libvirt
    /// write it as root before it is recorded).
    fn create_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        capacity: u64,
        format: &'static str,
        readonly: bool,
    ) -> Result<VolumeInfo, HostError>;

    /// A volume's path and sizes.
    fn volume(&self, pool: &PoolName, name: &VolumeName) -> Result<VolumeInfo, HostError>;

    /// Deletes a volume; a volume that is gone already is not an error.
    fn delete_volume(&self, pool: &PoolName, name: &VolumeName) -> Result<(), HostError>;

    /// Every volume in a pool.
    fn list_volumes(&self, pool: &PoolName) -> Result<Vec<VolumeInfo>, HostError>;

    /// The names of the host's active storage pools (`doctor` scans them all for leftovers).
    fn active_pools(&self) -> Result<Vec<PoolName>, HostError>;

    /// Creates a qcow2 overlay volume whose backing store is `backing` (an absolute path of
    /// format `backing_format`), declared explicitly (`virStorageVolCreateXML` with
    /// `<backingStore>`).
    fn create_overlay(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        capacity: u64,
        backing: &str,
        backing_format: &'static str,
    ) -> Result<VolumeInfo, HostError>;

    /// Creates volume `name` in `pool` as a full copy of `source` in `source_pool`, in
    /// `format`, sharing extents where the filesystem can (`virStorageVolCreateXMLFrom`,
    /// trying `VIR_STORAGE_VOL_CREATE_REFLINK` first). `source_format` is the format vmd
    /// wrote the source in: libvirt reads the source as the format it probed, so the copy is
    /// refused unless libvirt's view agrees (same format; no backing file under a raw
    /// volume) — a raw volume whose guest data looks like a qcow2 header never reaches the
    /// host file that header names.
    fn copy_volume(
        &self,
        source_pool: &PoolName,
        source: &VolumeName,
        source_format: &'static str,
        to: &NewVolume<'_>,
    ) -> Result<VolumeInfo, HostError>;

    /// What the pool's kind can hold (volumes libvirt creates or pre-existing ones; qcow2 or
    /// raw only; streams) and how vmd writes its volumes itself (`virStoragePoolGetXMLDesc`).
    fn pool_caps(&self, pool: &PoolName) -> Result<PoolCaps, HostError>;

    /// Whether vmd may touch the pool's files directly: only when a probe volume that libvirt
    /// creates appears at the same path here, with the same size.
    fn pool_access(&self, pool: &PoolName) -> Result<PoolAccess, HostError>;

    /// Writes `len` bytes read from `source` into the volume at `offset`
    /// (`virStorageVolUpload`).
    fn upload_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        offset: u64,
        len: u64,
        source: &mut dyn Read,
    ) -> Result<(), HostError>;

    /// Reads `len` bytes of the volume from `offset` (0: to its end) into `sink`
    /// (`virStorageVolDownload`); returns the bytes read.
    fn download_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        offset: u64,
        len: u64,
        sink: &mut dyn Write,
    ) -> Result<u64, HostError>;

    /// Defines (or redefines, keeping its snapshots) a persistent domain from `def`
    /// (`virDomainDefineXML` with the XML rendered from the user's template or the built-in
    /// one). A template that does not render is [`HostError::Template`], before libvirt is
    /// asked anything.
    fn define_domain(&self, def: &DomainDefinition) -> Result<(), HostError>;

    /// The state of the domain with this UUID, or `None` when no such domain is defined.
    fn domain_state(&self, uuid: &uuid::Uuid) -> Result<Option<DomainState>, HostError>;

    /// Starts a defined domain (`virDomainCreate`); starting a running one is not an error.
    fn start_domain(&self, uuid: &uuid::Uuid) -> Result<(), HostError>;

    /// Starts a defined domain with its vCPUs paused (`virDomainCreateWithFlags` with
    /// `VIR_DOMAIN_START_PAUSED`), so that a console opened before [`Host::resume_domain`]
    /// misses none of the guest's output. A domain that runs already is refused
    /// (kind `InvalidState`).
    fn start_domain_paused(&self, uuid: &uuid::Uuid) -> Result<(), HostError>;

    /// The running domain's serial console, read-only, as a byte stream that ends when the
    /// domain stops (`virDomainOpenConsole` with `VIR_DOMAIN_CONSOLE_SAFE` on a `virStream`).
    /// Works over any connection: the bytes come through libvirt, not from a file. A session
    /// that another client holds is refused (kind `InvalidState`), never taken over.
    fn open_console(&self, uuid: &uuid::Uuid) -> Result<Box<dyn Read + Send>, HostError>;

    /// Asks the guest to shut down through ACPI (`virDomainShutdownFlags` with
    /// `VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN`); a domain already off is not an error.
    fn shutdown_domain(&self, uuid: &uuid::Uuid) -> Result<(), HostError>;

    /// Powers the domain off at once (`virDomainDestroy`); off already is not an error.
    fn destroy_domain(&self, uuid: &uuid::Uuid) -> Result<(), HostError>;

    /// Undefines the domain with its snapshot metadata, managed save and NVRAM
    /// (`virDomainUndefineFlags`); a domain that is gone is not an error.
    fn undefine_domain(&self, uuid: &uuid::Uuid) -> Result<(), HostError>;

    /// Pauses the domain's vCPUs (`virDomainSuspend`).
    fn suspend_domain(&self, uuid: &uuid::Uuid) -> Result<(), HostError>;

    /// Resumes a paused domain (`virDomainResume`).
    fn resume_domain(&self, uuid: &uuid::Uuid) -> Result<(), HostError>;

    /// Takes an internal snapshot `spec` of the domain, running or off
    /// (`virDomainSnapshotCreateXML`), and returns the host's full description of it
    /// (`virDomainSnapshotGetXMLDesc`) for vmd to keep. libvirt keeps its metadata until
    /// [`Host::snapshot_forget`], so a snapshot vmd fails to record can still be found and
    /// removed by [`Host::snapshot_drop_unrecorded`].
    fn snapshot_create(
        &self,
        uuid: &uuid::Uuid,
        spec: &SnapshotSpec<'_>,
    ) -> Result<SavedSnapshot, HostError>;

    /// Reverts the domain to a snapshot that vmd recorded (as `snapshot_create` returned
    /// it): its metadata is redefined (`VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE`), the domain
    /// reverted (`virDomainRevertToSnapshot`), then the metadata dropped again.
    fn snapshot_revert(&self, uuid: &uuid::Uuid, saved: &SavedSnapshot) -> Result<(), HostError>;

    /// Deletes, data included, a snapshot named `name` that libvirt still records for the
    /// domain although vmd does not (an interrupted `snapshot_create` leaves one behind:
    /// libvirt finished, vmd never heard back). Returns whether there was one
    /// (`virDomainSnapshotLookupByName`, `virDomainSnapshotDelete`).
    fn snapshot_drop_unrecorded(&self, uuid: &uuid::Uuid, name: &str) -> Result<bool, HostError>;

    /// Drops libvirt's metadata of snapshot `name`, once vmd's catalog records it; the
    /// snapshot stays in the disks (`virDomainSnapshotDelete` with `METADATA_ONLY`). No such
    /// metadata is not an error.
    fn snapshot_forget(&self, uuid: &uuid::Uuid, name: &str) -> Result<(), HostError>;

    /// Deletes a snapshot that vmd recorded, data included, from a running domain: the
    /// metadata is redefined, then `virDomainSnapshotDelete` removes the snapshot.
    fn snapshot_delete(&self, uuid: &uuid::Uuid, saved: &SavedSnapshot) -> Result<(), HostError>;

    /// Attaches a disk (`virDomainAttachDeviceFlags`, to the persistent config and, with
    /// `live`, to the running guest).
    fn attach_disk(&self, uuid: &uuid::Uuid, disk: &DiskSpec, live: bool) -> Result<(), HostError>;

    /// Detaches a disk (`virDomainDetachDeviceFlags`, config and, with `live`, guest).
    fn detach_disk(&self, uuid: &uuid::Uuid, disk: &DiskSpec, live: bool) -> Result<(), HostError>;

    /// The domains that carry vmd's metadata element, with the VMD id it names
    /// (`virConnectListAllDomains`, `virDomainGetMetadata`).
    fn vmd_domains(&self) -> Result<Vec<VmdDomain>, HostError>;

    /// The names of the host's active libvirt networks (`virConnectListAllNetworks`).
    fn networks(&self) -> Result<Vec<String>, HostError>;
}

/// A volume to be made by a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewVolume<'a> {
    /// Its pool.
    pub pool: &'a PoolName,
    /// Its name.
    pub name: &'a VolumeName,
    /// `qcow2` or `raw`.
    pub format: &'static str,
    /// Mode 0444 (a master's volume) rather than 0600.
    pub readonly: bool,
}

/// A domain's run state as vmd tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainState {
    /// Running (or blocked, or being shut down).
    Running,
    /// Paused (by vmd, by the user, or by libvirt for a save).
    Paused,
    /// Defined and off (or crashed).
    Shutoff,
}

/// A domain tagged by vmd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmdDomain {
    /// The domain's UUID.
    pub uuid: uuid::Uuid,
    /// The domain's name.
    pub name: String,
    /// The VMD id its metadata names.
    pub vmd_id: String,
    /// Its state.
    pub state: DomainState,
}

/// The namespace of vmd's `<metadata>` element in domain XML.
pub const METADATA_NS: &str = "https://vmd.dev/xmlns/domain/1";
/// The prefix vmd writes for [`METADATA_NS`].
pub const METADATA_PREFIX: &str = "vmd";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_string_libvirt_encoding_splits_fields() {
        assert_eq!(version_string(9_000_000), "9.0.0");
        assert_eq!(version_string(7_002_022), "7.2.22");
    }

    #[test]
    fn default_virt_type_kvm_offered_prefers_kvm() {
        let offered = vec!["qemu".to_string(), "kvm".to_string()];
        assert_eq!(default_virt_type(&offered).as_deref(), Some("kvm"));
    }

    #[test]
    fn default_virt_type_only_tcg_falls_back_to_qemu() {
        let offered = vec!["qemu".to_string()];
        assert_eq!(default_virt_type(&offered).as_deref(), Some("qemu"));
        assert_eq!(default_virt_type(&[]), None);
    }
}
