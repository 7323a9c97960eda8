//! Domain snapshots over libvirt's snapshot API, with vmd's catalog as their only record.
//!
//! libvirt's own snapshot metadata lives only until vmd's catalog holds the snapshot: vmd
//! takes the snapshot, keeps libvirt's full description of it, records it, and then drops the
//! metadata (`snapshot_forget`); to revert or delete, it redefines the metadata from that
//! description for the length of the operation. So a snapshot that vmd never recorded (it was
//! killed, the connection dropped) is still known to libvirt and a retry can remove it whole
//! (`snapshot_drop_unrecorded`), and libvirt otherwise holds no snapshot state that vmd's
//! catalog does not. Revert and delete leave no metadata behind, also when they fail.

use uuid::Uuid;
use virt::domain_snapshot::DomainSnapshot;
use virt::sys;

use super::libvirt::{call_error, LibvirtHost};
use super::{HostError, HostErrorKind};

impl LibvirtHost {
    /// `virDomainSnapshotLookupByName`, then `virDomainSnapshotDelete` (data and metadata).
    pub(super) fn snapshot_drop_unrecorded_impl(
        &self,
        uuid: &Uuid,
        name: &str,
    ) -> Result<bool, HostError> {
        let dom = self.lookup_domain(uuid)?;
        let snap = match virt::domain::Domain::lookup_snapshot_by_name(&dom, name, 0) {
            Ok(snap) => snap,
            Err(e) => {
                let err = call_error("virDomainSnapshotLookupByName", uuid.to_string(), e);
                if err.kind() == HostErrorKind::NotFound {
                    return Ok(false);
                }
                return Err(err);
            }
        };
        let object = snapshot_object(&snap, uuid);
        snap.delete(0)
            .map_err(|e| call_error("virDomainSnapshotDelete", object, e))?;
        Ok(true)
    }

    /// `virDomainSnapshotCreateXML` (no flags: for a running domain, an internal snapshot of
    /// disks and memory; for a domain that is off, of the disks, made by libvirt with
    /// qemu-img), then `virDomainSnapshotGetXMLDesc`. The metadata stays until
    /// [`Self::snapshot_forget_impl`].
    pub(super) fn snapshot_create_impl(&self, uuid: &Uuid, xml: &str) -> Result<String, HostError> {
        let dom = self.lookup_domain(uuid)?;
        let snap = dom
            .create_snapshot_xml(xml, 0)
            .map_err(|e| call_error("virDomainSnapshotCreateXML", uuid.to_string(), e))?;
        let object = snapshot_object(&snap, uuid);
        let full = match snap.xml_desc(0) {
            Ok(full) => full,
            Err(e) => {
                let err = call_error("virDomainSnapshotGetXMLDesc", object, e);
                // Without its description vmd cannot record the snapshot, so it must not
                // exist either; the error worth reporting is the one above.
                let _ = snap.delete(0);
                return Err(err);
            }
        };
        Ok(full)
    }

    /// `virDomainSnapshotLookupByName`, then `virDomainSnapshotDelete` with
    /// `VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY`: the snapshot stays in the disks.
    pub(super) fn snapshot_forget_impl(&self, uuid: &Uuid, name: &str) -> Result<(), HostError> {
        let dom = self.lookup_domain(uuid)?;
        let snap = match virt::domain::Domain::lookup_snapshot_by_name(&dom, name, 0) {
            Ok(snap) => snap,
            Err(e) => {
                let err = call_error("virDomainSnapshotLookupByName", uuid.to_string(), e);
                if err.kind() == HostErrorKind::NotFound {
                    return Ok(());
                }
                return Err(err);
            }
        };
        let object = snapshot_object(&snap, uuid);
        snap.delete(sys::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
            .map_err(|e| call_error("virDomainSnapshotDelete", object, e))
    }

    /// `virDomainSnapshotCreateXML` with `VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE`,
    /// `virDomainRevertToSnapshot` (no flags: the domain ends up running, paused or off as
    /// it was when the snapshot was taken), then `virDomainSnapshotDelete` with
    /// `METADATA_ONLY`, whether the revert worked or not.
    pub(super) fn snapshot_revert_impl(
        &self,
        uuid: &Uuid,
        full_xml: &str,
    ) -> Result<(), HostError> {
        let snap = self.redefine_snapshot(uuid, full_xml)?;
        let object = snapshot_object(&snap, uuid);
        let reverted = snap
            .revert(0)
            .map_err(|e| call_error("virDomainRevertToSnapshot", object.clone(), e));
        let dropped = snap
            .delete(sys::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
            .map_err(|e| call_error("virDomainSnapshotDelete", object, e));
        reverted.and(dropped)
    }

    /// `virDomainSnapshotCreateXML` with `VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE`, then
    /// `virDomainSnapshotDelete` (no flags: data and metadata); when that fails, the
    /// metadata alone is dropped again.
    pub(super) fn snapshot_delete_impl(
        &self,
        uuid: &Uuid,
        full_xml: &str,
    ) -> Result<(), HostError> {
        let snap = self.redefine_snapshot(uuid, full_xml)?;
        match snap.delete(0) {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = call_error("virDomainSnapshotDelete", snapshot_object(&snap, uuid), e);
                // The delete's own error is the one to report; this only tidies up.
                let _ = snap.delete(sys::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY);
                Err(err)
            }
        }
    }

    /// `virDomainSnapshotCreateXML` with `VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE`.
    fn redefine_snapshot(&self, uuid: &Uuid, full_xml: &str) -> Result<DomainSnapshot, HostError> {
        self.lookup_domain(uuid)?
            .create_snapshot_xml(full_xml, sys::VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE)
            .map_err(|e| call_error("virDomainSnapshotCreateXML", uuid.to_string(), e))
    }
}

/// How errors name a snapshot: `snapshot <name> of <domain uuid>`.
fn snapshot_object(snap: &DomainSnapshot, uuid: &Uuid) -> String {
    match snap.name() {
        Ok(name) => format!("snapshot {name} of {uuid}"),
        Err(_) => format!("snapshot of {uuid}"),
    }
}

#[cfg(test)]
mod tests {
    //! libvirt's test driver keeps snapshots but takes no `METADATA_ONLY` delete, so the
    //! round trip through vmd's catalog is checked on qemu:///system; here: the delete path
    //! and the clean-up on failure.
    use super::*;
    use crate::host::test_support::{define_test_domain, test_host};
    use crate::host::{Host, SavedSnapshot, SnapshotSpec};

    const SNAP_XML: &str = "<domainsnapshot><name>s1</name></domainsnapshot>";
    const SPEC: SnapshotSpec<'static> = SnapshotSpec {
        name: "s1",
        description: "test",
    };

    /// Takes a snapshot behind vmd's back and returns its full description, as vmd would
    /// have recorded it, with libvirt's metadata gone.
    fn recorded_snapshot(host: &LibvirtHost, uuid: &Uuid) -> SavedSnapshot {
        let dom = host.lookup_domain(uuid).unwrap();
        let snap = dom.create_snapshot_xml(SNAP_XML, 0).unwrap();
        let full = snap.xml_desc(0).unwrap();
        snap.delete(0).unwrap();
        SavedSnapshot::from_record(full)
    }

    fn snapshot_count(host: &LibvirtHost, uuid: &Uuid) -> u32 {
        host.lookup_domain(uuid).unwrap().num_snapshots(0).unwrap()
    }

    #[test]
    fn snapshot_create_keeps_metadata_until_recorded_and_drop_unrecorded_removes_it() {
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-snap-create", None);
        host.start_domain(&uuid).unwrap();

        let saved = host.snapshot_create(&uuid, &SPEC).unwrap();
        let kept = snapshot_count(&host, &uuid);
        let dropped = host.snapshot_drop_unrecorded(&uuid, "s1").unwrap();
        let again = host.snapshot_drop_unrecorded(&uuid, "s1").unwrap();

        assert!(saved.as_record().contains("<name>s1</name>"));
        assert_eq!(kept, 1, "libvirt keeps the metadata until vmd records it");
        assert!(dropped);
        assert!(!again, "nothing left to drop");
        assert_eq!(snapshot_count(&host, &uuid), 0);
    }

    #[test]
    fn snapshot_forget_without_metadata_is_not_an_error() {
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-snap-forget", None);

        host.snapshot_forget(&uuid, "s1").unwrap();
    }

    #[test]
    fn snapshot_delete_recorded_snapshot_leaves_no_metadata() {
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-snap-delete", None);
        host.start_domain(&uuid).unwrap();
        let full = recorded_snapshot(&host, &uuid);

        host.snapshot_delete(&uuid, &full).unwrap();

        assert_eq!(snapshot_count(&host, &uuid), 0);
    }

    #[test]
    fn snapshot_revert_bad_xml_fails_and_leaves_no_metadata() {
        let host = test_host();
        let uuid = define_test_domain(&host, "vmd-snap-bad", None);

        let err = host
            .snapshot_revert(
                &uuid,
                &SavedSnapshot::from_record("<domainsnapshot><name>x</name>".into()),
            )
            .unwrap_err();

        assert!(
            err.to_string().contains("virDomainSnapshotCreateXML"),
            "{err}"
        );
        assert_eq!(snapshot_count(&host, &uuid), 0);
    }

    #[test]
    fn snapshot_delete_missing_domain_is_not_found() {
        let err = test_host()
            .snapshot_delete(
                &Uuid::new_v4(),
                &SavedSnapshot::from_record(SNAP_XML.into()),
            )
            .unwrap_err();
        assert_eq!(err.kind(), crate::host::HostErrorKind::NotFound, "{err}");
    }
}
