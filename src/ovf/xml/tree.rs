//! The element tree `read` produces: resolved names, attributes, children and text. Read-only
//! outside `xml`; only the builder constructs it.

use std::fmt;
use std::sync::Arc;

/// A document-derived string shown in a message with control, bidi and quote characters
/// escaped, so that a hostile name cannot rewrite a terminal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(pub String);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_debug())
    }
}

impl From<&str> for Shown {
    fn from(s: &str) -> Self {
        Shown(s.to_owned())
    }
}

/// A namespace-resolved name: the namespace URI (if any) and the local part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub(super) ns: Option<Arc<str>>,
    pub(super) local: String,
}

impl Name {
    /// The namespace URI, `None` for names in no namespace.
    pub fn ns(&self) -> Option<&str> {
        self.ns.as_deref()
    }

    /// The local part, without prefix.
    pub fn local(&self) -> &str {
        &self.local
    }
}

impl fmt::Display for Name {
    /// Clark notation, `{namespace}local`, escaped for display.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ns {
            Some(ns) => write!(f, "{{{}}}{}", ns.escape_debug(), self.local.escape_debug()),
            None => write!(f, "{}", self.local.escape_debug()),
        }
    }
}

/// One attribute, namespace declarations excluded; its value is unescaped and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub(super) name: Name,
    pub(super) value: String,
}

impl Attribute {
    /// The resolved attribute name (unprefixed attributes are in no namespace).
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The attribute value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// One element of the tree: resolved name, attributes, child elements and direct text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub(super) name: Name,
    pub(super) attributes: Vec<Attribute>,
    pub(super) children: Vec<Element>,
    pub(super) text: String,
    pub(super) line: u64,
    pub(super) xsi_type: Option<Name>,
}

impl Element {
    /// The resolved element name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The element's namespace URI.
    pub fn ns(&self) -> Option<&str> {
        self.name.ns()
    }

    /// The element's local name.
    pub fn local(&self) -> &str {
        self.name.local()
    }

    /// The line (1-based) where the start tag ends.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Attributes in document order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// Child elements in document order.
    pub fn children(&self) -> &[Element] {
        &self.children
    }

    /// Direct text content (CDATA included); whitespace between child elements is dropped.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value of the attribute `{ns}local`.
    pub fn attr(&self, ns: Option<&str>, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.ns() == ns && a.name.local() == local)
            .map(|a| a.value())
    }

    /// The `xsi:type` attribute, its QName resolved against the namespaces in scope.
    pub fn xsi_type(&self) -> Option<&Name> {
        self.xsi_type.as_ref()
    }
}
