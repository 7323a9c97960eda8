//! An in-memory host for unit tests of rollback and ordering: pools, volumes (with the bytes
//! uploaded into them), domains and their snapshots live in maps, every call is logged in
//! order, and any call can be made to fail on its nth use. It is never the proof that a
//! feature works: the integration tests drive the real libvirtd for that.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Mutex;

use uuid::Uuid;

use super::{
    DiskSpec, DomainDefinition, DomainState, Host, HostError, HostErrorKind, HostInfo, NewVolume,
    PoolAccess, PoolCaps, PoolInfo, SavedSnapshot, SnapshotSpec, VmdDomain, VolumeInfo,
};
use crate::vmd::{PoolName, VolumeName};

mod parts;

use parts::{create, domain_mut, error, info, pool_mut};

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryVolume {
    pub format: String,
    pub capacity: u64,
    pub backing: Option<String>,
    pub readonly: bool,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone)]
struct MemoryDomain {
    name: String,
    state: DomainState,
    /// By name, with the record `snapshot_create` returned.
    snapshots: BTreeMap<String, SavedSnapshot>,
    /// The snapshots libvirt would still hold metadata for (not yet forgotten).
    metadata: BTreeSet<String>,
    /// What the guest writes on its serial console.
    console: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    pools: BTreeMap<String, BTreeMap<String, MemoryVolume>>,
    domains: BTreeMap<Uuid, MemoryDomain>,
    /// Pools of another kind than a file pool, by name.
    kinds: BTreeMap<String, PoolCaps>,
    calls: BTreeMap<&'static str, usize>,
    fail: BTreeMap<&'static str, usize>,
    log: Vec<String>,
}

/// The in-memory host.
#[derive(Debug, Default)]
pub struct MemoryHost {
    state: Mutex<State>,
}

impl MemoryHost {
    /// A host with these (empty, running) pools.
    pub fn with_pools(pools: &[&str]) -> Self {
        let host = Self::default();
        host.lock()
            .pools
            .extend(pools.iter().map(|p| (p.to_string(), BTreeMap::new())));
        host
    }

    /// Makes the `nth` call (counting from 1) of `call` fail with an injected error.
    pub fn fail(&self, call: &'static str, nth: usize) {
        self.lock().fail.insert(call, nth);
    }

    /// Every call made so far, as `call object`, in order.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// The volumes of a pool, by name.
    pub fn volumes(&self, pool: &str) -> BTreeMap<String, MemoryVolume> {
        self.lock().pools.get(pool).cloned().unwrap_or_default()
    }

    /// Adds a volume as if something else had made it.
    pub fn put_volume(&self, pool: &str, name: &str, volume: MemoryVolume) {
        self.lock()
            .pools
            .entry(pool.to_string())
            .or_default()
            .insert(name.to_string(), volume);
    }

    /// A domain's snapshots: those in its disks, and those libvirt still holds metadata for.
    pub fn snapshots(&self, uuid: &Uuid) -> (Vec<String>, Vec<String>) {
        self.lock()
            .domains
            .get(uuid)
            .map(|d| {
                (
                    d.snapshots.keys().cloned().collect(),
                    d.metadata.iter().cloned().collect(),
                )
            })
            .unwrap_or_default()
    }

    /// Makes `pool` a pool of this kind (file pools are the default).
    pub fn set_pool_caps(&self, pool: &str, caps: PoolCaps) {
        self.lock().kinds.insert(pool.to_string(), caps);
    }

    /// The UUIDs of the defined domains.
    pub fn domains(&self) -> Vec<Uuid> {
        self.lock().domains.keys().copied().collect()
    }

    /// Sets what the domain's serial console holds for the next reader.
    pub fn put_console(&self, uuid: &Uuid, bytes: &[u8]) {
        if let Some(d) = self.lock().domains.get_mut(uuid) {
            d.console = bytes.to_vec();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs the call and fails it when a failure was armed for this use of it.
    fn enter(
        &self,
        call: &'static str,
        object: &str,
    ) -> Result<std::sync::MutexGuard<'_, State>, HostError> {
        let mut s = self.lock();
        s.log.push(format!("{call} {object}"));
        let n = {
            let n = s.calls.entry(call).or_insert(0);
            *n += 1;
            *n
        };
        if s.fail.get(call) == Some(&n) {
            return Err(error(
                call,
                object,
                HostErrorKind::Other,
                "injected failure",
            ));
        }
        Ok(s)
    }
}

impl Host for MemoryHost {
    fn info(&self) -> Result<HostInfo, HostError> {
        let s = self.enter("info", "memory")?;
        let pools = s.pools.keys().map(|name| memory_pool(name)).collect();
        Ok(HostInfo {
            uri: "memory:///".to_string(),
            hostname: "memory".to_string(),
            libvirt_version: "0.0.0".to_string(),
            qemu_version: "0.0.0".to_string(),
            virt_types: vec!["qemu".to_string()],
            default_virt_type: Some("qemu".to_string()),
            pools,
        })
    }

    fn ensure_dir_pool(&self, name: &PoolName, _path: &Path) -> Result<PoolInfo, HostError> {
        self.enter("ensure_dir_pool", name.as_str())?
            .pools
            .entry(name.to_string())
            .or_default();
        self.pool(name)
    }

    fn pool(&self, name: &PoolName) -> Result<PoolInfo, HostError> {
        let mut s = self.enter("pool", name.as_str())?;
        pool_mut(&mut s, "pool", name)?;
        Ok(memory_pool(name.as_str()))
    }

    fn create_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        capacity: u64,
        format: &'static str,
        readonly: bool,
    ) -> Result<VolumeInfo, HostError> {
        let mut s = self.enter("create_volume", name.as_str())?;
        let to = NewVolume {
            pool,
            name,
            format,
            readonly,
        };
        create(&mut s, "create_volume", &to, capacity, None)
    }

    fn volume(&self, pool: &PoolName, name: &VolumeName) -> Result<VolumeInfo, HostError> {
        let mut s = self.enter("volume", name.as_str())?;
        let vols = pool_mut(&mut s, "volume", pool)?;
        vols.get(name.as_str())
            .map(|v| info(pool.as_str(), name.as_str(), v))
            .ok_or_else(|| {
                error(
                    "volume",
                    name.as_str(),
                    HostErrorKind::NotFound,
                    "no such volume",
                )
            })
    }

    fn delete_volume(&self, pool: &PoolName, name: &VolumeName) -> Result<(), HostError> {
        let mut s = self.enter("delete_volume", name.as_str())?;
        if s.kinds
            .get(pool.as_str())
            .is_some_and(|k| !k.creates_volumes)
        {
            return Err(error(
                "delete_volume",
                name.as_str(),
                HostErrorKind::Other,
                "this pool type does not support volume deletion",
            ));
        }
        if let Some(vols) = s.pools.get_mut(pool.as_str()) {
            vols.remove(name.as_str());
        }
        Ok(())
    }

    fn list_volumes(&self, pool: &PoolName) -> Result<Vec<VolumeInfo>, HostError> {
        let mut s = self.enter("list_volumes", pool.as_str())?;
        let vols = pool_mut(&mut s, "list_volumes", pool)?;
        Ok(vols
            .iter()
            .map(|(n, v)| info(pool.as_str(), n, v))
            .collect())
    }

    fn active_pools(&self) -> Result<Vec<PoolName>, HostError> {
        let s = self.enter("active_pools", "memory")?;
        Ok(s.pools.keys().filter_map(|p| p.parse().ok()).collect())
    }

    fn create_overlay(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        capacity: u64,
        backing: &str,
        _backing_format: &'static str,
    ) -> Result<VolumeInfo, HostError> {
        let mut s = self.enter("create_overlay", name.as_str())?;
        let to = NewVolume {
            pool,
            name,
            format: "qcow2",
            readonly: false,
        };
        create(
            &mut s,
            "create_overlay",
            &to,
            capacity,
            Some(backing.to_string()),
        )
    }

    fn copy_volume(
        &self,
        source_pool: &PoolName,
        source: &VolumeName,
        _source_format: &'static str,
        to: &NewVolume<'_>,
    ) -> Result<VolumeInfo, HostError> {
        let mut s = self.enter("copy_volume", to.name.as_str())?;
        let src = pool_mut(&mut s, "copy_volume", source_pool)?
            .get(source.as_str())
            .cloned()
            .ok_or_else(|| {
                error(
                    "copy_volume",
                    source.as_str(),
                    HostErrorKind::NotFound,
                    "no such volume",
                )
            })?;
        let made = create(&mut s, "copy_volume", to, src.capacity, None)?;
        if let Some(v) = s
            .pools
            .get_mut(to.pool.as_str())
            .and_then(|p| p.get_mut(to.name.as_str()))
        {
            v.data = src.data;
        }
        Ok(made)
    }

    fn pool_caps(&self, pool: &PoolName) -> Result<PoolCaps, HostError> {
        let mut s = self.enter("pool_caps", pool.as_str())?;
        pool_mut(&mut s, "pool_caps", pool)?;
        match s.kinds.get(pool.as_str()) {
            Some(caps) => Ok(caps.clone()),
            None => super::caps::pool_caps("dir", "")
                .map_err(|m| error("pool_caps", pool.as_str(), HostErrorKind::Other, &m)),
        }
    }

    fn pool_access(&self, pool: &PoolName) -> Result<PoolAccess, HostError> {
        let mut s = self.enter("pool_access", pool.as_str())?;
        pool_mut(&mut s, "pool_access", pool)?;
        Ok(PoolAccess::Streams)
    }

    fn upload_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        offset: u64,
        len: u64,
        source: &mut dyn Read,
    ) -> Result<(), HostError> {
        let mut bytes = Vec::new();
        source.take(len).read_to_end(&mut bytes).map_err(|e| {
            error(
                "upload_volume",
                name.as_str(),
                HostErrorKind::Other,
                &e.to_string(),
            )
        })?;
        let mut s = self.enter("upload_volume", name.as_str())?;
        let v = pool_mut(&mut s, "upload_volume", pool)?
            .get_mut(name.as_str())
            .ok_or_else(|| {
                error(
                    "upload_volume",
                    name.as_str(),
                    HostErrorKind::NotFound,
                    "no such volume",
                )
            })?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(bytes.len());
        if v.data.len() < end {
            v.data.resize(end, 0);
        }
        v.data[start..end].copy_from_slice(&bytes);
        Ok(())
    }

    fn download_volume(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        offset: u64,
        len: u64,
        sink: &mut dyn Write,
    ) -> Result<u64, HostError> {
        let mut s = self.enter("download_volume", name.as_str())?;
        let v = pool_mut(&mut s, "download_volume", pool)?
            .get(name.as_str())
            .ok_or_else(|| {
                error(
                    "download_volume",
                    name.as_str(),
                    HostErrorKind::NotFound,
                    "no such volume",
                )
            })?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(v.data.len());
        let end = if len == 0 {
            v.data.len()
        } else {
            start
                .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
                .min(v.data.len())
        };
        sink.write_all(&v.data[start..end]).map_err(|e| {
            error(
                "download_volume",
                name.as_str(),
                HostErrorKind::Other,
                &e.to_string(),
            )
        })?;
        Ok((end - start) as u64)
    }

    fn define_domain(&self, def: &DomainDefinition) -> Result<(), HostError> {
        let doc = &def.spec;
        let uuid = Uuid::parse_str(&doc.uuid).map_err(|e| {
            error(
                "define_domain",
                &doc.name,
                HostErrorKind::Other,
                &e.to_string(),
            )
        })?;
        let mut s = self.enter("define_domain", &doc.name)?;
        let taken = s
            .domains
            .iter()
            .any(|(u, d)| d.name == doc.name && *u != uuid);
        if taken {
            return Err(error(
                "define_domain",
                &doc.name,
                HostErrorKind::AlreadyExists,
                "name taken",
            ));
        }
        let state = s
            .domains
            .get(&uuid)
            .map_or(DomainState::Shutoff, |d| d.state);
        let (snapshots, metadata) = s
            .domains
            .get(&uuid)
            .map(|d| (d.snapshots.clone(), d.metadata.clone()))
            .unwrap_or_default();
        s.domains.insert(
            uuid,
            MemoryDomain {
                name: doc.name.clone(),
                state,
                snapshots,
                metadata,
                console: Vec::new(),
            },
        );
        Ok(())
    }

    fn domain_state(&self, uuid: &Uuid) -> Result<Option<DomainState>, HostError> {
        let s = self.enter("domain_state", &uuid.to_string())?;
        Ok(s.domains.get(uuid).map(|d| d.state))
    }

    fn start_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.set_state("start_domain", uuid, DomainState::Running)
    }

    fn start_domain_paused(&self, uuid: &Uuid) -> Result<(), HostError> {
        let mut s = self.enter("start_domain_paused", &uuid.to_string())?;
        let d = domain_mut(&mut s, "start_domain_paused", uuid)?;
        if d.state != DomainState::Shutoff {
            return Err(error(
                "start_domain_paused",
                &uuid.to_string(),
                HostErrorKind::InvalidState,
                "domain is already running",
            ));
        }
        d.state = DomainState::Paused;
        Ok(())
    }

    /// The console holds what [`MemoryHost::put_console`] gave the domain.
    fn open_console(&self, uuid: &Uuid) -> Result<Box<dyn Read + Send>, HostError> {
        let mut s = self.enter("open_console", &uuid.to_string())?;
        let d = domain_mut(&mut s, "open_console", uuid)?;
        if d.state == DomainState::Shutoff {
            return Err(error(
                "open_console",
                &uuid.to_string(),
                HostErrorKind::InvalidState,
                "domain is not running",
            ));
        }
        Ok(Box::new(std::io::Cursor::new(d.console.clone())))
    }

    fn shutdown_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.set_state("shutdown_domain", uuid, DomainState::Shutoff)
    }

    fn destroy_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.set_state("destroy_domain", uuid, DomainState::Shutoff)
    }

    fn undefine_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.enter("undefine_domain", &uuid.to_string())?
            .domains
            .remove(uuid);
        Ok(())
    }

    fn suspend_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.set_state("suspend_domain", uuid, DomainState::Paused)
    }

    fn resume_domain(&self, uuid: &Uuid) -> Result<(), HostError> {
        self.set_state("resume_domain", uuid, DomainState::Running)
    }

    fn snapshot_create(
        &self,
        uuid: &Uuid,
        spec: &SnapshotSpec<'_>,
    ) -> Result<SavedSnapshot, HostError> {
        let mut s = self.enter("snapshot_create", spec.name)?;
        let d = domain_mut(&mut s, "snapshot_create", uuid)?;
        let state = if d.state == DomainState::Shutoff {
            "shutoff"
        } else {
            "running"
        };
        let saved =
            SavedSnapshot::from_record(super::xml::snapshot::full_description(spec.name, state));
        d.snapshots.insert(spec.name.to_string(), saved.clone());
        d.metadata.insert(spec.name.to_string());
        Ok(saved)
    }

    fn snapshot_revert(&self, uuid: &Uuid, saved: &SavedSnapshot) -> Result<(), HostError> {
        let mut s = self.enter("snapshot_revert", &uuid.to_string())?;
        let d = domain_mut(&mut s, "snapshot_revert", uuid)?;
        if !d.snapshots.values().any(|v| v == saved) {
            return Err(error(
                "snapshot_revert",
                &uuid.to_string(),
                HostErrorKind::NotFound,
                "no such snapshot",
            ));
        }
        Ok(())
    }

    fn snapshot_drop_unrecorded(&self, uuid: &Uuid, name: &str) -> Result<bool, HostError> {
        let mut s = self.enter("snapshot_drop_unrecorded", name)?;
        let d = domain_mut(&mut s, "snapshot_drop_unrecorded", uuid)?;
        if !d.metadata.remove(name) {
            return Ok(false);
        }
        d.snapshots.remove(name);
        Ok(true)
    }

    fn snapshot_forget(&self, uuid: &Uuid, name: &str) -> Result<(), HostError> {
        let mut s = self.enter("snapshot_forget", name)?;
        domain_mut(&mut s, "snapshot_forget", uuid)?
            .metadata
            .remove(name);
        Ok(())
    }

    fn snapshot_delete(&self, uuid: &Uuid, saved: &SavedSnapshot) -> Result<(), HostError> {
        let mut s = self.enter("snapshot_delete", &uuid.to_string())?;
        domain_mut(&mut s, "snapshot_delete", uuid)?
            .snapshots
            .retain(|_, v| v != saved);
        Ok(())
    }

    fn attach_disk(&self, uuid: &Uuid, disk: &DiskSpec, _live: bool) -> Result<(), HostError> {
        let mut s = self.enter("attach_disk", &disk.volume)?;
        domain_mut(&mut s, "attach_disk", uuid).map(drop)
    }

    fn detach_disk(&self, uuid: &Uuid, disk: &DiskSpec, _live: bool) -> Result<(), HostError> {
        let mut s = self.enter("detach_disk", &disk.volume)?;
        domain_mut(&mut s, "detach_disk", uuid).map(drop)
    }

    fn vmd_domains(&self) -> Result<Vec<VmdDomain>, HostError> {
        let s = self.enter("vmd_domains", "memory")?;
        Ok(s.domains
            .iter()
            .map(|(uuid, d)| VmdDomain {
                uuid: *uuid,
                name: d.name.clone(),
                vmd_id: uuid.to_string(),
                state: d.state,
            })
            .collect())
    }

    fn networks(&self) -> Result<Vec<String>, HostError> {
        drop(self.enter("networks", "memory")?);
        Ok(Vec::new())
    }
}

/// A pool of the memory host: always running, never full.
fn memory_pool(name: &str) -> PoolInfo {
    PoolInfo {
        name: name.to_string(),
        pool_type: "memory".to_string(),
        state: "running".to_string(),
        path: None,
        capacity_bytes: 0,
        allocation_bytes: 0,
        available_bytes: u64::MAX,
        access: None,
    }
}

impl MemoryHost {
    fn set_state(
        &self,
        call: &'static str,
        uuid: &Uuid,
        state: DomainState,
    ) -> Result<(), HostError> {
        let mut s = self.enter(call, &uuid.to_string())?;
        domain_mut(&mut s, call, uuid)?.state = state;
        Ok(())
    }
}
