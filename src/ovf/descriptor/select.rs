//! `select`: one system of a parsed envelope under one deployment option, with the disks
//! to import and the networks its NICs use. The envelope was fully validated by `parse`;
//! errors here are about the caller's choice.

use super::error::{list, OvfError};
use super::hardware;
use super::model::{
    Appliance, ApplianceDisk, Envelope, Hardware, NetworkDef, Property, ResolvedProperty,
    ResolvedSystem, Role,
};
use crate::ovf::xml::Shown;

/// Resolves `system` (required when the package holds several) under `deployment` (the
/// option marked default, or the first, when `None`). Disks not attached to the chosen
/// system are not part of the result.
pub fn select(
    env: &Envelope,
    system: Option<&str>,
    deployment: Option<&str>,
) -> Result<Appliance, OvfError> {
    let ids = || list(env.systems.iter().map(|s| s.id.as_str()));
    let chosen = match system {
        Some(id) => {
            env.systems
                .iter()
                .find(|s| s.id == id)
                .ok_or_else(|| OvfError::UnknownSystem {
                    id: Shown(id.to_owned()),
                    ids: ids(),
                })?
        }
        None => match env.systems.as_slice() {
            [only] => only,
            _ => return Err(OvfError::ChooseSystem { ids: ids() }),
        },
    };
    let options = env.deployment_options.as_slice();
    let deployment = match (deployment, options) {
        (Some(id), []) => {
            return Err(OvfError::NoDeploymentOptions {
                id: Shown(id.to_owned()),
            })
        }
        (None, []) => None,
        (Some(id), _) => match options.iter().find(|o| o.id == id) {
            Some(option) => Some(option.id.clone()),
            None => {
                return Err(OvfError::UnknownDeployment {
                    id: Shown(id.to_owned()),
                    ids: list(options.iter().map(|o| o.id.as_str())),
                })
            }
        },
        (None, _) => options
            .iter()
            .find(|o| o.default)
            .or(options.first())
            .map(|o| o.id.clone()),
    };
    let hardware = hardware::resolve(env, chosen, deployment.as_deref())?;
    let disks = disks(env, &hardware)?;
    let networks = networks(env, &hardware);
    let properties = chosen
        .properties
        .iter()
        .map(|p| property(p, deployment.as_deref()))
        .collect();
    Ok(Appliance {
        version: env.version,
        system: ResolvedSystem {
            id: chosen.id.clone(),
            name: chosen.name.clone(),
            collections: chosen.collections.clone(),
            product: chosen.product.clone(),
            os: chosen.os.clone(),
            annotation: chosen.annotation.clone(),
            eulas: chosen.eulas.clone(),
            properties,
            hardware,
        },
        deployment,
        disks,
        networks,
    })
}

/// A `Value` listing the option overrides the property's default.
fn property(p: &Property, deployment: Option<&str>) -> ResolvedProperty {
    let chosen = deployment.and_then(|d| {
        p.values
            .iter()
            .find(|v| v.configurations.iter().any(|c| c == d))
            .map(|v| v.value.clone())
    });
    ResolvedProperty {
        key: p.key.clone(),
        kind: p.kind.clone(),
        value: chosen.or_else(|| p.value.clone()),
        user_configurable: p.user_configurable,
        password: p.password,
        label: p.label.clone(),
        description: p.description.clone(),
    }
}

/// The attached disks, OS disk first. The OS disk is the lowest explicit boot order, then
/// a disk the producer marked bootable, then a disk with an image over a blank one, then
/// the lowest (controller, unit), then document order.
fn disks(env: &Envelope, hardware: &Hardware) -> Result<Vec<ApplianceDisk>, OvfError> {
    let mut out = Vec::with_capacity(hardware.disks.len());
    for attachment in &hardware.disks {
        let disk = env
            .disks
            .iter()
            .find(|d| d.id == attachment.disk_id)
            .ok_or_else(|| OvfError::UnknownFile {
                disk: Shown(attachment.disk_id.clone()),
                file: Shown(String::new()),
            })?;
        let file =
            match &disk.file_ref {
                None => None,
                Some(id) => Some(env.files.iter().find(|f| &f.id == id).cloned().ok_or_else(
                    || OvfError::UnknownFile {
                        disk: Shown(disk.id.clone()),
                        file: Shown(id.clone()),
                    },
                )?),
            };
        out.push(ApplianceDisk {
            disk: disk.clone(),
            file,
            role: Role::Data,
            controller: attachment.controller.clone(),
            bus: attachment.bus,
            unit: attachment.unit,
        });
    }
    let controller_rank = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| {
                hardware
                    .controllers
                    .iter()
                    .position(|c| &c.instance_id == id)
            })
            .unwrap_or(usize::MAX)
    };
    let boot = hardware
        .disks
        .iter()
        .zip(&out)
        .enumerate()
        .min_by_key(|(position, (a, d))| {
            (
                a.boot_order.unwrap_or(u32::MAX),
                !d.disk.bootable,
                d.file.is_none(),
                controller_rank(&a.controller),
                a.unit,
                *position,
            )
        });
    if let Some((position, _)) = boot {
        let mut os = out.remove(position);
        os.role = Role::Os;
        out.insert(0, os);
    }
    Ok(out)
}

/// Distinct NIC connections in NIC order, described by `NetworkSection` where it can.
fn networks(env: &Envelope, hardware: &Hardware) -> Vec<NetworkDef> {
    let mut out: Vec<NetworkDef> = Vec::new();
    for name in hardware.nics.iter().filter_map(|n| n.network.as_deref()) {
        if out.iter().any(|n| n.name == name) {
            continue;
        }
        let declared = env.networks.iter().find(|n| n.name == name);
        out.push(declared.cloned().unwrap_or_else(|| NetworkDef {
            name: name.to_owned(),
            description: None,
        }));
    }
    out
}
