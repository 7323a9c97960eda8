//! `XmlError`: why bytes could not be read as a bounded, well-formed XML tree.

use quick_xml::escape::EscapeError;
use quick_xml::events::attributes::AttrError;

use super::Shown;

/// Why a descriptor could not be read as XML.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("ovf descriptor is {size} bytes, over the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("ovf descriptor is empty")]
    Empty,
    #[error("ovf descriptor is UTF-16 encoded; only UTF-8 is supported")]
    Utf16,
    #[error("ovf descriptor is not valid UTF-8 (bad byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error("ovf descriptor declares encoding '{0}'; only UTF-8 is supported")]
    UnsupportedEncoding(Shown),
    #[error("ovf descriptor declares XML version '{0}'; only 1.0 is supported")]
    UnsupportedVersion(Shown),
    #[error("ovf descriptor contains a DTD, which is not allowed")]
    Dtd,
    #[error("ovf descriptor contains control character U+{code:04X} at line {line}")]
    ControlCharacter { code: u32, line: u64 },
    #[error("ovf descriptor has more than {max} elements")]
    TooManyElements { max: usize },
    #[error("ovf descriptor nests elements deeper than {max} levels at line {line}")]
    TooDeep { max: usize, line: u64 },
    #[error("element <{element}> at line {line} has more than {max} attributes")]
    TooManyAttributes {
        element: Shown,
        line: u64,
        max: usize,
    },
    #[error("ovf descriptor has more than {max} namespace declarations in scope at line {line}")]
    TooManyNamespaces { max: usize, line: u64 },
    #[error("attribute '{attribute}' of <{element}> at line {line} is longer than {max} bytes")]
    AttributeTooLong {
        element: Shown,
        attribute: Shown,
        line: u64,
        max: usize,
    },
    #[error("text of <{element}> at line {line} is longer than {max} bytes")]
    TextTooLong {
        element: Shown,
        line: u64,
        max: usize,
    },
    #[error("'{name}' at line {line} uses undeclared namespace prefix '{prefix}'")]
    UndeclaredPrefix {
        name: Shown,
        prefix: Shown,
        line: u64,
    },
    #[error("element <{element}> at line {line} has attribute '{attribute}' twice")]
    DuplicateAttribute {
        element: Shown,
        attribute: Shown,
        line: u64,
    },
    #[error("ovf descriptor uses unknown entity '&{entity};' at line {line}")]
    UnknownEntity { entity: Shown, line: u64 },
    #[error("ovf descriptor has an invalid character reference at line {line}")]
    Escape {
        line: u64,
        #[source]
        source: EscapeError,
    },
    #[error("malformed attribute in <{element}> at line {line}")]
    Attribute {
        element: Shown,
        line: u64,
        #[source]
        source: AttrError,
    },
    #[error("ovf descriptor is not well-formed XML at line {line}")]
    Syntax {
        line: u64,
        #[source]
        source: quick_xml::Error,
    },
    #[error("ovf descriptor has an XML declaration that is not at its start (line {line})")]
    MisplacedDeclaration { line: u64 },
    #[error("ovf descriptor has no root element")]
    NoRoot,
    #[error("ovf descriptor has a second root element at line {line}")]
    SecondRoot { line: u64 },
    #[error("ovf descriptor has text outside the root element at line {line}")]
    TextOutsideRoot { line: u64 },
    #[error("ovf descriptor ends inside <{element}>")]
    Truncated { element: Shown },
}
