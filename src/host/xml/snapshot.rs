//! `<domainsnapshot>`: the description vmd asks libvirt to snapshot a domain with, and the
//! one fact vmd reads back from libvirt's full description (the domain's state when it was
//! taken). libvirt's full description itself is kept whole and unread (a
//! [`SavedSnapshot`](crate::host::SavedSnapshot)): libvirt 9.0 refuses a minimal one when
//! the metadata is redefined.

use serde::{Deserialize, Serialize};

use super::{to_xml, Text};
use crate::host::SnapshotSpec;

#[derive(Serialize)]
#[serde(rename = "domainsnapshot")]
struct SnapshotXml<'a> {
    name: Text<&'a str>,
    description: Text<&'a str>,
}

/// `<domainsnapshot>` for an internal snapshot of a running domain
/// (`virDomainSnapshotCreateXML`: libvirt adds the memory state and every disk).
pub fn request(spec: &SnapshotSpec<'_>) -> String {
    to_xml(&SnapshotXml {
        name: Text { value: spec.name },
        description: Text {
            value: spec.description,
        },
    })
}

/// A full description of the shape libvirt returns, for the in-memory host.
#[cfg(test)]
pub fn full_description(name: &str, state: &str) -> String {
    #[derive(Serialize)]
    #[serde(rename = "domainsnapshot")]
    struct Full<'a> {
        name: Text<&'a str>,
        state: Text<&'a str>,
    }
    to_xml(&Full {
        name: Text { value: name },
        state: Text { value: state },
    })
}

#[derive(Deserialize)]
struct SnapshotDoc {
    #[serde(default)]
    state: Option<String>,
}

/// The domain state a snapshot description (`virDomainSnapshotGetXMLDesc`) records:
/// `shutoff` for a snapshot of a stopped domain (disks only), `running` or `paused` when
/// libvirt saved the guest's memory too.
pub fn state(doc: &str) -> Option<String> {
    quick_xml::de::from_str::<SnapshotDoc>(doc).ok()?.state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_golden_description_is_escaped() {
        let spec = SnapshotSpec {
            name: "s1",
            description: "vmd snapshot of a<b",
        };
        assert_eq!(
            request(&spec),
            "<domainsnapshot><name>s1</name><description>vmd snapshot of a&lt;b</description>\
             </domainsnapshot>"
        );
    }

    #[test]
    fn state_reads_the_top_level_state() {
        let doc = "<domainsnapshot><name>s1</name><state>shutoff</state>\
                   <memory snapshot='no'/><domain type='qemu'><name>d</name></domain>\
                   </domainsnapshot>";
        assert_eq!(state(doc).as_deref(), Some("shutoff"));
        assert_eq!(state("<domainsnapshot/>"), None);
    }

    #[test]
    fn full_description_reads_back_its_state() {
        let doc = full_description("a&b", "running");
        assert_eq!(state(&doc).as_deref(), Some("running"));
        assert!(doc.contains("<name>a&amp;b</name>"), "{doc}");
    }
}
