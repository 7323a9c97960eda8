//! One `VirtualSystem`: name, product and properties, EULAs, operating system, annotation,
//! the hardware section, and the firmware hints vendors leave outside it (VirtualBox's
//! `vbox:Machine`, oVirt's `BiosType`).

use super::error::OvfError;
use super::items;
use super::model::{
    CollectionInfo, Firmware, OsInfo, ProductInfo, Property, PropertyValue, VirtualSystem,
};
use super::names::{non_empty, required_attr, Kind, Ovf, VBOX_NS, VMW_NS};
use crate::ovf::xml::{Element, Shown};

/// Appliances such as vCenter carry a few hundred properties; more is not a real package.
const MAX_PROPERTIES: usize = 4096;

/// Reads a `VirtualSystem` found under `collections`, with the collections' `eulas`.
pub(super) fn read(
    ovf: &Ovf<'_>,
    el: &Element,
    collections: Vec<CollectionInfo>,
    mut eulas: Vec<String>,
) -> Result<VirtualSystem, OvfError> {
    let id = required_attr(ovf, el, "VirtualSystem", "ovf:id")?;
    let mut product = None;
    let mut os = None;
    let mut annotation = None;
    let mut properties = Vec::new();
    let mut hardware = None;
    let mut vbox_firmware = None;
    let mut ovirt_firmware = None;
    for child in el.children() {
        match ovf.kind(child) {
            Kind::Ovf("Info" | "Name") => {}
            Kind::Ovf("ProductSection") => {
                let (info, props) = product_section(ovf, child)?;
                product.get_or_insert(info);
                properties.extend(props);
                if properties.len() > MAX_PROPERTIES {
                    return Err(OvfError::TooMany {
                        what: "properties in one system",
                        max: MAX_PROPERTIES,
                    });
                }
            }
            Kind::Ovf("EulaSection") => eulas.extend(ovf.child_text(child, "License")),
            Kind::Ovf("OperatingSystemSection") => {
                if os.is_none() {
                    os = Some(os_section(ovf, child));
                }
            }
            Kind::Ovf("AnnotationSection") => {
                annotation = annotation.or_else(|| ovf.child_text(child, "Annotation"));
            }
            // A system may describe its hardware for several platforms; the first wins.
            Kind::Ovf("VirtualHardwareSection") if hardware.is_none() => {
                hardware = Some(items::read(ovf, child, &id)?);
            }
            Kind::Ovf("BiosType") => ovirt_firmware = ovirt_bios_type(child.text()),
            Kind::Vendor if child.ns() == Some(VBOX_NS) && child.local() == "Machine" => {
                ovf.check_unread(child)?;
                vbox_firmware = vbox_machine_firmware(child);
            }
            _ => ovf.check_unread(child)?,
        }
    }
    let Some((mut hardware, vmw_firmware)) = hardware else {
        return Err(OvfError::Missing {
            element: "VirtualSystem",
            attribute: "VirtualHardwareSection",
            line: el.line(),
        });
    };
    hardware.firmware = vmw_firmware
        .or(vbox_firmware)
        .or(ovirt_firmware)
        .unwrap_or(Firmware::Bios);
    let mut keys: Vec<&str> = Vec::with_capacity(properties.len());
    for property in &properties {
        if keys.contains(&property.key.as_str()) {
            return Err(OvfError::Duplicate {
                kind: "property",
                id: Shown(property.key.clone()),
                line: el.line(),
            });
        }
        keys.push(&property.key);
    }
    Ok(VirtualSystem {
        id,
        name: ovf.child_text(el, "Name"),
        collections,
        product,
        os,
        annotation,
        eulas,
        properties,
        hardware,
    })
}

fn product_section(ovf: &Ovf<'_>, el: &Element) -> Result<(ProductInfo, Vec<Property>), OvfError> {
    let class = ovf.attr(el, "class").and_then(non_empty);
    let instance = ovf.attr(el, "instance").and_then(non_empty);
    let info = ProductInfo {
        product: ovf.child_text(el, "Product"),
        vendor: ovf.child_text(el, "Vendor"),
        version: ovf.child_text(el, "Version"),
        full_version: ovf.child_text(el, "FullVersion"),
        product_url: ovf.child_text(el, "ProductUrl"),
        vendor_url: ovf.child_text(el, "VendorUrl"),
        app_url: ovf.child_text(el, "AppUrl"),
    };
    let mut properties = Vec::new();
    for child in el.children() {
        match ovf.kind(child) {
            Kind::Ovf("Property") => {
                properties.push(property(ovf, child, class.as_deref(), instance.as_deref())?)
            }
            Kind::Ovf(_) => {}
            _ => ovf.check_unread(child)?,
        }
    }
    Ok((info, properties))
}

/// DSP0243 names a property in the OVF environment `[class.]key[.instance]`.
fn property(
    ovf: &Ovf<'_>,
    el: &Element,
    class: Option<&str>,
    instance: Option<&str>,
) -> Result<Property, OvfError> {
    let id = required_attr(ovf, el, "Property", "ovf:key")?;
    let key = [class, Some(id.as_str()), instance]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(".");
    let mut values = Vec::new();
    for value in ovf.children(el, "Value") {
        let configurations = ovf
            .attr(value, "configuration")
            .map(|c| c.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        values.push(PropertyValue {
            value: ovf.attr(value, "value").unwrap_or_default().to_owned(),
            configurations,
        });
    }
    Ok(Property {
        key,
        kind: ovf
            .attr(el, "type")
            .and_then(non_empty)
            .unwrap_or_else(|| "string".to_owned()),
        value: ovf.attr(el, "value").map(str::to_owned),
        values,
        user_configurable: ovf.bool_attr(el, "userConfigurable")?.unwrap_or(false),
        password: ovf.bool_attr(el, "password")?.unwrap_or(false),
        label: ovf.child_text(el, "Label"),
        description: ovf.child_text(el, "Description"),
    })
}

fn os_section(ovf: &Ovf<'_>, el: &Element) -> OsInfo {
    // oVirt has written non-numeric ids here; an id that is not a CIM number is dropped.
    let id = ovf.attr(el, "id").and_then(|v| v.trim().parse().ok());
    let vbox_os_type = el
        .children()
        .iter()
        .find(|c| c.ns() == Some(VBOX_NS) && c.local() == "OSType")
        .and_then(|c| non_empty(c.text()));
    OsInfo {
        id,
        version: ovf.attr(el, "version").and_then(non_empty),
        description: ovf.child_text(el, "Description"),
        vmw_os_type: el.attr(Some(VMW_NS), "osType").and_then(non_empty),
        vbox_os_type,
    }
}

/// VirtualBox embeds its own machine settings; `Firmware type="EFI..."` sits under
/// `Hardware` (up to 6.x/7.0) or `Platform` (7.1).
fn vbox_machine_firmware(machine: &Element) -> Option<Firmware> {
    let sections = machine
        .children()
        .iter()
        .filter(|c| matches!(c.local(), "Hardware" | "Platform"));
    let firmware = sections
        .flat_map(|s| s.children())
        .find(|c| c.local() == "Firmware")?;
    let kind = firmware.attr(None, "type")?.trim().to_ascii_uppercase();
    Some(if kind.starts_with("EFI") {
        Firmware::Efi { secure_boot: false }
    } else {
        Firmware::Bios
    })
}

/// oVirt's `BiosType`: 3 is Q35 with OVMF, 4 is Q35 with OVMF and Secure Boot.
fn ovirt_bios_type(text: &str) -> Option<Firmware> {
    match text.trim() {
        "3" => Some(Firmware::Efi { secure_boot: false }),
        "4" => Some(Firmware::Efi { secure_boot: true }),
        "" => None,
        _ => Some(Firmware::Bios),
    }
}
