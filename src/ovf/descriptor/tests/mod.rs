//! Descriptor tests over the fixtures in `tests/data/ovf/`: one descriptor per producer
//! style, hostile inputs, and the selection rules.

use std::path::Path;

use super::*;

mod hardware;
mod hostile;
mod integrity;
mod selection;
mod vendors;

/// A fixture descriptor as text.
fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ovf")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `minimal.ovf` with `from` replaced by `to` (which must occur).
fn minimal_with(from: &str, to: &str) -> String {
    edit(&fixture("minimal.ovf"), from, to)
}

fn edit(doc: &str, from: &str, to: &str) -> String {
    assert!(doc.contains(from), "fixture lacks {from:?}");
    doc.replacen(from, to, 1)
}

fn parse_ok(doc: &str) -> Envelope {
    parse(doc.as_bytes()).unwrap_or_else(|e| panic!("descriptor should parse: {}", chain(&e)))
}

fn parse_err(doc: &str) -> OvfError {
    match parse(doc.as_bytes()) {
        Ok(_) => panic!("descriptor should be rejected"),
        Err(e) => e,
    }
}

/// The error and its causes joined as `main` prints them (`{err:#}`).
fn chain(err: &OvfError) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(doc: &str, needle: &str) -> u64 {
    let at = doc.find(needle).unwrap_or_else(|| panic!("no {needle:?}"));
    doc[..at].matches('\n').count() as u64 + 1
}

/// Parses and selects the only system under the default deployment option.
fn appliance(doc: &str) -> Appliance {
    let env = parse_ok(doc);
    select(&env, None, None).unwrap_or_else(|e| panic!("select: {}", chain(&e)))
}
