//! What a storage pool's kind can hold, as facts the manager plans with: whether libvirt
//! creates volumes in it, whether its volumes are raw block devices (no qcow2, so no
//! overlay and no internal snapshot), whether libvirt streams content in and out, and how
//! vmd writes a pre-existing volume's content itself.
//!
//! The facts come from the pool's type and, for `iscsi-direct`, its `<source>` (portal,
//! target IQN, initiator IQN); nothing here calls libvirt or runs a program.

use serde::{Deserialize, Serialize};

/// What a pool's kind can hold and how vmd writes into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolCaps {
    /// The pool type (`dir`, `iscsi-direct`, ...).
    pub pool_type: String,
    /// libvirt creates and deletes volumes in it (`virStorageVolCreateXML`); otherwise its
    /// volumes pre-exist (LUNs, disks) and vmd claims and releases them.
    pub creates_volumes: bool,
    /// Its volumes are raw block devices: no qcow2 overlay, no internal snapshot.
    pub raw_only: bool,
    /// libvirt streams volume content in and out (`virStorageVolUpload`/`Download`).
    pub streams: bool,
    /// How vmd writes a volume's content itself, where it can.
    pub writer: Option<PoolWriter>,
}

/// How vmd writes into a pool's volumes without libvirt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolWriter {
    /// QEMU's own iSCSI client (`qemu-img` with an `iscsi://` target) to this portal.
    Iscsi(IscsiPortal),
}

/// An iSCSI target as an `iscsi-direct` pool names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IscsiPortal {
    /// The portal's host name or address.
    pub host: String,
    /// The portal's TCP port (3260 unless the pool names another).
    pub port: u16,
    /// The target's IQN.
    pub target: String,
    /// The initiator IQN the pool logs in with.
    pub initiator: Option<String>,
}

/// One LUN of an [`IscsiPortal`]: what `qemu-img` opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IscsiLun {
    /// The portal and target.
    pub portal: IscsiPortal,
    /// The LUN number.
    pub lun: u32,
}

impl IscsiLun {
    /// `iscsi://host[:port]/iqn/lun`, QEMU's URL for the LUN (the port only when not 3260).
    pub fn url(&self) -> String {
        let p = &self.portal;
        let host = if p.host.contains(':') {
            format!("[{}]", p.host)
        } else {
            p.host.clone()
        };
        let port = if p.port == ISCSI_PORT {
            String::new()
        } else {
            format!(":{}", p.port)
        };
        format!("iscsi://{host}{port}/{}/{}", p.target, self.lun)
    }
}

impl std::fmt::Display for IscsiLun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

/// The iSCSI port.
pub const ISCSI_PORT: u16 = 3260;

/// The facts for a pool of `pool_type` whose XML description is `doc`
/// (`virStoragePoolGetXMLDesc`). An unknown type is taken for a file pool, vmd's behaviour
/// before pool kinds were told apart.
pub fn pool_caps(pool_type: &str, doc: &str) -> Result<PoolCaps, String> {
    let (creates_volumes, raw_only, streams) = match pool_type {
        "iscsi-direct" => (false, true, false),
        "iscsi" | "scsi" | "mpath" => (false, true, true),
        "logical" | "disk" | "rbd" | "zfs" | "sheepdog" => (true, true, true),
        _ => (true, false, true),
    };
    let writer = match pool_type {
        "iscsi-direct" => Some(PoolWriter::Iscsi(iscsi_portal(doc)?)),
        _ => None,
    };
    Ok(PoolCaps {
        pool_type: pool_type.to_string(),
        creates_volumes,
        raw_only,
        streams,
        writer,
    })
}

#[derive(Deserialize)]
struct PoolDoc {
    source: Option<SourceDoc>,
}

#[derive(Deserialize)]
struct SourceDoc {
    #[serde(default)]
    host: Vec<HostDoc>,
    device: Option<DeviceDoc>,
    initiator: Option<InitiatorDoc>,
    auth: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct HostDoc {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@port")]
    port: Option<u16>,
}

#[derive(Deserialize)]
struct DeviceDoc {
    #[serde(rename = "@path")]
    path: String,
}

#[derive(Deserialize)]
struct InitiatorDoc {
    iqn: Option<IqnDoc>,
}

#[derive(Deserialize)]
struct IqnDoc {
    #[serde(rename = "@name")]
    name: String,
}

/// The portal of an `iscsi-direct` pool's `<source>`: its one host, the target IQN in
/// `<device path>`, the initiator IQN. A pool with CHAP (`<auth>`) is refused: its secret is
/// libvirt's, and vmd does not hand secrets to `qemu-img`.
fn iscsi_portal(doc: &str) -> Result<IscsiPortal, String> {
    let pool: PoolDoc = quick_xml::de::from_str(doc).map_err(|e| e.to_string())?;
    let source = pool.source.ok_or("the pool has no <source>")?;
    if source.auth.is_some() {
        return Err(
            "the pool logs in with CHAP, whose secret vmd does not pass to qemu-img".into(),
        );
    }
    let [host] = source.host.as_slice() else {
        return Err("the pool's <source> names no host or more than one".into());
    };
    let target = source
        .device
        .ok_or("the pool's <source> names no target IQN")?
        .path;
    let initiator = source.initiator.and_then(|i| i.iqn).map(|i| i.name);
    for iqn in std::iter::once(&target).chain(initiator.as_ref()) {
        if !valid_iqn(iqn) {
            return Err(format!("{iqn:?} is not an iSCSI name vmd takes"));
        }
    }
    if !valid_host(&host.name) {
        return Err(format!("{:?} is not a host name vmd takes", host.name));
    }
    Ok(IscsiPortal {
        host: host.name.clone(),
        port: host.port.unwrap_or(ISCSI_PORT),
        target,
        initiator,
    })
}

/// An iSCSI qualified name (RFC 3720 section 3.2.6: `iqn.`, `eui.` or `naa.`, then
/// lower-case letters, digits, `.`, `-`, `:`): nothing that could end a URL path segment or
/// an option list.
fn valid_iqn(s: &str) -> bool {
    (s.starts_with("iqn.") || s.starts_with("eui.") || s.starts_with("naa."))
        && s.len() <= 223
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

/// A DNS name or an IPv4/IPv6 address.
fn valid_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

/// The LUN of an `iscsi-direct` volume, from the path libvirt gives it
/// (`ip-HOST:PORT-iscsi-IQN-lun-N`).
pub fn iscsi_lun_of_path(path: &str) -> Option<u32> {
    let (_, n) = path.rsplit_once("-lun-")?;
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECT: &str = "<pool type='iscsi-direct'><name>lun</name><source>\
        <host name='127.0.0.1'/><device path='iqn.2026-12.dev.vmd:second-host'/>\
        <initiator><iqn name='iqn.2026-12.dev.vmd:initiator'/></initiator></source></pool>";

    #[test]
    fn pool_caps_iscsi_direct_reads_portal_and_initiator() {
        let caps = pool_caps("iscsi-direct", DIRECT).unwrap();
        assert!(!caps.creates_volumes && caps.raw_only && !caps.streams);
        let Some(PoolWriter::Iscsi(portal)) = caps.writer else {
            panic!("no writer: {caps:?}");
        };
        assert_eq!(portal.host, "127.0.0.1");
        assert_eq!(portal.port, 3260);
        assert_eq!(portal.target, "iqn.2026-12.dev.vmd:second-host");
        assert_eq!(
            portal.initiator.as_deref(),
            Some("iqn.2026-12.dev.vmd:initiator")
        );
    }

    #[test]
    fn pool_caps_file_and_block_kinds_differ() {
        let dir = pool_caps("dir", "<pool type='dir'/>").unwrap();
        assert!(dir.creates_volumes && !dir.raw_only && dir.streams && dir.writer.is_none());
        let lvm = pool_caps("logical", "<pool type='logical'/>").unwrap();
        assert!(lvm.creates_volumes && lvm.raw_only);
        let iscsi = pool_caps("iscsi", "<pool type='iscsi'/>").unwrap();
        assert!(!iscsi.creates_volumes && iscsi.raw_only && iscsi.streams);
    }

    #[test]
    fn pool_caps_iscsi_direct_with_chap_is_refused() {
        let doc = DIRECT.replace(
            "</source>",
            "<auth type='chap' username='u'><secret usage='x'/></auth></source>",
        );
        let err = pool_caps("iscsi-direct", &doc).unwrap_err();
        assert!(err.contains("CHAP"), "{err}");
    }

    #[test]
    fn pool_caps_iscsi_direct_hostile_target_is_refused() {
        let doc = DIRECT.replace("second-host", "x/../1,file.driver=file");
        let err = pool_caps("iscsi-direct", &doc).unwrap_err();
        assert!(err.contains("not an iSCSI name"), "{err}");
    }

    #[test]
    fn iscsi_url_default_port_is_left_out_and_other_ports_kept() {
        let mut lun = IscsiLun {
            portal: IscsiPortal {
                host: "127.0.0.1".into(),
                port: 3260,
                target: "iqn.2026-12.dev.vmd:second-host".into(),
                initiator: None,
            },
            lun: 1,
        };
        assert_eq!(
            lun.url(),
            "iscsi://127.0.0.1/iqn.2026-12.dev.vmd:second-host/1"
        );
        lun.portal.port = 3261;
        lun.portal.host = "fe80::1".into();
        assert_eq!(
            lun.url(),
            "iscsi://[fe80::1]:3261/iqn.2026-12.dev.vmd:second-host/1"
        );
    }

    #[test]
    fn iscsi_lun_of_path_reads_libvirts_volume_path() {
        let path = "ip-127.0.0.1:3260-iscsi-iqn.2026-12.dev.vmd:second-host-lun-1";
        assert_eq!(iscsi_lun_of_path(path), Some(1));
        assert_eq!(iscsi_lun_of_path("/dev/sda"), None);
        assert_eq!(iscsi_lun_of_path("x-lun-"), None);
    }
}
