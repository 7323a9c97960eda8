//! The default pool of a state directory: a `dir` pool at `<state dir>/pools/vmd` that
//! belongs to that state directory. It is named `vmd` when that name is free or already
//! names this directory; when another state directory's pool holds the name, this one is
//! named `vmd-<8 hex digits of the directory's SHA-256>`, so that two state directories on
//! one host never write into each other's pool.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Error;
use crate::host::{Host, HostErrorKind};
use crate::vmd::PoolName;

/// A state directory's default pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DefaultPool {
    /// Its libvirt name.
    pub name: PoolName,
    /// Its directory, under the state directory.
    pub dir: PathBuf,
}

/// Finds the default pool of `state_dir` by name and path, without creating anything.
pub(super) fn default_pool(host: &dyn Host, state_dir: &Path) -> Result<DefaultPool, Error> {
    let dir = state_dir.join("pools").join("vmd");
    let plain = PoolName::default_pool();
    let derived = derived_name(&dir)?;
    for name in [plain, derived] {
        match host.pool(&name) {
            Err(e) if e.kind() == HostErrorKind::NotFound => {
                return Ok(DefaultPool { name, dir });
            }
            Err(e) => return Err(e.into()),
            Ok(info)
                if info
                    .path
                    .as_deref()
                    .is_some_and(|p| same_dir(Path::new(p), &dir)) =>
            {
                return Ok(DefaultPool { name, dir });
            }
            Ok(_) => {}
        }
    }
    Err(Error::Request(format!(
        "the pools vmd and {} on this host both belong to other directories than {}: \
         name a pool with --pool",
        derived_name(&dir)?,
        dir.display()
    )))
}

/// Finds or makes the default pool of `state_dir`: its directory (reachable by QEMU, which
/// runs as another user) and the started, autostarted libvirt pool.
pub(super) fn ensure_default_pool(host: &dyn Host, state_dir: &Path) -> Result<PoolName, Error> {
    let pool = default_pool(host, state_dir)?;
    create_reachable_dir(&pool.dir)?;
    host.ensure_dir_pool(&pool.name, &pool.dir)?;
    Ok(pool.name)
}

fn derived_name(dir: &Path) -> Result<PoolName, Error> {
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("vmd-{hex}")
        .parse()
        .map_err(|e: crate::vmd::NameError| Error::Request(e.to_string()))
}

/// Whether two paths name one directory here (the same device and inode).
fn same_dir(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        // Not made yet: the paths themselves must agree.
        _ => a == b,
    }
}

/// Creates `dir` and opens the search bit on it and each parent, so that QEMU can reach
/// the volumes inside.
pub(super) fn create_reachable_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let mut p = Some(dir);
    while let Some(d) = p {
        let meta = std::fs::metadata(d).map_err(io("inspect", d))?;
        let mode = meta.permissions().mode();
        if mode & 0o111 != 0o111 && d.starts_with("/") && d != Path::new("/") {
            let mut perm = meta.permissions();
            perm.set_mode(mode | 0o111);
            std::fs::set_permissions(d, perm).map_err(io("open up", d))?;
        }
        p = d.parent().filter(|q| !q.as_os_str().is_empty());
    }
    Ok(())
}

/// Refuses, before anything is done, an operation that still reads or writes volume files in
/// place (`what`, with the `instead` a user can do) when a pool of `pools` is reached only
/// through libvirt: one line naming the pool and its type.
pub(super) fn require_local<'a>(
    host: &dyn Host,
    pools: impl IntoIterator<Item = &'a PoolName>,
    what: &str,
    instead: &str,
) -> Result<(), Error> {
    let mut seen = std::collections::BTreeSet::new();
    for pool in pools {
        if !seen.insert(pool.clone()) {
            continue;
        }
        if host.pool_access(pool)? == crate::host::PoolAccess::Streams {
            let kind = host.pool(pool)?.pool_type;
            return Err(Error::Request(format!(
                "{what} is not available for pool {pool} ({kind}), whose files vmd reaches \
                 only through libvirt: {instead}"
            )));
        }
    }
    Ok(())
}
