//! One-system OVF 1.0 descriptors written around the disks a test makes: the format URIs
//! producers use, a [`Disk`] builder for what a descriptor declares (true or not), and
//! [`descriptor`].

use std::path::Path;

use super::packages::{fill, size};

pub const RAW: &str = "http://en.wikipedia.org/wiki/Byte";
pub const QCOW2: &str = "http://www.gnome.org/~markmc/qcow-image-format.html";
pub const VMDK_STREAM: &str =
    "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
pub const VMDK_SPARSE: &str = "http://www.vmware.com/interfaces/specifications/vmdk.html#sparse";
/// One disk of a test package, as its descriptor declares it.
#[derive(Debug, Clone)]
pub struct Disk {
    /// The package file; `None` for a blank disk.
    pub href: Option<String>,
    /// The `ovf:format` URI.
    pub format: &'static str,
    /// `ovf:capacity`, verbatim.
    pub capacity: String,
    /// `ovf:capacityAllocationUnits`, verbatim.
    pub units: Option<String>,
    /// `ovf:size`, verbatim; the file's real size when `None`.
    pub size: Option<String>,
    /// `ovf:compression="gzip"`.
    pub gzip: bool,
    /// `ovf:populatedSize`, true or not.
    pub populated: Option<u64>,
}

impl Disk {
    /// A disk stored in `href`, of format `format`, whose capacity is `capacity` bytes.
    pub fn file(href: &str, format: &'static str, capacity: u64) -> Self {
        Self {
            href: Some(href.to_string()),
            format,
            capacity: capacity.to_string(),
            units: None,
            size: None,
            gzip: false,
            populated: None,
        }
    }

    /// A blank disk of `capacity` bytes.
    pub fn blank(capacity: u64) -> Self {
        Self {
            href: None,
            format: RAW,
            capacity: capacity.to_string(),
            units: None,
            size: None,
            gzip: false,
            populated: None,
        }
    }

    pub fn capacity(self, capacity: &str, units: Option<&str>) -> Self {
        Self {
            capacity: capacity.to_string(),
            units: units.map(str::to_string),
            ..self
        }
    }

    pub fn declared_size(self, size: &str) -> Self {
        Self {
            size: Some(size.to_string()),
            ..self
        }
    }

    pub fn gzip(self) -> Self {
        Self { gzip: true, ..self }
    }

    pub fn populated(self, bytes: u64) -> Self {
        Self {
            populated: Some(bytes),
            ..self
        }
    }
}

const ENVELOPE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>
@DISK_FILES@  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
@DISK_DISKS@  </DiskSection>
  <VirtualSystem ovf:id="@SYSTEM@">
    <Info>A virtual machine</Info>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>1 virtual CPU</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>64 MiB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>64</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
@DISK_ITEMS@    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#;

/// The descriptor of a one-system package `system` holding `disks` (files looked up in
/// `dir`): 1 vCPU, 64 MiB, the disks on one SCSI controller at units 0, 1, ...
pub fn descriptor(dir: &Path, system: &str, disks: &[Disk]) -> String {
    let (mut files, mut defs, mut items) = (String::new(), String::new(), String::new());
    for (i, d) in disks.iter().enumerate() {
        let n = i + 1;
        let mut file_ref = String::new();
        if let Some(href) = &d.href {
            let stored = size(&dir.join(href)).to_string();
            let declared = d.size.clone().unwrap_or(stored);
            let gzip = if d.gzip {
                r#" ovf:compression="gzip""#
            } else {
                ""
            };
            files.push_str(&format!(
                "    <File ovf:href=\"{href}\" ovf:id=\"file{n}\" ovf:size=\"{declared}\"{gzip}/>\n"
            ));
            file_ref = format!(r#" ovf:fileRef="file{n}" ovf:format="{}""#, d.format);
        }
        let capacity = &d.capacity;
        let units = d
            .units
            .as_ref()
            .map(|u| format!(r#" ovf:capacityAllocationUnits="{u}""#))
            .unwrap_or_default();
        let populated = d
            .populated
            .map(|p| format!(r#" ovf:populatedSize="{p}""#))
            .unwrap_or_default();
        defs.push_str(&format!(
            "    <Disk ovf:capacity=\"{capacity}\"{units} ovf:diskId=\"vmdisk{n}\"{file_ref}{populated}/>\n"
        ));
        items.push_str(&format!(
            "      <Item>\n        <rasd:AddressOnParent>{i}</rasd:AddressOnParent>\n        \
             <rasd:ElementName>Hard disk {n}</rasd:ElementName>\n        \
             <rasd:HostResource>ovf:/disk/vmdisk{n}</rasd:HostResource>\n        \
             <rasd:InstanceID>{}</rasd:InstanceID>\n        <rasd:Parent>3</rasd:Parent>\n        \
             <rasd:ResourceType>17</rasd:ResourceType>\n      </Item>\n",
            n + 3
        ));
    }
    fill(
        ENVELOPE,
        &[
            ("DISK_FILES", files),
            ("DISK_DISKS", defs),
            ("DISK_ITEMS", items),
            ("SYSTEM", system.to_string()),
        ],
    )
}
