//! `clone`: a master becomes an instance, each device a linked (qcow2 overlay over the
//! master's volume, backing format declared) or full copy (read as the master's recorded
//! format, see `copy`), in the pool its role calls for.

use std::collections::BTreeMap;

use serde::Serialize;

use super::block::{self, Claim, PoolKinds};
use super::copy::{copy_disk, CopyMode, CopyTarget, Reach};
use super::deploy::spec::disk_serial;
use super::rollback::NewVmd;
use super::{fault, lock_vmd, Error, StorageManager};

use crate::vmd::catalog::{Catalog, CatalogError};
use crate::vmd::{
    now_rfc3339, Disk, DiskFormat, Kind, PoolName, Role, State, Vmd, VmdId, VmdName, VolumeName,
    CATALOG_VERSION,
};

/// Which pool each device goes to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The pool for every role not named in `roles`; by default each device stays in the
    /// pool its master device is in.
    pub default: Option<PoolName>,
    /// A pool per role.
    pub roles: BTreeMap<String, PoolName>,
}

impl Placement {
    /// The pool for a device of `role` whose master volume is in `master_pool`.
    pub fn pool_for(&self, role: Role, master_pool: &PoolName) -> PoolName {
        let key = role_word(role);
        self.roles
            .get(key)
            .or(self.default.as_ref())
            .unwrap_or(master_pool)
            .clone()
    }
}

/// The word for a role, as `--place ROLE=POOL` and the JSON output spell it.
pub fn role_word(role: Role) -> &'static str {
    match role {
        Role::Os => "os",
        Role::Data => "data",
        Role::Swap => "swap",
    }
}

/// A clone to make.
#[derive(Debug, Clone)]
pub struct CloneRequest {
    /// The master, by name or id.
    pub master: String,
    /// The new instance's name.
    pub name: VmdName,
    /// Full copies instead of linked overlays.
    pub full: bool,
    /// Where each device goes.
    pub placement: Placement,
}

impl StorageManager {
    /// Clones a master into a new instance. The master's lock is held shared for the whole
    /// clone, so clones of one master run side by side while a delete of the master waits
    /// for them (and then finds them and refuses).
    pub async fn clone_vmd(&self, req: CloneRequest) -> Result<Vmd, Error> {
        let state_dir = self.config.state_dir.clone();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (_master_lock, master) = lock_vmd(&catalog, &req.master, true)?;
            if master.kind != Kind::Master {
                return Err(Error::Request(format!(
                    "{} is an instance, not a master: clone a master (or capture this one with \
                     `undeploy --as-master`)",
                    master.name
                )));
            }
            if catalog.name_taken(req.name.as_str())? {
                return Err(CatalogError::NameTaken(req.name.to_string()).into());
            }
            let id = VmdId::new();
            let mut qemu_img = None;
            let claims = plan_claims(host, &catalog, &mut qemu_img, &req, &master.disks)?;
            let mut created = NewVmd::begin(host, &catalog, &id)?;
            let mut disks = Vec::with_capacity(master.disks.len());
            let mut reach = Reach::default();
            for (index, d) in master.disks.iter().enumerate() {
                let pool = req.placement.pool_for(d.role, &d.pool);
                if let Some(claim) = &claims[index] {
                    let qemu_img = qemu_img.get_or_insert(super::qemu_img()?);
                    claim.write(qemu_img, d)?;
                    fault::point("clone.volume-created")?;
                    disks.push(claimed_disk(&id, d, claim));
                    continue;
                }
                let volume = VolumeName::for_disk(&id, index, DiskFormat::Qcow2.as_str());
                let info = if req.full {
                    // A master holds no snapshots, so a standalone qcow2 one is copied byte
                    // for byte; any other is converted, read as its recorded format.
                    let qemu_img = qemu_img.get_or_insert(super::qemu_img()?);
                    let to = CopyTarget {
                        pool: &pool,
                        volume: &volume,
                        readonly: false,
                    };
                    copy_disk(
                        host,
                        qemu_img,
                        &mut reach,
                        &mut created,
                        d,
                        &to,
                        CopyMode::Bytes,
                    )?
                } else {
                    let info = host.create_overlay(
                        &pool,
                        &volume,
                        d.capacity_bytes,
                        &d.path,
                        d.format.as_str(),
                    )?;
                    created.volume(pool.clone(), volume.clone());
                    info
                };
                fault::point("clone.volume-created")?;
                disks.push(Disk {
                    id: d.id.clone(),
                    role: d.role,
                    bus: d.bus.clone(),
                    unit: d.unit,
                    capacity_bytes: d.capacity_bytes,
                    format: DiskFormat::Qcow2,
                    pool,
                    volume,
                    path: info.path,
                    backing: (!req.full).then(|| d.path.clone()),
                    serial: Some(disk_serial(&id.uuid(), &d.id)),
                    claimed: false,
                });
            }
            let vmd = Vmd {
                version: CATALOG_VERSION,
                id,
                name: req.name.clone(),
                kind: Kind::Instance,
                state: State::Cloned,
                created: now_rfc3339(),
                parent: Some(master.id),
                source: None,
                hardware: master.hardware.clone(),
                networks: master.networks.clone(),
                properties: master.properties.clone(),
                disks,
                descriptor: None,
                deployment: None,
                snapshots: Vec::new(),
            };
            fault::point("clone.before-commit")?;
            // No delete of the master can have run meanwhile: it needs the master's lock
            // exclusively, so its volumes are still there under the overlays.
            let lock = catalog.lock()?;
            catalog.insert(&vmd, &lock)?;
            drop(lock);
            created.commit();
            drop(claims);
            fault::point("clone.committed")?;
            Ok(vmd)
        })
        .await
    }
}

/// Checks, before anything is made, every disk placed on a pool of raw volumes: a linked
/// clone there is refused; a full one claims a free pre-existing volume (`None` for a disk
/// that goes to a pool where vmd makes a new volume).
fn plan_claims(
    host: &dyn crate::host::Host,
    catalog: &Catalog,
    qemu_img: &mut Option<crate::image::qemu_img::QemuImg>,
    req: &CloneRequest,
    master: &[Disk],
) -> Result<Vec<Option<Claim>>, Error> {
    let mut kinds = PoolKinds::default();
    let mut claims = Vec::with_capacity(master.len());
    let mut taken = std::collections::BTreeSet::new();
    for d in master {
        let pool = req.placement.pool_for(d.role, &d.pool);
        let caps = kinds.of(host, &pool)?.clone();
        if !req.full {
            block::check_linked(&pool, &caps)?;
            claims.push(None);
            continue;
        }
        if !caps.raw_only {
            claims.push(None);
            continue;
        }
        if caps.creates_volumes {
            return Err(Error::Request(format!(
                "a full clone cannot go to pool {pool} ({}): vmd copies disks into new qcow2 \
                 volumes, which this pool cannot hold; place the disk on a file pool (dir, fs, \
                 netfs)",
                caps.pool_type
            )));
        }
        let qemu_img = match qemu_img {
            Some(q) => q,
            None => qemu_img.insert(super::qemu_img()?),
        };
        let claim = block::claim(host, catalog, qemu_img, (&pool, &caps), d, &taken)?;
        taken.insert((claim.pool.clone(), claim.volume.clone()));
        claims.push(Some(claim));
    }
    Ok(claims)
}

/// The record of disk `d` copied onto a claimed volume: raw, the volume's size.
fn claimed_disk(id: &VmdId, d: &Disk, claim: &Claim) -> Disk {
    Disk {
        id: d.id.clone(),
        role: d.role,
        bus: d.bus.clone(),
        unit: d.unit,
        capacity_bytes: claim.size,
        format: DiskFormat::Raw,
        pool: claim.pool.clone(),
        volume: claim.volume.clone(),
        path: claim.path.clone(),
        backing: None,
        serial: Some(disk_serial(&id.uuid(), &d.id)),
        claimed: true,
    }
}
