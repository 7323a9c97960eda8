//! What `doctor` concludes from what it saw: plain code over the catalog, the lock files and
//! the host's volumes and domains, no I/O, so every rule is unit-tested.
//!
//! Ownership rule: an object of vmd's scheme (a volume named `vmd-<id>-…`, a domain carrying
//! vmd's metadata) belongs to this state directory when its catalog has a record for the id,
//! or a lock file for it (an operation making that VMD locks its id before creating anything).
//! Anything else is another state directory's and is never reported or touched. Objects of a
//! VMD whose lock is held right now belong to an operation in progress: skipped, not drift.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{Problem, ProblemKind, Repair};
use crate::host::{VmdDomain, VolumeInfo};
use crate::vmd::{PoolName, State, Vmd, VmdId, VolumeName};

/// A volume seen in a pool.
#[derive(Debug, Clone)]
pub(super) struct SeenVolume {
    pub pool: PoolName,
    pub info: VolumeInfo,
}

/// Everything `doctor` looked at.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Records that parse.
    pub records: Vec<Vmd>,
    /// Every record file's id, damaged ones included.
    pub record_ids: BTreeSet<VmdId>,
    /// Damaged record files and why.
    pub damaged: Vec<(String, String)>,
    /// Ids with a lock file in this state directory.
    pub lock_ids: BTreeSet<VmdId>,
    /// Ids whose lock some process holds now.
    pub busy: BTreeSet<VmdId>,
    /// The pools listed (active ones).
    pub pools: BTreeSet<PoolName>,
    /// Their volumes.
    pub volumes: Vec<SeenVolume>,
    /// Domains carrying vmd's metadata.
    pub domains: Vec<VmdDomain>,
    /// Deployed records whose domain libvirt does not have.
    pub domainless: BTreeSet<VmdId>,
    /// Paths that exist on the host's filesystem, for disks in pools not listed and for
    /// backing files.
    pub existing_paths: BTreeSet<String>,
}

/// The problems in what was seen, each with its repair, and how many objects of vmd's
/// scheme were left alone as another state directory's.
pub(super) fn survey(seen: &Seen) -> (Vec<Problem>, usize) {
    let mut problems = Vec::new();
    let mut foreign = 0;
    let by_id: BTreeMap<VmdId, &Vmd> = seen.records.iter().map(|v| (v.id, v)).collect();
    let ours = |id: &VmdId| seen.record_ids.contains(id) || seen.lock_ids.contains(id);
    for (path, reason) in &seen.damaged {
        problems.push(Problem::new(
            ProblemKind::DamagedRecord,
            path.clone(),
            format!("{reason}; kept as it is (restore it from a backup, or remove it)"),
            Repair::None,
        ));
    }
    for domain in &seen.domains {
        let Some(owner) = domain_owner(domain) else {
            continue;
        };
        if seen.busy.contains(&owner) {
            continue;
        }
        if !ours(&owner) {
            foreign += 1;
            continue;
        }
        let detail = match by_id.get(&owner) {
            Some(v) if v.state == State::Deployed => continue,
            Some(v) => format!(
                "domain of {} defined while the catalog says {}",
                v.name,
                super::super::deploy::state_word(v.state)
            ),
            None if seen.record_ids.contains(&owner) => continue, // damaged record
            None => format!("domain of VMD {owner}, which the catalog does not know"),
        };
        problems.push(Problem::new(
            ProblemKind::OrphanDomain,
            domain.name.clone(),
            detail,
            Repair::RemoveDomain { owner },
        ));
    }
    let listed: BTreeSet<(&PoolName, &str)> = seen
        .volumes
        .iter()
        .map(|v| (&v.pool, v.info.name.as_str()))
        .collect();
    let seen_paths: BTreeSet<&str> = seen.volumes.iter().map(|v| v.info.path.as_str()).collect();
    for vol in &seen.volumes {
        let Some(name) = vol.info.name.parse::<VolumeName>().ok() else {
            continue;
        };
        let Some(owner) = name.owner() else {
            continue;
        };
        if seen.busy.contains(&owner) {
            continue;
        }
        if !ours(&owner) {
            foreign += 1;
            continue;
        }
        let detail = match by_id.get(&owner) {
            Some(v) if lists(v, &vol.pool, &name, &vol.info.path) => continue,
            Some(v) => format!("volume of {} that its record does not list", v.name),
            None if seen.record_ids.contains(&owner) => continue, // damaged record
            None => format!("volume of VMD {owner}, which the catalog does not know"),
        };
        let staging = name.as_str().ends_with(".vmd-stage");
        problems.push(Problem::new(
            if staging {
                ProblemKind::OrphanStagingFile
            } else {
                ProblemKind::OrphanVolume
            },
            format!("{}/{}", vol.pool, name),
            if staging {
                format!("import staging file: {detail}")
            } else {
                detail
            },
            Repair::DeleteVolume {
                owner,
                pool: vol.pool.clone(),
                volume: name,
            },
        ));
    }
    for v in &seen.records {
        if seen.busy.contains(&v.id) {
            continue;
        }
        let present = |path: &str| seen_paths.contains(path) || seen.existing_paths.contains(path);
        for d in &v.disks {
            let gone = if seen.pools.contains(&d.pool) {
                !listed.contains(&(&d.pool, d.volume.as_str()))
                    && !seen_paths.contains(d.path.as_str())
            } else {
                !present(&d.path)
            };
            if gone {
                problems.push(Problem::new(
                    ProblemKind::MissingVolume,
                    format!("{}/{}", v.name, d.id),
                    format!(
                        "volume {}/{} ({}) is gone; the record is kept: restore the volume, or \
                         delete the VMD",
                        d.pool, d.volume, d.path
                    ),
                    Repair::None,
                ));
            }
            if let Some(backing) = &d.backing {
                if Path::new(backing).is_absolute() && !present(backing) {
                    problems.push(Problem::new(
                        ProblemKind::MissingBacking,
                        format!("{}/{}", v.name, d.id),
                        format!("the master volume {backing} this clone's disk is an overlay of is gone"),
                        Repair::None,
                    ));
                }
            }
        }
        if v.state == State::Deployed && seen.domainless.contains(&v.id) {
            let domain = v
                .deployment
                .as_ref()
                .map(|d| d.domain.clone())
                .unwrap_or_else(|| v.id.to_string());
            problems.push(Problem::new(
                ProblemKind::MissingDomain,
                v.name.to_string(),
                format!("recorded as deployed but its domain {domain} is gone"),
                Repair::MarkUndeployed { id: v.id },
            ));
        }
    }
    for id in &seen.lock_ids {
        if seen.record_ids.contains(id) || seen.busy.contains(id) {
            continue;
        }
        problems.push(Problem::new(
            ProblemKind::StaleLock,
            format!("locks/{id}.lock"),
            "lock file of a VMD that does not exist, held by nobody".to_string(),
            Repair::RemoveLock { id: *id },
        ));
    }
    (problems, foreign)
}

/// The VMD a tagged domain belongs to: its metadata's id, which must also be its UUID (vmd
/// never makes it otherwise, so anything else is not ours to judge).
fn domain_owner(domain: &VmdDomain) -> Option<VmdId> {
    let id = domain.vmd_id.parse::<VmdId>().ok()?;
    (id.uuid() == domain.uuid).then_some(id)
}

/// Whether `v`'s record lists this volume (by pool and name, or by path: one directory may
/// be defined as two pools).
fn lists(v: &Vmd, pool: &PoolName, name: &VolumeName, path: &str) -> bool {
    v.disks
        .iter()
        .any(|d| (&d.pool == pool && &d.volume == name) || d.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::DomainState;
    use crate::vmd::{Disk, DiskFormat, Firmware, Hardware, Kind, Role, CATALOG_VERSION};

    fn pool() -> PoolName {
        "p".parse().unwrap()
    }

    fn record(state: State) -> Vmd {
        let id = VmdId::new();
        let volume = VolumeName::for_disk(&id, 0, "qcow2");
        Vmd {
            version: CATALOG_VERSION,
            id,
            name: format!("v{}", &id.simple()[..6]).parse().unwrap(),
            kind: Kind::Instance,
            state,
            created: String::new(),
            parent: None,
            source: None,
            hardware: Hardware {
                vcpus: 1,
                memory_mib: 64,
                firmware: Firmware::Bios,
                os_type: None,
            },
            networks: vec![],
            properties: vec![],
            disks: vec![Disk {
                id: "os".into(),
                role: Role::Os,
                bus: "scsi".into(),
                unit: 0,
                capacity_bytes: 1,
                format: DiskFormat::Qcow2,
                pool: pool(),
                path: format!("/pool/{volume}"),
                volume,
                backing: None,
                serial: None,
                claimed: false,
            }],
            descriptor: None,
            deployment: None,
            snapshots: vec![],
        }
    }

    fn volume(name: &str) -> SeenVolume {
        SeenVolume {
            pool: pool(),
            info: VolumeInfo {
                name: name.to_string(),
                path: format!("/pool/{name}"),
                capacity_bytes: 1,
                allocation_bytes: 1,
            },
        }
    }

    fn seen_with(records: Vec<Vmd>) -> Seen {
        let mut seen = Seen {
            record_ids: records.iter().map(|v| v.id).collect(),
            pools: [pool()].into(),
            ..Seen::default()
        };
        for v in &records {
            for d in &v.disks {
                seen.volumes.push(volume(d.volume.as_str()));
            }
        }
        seen.records = records;
        seen
    }

    fn kinds(seen: &Seen) -> Vec<ProblemKind> {
        survey(seen).0.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn survey_consistent_catalog_has_no_problems() {
        let seen = seen_with(vec![record(State::Cloned), record(State::Undeployed)]);
        assert_eq!(kinds(&seen), vec![]);
    }

    #[test]
    fn survey_volume_of_unknown_id_with_lock_file_is_orphan() {
        let mut seen = seen_with(vec![]);
        let id = VmdId::new();
        seen.lock_ids.insert(id);
        seen.volumes
            .push(volume(VolumeName::for_disk(&id, 0, "qcow2").as_str()));
        seen.volumes
            .push(volume(&format!("vmd-{}-d1.vmd-stage", id.simple())));
        assert_eq!(
            kinds(&seen),
            vec![
                ProblemKind::OrphanVolume,
                ProblemKind::OrphanStagingFile,
                ProblemKind::StaleLock
            ]
        );
    }

    #[test]
    fn survey_unknown_id_without_lock_file_is_left_alone() {
        let mut seen = seen_with(vec![]);
        let id = VmdId::new();
        seen.volumes
            .push(volume(VolumeName::for_disk(&id, 0, "qcow2").as_str()));
        seen.volumes.push(volume("other.qcow2"));
        let (problems, foreign) = survey(&seen);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(foreign, 1);
    }

    #[test]
    fn survey_busy_id_is_skipped() {
        let mut seen = seen_with(vec![]);
        let id = VmdId::new();
        seen.lock_ids.insert(id);
        seen.busy.insert(id);
        seen.volumes
            .push(volume(VolumeName::for_disk(&id, 0, "qcow2").as_str()));
        assert_eq!(kinds(&seen), vec![]);
    }

    #[test]
    fn survey_extra_volume_of_known_vmd_is_orphan() {
        let v = record(State::Cloned);
        let extra = VolumeName::for_disk(&v.id, 5, "qcow2");
        let mut seen = seen_with(vec![v]);
        seen.volumes.push(volume(extra.as_str()));
        assert_eq!(kinds(&seen), vec![ProblemKind::OrphanVolume]);
    }

    #[test]
    fn survey_missing_volume_and_backing_are_reported_not_repaired() {
        let mut v = record(State::Cloned);
        v.disks[0].backing = Some("/pool/master.qcow2".into());
        let mut seen = seen_with(vec![v]);
        seen.volumes.clear();
        let (problems, _) = survey(&seen);
        let got: Vec<_> = problems.iter().map(|p| (p.kind, &p.repair)).collect();
        assert_eq!(
            got,
            vec![
                (ProblemKind::MissingVolume, &Repair::None),
                (ProblemKind::MissingBacking, &Repair::None)
            ]
        );
    }

    #[test]
    fn survey_disk_in_unlisted_pool_checked_by_path() {
        let mut v = record(State::Cloned);
        v.disks[0].pool = "elsewhere".parse().unwrap();
        let path = v.disks[0].path.clone();
        let mut seen = seen_with(vec![v]);
        seen.volumes.clear();
        seen.existing_paths.insert(path);
        assert_eq!(kinds(&seen), vec![]);
    }

    #[test]
    fn survey_deployed_without_domain_becomes_undeployed() {
        let v = record(State::Deployed);
        let id = v.id;
        let mut seen = seen_with(vec![v]);
        seen.domainless.insert(id);
        let (problems, _) = survey(&seen);
        assert_eq!(problems[0].kind, ProblemKind::MissingDomain);
        assert_eq!(problems[0].repair, Repair::MarkUndeployed { id });
    }

    #[test]
    fn survey_domain_of_undeployed_record_is_orphan_and_foreign_domain_ignored() {
        let v = record(State::Undeployed);
        let tagged = |id: VmdId| VmdDomain {
            uuid: id.uuid(),
            name: format!("vmd-{}", id.simple()),
            vmd_id: id.to_string(),
            state: DomainState::Shutoff,
        };
        let mut seen = seen_with(vec![v.clone()]);
        seen.domains.push(tagged(v.id));
        seen.domains.push(tagged(VmdId::new()));
        let mut mismatched = tagged(v.id);
        mismatched.uuid = uuid::Uuid::new_v4();
        seen.domains.push(mismatched);
        let (problems, foreign) = survey(&seen);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].kind, ProblemKind::OrphanDomain);
        assert_eq!(problems[0].repair, Repair::RemoveDomain { owner: v.id });
        assert_eq!(foreign, 1);
    }

    #[test]
    fn survey_damaged_record_protects_its_objects() {
        let mut seen = seen_with(vec![]);
        let id = VmdId::new();
        seen.record_ids.insert(id);
        seen.damaged
            .push(("catalog/x.json".into(), "bad json".into()));
        seen.volumes
            .push(volume(VolumeName::for_disk(&id, 0, "qcow2").as_str()));
        assert_eq!(kinds(&seen), vec![ProblemKind::DamagedRecord]);
    }
}
