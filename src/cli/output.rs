//! Rendering: one JSON document with `--json`, else aligned plain-text tables and lines.
//!
//! Every string that reaches the terminal in table output is escaped here (SECURITY.md
//! item 41): package text (descriptor names, descriptions, EULAs, subjects) is hostile,
//! and a raw line break, C1 control or bidi override in it could forge whole lines
//! (`signed by: ... (trusted)`) or drive the terminal. Values are interpolated through
//! [`Term`], table cells are escaped by [`Table`], and [`Output::text`] escapes every
//! control and format character except the line breaks of the document itself, so a value
//! that misses [`Term`] can still not reach the terminal as a control sequence.

use std::fmt;
use std::io::Write;

use serde::Serialize;

/// A string shown in table output: every control and invisible format character is written
/// in a visible form (`\n`, `\u{1b}`, `\u{202e}`), so it stays on its line and shows what
/// it holds. Wrap every value that is not a literal of ours: `format!("{}", Term(&name))`.
#[derive(Debug, Clone, Copy)]
pub struct Term<'a>(pub &'a str);

impl fmt::Display for Term<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape_into(f, self.0, false)
    }
}

/// `text` escaped as a multi-line block (an EULA): its line breaks stay (`\r\n` counts as
/// one), everything else [`Term`] escapes is escaped.
pub fn term_block(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Writing into a String cannot fail.
    let _ = escape_into(&mut out, &text.replace("\r\n", "\n"), true);
    out
}

/// Whether `c` must not reach a terminal as itself: C0 controls, DEL, C1 controls (U+0080 to
/// U+009F), the bidi controls, line and paragraph separators, and the other invisible
/// format characters (Unicode category Cf).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'                      // soft hyphen
            | '\u{061C}'                    // Arabic letter mark
            | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{08E2}'
            | '\u{180E}'                    // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'       // zero-width characters, LRM, RLM
            | '\u{2028}'..='\u{202E}'       // line/paragraph separators, LRE..RLO
            | '\u{2060}'..='\u{2064}'       // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}'       // LRI..PDI, deprecated format characters
            | '\u{FEFF}'                    // zero-width no-break space (BOM)
            | '\u{FFF9}'..='\u{FFFB}'       // interlinear annotations
            | '\u{110BD}' | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}' | '\u{E0020}'..='\u{E007F}') // tag characters
}

fn escape_into(out: &mut impl fmt::Write, s: &str, keep_newlines: bool) -> fmt::Result {
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        if !is_unsafe_char(c) || (keep_newlines && c == '\n') {
            continue;
        }
        out.write_str(&s[plain..i])?;
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c => write!(out, "\\u{{{:x}}}", u32::from(c))?,
        }
        plain = i + c.len_utf8();
    }
    out.write_str(&s[plain..])
}

/// Guest console bytes escaped for a terminal, chunk by chunk (SECURITY.md item 41: a guest
/// is as hostile as a package): line breaks stay (`\r\n` counts as one), every other control
/// or format character is escaped as [`Term`] escapes it, and bytes that are not UTF-8 are
/// shown as `\xNN`. A character or `\r\n` split across two chunks is held until the next.
#[derive(Debug, Default)]
pub struct TermStream {
    pending: Vec<u8>,
}

impl TermStream {
    /// The escaped text of `bytes`, less what waits for the next chunk.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        self.drain(false)
    }

    /// The escaped text of whatever was held back: the stream has ended.
    pub fn finish(&mut self) -> String {
        self.drain(true)
    }

    fn drain(&mut self, end: bool) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            let (text, bad) = match std::str::from_utf8(rest) {
                Ok(text) => (text, None),
                Err(e) => {
                    // Valid up to here by the error's own account.
                    let text = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or("");
                    (text, Some(e))
                }
            };
            let incomplete = matches!(bad, Some(e) if e.error_len().is_none()) && !end;
            // A trailing `\r` may be the first half of `\r\n`.
            let hold_cr = !end && bad.is_none() && text.ends_with('\r');
            let text = if hold_cr {
                &text[..text.len() - 1]
            } else {
                text
            };
            let _ = escape_into(&mut out, &text.replace("\r\n", "\n"), true);
            let used = text.len();
            match bad {
                None => {
                    rest = &rest[used..];
                    break;
                }
                Some(_) if incomplete => {
                    rest = &rest[used..];
                    break;
                }
                Some(e) => {
                    let n = e.error_len().unwrap_or(rest.len() - used);
                    for b in &rest[used..used + n] {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                    rest = &rest[used + n..];
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }
}

/// Where and how a command prints its result.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// True when the result is to be printed as JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value` as one pretty JSON document on stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value)?;
        writeln!(stdout)?;
        Ok(())
    }

    /// Prints text on stdout. Its line breaks stay; any other control or format character
    /// is escaped as [`Term`] does, a last line of defence for a value not wrapped in it.
    pub fn text(&self, text: &str) -> anyhow::Result<()> {
        let mut safe = String::with_capacity(text.len());
        escape_into(&mut safe, text, true)?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(safe.as_bytes())?;
        Ok(())
    }
}

/// A plain-text table whose columns are as wide as their widest cell. Every cell is escaped
/// as [`Term`] escapes it, so callers pass values as they are.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a header row.
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row; each cell is escaped for the terminal.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| Term(c).to_string()).collect());
    }

    /// The table as lines, each indented by `indent` spaces.
    pub fn render(&self, indent: usize) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = " ".repeat(indent);
            for (c, cell) in row.iter().enumerate() {
                if c + 1 < row.len() {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Bytes in binary units, as people read sizes: `64.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_render_aligns_columns() {
        let mut t = Table::new(&["NAME", "TYPE"]);
        t.row(vec!["default".into(), "dir".into()]);
        assert_eq!(t.render(0), "NAME     TYPE\ndefault  dir\n");
    }

    // SECURITY.md item 41: package strings must not forge lines or drive the terminal.
    #[test]
    fn term_escapes_line_breaks_c1_and_bidi_controls_visibly() {
        let hostile = "a\nsigned by: X (trusted)\r\t\u{1b}[2J\u{7f}\u{9b}31m\u{202e}\u{2066}\u{200f}\u{61c}\u{feff}z";

        let shown = Term(hostile).to_string();

        assert_eq!(
            shown,
            "a\\nsigned by: X (trusted)\\r\\t\\u{1b}[2J\\u{7f}\\u{9b}31m\\u{202e}\\u{2066}\\u{200f}\\u{61c}\\u{feff}z"
        );
        assert!(shown.chars().all(|c| !is_unsafe_char(c)), "{shown}");
    }

    #[test]
    fn term_leaves_printable_text_alone() {
        let text = "Debian GNU/Linux 10 (64-bit) — Grüße, 日本語 \\ \"'<>";

        assert_eq!(Term(text).to_string(), text);
    }

    // SECURITY.md item 41: an EULA keeps its line breaks and nothing else.
    #[test]
    fn term_block_keeps_line_breaks_only() {
        let eula = "Terms\r\n1. use\n\u{1b}]0;title\u{7}\u{202e}end";

        assert_eq!(
            term_block(eula),
            "Terms\n1. use\n\\u{1b}]0;title\\u{7}\\u{202e}end"
        );
    }

    // SECURITY.md item 41: a cell cannot add a row.
    #[test]
    fn table_escapes_every_cell() {
        let mut t = Table::new(&["NAME", "TYPE"]);
        t.row(vec!["a\nb  forged".into(), "\u{9b}1m".into()]);

        assert_eq!(
            t.render(0),
            "NAME          TYPE\na\\nb  forged  \\u{9b}1m\n"
        );
    }

    // SECURITY.md item 41: guest console output cannot drive the terminal, whatever the
    // chunking; its lines stay lines.
    #[test]
    fn term_stream_escapes_controls_across_chunks_and_keeps_lines() {
        let guest = "boot\r\n\u{1b}[2Jé\u{9b}31m\u{202e}ok\r\n".as_bytes();
        let whole = TermStream::default().push(guest);

        for split in 1..guest.len() {
            let mut t = TermStream::default();
            let mut text = t.push(&guest[..split]);
            text.push_str(&t.push(&guest[split..]));
            text.push_str(&t.finish());
            assert_eq!(text, whole, "split at {split}");
        }
        assert_eq!(whole, "boot\n\\u{1b}[2Jé\\u{9b}31m\\u{202e}ok\n");
    }

    #[test]
    fn term_stream_shows_bytes_that_are_not_utf8() {
        let mut t = TermStream::default();

        let text = t.push(b"a\xff\xc3");
        let end = t.finish();

        assert_eq!(text, "a\\xff");
        assert_eq!(end, "\\xc3");
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
