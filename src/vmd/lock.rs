//! Per-VMD locks across processes: an `flock` on `<state>/locks/<id>.lock`, exclusive for
//! operations that change a VMD and shared for those that only read it as a source (clones
//! of a master). Waits are bounded: a busy VMD fails with [`CatalogError::Busy`] after the
//! timeout instead of hanging a script.
//!
//! A lock file also marks work in progress: an operation making a new VMD locks its id before
//! it creates the first volume, so `doctor` can tell an interrupted creation (lock file free,
//! no record) from one still running (lock held), and this state directory's objects from
//! those of another (no lock file, no record). A lock file is removed only by a process that
//! holds it; every acquirer checks that the file it locked is still the one at the path.
//!
//! This module must not decide what an operation does once locked: callers re-read the record
//! after taking the lock, as it may have changed while they waited.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::catalog::{Catalog, CatalogError};
use super::names::VmdId;

/// How often a waiting operation tries the lock again.
const POLL: Duration = Duration::from_millis(50);

/// A held per-VMD lock, released when dropped.
#[derive(Debug)]
pub struct VmdLock {
    file: File,
    path: PathBuf,
}

impl VmdLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the lock file, then releases the lock: for a VMD that is gone (deleted, or
    /// never committed and fully rolled back). Waiters that locked the removed file notice
    /// and start over on a new one.
    pub fn remove(self) -> Result<(), CatalogError> {
        if !still_linked(&self.file, &self.path)? {
            // Someone else's file now: never unlink a lock we do not hold.
            return Ok(());
        }
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CatalogError::Io {
                action: "remove",
                path: self.path.clone(),
                source,
            }),
        }
    }
}

/// Whether a lock is for changing the VMD or for reading it while others read it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exclusive,
    Shared,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CatalogError {
    let path = path.to_path_buf();
    move |source| CatalogError::Io {
        action,
        path,
        source,
    }
}

/// Whether `file` (locked) is still the file at `path`: it is not when a holder removed it
/// between our open and our lock.
fn still_linked(file: &File, path: &Path) -> Result<bool, CatalogError> {
    let held = file.metadata().map_err(io_err("inspect", path))?;
    match fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// Opens the lock file, creating it (and making the creation durable, since it marks work
/// in progress that must survive a crash) when it is new.
fn open_lock_file(dir: &Path, path: &Path) -> Result<File, CatalogError> {
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("sync", dir))?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err("open", path)),
        Err(e) => Err(io_err("create", path)(e)),
    }
}

/// What one attempt found.
enum Attempt {
    Locked(VmdLock),
    /// Another process holds the lock.
    Held,
    /// The file was removed by its holder while we opened it: that VMD is gone, and a new
    /// file (made by the next attempt) is the one that counts.
    Replaced,
}

fn try_once(dir: &Path, path: &Path, mode: Mode) -> Result<Attempt, CatalogError> {
    let file = open_lock_file(dir, path)?;
    let attempt = match mode {
        Mode::Exclusive => file.try_lock(),
        Mode::Shared => file.try_lock_shared(),
    };
    match attempt {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(Attempt::Held),
        Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", path)(e)),
    }
    if !still_linked(&file, path)? {
        return Ok(Attempt::Replaced);
    }
    Ok(Attempt::Locked(VmdLock {
        file,
        path: path.to_path_buf(),
    }))
}

impl Catalog {
    /// The directory of per-VMD lock files.
    pub fn locks_dir(&self) -> &Path {
        &self.locks
    }

    fn lock_path(&self, id: &VmdId) -> PathBuf {
        self.locks.join(format!("{id}.lock"))
    }

    fn acquire(&self, id: &VmdId, mode: Mode, timeout: Duration) -> Result<VmdLock, CatalogError> {
        fs::create_dir_all(&self.locks).map_err(io_err("create", &self.locks))?;
        let path = self.lock_path(id);
        let deadline = Instant::now() + timeout;
        loop {
            match try_once(&self.locks, &path, mode)? {
                Attempt::Locked(lock) => return Ok(lock),
                Attempt::Replaced => continue,
                Attempt::Held => {}
            }
            if Instant::now() >= deadline {
                return Err(CatalogError::Busy {
                    vmd: id.to_string(),
                    waited_secs: timeout.as_secs(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Takes VMD `id`'s lock exclusively, waiting up to `timeout` for other processes to
    /// release it, then failing with [`CatalogError::Busy`].
    pub fn lock_vmd(&self, id: &VmdId, timeout: Duration) -> Result<VmdLock, CatalogError> {
        self.acquire(id, Mode::Exclusive, timeout)
    }

    /// Takes VMD `id`'s lock shared with other readers (clones of one master run side by
    /// side), waiting up to `timeout` for an exclusive holder.
    pub fn lock_vmd_shared(&self, id: &VmdId, timeout: Duration) -> Result<VmdLock, CatalogError> {
        self.acquire(id, Mode::Shared, timeout)
    }

    /// Takes VMD `id`'s lock exclusively if nobody holds it, without waiting.
    pub fn try_lock_vmd(&self, id: &VmdId) -> Result<Option<VmdLock>, CatalogError> {
        fs::create_dir_all(&self.locks).map_err(io_err("create", &self.locks))?;
        let path = self.lock_path(id);
        // A file replaced under us twice in a row would be a remover racing creators:
        // report it as held rather than spin.
        for _ in 0..3 {
            match try_once(&self.locks, &path, Mode::Exclusive)? {
                Attempt::Locked(lock) => return Ok(Some(lock)),
                Attempt::Held => return Ok(None),
                Attempt::Replaced => {}
            }
        }
        Ok(None)
    }

    /// The ids that have a lock file in this state directory, whether held or not.
    pub fn lock_ids(&self) -> Result<Vec<VmdId>, CatalogError> {
        let entries = match fs::read_dir(&self.locks) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &self.locks)(e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.locks))?;
            let name = entry.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_suffix(".lock"))
                .and_then(|n| n.parse::<VmdId>().ok());
            if let Some(id) = id {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// True when this state directory has a lock file for `id`.
    pub fn has_lock_file(&self, id: &VmdId) -> bool {
        self.lock_path(id).exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_catalog() -> (PathBuf, Catalog) {
        let dir = std::env::temp_dir().join(format!("vmd-lock-{}", VmdId::new().simple()));
        fs::create_dir_all(&dir).unwrap();
        let cat = Catalog::open(&dir).unwrap();
        (dir, cat)
    }

    #[test]
    fn lock_vmd_held_elsewhere_times_out_busy() {
        let (dir, cat) = temp_catalog();
        let id = VmdId::new();
        let _held = cat.lock_vmd(&id, Duration::ZERO).unwrap();
        let started = Instant::now();
        let err = cat.lock_vmd(&id, Duration::from_millis(300)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(matches!(err, CatalogError::Busy { .. }), "{err}");
        assert!(err.to_string().contains("busy"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lock_vmd_released_is_taken_by_waiter() {
        let (dir, cat) = temp_catalog();
        let id = VmdId::new();
        let held = cat.lock_vmd(&id, Duration::ZERO).unwrap();
        let waiter = {
            let cat = cat.clone();
            std::thread::spawn(move || cat.lock_vmd(&id, Duration::from_secs(10)).map(|_| ()))
        };
        std::thread::sleep(Duration::from_millis(150));
        drop(held);
        waiter.join().unwrap().unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lock_vmd_shared_holders_coexist_and_exclude_writers() {
        let (dir, cat) = temp_catalog();
        let id = VmdId::new();
        let a = cat.lock_vmd_shared(&id, Duration::ZERO).unwrap();
        let b = cat.lock_vmd_shared(&id, Duration::ZERO).unwrap();
        assert!(cat.try_lock_vmd(&id).unwrap().is_none());
        assert!(matches!(
            cat.lock_vmd(&id, Duration::from_millis(100)),
            Err(CatalogError::Busy { .. })
        ));
        drop((a, b));
        assert!(cat.try_lock_vmd(&id).unwrap().is_some());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lock_vmd_exclusive_blocks_shared() {
        let (dir, cat) = temp_catalog();
        let id = VmdId::new();
        let _w = cat.lock_vmd(&id, Duration::ZERO).unwrap();
        let err = cat
            .lock_vmd_shared(&id, Duration::from_millis(100))
            .unwrap_err();
        assert!(matches!(err, CatalogError::Busy { .. }), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lock_removed_by_holder_waiter_locks_the_new_file() {
        let (dir, cat) = temp_catalog();
        let id = VmdId::new();
        let held = cat.lock_vmd(&id, Duration::ZERO).unwrap();
        let path = held.path().to_path_buf();
        let waiter = {
            let cat = cat.clone();
            std::thread::spawn(move || cat.lock_vmd(&id, Duration::from_secs(10)))
        };
        std::thread::sleep(Duration::from_millis(150));
        held.remove().unwrap();
        let got = waiter.join().unwrap().unwrap();
        // The waiter holds the file now at the path, not the removed one.
        assert!(still_linked(&got.file, &path).unwrap());
        assert!(cat.try_lock_vmd(&id).unwrap().is_none());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lock_ids_lists_lock_files_and_ignores_others() {
        let (dir, cat) = temp_catalog();
        let id = VmdId::new();
        cat.lock_vmd(&id, Duration::ZERO).unwrap();
        fs::write(cat.locks_dir().join("notes.txt"), b"x").unwrap();
        assert_eq!(cat.lock_ids().unwrap(), vec![id]);
        assert!(cat.has_lock_file(&id));
        assert!(!cat.has_lock_file(&VmdId::new()));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn remove_held_lock_leaves_no_file() {
        let (dir, cat) = temp_catalog();
        let id = VmdId::new();
        cat.lock_vmd(&id, Duration::ZERO).unwrap().remove().unwrap();
        assert!(cat.lock_ids().unwrap().is_empty());
        fs::remove_dir_all(dir).unwrap();
    }
}
