//! A `VirtualHardwareSection` read into declared items: `Item` (rasd), and OVF 2's
//! `StorageItem` (sasd) and `EthernetPortItem` (epasd), plus VMware's `vmw:Config` firmware
//! keys. Items stay as declared (fields by name) because deployment options filter and
//! merge them before they mean anything; `hardware` does that.

use super::error::{room, OvfError};
use super::model::{Firmware, HardwareItem, HardwareSection, ItemElement};
use super::names::{clark, non_empty, Kind, Ovf, VMW_NS};
use crate::ovf::xml::{Element, Shown};

/// Real sections hold tens of items of a few dozen fields; these bound per-option
/// validation work.
const MAX_ITEMS: usize = 1024;
const MAX_ITEM_FIELDS: usize = 256;

/// Reads a hardware section of system `system_id`, returning the firmware VMware's
/// `vmw:Config` states, if any.
pub(super) fn read(
    ovf: &Ovf<'_>,
    vhs: &Element,
    system_id: &str,
) -> Result<(HardwareSection, Option<Firmware>), OvfError> {
    let mut virtual_system_type = None;
    let mut items = Vec::new();
    let mut firmware = None;
    let mut secure_boot = false;
    for child in vhs.children() {
        let element = match ovf.kind(child) {
            Kind::Ovf("Item") => ItemElement::Item,
            Kind::Ovf("StorageItem") => ItemElement::StorageItem,
            Kind::Ovf("EthernetPortItem") => ItemElement::EthernetPortItem,
            Kind::Ovf("System") => {
                virtual_system_type = child
                    .children()
                    .iter()
                    .find(|c| ovf.kind(c) == Kind::Cim("VirtualSystemType"))
                    .and_then(|c| non_empty(c.text()));
                continue;
            }
            Kind::Vendor if is_vmw_config(child) => {
                let key = child.attr(Some(VMW_NS), "key").unwrap_or_default().trim();
                let value = child.attr(Some(VMW_NS), "value").unwrap_or_default().trim();
                match key {
                    "firmware" => firmware = Some(vmw_firmware(system_id, value)?),
                    "uefi.secureBoot.enabled" => secure_boot = value.eq_ignore_ascii_case("true"),
                    _ => ovf.check_unread(child)?,
                }
                continue;
            }
            _ => {
                ovf.check_unread(child)?;
                continue;
            }
        };
        room("hardware items in one system", items.len(), MAX_ITEMS)?;
        items.push(item(ovf, child, element)?);
    }
    let firmware = firmware.map(|f| match f {
        Firmware::Efi { .. } => Firmware::Efi { secure_boot },
        Firmware::Bios => Firmware::Bios,
    });
    let section = HardwareSection {
        virtual_system_type,
        firmware: Firmware::Bios,
        items,
    };
    Ok((section, firmware))
}

fn is_vmw_config(el: &Element) -> bool {
    el.ns() == Some(VMW_NS) && matches!(el.local(), "Config" | "ExtraConfig")
}

fn vmw_firmware(system_id: &str, value: &str) -> Result<Firmware, OvfError> {
    match value.to_ascii_lowercase().as_str() {
        "efi" => Ok(Firmware::Efi { secure_boot: false }),
        "bios" => Ok(Firmware::Bios),
        _ => Err(OvfError::UnknownFirmware {
            scope: format!("system '{}'", system_id.escape_debug()),
            value: Shown(value.to_owned()),
        }),
    }
}

fn item(ovf: &Ovf<'_>, el: &Element, element: ItemElement) -> Result<HardwareItem, OvfError> {
    let configurations = ovf
        .attr(el, "configuration")
        .map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|c| !c.is_empty());
    let range_bound = match ovf.attr(el, "bound").map(str::trim) {
        None | Some("normal") => false,
        Some("min" | "max") => true,
        Some(other) => {
            return Err(OvfError::InvalidValue {
                what: "ovf:bound of item".to_owned(),
                value: Shown(other.to_owned()),
                line: el.line(),
                expected: "bound (min, normal or max)",
            })
        }
    };
    let mut fields = Vec::with_capacity(el.children().len());
    for child in el.children() {
        room(
            "children in one hardware item",
            fields.len(),
            MAX_ITEM_FIELDS,
        )?;
        let name = match ovf.kind(child) {
            // oVirt writes `InstanceId`; CIM says `InstanceID`.
            Kind::Cim("InstanceId") => "InstanceID".to_owned(),
            Kind::Cim(local) => local.to_owned(),
            // oVirt puts its own unqualified children (BootOrder, Type, Device) in items.
            Kind::Ovf(local) => format!("ovf:{local}"),
            Kind::Vendor => {
                ovf.check_unread(child)?;
                clark(child.name())
            }
        };
        fields.push((name, child.text().trim().to_owned()));
    }
    Ok(HardwareItem {
        element,
        line: el.line(),
        configurations,
        range_bound,
        fields,
    })
}
