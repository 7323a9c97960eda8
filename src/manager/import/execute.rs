//! Executing an import plan: volumes created through libvirt, each disk written from the
//! package into its volume (or a staging file uploaded through libvirt), the result
//! re-inspected, the catalog record written last. A [`NewVmd`] undo list removes every volume
//! and staging file unless the import commits.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::plan::Context;
use super::target::{create_target, verify_volume, DiskWrite};
use super::write::io_error;
use super::ImportRequest;
use crate::host::{Host, PoolAccess};
use crate::image::qemu_img::QemuImg;
use crate::manager::fault;
use crate::manager::rollback::NewVmd;
use crate::manager::{Config, Error, Progress};
use crate::vmd::catalog::Catalog;
use crate::vmd::{
    now_rfc3339, Disk, Firmware, Hardware, Kind, Network, Property, Source, State, Vmd,
    CATALOG_VERSION,
};
/// Runs the plan: see the module documentation.
pub(super) fn execute(
    host: &dyn Host,
    config: &Config,
    qemu_img: &QemuImg,
    req: &ImportRequest,
    ctx: Context,
    progress: &dyn Progress,
) -> Result<Vmd, Error> {
    let pool = ctx.plan.pool.clone();
    let qemu_img = &qemu_img.clone().cancelled_by(Arc::clone(&req.cancel));
    let catalog = Catalog::open(&config.state_dir)?;
    let mut undo = NewVmd::begin(host, &catalog, &ctx.plan.id)?;
    if req.pool.is_none() {
        let default = crate::manager::pools::ensure_default_pool(host, &config.state_dir)?;
        if default != pool {
            return Err(Error::Request(format!(
                "the default pool changed while planning: {default}, not {pool}"
            )));
        }
    }
    // Where the pool's files are not this process's files, every disk is staged here and
    // uploaded through libvirt.
    let access = host.pool_access(&pool)?;
    let staging = match access {
        PoolAccess::Local(_) => None,
        PoolAccess::Streams => {
            let dir = config.state_dir.join("staging");
            std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
            Some(dir)
        }
    };
    let mut disks = Vec::with_capacity(ctx.plan.disks.len());
    for (planned, source) in ctx.plan.disks.iter().zip(&ctx.sources) {
        if req.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let vol = match (&access, source) {
            (PoolAccess::Streams, Some(source)) => {
                // The content is made and checked in a staging file here, then uploaded.
                let stage = staging
                    .as_ref()
                    .map(|dir| dir.join(planned.volume.as_str()))
                    .ok_or(Error::Interrupted)?;
                undo.file(stage.clone());
                create_target(qemu_img, &stage, planned)?;
                let write = DiskWrite {
                    ctx: &ctx,
                    req,
                    planned,
                    source,
                    target: &stage,
                    scratch: true,
                };
                write.run(qemu_img, progress, &mut undo)?;
                verify_volume(qemu_img, &stage, planned)?;
                // Created raw, of the staged file's exact length, so that the upload leaves
                // no byte of libvirt's own initial content behind; what it holds is then the
                // qcow2 or raw image vmd checked, and vmd records and declares its format.
                let len = std::fs::metadata(&stage)
                    .map_err(io_error("inspect", &stage))?
                    .len();
                let vol = host.create_volume(&pool, &planned.volume, len, "raw", true)?;
                undo.volume(pool.clone(), planned.volume.clone());
                fault::point("import.volume-created")?;
                let mut file = File::open(&stage).map_err(io_error("open", &stage))?;
                host.upload_volume(&pool, &planned.volume, 0, len, &mut file)?;
                std::fs::remove_file(&stage).map_err(io_error("remove", &stage))?;
                vol
            }
            (access, source) => {
                // In place, or a blank disk that libvirt makes empty in its format on the host.
                let vol = host.create_volume(
                    &pool,
                    &planned.volume,
                    planned.capacity_bytes,
                    planned.format.as_str(),
                    true,
                )?;
                undo.volume(pool.clone(), planned.volume.clone());
                fault::point("import.volume-created")?;
                if let PoolAccess::Local(_) = access {
                    let path = PathBuf::from(&vol.path);
                    if let Some(source) = source {
                        let write = DiskWrite {
                            ctx: &ctx,
                            req,
                            planned,
                            source,
                            target: &path,
                            scratch: false,
                        };
                        write.run(qemu_img, progress, &mut undo)?;
                    }
                    verify_volume(qemu_img, &path, planned)?;
                    // Masters are read-only: created 0444 by libvirt, and set so again here,
                    // where vmd reaches the file.
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))
                        .map_err(io_error("make read-only", &path))?;
                }
                vol
            }
        };
        disks.push(Disk {
            id: planned.id.clone(),
            role: planned.role,
            bus: planned.bus.clone(),
            unit: planned.unit,
            capacity_bytes: planned.capacity_bytes,
            format: planned.format,
            pool: pool.clone(),
            volume: planned.volume.clone(),
            path: vol.path.clone(),
            backing: None,
            serial: None,
            claimed: false,
        });
        fault::point("import.disk-written")?;
    }
    // Files written here: libvirt's view of the pool (allocation, free space) is refreshed.
    // An upload needs none: libvirt refreshes the pool itself when the stream ends, and a
    // refresh asked meanwhile is refused as busy and only waited out.
    if matches!(access, PoolAccess::Local(_)) {
        host.pool(&pool)?;
    }
    let vmd = record(&ctx, req, disks);
    fault::point("import.before-commit")?;
    let lock = catalog.lock()?;
    catalog.insert(&vmd, &lock)?;
    drop(lock);
    undo.commit();
    fault::point("import.committed")?;
    Ok(vmd)
}

/// The catalog record of the new master.
fn record(ctx: &Context, req: &ImportRequest, disks: Vec<Disk>) -> Vmd {
    let a = &ctx.appliance;
    let hw = &a.system.hardware;
    let os_type = a.system.os.as_ref().and_then(|o| {
        o.description
            .clone()
            .or_else(|| o.vmw_os_type.clone())
            .or_else(|| o.id.map(|id| format!("cim:{id}")))
    });
    Vmd {
        version: CATALOG_VERSION,
        id: ctx.plan.id,
        name: ctx.plan.name.clone(),
        kind: Kind::Master,
        state: State::Ready,
        created: now_rfc3339(),
        parent: None,
        source: Some(Source {
            package: ctx.plan.package.clone(),
            digest: ctx.descriptor_digest.clone(),
            ovf_version: ctx.plan.ovf_version.clone(),
            system: a.system.id.clone(),
            deployment: a.deployment.clone(),
            product: a
                .system
                .product
                .as_ref()
                .and_then(|p| serde_json::to_value(p).ok()),
            manifest: ctx.plan.manifest.clone(),
            certificate: ctx
                .plan
                .certificate
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok()),
            eula_accepted: req.accept_eula && ctx.plan.eula,
        }),
        hardware: Hardware {
            vcpus: hw.vcpus,
            memory_mib: hw.memory_mib,
            firmware: match hw.firmware {
                crate::ovf::descriptor::Firmware::Bios => Firmware::Bios,
                crate::ovf::descriptor::Firmware::Efi { .. } => Firmware::Efi,
            },
            os_type,
        },
        networks: a
            .networks
            .iter()
            .map(|n| Network {
                name: n.name.clone(),
                model: hw
                    .nics
                    .iter()
                    .find(|nic| nic.network.as_deref() == Some(n.name.as_str()))
                    .and_then(|nic| nic.model.clone()),
            })
            .collect(),
        properties: a
            .system
            .properties
            .iter()
            .map(|p| Property {
                key: p.key.clone(),
                kind: Some(p.kind.clone()),
                value: if p.password { None } else { p.value.clone() },
                user_configurable: p.user_configurable,
                label: p.label.clone(),
                description: p.description.clone(),
            })
            .collect(),
        disks,
        descriptor: Some(String::from_utf8_lossy(&ctx.package.descriptor).into_owned()),
        deployment: None,
        snapshots: Vec::new(),
    }
}
