//! Envelope-level reading and the cross-reference checks: `NetworkSection`,
//! `DeploymentOptionSection`, the content tree (collections flattened), and the one
//! `TryFrom<&Element> for Envelope` where every structural check runs (`files` reads
//! `References` and `DiskSection` for it).

use std::collections::HashMap;

use super::error::{room, OvfError};
use super::files::{disk_section, references};
use super::model::{CollectionInfo, DeploymentOption, Envelope, NetworkDef, VirtualSystem};
use super::names::{clark, envelope_version, required_attr, Kind, Ovf};
use super::{hardware, system};
use crate::ovf::xml::{Element, Shown};

/// Caps on declared objects, so validation work stays bounded (systems times deployment
/// options times items). Real packages stay far below each.
const MAX_NETWORKS: usize = 256;
const MAX_OPTIONS: usize = 64;
const MAX_SYSTEMS: usize = 64;

impl TryFrom<&Element> for Envelope {
    type Error = OvfError;

    fn try_from(root: &Element) -> Result<Self, OvfError> {
        let version = root
            .ns()
            .and_then(envelope_version)
            .filter(|_| root.local() == "Envelope")
            .ok_or_else(|| OvfError::NotAnEnvelope {
                found: Shown(clark(root.name())),
            })?;
        let ovf = Ovf::new(root.ns().unwrap_or_default());
        let mut env = Envelope {
            version,
            files: Vec::new(),
            disks: Vec::new(),
            networks: Vec::new(),
            deployment_options: Vec::new(),
            systems: Vec::new(),
        };
        for child in root.children() {
            match ovf.kind(child) {
                Kind::Ovf("References") => references(&ovf, child, &mut env.files)?,
                Kind::Ovf("DiskSection") => disk_section(&ovf, child, &mut env.disks)?,
                Kind::Ovf("NetworkSection") => network_section(&ovf, child, &mut env.networks)?,
                Kind::Ovf("DeploymentOptionSection") => {
                    deployment_section(&ovf, child, &mut env.deployment_options)?
                }
                Kind::Ovf("VirtualSystem" | "VirtualSystemCollection") => {
                    content(&ovf, child, &mut Vec::new(), &[], &mut env.systems)?
                }
                _ => ovf.check_unread(child)?,
            }
        }
        if env.systems.is_empty() {
            return Err(OvfError::NoSystems);
        }
        check_disks(&env)?;
        check_options(&env)?;
        check_systems(&env)?;
        Ok(env)
    }
}

fn network_section(
    ovf: &Ovf<'_>,
    el: &Element,
    networks: &mut Vec<NetworkDef>,
) -> Result<(), OvfError> {
    for child in el.children() {
        if !ovf.is(child, "Network") {
            ovf.check_unread(child)?;
            continue;
        }
        let name = required_attr(ovf, child, "Network", "ovf:name")?;
        if networks.iter().any(|n| n.name == name) {
            return Err(OvfError::Duplicate {
                kind: "network",
                id: Shown(name),
                line: child.line(),
            });
        }
        room("networks", networks.len(), MAX_NETWORKS)?;
        networks.push(NetworkDef {
            name,
            description: ovf.child_text(child, "Description"),
        });
    }
    Ok(())
}

fn deployment_section(
    ovf: &Ovf<'_>,
    el: &Element,
    options: &mut Vec<DeploymentOption>,
) -> Result<(), OvfError> {
    for child in el.children() {
        if !ovf.is(child, "Configuration") {
            ovf.check_unread(child)?;
            continue;
        }
        let id = required_attr(ovf, child, "Configuration", "ovf:id")?;
        if options.iter().any(|o| o.id == id) {
            return Err(OvfError::Duplicate {
                kind: "deployment option",
                id: Shown(id),
                line: child.line(),
            });
        }
        room("deployment options", options.len(), MAX_OPTIONS)?;
        options.push(DeploymentOption {
            label: ovf.child_text(child, "Label"),
            description: ovf.child_text(child, "Description"),
            default: ovf.bool_attr(child, "default")?.unwrap_or(false),
            id,
        });
    }
    Ok(())
}

/// Walks `VirtualSystem` and `VirtualSystemCollection` content; systems inherit the
/// collections' EULAs, since accepting a member means accepting its collection's terms.
fn content(
    ovf: &Ovf<'_>,
    el: &Element,
    path: &mut Vec<CollectionInfo>,
    inherited_eulas: &[String],
    out: &mut Vec<VirtualSystem>,
) -> Result<(), OvfError> {
    if ovf.is(el, "VirtualSystem") {
        let system = system::read(ovf, el, path.clone(), inherited_eulas.to_vec())?;
        if out.iter().any(|s| s.id == system.id) {
            return Err(OvfError::Duplicate {
                kind: "virtual system",
                id: Shown(system.id),
                line: el.line(),
            });
        }
        room("virtual systems", out.len(), MAX_SYSTEMS)?;
        out.push(system);
        return Ok(());
    }
    let id = required_attr(ovf, el, "VirtualSystemCollection", "ovf:id")?;
    path.push(CollectionInfo {
        id,
        name: ovf.child_text(el, "Name"),
    });
    let mut eulas = inherited_eulas.to_vec();
    eulas.extend(
        ovf.children(el, "EulaSection")
            .filter_map(|s| ovf.child_text(s, "License")),
    );
    for child in el.children() {
        match ovf.kind(child) {
            Kind::Ovf("VirtualSystem" | "VirtualSystemCollection") => {
                content(ovf, child, path, &eulas, out)?
            }
            _ => ovf.check_unread(child)?,
        }
    }
    path.pop();
    Ok(())
}

fn check_disks(env: &Envelope) -> Result<(), OvfError> {
    let mut users: HashMap<&str, &str> = HashMap::new();
    for disk in &env.disks {
        let Some(file) = disk.file_ref.as_deref() else {
            continue;
        };
        if !env.files.iter().any(|f| f.id == file) {
            return Err(OvfError::UnknownFile {
                disk: Shown(disk.id.clone()),
                file: Shown(file.to_owned()),
            });
        }
        if let Some(first) = users.insert(file, &disk.id) {
            return Err(OvfError::SharedFile {
                first: Shown(first.to_owned()),
                second: Shown(disk.id.clone()),
                file: Shown(file.to_owned()),
            });
        }
    }
    Ok(())
}

fn check_options(env: &Envelope) -> Result<(), OvfError> {
    let mut defaults = env.deployment_options.iter().filter(|o| o.default);
    if let (Some(first), Some(second)) = (defaults.next(), defaults.next()) {
        return Err(OvfError::TwoDefaults {
            first: Shown(first.id.clone()),
            second: Shown(second.id.clone()),
        });
    }
    let known = |c: &String| env.deployment_options.iter().any(|o| &o.id == c);
    for system in &env.systems {
        for item in &system.hardware.items {
            let listed = item.configurations.iter().flatten();
            if let Some(unknown) = listed.into_iter().find(|c| !known(c)) {
                return Err(OvfError::UnknownConfiguration {
                    what: format!("item at line {}", item.line),
                    configuration: Shown(unknown.clone()),
                });
            }
        }
        for property in &system.properties {
            let listed = property.values.iter().flat_map(|v| &v.configurations);
            if let Some(unknown) = listed.into_iter().find(|c| !known(c)) {
                return Err(OvfError::UnknownConfiguration {
                    what: format!("property '{}'", property.key.escape_debug()),
                    configuration: Shown(unknown.clone()),
                });
            }
        }
    }
    Ok(())
}

/// Every system resolves under every deployment option, so that `select` can only fail
/// on the caller's choice, never on the descriptor.
fn check_systems(env: &Envelope) -> Result<(), OvfError> {
    for system in &env.systems {
        // Without `ovf:configuration` on any item, every option yields the same hardware.
        let configured = system
            .hardware
            .items
            .iter()
            .any(|i| i.configurations.is_some());
        if !configured {
            hardware::resolve(env, system, None)?;
            continue;
        }
        for option in &env.deployment_options {
            hardware::resolve(env, system, Some(&option.id))?;
        }
    }
    Ok(())
}
