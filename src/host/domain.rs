//! Domains over libvirt's domain API: define, run state, power, devices, and finding the
//! domains vmd tagged. Snapshots live in `snapshot.rs`.
//!
//! Domains are always addressed by UUID, never by name, so that vmd cannot act on a domain
//! that merely shares a name with one of its own. The idempotent operations decide "already
//! done" from the domain's state after libvirt refuses, not from libvirt's message.

use quick_xml::events::Event;
use quick_xml::Reader;
use uuid::Uuid;
use virt::domain::{Domain, DomainState as VirtState};
use virt::enumutil::Enum;
use virt::sys;

use super::libvirt::{call_error, flag_refused, LibvirtHost};
use super::{DomainState, HostError, HostErrorKind, VmdDomain, METADATA_NS};

impl LibvirtHost {
    /// `virDomainLookupByUUID`.
    pub(super) fn lookup_domain(&self, uuid: &Uuid) -> Result<Domain, HostError> {
        self.conn()
            .lookup_domain_by_uuid(*uuid)
            .map_err(|e| call_error("virDomainLookupByUUID", uuid.to_string(), e))
    }

    /// `virDomainDefineXML`; libvirt replaces the definition of a domain with the same UUID
    /// and keeps its snapshots. It refuses (`VIR_ERR_OPERATION_FAILED`, so kind `Other`) a
    /// definition that gives that UUID another name, or that name another UUID.
    pub(super) fn define_domain_impl(&self, xml: &str) -> Result<(), HostError> {
        self.conn()
            .define_domain_xml(xml)
            .map(drop)
            .map_err(|e| call_error("virDomainDefineXML", "domain definition", e))
    }

    /// `virDomainLookupByUUID`, `virDomainGetInfo`; a missing domain is `None`.
    pub(super) fn domain_state_impl(&self, uuid: &Uuid) -> Result<Option<DomainState>, HostError> {
        match self.lookup_domain(uuid) {
            Ok(dom) => state_of(&dom, &uuid.to_string()).map(Some),
            Err(e) if e.kind() == HostErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `virDomainGetXMLDesc`.
    #[cfg(test)]
    pub(super) fn domain_xml_impl(&self, uuid: &Uuid) -> Result<String, HostError> {
        self.lookup_domain(uuid)?
            .xml_desc(0)
            .map_err(|e| call_error("virDomainGetXMLDesc", uuid.to_string(), e))
    }

    /// `virDomainCreate`; a running (or paused) domain is left as it is.
    pub(super) fn start_domain_impl(&self, uuid: &Uuid) -> Result<(), HostError> {
        let dom = self.lookup_domain(uuid)?;
        let up = [DomainState::Running, DomainState::Paused];
        self.unless_in_state(&dom, &uuid.to_string(), &up, || {
            dom.create()
                .map_err(|e| call_error("virDomainCreate", uuid.to_string(), e))
        })
    }

    /// `virDomainShutdownFlags` with `VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN`. Returns once the
    /// request is sent: a guest may ignore it, which only the caller's wait can tell.
    pub(super) fn shutdown_domain_impl(&self, uuid: &Uuid) -> Result<(), HostError> {
        let dom = self.lookup_domain(uuid)?;
        self.unless_in_state(&dom, &uuid.to_string(), &[DomainState::Shutoff], || {
            dom.shutdown_flags(sys::VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
                .map_err(|e| call_error("virDomainShutdownFlags", uuid.to_string(), e))
        })
    }

    /// `virDomainDestroy`.
    pub(super) fn destroy_domain_impl(&self, uuid: &Uuid) -> Result<(), HostError> {
        let dom = self.lookup_domain(uuid)?;
        self.unless_in_state(&dom, &uuid.to_string(), &[DomainState::Shutoff], || {
            dom.destroy()
                .map_err(|e| call_error("virDomainDestroy", uuid.to_string(), e))
        })
    }

    /// `virDomainUndefineFlags` with `MANAGED_SAVE`, `SNAPSHOTS_METADATA` and `NVRAM`, the
    /// last dropped for drivers that know no NVRAM (and refuse the flag). A running domain
    /// becomes transient and keeps running: destroy it first to be rid of it.
    pub(super) fn undefine_domain_impl(&self, uuid: &Uuid) -> Result<(), HostError> {
        let dom = match self.lookup_domain(uuid) {
            Ok(dom) => dom,
            Err(e) if e.kind() == HostErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let flags =
            sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
        let undefined = match dom.undefine_flags(flags | sys::VIR_DOMAIN_UNDEFINE_NVRAM) {
            Err(e) if flag_refused(&e) => dom.undefine_flags(flags),
            other => other,
        };
        match undefined {
            Ok(()) => Ok(()),
            Err(e) => match call_error("virDomainUndefineFlags", uuid.to_string(), e) {
                // Undefined by someone else between the lookup and the call.
                e if e.kind() == HostErrorKind::NotFound => Ok(()),
                e => Err(e),
            },
        }
    }

    /// `virDomainSuspend`.
    pub(super) fn suspend_domain_impl(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.lookup_domain(uuid)?
            .suspend()
            .map_err(|e| call_error("virDomainSuspend", uuid.to_string(), e))
    }

    /// `virDomainResume`.
    pub(super) fn resume_domain_impl(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.lookup_domain(uuid)?
            .resume()
            .map_err(|e| call_error("virDomainResume", uuid.to_string(), e))
    }

    /// `virDomainAttachDeviceFlags` (`detach` false) or `virDomainDetachDeviceFlags`, on
    /// the persistent configuration and, with `live`, the running guest. A live detach only
    /// asks the guest to let go: QEMU waits about 5 s for it, and when the guest does not
    /// answer (no OS, or no hot-plug support) the call still succeeds, with the device
    /// gone from the configuration but left in the live XML until the guest acknowledges.
    pub(super) fn change_device_impl(
        &self,
        uuid: &Uuid,
        xml: &str,
        live: bool,
        detach: bool,
    ) -> Result<(), HostError> {
        let dom = self.lookup_domain(uuid)?;
        let mut flags = sys::VIR_DOMAIN_AFFECT_CONFIG;
        if live {
            flags |= sys::VIR_DOMAIN_AFFECT_LIVE;
        }
        if detach {
            dom.detach_device_flags(xml, flags)
                .map_err(|e| call_error("virDomainDetachDeviceFlags", uuid.to_string(), e))
        } else {
            dom.attach_device_flags(xml, flags)
                .map_err(|e| call_error("virDomainAttachDeviceFlags", uuid.to_string(), e))
        }
    }

    /// `virConnectListAllDomains`, then `virDomainGetMetadata` for vmd's element on each;
    /// domains without it are not vmd's and are skipped, as are domains that vanish
    /// meanwhile.
    pub(super) fn vmd_domains_impl(&self) -> Result<Vec<VmdDomain>, HostError> {
        let domains = self
            .conn()
            .list_all_domains(0)
            .map_err(|e| call_error("virConnectListAllDomains", self.uri(), e))?;
        let mut out = Vec::new();
        for dom in &domains {
            match vmd_domain(dom) {
                Ok(Some(found)) => out.push(found),
                Ok(None) => {}
                Err(e) if e.kind() == HostErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `virConnectListAllNetworks` with `VIR_CONNECT_LIST_NETWORKS_ACTIVE`.
    pub(super) fn networks_impl(&self) -> Result<Vec<String>, HostError> {
        let nets = self
            .conn()
            .list_all_networks(sys::VIR_CONNECT_LIST_NETWORKS_ACTIVE)
            .map_err(|e| call_error("virConnectListAllNetworks", self.uri(), e))?;
        let mut names = nets
            .iter()
            .map(|n| {
                n.name()
                    .map_err(|e| call_error("virNetworkGetName", self.uri(), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        names.sort();
        Ok(names)
    }

    /// Runs `act`; when libvirt refuses it for the domain's state and the domain is now in
    /// one of `done`, the work was done already (by us earlier, or by someone else).
    fn unless_in_state(
        &self,
        dom: &Domain,
        object: &str,
        done: &[DomainState],
        act: impl FnOnce() -> Result<(), HostError>,
    ) -> Result<(), HostError> {
        if done.contains(&state_of(dom, object)?) {
            return Ok(());
        }
        match act() {
            Err(e) if e.kind() == HostErrorKind::InvalidState => {
                if done.contains(&state_of(dom, object)?) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }
}

/// `virDomainGetInfo` (not `virDomainGetState`: the `virt` crate drops that call's error).
fn state_of(dom: &Domain, object: &str) -> Result<DomainState, HostError> {
    let info = dom
        .info()
        .map_err(|e| call_error("virDomainGetInfo", object, e))?;
    Ok(match info.state {
        Enum::Known(VirtState::Paused | VirtState::PMSuspended) => DomainState::Paused,
        Enum::Known(VirtState::Shutoff | VirtState::Crashed) => DomainState::Shutoff,
        // Running, blocked on I/O, shutting down, or a hypervisor that does not say: the
        // domain has a live process.
        Enum::Known(VirtState::Running | VirtState::Blocked | VirtState::Shutdown)
        | Enum::Known(VirtState::NoState)
        | Enum::Unknown(_) => DomainState::Running,
    })
}

/// One domain's vmd tag: `virDomainGetUUID`, `virDomainGetName`, `virDomainGetMetadata`.
fn vmd_domain(dom: &Domain) -> Result<Option<VmdDomain>, HostError> {
    let name = dom
        .name()
        .map_err(|e| call_error("virDomainGetName", "domain", e))?;
    let metadata = match dom.metadata(
        sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
        Some(METADATA_NS),
        0,
    ) {
        Ok(xml) => xml,
        Err(e) => match call_error("virDomainGetMetadata", &name, e) {
            // `VIR_ERR_NO_DOMAIN_METADATA`: not a domain of vmd's.
            e if e.kind() == HostErrorKind::NotFound => return Ok(None),
            e => return Err(e),
        },
    };
    let uuid = dom
        .uuid()
        .map_err(|e| call_error("virDomainGetUUID", &name, e))?;
    let vmd_id = metadata_id(&metadata).map_err(|message| HostError::BadXml {
        what: "vmd metadata element",
        message: format!("domain {name}: {message}"),
    })?;
    let state = state_of(dom, &name)?;
    Ok(Some(VmdDomain {
        uuid,
        name,
        vmd_id,
        state,
    }))
}

/// The `id` attribute of the metadata element libvirt hands back (`<vmd:vmd xmlns:vmd=..
/// id=".."/>`, the prefix being libvirt's choice).
fn metadata_id(xml: &str) -> Result<String, String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) | Event::Empty(e) => {
                let id = e
                    .try_get_attribute("id")
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| "no id attribute".to_string())?;
                let id = id.unescape_value().map_err(|e| e.to_string())?;
                if id.is_empty() {
                    return Err("empty id attribute".to_string());
                }
                return Ok(id.into_owned());
            }
            Event::Eof => return Err("no element".to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::test_support::{define_test_domain, test_domain_xml, test_host};
    use crate::host::Host;

    #[test]
    fn domain_state_missing_uuid_is_none() {
        assert_eq!(test_host().domain_state(&Uuid::new_v4()).unwrap(), None);
    }

    #[test]
    fn define_domain_same_uuid_again_redefines() {
        let host = test_host();
        let uuid = Uuid::new_v4();
        let name = format!("vmd-redefine-{}", &uuid.simple().to_string()[..8]);
        host.define_domain_impl(&test_domain_xml(&name, &uuid, None))
            .unwrap();

        host.define_domain_impl(&test_domain_xml(&name, &uuid, Some("vmd-id-redefined")))
            .unwrap();

        let now = host.domain_xml_impl(&uuid).unwrap();
        assert!(now.contains("vmd-id-redefined"), "{now}");
    }

    #[test]
    fn define_domain_same_uuid_other_name_is_refused() {
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-rename", None);

        let err = host
            .define_domain_impl(&test_domain_xml("vmd-renamed", &uuid, None))
            .unwrap_err();

        assert!(err.to_string().contains("virDomainDefineXML"), "{err}");
        assert!(host.domain_xml_impl(&uuid).unwrap().contains("vmd-rename-"));
    }

    #[test]
    fn start_domain_twice_runs_it() {
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-start", None);

        host.start_domain(&uuid).unwrap();
        host.start_domain(&uuid).unwrap();

        assert_eq!(
            host.domain_state(&uuid).unwrap(),
            Some(DomainState::Running)
        );
    }

    #[test]
    fn shutdown_domain_off_already_is_ok() {
        // The test driver takes no ACPI flag: shutting down a running guest is checked on
        // qemu:///system by the integration tests.
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-shutdown", None);

        host.shutdown_domain(&uuid).unwrap();

        assert_eq!(
            host.domain_state(&uuid).unwrap(),
            Some(DomainState::Shutoff)
        );
    }

    #[test]
    fn destroy_domain_twice_leaves_it_off() {
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-destroy", None);
        host.start_domain(&uuid).unwrap();

        host.destroy_domain(&uuid).unwrap();
        host.destroy_domain(&uuid).unwrap();

        assert_eq!(
            host.domain_state(&uuid).unwrap(),
            Some(DomainState::Shutoff)
        );
    }

    #[test]
    fn destroy_domain_missing_is_not_found() {
        let err = test_host().destroy_domain(&Uuid::new_v4()).unwrap_err();
        assert_eq!(err.kind(), HostErrorKind::NotFound, "{err}");
    }

    #[test]
    fn undefine_domain_twice_removes_it() {
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-undefine", None);

        host.undefine_domain(&uuid).unwrap();
        host.undefine_domain(&uuid).unwrap();

        assert_eq!(host.domain_state(&uuid).unwrap(), None);
    }

    #[test]
    fn suspend_then_resume_domain_reports_paused_then_running() {
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-pause", None);
        host.start_domain(&uuid).unwrap();

        host.suspend_domain(&uuid).unwrap();
        let paused = host.domain_state(&uuid).unwrap();
        host.resume_domain(&uuid).unwrap();

        assert_eq!(paused, Some(DomainState::Paused));
        assert_eq!(
            host.domain_state(&uuid).unwrap(),
            Some(DomainState::Running)
        );
    }

    #[test]
    fn vmd_domains_tagged_domain_listed_with_its_id_untagged_skipped() {
        let host = test_host();
        let tagged = define_test_domain(&host, "vmd-tagged", Some("vmd-id-7f3a"));
        let untagged = define_test_domain(&host, "vmd-untagged", None);

        let found = host.vmd_domains().unwrap();

        let mine = found.iter().find(|d| d.uuid == tagged).unwrap();
        assert_eq!(mine.vmd_id, "vmd-id-7f3a");
        assert!(mine.name.starts_with("vmd-tagged-"), "{mine:?}");
        assert_eq!(mine.state, DomainState::Shutoff);
        assert!(!found.iter().any(|d| d.uuid == untagged), "{found:?}");
    }

    #[test]
    fn attach_disk_missing_domain_is_not_found() {
        // The test driver cannot attach devices at all; see the integration tests.
        let disk = crate::host::DiskSpec {
            pool: "default".to_string(),
            volume: "v.qcow2".to_string(),
            path: String::new(),
            format: "qcow2".to_string(),
            serial: "s".to_string(),
            unit: 1,
            boot: false,
            readonly: false,
        };
        let err = test_host()
            .attach_disk(&Uuid::new_v4(), &disk, false)
            .unwrap_err();
        assert_eq!(err.kind(), HostErrorKind::NotFound, "{err}");
    }

    #[test]
    fn networks_test_driver_lists_default() {
        let nets = test_host().networks().unwrap();
        assert!(nets.iter().any(|n| n == "default"), "{nets:?}");
    }

    #[test]
    fn metadata_id_prefixed_element_reads_id() {
        let xml = format!("<vmd:vmd xmlns:vmd=\"{METADATA_NS}\" id=\"a&amp;b\"/>");
        assert_eq!(metadata_id(&xml).unwrap(), "a&b");
    }

    #[test]
    fn metadata_id_missing_attribute_is_an_error() {
        let err = metadata_id("<vmd xmlns=\"x\"/>").unwrap_err();
        assert!(err.contains("no id"), "{err}");
    }
}
