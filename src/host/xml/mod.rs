//! Every libvirt XML document vmd writes or reads, and nothing else: storage pools and
//! volumes (here), disks ([`disk`]), domains from templates ([`template`]) and snapshots
//! ([`snapshot`]). Documents are typed structs serialised by quick-xml, or templates whose
//! every value is escaped, so no value reaches a document unescaped; each has a golden or
//! escaping test. The rest of vmd hands typed descriptions to the host (see `host::spec`)
//! and never sees libvirt XML.

pub mod disk;
pub mod snapshot;
pub mod template;

/// A value that XML 1.0 cannot carry at all (a control character), so no document holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a value contains U+{:04X}, which XML cannot carry", u32::from(*.0))]
pub struct Unwritable(pub char);

/// `text` escaped for an attribute value or element text. Besides `& < > " '`, tab and line
/// breaks become character references so that attribute-value normalisation cannot turn
/// them into spaces; the control characters XML 1.0 cannot carry at all are refused.
pub fn escape(text: &str) -> Result<String, Unwritable> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            c => return Err(Unwritable(c)),
        }
    }
    Ok(out)
}

/// XML 1.0's `Char` production.
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub(super) struct Text<T> {
    #[serde(rename = "$text")]
    pub(super) value: T,
}

#[derive(Serialize)]
#[serde(rename = "pool")]
struct PoolXml<'a> {
    #[serde(rename = "@type")]
    kind: &'static str,
    name: Text<&'a str>,
    target: PoolTarget<'a>,
}

#[derive(Serialize)]
struct PoolTarget<'a> {
    path: Text<&'a str>,
    permissions: Permissions,
}

#[derive(Serialize)]
struct Permissions {
    mode: Text<&'static str>,
}

/// `<pool type='dir'>` for vmd's default pool (`virStoragePoolDefineXML`).
pub fn dir_pool(name: &str, path: &str) -> String {
    to_xml(&PoolXml {
        kind: "dir",
        name: Text { value: name },
        target: PoolTarget {
            path: Text { value: path },
            // QEMU runs as its own user and must reach the volumes; the volumes carry their
            // own, stricter modes.
            permissions: Permissions {
                mode: Text { value: "0755" },
            },
        },
    })
}

#[derive(Serialize)]
#[serde(rename = "volume")]
struct VolumeXml<'a> {
    name: Text<&'a str>,
    capacity: Capacity,
    /// Always 0: without it libvirt allocates the whole capacity up front (writes or
    /// fallocates every byte of a raw volume, preallocates a qcow2), which vmd never wants —
    /// an import or copy writes the content next, and blank disks stay thin.
    allocation: Capacity,
    target: VolumeTarget,
    #[serde(rename = "backingStore", skip_serializing_if = "Option::is_none")]
    backing_store: Option<BackingStore<'a>>,
}

#[derive(Serialize)]
struct BackingStore<'a> {
    path: Text<&'a str>,
    format: Format,
}

#[derive(Serialize)]
struct Capacity {
    #[serde(rename = "@unit")]
    unit: &'static str,
    #[serde(rename = "$text")]
    value: u64,
}

#[derive(Serialize)]
struct VolumeTarget {
    format: Format,
    permissions: Permissions,
    /// qcow2 only: libvirt writes qcow2 v2 (compat 0.10) unless told; v3 has zero clusters
    /// and lazy refcounts, and is what qemu-img makes by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    compat: Option<Text<&'static str>>,
}

fn compat_for(format: &str) -> Option<Text<&'static str>> {
    (format == "qcow2").then_some(Text { value: "1.1" })
}

#[derive(Serialize)]
struct Format {
    #[serde(rename = "@type")]
    kind: &'static str,
}

/// `<volume>` of `capacity` bytes in `format` (`virStorageVolCreateXML`), mode 0600 or, when
/// `readonly`, 0444.
pub fn volume(name: &str, capacity: u64, format: &'static str, readonly: bool) -> String {
    to_xml(&VolumeXml {
        name: Text { value: name },
        capacity: Capacity {
            unit: "bytes",
            value: capacity,
        },
        allocation: Capacity {
            unit: "bytes",
            value: 0,
        },
        target: VolumeTarget {
            format: Format { kind: format },
            permissions: Permissions {
                mode: Text {
                    value: if readonly { "0444" } else { "0600" },
                },
            },
            compat: compat_for(format),
        },
        backing_store: None,
    })
}

/// `<volume>` in qcow2 of `capacity` bytes over `backing_path` of `backing_format`
/// (`virStorageVolCreateXML`). The backing format is always declared: without it QEMU would
/// probe the backing file's format, and a raw backing file could then pose as any format.
pub fn overlay_volume(
    name: &str,
    capacity: u64,
    backing_path: &str,
    backing_format: &'static str,
) -> String {
    to_xml(&VolumeXml {
        name: Text { value: name },
        capacity: Capacity {
            unit: "bytes",
            value: capacity,
        },
        allocation: Capacity {
            unit: "bytes",
            value: 0,
        },
        target: VolumeTarget {
            format: Format { kind: "qcow2" },
            permissions: Permissions {
                mode: Text { value: "0600" },
            },
            compat: compat_for("qcow2"),
        },
        backing_store: Some(BackingStore {
            path: Text {
                value: backing_path,
            },
            format: Format {
                kind: backing_format,
            },
        }),
    })
}

/// What libvirt believes of a volume's content, from its `<volume>` description
/// (`virStorageVolGetXMLDesc`). For file volumes libvirt probes the content at every pool
/// refresh, so this can differ from the format vmd wrote: a raw volume whose guest data begins
/// with a qcow2 header reads as qcow2, with that header's backing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeView {
    /// `<target><format type=…>`, when given.
    pub format: Option<String>,
    /// `<backingStore><path>`, when given.
    pub backing: Option<String>,
}

#[derive(Deserialize)]
struct VolumeDoc {
    #[serde(default)]
    target: Option<TargetDoc>,
    #[serde(rename = "backingStore", default)]
    backing_store: Option<BackingDoc>,
}

#[derive(Deserialize)]
struct TargetDoc {
    #[serde(default)]
    format: Option<FormatDoc>,
}

#[derive(Deserialize)]
struct FormatDoc {
    #[serde(rename = "@type")]
    kind: String,
}

#[derive(Deserialize)]
struct BackingDoc {
    #[serde(default)]
    path: Option<String>,
}

/// Reads libvirt's view of a volume's format and backing store.
pub fn volume_view(doc: &str) -> Result<VolumeView, quick_xml::DeError> {
    let v: VolumeDoc = quick_xml::de::from_str(doc)?;
    Ok(VolumeView {
        format: v.target.and_then(|t| t.format).map(|f| f.kind),
        backing: v
            .backing_store
            .and_then(|b| b.path)
            .filter(|p| !p.is_empty()),
    })
}

pub(super) fn to_xml<T: Serialize>(doc: &T) -> String {
    // Serialising plain structs of strings and numbers cannot fail; an empty document would
    // be refused by libvirt with its own clear message.
    quick_xml::se::to_string(doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_pool_golden() {
        assert_eq!(
            dir_pool("vmd", "/var/lib/vmd/pools/vmd"),
            "<pool type=\"dir\"><name>vmd</name><target><path>/var/lib/vmd/pools/vmd</path>\
             <permissions><mode>0755</mode></permissions></target></pool>"
        );
    }

    #[test]
    fn dir_pool_path_is_escaped() {
        let xml = dir_pool("p", "/tmp/a<b>&'\"");
        assert!(
            xml.contains("<path>/tmp/a&lt;b&gt;&amp;'\"</path>"),
            "{xml}"
        );
    }

    #[test]
    fn volume_golden() {
        assert_eq!(
            volume("vmd-x-d0.qcow2", 67108864, "qcow2", false),
            "<volume><name>vmd-x-d0.qcow2</name><capacity unit=\"bytes\">67108864</capacity>\
             <allocation unit=\"bytes\">0</allocation>\
             <target><format type=\"qcow2\"/><permissions><mode>0600</mode></permissions>\
             <compat>1.1</compat></target></volume>"
        );
    }

    #[test]
    fn overlay_volume_golden() {
        assert_eq!(
            overlay_volume(
                "vmd-x-d0.qcow2",
                67108864,
                "/var/lib/vmd/pools/vmd/vmd-m-d0.qcow2",
                "qcow2"
            ),
            "<volume><name>vmd-x-d0.qcow2</name><capacity unit=\"bytes\">67108864</capacity>\
             <allocation unit=\"bytes\">0</allocation>\
             <target><format type=\"qcow2\"/><permissions><mode>0600</mode></permissions>\
             <compat>1.1</compat></target><backingStore><path>/var/lib/vmd/pools/vmd/vmd-m-d0.qcow2</path>\
             <format type=\"qcow2\"/></backingStore></volume>"
        );
    }

    #[test]
    fn volume_view_probed_raw_reads_as_qcow2_with_backing() {
        let doc = "<volume type='file'><name>v.raw</name><capacity unit='bytes'>1</capacity>\
                   <target><path>/p/v.raw</path><format type='qcow2'/></target>\
                   <backingStore><path>/etc/hosts</path><format type='raw'/></backingStore>\
                   </volume>";
        let view = volume_view(doc).unwrap();
        assert_eq!(view.format.as_deref(), Some("qcow2"));
        assert_eq!(view.backing.as_deref(), Some("/etc/hosts"));
    }

    #[test]
    fn volume_view_plain_raw_has_no_backing() {
        let doc = "<volume type='file'><name>v.raw</name><target><path>/p/v.raw</path>\
                   <format type='raw'/></target></volume>";
        let view = volume_view(doc).unwrap();
        assert_eq!(view.format.as_deref(), Some("raw"));
        assert_eq!(view.backing, None);
    }

    #[test]
    fn overlay_volume_backing_path_is_escaped() {
        let xml = overlay_volume("o", 1, "/p/a<b>&c", "raw");
        assert!(xml.contains("<path>/p/a&lt;b&gt;&amp;c</path>"), "{xml}");
        assert!(
            xml.contains("<format type=\"raw\"/></backingStore>"),
            "{xml}"
        );
    }
}
