//! Renders a VMD's libvirt domain XML from a minijinja template: the built-in
//! `templates/domain.xml` or the user's `--template FILE`.
//!
//! Owns the template context ([`DomainSpec`]), XML escaping of every value, the
//! well-formedness check of the result, and the naming schemes that reach libvirt (domain
//! names, disk serials). It must not talk to libvirt, read files, or build XML with
//! `format!`: values reach the document only through the escaping formatter.

use minijinja::{AutoEscape, Environment, ErrorKind, Output, State, UndefinedBehavior, Value};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The built-in domain template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../../templates/domain.xml");

/// The name errors give a template passed to [`render`].
#[cfg(test)]
const UNNAMED_TEMPLATE: &str = "domain template";

/// Our escaping mode: minijinja's HTML mode would also escape `/` (valid XML, but every
/// path would read `&#x2f;var&#x2f;lib…` in `--dry-run` output and golden files).
const XML: AutoEscape = AutoEscape::Custom("xml");

/// Instructions one render may run. The default template needs a few hundred per disk;
/// this stops a template's runaway nested loops within milliseconds.
const FUEL: u64 = 1_000_000;

/// Everything a domain template may use. Field names are the template's variable names,
/// so renaming one breaks users' templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainSpec {
    /// The libvirt domain name, from [`domain_name`].
    pub name: String,
    /// The libvirt domain UUID.
    pub uuid: String,
    /// The VMD id, written into the domain's `<metadata>` so vmd can recognise its own.
    pub vmd_id: String,
    /// The VMD name, also in `<metadata>`.
    pub vmd_name: String,
    /// The libvirt domain type: `kvm`, `qemu` (TCG), or `test` for libvirt's test driver.
    pub virt_type: String,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// `bios` or `efi`.
    pub firmware: String,
    /// Disks on the virtio-scsi controller.
    pub disks: Vec<DiskSpec>,
    /// Network interfaces, in guest order.
    pub nics: Vec<NicSpec>,
    /// The file the host logs the serial console to, or empty for none (a remote host,
    /// whose files are not vmd's).
    pub console_log: String,
}

/// One disk of a [`DomainSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskSpec {
    /// The libvirt storage pool holding the volume.
    pub pool: String,
    /// The volume's name in its pool: the default template names disks by pool and volume
    /// (`<disk type='volume'>`), so that libvirt resolves them on the host, whatever the
    /// pool's kind.
    pub volume: String,
    /// The volume's path as the host reported it, for templates that want it.
    pub path: String,
    /// The image format given to QEMU explicitly: `qcow2` or `raw`.
    pub format: String,
    /// The serial the guest sees, from [`disk_serial`].
    pub serial: String,
    /// The SCSI LUN, from the OVF `AddressOnParent`.
    pub unit: u32,
    /// Whether the guest boots from this disk.
    pub boot: bool,
    /// Whether the guest sees the disk read-only.
    pub readonly: bool,
}

/// One network interface of a [`DomainSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicSpec {
    /// User-mode networking, for hosts without a libvirt network.
    pub user: bool,
    /// The libvirt network; required unless `user`.
    pub network: Option<String>,
    /// The guest NIC model, e.g. `virtio` or `e1000`.
    pub model: String,
}

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

/// The serial the guest sees for disk `disk_id` of VMD `vmd_id`: `vmd-` and the first 16
/// hex digits of SHA-256(vmd id bytes ‖ disk id). Stable across deploys, 20 characters
/// of `[a-z0-9-]` (QEMU's scsi-hd limit; libvirt mangles spaces).
pub fn disk_serial(vmd_id: &uuid::Uuid, disk_id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // The UUID is a fixed 16 bytes, so the concatenation cannot be ambiguous.
    let digest = Sha256::new()
        .chain_update(vmd_id.as_bytes())
        .chain_update(disk_id.as_bytes())
        .finalize();
    let mut serial = String::with_capacity(20);
    serial.push_str("vmd-");
    for byte in digest.iter().take(8) {
        serial.push(char::from(HEX[usize::from(byte >> 4)]));
        serial.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    serial
}

/// The libvirt domain name for a VMD: `vmd-` and its (already validated) name.
pub fn domain_name(vmd_name: &str) -> String {
    ["vmd-", vmd_name].concat()
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
    env.add_filter("sd_name", sd_name);
    env
}

/// The formatter's messages: they describe a VMD value, never the template, so they are
/// the only error details passed on (see [`template_problem`]).
const NONE_VALUE: &str = "a missing value (none) cannot be written into the domain XML";
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

/// Writes values XML-escaped. Besides `& < > " '`, tab and line breaks become character
/// references so that attribute-value normalisation cannot turn them into spaces; the
/// control characters XML 1.0 cannot carry at all are refused.
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
    let text = value.to_string();
    let mut plain = 0;
    for (i, c) in text.char_indices() {
        let escaped = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&apos;",
            '\t' => "&#9;",
            '\n' => "&#10;",
            '\r' => "&#13;",
            c if is_xml_char(c) => continue,
            c => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "{CONTROL_VALUE}U+{:04X}, which XML cannot carry",
                        u32::from(c)
                    ),
                ))
            }
        };
        out.write_str(&text[plain..i])?;
        out.write_str(escaped)?;
        plain = i + c.len_utf8();
    }
    out.write_str(&text[plain..])?;
    Ok(())
}

/// XML 1.0's `Char` production.
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// The filter `sd_name`: a SCSI unit's target name, `sda`..`sdz`, `sdaa`, … (the
/// kernel's scheme), so a disk keeps its name when another disk is removed.
pub(crate) fn sd_name(unit: u32) -> String {
    let mut letters = Vec::new();
    let mut n = u64::from(unit) + 1;
    while n > 0 {
        n -= 1;
        // `n % 26` is below 26, so the cast cannot truncate.
        letters.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
    }
    "sd".chars().chain(letters.into_iter().rev()).collect()
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
