//! The VMD record as the catalog stores it. Records carry a `version`; fields are added,
//! never repurposed.

use serde::{Deserialize, Serialize};

use super::names::{PoolName, VmdId, VmdName, VolumeName};

/// The catalog record version this build writes.
pub const CATALOG_VERSION: u32 = 1;

/// Master or instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Read-only; never runs; the source of clones.
    Master,
    /// Cloned from a master; deployable.
    Instance,
}

/// Where a VMD is in its life cycle. Every operation checks it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// A master whose volumes are complete.
    Ready,
    /// An instance with its volumes, not yet deployed.
    Cloned,
    /// A domain is defined.
    Deployed,
    /// The domain runs.
    Running,
    /// The domain is paused.
    Paused,
    /// The domain is gone; devices and snapshots are kept.
    Undeployed,
}

/// What a device is for; placement is decided per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The OS image disk.
    Os,
    /// A data disk.
    Data,
    /// A swap disk.
    Swap,
}

/// The format of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// qcow2 (the default: linked clones are qcow2 overlays).
    Qcow2,
    /// raw.
    Raw,
}

impl DiskFormat {
    /// The name libvirt and qemu-img use, also the volume file extension.
    pub fn as_str(&self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }
}

impl std::str::FromStr for DiskFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "qcow2" => Ok(DiskFormat::Qcow2),
            "raw" => Ok(DiskFormat::Raw),
            other => Err(format!(
                "unknown disk format {other:?} (expected qcow2 or raw)"
            )),
        }
    }
}

/// Boot firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    /// Legacy BIOS.
    Bios,
    /// UEFI.
    Efi,
}

/// The virtual hardware of a VMD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Boot firmware.
    pub firmware: Firmware,
    /// The guest OS as the package describes it (CIM id and description), if known.
    pub os_type: Option<String>,
}

/// A network the VM connects to, by its name in the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The package's network name (mapped to a libvirt network at deploy).
    pub name: String,
    /// The NIC model the package asked for, if any.
    pub model: Option<String>,
}

/// A ProductSection property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// The key, with class and instance prefixes as the OVF spec composes them.
    pub key: String,
    /// The property type (`string`, `boolean`, ...).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The value, if any.
    pub value: Option<String>,
    /// Whether the user may set it.
    pub user_configurable: bool,
    /// Label for people.
    pub label: Option<String>,
    /// Description for people.
    pub description: Option<String>,
}

/// One virtual storage device of a VMD and the volume that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// The device id within the VMD (the package's disk id for imported disks).
    pub id: String,
    /// What the device is for.
    pub role: Role,
    /// The bus the package put it on (`scsi`, `ide`, `sata`, ...); vmd deploys on virtio-scsi.
    pub bus: String,
    /// The unit (LUN) on that bus: the package's AddressOnParent.
    pub unit: u32,
    /// Virtual size in bytes.
    pub capacity_bytes: u64,
    /// Volume format.
    pub format: DiskFormat,
    /// The pool holding the volume.
    pub pool: PoolName,
    /// The volume's name in that pool.
    pub volume: VolumeName,
    /// The volume's path on the host, as libvirt reports it.
    pub path: String,
    /// The master volume's path this disk is an overlay of, or none.
    pub backing: Option<String>,
    /// The SCSI serial the guest sees, stable for the life of the VMD (derived from the VMD
    /// and disk ids); guests find their disks by it.
    #[serde(default)]
    pub serial: Option<String>,
    /// The volume pre-existed in a pool whose volumes libvirt does not create (a LUN of an
    /// `iscsi-direct` pool): vmd claimed it for this disk and releases it (drops it from the
    /// catalog) instead of deleting it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claimed: bool,
}

/// How a VMD is deployed: kept across undeploy so that redeploy repeats it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The libvirt domain's name (`vmd-<name>`); its UUID is the VMD id.
    pub domain: String,
    /// `kvm` or `qemu` (TCG).
    pub virt_type: String,
    /// Package network name to libvirt network; absent names use user-mode networking.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, String>,
    /// The template given with `--template`, if any.
    pub template: Option<String>,
    /// The file the host logs the guest's serial console to, named only where vmd proved
    /// the host's files are its own (see `deploy`); none on a remote host, where the
    /// console is read through libvirt only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_log: Option<String>,
}

/// A snapshot of every disk of a VMD, taken at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unique within the VMD.
    pub name: String,
    /// When it was taken, RFC 3339 UTC.
    pub created: String,
    /// Whether reverting restores the guest's memory (taken with `--memory` while running).
    pub memory: bool,
    /// The host's record of the snapshot when it was taken through the host (libvirt's full
    /// description), kept as is and handed back to revert or delete; vmd never reads it.
    #[serde(default)]
    pub libvirt_xml: Option<String>,
}

/// Where a master came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The package path given to `import`.
    pub package: String,
    /// SHA-256 of the descriptor bytes.
    pub digest: String,
    /// `0.9`, `1.x` or `2.0`.
    pub ovf_version: String,
    /// The VirtualSystem imported.
    pub system: String,
    /// The deployment option chosen, if the package has any.
    pub deployment: Option<String>,
    /// Product information from the ProductSection.
    pub product: Option<serde_json::Value>,
    /// The manifest's algorithm, when a manifest was present and verified.
    pub manifest: Option<String>,
    /// The certificate report, when the package was signed.
    pub certificate: Option<serde_json::Value>,
    /// Whether a EULA was shown and accepted.
    pub eula_accepted: bool,
}

/// One VMD: a VM's complete state as vmd manages it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vmd {
    /// Catalog record version.
    pub version: u32,
    /// Unique id.
    pub id: VmdId,
    /// Unique name.
    pub name: VmdName,
    /// Master or instance.
    pub kind: Kind,
    /// Life-cycle state.
    pub state: State,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// The master an instance was cloned from.
    pub parent: Option<VmdId>,
    /// Where a master came from.
    pub source: Option<Source>,
    /// Virtual hardware.
    pub hardware: Hardware,
    /// Networks by package name.
    pub networks: Vec<Network>,
    /// ProductSection properties.
    pub properties: Vec<Property>,
    /// Devices, OS disk first.
    pub disks: Vec<Disk>,
    /// The original OVF descriptor, kept for export.
    pub descriptor: Option<String>,
    /// How the VMD is (or was last) deployed.
    #[serde(default)]
    pub deployment: Option<Deployment>,
    /// Snapshots, oldest first.
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
}

/// The current time as RFC 3339 UTC, to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
