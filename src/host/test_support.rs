//! Test helpers shared by the host tests: a connection to libvirt's test driver and domains
//! defined on it. The test driver is one in-memory hypervisor per process, shared by every
//! test thread, so every domain gets a fresh UUID and a name made unique by it.

use uuid::Uuid;

use super::libvirt::LibvirtHost;
use super::METADATA_NS;

pub fn test_host() -> LibvirtHost {
    LibvirtHost::connect("test:///default").unwrap()
}

/// Domain XML for the test driver, tagged with vmd's metadata when `vmd_id` is given.
pub fn test_domain_xml(name: &str, uuid: &Uuid, vmd_id: Option<&str>) -> String {
    let metadata = vmd_id
        .map(|id| {
            format!("<metadata><vmd:vmd xmlns:vmd=\"{METADATA_NS}\" id=\"{id}\"/></metadata>")
        })
        .unwrap_or_default();
    format!(
        "<domain type='test'><name>{name}</name><uuid>{uuid}</uuid>\
         <memory unit='KiB'>65536</memory><os><type>hvm</type></os>{metadata}</domain>"
    )
}

/// Defines a domain named `<prefix>-<part of a new UUID>` and returns its UUID.
pub fn define_test_domain(host: &LibvirtHost, prefix: &str, vmd_id: Option<&str>) -> Uuid {
    let uuid = Uuid::new_v4();
    let name = format!("{prefix}-{}", &uuid.simple().to_string()[..8]);
    host.define_domain_impl(&test_domain_xml(&name, &uuid, vmd_id))
        .unwrap();
    uuid
}
