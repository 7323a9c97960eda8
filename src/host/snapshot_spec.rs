//! Snapshots as they cross the seam: what the manager asks for ([`SnapshotSpec`]) and what it
//! keeps ([`SavedSnapshot`]), an opaque record of the host's own description that the
//! manager stores in its catalog and hands back to revert or delete, never builds or reads.

/// A snapshot to take of a running (or defined) domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSpec<'a> {
    /// Its name (validated by the manager like a VMD name).
    pub name: &'a str,
    /// A line for people reading the host's records.
    pub description: &'a str,
}

/// The host's full description of a snapshot it took, kept by vmd's catalog so that the
/// snapshot can be reverted or deleted later (libvirt needs its whole description back to
/// redefine the metadata; a minimal one is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSnapshot(String);

impl SavedSnapshot {
    /// Wraps a record read from the catalog (or made by the host).
    pub fn from_record(record: String) -> Self {
        Self(record)
    }

    /// The record to store in the catalog, as is.
    pub fn as_record(&self) -> &str {
        &self.0
    }

    /// Whether the domain was off when the snapshot was taken: the snapshot holds the disks
    /// only, and reverting to it leaves the domain off.
    pub fn taken_while_off(&self) -> bool {
        super::xml::snapshot::state(&self.0).as_deref() == Some("shutoff")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_while_off_reads_the_recorded_state() {
        let off = super::super::xml::snapshot::full_description("s", "shutoff");
        let running = super::super::xml::snapshot::full_description("s", "running");
        assert!(SavedSnapshot::from_record(off).taken_while_off());
        assert!(!SavedSnapshot::from_record(running).taken_while_off());
        assert!(!SavedSnapshot::from_record("not xml".into()).taken_while_off());
    }
}
