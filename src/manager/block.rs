//! Pools of raw block volumes (LUNs, logical volumes, whole disks): what vmd refuses there
//! up front, and how a full clone claims a pre-existing volume and writes a disk into it.
//!
//! Such a pool holds raw volumes only: no qcow2 overlay (so no linked clone) and no internal
//! snapshot. Where libvirt cannot create volumes in it (`iscsi`, `iscsi-direct`, `scsi`), a
//! disk takes a volume that is there already and free (no VMD in the catalog lists it),
//! recorded as `claimed`: deleting the VMD releases it, never deletes it. vmd writes into it
//! only where it has a writer of its own: QEMU's iSCSI client for `iscsi-direct` LUNs.
//!
//! Every check here runs before the operation changes anything. This module must not
//! record anything in the catalog.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{image_format, Error};
use crate::host::{Host, IscsiLun, PoolAccess, PoolCaps, PoolWriter};
use crate::image::qemu_img::QemuImg;
use crate::vmd::catalog::Catalog;
use crate::vmd::lock::VmdLock;
use crate::vmd::{Disk, PoolName, VmdId, VolumeName};

/// The file pool kinds a refusal points to.
const FILE_POOLS: &str = "a file pool (dir, fs, netfs)";

/// Each pool's facts, asked once per operation.
#[derive(Default)]
pub(super) struct PoolKinds(BTreeMap<PoolName, PoolCaps>);

impl PoolKinds {
    /// The facts of `pool`.
    pub(super) fn of(&mut self, host: &dyn Host, pool: &PoolName) -> Result<&PoolCaps, Error> {
        if !self.0.contains_key(pool) {
            let caps = host.pool_caps(pool)?;
            self.0.insert(pool.clone(), caps);
        }
        self.0
            .get(pool)
            .ok_or_else(|| Error::Task(format!("pool {pool} vanished from the cache")))
    }
}

/// Refuses a linked clone onto a pool of raw volumes.
pub(super) fn check_linked(pool: &PoolName, caps: &PoolCaps) -> Result<(), Error> {
    if caps.raw_only {
        return Err(Error::Request(format!(
            "a linked clone cannot go to pool {pool} ({}), which holds raw volumes only and \
             so no qcow2 overlay: clone with --full, or place the disk on another pool",
            caps.pool_type
        )));
    }
    Ok(())
}

/// Refuses a new blank disk (`create`, `device add`) on a pool of raw volumes: vmd makes
/// new disks as qcow2 volumes.
pub(super) fn check_new_disk(host: &dyn Host, pool: &PoolName, what: &str) -> Result<(), Error> {
    let caps = host.pool_caps(pool)?;
    if caps.raw_only {
        return Err(Error::Request(format!(
            "{what} cannot go to pool {pool} ({}), which holds raw volumes only: vmd makes new \
             disks as qcow2 volumes; place it on {FILE_POOLS}",
            caps.pool_type
        )));
    }
    Ok(())
}

/// The first of `disks` on a pool of raw volumes, with that pool's kind.
fn first_raw_only<'d>(
    host: &dyn Host,
    kinds: &mut PoolKinds,
    disks: &'d [Disk],
) -> Result<Option<(&'d Disk, String)>, Error> {
    for d in disks {
        let caps = kinds.of(host, &d.pool)?;
        if caps.raw_only {
            return Ok(Some((d, caps.pool_type.clone())));
        }
    }
    Ok(None)
}

/// Refuses a snapshot of a VMD with a disk on a pool of raw volumes, naming the disk.
pub(super) fn check_snapshot(
    host: &dyn Host,
    kinds: &mut PoolKinds,
    name: &str,
    disks: &[Disk],
) -> Result<(), Error> {
    match first_raw_only(host, kinds, disks)? {
        Some((d, kind)) => Err(Error::Request(format!(
            "{name} cannot be snapshotted: its disk {} is on pool {} ({kind}), which holds raw \
             volumes only and so no internal snapshot; snapshots need every disk on {FILE_POOLS}",
            d.id, d.pool
        ))),
        None => Ok(()),
    }
}

/// Refuses capturing a VMD as a master when a disk is on a pool where the master's qcow2
/// volume cannot be made (the capture copies each disk into its own pool).
pub(super) fn check_capture(
    host: &dyn Host,
    kinds: &mut PoolKinds,
    name: &str,
    disks: &[Disk],
) -> Result<(), Error> {
    match first_raw_only(host, kinds, disks)? {
        Some((d, kind)) => Err(Error::Request(format!(
            "{name} cannot be captured as a master: its disk {} is on pool {} ({kind}), which \
             cannot hold the master's qcow2 copy; undeploy without --as-master",
            d.id, d.pool
        ))),
        None => Ok(()),
    }
}

/// A pre-existing volume taken for one disk: held (by a lock on an id derived from the pool
/// and volume) until the operation has recorded it or given up.
pub(super) struct Claim {
    /// Its pool.
    pub pool: PoolName,
    /// Its name in the pool.
    pub volume: VolumeName,
    /// Its path as libvirt reports it.
    pub path: String,
    /// Its size as QEMU (and so the guest) sees it.
    pub size: u64,
    lun: IscsiLun,
    lock: Option<VmdLock>,
}

impl Claim {
    /// Writes disk `d` (read as its recorded format) onto the volume, and zeroes the rest.
    pub(super) fn write(&self, qemu_img: &QemuImg, d: &Disk) -> Result<(), Error> {
        qemu_img.write_lun(
            Path::new(&d.path),
            image_format(d.format),
            d.capacity_bytes,
            &self.lun,
            self.size,
        )?;
        Ok(())
    }
}

/// Once the claim is recorded in the catalog (or abandoned), its lock file goes.
impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            let _ = lock.remove();
        }
    }
}

/// Takes a free pre-existing volume of `pool` for a full copy of disk `d`: checks that the
/// pool is one vmd writes into, that vmd reads `d`'s volume file here, and that a free volume
/// of at least `d`'s capacity exists. `taken` holds the volumes this operation claimed
/// already.
pub(super) fn claim(
    host: &dyn Host,
    catalog: &Catalog,
    qemu_img: &QemuImg,
    target: (&PoolName, &PoolCaps),
    d: &Disk,
    taken: &BTreeSet<(PoolName, VolumeName)>,
) -> Result<Claim, Error> {
    let (pool, caps) = target;
    let kind = &caps.pool_type;
    let portal = match &caps.writer {
        Some(PoolWriter::Iscsi(portal)) => portal,
        None => {
            return Err(Error::Request(format!(
                "a full clone cannot go to pool {pool} ({kind}): vmd writes disks into \
                 pre-existing raw volumes of iscsi-direct pools only; place the disk on {FILE_POOLS}"
            )))
        }
    };
    if host.pool_access(&d.pool)? == PoolAccess::Streams {
        return Err(Error::Request(format!(
            "a full clone onto pool {pool} ({kind}) reads disk {} from its file, but pool {} is \
             reached only through libvirt: clone it onto {FILE_POOLS} instead",
            d.id, d.pool
        )));
    }
    let used: BTreeSet<(PoolName, VolumeName)> = catalog
        .list()?
        .into_iter()
        .flat_map(|v| v.disks.into_iter().map(|d| (d.pool, d.volume)))
        .chain(taken.iter().cloned())
        .collect();
    let mut seen = Vec::new();
    for vol in host.list_volumes(pool)? {
        let Some(lun) = crate::host::caps::iscsi_lun_of_path(&vol.path) else {
            continue;
        };
        let Ok(volume) = vol.name.parse::<VolumeName>() else {
            continue;
        };
        // LUN 0 of many targets is the controller, with no capacity.
        if vol.capacity_bytes == 0 || used.contains(&(pool.clone(), volume.clone())) {
            continue;
        }
        let Some(lock) = catalog.try_lock_vmd(&claim_id(pool, &volume))? else {
            continue;
        };
        // Re-read under the lock: a clone that claimed it and finished meanwhile is listed.
        let listed = catalog.list()?.iter().any(|v| {
            v.disks
                .iter()
                .any(|x| x.pool == *pool && x.volume == volume)
        });
        if listed {
            continue;
        }
        let lun = IscsiLun {
            portal: portal.clone(),
            lun,
        };
        let size = qemu_img.lun_size(&lun)?;
        let claim = Claim {
            pool: pool.clone(),
            volume,
            path: vol.path,
            size,
            lun,
            lock: Some(lock),
        };
        if size >= d.capacity_bytes {
            return Ok(claim);
        }
        seen.push(format!("{} of {size} bytes", claim.volume));
    }
    let free = if seen.is_empty() {
        "none is free".to_string()
    } else {
        format!("free: {}", seen.join(", "))
    };
    Err(Error::Request(format!(
        "pool {pool} ({kind}) has no free volume of at least {} bytes for disk {} ({free}): \
         place the disk on another pool",
        d.capacity_bytes, d.id
    )))
}

/// The lock id that marks `volume` of `pool` as being claimed: a UUID from their SHA-256.
fn claim_id(pool: &PoolName, volume: &VolumeName) -> VmdId {
    let digest = Sha256::digest(format!("vmd-claim\0{pool}\0{volume}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version-4-shaped UUID, so that nothing reads it as a name-based one.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes)
        .to_string()
        .parse()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(kind: &str) -> PoolCaps {
        crate::host::caps::pool_caps(kind, "").unwrap()
    }

    #[test]
    fn check_linked_raw_pool_names_pool_type_and_alternative() {
        let pool: PoolName = "lun".parse().unwrap();
        let err = check_linked(&pool, &caps("logical")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("pool lun (logical)"), "{text}");
        assert!(text.contains("--full"), "{text}");
        assert!(check_linked(&pool, &caps("dir")).is_ok());
    }

    #[test]
    fn claim_id_is_stable_per_volume() {
        let pool: PoolName = "lun".parse().unwrap();
        let a: VolumeName = "unit:0:0:1".parse().unwrap();
        let b: VolumeName = "unit:0:0:2".parse().unwrap();
        assert_eq!(claim_id(&pool, &a), claim_id(&pool, &a));
        assert_ne!(claim_id(&pool, &a), claim_id(&pool, &b));
    }
}
