//! The event loop over quick-xml's `NsReader` that builds the tree and enforces the caps
//! element by element.

use std::collections::HashMap;
use std::sync::Arc;

use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::NsReader;

use super::{check_chars, count_newlines, Attribute, Element, Limits, Name, Shown, XmlError};

/// The `xsi:` namespace, whose `type` attribute OVF 0.9 uses to name section types.
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Maps byte offsets to 1-based line numbers; offsets only grow while reading.
struct Lines<'a> {
    src: &'a [u8],
    pos: usize,
    line: u64,
}

impl Lines<'_> {
    fn at(&mut self, offset: u64) -> u64 {
        let offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.src.len());
        if offset < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        self.line += count_newlines(&self.src[self.pos..offset]);
        self.pos = offset;
        self.line
    }
}

pub(super) struct Builder<'a> {
    reader: NsReader<&'a [u8]>,
    lines: Lines<'a>,
    limits: &'a Limits,
    interned: HashMap<Vec<u8>, Arc<str>>,
    stack: Vec<Element>,
    /// Namespace declarations made by each open element, parallel to `stack`.
    declared: Vec<usize>,
    in_scope: usize,
    elements: usize,
    root: Option<Element>,
    seen_event: bool,
}

impl<'a> Builder<'a> {
    pub(super) fn new(src: &'a str, limits: &'a Limits) -> Self {
        let mut reader = NsReader::from_str(src);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Builder {
            reader,
            lines: Lines {
                src: src.as_bytes(),
                pos: 0,
                line: 1,
            },
            limits,
            interned: HashMap::new(),
            stack: Vec::new(),
            declared: Vec::new(),
            in_scope: 0,
            elements: 0,
            root: None,
            seen_event: false,
        }
    }

    pub(super) fn run(mut self) -> Result<Element, XmlError> {
        loop {
            let (resolved, event) = match self.reader.read_resolved_event() {
                Ok(pair) => pair,
                Err(source) => {
                    let line = self.lines.at(self.reader.error_position());
                    return Err(XmlError::Syntax { line, source });
                }
            };
            let ns = match resolved {
                ResolveResult::Bound(ns) => Some(intern(&mut self.interned, ns.into_inner())),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(prefix) => {
                    let line = self.lines.at(self.reader.buffer_position());
                    let name = match &event {
                        Event::Start(e) | Event::Empty(e) => lossy(e.name().into_inner()),
                        Event::End(e) => lossy(e.name().into_inner()),
                        _ => String::new(),
                    };
                    return Err(XmlError::UndeclaredPrefix {
                        name: Shown(name),
                        prefix: Shown(lossy(&prefix)),
                        line,
                    });
                }
            };
            let first = !self.seen_event;
            self.seen_event = true;
            match event {
                Event::Start(e) => self.open(ns, &e, false)?,
                Event::Empty(e) => self.open(ns, &e, true)?,
                Event::End(_) => self.close()?,
                Event::Text(t) => self.text(&t, true)?,
                Event::CData(t) => self.text(&t, false)?,
                Event::Decl(d) => self.declaration(&d, first)?,
                Event::DocType(_) => return Err(XmlError::Dtd),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.pop() {
            return Err(XmlError::Truncated {
                element: Shown(open.name.local),
            });
        }
        self.root.ok_or(XmlError::NoRoot)
    }

    fn line(&mut self) -> u64 {
        self.lines.at(self.reader.buffer_position())
    }

    fn declaration(
        &mut self,
        decl: &quick_xml::events::BytesDecl<'_>,
        first: bool,
    ) -> Result<(), XmlError> {
        let line = self.line();
        if !first {
            return Err(XmlError::MisplacedDeclaration { line });
        }
        let version = decl
            .version()
            .map_err(|source| XmlError::Syntax { line, source })?;
        if &*version != b"1.0" {
            return Err(XmlError::UnsupportedVersion(Shown(lossy(&version))));
        }
        if let Some(encoding) = decl.encoding() {
            let encoding = encoding.map_err(|source| XmlError::Attribute {
                element: Shown("?xml".to_owned()),
                line,
                source,
            })?;
            let name = lossy(&encoding).to_ascii_lowercase();
            if !matches!(name.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                return Err(XmlError::UnsupportedEncoding(Shown(lossy(&encoding))));
            }
        }
        Ok(())
    }

    fn open(
        &mut self,
        ns: Option<Arc<str>>,
        e: &BytesStart<'_>,
        empty: bool,
    ) -> Result<(), XmlError> {
        let line = self.line();
        let local = lossy(e.local_name().into_inner());
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(XmlError::TooManyElements {
                max: self.limits.max_elements,
            });
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(XmlError::TooDeep {
                max: self.limits.max_depth,
                line,
            });
        }
        if self.stack.is_empty() && self.root.is_some() {
            return Err(XmlError::SecondRoot { line });
        }
        let (attributes, declared, xsi_type) = self.attributes(e, &local, line)?;
        self.in_scope += declared;
        if self.in_scope > self.limits.max_namespaces_in_scope {
            return Err(XmlError::TooManyNamespaces {
                max: self.limits.max_namespaces_in_scope,
                line,
            });
        }
        if let Some(parent) = self.stack.last_mut() {
            // Whitespace that only indents child elements is not content.
            if parent.text.trim().is_empty() {
                parent.text.clear();
            }
        }
        let element = Element {
            name: Name { ns, local },
            attributes,
            children: Vec::new(),
            text: String::new(),
            line,
            xsi_type,
        };
        self.stack.push(element);
        self.declared.push(declared);
        if empty {
            self.close()?;
        }
        Ok(())
    }

    fn attributes(
        &mut self,
        e: &BytesStart<'_>,
        element: &str,
        line: u64,
    ) -> Result<(Vec<Attribute>, usize, Option<Name>), XmlError> {
        let mut attributes: Vec<Attribute> = Vec::new();
        let mut declared = 0usize;
        let mut xsi_type = None;
        // The duplicate check in `attributes()` is quadratic, so the count cap must stop
        // the iteration before a hostile element gets expensive.
        for (count, attr) in e.attributes().enumerate() {
            if count >= self.limits.max_attributes {
                return Err(XmlError::TooManyAttributes {
                    element: Shown(element.to_owned()),
                    line,
                    max: self.limits.max_attributes,
                });
            }
            let attr = attr.map_err(|source| XmlError::Attribute {
                element: Shown(element.to_owned()),
                line,
                source,
            })?;
            let raw_key = attr.key.into_inner();
            if raw_key == b"xmlns" || raw_key.starts_with(b"xmlns:") {
                declared += 1;
                continue;
            }
            let local = lossy(attr.key.local_name().into_inner());
            if attr.value.len() > self.limits.max_attribute_len {
                return Err(XmlError::AttributeTooLong {
                    element: Shown(element.to_owned()),
                    attribute: Shown(lossy(raw_key)),
                    line,
                    max: self.limits.max_attribute_len,
                });
            }
            let value = attribute_value(&attr.value, line)?;
            let ns = match self.reader.resolve_attribute(attr.key).0 {
                ResolveResult::Bound(ns) => Some(intern(&mut self.interned, ns.into_inner())),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(prefix) => {
                    return Err(XmlError::UndeclaredPrefix {
                        name: Shown(lossy(raw_key)),
                        prefix: Shown(lossy(&prefix)),
                        line,
                    })
                }
            };
            let name = Name { ns, local };
            if attributes.iter().any(|a| a.name == name) {
                return Err(XmlError::DuplicateAttribute {
                    element: Shown(element.to_owned()),
                    attribute: Shown(lossy(raw_key)),
                    line,
                });
            }
            if name.ns() == Some(XSI_NS) && name.local() == "type" {
                xsi_type = Some(self.resolve_qname_value(&value, line)?);
            }
            attributes.push(Attribute { name, value });
        }
        Ok((attributes, declared, xsi_type))
    }

    /// Resolves a QName held in an attribute value (`xsi:type="ovf:DiskSection_Type"`).
    fn resolve_qname_value(&mut self, value: &str, line: u64) -> Result<Name, XmlError> {
        let value = value.trim();
        let (resolved, local) = self.reader.resolve_element(QName(value.as_bytes()));
        let ns = match resolved {
            ResolveResult::Bound(ns) => Some(intern(&mut self.interned, ns.into_inner())),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(XmlError::UndeclaredPrefix {
                    name: Shown(value.to_owned()),
                    prefix: Shown(lossy(&prefix)),
                    line,
                })
            }
        };
        Ok(Name {
            ns,
            local: lossy(local.into_inner()),
        })
    }

    fn close(&mut self) -> Result<(), XmlError> {
        let Some(mut element) = self.stack.pop() else {
            // quick-xml reports unmatched end tags itself; this only guards the invariant.
            let line = self.line();
            return Err(XmlError::SecondRoot { line });
        };
        self.in_scope = self
            .in_scope
            .saturating_sub(self.declared.pop().unwrap_or(0));
        if !element.children.is_empty() && element.text.trim().is_empty() {
            element.text.clear();
        }
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(element),
            None => self.root = Some(element),
        }
        Ok(())
    }

    fn text(&mut self, raw: &[u8], escaped: bool) -> Result<(), XmlError> {
        let line = self.line();
        let raw = lossy(raw);
        let Some(parent) = self.stack.last_mut() else {
            if raw.trim().is_empty() {
                return Ok(());
            }
            return Err(XmlError::TextOutsideRoot { line });
        };
        if !parent.children.is_empty() && raw.trim().is_empty() {
            return Ok(());
        }
        let normalised = raw.replace("\r\n", "\n").replace('\r', "\n");
        let value = if escaped {
            unescape(&normalised, line)?
        } else {
            normalised
        };
        if parent.text.len().saturating_add(value.len()) > self.limits.max_text_len {
            return Err(XmlError::TextTooLong {
                element: Shown(parent.name.local.clone()),
                line,
                max: self.limits.max_text_len,
            });
        }
        parent.text.push_str(&value);
        Ok(())
    }
}

/// Attribute-value normalisation (XML 1.0 §3.3.3): literal tab, newline and carriage return
/// become spaces; characters written as references are kept.
fn attribute_value(raw: &[u8], line: u64) -> Result<String, XmlError> {
    let raw = lossy(raw).replace("\r\n", " ");
    let normalised: String = raw
        .chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect();
    unescape(&normalised, line)
}

fn unescape(raw: &str, line: u64) -> Result<String, XmlError> {
    let value = quick_xml::escape::unescape(raw).map_err(|source| match source {
        EscapeError::UnrecognizedEntity(_, entity) => XmlError::UnknownEntity {
            entity: Shown(entity),
            line,
        },
        source => XmlError::Escape { line, source },
    })?;
    // Character references can smuggle in what the raw-text scan rejected.
    check_chars(&value, line)?;
    Ok(value.into_owned())
}

fn intern(table: &mut HashMap<Vec<u8>, Arc<str>>, ns: &[u8]) -> Arc<str> {
    if let Some(known) = table.get(ns) {
        return Arc::clone(known);
    }
    let shared: Arc<str> = Arc::from(lossy(ns));
    table.insert(ns.to_vec(), Arc::clone(&shared));
    shared
}

/// The input was validated as UTF-8 up front, so slices of it decode losslessly; the lossy
/// form only keeps this path panic-free.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
