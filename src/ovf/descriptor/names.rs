//! Namespace knowledge: which URIs mean OVF, CIM and the vendor extensions vmd reads, and
//! how an element is classified (OVF element, CIM field, vendor extension) whatever prefix
//! or default namespace the producer chose. Owns the `ovf:required` rule for extensions.

use super::error::OvfError;
use super::model::OvfVersion;
use crate::ovf::xml::{Element, Name, Shown};

pub(crate) const VMW_NS: &str = "http://www.vmware.com/schema/ovf";
pub(crate) const VBOX_NS: &str = "http://www.virtualbox.org/ovf/machine";

const CIM_PREFIX: &str = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_";
const CIM_CLASSES: [&str; 4] = [
    "ResourceAllocationSettingData",
    "StorageAllocationSettingData",
    "EthernetPortAllocationSettingData",
    "VirtualSystemSettingData",
];

/// Every element name DSP0243 0.9 to 2.x defines where sections may appear. Knowing a
/// section is not supporting it: known sections are read or deliberately ignored.
const KNOWN_OVF: [&str; 27] = [
    "Info",
    "Name",
    "References",
    "Strings",
    "Section",
    "Content",
    "VirtualSystem",
    "VirtualSystemCollection",
    "AnnotationSection",
    "ProductSection",
    "EulaSection",
    "VirtualHardwareSection",
    "ResourceAllocationSection",
    "InstallSection",
    "StartupSection",
    "DeploymentOptionSection",
    "OperatingSystemSection",
    "NetworkSection",
    "DiskSection",
    "PlacementGroupSection",
    "PlacementSection",
    "EncryptionSection",
    "CompatibilitySection",
    "EnvironmentFilesSection",
    "BootDeviceSection",
    "SharedDiskSection",
    "ScaleOutSection",
];

/// The OVF envelope namespaces, with the variants real producers write.
pub(crate) fn envelope_version(ns: &str) -> Option<OvfVersion> {
    match ns {
        "http://schemas.dmtf.org/ovf/envelope/1" => Some(OvfVersion::V1),
        // Older oVirt engines wrote the 1.x namespace with a trailing slash.
        "http://schemas.dmtf.org/ovf/envelope/1/" => Some(OvfVersion::V1),
        "http://schemas.dmtf.org/ovf/envelope/2" | "http://schemas.dmtf.org/ovf/envelope/2/" => {
            Some(OvfVersion::V2)
        }
        "http://www.vmware.com/schema/ovf/1/envelope" => Some(OvfVersion::V0_9),
        _ => None,
    }
}

/// The CIM setting-data namespaces (`rasd`, `sasd`, `epasd`, `vssd`). VirtualBox writes the
/// `sasd` and `epasd` URIs with a trailing `.xsd`, so that form is accepted too.
pub(crate) fn is_cim(ns: Option<&str>) -> bool {
    let Some(class) = ns.and_then(|ns| ns.strip_prefix(CIM_PREFIX)) else {
        return false;
    };
    let class = class.strip_suffix(".xsd").unwrap_or(class);
    CIM_CLASSES.contains(&class)
}

/// Where an element stands relative to OVF.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind<'e> {
    /// An OVF element, by local name; OVF 0.9 `Section`/`Content` report their
    /// `xsi:type` without the `_Type` suffix (`DiskSection`, `VirtualSystem`).
    Ovf(&'e str),
    /// A CIM setting-data field (`rasd:ResourceType`).
    Cim(&'e str),
    /// Anything else: a vendor extension.
    Vendor,
}

/// Lookups in the namespace of one descriptor's envelope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ovf<'a> {
    ns: &'a str,
}

impl<'a> Ovf<'a> {
    pub(crate) fn new(ns: &'a str) -> Self {
        Ovf { ns }
    }

    fn is_ovf_ns(&self, ns: Option<&str>) -> bool {
        // oVirt writes sections unqualified under a prefixed `ovf:Envelope`; accept no
        // namespace as the envelope's own.
        ns.is_none() || ns == Some(self.ns)
    }

    /// Classifies `el`.
    pub(crate) fn kind<'e>(&self, el: &'e Element) -> Kind<'e> {
        if is_cim(el.ns()) {
            return Kind::Cim(el.local());
        }
        if !self.is_ovf_ns(el.ns()) {
            return Kind::Vendor;
        }
        if matches!(el.local(), "Section" | "Content") {
            if let Some(t) = el.xsi_type() {
                if t.ns().is_none_or(|ns| envelope_version(ns).is_some()) {
                    return Kind::Ovf(t.local().strip_suffix("_Type").unwrap_or(t.local()));
                }
                return Kind::Vendor;
            }
        }
        Kind::Ovf(el.local())
    }

    /// Whether `el` is the OVF element `local`.
    pub(crate) fn is(&self, el: &Element, local: &str) -> bool {
        self.kind(el) == Kind::Ovf(local)
    }

    /// The OVF children of `el` named `local`.
    pub(crate) fn children<'e>(
        &'e self,
        el: &'e Element,
        local: &'e str,
    ) -> impl Iterator<Item = &'e Element> + 'e {
        el.children().iter().filter(move |c| self.is(c, local))
    }

    /// The text of the first OVF child `local`, trimmed; `None` when absent or empty.
    pub(crate) fn child_text(&self, el: &Element, local: &str) -> Option<String> {
        self.children(el, local)
            .next()
            .and_then(|c| non_empty(c.text()))
    }

    /// The OVF attribute `local` (`ovf:local`), falling back to the unqualified form that
    /// some producers write.
    pub(crate) fn attr<'e>(&self, el: &'e Element, local: &str) -> Option<&'e str> {
        el.attr(Some(self.ns), local)
            .or_else(|| el.attr(None, local))
    }

    /// An `xs:boolean` OVF attribute; `None` when absent.
    pub(crate) fn bool_attr(&self, el: &Element, local: &str) -> Result<Option<bool>, OvfError> {
        xs_boolean(el, local, self.attr(el, local))
    }

    /// `ovf:required`, qualified only: a vendor's own unqualified `required` attribute
    /// means whatever the vendor says, not the OVF extension rule.
    fn required(&self, el: &Element) -> Result<bool, OvfError> {
        Ok(xs_boolean(el, "required", el.attr(Some(self.ns), "required"))? == Some(true))
    }

    /// Applies the extension rule to an element vmd does not read: an unknown section or
    /// vendor element marked `ovf:required="true"` must fail the import; without the
    /// attribute, or with `false`, it is ignored. Known OVF sections always pass, except
    /// `EncryptionSection`, since encrypted files cannot be imported at all.
    pub(crate) fn check_unread(&self, el: &Element) -> Result<(), OvfError> {
        match self.kind(el) {
            Kind::Cim(_) => Ok(()),
            Kind::Ovf("EncryptionSection") => Err(OvfError::Encrypted { line: el.line() }),
            Kind::Ovf(local) if KNOWN_OVF.contains(&local) => Ok(()),
            Kind::Ovf(_) | Kind::Vendor => {
                if self.required(el)? {
                    let name = match el.xsi_type() {
                        Some(t) => t.clone(),
                        None => el.name().clone(),
                    };
                    return Err(OvfError::UnsupportedRequired {
                        name: Shown(clark(&name)),
                    });
                }
                Ok(())
            }
        }
    }
}

/// `{namespace}local`, unescaped (the error type escapes it when shown).
pub(crate) fn clark(name: &Name) -> String {
    match name.ns() {
        Some(ns) => format!("{{{ns}}}{}", name.local()),
        None => name.local().to_owned(),
    }
}

/// Trimmed text, `None` when nothing is left.
pub(crate) fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// A required OVF attribute, trimmed and non-empty.
pub(crate) fn required_attr(
    ovf: &Ovf<'_>,
    el: &Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<String, OvfError> {
    let local = attribute.trim_start_matches("ovf:");
    ovf.attr(el, local)
        .and_then(non_empty)
        .ok_or(OvfError::Missing {
            element,
            attribute,
            line: el.line(),
        })
}

/// An `xs:boolean` attribute value; `None` when absent.
fn xs_boolean(el: &Element, local: &str, raw: Option<&str>) -> Result<Option<bool>, OvfError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match raw.trim() {
        "true" | "1" | "True" | "TRUE" => Ok(Some(true)),
        "false" | "0" | "False" | "FALSE" => Ok(Some(false)),
        _ => Err(OvfError::InvalidValue {
            what: format!("ovf:{local} of <{}>", el.local().escape_debug()),
            value: Shown(raw.to_owned()),
            line: el.line(),
            expected: "boolean (true or false)",
        }),
    }
}
