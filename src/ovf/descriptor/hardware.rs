//! Resolution of a system's declared hardware under one deployment option: filter items by
//! `ovf:configuration` and `ovf:bound`, merge items that share an `InstanceID` (DSP0243:
//! a later item's children replace the earlier item's children of the same name), then
//! interpret them as vCPUs, memory, controllers, disks, CD-ROMs and NICs. Every hardware
//! check lives here; `parse` runs it for every option so `select` cannot meet a bad
//! descriptor. Must not: look at files or decide placement.

use std::collections::{HashMap, HashSet};

use super::error::OvfError;
use super::files::legacy_units;
use super::model::{
    Controller, ControllerKind, Envelope, Hardware, HardwareItem, ItemElement, Nic, VirtualSystem,
};
use super::names::VMW_NS;
use crate::ovf::units::bytes;
use crate::ovf::xml::Shown;

mod drives;

/// The most vCPUs a deployed VMD can have (`vmd::limits`): a package asking for more would
/// import and then fail to start.
const MAX_VCPUS: u64 = crate::vmd::limits::MAX_VCPUS as u64;
/// 16 TiB, in MiB.
const MAX_MEMORY_MIB: u64 = crate::vmd::limits::MAX_MEMORY_MIB;
const MIB: u64 = 1024 * 1024;

/// The hardware of `system` under deployment option `config` (`None` when the package
/// declares no options).
pub(crate) fn resolve(
    env: &Envelope,
    system: &VirtualSystem,
    config: Option<&str>,
) -> Result<Hardware, OvfError> {
    let scope = match config {
        Some(c) => format!(
            "system '{}', configuration '{}'",
            system.id.escape_debug(),
            c.escape_debug()
        ),
        None => format!("system '{}'", system.id.escape_debug()),
    };
    let active = system.hardware.items.iter().filter(|i| applies(i, config));
    let merged = merge(&scope, active)?;
    let mut cpus = Vec::new();
    let mut memories = Vec::new();
    let mut controllers: Vec<Controller> = Vec::new();
    let mut drives = Vec::new();
    let mut nics = Vec::new();
    for item in &merged {
        match item.resource_type(&scope)? {
            3 => cpus.push(item),
            4 => memories.push(item),
            5 | 6 | 20 => {
                if let Some(controller) = controller(&scope, item)? {
                    if controllers
                        .iter()
                        .any(|c| c.instance_id == controller.instance_id)
                    {
                        return Err(OvfError::DuplicateController {
                            scope,
                            id: Shown(controller.instance_id),
                        });
                    }
                    controllers.push(controller);
                }
            }
            // 19 ("storage extent") is how XenServer describes disk images.
            17 | 19 => drives.push((item, true)),
            15 | 16 => drives.push((item, false)),
            10 => nics.push(nic(item)?),
            _ => {}
        }
    }
    let (vcpus, cores_per_socket) = cpu(&scope, &cpus)?;
    let memory_mib = memory(&scope, &memories)?;
    let (disks, cdroms) = drives::attach(env, &scope, &controllers, &drives)?;
    Ok(Hardware {
        vcpus,
        cores_per_socket,
        memory_mib,
        firmware: system.hardware.firmware,
        virtual_system_type: system.hardware.virtual_system_type.clone(),
        controllers,
        disks,
        cdroms,
        nics,
    })
}

/// Items without `ovf:configuration` apply to every option; range bounds never deploy.
fn applies(item: &HardwareItem, config: Option<&str>) -> bool {
    if item.range_bound {
        return false;
    }
    match (&item.configurations, config) {
        (None, _) => true,
        (Some(list), Some(config)) => list.iter().any(|c| c == config),
        (Some(_), None) => false,
    }
}

/// An item after merging, borrowing the declared fields.
pub(super) struct Merged<'a> {
    element: ItemElement,
    pub(super) line: u64,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Merged<'a> {
    pub(super) fn field(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(_, v)| *v)
    }

    fn resource_type(&self, scope: &str) -> Result<u16, OvfError> {
        let raw = self
            .field("ResourceType")
            .ok_or_else(|| OvfError::ItemField {
                scope: scope.to_owned(),
                line: self.line,
                field: "ResourceType",
            })?;
        raw.parse()
            .map_err(|_| invalid(self.line, "ResourceType", raw, "CIM resource type"))
    }
}

pub(super) fn invalid(line: u64, what: &str, value: &str, expected: &'static str) -> OvfError {
    OvfError::InvalidValue {
        what: what.to_owned(),
        value: Shown(value.to_owned()),
        line,
        expected,
    }
}

fn merge<'a>(
    scope: &str,
    items: impl Iterator<Item = &'a HardwareItem>,
) -> Result<Vec<Merged<'a>>, OvfError> {
    let mut merged: Vec<Merged<'a>> = Vec::new();
    let mut by_id: HashMap<&'a str, usize> = HashMap::new();
    for item in items {
        let fields: Vec<(&str, &str)> = item
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let id = item.field("InstanceID").filter(|id| !id.is_empty());
        let Some(target) = id
            .and_then(|id| by_id.get(id))
            .and_then(|&at| merged.get_mut(at))
        else {
            if let Some(id) = id {
                by_id.insert(id, merged.len());
            }
            merged.push(Merged {
                element: item.element,
                line: item.line,
                fields,
            });
            continue;
        };
        let new_type = item.field("ResourceType").filter(|t| !t.is_empty());
        let old_type = target.field("ResourceType");
        if target.element != item.element
            || (new_type.is_some() && old_type.is_some() && new_type != old_type)
        {
            return Err(OvfError::ConflictingItems {
                scope: scope.to_owned(),
                id: Shown(id.unwrap_or_default().to_owned()),
            });
        }
        let replaced: HashSet<&str> = fields.iter().map(|(name, _)| *name).collect();
        target.fields.retain(|(name, _)| !replaced.contains(name));
        target.fields.extend(fields);
    }
    Ok(merged)
}

fn controller(scope: &str, item: &Merged<'_>) -> Result<Option<Controller>, OvfError> {
    let subtype = item.field("ResourceSubType").map(str::to_owned);
    let kind = match item.resource_type(scope)? {
        5 => ControllerKind::Ide,
        6 => ControllerKind::Scsi { subtype },
        // "Other storage device": VMware and VirtualBox name SATA, NVMe and virtio-scsi
        // controllers by subtype; any other subtype is not a controller vmd knows.
        _ => match subtype.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("ahci" | "vmware.sata.ahci") => ControllerKind::Sata,
            Some("nvme" | "vmware.nvme.controller") => ControllerKind::Nvme,
            Some("virtioscsi" | "virtio-scsi") => ControllerKind::Scsi { subtype },
            _ => return Ok(None),
        },
    };
    let instance_id = item
        .field("InstanceID")
        .ok_or_else(|| OvfError::ItemField {
            scope: scope.to_owned(),
            line: item.line,
            field: "InstanceID",
        })?;
    Ok(Some(Controller {
        instance_id: instance_id.to_owned(),
        kind,
        address: item.field("Address").map(str::to_owned),
    }))
}

fn in_range(what: String, value: u64, min: u64, max: u64) -> Result<u64, OvfError> {
    if value < min || value > max {
        return Err(OvfError::OutOfRange {
            what,
            value,
            min,
            max,
        });
    }
    Ok(value)
}

pub(super) fn whole(item: &Merged<'_>, field: &str) -> Result<Option<u64>, OvfError> {
    item.field(field)
        .map(|raw| {
            raw.parse()
                .map_err(|_| invalid(item.line, field, raw, "whole number"))
        })
        .transpose()
}

fn cpu(scope: &str, items: &[&Merged<'_>]) -> Result<(u32, Option<u32>), OvfError> {
    let [item] = items else {
        return Err(OvfError::ResourceCount {
            scope: scope.to_owned(),
            resource: "processor",
            count: items.len(),
        });
    };
    // oVirt states the topology instead of a count.
    let ovirt = match (
        whole(item, "num_of_sockets")?,
        whole(item, "cpu_per_socket")?,
    ) {
        (Some(sockets), Some(cores)) => {
            let threads = whole(item, "threads_per_cpu")?.unwrap_or(1);
            sockets
                .checked_mul(cores)
                .and_then(|n| n.checked_mul(threads))
        }
        _ => None,
    };
    let declared =
        whole(item, "VirtualQuantity")?
            .or(ovirt)
            .ok_or_else(|| OvfError::ItemField {
                scope: scope.to_owned(),
                line: item.line,
                field: "VirtualQuantity",
            })?;
    let vcpus = in_range(format!("{scope}: vcpu count"), declared, 1, MAX_VCPUS)?;
    let vcpus = u32::try_from(vcpus).unwrap_or(u32::MAX);
    let vmw_cores = format!("{{{VMW_NS}}}CoresPerSocket");
    let cores = match whole(item, &vmw_cores)?.or(whole(item, "cpu_per_socket")?) {
        None => None,
        Some(cores) => {
            let cores = u32::try_from(cores).unwrap_or(u32::MAX);
            if cores == 0 || vcpus % cores != 0 {
                return Err(OvfError::CoresPerSocket {
                    scope: scope.to_owned(),
                    cores,
                    vcpus,
                });
            }
            Some(cores)
        }
    };
    Ok((vcpus, cores))
}

fn memory(scope: &str, items: &[&Merged<'_>]) -> Result<u64, OvfError> {
    let [item] = items else {
        return Err(OvfError::ResourceCount {
            scope: scope.to_owned(),
            resource: "memory",
            count: items.len(),
        });
    };
    let quantity = item
        .field("VirtualQuantity")
        .ok_or_else(|| OvfError::ItemField {
            scope: scope.to_owned(),
            line: item.line,
            field: "VirtualQuantity",
        })?;
    // virt-v2v reads a memory quantity without units as MiB; so does vmd.
    let units = item.field("AllocationUnits").unwrap_or("byte * 2^20");
    let total = bytes(quantity, Some(legacy_units(units))).map_err(|source| OvfError::Size {
        what: format!(
            "{scope}: memory '{}' in units '{}'",
            quantity.escape_debug(),
            units.escape_debug()
        ),
        source,
    })?;
    // Whole MiB, rounding up: a guest must not get less than it asked for.
    let mib = total / MIB + u64::from(total % MIB != 0);
    in_range(format!("{scope}: memory in MiB"), mib, 1, MAX_MEMORY_MIB)
}

fn nic(item: &Merged<'_>) -> Result<Nic, OvfError> {
    let mac = match item.field("Address").or_else(|| item.field("MACAddress")) {
        None => None,
        Some(raw) => {
            Some(mac(raw).ok_or_else(|| invalid(item.line, "MAC address", raw, "MAC address"))?)
        }
    };
    Ok(Nic {
        network: item.field("Connection").map(str::to_owned),
        model: item.field("ResourceSubType").map(str::to_owned),
        mac,
    })
}

/// `00:50:56:AB:CD:EF`, `00-50-56-ab-cd-ef` or `005056abcdef`, as lower-case with colons.
fn mac(raw: &str) -> Option<String> {
    let octets: Vec<&str> = if raw.contains(':') {
        raw.split(':').collect()
    } else if raw.contains('-') {
        raw.split('-').collect()
    } else {
        (0..6)
            .map(|i| raw.get(i * 2..i * 2 + 2))
            .collect::<Option<Vec<_>>>()?
    };
    let well_formed = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
        && (raw.contains([':', '-']) || raw.len() == 12);
    well_formed.then(|| octets.join(":").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_accepts_colon_dash_and_bare_forms() {
        assert_eq!(
            mac("00:50:56:AB:CD:EF").as_deref(),
            Some("00:50:56:ab:cd:ef")
        );
        assert_eq!(
            mac("00-50-56-ab-cd-ef").as_deref(),
            Some("00:50:56:ab:cd:ef")
        );
        assert_eq!(mac("005056ABCDEF").as_deref(), Some("00:50:56:ab:cd:ef"));
    }

    #[test]
    fn mac_rejects_garbage() {
        assert_eq!(mac("00:50:56:ab:cd"), None);
        assert_eq!(mac("zz:50:56:ab:cd:ef"), None);
        assert_eq!(mac("0:050:56:ab:cd:ef"), None);
        assert_eq!(mac("00:50:56:ab:cd:ef<x/>"), None);
    }
}
