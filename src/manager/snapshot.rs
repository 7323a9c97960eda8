//! Snapshots of a whole VMD: every disk at one instant, and with `--memory` the guest's
//! memory too. They are qcow2 internal snapshots, so backing chains never grow.
//!
//! A running domain is snapshotted through libvirt (QEMU pauses the guest while it saves the
//! disks' state and its memory); vmd records libvirt's description, then drops libvirt's own
//! metadata, so the domain can be undefined and redefined freely (and a snapshot vmd was
//! killed before recording is still libvirt's to find and remove on a retry). A domain that
//! is off is snapshotted disk by disk with `qemu-img` where vmd reaches the volumes (atomic,
//! as nothing runs), else by libvirt on its host in the same way as a running one.

use serde::Serialize;

use super::deploy::{stop_domain, Status, StopOptions};
use super::{fault, lock_vmd, pools, Error, StorageManager};
use crate::host::{DomainState, Host, SavedSnapshot, SnapshotSpec};
use crate::image::qemu_img::QemuImg;
use crate::image::ImageFormat;
use crate::vmd::catalog::Catalog;
use crate::vmd::{now_rfc3339, DiskFormat, Kind, Snapshot, State, Vmd, VmdName};

/// One snapshot, as `vmd snapshots` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    /// Its name.
    pub name: String,
    /// When it was taken.
    pub created: String,
    /// Whether reverting restores memory.
    pub memory: bool,
}

impl From<&Snapshot> for SnapshotInfo {
    fn from(s: &Snapshot) -> Self {
        Self {
            name: s.name.clone(),
            created: s.created.clone(),
            memory: s.memory,
        }
    }
}

fn running(host: &dyn Host, vmd: &Vmd) -> Result<bool, Error> {
    if vmd.state != State::Deployed {
        return Ok(false);
    }
    Ok(matches!(
        host.domain_state(&vmd.id.uuid())?,
        Some(DomainState::Running | DomainState::Paused)
    ))
}

/// Whether vmd reaches every disk's volume file directly.
/// Each pool is probed once, however many disks it holds.
fn all_local(host: &dyn Host, vmd: &Vmd) -> Result<bool, Error> {
    let pools: std::collections::BTreeSet<_> = vmd.disks.iter().map(|d| &d.pool).collect();
    for pool in pools {
        if host.pool_access(pool)? == crate::host::PoolAccess::Streams {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The host's record of a snapshot taken through it, as the catalog keeps it.
fn saved_of(snap: &Snapshot) -> Option<SavedSnapshot> {
    snap.libvirt_xml.clone().map(SavedSnapshot::from_record)
}

fn check_snapshottable(vmd: &Vmd) -> Result<(), Error> {
    if vmd.kind == Kind::Master {
        return Err(Error::Request(format!(
            "{} is a master: masters are read-only and have no snapshots",
            vmd.name
        )));
    }
    if let Some(d) = vmd.disks.iter().find(|d| d.format != DiskFormat::Qcow2) {
        return Err(Error::Request(format!(
            "disk {} of {} is {}: snapshots need qcow2 disks",
            d.id,
            vmd.name,
            d.format.as_str()
        )));
    }
    Ok(())
}

/// Takes snapshot `snap` of every disk of a VMD whose domain is off, all or none. A snapshot
/// of that name already on a disk (and not in the catalog, which the caller checked) is the
/// leftover of an interrupted earlier attempt: it is replaced, so a retry converges.
fn create_offline(qemu_img: &QemuImg, vmd: &Vmd, snap: &str) -> Result<(), Error> {
    let mut done = Vec::new();
    for d in &vmd.disks {
        let path = std::path::Path::new(&d.path);
        let result = qemu_img
            .snapshot_list(path, ImageFormat::Qcow2)
            .and_then(|present| {
                if present.iter().any(|p| p == snap) {
                    qemu_img.snapshot_delete(path, ImageFormat::Qcow2, snap)?;
                }
                qemu_img.snapshot_create(path, ImageFormat::Qcow2, snap)
            });
        if let Err(e) = result {
            delete_offline(qemu_img, &done, snap);
            return Err(e.into());
        }
        done.push(path);
    }
    Ok(())
}

/// Removes snapshot `snap` from each of `paths`, as far as it goes (a rollback).
fn delete_offline(qemu_img: &QemuImg, paths: &[&std::path::Path], snap: &str) {
    for p in paths {
        let _ = qemu_img.snapshot_delete(p, ImageFormat::Qcow2, snap);
    }
}

/// Applies snapshot `name` on every disk of a VMD whose domain is off.
fn apply_offline(qemu_img: &QemuImg, vmd: &Vmd, name: &str) -> Result<(), Error> {
    for d in &vmd.disks {
        qemu_img.snapshot_apply(std::path::Path::new(&d.path), ImageFormat::Qcow2, name)?;
    }
    Ok(())
}

impl StorageManager {
    /// Snapshots every disk of an instance at one instant (and its memory, with `memory`).
    pub async fn snapshot(
        &self,
        name: &str,
        snapshot: Option<String>,
        memory: bool,
    ) -> Result<SnapshotInfo, Error> {
        let state_dir = self.config.state_dir.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (_lock, mut vmd) = lock_vmd(&catalog, &name, false)?;
            let mut kinds = super::block::PoolKinds::default();
            super::block::check_snapshot(host, &mut kinds, vmd.name.as_str(), &vmd.disks)?;
            check_snapshottable(&vmd)?;
            let snap = match snapshot {
                Some(s) => s,
                None => format!("snap{}", vmd.snapshots.len() + 1),
            };
            // Snapshot names reach qemu-img and libvirt: same rules as VMD names.
            snap.parse::<VmdName>()
                .map_err(|e| Error::Request(e.to_string().replace("VMD name", "snapshot name")))?;
            if vmd.snapshots.iter().any(|s| s.name == snap) {
                return Err(Error::Busy(format!(
                    "{} already has a snapshot named {snap}",
                    vmd.name
                )));
            }
            // A running domain is snapshotted by libvirt. A stopped one is snapshotted here
            // with qemu-img where vmd reaches its volumes (a retry after a crash then finds
            // and replaces a half-made snapshot), else by libvirt on its host, which runs
            // qemu-img there.
            let through_libvirt = vmd.state == State::Deployed
                && (running(host, &vmd)? || (!memory && !all_local(host, &vmd)?));
            let saved = if through_libvirt {
                let description = format!("vmd snapshot of {}", vmd.name);
                let spec = SnapshotSpec {
                    name: &snap,
                    description: &description,
                };
                // A snapshot of this name that libvirt finished but vmd never recorded (the
                // connection dropped, vmd was killed before its catalog write) still has
                // libvirt's metadata and is not the user's: it is removed, data included.
                host.snapshot_drop_unrecorded(&vmd.id.uuid(), &snap)?;
                Some(host.snapshot_create(&vmd.id.uuid(), &spec)?)
            } else {
                if memory {
                    return Err(Error::Request(format!(
                        "{} is not running: there is no memory to capture",
                        vmd.name
                    )));
                }
                pools::require_local(
                    host,
                    vmd.disks.iter().map(|d| &d.pool),
                    "a snapshot of a stopped instance",
                    "start it and snapshot it running",
                )?;
                create_offline(&super::qemu_img()?, &vmd, &snap)?;
                None
            };
            let record = Snapshot {
                name: snap,
                created: now_rfc3339(),
                memory: memory && saved.is_some(),
                libvirt_xml: saved.as_ref().map(|s| s.as_record().to_string()),
            };
            let info = SnapshotInfo::from(&record);
            vmd.snapshots.push(record.clone());
            let committed = fault::point("snapshot.taken").and_then(|()| Ok(catalog.write(&vmd)?));
            if let Err(e) = committed {
                // Not recorded, so not taken: remove it from the disks again.
                match &saved {
                    Some(_) => {
                        // libvirt still holds its metadata: removes the snapshot whole.
                        let _ = host.snapshot_drop_unrecorded(&vmd.id.uuid(), &record.name);
                    }
                    None => {
                        let paths: Vec<_> = vmd
                            .disks
                            .iter()
                            .map(|d| std::path::Path::new(&d.path))
                            .collect();
                        delete_offline(&super::qemu_img()?, &paths, &record.name);
                    }
                }
                return Err(e);
            }
            if saved.is_some() {
                // Recorded: libvirt's metadata is no longer needed. Should dropping it fail,
                // it only lingers until the domain is undefined (which drops it too).
                let _ = host.snapshot_forget(&vmd.id.uuid(), &info.name);
            }
            Ok(info)
        })
        .await
    }

    /// The snapshots of a VMD, oldest first.
    pub async fn snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>, Error> {
        let vmd = self.catalog()?.get(name)?;
        Ok(vmd.snapshots.iter().map(SnapshotInfo::from).collect())
    }

    /// Reverts every disk (and, for a snapshot with memory, the running guest) to a
    /// snapshot, whether the VM runs or not. A disk-only revert leaves the VM off.
    pub async fn revert(&self, name: &str, snapshot: &str) -> Result<Status, Error> {
        let state_dir = self.config.state_dir.clone();
        let name = name.to_string();
        let snapshot = snapshot.to_string();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (_lock, vmd) = lock_vmd(&catalog, &name, false)?;
            revert_locked(host, &vmd, &snapshot)
        })
        .await
    }

    /// Deletes a snapshot. The disks' current state is untouched: deleting a snapshot never
    /// loses data.
    pub async fn delete_snapshot(&self, name: &str, snapshot: &str) -> Result<(), Error> {
        let state_dir = self.config.state_dir.clone();
        let name = name.to_string();
        let snapshot = snapshot.to_string();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (_lock, mut vmd) = lock_vmd(&catalog, &name, false)?;
            let Some(pos) = vmd.snapshots.iter().position(|s| s.name == snapshot) else {
                return Ok(());
            };
            let snap = vmd.snapshots[pos].clone();
            let defined = vmd.state == State::Deployed;
            if defined && snap.libvirt_xml.is_some() || running(host, &vmd)? {
                match saved_of(&snap) {
                    Some(saved) => host.snapshot_delete(&vmd.id.uuid(), &saved)?,
                    None => {
                        return Err(Error::Busy(format!(
                            "snapshot {snapshot} was taken while {} was off: stop it to delete \
                             the snapshot",
                            vmd.name
                        )))
                    }
                }
            } else {
                pools::require_local(
                    host,
                    vmd.disks.iter().map(|d| &d.pool),
                    "deleting a snapshot of an instance without a domain",
                    "deploy it first",
                )?;
                let qemu_img = super::qemu_img()?;
                for d in &vmd.disks {
                    let path = std::path::Path::new(&d.path);
                    let present = qemu_img.snapshot_list(path, ImageFormat::Qcow2)?;
                    if present.contains(&snap.name) {
                        qemu_img.snapshot_delete(path, ImageFormat::Qcow2, &snap.name)?;
                    }
                }
            }
            vmd.snapshots.remove(pos);
            catalog.write(&vmd)?;
            Ok(())
        })
        .await
    }
}

/// `revert` once the caller holds the VMD's lock and has re-read `vmd`.
pub(super) fn revert_locked(host: &dyn Host, vmd: &Vmd, snapshot: &str) -> Result<Status, Error> {
    check_snapshottable(vmd)?;
    let snap = vmd
        .snapshots
        .iter()
        .find(|s| s.name == snapshot)
        .ok_or_else(|| Error::NotFound(format!("{} has no snapshot named {snapshot}", vmd.name)))?;
    let defined = vmd.state == State::Deployed;
    match (saved_of(snap), defined) {
        (Some(saved), true) if snap.memory => host.snapshot_revert(&vmd.id.uuid(), &saved)?,
        (Some(saved), true) if saved.taken_while_off() => {
            // Taken while stopped, so disks only: the current state is being discarded, no
            // need to ask the guest; libvirt reverts the disks on the host and leaves the
            // domain off. (A snapshot of a running guest recorded without --memory holds
            // the memory too; reverting it through libvirt would run the guest, so it
            // takes the path below.)
            stop_domain(
                host,
                vmd,
                StopOptions {
                    force: true,
                    ..StopOptions::default()
                },
                true,
            )?;
            host.snapshot_revert(&vmd.id.uuid(), &saved)?;
        }
        _ => {
            pools::require_local(
                host,
                vmd.disks.iter().map(|d| &d.pool),
                "reverting to a disk-only snapshot",
                "revert to a snapshot taken with --memory",
            )?;
            if defined {
                // The current state is being discarded: no need to ask the guest.
                stop_domain(
                    host,
                    vmd,
                    StopOptions {
                        force: true,
                        ..StopOptions::default()
                    },
                    true,
                )?;
            }
            apply_offline(&super::qemu_img()?, vmd, &snap.name)?;
        }
    }
    let domain = if defined {
        host.domain_state(&vmd.id.uuid())?
    } else {
        None
    };
    Ok(Status {
        name: vmd.name.to_string(),
        state: super::deploy::live_state(vmd, domain),
        domain: vmd
            .deployment
            .as_ref()
            .filter(|_| defined)
            .map(|d| d.domain.clone()),
    })
}
