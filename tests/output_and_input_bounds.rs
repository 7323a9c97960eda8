//! What vmd prints and what it reads, at the command line: package strings escaped for the
//! terminal (SECURITY.md item 41, with item 17's hostile strings), bounded reads of files
//! the user names (item 44), parse errors that never quote a file (item 8 of the security
//! issue), and refusals that name the file and the reason in words.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

#[path = "output_and_input_bounds/refusals.rs"]
mod refusals;
#[path = "output_and_input_bounds/template.rs"]
mod template;
#[path = "output_and_input_bounds/terminal.rs"]
mod terminal;
