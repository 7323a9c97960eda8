//! `doctor`: finds drift between the catalog and the host, and with `fix` repairs what can be
//! repaired: the reconciliation that makes a crash at any step recoverable.
//!
//! What it looks at: every record (damaged ones too), the per-VMD lock files, the catalog's
//! temporary files, every volume of every active pool of the host (an interrupted import may
//! have written into a pool no record names yet), and every domain carrying vmd's metadata.
//! Which of those objects are this state directory's is decided in [`survey`]: a record or a
//! lock file for the VMD id the object carries; everything else is left alone.
//!
//! Repairs: orphan volumes and staging files are deleted, orphan domains destroyed and
//! undefined, a deployed record whose domain is gone becomes `undeployed`, temporary files of
//! dead writers and stale lock files are removed. A record whose volumes are gone is reported,
//! never deleted: that is the user's call. Each repair is made holding the catalog lock and
//! the VMD's own lock, after re-checking what was seen; a VMD another process holds is skipped.

mod repair;
mod survey;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::{Error, StorageManager};
use crate::host::Host;
use crate::vmd::catalog::{Catalog, TempFile};
use crate::vmd::{PoolName, State, VmdId, VolumeName};
use survey::{Seen, SeenVolume};

/// What kind of drift a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// A catalog record that does not parse.
    DamagedRecord,
    /// A vmd volume no record lists.
    OrphanVolume,
    /// An import staging file (`*.vmd-stage`) left behind.
    OrphanStagingFile,
    /// A vmd domain whose VMD is unknown or not deployed.
    OrphanDomain,
    /// A record's volume is gone.
    MissingVolume,
    /// A clone's backing master volume is gone.
    MissingBacking,
    /// A deployed record's domain is gone.
    MissingDomain,
    /// A catalog temporary file whose writer is gone.
    TempFile,
    /// A lock file of a VMD that does not exist, held by nobody.
    StaleLock,
}

/// One problem found, and whether `doctor --fix` repaired it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What kind of drift.
    pub kind: ProblemKind,
    /// The object: `pool/volume`, a domain name, a VMD name (`name/disk`), a file.
    pub object: String,
    /// What is wrong, and what was done about it.
    pub detail: String,
    /// Repaired by this run.
    pub fixed: bool,
    #[serde(skip)]
    repair: Repair,
}

impl Problem {
    fn new(kind: ProblemKind, object: String, detail: String, repair: Repair) -> Self {
        Self {
            kind,
            object,
            detail,
            fixed: false,
            repair,
        }
    }

    /// Whether `--fix` can repair it.
    pub fn repairable(&self) -> bool {
        self.repair != Repair::None
    }
}

/// What `--fix` does about a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Repair {
    /// Nothing: reported only.
    None,
    /// Delete a volume of vmd's scheme.
    DeleteVolume {
        owner: VmdId,
        pool: PoolName,
        volume: VolumeName,
    },
    /// Destroy and undefine a vmd-tagged domain (its UUID is the owner's id).
    RemoveDomain { owner: VmdId },
    /// Record a deployed VMD whose domain is gone as undeployed.
    MarkUndeployed { id: VmdId },
    /// Remove a catalog temporary file.
    RemoveTempFile(TempFile),
    /// Remove a staging file of an import into a pool reached through libvirt
    /// (`<state dir>/staging/<volume>`), under its owner's lock.
    RemoveStagingFile {
        owner: VmdId,
        path: std::path::PathBuf,
    },
    /// Remove the lock file of a VMD that does not exist.
    RemoveLock { id: VmdId },
}

/// What `doctor` found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DoctorReport {
    /// Every problem found, repaired or not.
    pub problems: Vec<Problem>,
    /// How many were repaired.
    pub fixed: usize,
    /// Objects of vmd's scheme that belong to no record and no lock file of this state
    /// directory (another state directory's, on a shared host): left alone.
    pub foreign: usize,
    /// VMDs another vmd process was working on, not checked this time.
    pub busy: Vec<String>,
}

impl DoctorReport {
    /// Problems left after this run.
    pub fn remaining(&self) -> usize {
        self.problems.iter().filter(|p| !p.fixed).count()
    }
}

impl StorageManager {
    /// Finds drift between the catalog and the host; with `fix`, repairs what can be
    /// repaired and says what it did (see the module documentation).
    pub async fn doctor(&self, fix: bool) -> Result<DoctorReport, Error> {
        let state_dir = self.config.state_dir.clone();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            // Held while fixing: no import, clone or create can commit a record meanwhile.
            let _catalog_lock = if fix { Some(catalog.lock()?) } else { None };
            let seen = look(host, &catalog)?;
            let (mut problems, foreign) = survey::survey(&seen);
            problems.retain(|p| repair::still_stands(host, &catalog, p));
            problems.extend(temp_files(&catalog)?);
            problems.extend(staging_files(&state_dir, &seen.busy)?);
            problems.sort_by(|a, b| (a.kind, &a.object).cmp(&(b.kind, &b.object)));
            if fix {
                repair::repair(host, &catalog, &mut problems);
            }
            let busy = seen
                .busy
                .iter()
                .map(|id| {
                    seen.records
                        .iter()
                        .find(|v| v.id == *id)
                        .map(|v| v.name.to_string())
                        .unwrap_or_else(|| id.to_string())
                })
                .collect();
            Ok(DoctorReport {
                fixed: problems.iter().filter(|p| p.fixed).count(),
                problems,
                foreign,
                busy,
            })
        })
        .await
    }
}

/// Reads the catalog, the lock files and the host: everything [`survey::survey`] judges.
fn look(host: &dyn Host, catalog: &Catalog) -> Result<Seen, Error> {
    let scan = catalog.scan()?;
    let mut seen = Seen {
        record_ids: scan.ids,
        damaged: scan
            .damaged
            .into_iter()
            .map(|(p, e)| (p.display().to_string(), e))
            .collect(),
        lock_ids: catalog.lock_ids()?.into_iter().collect(),
        records: scan.records,
        ..Seen::default()
    };
    for name in host.active_pools()? {
        // A pool that goes away between the listing and the refresh is simply not seen.
        if host.pool(&name).is_err() {
            continue;
        }
        let Ok(volumes) = host.list_volumes(&name) else {
            continue;
        };
        seen.volumes
            .extend(volumes.into_iter().map(|info| SeenVolume {
                pool: name.clone(),
                info,
            }));
        seen.pools.insert(name);
    }
    seen.domains = host.vmd_domains()?;
    for v in &seen.records {
        if v.state == State::Deployed && host.domain_state(&v.id.uuid())?.is_none() {
            seen.domainless.insert(v.id);
        }
        for d in &v.disks {
            for path in std::iter::once(&d.path).chain(d.backing.as_ref()) {
                if Path::new(path).exists() {
                    seen.existing_paths.insert(path.clone());
                }
            }
        }
    }
    seen.busy = busy_ids(catalog, &seen)?;
    Ok(seen)
}

/// The VMDs whose lock another process holds: every id that has a lock file and that an
/// object seen names (probing a lock releases it at once).
fn busy_ids(catalog: &Catalog, seen: &Seen) -> Result<BTreeSet<VmdId>, Error> {
    let mut ids: BTreeSet<VmdId> = seen.lock_ids.clone();
    ids.extend(seen.records.iter().map(|v| v.id));
    let mut busy = BTreeSet::new();
    for id in ids {
        if catalog.has_lock_file(&id) && catalog.try_lock_vmd(&id)?.is_none() {
            busy.insert(id);
        }
    }
    Ok(busy)
}

/// Files in `<state dir>/staging` of imports no vmd process is running: an import into a
/// pool reached through libvirt stages each disk there and removes it after the upload, so
/// any file there whose owner's lock nobody holds was left by a killed import.
fn staging_files(state_dir: &Path, busy: &BTreeSet<VmdId>) -> Result<Vec<Problem>, Error> {
    let dir = state_dir.join("staging");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                action: "read",
                path: dir,
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.parse::<crate::vmd::VolumeName>().ok())
            .and_then(|v| v.owner())
        else {
            continue;
        };
        if busy.contains(&owner) {
            continue;
        }
        out.push(Problem::new(
            ProblemKind::OrphanStagingFile,
            entry.path().display().to_string(),
            format!("import staging file of VMD {owner}, whose import is not running"),
            Repair::RemoveStagingFile {
                owner,
                path: entry.path(),
            },
        ));
    }
    Ok(out)
}

/// Catalog temporary files whose writer is no longer running.
fn temp_files(catalog: &Catalog) -> Result<Vec<Problem>, Error> {
    Ok(catalog
        .temp_files()?
        .into_iter()
        .filter(|t| !Path::new("/proc").join(t.pid.to_string()).exists())
        .map(|t| {
            Problem::new(
                ProblemKind::TempFile,
                t.path.display().to_string(),
                format!(
                    "temporary file of an interrupted catalog write (process {} is gone)",
                    t.pid
                ),
                Repair::RemoveTempFile(t),
            )
        })
        .collect())
}
