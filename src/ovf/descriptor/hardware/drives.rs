//! Disk and CD-ROM items: what their `HostResource` names, which controller they sit on,
//! and which unit each takes.

use std::collections::{HashMap, HashSet};

use super::{invalid, whole, Merged};
use crate::ovf::descriptor::error::OvfError;
use crate::ovf::descriptor::model::{
    Bus, CdromAttachment, Controller, ControllerKind, DiskAttachment, Envelope,
};
use crate::ovf::xml::Shown;

/// oVirt writes this all-zero GUID as the `Parent` of disks that have no controller item.
const OVIRT_NO_PARENT: &str = "00000000-0000-0000-0000-000000000000";

/// Where a `HostResource` points.
enum Resource<'a> {
    Disk(&'a str),
    File(&'a str),
    Other,
}

/// `ovf:/disk/ID` as the spec writes it, `ovf://disk/ID` from its 0.9 examples and
/// `/disk/ID` as VirtualBox writes it; likewise for `file`.
fn host_resource(raw: &str) -> Resource<'_> {
    let rest = raw.trim();
    let rest = rest
        .strip_prefix("ovf:")
        .unwrap_or(rest)
        .trim_start_matches('/');
    match rest.split_once('/') {
        Some(("disk", id)) if !id.is_empty() => Resource::Disk(id),
        Some(("file", id)) if !id.is_empty() => Resource::File(id),
        _ => Resource::Other,
    }
}

/// A disk or CD-ROM before its unit is known.
struct Placed {
    controller: Option<String>,
    bus: Bus,
    explicit_unit: Option<u32>,
    drive: Drive,
}

enum Drive {
    Disk { id: String, boot_order: Option<u32> },
    Cdrom { file: Option<String> },
}

/// Resolves the drive items (`true` marks a disk, `false` a CD-ROM) in document order.
pub(super) fn attach(
    env: &Envelope,
    scope: &str,
    controllers: &[Controller],
    drives: &[(&Merged<'_>, bool)],
) -> Result<(Vec<DiskAttachment>, Vec<CdromAttachment>), OvfError> {
    let mut placed: Vec<Placed> = Vec::with_capacity(drives.len());
    let mut attached: HashSet<String> = HashSet::new();
    for &(item, is_disk) in drives {
        let (drive, bus_hint) = drive(env, scope, item, is_disk)?;
        if let Drive::Disk { id, .. } = &drive {
            if !attached.insert(id.clone()) {
                return Err(OvfError::DiskAttachedTwice {
                    scope: scope.to_owned(),
                    disk: Shown(id.clone()),
                });
            }
        }
        let (controller, bus) = parent(scope, item, controllers)?;
        let bus = if controller.is_none() {
            bus_hint.unwrap_or(bus)
        } else {
            bus
        };
        let explicit_unit = whole(item, "AddressOnParent")?
            .map(|u| {
                u32::try_from(u).map_err(|_| {
                    invalid(item.line, "AddressOnParent", &u.to_string(), "unit number")
                })
            })
            .transpose()?;
        placed.push(Placed {
            controller,
            bus,
            explicit_unit,
            drive,
        });
    }
    let units = assign_units(scope, &placed)?;
    let mut disks = Vec::new();
    let mut cdroms = Vec::new();
    for (place, unit) in placed.into_iter().zip(units) {
        let Placed {
            controller,
            bus,
            drive,
            ..
        } = place;
        match drive {
            Drive::Disk { id, boot_order } => disks.push(DiskAttachment {
                disk_id: id,
                controller,
                bus,
                unit,
                boot_order,
            }),
            Drive::Cdrom { file } => cdroms.push(CdromAttachment {
                controller,
                bus,
                unit,
                file,
            }),
        }
    }
    Ok((disks, cdroms))
}

/// What a drive item holds: a disk must name a `DiskSection` disk (capacity and format
/// come from there, so `ovf:/file/ID` is refused for disks); a CD-ROM may name a file, a
/// disk, or nothing.
fn drive(
    env: &Envelope,
    scope: &str,
    item: &Merged<'_>,
    is_disk: bool,
) -> Result<(Drive, Option<Bus>), OvfError> {
    let resource = item.field("HostResource");
    let unknown = |kind, id: &str, section| OvfError::UnknownReference {
        scope: scope.to_owned(),
        line: item.line,
        kind,
        id: Shown(id.to_owned()),
        section,
    };
    match (resource.map(host_resource), is_disk) {
        (Some(Resource::Disk(id)), _) => {
            let disk = env
                .disks
                .iter()
                .find(|d| d.id == id)
                .ok_or_else(|| unknown("disk", id, "DiskSection"))?;
            let drive = if is_disk {
                let boot_order = whole(item, "ovf:BootOrder")?
                    .and_then(|b| u32::try_from(b).ok())
                    .filter(|&b| b > 0);
                Drive::Disk {
                    id: id.to_owned(),
                    boot_order,
                }
            } else {
                Drive::Cdrom {
                    file: disk.file_ref.clone(),
                }
            };
            Ok((drive, disk.bus_hint))
        }
        (Some(Resource::File(id)), false) => {
            if !env.files.iter().any(|f| f.id == id) {
                return Err(unknown("file", id, "References"));
            }
            Ok((
                Drive::Cdrom {
                    file: Some(id.to_owned()),
                },
                None,
            ))
        }
        // An empty drive, or host media (a device path) that vmd never opens.
        (Some(Resource::Other) | None, false) => Ok((Drive::Cdrom { file: None }, None)),
        (None, true) => Err(OvfError::ItemField {
            scope: scope.to_owned(),
            line: item.line,
            field: "HostResource",
        }),
        (Some(Resource::File(_) | Resource::Other), true) => {
            Err(OvfError::UnsupportedHostResource {
                scope: scope.to_owned(),
                line: item.line,
                resource: Shown(resource.unwrap_or_default().to_owned()),
                device: "a disk drive (it must name a DiskSection disk as ovf:/disk/ID)",
            })
        }
    }
}

fn parent(
    scope: &str,
    item: &Merged<'_>,
    controllers: &[Controller],
) -> Result<(Option<String>, Bus), OvfError> {
    let Some(parent) = item.field("Parent").filter(|p| *p != OVIRT_NO_PARENT) else {
        return Ok((None, Bus::Unspecified));
    };
    let controller = controllers
        .iter()
        .find(|c| c.instance_id == parent)
        .ok_or_else(|| OvfError::UnknownParent {
            scope: scope.to_owned(),
            line: item.line,
            parent: Shown(parent.to_owned()),
        })?;
    let bus = match controller.kind {
        ControllerKind::Ide => Bus::Ide,
        ControllerKind::Scsi { .. } => Bus::Scsi,
        ControllerKind::Sata => Bus::Sata,
        ControllerKind::Nvme => Bus::Nvme,
    };
    Ok((Some(parent.to_owned()), bus))
}

/// Explicit `AddressOnParent` values must not collide on one controller; drives without
/// one take the lowest free unit, in document order.
fn assign_units(scope: &str, placed: &[Placed]) -> Result<Vec<u32>, OvfError> {
    let mut used: HashMap<Option<&str>, HashSet<u32>> = HashMap::new();
    for place in placed {
        if let Some(unit) = place.explicit_unit {
            if !used
                .entry(place.controller.as_deref())
                .or_default()
                .insert(unit)
            {
                return Err(OvfError::DuplicateUnit {
                    scope: scope.to_owned(),
                    controller: Shown(
                        place
                            .controller
                            .clone()
                            .unwrap_or_else(|| "(none)".to_owned()),
                    ),
                    unit,
                });
            }
        }
    }
    // Units are only ever added, so the lowest free unit never moves backwards: one
    // cursor per controller keeps the search linear.
    let mut cursor: HashMap<Option<&str>, u32> = HashMap::new();
    let mut units = Vec::with_capacity(placed.len());
    for place in placed {
        let unit = match place.explicit_unit {
            Some(unit) => unit,
            None => {
                let key = place.controller.as_deref();
                let taken = used.entry(key).or_default();
                let next = cursor.entry(key).or_insert(0);
                while taken.contains(next) {
                    *next = next.saturating_add(1);
                }
                taken.insert(*next);
                *next
            }
        };
        units.push(unit);
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_resource_accepts_vendor_spellings() {
        for raw in [
            "ovf:/disk/d1",
            "ovf://disk/d1",
            "/disk/d1",
            " ovf:/disk/d1 ",
        ] {
            assert!(matches!(host_resource(raw), Resource::Disk("d1")), "{raw}");
        }
        assert!(matches!(
            host_resource("ovf:/file/iso"),
            Resource::File("iso")
        ));
        assert!(matches!(host_resource("ovf:/disk/"), Resource::Other));
        assert!(matches!(host_resource("/dev/sr0"), Resource::Other));
    }
}
