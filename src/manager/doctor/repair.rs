//! `doctor --fix`: each repair made under the VMD's own lock (taken without waiting: a VMD
//! another process holds is left alone), after re-checking the record, since what the survey
//! saw may have changed. A lock file goes last, and only once nothing of its VMD is left: it
//! is what lets a later run claim the leftovers.

use super::{Problem, Repair};
use crate::host::Host;
use crate::manager::error::chain;
use crate::manager::Error;
use crate::vmd::catalog::{Catalog, CatalogError};
use crate::vmd::{State, VmdId};

impl Repair {
    /// The VMD whose lock the repair needs.
    fn owner(&self) -> Option<VmdId> {
        match self {
            Repair::DeleteVolume { owner, .. } | Repair::RemoveDomain { owner } => Some(*owner),
            Repair::MarkUndeployed { id } | Repair::RemoveLock { id } => Some(*id),
            Repair::RemoveStagingFile { owner, .. } => Some(*owner),
            Repair::None | Repair::RemoveTempFile(_) => None,
        }
    }

    /// Domains go before volumes (a defined domain uses them), lock files last.
    fn order(&self) -> u8 {
        match self {
            Repair::RemoveDomain { .. } => 0,
            Repair::DeleteVolume { .. }
            | Repair::MarkUndeployed { .. }
            | Repair::RemoveStagingFile { .. } => 1,
            Repair::None | Repair::RemoveTempFile(_) => 2,
            Repair::RemoveLock { .. } => 3,
        }
    }
}

/// Whether a problem the survey found still stands now that the survey is over: its VMD may
/// have been committed, changed or taken up by another process meanwhile (what the survey
/// read is a series of snapshots, not one). Without `--fix` this keeps the report free of
/// work that was merely in progress; with it, [`repair`] checks again under the lock.
pub(super) fn still_stands(host: &dyn Host, catalog: &Catalog, problem: &Problem) -> bool {
    let Some(owner) = problem.repair.owner() else {
        return true;
    };
    if catalog.has_lock_file(&owner) && !matches!(catalog.try_lock_vmd(&owner), Ok(Some(_))) {
        return false;
    }
    let record = || catalog.get_id(&owner).ok();
    match &problem.repair {
        Repair::DeleteVolume { pool, volume, .. } => {
            !catalog.contains(&owner)
                || record().is_some_and(|v| {
                    !v.disks
                        .iter()
                        .any(|d| &d.pool == pool && &d.volume == volume)
                })
        }
        Repair::RemoveDomain { .. } => {
            !catalog.contains(&owner) || record().is_some_and(|v| v.state != State::Deployed)
        }
        Repair::MarkUndeployed { .. } => {
            record().is_some_and(|v| v.state == State::Deployed)
                && matches!(host.domain_state(&owner.uuid()), Ok(None))
        }
        Repair::RemoveLock { .. } => !catalog.contains(&owner),
        Repair::None | Repair::RemoveTempFile(_) | Repair::RemoveStagingFile { .. } => true,
    }
}

/// What a repair did: a past-tense phrase for the report, or nothing to do any more.
type Done = Option<&'static str>;

/// Repairs every repairable problem it can, noting in each what it did or why it did not.
pub(super) fn repair(host: &dyn Host, catalog: &Catalog, problems: &mut [Problem]) {
    for p in problems.iter_mut() {
        if let Repair::RemoveTempFile(t) = &p.repair {
            let still_dead = !std::path::Path::new("/proc")
                .join(t.pid.to_string())
                .exists();
            let result = if still_dead {
                catalog
                    .remove_temp_file(t)
                    .map(|()| Some("removed"))
                    .map_err(Error::from)
            } else {
                Ok(None)
            };
            note(p, result);
        }
    }
    let mut owners: Vec<VmdId> = problems.iter().filter_map(|p| p.repair.owner()).collect();
    owners.sort();
    owners.dedup();
    for owner in owners {
        let mine = |p: &Problem| p.repair.owner() == Some(owner);
        let lock = match catalog.try_lock_vmd(&owner) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                for p in problems.iter_mut().filter(|p| mine(p)) {
                    p.detail
                        .push_str("; left alone: another vmd process is working on it");
                }
                continue;
            }
            Err(e) => {
                for p in problems.iter_mut().filter(|p| mine(p)) {
                    p.detail.push_str(&format!("; not repaired: {}", chain(&e)));
                }
                continue;
            }
        };
        let mut order: Vec<usize> = (0..problems.len())
            .filter(|i| mine(&problems[*i]))
            .collect();
        order.sort_by_key(|i| problems[*i].repair.order());
        for i in order {
            let result = match &problems[i].repair {
                Repair::RemoveLock { .. } => continue,
                r => apply(host, catalog, r),
            };
            note(&mut problems[i], result);
        }
        // The lock file is the claim on what is left: it goes only once nothing is.
        let leftovers = problems
            .iter()
            .any(|p| mine(p) && !p.fixed && !matches!(p.repair, Repair::RemoveLock { .. }));
        let stale = problems
            .iter()
            .position(|p| p.repair == Repair::RemoveLock { id: owner });
        match stale {
            Some(i) if !leftovers && !catalog.contains(&owner) => {
                let result = lock.remove().map(|()| Some("removed")).map_err(Error::from);
                note(&mut problems[i], result);
            }
            Some(i) => problems[i]
                .detail
                .push_str("; kept: objects of this VMD are left (it marks them as this catalog's)"),
            None => {}
        }
    }
}

fn note(p: &mut Problem, result: Result<Done, Error>) {
    match result {
        Ok(Some(action)) => {
            p.fixed = true;
            p.detail.push_str(&format!("; {action}"));
        }
        Ok(None) => {
            p.fixed = true;
            p.detail.push_str("; resolved meanwhile, nothing to do");
        }
        Err(e) => p
            .detail
            .push_str(&format!("; repair failed: {}", chain(&e))),
    }
}

/// Makes one repair, holding the owner's lock, after re-reading its record.
fn apply(host: &dyn Host, catalog: &Catalog, repair: &Repair) -> Result<Done, Error> {
    match repair {
        Repair::DeleteVolume {
            owner,
            pool,
            volume,
        } => {
            if catalog.contains(owner) {
                let v = catalog.get_id(owner)?;
                if v.disks
                    .iter()
                    .any(|d| &d.pool == pool && &d.volume == volume)
                {
                    return Ok(None);
                }
            }
            host.delete_volume(pool, volume)?;
            Ok(Some("deleted"))
        }
        Repair::RemoveDomain { owner } => {
            if catalog.contains(owner) && catalog.get_id(owner)?.state == State::Deployed {
                return Ok(None);
            }
            let uuid = owner.uuid();
            host.destroy_domain(&uuid)?;
            host.undefine_domain(&uuid)?;
            Ok(Some("destroyed and undefined"))
        }
        Repair::MarkUndeployed { id } => {
            let mut v = match catalog.get_id(id) {
                Ok(v) => v,
                Err(CatalogError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            if v.state != State::Deployed || host.domain_state(&id.uuid())?.is_some() {
                return Ok(None);
            }
            v.state = State::Undeployed;
            catalog.write(&v)?;
            Ok(Some("recorded as undeployed (redeploy brings it back)"))
        }
        Repair::RemoveStagingFile { path, .. } => match std::fs::remove_file(path) {
            Ok(()) => Ok(Some("removed")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io {
                action: "remove",
                path: path.clone(),
                source,
            }),
        },
        Repair::None | Repair::RemoveTempFile(_) | Repair::RemoveLock { .. } => Ok(None),
    }
}
