//! Renders a domain's libvirt XML from a minijinja template: the built-in
//! `templates/domain.xml` or the user's `--template FILE`, with a [`DomainSpec`] as the
//! context.
//!
//! Owns XML escaping of every value, the template's filters (`disk_xml`: a disk element from
//! the one disk writer, [`super::disk`]; `sd_name`: a unit's target name) and the
//! well-formedness check of the result. It must not talk to libvirt, read files, or build
//! XML with `format!`: values reach the document only through the escaping formatter or
//! the typed disk writer.

use minijinja::value::ViaDeserialize;
use minijinja::{AutoEscape, Environment, ErrorKind, Output, State, UndefinedBehavior, Value};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{escape, is_xml_char, Unwritable};
use crate::host::{DiskSpec, DomainDefinition, DomainSpec};

/// The built-in domain template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../../templates/domain.xml");

/// How errors name the built-in template.
pub const DEFAULT_TEMPLATE_NAME: &str = "templates/domain.xml";

/// The name errors give a template passed to [`render`].
#[cfg(test)]
const UNNAMED_TEMPLATE: &str = "domain template";

/// Our escaping mode: minijinja's HTML mode would also escape `/` (valid XML, but every
/// path would read `&#x2f;var&#x2f;lib…` in `--dry-run` output and golden files).
const XML: AutoEscape = AutoEscape::Custom("xml");

/// Instructions one render may run. The default template needs a few hundred per disk;
/// this stops a template's runaway nested loops within milliseconds.
const FUEL: u64 = 1_000_000;

/// Why a domain could not be rendered. A template may be any file the user names (with
/// delegated privileges, one they cannot read), so errors give the position and the kind of
/// problem and never quote the template or the rendered text.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The template has a syntax error, or rendering failed: an undefined variable, a
    /// value XML cannot carry, a runaway loop.
    #[error("template {template} failed{}: {problem}", at(*line, *column))]
    Template {
        /// The template's name (its path for `--template`).
        template: String,
        /// The template line, when known.
        line: Option<usize>,
        /// The column (in characters, from 1) on that line, when known.
        column: Option<usize>,
        /// minijinja's kind of error.
        kind: ErrorKind,
        /// What went wrong, in words: the kind, or a message of vmd's own formatter.
        problem: String,
    },
    /// The rendered document is not well-formed XML.
    #[error(
        "template {template} did not render well-formed XML at output line {line}, column \
         {column}: {problem}"
    )]
    Malformed {
        /// The template's name (its path for `--template`).
        template: String,
        /// The line of the rendered output.
        line: usize,
        /// The column (in characters, from 1) on that line.
        column: usize,
        /// What is wrong there, without quoting the document.
        problem: String,
    },
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// Renders a definition: with the user's template when it names one, else the built-in.
pub fn render_definition(def: &DomainDefinition) -> Result<String, RenderError> {
    match &def.template {
        Some(t) => render_named(&t.name, &t.text, &def.spec),
        None => render_named(DEFAULT_TEMPLATE_NAME, DEFAULT_TEMPLATE, &def.spec),
    }
}

/// Renders `template` for `spec`; errors call the template "domain template".
#[cfg(test)]
pub fn render(template: &str, spec: &DomainSpec) -> Result<String, RenderError> {
    render_named(UNNAMED_TEMPLATE, template, spec)
}

/// Renders `template` for `spec`, naming it `name` (e.g. the `--template` path) in errors.
///
/// Every value is XML-escaped, undefined variables are errors, and the result must be
/// well-formed XML with one root element and no DOCTYPE.
pub fn render_named(name: &str, template: &str, spec: &DomainSpec) -> Result<String, RenderError> {
    let template_error = |source: minijinja::Error| RenderError::Template {
        template: name.to_string(),
        line: source.line(),
        column: source.range().map(|r| column_at(template, r.start)),
        kind: source.kind(),
        problem: template_problem(&source),
    };
    let env = environment();
    let xml = env
        .template_from_named_str(name, template)
        .and_then(|t| t.render(spec))
        .map_err(template_error)?;
    check_well_formed(&xml).map_err(|(offset, problem)| {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        RenderError::Malformed {
            template: name.to_string(),
            line: line_at(&xml, offset),
            column: column_at(&xml, offset),
            problem,
        }
    })?;
    Ok(xml)
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| XML);
    env.set_formatter(xml_formatter);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_fuel(Some(FUEL));
    env.set_debug(false);
    env.add_filter("sd_name", super::disk::target_name);
    env.add_filter("disk_xml", disk_xml);
    env
}

/// The formatter's messages: they describe a VMD value, never the template, so they are
/// the only error details passed on (see [`template_problem`]).
const NONE_VALUE: &str = "a missing value (none) cannot be written into the domain XML";
/// The start of [`Unwritable`]'s message.
const CONTROL_VALUE: &str = "a value contains ";

/// minijinja's error in words: its kind, plus the detail only when it is one of our
/// formatter's messages. minijinja's own details quote template text (`unknown filter
/// "…"`, `unexpected …`), and the template may be a file the user must not read.
fn template_problem(err: &minijinja::Error) -> String {
    let ours = err
        .detail()
        .filter(|d| *d == NONE_VALUE || d.starts_with(CONTROL_VALUE));
    match ours {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

/// Writes values XML-escaped ([`super::escape`]).
fn xml_formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), minijinja::Error> {
    // `|safe` and `{% autoescape %}` blocks are the template author's explicit choice.
    if state.auto_escape() != XML || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    if value.is_none() {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            NONE_VALUE,
        ));
    }
    let text = escape(&value.to_string()).map_err(unwritable)?;
    out.write_str(&text)?;
    Ok(())
}

/// A value XML cannot carry, as our formatter's message (passed on by [`template_problem`]).
fn unwritable(e: Unwritable) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string())
}

/// The filter `disk_xml(indent)`: a disk of the spec as its `<disk>` element, from the
/// same writer hot-plug uses; lines after the first are indented by `indent` spaces.
fn disk_xml(
    disk: ViaDeserialize<DiskSpec>,
    indent: Option<usize>,
) -> Result<Value, minijinja::Error> {
    let element = super::disk::element(&disk, indent.unwrap_or(0)).map_err(unwritable)?;
    // The writer escaped every value already.
    Ok(Value::from_safe_string(element))
}

/// Checks that `xml` is one well-formed element, giving the byte offset of a problem.
/// Namespaces and the libvirt schema are left to libvirt.
fn check_well_formed(xml: &str) -> Result<(), (u64, String)> {
    if let Some((i, c)) = xml.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        let problem = format!("U+{:04X} is not allowed in XML", u32::from(c));
        return Err((u64::try_from(i).unwrap_or(u64::MAX), problem));
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    // Open elements; their names are never reported, so a count is enough.
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        let start = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| (reader.error_position(), xml_problem(&e)))?;
        let fail = |problem: String| Err((start, problem));
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                check_attributes(e).or_else(fail)?;
                if depth == 0 {
                    roots += 1;
                    if roots > 1 {
                        return fail("a second root element".to_string());
                    }
                }
                if let Event::Start(_) = event {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| (start, xml_problem(&e)))?;
                if depth == 0 && !text.trim().is_empty() {
                    return fail("text outside the root element".to_string());
                }
            }
            Event::CData(_) if depth == 0 => {
                return fail("CDATA outside the root element".to_string());
            }
            Event::DocType(_) => return fail("a DOCTYPE is not allowed".to_string()),
            Event::CData(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    let end = u64::try_from(xml.len()).unwrap_or(u64::MAX);
    match (depth, roots) {
        (1.., _) => Err((end, "an element is not closed".to_string())),
        (0, 0) => Err((end, "no root element".to_string())),
        (0, _) => Ok(()),
    }
}

/// Refuses duplicate or malformed attributes and undefined entity references.
fn check_attributes(element: &BytesStart<'_>) -> Result<(), String> {
    let mut attributes = element.attributes();
    attributes.with_checks(true);
    for attribute in attributes {
        let attribute = attribute.map_err(|_| "a malformed or duplicate attribute".to_string())?;
        attribute.unescape_value().map_err(|e| xml_problem(&e))?;
    }
    Ok(())
}

/// A quick-xml error in words. Its own messages quote names and entities from the
/// document (`expected </name>, found </nam>`), which come from the template.
fn xml_problem(err: &quick_xml::Error) -> String {
    use quick_xml::errors::{Error as X, IllFormedError as I};
    use quick_xml::escape::EscapeError as E;
    let words = match err {
        // Fixed texts such as "unclosed element" or "unclosed comment".
        X::Syntax(e) => return e.to_string(),
        X::IllFormed(I::MismatchedEndTag { .. }) => "an end tag does not match its start tag",
        X::IllFormed(I::UnmatchedEndTag(_)) => "an end tag has no start tag",
        X::IllFormed(I::MissingEndTag(_)) => "an element is not closed",
        X::IllFormed(I::MissingDeclVersion(_)) => "the XML declaration has no version",
        X::IllFormed(I::MissingDoctypeName) => "a DOCTYPE without a name",
        X::IllFormed(I::DoubleHyphenInComment) => "\"--\" inside a comment",
        X::InvalidAttr(_) => "a malformed or duplicate attribute",
        X::Escape(E::UnrecognizedEntity(..)) => "an undefined entity reference",
        X::Escape(_) => "a malformed character or entity reference",
        X::Encoding(_) => "text that is not valid in its encoding",
        X::Namespace(_) => "a namespace error",
        X::Io(_) => "a read error",
    };
    words.to_string()
}

/// The 1-based line holding byte `offset` of `text`.
fn line_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The 1-based column, in characters, of byte `offset` of `text` on its line.
fn column_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1
}

#[cfg(test)]
mod tests;
