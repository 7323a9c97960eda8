//! The command line: parsing (clap), rendering (tables or one JSON document) and exit
//! statuses. The only module that prints; it calls [`vmd::StorageManager`] and nothing below.

mod host;
mod import;
mod output;
mod progress;
mod vmds;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vmd::{Config, ErrorKind, StorageManager};

/// vmd: a storage manager for virtual machines on libvirt hosts.
#[derive(Debug, Parser)]
#[command(name = "vmd", version, about, max_term_width = 100)]
pub struct Cli {
    /// libvirt URI of the host to manage.
    #[arg(long, global = true, env = "VMD_CONNECT", default_value = vmd::host::DEFAULT_URI)]
    connect: String,

    /// Directory holding vmd's catalog and default pool [default: /var/lib/vmd for root,
    /// else $XDG_DATA_HOME/vmd].
    #[arg(long, global = true, env = "VMD_STATE_DIR")]
    state_dir: Option<PathBuf>,

    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The virtualization host: versions, domain types, storage pools.
    #[command(subcommand)]
    Host(host::HostCommand),
    /// Import an OVF/OVA package as a read-only master VMD.
    Import(import::ImportArgs),
    /// Check a package as import would, reading every disk, and write nothing.
    Verify(import::PackageArgs),
    /// List every VMD.
    List,
    /// Show one VMD.
    Show {
        /// Name or id.
        name: String,
    },
    /// Delete a VMD and its volumes.
    Delete {
        /// Name or id.
        name: String,
    },
}

/// Exit statuses, part of vmd's contract with scripts.
pub mod exit {
    /// Anything not listed below.
    pub const FAILURE: u8 = 1;
    /// Command-line usage (clap's own errors exit with 2 too).
    pub const USAGE: u8 = 2;
    /// A package or request rejected as invalid or unsafe.
    pub const REJECTED: u8 = 3;
    /// The object named does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// The name is taken or the object is busy.
    pub const CONFLICT: u8 = 5;
}

/// The exit status for an error: the kind of the first vmd error in its chain.
fn exit_status(err: &anyhow::Error) -> u8 {
    let kind = err
        .chain()
        .find_map(|e| e.downcast_ref::<vmd::Error>())
        .map(vmd::Error::kind);
    match kind {
        Some(ErrorKind::Usage) => exit::USAGE,
        Some(ErrorKind::Rejected) => exit::REJECTED,
        Some(ErrorKind::NotFound) => exit::NOT_FOUND,
        Some(ErrorKind::Conflict) => exit::CONFLICT,
        Some(ErrorKind::Other) | None => exit::FAILURE,
    }
}

impl Cli {
    fn manager(&self) -> StorageManager {
        let mut config = Config {
            uri: self.connect.clone(),
            ..Config::default()
        };
        if let Some(dir) = &self.state_dir {
            config.state_dir = dir.clone();
        }
        StorageManager::new(config)
    }

    /// Runs the command and reports any failure on stderr as one line.
    pub fn run(self) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("vmd: cannot start the async runtime: {e}");
                return ExitCode::from(exit::FAILURE);
            }
        };
        match runtime.block_on(self.dispatch()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("vmd: {err:#}");
                ExitCode::from(exit_status(&err))
            }
        }
    }

    async fn dispatch(&self) -> anyhow::Result<()> {
        let manager = self.manager();
        let out = output::Output::new(self.json);
        match &self.command {
            Command::Host(cmd) => host::run(cmd, &manager, &out).await,
            Command::Import(args) => import::import(args, &manager, &out).await,
            Command::Verify(args) => import::verify(args, &manager, &out).await,
            Command::List => vmds::list(&manager, &out).await,
            Command::Show { name } => vmds::show(&manager, &out, name).await,
            Command::Delete { name } => vmds::delete(&manager, &out, name).await,
        }
    }
}
