//! The validated OVF model: what `parse` returns and what `select` resolves for one import.
//! Plain data with `serde::Serialize` so the catalog can record it; no behaviour beyond
//! small accessors. Strings taken from the descriptor (names, descriptions, network names)
//! are data: they are escaped wherever they are shown and never become libvirt names.

use serde::Serialize;

/// The OVF specification generation, from the envelope namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OvfVersion {
    /// VMware's pre-standard 0.9 (`http://www.vmware.com/schema/ovf/1/envelope`).
    #[serde(rename = "0.9")]
    V0_9,
    /// DSP0243 1.x (`http://schemas.dmtf.org/ovf/envelope/1`).
    #[serde(rename = "1")]
    V1,
    /// DSP0243 2.x (`http://schemas.dmtf.org/ovf/envelope/2`).
    #[serde(rename = "2")]
    V2,
}

/// A validated descriptor: every cross-reference checked, every deployment option resolvable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// Which OVF generation the descriptor follows.
    pub version: OvfVersion,
    /// `References/File`, in document order.
    pub files: Vec<FileRef>,
    /// `DiskSection/Disk`, in document order.
    pub disks: Vec<DiskDef>,
    /// `NetworkSection/Network`, in document order.
    pub networks: Vec<NetworkDef>,
    /// `DeploymentOptionSection/Configuration`, in document order.
    pub deployment_options: Vec<DeploymentOption>,
    /// Every `VirtualSystem`, collections flattened, in document order.
    pub systems: Vec<VirtualSystem>,
}

/// A file of the package (`References/File`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// `ovf:id`.
    pub id: String,
    /// `ovf:href`: validated to be a plain file name inside the package.
    pub href: String,
    /// `ovf:size` in bytes, if declared.
    pub size: Option<u64>,
    /// `ovf:compression`, if the file is compressed.
    pub compression: Option<Compression>,
    /// `ovf:chunkSize` in bytes, if the file is split into chunks.
    pub chunk_size: Option<u64>,
}

/// Compression of a package file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `ovf:compression="gzip"`.
    Gzip,
}

/// A virtual disk (`DiskSection/Disk`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskDef {
    /// `ovf:diskId`.
    pub id: String,
    /// `ovf:fileRef`; `None` is a blank disk to create at `capacity_bytes`.
    pub file_ref: Option<String>,
    /// `ovf:capacity` scaled by `ovf:capacityAllocationUnits`.
    pub capacity_bytes: u64,
    /// `ovf:populatedSize`, if declared.
    pub populated_size: Option<u64>,
    /// The image format the descriptor declares (to be confirmed by inspection); `Raw`
    /// for a blank disk that declares no format vmd knows.
    pub format: DiskFormat,
    /// The `ovf:format` URI as written.
    pub format_uri: String,
    /// oVirt's `ovf:disk-interface`: the bus when no controller item says.
    pub bus_hint: Option<Bus>,
    /// oVirt's `ovf:boot="true"`: the disk the guest boots from.
    pub bootable: bool,
}

/// Disk image formats vmd imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskFormat {
    /// VMDK `streamOptimized` (what OVA exports use).
    VmdkStreamOptimized,
    /// VMDK `monolithicSparse`.
    VmdkMonolithicSparse,
    /// qcow2.
    Qcow2,
    /// Raw bytes.
    Raw,
}

/// A logical network (`NetworkSection/Network`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkDef {
    /// `ovf:name`.
    pub name: String,
    /// `Description`, if any.
    pub description: Option<String>,
}

/// A sizing choice (`DeploymentOptionSection/Configuration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentOption {
    /// `ovf:id`.
    pub id: String,
    /// `Label`, if any.
    pub label: Option<String>,
    /// `Description`, if any.
    pub description: Option<String>,
    /// `ovf:default="true"`.
    pub default: bool,
}

/// A `VirtualSystemCollection` a system was found in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionInfo {
    /// `ovf:id`.
    pub id: String,
    /// `Name`, if any.
    pub name: Option<String>,
}

/// One virtual machine of the package, before a deployment option is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualSystem {
    /// `ovf:id`, unique in the envelope.
    pub id: String,
    /// `Name`, if any.
    pub name: Option<String>,
    /// The collections holding this system, outermost first.
    pub collections: Vec<CollectionInfo>,
    /// The first `ProductSection`, if any.
    pub product: Option<ProductInfo>,
    /// The first `OperatingSystemSection`, if any.
    pub os: Option<OsInfo>,
    /// `AnnotationSection/Annotation`, if any.
    pub annotation: Option<String>,
    /// License texts of the system and of its collections, outermost first.
    pub eulas: Vec<String>,
    /// Properties of every `ProductSection`, keys qualified by class and instance.
    pub properties: Vec<Property>,
    /// The virtual hardware, items not yet filtered by deployment option.
    pub hardware: HardwareSection,
}

/// `ProductSection` text fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductInfo {
    /// `Product`.
    pub product: Option<String>,
    /// `Vendor`.
    pub vendor: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `FullVersion`.
    pub full_version: Option<String>,
    /// `ProductUrl`.
    pub product_url: Option<String>,
    /// `VendorUrl`.
    pub vendor_url: Option<String>,
    /// `AppUrl` (may hold `${property}` references; kept as written).
    pub app_url: Option<String>,
}

/// `OperatingSystemSection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OsInfo {
    /// `ovf:id`, the CIM operating system number (`None` if absent or not a number).
    pub id: Option<u32>,
    /// `ovf:version`.
    pub version: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// VMware's `vmw:osType` attribute.
    pub vmw_os_type: Option<String>,
    /// VirtualBox's `vbox:OSType` element.
    pub vbox_os_type: Option<String>,
}

/// A `ProductSection/Property`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Property {
    /// The qualified key `[class.]key[.instance]` that the OVF environment uses.
    pub key: String,
    /// `ovf:type`.
    pub kind: String,
    /// `ovf:value`, the default.
    pub value: Option<String>,
    /// `Value` children: values that apply to some deployment options.
    pub values: Vec<PropertyValue>,
    /// `ovf:userConfigurable`.
    pub user_configurable: bool,
    /// `ovf:password`.
    pub password: bool,
    /// `Label`.
    pub label: Option<String>,
    /// `Description`.
    pub description: Option<String>,
}

/// A property value that applies only to the listed deployment options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PropertyValue {
    /// `Value@ovf:value`.
    pub value: String,
    /// `Value@ovf:configuration`: the deployment options this value is for.
    pub configurations: Vec<String>,
}

/// A `VirtualHardwareSection` as declared: its items are merged and filtered by `select`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HardwareSection {
    /// `System/vssd:VirtualSystemType`, e.g. `vmx-13`.
    pub virtual_system_type: Option<String>,
    /// Firmware, from the vendor hints the descriptor carries.
    pub firmware: Firmware,
    /// `Item`, `StorageItem` and `EthernetPortItem` elements in document order.
    pub items: Vec<HardwareItem>,
}

/// Which kind of element held a hardware item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ItemElement {
    /// `Item` (rasd).
    Item,
    /// OVF 2 `StorageItem` (sasd).
    StorageItem,
    /// OVF 2 `EthernetPortItem` (epasd).
    EthernetPortItem,
}

/// One hardware item: its CIM fields by local name, other children in `{ns}local` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HardwareItem {
    /// The element the item came from.
    pub element: ItemElement,
    /// Line in the descriptor, for messages.
    pub line: u64,
    /// `ovf:configuration`; `None` applies to every deployment option.
    pub configurations: Option<Vec<String>>,
    /// `ovf:bound` is `min` or `max`: a range limit, not a value to deploy.
    pub range_bound: bool,
    /// Child elements as (name, trimmed text), in document order.
    pub fields: Vec<(String, String)>,
}

impl HardwareItem {
    /// The first value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Firmware the guest expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    /// Legacy BIOS (the default when no producer hint says otherwise).
    Bios,
    /// UEFI, with or without Secure Boot.
    Efi {
        /// VMware `uefi.secureBoot.enabled`, oVirt `BiosType` 4.
        secure_boot: bool,
    },
}

/// Resolved virtual hardware for one system and deployment option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hardware {
    /// Virtual CPUs (processor item `VirtualQuantity`, or oVirt's topology product).
    pub vcpus: u32,
    /// VMware `vmw:CoresPerSocket` or oVirt `cpu_per_socket`, when it divides `vcpus`.
    pub cores_per_socket: Option<u32>,
    /// Memory, rounded up to whole MiB.
    pub memory_mib: u64,
    /// Firmware, from the vendor hints.
    pub firmware: Firmware,
    /// `vssd:VirtualSystemType`, e.g. `vmx-13`.
    pub virtual_system_type: Option<String>,
    /// Storage controllers, in document order.
    pub controllers: Vec<Controller>,
    /// Disk drives, in document order.
    pub disks: Vec<DiskAttachment>,
    /// CD/DVD drives, in document order.
    pub cdroms: Vec<CdromAttachment>,
    /// Ethernet adapters, in document order.
    pub nics: Vec<Nic>,
}

/// A storage controller item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Controller {
    /// `InstanceID`, which disks name as their `Parent`.
    pub instance_id: String,
    /// The controller family.
    pub kind: ControllerKind,
    /// `Address` (the controller's bus number), if declared.
    pub address: Option<String>,
}

/// Controller families, from `ResourceType` and `ResourceSubType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControllerKind {
    /// `ResourceType` 5.
    Ide,
    /// Parallel SCSI HBA; `subtype` is the vendor model (`lsilogic`, `VirtualSCSI`, ...).
    Scsi {
        /// `ResourceSubType`, if declared.
        subtype: Option<String>,
    },
    /// `ResourceType` 20 with subtype `AHCI` or `vmware.sata.ahci`.
    Sata,
    /// `ResourceType` 20 with subtype `NVMe` or `vmware.nvme.controller`.
    Nvme,
}

/// The bus a disk or CD-ROM sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bus {
    /// On an IDE controller.
    Ide,
    /// On a SCSI controller (or oVirt `VirtIO_SCSI`).
    Scsi,
    /// On a SATA (AHCI) controller.
    Sata,
    /// On an NVMe controller.
    Nvme,
    /// oVirt's `ovf:disk-interface="VirtIO"`.
    Virtio,
    /// No controller named: the deployer chooses.
    Unspecified,
}

/// A disk drive item attached to a `DiskDef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskAttachment {
    /// The `DiskDef::id` the `HostResource` names.
    pub disk_id: String,
    /// The controller's `InstanceID` (`Parent`), if any.
    pub controller: Option<String>,
    /// The bus, from the controller (or oVirt's hint when there is none).
    pub bus: Bus,
    /// `AddressOnParent`, or the next free unit when absent.
    pub unit: u32,
    /// Explicit boot order (oVirt `BootOrder`, `ovf:boot`), lowest first.
    pub boot_order: Option<u32>,
}

/// A CD/DVD drive item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CdromAttachment {
    /// The controller's `InstanceID` (`Parent`), if any.
    pub controller: Option<String>,
    /// The bus, from the controller.
    pub bus: Bus,
    /// `AddressOnParent`, or the next free unit when absent.
    pub unit: u32,
    /// The `FileRef::id` of the inserted medium, if any.
    pub file: Option<String>,
}

/// An Ethernet adapter item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nic {
    /// `Connection`: the logical network name (data, not a host network).
    pub network: Option<String>,
    /// `ResourceSubType`, e.g. `E1000`, `VmxNet3`.
    pub model: Option<String>,
    /// `Address` (or oVirt `MACAddress`), normalised to lower-case `xx:xx:xx:xx:xx:xx`.
    pub mac: Option<String>,
}

/// What an imported disk is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The boot disk.
    Os,
    /// Any other disk.
    Data,
}

/// One system resolved for import under one deployment option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appliance {
    /// The OVF generation of the descriptor.
    pub version: OvfVersion,
    /// The chosen system, resolved.
    pub system: ResolvedSystem,
    /// The deployment option applied, if the package declares any.
    pub deployment: Option<String>,
    /// The disks attached to the system, the OS disk first.
    pub disks: Vec<ApplianceDisk>,
    /// The logical networks the system's NICs use, in NIC order.
    pub networks: Vec<NetworkDef>,
}

/// A `VirtualSystem` with its deployment option applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedSystem {
    /// `VirtualSystem@ovf:id`.
    pub id: String,
    /// `Name`, if any.
    pub name: Option<String>,
    /// The collections holding the system, outermost first.
    pub collections: Vec<CollectionInfo>,
    /// The first `ProductSection`, if any.
    pub product: Option<ProductInfo>,
    /// The first `OperatingSystemSection`, if any.
    pub os: Option<OsInfo>,
    /// `AnnotationSection/Annotation`, if any.
    pub annotation: Option<String>,
    /// License texts the user accepts by importing, outermost collection first.
    pub eulas: Vec<String>,
    /// Properties with their values for the chosen option.
    pub properties: Vec<ResolvedProperty>,
    /// The hardware for the chosen option.
    pub hardware: Hardware,
}

/// A property with the value for the chosen deployment option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedProperty {
    /// The qualified key `[class.]key[.instance]`.
    pub key: String,
    /// `ovf:type`.
    pub kind: String,
    /// The value for the chosen option, else the default.
    pub value: Option<String>,
    /// `ovf:userConfigurable`.
    pub user_configurable: bool,
    /// `ovf:password`: never show the value.
    pub password: bool,
    /// `Label`.
    pub label: Option<String>,
    /// `Description`.
    pub description: Option<String>,
}

/// A disk to import (or create blank) for the chosen system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplianceDisk {
    /// The disk as declared.
    pub disk: DiskDef,
    /// The file holding the image; `None` for a blank disk.
    pub file: Option<FileRef>,
    /// Boot disk or data disk.
    pub role: Role,
    /// The controller's `InstanceID`, if any.
    pub controller: Option<String>,
    /// The bus the disk sits on.
    pub bus: Bus,
    /// The unit on that bus.
    pub unit: u32,
}
