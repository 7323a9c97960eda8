//! Domains and disks as they cross the seam: typed descriptions the manager fills in and the
//! host turns into its own documents (for libvirt, `host::xml`). The field names of
//! [`DomainSpec`], [`DiskSpec`] and [`NicSpec`] are also the variable names of domain
//! templates, so renaming one breaks users' templates.

use serde::{Deserialize, Serialize};

/// A domain to define: the typed description and, when the user chose one, the template
/// (libvirt domain XML by nature) that the libvirt host renders it with instead of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDefinition {
    /// What the domain is.
    pub spec: DomainSpec,
    /// The user's template; `None` for the built-in one.
    pub template: Option<DomainTemplate>,
}

/// A user's domain template, read by the manager (bounded, see `template_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainTemplate {
    /// How errors name it: its path.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// Everything a domain template may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainSpec {
    /// The libvirt domain name.
    pub name: String,
    /// The libvirt domain UUID.
    pub uuid: String,
    /// The VMD id, written into the domain's `<metadata>` so vmd can recognise its own.
    pub vmd_id: String,
    /// The VMD name, also in `<metadata>`.
    pub vmd_name: String,
    /// The libvirt domain type: `kvm`, `qemu` (TCG), or `test` for libvirt's test driver.
    pub virt_type: String,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// `bios` or `efi`.
    pub firmware: String,
    /// Disks on the virtio-scsi controller.
    pub disks: Vec<DiskSpec>,
    /// Network interfaces, in guest order.
    pub nics: Vec<NicSpec>,
    /// The file the host logs the serial console to, or empty for none (a remote host,
    /// whose files are not vmd's).
    pub console_log: String,
}

/// One disk: of a [`DomainSpec`], or hot-plugged into a defined domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// The libvirt storage pool holding the volume.
    pub pool: String,
    /// The volume's name in its pool: disks are named by pool and volume, so that libvirt
    /// resolves them on the host, whatever the pool's kind.
    pub volume: String,
    /// The volume's path as the host reported it, for templates that want it.
    pub path: String,
    /// The image format given to QEMU explicitly: `qcow2` or `raw`.
    pub format: String,
    /// The serial the guest sees.
    pub serial: String,
    /// The SCSI LUN on the virtio-scsi controller; it also gives the target name
    /// (`sda`..`sdz`, `sdaa`, …).
    pub unit: u32,
    /// Whether the guest boots from this disk.
    pub boot: bool,
    /// Whether the guest sees the disk read-only.
    pub readonly: bool,
}

/// One network interface of a [`DomainSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicSpec {
    /// User-mode networking, for hosts without a libvirt network.
    pub user: bool,
    /// The libvirt network; required unless `user`.
    pub network: Option<String>,
    /// The guest NIC model, e.g. `virtio` or `e1000`.
    pub model: String,
}
