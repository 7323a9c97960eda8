//! `<disk>`: the one writer of a disk element, used by the domain template (its `disk_xml`
//! filter) and by hot-plug (`virDomainAttachDeviceFlags`), so both name a unit's target
//! alike.

use std::borrow::Cow;

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

use super::{escape, Unwritable};
use crate::host::DiskSpec;

/// The `<disk type='volume'>` element of `d` on virtio-scsi controller 0, indented by two
/// spaces per level, its lines after the first indented by `indent` more spaces (for its
/// place in a template). Every value is escaped as the templates escape them (line breaks
/// and tabs as character references, so attribute normalisation keeps them); a value XML
/// cannot carry at all is refused.
pub fn element(d: &DiskSpec, indent: usize) -> Result<String, Unwritable> {
    let unit = d.unit.to_string();
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let mut put = |event: Event<'_>| {
        // Writing into a Vec cannot fail.
        let _ = w.write_event(event);
    };
    put(Event::Start(tag(
        "disk",
        &[("type", "volume"), ("device", "disk")],
    )?));
    put(Event::Empty(tag(
        "driver",
        &[("name", "qemu"), ("type", &d.format)],
    )?));
    put(Event::Empty(tag(
        "source",
        &[("pool", &d.pool), ("volume", &d.volume)],
    )?));
    put(Event::Empty(tag(
        "target",
        &[("dev", &target_name(d.unit)), ("bus", "scsi")],
    )?));
    put(Event::Start(BytesStart::new("serial")));
    put(Event::Text(BytesText::from_escaped(escape(&d.serial)?)));
    put(Event::End(BytesEnd::new("serial")));
    if d.readonly {
        put(Event::Empty(BytesStart::new("readonly")));
    }
    if d.boot {
        put(Event::Empty(tag("boot", &[("order", "1")])?));
    }
    put(Event::Empty(tag(
        "address",
        &[
            ("type", "drive"),
            ("controller", "0"),
            ("bus", "0"),
            ("target", "0"),
            ("unit", &unit),
        ],
    )?));
    put(Event::End(BytesEnd::new("disk")));
    let text = String::from_utf8_lossy(&w.into_inner()).into_owned();
    let pad = format!("\n{}", " ".repeat(indent));
    Ok(text.replace('\n', &pad))
}

/// An element's start tag with escaped attribute values.
fn tag<'a>(name: &'a str, attributes: &[(&'a str, &str)]) -> Result<BytesStart<'a>, Unwritable> {
    let mut start = BytesStart::new(name);
    for (key, value) in attributes {
        start.push_attribute(Attribute {
            key: QName(key.as_bytes()),
            value: Cow::Owned(escape(value)?.into_bytes()),
        });
    }
    Ok(start)
}

/// A SCSI unit's target name, `sda`..`sdz`, `sdaa`, … (the kernel's scheme), so a disk
/// keeps its name when another disk is removed and unit 26 is not `sda` again.
pub fn target_name(unit: u32) -> String {
    let mut letters = Vec::new();
    let mut n = u64::from(unit) + 1;
    while n > 0 {
        n -= 1;
        // `n % 26` is below 26, so the cast cannot truncate.
        letters.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
    }
    "sd".chars().chain(letters.into_iter().rev()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(unit: u32) -> DiskSpec {
        DiskSpec {
            pool: "default".to_string(),
            volume: "v.qcow2".to_string(),
            path: "/p/v.qcow2".to_string(),
            format: "qcow2".to_string(),
            serial: "vmd-0123456789abcdef".to_string(),
            unit,
            boot: false,
            readonly: false,
        }
    }

    #[test]
    fn element_golden() {
        assert_eq!(
            element(&disk(1), 0).unwrap(),
            "<disk type=\"volume\" device=\"disk\">\n  \
             <driver name=\"qemu\" type=\"qcow2\"/>\n  \
             <source pool=\"default\" volume=\"v.qcow2\"/>\n  \
             <target dev=\"sdb\" bus=\"scsi\"/>\n  \
             <serial>vmd-0123456789abcdef</serial>\n  \
             <address type=\"drive\" controller=\"0\" bus=\"0\" target=\"0\" unit=\"1\"/>\n\
             </disk>"
        );
    }

    #[test]
    fn element_readonly_boot_disk_has_both_and_boot_order_one() {
        let d = DiskSpec {
            readonly: true,
            boot: true,
            ..disk(0)
        };
        let xml = element(&d, 0).unwrap();
        assert!(
            xml.contains("\n  <readonly/>\n  <boot order=\"1\"/>\n"),
            "{xml}"
        );
        assert!(xml.contains("dev=\"sda\""), "{xml}");
    }

    #[test]
    fn element_plain_disk_is_neither_readonly_nor_boot() {
        let xml = element(&disk(3), 0).unwrap();
        assert!(!xml.contains("readonly"), "{xml}");
        assert!(!xml.contains("<boot"), "{xml}");
    }

    // SECURITY.md item 13: unit 26 was named sda again (unit modulo 26), the OS disk's name.
    #[test]
    fn element_target_name_past_unit_25_is_sdaa() {
        let xml = element(&disk(26), 0).unwrap();
        assert!(xml.contains("dev=\"sdaa\""), "{xml}");
        assert!(xml.contains("unit=\"26\""), "{xml}");
    }

    #[test]
    fn element_hostile_values_are_escaped() {
        let d = DiskSpec {
            pool: "p'\"<&>".to_string(),
            volume: "v\"/>".to_string(),
            serial: "</serial><x>".to_string(),
            ..disk(0)
        };
        let xml = element(&d, 0).unwrap();
        assert!(xml.contains("pool=\"p&apos;&quot;&lt;&amp;&gt;\""), "{xml}");
        assert!(xml.contains("volume=\"v&quot;/&gt;\""), "{xml}");
        assert!(
            xml.contains("<serial>&lt;/serial&gt;&lt;x&gt;</serial>"),
            "{xml}"
        );
    }

    #[test]
    fn element_indent_pads_every_line_after_the_first() {
        let xml = element(&disk(0), 4).unwrap();
        assert!(xml.starts_with("<disk "), "{xml}");
        assert!(xml.contains("\n      <driver "), "{xml}");
        assert!(xml.ends_with("\n    </disk>"), "{xml}");
    }

    #[test]
    fn element_line_break_in_a_value_is_a_character_reference() {
        let d = DiskSpec {
            volume: "a\nb\tc".to_string(),
            ..disk(0)
        };
        let xml = element(&d, 0).unwrap();
        assert!(xml.contains("volume=\"a&#10;b&#9;c\""), "{xml}");
    }

    #[test]
    fn element_control_character_is_refused_naming_it() {
        let d = DiskSpec {
            serial: "s\u{1}".to_string(),
            ..disk(0)
        };
        let err = element(&d, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a value contains U+0001, which XML cannot carry"
        );
    }

    #[test]
    fn target_name_units_follow_kernel_scheme() {
        let names: Vec<_> = [0, 1, 25, 26, 27, 51, 52, 701, 702]
            .into_iter()
            .map(target_name)
            .collect();
        assert_eq!(
            names,
            ["sda", "sdb", "sdz", "sdaa", "sdab", "sdaz", "sdba", "sdzz", "sdaaa"]
        );
    }
}
