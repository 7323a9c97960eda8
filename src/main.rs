//! The `vmd` command: parse, call the [`vmd::StorageManager`], render, exit.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::Cli::parse().run()
}
