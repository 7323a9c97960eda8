//! The catalog: one JSON document per VMD under `<state>/catalog/`. Every write is atomic
//! (temporary file in the same directory, fsync, rename, fsync of the directory), so a crash
//! leaves the old record or the new one, never a torn one. A catalog-wide lock file makes
//! "is this name free? then insert" one step across processes; per-VMD locks live in
//! [`super::lock`].
//!
//! Names on disk, which `doctor` relies on to reconcile after a crash: records are
//! `<id>.json`, temporary files `.<name>.<pid>.tmp` beside their target, the catalog lock
//! `.lock`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::model::Vmd;
use super::names::VmdId;

/// A catalog failure.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No VMD has that name or id.
    #[error("no VMD named {0}")]
    NotFound(String),
    /// The name is taken.
    #[error("a VMD named {0} exists already")]
    NameTaken(String),
    /// A reference is one VMD's id and another's name (a name recorded before names that
    /// look like ids were refused).
    #[error(
        "{reference} is ambiguous: it is the id of VMD {id_owner} and the name of the VMD with \
         id {named}; refer to them as {id_owner} and {named}"
    )]
    Ambiguous {
        /// The reference as given.
        reference: String,
        /// The name of the VMD whose id it is.
        id_owner: String,
        /// The id of the VMD whose name it is.
        named: VmdId,
    },
    /// Reading or writing a file failed.
    #[error("catalog {action} {path}: {source}")]
    Io {
        /// What vmd was doing.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Another operation holds the VMD's lock and did not release it in time.
    #[error(
        "VMD {vmd} is busy: another vmd operation holds its lock (gave up after {waited_secs} s; \
         VMD_LOCK_TIMEOUT sets the wait)"
    )]
    Busy {
        /// The VMD, as the user named it (or its id).
        vmd: String,
        /// How long vmd waited.
        waited_secs: u64,
    },
    /// A record could not be parsed.
    #[error("catalog record {path} is damaged: {source}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CatalogError {
    let path = path.to_path_buf();
    move |source| CatalogError::Io {
        action,
        path,
        source,
    }
}

/// The on-disk catalog of VMDs.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
    pub(super) locks: PathBuf,
}

/// An exclusive lock on the whole catalog, released when dropped.
#[derive(Debug)]
pub struct CatalogLock {
    _file: File,
}

impl Catalog {
    /// Opens (creating if needed) the catalog under `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, CatalogError> {
        let dir = state_dir.join("catalog");
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        Ok(Self {
            dir,
            locks: state_dir.join("locks"),
        })
    }

    fn record_path(&self, id: &VmdId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Takes the catalog-wide lock (`flock`), waiting for other processes.
    pub fn lock(&self) -> Result<CatalogLock, CatalogError> {
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        file.lock().map_err(io_err("lock", &path))?;
        Ok(CatalogLock { _file: file })
    }

    /// Every VMD, sorted by name.
    pub fn list(&self) -> Result<Vec<Vmd>, CatalogError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err("read", &self.dir))? {
            let entry = entry.map_err(io_err("read", &self.dir))?;
            let path = entry.path();
            let is_record = path.extension().is_some_and(|e| e == "json")
                && !entry.file_name().to_string_lossy().starts_with('.');
            if is_record {
                out.push(read_record(&path)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The VMD with this name, or with this id. A reference that is one VMD's id and
    /// another's name is an error naming both: new names never look like ids, but a record
    /// written before that rule may hold one, and guessing could delete the wrong VMD.
    pub fn get(&self, name_or_id: &str) -> Result<Vmd, CatalogError> {
        let by_id = name_or_id
            .parse::<VmdId>()
            .ok()
            .filter(|id| self.contains(id));
        let by_name = self.id_of(name_or_id)?;
        match (by_id, by_name) {
            (Some(id), Some(named)) if id != named => {
                let owner = self.get_id(&id)?;
                Err(CatalogError::Ambiguous {
                    reference: name_or_id.to_string(),
                    id_owner: owner.name.to_string(),
                    named,
                })
            }
            (Some(id), _) | (None, Some(id)) => self.get_id(&id),
            (None, None) => Err(CatalogError::NotFound(name_or_id.to_string())),
        }
    }

    /// The id of the VMD named `name`. Reads only each record's id and name, so the
    /// name checks every create and lookup makes stay cheap as the catalog grows.
    pub fn id_of(&self, name: &str) -> Result<Option<VmdId>, CatalogError> {
        /// The part of a record a name lookup needs; serde skips the rest.
        #[derive(serde::Deserialize)]
        struct Names {
            id: VmdId,
            name: String,
        }
        for entry in fs::read_dir(&self.dir).map_err(io_err("read", &self.dir))? {
            let entry = entry.map_err(io_err("read", &self.dir))?;
            let path = entry.path();
            let is_record = path.extension().is_some_and(|e| e == "json")
                && !entry.file_name().to_string_lossy().starts_with('.');
            if !is_record {
                continue;
            }
            let bytes = fs::read(&path).map_err(io_err("read", &path))?;
            let names: Names = serde_json::from_slice(&bytes)
                .map_err(|source| CatalogError::Damaged { path, source })?;
            if names.name == name {
                return Ok(Some(names.id));
            }
        }
        Ok(None)
    }

    /// The VMD with this id (never a name lookup: a name may look like an id).
    pub fn get_id(&self, id: &VmdId) -> Result<Vmd, CatalogError> {
        let path = self.record_path(id);
        match read_record(&path) {
            Err(CatalogError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(CatalogError::NotFound(id.to_string()))
            }
            other => other,
        }
    }

    /// True when a record file for `id` exists (parseable or not).
    pub fn contains(&self, id: &VmdId) -> bool {
        self.record_path(id).exists()
    }

    /// Every record, tolerating damaged ones: `doctor` reports those instead of failing.
    pub fn scan(&self) -> Result<Scan, CatalogError> {
        let mut scan = Scan::default();
        for entry in fs::read_dir(&self.dir).map_err(io_err("read", &self.dir))? {
            let entry = entry.map_err(io_err("read", &self.dir))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<VmdId>().ok())
            else {
                continue;
            };
            scan.ids.insert(id);
            match read_record(&entry.path()) {
                Ok(vmd) => scan.records.push(vmd),
                Err(e) => scan.damaged.push((entry.path(), e.to_string())),
            }
        }
        scan.records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(scan)
    }

    /// The temporary files of [`write_atomic`] left in the catalog directory, with the id of
    /// the process that wrote each (from its name).
    pub fn temp_files(&self) -> Result<Vec<TempFile>, CatalogError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err("read", &self.dir))? {
            let entry = entry.map_err(io_err("read", &self.dir))?;
            let name = entry.file_name();
            if let Some(pid) = name.to_str().and_then(temp_file_pid) {
                out.push(TempFile {
                    path: entry.path(),
                    pid,
                });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Removes a temporary file that [`Catalog::temp_files`] listed.
    pub fn remove_temp_file(&self, tmp: &TempFile) -> Result<(), CatalogError> {
        match fs::remove_file(&tmp.path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &tmp.path)(e)),
        }
    }

    /// Adds a new VMD; its name must be free. Hold [`Catalog::lock`] across the check that
    /// led here and this call.
    pub fn insert(&self, vmd: &Vmd, _lock: &CatalogLock) -> Result<(), CatalogError> {
        if self.id_of(vmd.name.as_str())?.is_some() {
            return Err(CatalogError::NameTaken(vmd.name.to_string()));
        }
        self.write(vmd)
    }

    /// True when a VMD of this name exists.
    pub fn name_taken(&self, name: &str) -> Result<bool, CatalogError> {
        Ok(self.id_of(name)?.is_some())
    }

    /// Replaces the record of an existing VMD.
    pub fn write(&self, vmd: &Vmd) -> Result<(), CatalogError> {
        let bytes = serde_json::to_vec_pretty(vmd).map_err(|source| CatalogError::Damaged {
            path: self.record_path(&vmd.id),
            source,
        })?;
        write_atomic(&self.record_path(&vmd.id), &bytes)
    }

    /// Removes a VMD's record (a no-op when it is gone already).
    pub fn remove(&self, id: &VmdId) -> Result<(), CatalogError> {
        let path = self.record_path(id);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }
}

/// What [`Catalog::scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every record that parses, by name.
    pub records: Vec<Vmd>,
    /// Records that do not parse, with the reason.
    pub damaged: Vec<(PathBuf, String)>,
    /// The id of every record file, damaged ones included, so that nothing of a damaged
    /// record's VMD ever looks orphaned.
    pub ids: std::collections::BTreeSet<VmdId>,
}

/// A temporary file of [`write_atomic`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempFile {
    /// Its path.
    pub path: PathBuf,
    /// The process that wrote it.
    pub pid: u32,
}

/// The writer's pid when `name` is a temporary file name of [`write_atomic`]:
/// `.<target>.<pid>.tmp`.
fn temp_file_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (target, pid) = rest.rsplit_once('.')?;
    if target.is_empty() {
        return None;
    }
    pid.parse().ok()
}

fn read_record(path: &Path) -> Result<Vmd, CatalogError> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    serde_json::from_slice(&bytes).map_err(|source| CatalogError::Damaged {
        path: path.to_path_buf(),
        source,
    })
}

fn sync_dir(dir: &Path) -> Result<(), CatalogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one:
/// a temporary file in the same directory, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CatalogError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmd::{Firmware, Hardware, Kind, State, VmdName};

    fn sample(name: &str) -> Vmd {
        Vmd {
            version: crate::vmd::CATALOG_VERSION,
            id: VmdId::new(),
            name: name.parse::<VmdName>().unwrap(),
            kind: Kind::Master,
            state: State::Ready,
            created: crate::vmd::now_rfc3339(),
            parent: None,
            source: None,
            hardware: Hardware {
                vcpus: 1,
                memory_mib: 256,
                firmware: Firmware::Bios,
                os_type: None,
            },
            networks: vec![],
            properties: vec![],
            disks: vec![],
            descriptor: None,
            deployment: None,
            snapshots: vec![],
        }
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vmd-catalog-{}", VmdId::new().simple()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn catalog_insert_then_get_by_name_and_id_round_trips() {
        let dir = temp_dir();
        let cat = Catalog::open(&dir).unwrap();
        let vmd = sample("tiny");
        cat.insert(&vmd, &cat.lock().unwrap()).unwrap();
        assert_eq!(cat.get("tiny").unwrap(), vmd);
        assert_eq!(cat.get(&vmd.id.to_string()).unwrap(), vmd);
        fs::remove_dir_all(dir).unwrap();
    }

    // SECURITY.md item 40: a record from before names that look like ids were refused,
    // named after another VMD's id. The reference matches both: an error naming both, never
    // a guess; each stays reachable by the other reference.
    #[test]
    fn catalog_get_reference_that_is_one_id_and_another_name_is_ambiguous() {
        let dir = temp_dir();
        let cat = Catalog::open(&dir).unwrap();
        let victim = sample("victim");
        let mut squatter = sample("placeholder");
        squatter.name = serde_json::from_value(serde_json::json!(victim.id.to_string())).unwrap();
        cat.insert(&victim, &cat.lock().unwrap()).unwrap();
        cat.write(&squatter).unwrap();

        let err = cat.get(&victim.id.to_string()).unwrap_err();
        assert!(matches!(err, CatalogError::Ambiguous { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("victim") && msg.contains(&squatter.id.to_string()),
            "{msg}"
        );
        assert_eq!(cat.get("victim").unwrap(), victim);
        assert_eq!(cat.get(&squatter.id.to_string()).unwrap(), squatter);
        assert_eq!(cat.get(&victim.id.simple()).unwrap(), victim);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn catalog_get_name_equal_to_its_own_id_is_not_ambiguous() {
        let dir = temp_dir();
        let cat = Catalog::open(&dir).unwrap();
        let mut vmd = sample("placeholder");
        vmd.name = serde_json::from_value(serde_json::json!(vmd.id.to_string())).unwrap();
        cat.write(&vmd).unwrap();
        assert_eq!(cat.get(&vmd.id.to_string()).unwrap(), vmd);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn catalog_insert_taken_name_is_refused() {
        let dir = temp_dir();
        let cat = Catalog::open(&dir).unwrap();
        cat.insert(&sample("tiny"), &cat.lock().unwrap()).unwrap();
        let err = cat
            .insert(&sample("tiny"), &cat.lock().unwrap())
            .unwrap_err();
        assert!(matches!(err, CatalogError::NameTaken(_)), "{err}");
        assert_eq!(cat.list().unwrap().len(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn catalog_remove_leaves_no_record_and_is_idempotent() {
        let dir = temp_dir();
        let cat = Catalog::open(&dir).unwrap();
        let vmd = sample("gone");
        cat.insert(&vmd, &cat.lock().unwrap()).unwrap();
        cat.remove(&vmd.id).unwrap();
        cat.remove(&vmd.id).unwrap();
        assert!(matches!(cat.get("gone"), Err(CatalogError::NotFound(_))));
        let leftovers: Vec<_> = fs::read_dir(dir.join("catalog"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != ".lock")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn temp_file_pid_parses_write_atomic_names_only() {
        assert_eq!(temp_file_pid(".x.json.1234.tmp"), Some(1234));
        assert_eq!(temp_file_pid("x.json.1234.tmp"), None);
        assert_eq!(temp_file_pid(".x.json.tmp"), None);
        assert_eq!(temp_file_pid(".lock"), None);
        assert_eq!(temp_file_pid("..1.tmp"), None);
    }

    #[test]
    fn catalog_scan_lists_damaged_records_beside_good_ones() {
        let dir = temp_dir();
        let cat = Catalog::open(&dir).unwrap();
        let good = sample("good");
        cat.insert(&good, &cat.lock().unwrap()).unwrap();
        let bad = VmdId::new();
        fs::write(dir.join(format!("catalog/{bad}.json")), b"{not json").unwrap();
        let scan = cat.scan().unwrap();
        assert_eq!(scan.records, vec![good.clone()]);
        assert_eq!(scan.damaged.len(), 1);
        assert!(scan.ids.contains(&bad) && scan.ids.contains(&good.id));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn catalog_temp_files_found_and_removed() {
        let dir = temp_dir();
        let cat = Catalog::open(&dir).unwrap();
        let tmp = dir.join("catalog/.abc.json.99999999.tmp");
        fs::write(&tmp, b"half").unwrap();
        let found = cat.temp_files().unwrap();
        assert_eq!(
            found,
            vec![TempFile {
                path: tmp.clone(),
                pid: 99999999
            }]
        );
        cat.remove_temp_file(&found[0]).unwrap();
        assert!(!tmp.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn catalog_get_id_missing_is_not_found() {
        let dir = temp_dir();
        let cat = Catalog::open(&dir).unwrap();
        let err = cat.get_id(&VmdId::new()).unwrap_err();
        assert!(matches!(err, CatalogError::NotFound(_)), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn catalog_damaged_record_is_reported_with_its_path() {
        let dir = temp_dir();
        let cat = Catalog::open(&dir).unwrap();
        fs::write(dir.join("catalog/x.json"), b"{not json").unwrap();
        let err = cat.list().unwrap_err();
        assert!(err.to_string().contains("x.json"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }
}
