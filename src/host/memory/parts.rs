//! The in-memory host's helpers: lookups, volume creation and errors.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{MemoryDomain, MemoryVolume, State};
use crate::host::{HostError, HostErrorKind, NewVolume, VolumeInfo};
use crate::vmd::PoolName;

pub(super) fn error(
    call: &'static str,
    object: &str,
    kind: HostErrorKind,
    message: &str,
) -> HostError {
    HostError::Call {
        call,
        object: object.to_string(),
        message: message.to_string(),
        kind,
    }
}

pub(super) fn path_of(pool: &str, name: &str) -> String {
    format!("/memory/{pool}/{name}")
}

pub(super) fn pool_mut<'a>(
    s: &'a mut State,
    call: &'static str,
    pool: &PoolName,
) -> Result<&'a mut BTreeMap<String, MemoryVolume>, HostError> {
    s.pools
        .get_mut(pool.as_str())
        .ok_or_else(|| error(call, pool.as_str(), HostErrorKind::NotFound, "no such pool"))
}

pub(super) fn info(pool: &str, name: &str, v: &MemoryVolume) -> VolumeInfo {
    VolumeInfo {
        name: name.to_string(),
        path: path_of(pool, name),
        capacity_bytes: v.capacity,
        allocation_bytes: v.data.len() as u64,
    }
}

pub(super) fn create(
    s: &mut State,
    call: &'static str,
    to: &NewVolume<'_>,
    capacity: u64,
    backing: Option<String>,
) -> Result<VolumeInfo, HostError> {
    if s.kinds
        .get(to.pool.as_str())
        .is_some_and(|k| !k.creates_volumes)
    {
        return Err(error(
            call,
            to.name.as_str(),
            HostErrorKind::Other,
            "this pool type does not support volume creation",
        ));
    }
    let vols = pool_mut(s, call, to.pool)?;
    if vols.contains_key(to.name.as_str()) {
        return Err(error(
            call,
            to.name.as_str(),
            HostErrorKind::AlreadyExists,
            "volume exists",
        ));
    }
    let v = MemoryVolume {
        format: to.format.to_string(),
        capacity,
        backing,
        readonly: to.readonly,
        data: Vec::new(),
    };
    let made = info(to.pool.as_str(), to.name.as_str(), &v);
    vols.insert(to.name.to_string(), v);
    Ok(made)
}

pub(super) fn domain_mut<'a>(
    s: &'a mut State,
    call: &'static str,
    uuid: &Uuid,
) -> Result<&'a mut MemoryDomain, HostError> {
    s.domains.get_mut(uuid).ok_or_else(|| {
        error(
            call,
            &uuid.to_string(),
            HostErrorKind::NotFound,
            "no such domain",
        )
    })
}
