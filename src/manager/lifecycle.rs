//! `undeploy` (optionally capturing the instance as a new master) and `redeploy`.

use super::copy::{copy_disk, CopyMode, CopyTarget, Reach};
use super::deploy::{start_locked, undeploy_domain, DeployRequest, Status, StopOptions};
use super::rollback::NewVmd;
use super::snapshot::revert_locked;
use super::{fault, lock_vmd, Error, StorageManager};
use crate::host::Host;
use crate::image::qemu_img::QemuImg;
use crate::vmd::catalog::{Catalog, CatalogError};
use crate::vmd::{
    now_rfc3339, Disk, DiskFormat, Kind, State, Vmd, VmdId, VmdName, VolumeName, CATALOG_VERSION,
};

/// How to undeploy.
#[derive(Debug, Clone, Default)]
pub struct UndeployRequest {
    /// The instance, by name or id.
    pub name: String,
    /// Also capture the instance's current disks as a new standalone master of this name.
    pub as_master: Option<VmdName>,
    /// Shutdown timeout and force.
    pub stop: StopOptions,
}

/// Copies every disk of `vmd` into new standalone volumes (backing chains flattened,
/// snapshots left behind) and records them as a new master.
fn capture_master(
    host: &dyn Host,
    qemu_img: &QemuImg,
    catalog: &Catalog,
    vmd: &Vmd,
    name: &VmdName,
) -> Result<Vmd, Error> {
    if catalog.name_taken(name.as_str())? {
        return Err(CatalogError::NameTaken(name.to_string()).into());
    }
    let id = VmdId::new();
    let mut created = NewVmd::begin(host, catalog, &id)?;
    let mut disks = Vec::new();
    let mut reach = Reach::default();
    for (index, d) in vmd.disks.iter().enumerate() {
        let volume = VolumeName::for_disk(&id, index, DiskFormat::Qcow2.as_str());
        let to = CopyTarget {
            pool: &d.pool,
            volume: &volume,
            readonly: true,
        };
        let info = copy_disk(
            host,
            qemu_img,
            &mut reach,
            &mut created,
            d,
            &to,
            CopyMode::Convert,
        )?;
        // The volume was created read-only (0444): a master is only ever a backing file.
        disks.push(Disk {
            path: info.path,
            volume,
            backing: None,
            serial: None,
            format: DiskFormat::Qcow2,
            ..d.clone()
        });
        fault::point("undeploy.captured-volume")?;
    }
    let master = Vmd {
        version: CATALOG_VERSION,
        id,
        name: name.clone(),
        kind: Kind::Master,
        state: State::Ready,
        created: now_rfc3339(),
        parent: None,
        source: None,
        hardware: vmd.hardware.clone(),
        networks: vmd.networks.clone(),
        properties: vmd.properties.clone(),
        disks,
        descriptor: vmd.descriptor.clone(),
        deployment: None,
        snapshots: Vec::new(),
    };
    fault::point("undeploy.master-before-commit")?;
    let lock = catalog.lock()?;
    catalog.insert(&master, &lock)?;
    drop(lock);
    created.commit();
    Ok(master)
}

impl StorageManager {
    /// Undeploys an instance: ACPI shutdown, power off after the timeout, undefine; disks
    /// and snapshots are kept. Undeploying an undeployed instance does nothing. With
    /// `as_master`, the instance's current disks also become a new standalone master.
    pub async fn undeploy(&self, req: UndeployRequest) -> Result<(Status, Option<Vmd>), Error> {
        let state_dir = self.config.state_dir.clone();
        self.on_host(move |host| {
            let catalog = Catalog::open(&state_dir)?;
            let (_lock, mut vmd) = lock_vmd(&catalog, &req.name, false)?;
            if vmd.kind == Kind::Master {
                return Err(Error::Request(format!(
                    "{} is a master and is never deployed",
                    vmd.name
                )));
            }
            if let Some(name) = &req.as_master {
                if catalog.name_taken(name.as_str())? {
                    return Err(CatalogError::NameTaken(name.to_string()).into());
                }
                let mut kinds = super::block::PoolKinds::default();
                super::block::check_capture(host, &mut kinds, vmd.name.as_str(), &vmd.disks)?;
            }
            undeploy_domain(host, &catalog, &mut vmd, req.stop)?;
            let master = match &req.as_master {
                Some(name) => Some(capture_master(
                    host,
                    &super::qemu_img()?,
                    &catalog,
                    &vmd,
                    name,
                )?),
                None => None,
            };
            let status = Status {
                name: vmd.name.to_string(),
                state: vmd.state,
                domain: None,
            };
            Ok((status, master))
        })
        .await
    }

    /// Deploys an undeployed instance again as it was deployed before, optionally reverting
    /// it to a snapshot first, and optionally starting it; all under one hold of its lock.
    pub async fn redeploy(
        &self,
        name: &str,
        snapshot: Option<String>,
        start: bool,
    ) -> Result<Status, Error> {
        let this = self.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let catalog = this.catalog()?;
            let (_lock, vmd) = lock_vmd(&catalog, &name, false)?;
            let id = vmd.id;
            let req = DeployRequest {
                name: name.clone(),
                start: false,
                ..DeployRequest::default()
            };
            let mut status = this.deploy_locked(host, &catalog, vmd, &req)?;
            if let Some(snap) = snapshot {
                // After the domain is defined, so that a snapshot with memory resumes the
                // guest.
                status = revert_locked(host, &catalog.get_id(&id)?, &snap)?;
            }
            if start && status.state != State::Running {
                status = start_locked(host, &catalog.get_id(&id)?)?;
            }
            Ok(status)
        })
        .await
    }
}
