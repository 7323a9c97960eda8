//! The bench's inputs: the import OVA (a 2 GiB disk with about 1 GiB of data, as a
//! streamOptimized VMDK, generated once and cached under `target/bench/data/`) and the
//! descriptors of sparse packages whose only disk has no file but a large capacity.

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::measure::run;

/// Bump when the generated content changes, so that stale caches are not reused.
const IMPORT_DATA_VERSION: &str = "import-v1";
const MIB: u64 = 1 << 20;
/// The import disk: 2 GiB virtual.
pub const IMPORT_VIRTUAL_BYTES: u64 = 2048 * MIB;

/// What fills each MiB of the raw disk, repeating every eight MiB: half the disk holds
/// data, half of that incompressible, half text that deflates well; the rest are holes.
#[derive(Clone, Copy)]
enum Fill {
    Random,
    Text,
    Hole,
}
const PATTERN: [Fill; 8] = [
    Fill::Random,
    Fill::Text,
    Fill::Hole,
    Fill::Hole,
    Fill::Text,
    Fill::Random,
    Fill::Hole,
    Fill::Hole,
];

/// The generated import package.
pub struct ImportData {
    /// The OVA: descriptor, SHA-256 manifest, one streamOptimized VMDK.
    pub ova: PathBuf,
    /// The same VMDK, already extracted: the input of comparison (b).
    pub vmdk: PathBuf,
    /// Non-zero bytes of the disk.
    pub data_bytes: u64,
}

/// splitmix64: fast, deterministic filler for the incompressible part.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Log-like text: compresses about 4:1 with deflate, like the text files of a real disk.
fn fill_text(buf: &mut [u8], line: &mut u64) {
    let mut s = String::with_capacity(buf.len() + 128);
    while s.len() < buf.len() {
        let _ = writeln!(
            s,
            "{:08} host-{:03} service[{}]: request {:x} served in {} ms status={}",
            *line,
            *line % 97,
            *line % 13,
            line.wrapping_mul(2_654_435_761),
            *line % 1000,
            if line.is_multiple_of(7) {
                "retry"
            } else {
                "ok"
            }
        );
        *line += 1;
    }
    buf.copy_from_slice(&s.as_bytes()[..buf.len()]);
}

/// Writes the raw disk image, sparse, and returns its non-zero byte count.
fn write_raw(path: &Path) -> Result<u64> {
    let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
    f.set_len(IMPORT_VIRTUAL_BYTES)?;
    let mut rng = Rng(0x766d_6462_656e_6368);
    let mut line = 0u64;
    let mut buf = vec![0u8; MIB as usize];
    let mut data = 0u64;
    for i in 0..IMPORT_VIRTUAL_BYTES / MIB {
        match PATTERN[(i % 8) as usize] {
            Fill::Hole => continue,
            Fill::Random => rng.fill(&mut buf),
            Fill::Text => fill_text(&mut buf, &mut line),
        }
        f.write_all_at(&buf, i * MIB)
            .with_context(|| format!("write {}", path.display()))?;
        data += MIB;
    }
    f.sync_all()?;
    Ok(data)
}

fn sha256_hex(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("read {}", path.display()))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// One disk of a generated descriptor.
pub struct OvfDisk<'a> {
    /// `(href, size)` of its streamOptimized VMDK, or none for a blank disk.
    pub file: Option<(&'a str, u64)>,
    pub capacity_mib: u64,
    pub populated_bytes: u64,
}

/// An OVF 1.0 descriptor in ovftool's shape: one system, 1 vCPU, 256 MiB, one SCSI disk.
pub fn descriptor(system: &str, disk: &OvfDisk<'_>) -> String {
    let (reference, file_attrs) = match disk.file {
        Some((href, size)) => (
            format!("<File ovf:href=\"{href}\" ovf:id=\"file1\" ovf:size=\"{size}\"/>"),
            " ovf:fileRef=\"file1\" ovf:format=\"http://www.vmware.com/interfaces/\
             specifications/vmdk.html#streamOptimized\""
                .to_string(),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>{reference}</References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{cap}" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:populatedSize="{populated}"{file_attrs}/>
  </DiskSection>
  <VirtualSystem ovf:id="{system}">
    <Info>A virtual machine</Info>
    <Name>{system}</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{system}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>1 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>256MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>256</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#,
        cap = disk.capacity_mib,
        populated = disk.populated_bytes,
    )
}

/// The import OVA, generated on first use (about a minute) and then taken from the cache.
pub fn import_ova(root: &Path) -> Result<ImportData> {
    let dir = root.join("data").join(IMPORT_DATA_VERSION);
    let ova = dir.join("bench.ova");
    let vmdk = dir.join("bench-disk1.vmdk");
    let done = dir.join("complete");
    if let Ok(text) = std::fs::read_to_string(&done) {
        if let Ok(data_bytes) = text.trim().parse() {
            if ova.is_file() && vmdk.is_file() {
                return Ok(ImportData {
                    ova,
                    vmdk,
                    data_bytes,
                });
            }
        }
    }
    eprintln!("bench: generating {} (once; cached)", ova.display());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let raw = dir.join("bench-disk1.raw");
    let data_bytes = write_raw(&raw)?;
    run(Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
        ])
        .arg(&raw)
        .arg(&vmdk))?;
    std::fs::remove_file(&raw)?;
    let vmdk_size = std::fs::metadata(&vmdk)?.len();
    let ovf = descriptor(
        "bench",
        &OvfDisk {
            file: Some(("bench-disk1.vmdk", vmdk_size)),
            capacity_mib: IMPORT_VIRTUAL_BYTES / MIB,
            populated_bytes: data_bytes,
        },
    );
    std::fs::write(dir.join("bench.ovf"), ovf)?;
    let manifest = format!(
        "SHA256(bench.ovf)= {}\nSHA256(bench-disk1.vmdk)= {}\n",
        sha256_hex(&dir.join("bench.ovf"))?,
        sha256_hex(&vmdk)?
    );
    std::fs::write(dir.join("bench.mf"), manifest)?;
    run(Command::new("tar")
        .args(["--format=ustar", "--owner=0", "--group=0", "-cf"])
        .arg(&ova)
        .arg("-C")
        .arg(&dir)
        .args(["bench.ovf", "bench.mf", "bench-disk1.vmdk"]))?;
    std::fs::write(&done, data_bytes.to_string())?;
    Ok(ImportData {
        ova,
        vmdk,
        data_bytes,
    })
}

/// Writes a directory package whose one disk is blank, `capacity_gib` large and sparse, and
/// returns its `.ovf`.
pub fn sparse_package(root: &Path, capacity_gib: u64) -> Result<PathBuf> {
    let dir = root.join("data").join(format!("sparse-{capacity_gib}g"));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let ovf = dir.join("sparse.ovf");
    let text = descriptor(
        &format!("sparse{capacity_gib}g"),
        &OvfDisk {
            file: None,
            capacity_mib: capacity_gib * 1024,
            populated_bytes: 0,
        },
    );
    std::fs::write(&ovf, text)?;
    Ok(ovf)
}
