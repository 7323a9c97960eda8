//! The OVF descriptor: reading a `.ovf` into a validated [`Envelope`] and resolving one
//! system of it into an [`Appliance`] to import.
//!
//! Two layers, as DESIGN.md asks: `xml` turns bytes into a permissive element tree (any
//! prefix, unknown vendor elements kept), and one `TryFrom<&Element> for Envelope` holds
//! every check: unique ids, safe hrefs, every `Disk@fileRef` naming a `File` and no file
//! shared by two disks, every `HostResource` naming a disk (or, for CD-ROMs, a file),
//! capacities and memory through the units grammar with checked arithmetic, the
//! `ovf:required` rule for extensions, and the hardware of every system resolving under
//! every deployment option.
//!
//! Decisions worth knowing:
//! - `ovf:required` absent on an unknown section or vendor element means optional (the
//!   spec's default is `true`, but producers omit it on optional vendor data).
//! - A disk drive must name a `DiskSection` disk (`ovf:/disk/ID`); `ovf:/file/ID` is
//!   accepted only for CD-ROM media, since a bare file has no capacity or format.
//! - Items that share an `InstanceID` are merged as DSP0243 describes, after filtering by
//!   `ovf:configuration`; `ovf:bound="min|max"` items are range limits and are skipped.
//! - Hardware vmd does not model (USB, sound, video, serial, floppy) is ignored.
//!
//! Names and descriptions from the descriptor are data: they are escaped when shown and
//! never used as libvirt names. Plain code: no libvirt, no tokio, no printing, no files.

mod envelope;
mod error;
mod files;
mod hardware;
mod items;
mod model;
mod names;
mod select;
mod system;

pub use error::OvfError;
pub use model::{
    Appliance, ApplianceDisk, Bus, CdromAttachment, CollectionInfo, Compression, Controller,
    ControllerKind, DeploymentOption, DiskAttachment, DiskDef, DiskFormat, Envelope, FileRef,
    Firmware, Hardware, HardwareItem, HardwareSection, ItemElement, NetworkDef, Nic, OsInfo,
    OvfVersion, ProductInfo, Property, PropertyValue, ResolvedProperty, ResolvedSystem, Role,
    VirtualSystem,
};
pub use select::select;

use crate::ovf::xml;

/// Reads and validates an OVF descriptor. Never panics, whatever the bytes; memory and
/// time are bounded by `xml::Limits` and the caps on declared objects.
pub fn parse(bytes: &[u8]) -> Result<Envelope, OvfError> {
    let root = xml::read(bytes)?;
    Envelope::try_from(&root)
}

#[cfg(test)]
mod tests;
