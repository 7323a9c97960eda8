//! Bounded, namespace-aware XML reading for OVF descriptors: untrusted bytes become a small
//! element tree (the permissive wire model) that `descriptor` then validates.
//!
//! This module owns the byte-level defences: caps on document size, element count, depth,
//! attribute count and length, text length and namespace declarations; no DTD of any kind
//! (so no internal, external or parameter entities); UTF-8 only; unknown entity references
//! and XML-forbidden control characters are errors. It must not know anything about OVF,
//! open files, reach the network, or panic on any input.

mod builder;
mod error;
mod tree;

pub use error::XmlError;
pub use tree::{Attribute, Element, Name, Shown};

/// Caps that keep reading a hostile descriptor bounded in memory and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted document, in bytes.
    pub max_bytes: usize,
    /// Most elements in the whole document.
    pub max_elements: usize,
    /// Deepest element nesting (the root is depth 1).
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
    /// Longest attribute value, in bytes.
    pub max_attribute_len: usize,
    /// Longest text content of one element, in bytes.
    pub max_text_len: usize,
    /// Most namespace declarations in scope at any point.
    pub max_namespaces_in_scope: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Real descriptors are tens of KiB with a few thousand elements, nest about ten
        // deep and carry at most ~20 attributes per element. Text may hold a whole EULA,
        // so it gets more room than attributes.
        Limits {
            max_bytes: 4 * 1024 * 1024,
            max_elements: 100_000,
            max_depth: 64,
            max_attributes: 64,
            max_attribute_len: 64 * 1024,
            max_text_len: 1024 * 1024,
            max_namespaces_in_scope: 128,
        }
    }
}

/// Reads `bytes` into an element tree under the default [`Limits`].
pub fn read(bytes: &[u8]) -> Result<Element, XmlError> {
    read_with(bytes, &Limits::default())
}

/// Reads `bytes` into an element tree under `limits`.
pub fn read_with(bytes: &[u8], limits: &Limits) -> Result<Element, XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(XmlError::Empty);
    }
    if looks_utf16(bytes) {
        return Err(XmlError::Utf16);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| XmlError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_chars(text, 1)?;
    builder::Builder::new(text, limits).run()
}

/// UTF-16 by byte-order mark, or by the zero byte next to the leading `<` that an
/// unmarked UTF-16 document has.
fn looks_utf16(bytes: &[u8]) -> bool {
    matches!(
        bytes,
        [0xfe, 0xff, ..] | [0xff, 0xfe, ..] | [0, b'<', ..] | [b'<', 0, ..]
    )
}

/// Rejects the C0 controls XML 1.0 forbids (all but tab, newline and carriage return).
pub(super) fn check_chars(s: &str, first_line: u64) -> Result<(), XmlError> {
    match s.char_indices().find(|(_, c)| is_forbidden(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(XmlError::ControlCharacter {
            code: u32::from(c),
            line: first_line.saturating_add(count_newlines(&s.as_bytes()[..at])),
        }),
    }
}

fn is_forbidden(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
}

pub(super) fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests;
