//! libvirt XML documents vmd writes for storage, as typed structs serialised by quick-xml, so
//! every value is escaped. Each document has a golden test below.

use serde::Serialize;

#[derive(Serialize)]
struct Text<T> {
    #[serde(rename = "$text")]
    value: T,
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
    target: VolumeTarget,
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
}

#[derive(Serialize)]
struct Format {
    #[serde(rename = "@type")]
    kind: &'static str,
}

/// `<volume>` of `capacity` bytes in `format` (`virStorageVolCreateXML`).
pub fn volume(name: &str, capacity: u64, format: &'static str) -> String {
    to_xml(&VolumeXml {
        name: Text { value: name },
        capacity: Capacity {
            unit: "bytes",
            value: capacity,
        },
        target: VolumeTarget {
            format: Format { kind: format },
            permissions: Permissions {
                mode: Text { value: "0600" },
            },
        },
    })
}

fn to_xml<T: Serialize>(doc: &T) -> String {
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
            volume("vmd-x-d0.qcow2", 67108864, "qcow2"),
            "<volume><name>vmd-x-d0.qcow2</name><capacity unit=\"bytes\">67108864</capacity>\
             <target><format type=\"qcow2\"/><permissions><mode>0600</mode></permissions>\
             </target></volume>"
        );
    }
}
