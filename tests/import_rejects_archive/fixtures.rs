//! Fixtures for `import_rejects_archive`: packages built around the tiny appliance's data disk
//! (a valid descriptor to alter, directory packages, hand-made OVAs with raw tar headers), and
//! the act and assert steps every case shares.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::env::TestEnv;
use crate::common::packages::{digest, fill, raw_tar, RawEntry};
use crate::common::tiny_ova;

// ---------------------------------------------------------------------------------------------
// Fixtures: the disk, the descriptor, packages.

/// The one disk of every package here.
pub const DISK: &str = "tiny-disk2.vmdk";
/// Its stored size.
pub const DISK_SIZE: usize = 65536;
/// The descriptor's name in every package.
pub const OVF_NAME: &str = "tiny.ovf";
/// Longest a refusal may take: every cap must hold long before this.
const QUICK: Duration = Duration::from_secs(20);

/// The bytes of the tiny appliance's blank data disk.
pub fn disk_bytes() -> Vec<u8> {
    static DISK_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    DISK_BYTES
        .get_or_init(|| {
            let out = Command::new("tar")
                .arg("-xOf")
                .arg(tiny_ova())
                .arg(DISK)
                .output()
                .unwrap();
            assert!(out.status.success() && out.stdout.len() == DISK_SIZE);
            out.stdout
        })
        .clone()
}

const ENVELOPE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
@DOCTYPE@<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmdt="urn:vmd-test">
  <References>
@FILES@
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
@DISKS@
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="@NETWORK@">
      <Description>@DESCRIPTION@</Description>
    </Network>
  </NetworkSection>
@SECTIONS@@SYSTEMS@</Envelope>
"#;

const SYSTEM: &str = r#"  <VirtualSystem ovf:id="@ID@">
    <Info>A virtual machine</Info>
    <Name>@NAME@</Name>
    <ProductSection>
      <Info>Information about the installed software</Info>
      <Product>@PRODUCT@</Product>
    </ProductSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item>
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
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
@ITEMS@
      <Item>
        <rasd:Connection>@NETWORK@</rasd:Connection>
        <rasd:ElementName>@ELEMENT@</rasd:ElementName>
        <rasd:InstanceID>9</rasd:InstanceID>
        <rasd:ResourceSubType>E1000</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
"#;

pub const FILE: &str = r#"    <File ovf:href="tiny-disk2.vmdk" ovf:id="file1" ovf:size="65536"/>"#;
pub const DISK_DEF: &str = r#"    <Disk ovf:capacity="64" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>"#;

/// A disk drive item at `unit` of the SCSI controller, for the disk `disk_id`.
pub fn disk_item(instance: u32, unit: u32, disk_id: &str) -> String {
    format!(
        "      <Item>\n        <rasd:AddressOnParent>{unit}</rasd:AddressOnParent>\n        \
         <rasd:ElementName>Hard disk {instance}</rasd:ElementName>\n        \
         <rasd:HostResource>ovf:/disk/{disk_id}</rasd:HostResource>\n        \
         <rasd:InstanceID>{instance}</rasd:InstanceID>\n        <rasd:Parent>3</rasd:Parent>\n        \
         <rasd:ResourceType>17</rasd:ResourceType>\n      </Item>"
    )
}

/// The parts of a descriptor, already XML-escaped; [`Descriptor::valid`] imports cleanly.
#[derive(Clone)]
pub struct Descriptor {
    pub doctype: String,
    pub files: String,
    pub disks: String,
    pub sections: String,
    /// One `VirtualSystem` per id.
    pub systems: Vec<String>,
    pub name: String,
    pub product: String,
    pub element: String,
    pub network: String,
    pub description: String,
    pub items: String,
}

impl Descriptor {
    pub fn valid() -> Self {
        Self {
            doctype: String::new(),
            files: FILE.to_string(),
            disks: DISK_DEF.to_string(),
            sections: String::new(),
            systems: vec!["vm".to_string()],
            name: "vm".to_string(),
            product: "vmd test package".to_string(),
            element: "Network adapter 1".to_string(),
            network: "VM Network".to_string(),
            description: "The VM Network network".to_string(),
            items: disk_item(4, 0, "vmdisk1"),
        }
    }

    pub fn render(&self) -> String {
        let systems: String = self
            .systems
            .iter()
            .map(|id| {
                fill(
                    SYSTEM,
                    &[
                        ("ID", id.clone()),
                        ("NAME", self.name.clone()),
                        ("PRODUCT", self.product.clone()),
                        ("ITEMS", self.items.clone()),
                        ("ELEMENT", self.element.clone()),
                        ("NETWORK", self.network.clone()),
                    ],
                )
            })
            .collect();
        fill(
            ENVELOPE,
            &[
                ("DOCTYPE", self.doctype.clone()),
                ("FILES", self.files.clone()),
                ("DISKS", self.disks.clone()),
                ("SECTIONS", self.sections.clone()),
                ("SYSTEMS", systems),
                ("NETWORK", self.network.clone()),
                ("DESCRIPTION", self.description.clone()),
            ],
        )
    }
}

/// Escapes text for an XML attribute or element; newlines as `&#10;` so that attribute
/// normalisation cannot turn them into spaces.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
        .replace('\n', "&#10;")
}

/// A package directory `pkg` in the environment holding `ovf` as `tiny.ovf` and the disk.
pub fn dir_package(env: &TestEnv, ovf: &[u8]) -> PathBuf {
    let dir = env.dir().join("pkg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(OVF_NAME), ovf).unwrap();
    std::fs::write(dir.join(DISK), disk_bytes()).unwrap();
    dir
}

/// A directory package of a valid descriptor changed by `change`.
pub fn dir_package_with(env: &TestEnv, change: impl FnOnce(&mut Descriptor)) -> PathBuf {
    let mut d = Descriptor::valid();
    change(&mut d);
    dir_package(env, d.render().as_bytes())
}

/// Writes `text` as the package's manifest `tiny.mf`.
pub fn write_mf(pkg: &Path, text: &str) {
    std::fs::write(pkg.join("tiny.mf"), text).unwrap();
}

/// A manifest line `ALG(file)= hex` for a file of the package.
pub fn mf_line(pkg: &Path, alg: &str, file: &str) -> String {
    format!("{alg}({file})= {}\n", digest(alg, &pkg.join(file)))
}

/// The members of a valid OVA: the descriptor first, then the disk.
pub fn ova_members() -> Vec<RawEntry> {
    vec![
        RawEntry::file(OVF_NAME, Descriptor::valid().render().into_bytes()),
        RawEntry::file(DISK, disk_bytes()),
    ]
}

/// Writes `bytes` as `pkg.ova` in the environment.
pub fn ova_bytes(env: &TestEnv, bytes: &[u8]) -> PathBuf {
    let path = env.dir().join("pkg.ova");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes an OVA of `members`, exactly as given.
pub fn ova(env: &TestEnv, members: &[RawEntry]) -> PathBuf {
    ova_bytes(env, &raw_tar(members))
}

/// An OVA of a valid package whose descriptor `change` alters.
pub fn ova_with(env: &TestEnv, change: impl FnOnce(&mut Descriptor)) -> PathBuf {
    let mut d = Descriptor::valid();
    change(&mut d);
    let mut members = ova_members();
    members[0] = RawEntry::file(OVF_NAME, d.render().into_bytes());
    ova(env, &members)
}

/// A tar member of type `typeflag` with no data (links, devices, directories).
pub fn special(name: &str, typeflag: u8, linkname: &str) -> RawEntry {
    RawEntry {
        name: name.to_string(),
        typeflag,
        mode: 0o644,
        linkname: linkname.to_string(),
        data: Vec::new(),
        header_size: None,
    }
}

/// One PAX record, `"<len> key=value\n"` with the length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
    let mut len = body.len() + 1;
    while format!("{len}").len() + body.len() != len {
        len += 1;
    }
    [format!("{len}").into_bytes(), body].concat()
}

/// A PAX extended header (`'x'`) of `records` for the member after it.
pub fn pax(records: &[(&str, &[u8])]) -> RawEntry {
    let data = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    RawEntry {
        typeflag: b'x',
        ..RawEntry::file("PaxHeaders/member", data)
    }
}

/// A GNU long-name (`'L'`) or long-link-name (`'K'`) header carrying `name`.
pub fn gnu_long(typeflag: u8, name: &[u8]) -> RawEntry {
    RawEntry {
        typeflag,
        ..RawEntry::file("././@LongLink", [name, b"\0"].concat())
    }
}

// ---------------------------------------------------------------------------------------------
// Acting and asserting.

/// `vmd import PACKAGE ARGS...`, run from a working directory of its own (`cwd` in the
/// environment), so that anything a traversal wrote relative to it would land in the
/// environment's directory.
pub fn import(env: &TestEnv, pkg: &Path, args: &[&str]) -> Output {
    let cwd = env.dir().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    env.command()
        .current_dir(&cwd)
        .arg("import")
        .arg(pkg)
        .args(args)
        .output()
        .expect("run vmd")
}

/// `import`, also asserting that it returned within [`QUICK`].
pub fn import_quick(env: &TestEnv, pkg: &Path) -> Output {
    let start = Instant::now();
    let out = import(env, pkg, &[]);
    let took = start.elapsed();
    assert!(took < QUICK, "import took {took:?}");
    out
}

/// The refusal a user sees: exit `status`, one stderr line holding every `needle` and no
/// cause twice, nothing in the pool and nothing in the catalog.
pub fn assert_refused(env: &TestEnv, out: &Output, status: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "stderr: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "stderr is not one line:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr does not name {needle:?}: {stderr}"
        );
    }
    assert!(
        !repeats_cause(stderr.trim_end()),
        "stderr says the same thing twice: {stderr}"
    );
    assert_eq!(
        env.volumes(),
        Vec::<String>::new(),
        "volumes left in the pool"
    );
    assert_eq!(env.catalog(), Vec::<String>::new(), "catalog entries left");
}

/// True when `line` ends with some `S: S`: a cause printed twice.
fn repeats_cause(line: &str) -> bool {
    line.match_indices(": ").any(|(at, _)| {
        let tail = &line[at + 2..];
        !tail.is_empty() && line[..at].ends_with(tail)
    })
}

/// A rejected package: exit 3, see [`assert_refused`].
pub fn assert_rejected(env: &TestEnv, out: &Output, needles: &[&str]) {
    assert_refused(env, out, 3, needles);
}

/// A successful import of one master: exit 0, one catalog entry, its volume named by vmd's
/// own scheme. Returns `show --json` of it.
pub fn assert_imported(env: &TestEnv, out: &Output, name: &str) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.catalog(), vec![name.to_string()]);
    let show = env.json(&["show", name]);
    let id = show["id"].as_str().unwrap().replace('-', "");
    assert_eq!(env.volumes(), vec![format!("vmd-{id}-d0.qcow2")]);
    show
}

/// Asserts that a traversal target was not created.
pub fn assert_absent(path: &Path) {
    assert!(
        std::fs::symlink_metadata(path).is_err(),
        "{} was created",
        path.display()
    );
}

/// A path in /tmp that nothing else uses, for absolute traversal targets.
pub fn fresh_tmp_path(tag: &str) -> PathBuf {
    PathBuf::from(format!(
        "/tmp/vmd-escape-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ))
}
