//! `OvfError`: why a descriptor was rejected or a system could not be selected. Messages
//! name the element, id or line and the problem; descriptor-derived strings are wrapped in
//! `Shown` so they are escaped when printed.

use crate::ovf::units::UnitsError;
use crate::ovf::xml::{Shown, XmlError};

/// A rejected descriptor or selection.
#[derive(Debug, thiserror::Error)]
pub enum OvfError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("ovf descriptor root is <{found}>, not an OVF 0.9, 1.x or 2.x Envelope")]
    NotAnEnvelope { found: Shown },
    #[error("<{element}> at line {line} has no {attribute}")]
    Missing {
        element: &'static str,
        attribute: &'static str,
        line: u64,
    },
    #[error("{what} at line {line} is '{value}', which is not a valid {expected}")]
    InvalidValue {
        what: String,
        value: Shown,
        line: u64,
        expected: &'static str,
    },
    #[error("{kind} '{id}' is declared twice (line {line})")]
    Duplicate {
        kind: &'static str,
        id: Shown,
        line: u64,
    },
    #[error("ovf descriptor declares more than {max} {what}")]
    TooMany { what: &'static str, max: usize },
    #[error("file '{id}' has unsafe href '{href}': {reason}")]
    UnsafeHref {
        id: Shown,
        href: Shown,
        reason: &'static str,
    },
    #[error("file '{id}' uses compression '{compression}'; only gzip is supported")]
    UnsupportedCompression { id: Shown, compression: Shown },
    #[error("files '{first}' and '{second}' both have href '{href}'")]
    SharedHref {
        first: Shown,
        second: Shown,
        href: Shown,
    },
    #[error("disk '{disk}' names file '{file}', which References does not list")]
    UnknownFile { disk: Shown, file: Shown },
    #[error("disks '{first}' and '{second}' both use file '{file}'")]
    SharedFile {
        first: Shown,
        second: Shown,
        file: Shown,
    },
    #[error("disk '{disk}' has format '{format}', which vmd cannot import")]
    UnsupportedDiskFormat { disk: Shown, format: Shown },
    #[error("disk '{disk}' is a delta of disk '{parent}' (ovf:parentRef); disk chains are not supported")]
    DeltaDisk { disk: Shown, parent: Shown },
    #[error("{what} is not a valid size")]
    Size {
        what: String,
        #[source]
        source: UnitsError,
    },
    #[error("{what} is {value}, outside the supported range {min}..={max}")]
    OutOfRange {
        what: String,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("unsupported required section {name}")]
    UnsupportedRequired { name: Shown },
    #[error("ovf descriptor has an EncryptionSection (line {line}); encrypted packages are not supported")]
    Encrypted { line: u64 },
    #[error("ovf descriptor holds no VirtualSystem")]
    NoSystems,
    #[error("deployment options '{first}' and '{second}' are both marked default")]
    TwoDefaults { first: Shown, second: Shown },
    #[error("{what} names configuration '{configuration}', which DeploymentOptionSection does not declare")]
    UnknownConfiguration { what: String, configuration: Shown },
    #[error("{scope}: item at line {line} has no {field}")]
    ItemField {
        scope: String,
        line: u64,
        field: &'static str,
    },
    #[error("{scope}: item at line {line} names {kind} '{id}', which {section} does not list")]
    UnknownReference {
        scope: String,
        line: u64,
        kind: &'static str,
        id: Shown,
        section: &'static str,
    },
    #[error("{scope}: item at line {line} has host resource '{resource}', which vmd cannot use for {device}")]
    UnsupportedHostResource {
        scope: String,
        line: u64,
        resource: Shown,
        device: &'static str,
    },
    #[error("{scope}: items with InstanceID '{id}' disagree on their resource type")]
    ConflictingItems { scope: String, id: Shown },
    #[error("{scope}: {count} {resource} items apply; exactly one is needed")]
    ResourceCount {
        scope: String,
        resource: &'static str,
        count: usize,
    },
    #[error("{scope}: item at line {line} is attached to '{parent}', which is not a storage controller item")]
    UnknownParent {
        scope: String,
        line: u64,
        parent: Shown,
    },
    #[error("{scope}: controllers share InstanceID '{id}'")]
    DuplicateController { scope: String, id: Shown },
    #[error("{scope}: two devices sit at unit {unit} of controller '{controller}'")]
    DuplicateUnit {
        scope: String,
        controller: Shown,
        unit: u32,
    },
    #[error("{scope}: disk '{disk}' is attached twice")]
    DiskAttachedTwice { scope: String, disk: Shown },
    #[error("{scope}: vmw:CoresPerSocket {cores} does not divide {vcpus} vcpus")]
    CoresPerSocket {
        scope: String,
        cores: u32,
        vcpus: u32,
    },
    #[error("{scope}: firmware '{value}' is neither bios nor efi")]
    UnknownFirmware { scope: String, value: Shown },
    #[error("package holds systems {ids}: choose one with --system")]
    ChooseSystem { ids: Shown },
    #[error("package has no system '{id}'; it holds {ids}")]
    UnknownSystem { id: Shown, ids: Shown },
    #[error("package has no deployment option '{id}'; it offers {ids}")]
    UnknownDeployment { id: Shown, ids: Shown },
    #[error("package declares no deployment options, so '{id}' cannot be chosen")]
    NoDeploymentOptions { id: Shown },
}

/// Fails when `len` declared objects already fill the cap `max`; called before each push
/// so that hostile counts are refused before any per-object work multiplies.
pub(crate) fn room(what: &'static str, len: usize, max: usize) -> Result<(), OvfError> {
    if len >= max {
        return Err(OvfError::TooMany { what, max });
    }
    Ok(())
}

/// `a, b, c`, for messages that list ids.
pub(crate) fn list<'a>(ids: impl IntoIterator<Item = &'a str>) -> Shown {
    Shown(ids.into_iter().collect::<Vec<_>>().join(", "))
}
