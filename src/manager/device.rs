//! `create` (a blank container), `attach` (its volumes exist on the host) and `device
//! add/remove` (one device, with or without the running guest).

use serde::Serialize;

use super::deploy::spec::{disk_serial, disk_spec};
use super::rollback::NewVmd;
use super::{lock_vmd, pools, Error, StorageManager};
use crate::host::{DomainState, HostErrorKind};
use crate::vmd::catalog::{Catalog, CatalogError};
use crate::vmd::limits;
use crate::vmd::{
    now_rfc3339, Disk, DiskFormat, Firmware, Hardware, Kind, Network, PoolName, Role, State, Vmd,
    VmdId, VmdName, VolumeName, CATALOG_VERSION,
};

/// A blank VMD to create.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// Its name.
    pub name: VmdName,
    /// OS disk size in bytes.
    pub os_disk: u64,
    /// Data disk sizes in bytes.
    pub data_disks: Vec<u64>,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// The pool for its volumes; vmd's default pool when none.
    pub pool: Option<PoolName>,
}

/// A device to add.
#[derive(Debug, Clone)]
pub struct AddDeviceRequest {
    /// The instance.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Its role (`data` or `swap`).
    pub role: Role,
    /// Its pool; the OS disk's pool when none.
    pub pool: Option<PoolName>,
    /// Also attach it to the running guest.
    pub live: bool,
}

/// One device as `attach` found it.
#[derive(Debug, Clone, Serialize)]
pub struct AttachedDevice {
    /// The device id.
    pub id: String,
    /// Its pool.
    pub pool: PoolName,
    /// Its volume.
    pub volume: VolumeName,
    /// The volume's path on the host.
    pub path: String,
}

fn out_of_range(e: limits::OutOfRange) -> Error {
    Error::Request(e.to_string())
}

/// Refuses a request outside [`limits`] before anything is made: no pool, no volume, no
/// record.
fn check_create(req: &CreateRequest) -> Result<(), Error> {
    limits::vcpus(req.vcpus).map_err(out_of_range)?;
    limits::memory_mib(req.memory_mib).map_err(out_of_range)?;
    limits::disk_bytes("OS disk size", req.os_disk).map_err(out_of_range)?;
    for (n, size) in req.data_disks.iter().enumerate() {
        limits::disk_bytes(&format!("data disk {} size", n + 1), *size).map_err(out_of_range)?;
    }
    Ok(())
}

/// The first volume index of vmd's scheme not used by the VMD's disks.
fn free_index(vmd: &Vmd) -> usize {
    (0..)
        .find(|i| {
            !vmd.disks
                .iter()
                .any(|d| d.volume.as_str().contains(&format!("-d{i}.")))
        })
        .unwrap_or(vmd.disks.len())
}

impl StorageManager {
    /// Creates a blank instance with new, empty devices.
    pub async fn create(&self, req: CreateRequest) -> Result<Vmd, Error> {
        check_create(&req)?;
        let state_dir = self.config.state_dir.clone();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            if catalog.name_taken(req.name.as_str())? {
                return Err(CatalogError::NameTaken(req.name.to_string()).into());
            }
            let pool = match req.pool.clone() {
                Some(p) => p,
                None => pools::ensure_default_pool(host, &state_dir)?,
            };
            super::block::check_new_disk(host, &pool, "a new disk")?;
            let id = VmdId::new();
            let sizes = std::iter::once((Role::Os, req.os_disk))
                .chain(req.data_disks.iter().map(|s| (Role::Data, *s)));
            let mut disks: Vec<Disk> = Vec::new();
            let mut made = NewVmd::begin(host, &catalog, &id)?;
            for (index, (role, size)) in sizes.enumerate() {
                let volume = VolumeName::for_disk(&id, index, "qcow2");
                let info = host.create_volume(&pool, &volume, size, "qcow2", false)?;
                made.volume(pool.clone(), volume.clone());
                let disk_id = if role == Role::Os {
                    "os".to_string()
                } else {
                    format!("data{index}")
                };
                disks.push(Disk {
                    serial: Some(disk_serial(&id.uuid(), &disk_id)),
                    claimed: false,
                    id: disk_id,
                    role,
                    bus: "scsi".to_string(),
                    unit: index as u32,
                    capacity_bytes: size,
                    format: DiskFormat::Qcow2,
                    pool: pool.clone(),
                    volume,
                    path: info.path,
                    backing: None,
                });
            }
            let vmd = Vmd {
                version: CATALOG_VERSION,
                id,
                name: req.name.clone(),
                kind: Kind::Instance,
                state: State::Cloned,
                created: now_rfc3339(),
                parent: None,
                source: None,
                hardware: Hardware {
                    vcpus: req.vcpus,
                    memory_mib: req.memory_mib,
                    firmware: Firmware::Bios,
                    os_type: None,
                },
                networks: vec![Network {
                    name: "default".to_string(),
                    model: None,
                }],
                properties: Vec::new(),
                disks: disks.clone(),
                descriptor: None,
                deployment: None,
                snapshots: Vec::new(),
            };
            let lock = catalog.lock()?;
            catalog.insert(&vmd, &lock)?;
            drop(lock);
            made.commit();
            Ok(vmd)
        })
        .await
    }

    /// Makes sure every volume of a VMD exists in its pool on the host (starting vmd's
    /// default pool if it is defined but stopped) and reports where each one is.
    pub async fn attach(&self, name: &str) -> Result<Vec<AttachedDevice>, Error> {
        let state_dir = self.config.state_dir.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let vmd = Catalog::open(&state_dir)?.get(&name)?;
            let mut out = Vec::new();
            let mut missing = Vec::new();
            let default = pools::default_pool(host, &state_dir)?;
            for d in &vmd.disks {
                if d.pool == default.name {
                    pools::ensure_default_pool(host, &state_dir)?;
                } else {
                    host.pool(&d.pool)?;
                }
                match host.volume(&d.pool, &d.volume) {
                    Ok(info) => out.push(AttachedDevice {
                        id: d.id.clone(),
                        pool: d.pool.clone(),
                        volume: d.volume.clone(),
                        path: info.path,
                    }),
                    Err(e) if e.kind() == HostErrorKind::NotFound => {
                        missing.push(format!("{}/{}", d.pool, d.volume));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if !missing.is_empty() {
                return Err(Error::NotFound(format!(
                    "{}: volumes missing on the host: {}",
                    vmd.name,
                    missing.join(", ")
                )));
            }
            Ok(out)
        })
        .await
    }

    /// Adds a new blank device to an instance, and to its domain when deployed.
    pub async fn add_device(&self, req: AddDeviceRequest) -> Result<Disk, Error> {
        limits::disk_bytes("device size", req.size).map_err(out_of_range)?;
        let state_dir = self.config.state_dir.clone();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (_lock, mut vmd) = lock_vmd(&catalog, &req.name, false)?;
            if vmd.kind == Kind::Master {
                return Err(Error::Request(format!(
                    "{} is a master: it is read-only",
                    vmd.name
                )));
            }
            let index = free_index(&vmd);
            let unit = limits::next_unit(vmd.disks.iter().map(|d| d.unit)).ok_or_else(|| {
                Error::Request(format!(
                    "{} has no free SCSI unit (units 0 to {} are taken)",
                    vmd.name,
                    limits::MAX_SCSI_UNIT
                ))
            })?;
            let pool = req
                .pool
                .clone()
                .or_else(|| vmd.disks.first().map(|d| d.pool.clone()));
            let pool = match pool {
                Some(p) => p,
                None => pools::ensure_default_pool(host, &state_dir)?,
            };
            super::block::check_new_disk(host, &pool, "a new disk")?;
            let volume = VolumeName::for_disk(&vmd.id, index, "qcow2");
            let info = host.create_volume(&pool, &volume, req.size, "qcow2", false)?;
            let id = format!("disk{index}");
            let disk = Disk {
                serial: Some(disk_serial(&vmd.id.uuid(), &id)),
                claimed: false,
                id,
                role: req.role,
                bus: "scsi".to_string(),
                unit,
                capacity_bytes: req.size,
                format: DiskFormat::Qcow2,
                pool: pool.clone(),
                volume: volume.clone(),
                path: info.path,
                backing: None,
            };
            if vmd.state == State::Deployed {
                let live = req.live
                    && matches!(
                        host.domain_state(&vmd.id.uuid())?,
                        Some(DomainState::Running | DomainState::Paused)
                    );
                if let Err(e) = host.attach_disk(&vmd.id.uuid(), &disk_spec(&vmd, &disk), live) {
                    let _ = host.delete_volume(&pool, &volume);
                    return Err(e.into());
                }
            }
            vmd.disks.push(disk.clone());
            catalog.write(&vmd)?;
            Ok(disk)
        })
        .await
    }

    /// Removes a device from an instance (and its domain), deleting its volume.
    pub async fn remove_device(&self, name: &str, device: &str, live: bool) -> Result<(), Error> {
        let state_dir = self.config.state_dir.clone();
        let name = name.to_string();
        let device = device.to_string();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (_lock, mut vmd) = lock_vmd(&catalog, &name, false)?;
            let pos = vmd
                .disks
                .iter()
                .position(|d| d.id == device)
                .ok_or_else(|| Error::NotFound(format!("{} has no device {device}", vmd.name)))?;
            let disk = vmd.disks[pos].clone();
            if disk.role == Role::Os {
                return Err(Error::Request(format!(
                    "{device} is the OS disk of {}; it cannot be removed",
                    vmd.name
                )));
            }
            if vmd.state == State::Deployed {
                let running = matches!(
                    host.domain_state(&vmd.id.uuid())?,
                    Some(DomainState::Running | DomainState::Paused)
                );
                if running && !live {
                    return Err(Error::Busy(format!(
                        "{} is running: remove {device} with --live, or stop it first",
                        vmd.name
                    )));
                }
                host.detach_disk(&vmd.id.uuid(), &disk_spec(&vmd, &disk), running)?;
            }
            vmd.disks.remove(pos);
            catalog.write(&vmd)?;
            // A claimed (pre-existing) volume is released by the record alone.
            if !disk.claimed {
                host.delete_volume(&disk.pool, &disk.volume)?;
            }
            Ok(())
        })
        .await
    }
}
