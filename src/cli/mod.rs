//! The command line: parsing (clap), rendering (tables or one JSON document) and exit
//! statuses. The only module that prints; it calls [`vmd::StorageManager`] and nothing below.

mod console;
mod device;
mod doctor;
mod host;
mod import;
mod lifecycle;
mod output;
mod progress;
mod signals;
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
    /// Clone a master into an instance (linked, or --full).
    Clone(lifecycle::CloneArgs),
    /// Create a blank instance with new devices.
    Create(device::CreateArgs),
    /// Make sure a VMD's volumes exist in the host's pools.
    Attach {
        /// Name or id.
        name: String,
    },
    /// Add or remove one device.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// Define an instance's domain on the host (and --start it).
    Deploy(lifecycle::DeployArgs),
    /// Start a deployed instance (--console: and follow its serial console).
    Start {
        /// The instance.
        name: String,
        /// Start it paused, attach its serial console, resume it, and copy the console to
        /// stdout until the guest stops (escaped on a terminal, raw into a pipe).
        #[arg(long)]
        console: bool,
    },
    /// Copy a running instance's serial console to stdout until the guest stops (Ctrl-C
    /// to leave); read-only.
    Console {
        /// The instance.
        name: String,
    },
    /// Shut an instance down through ACPI (--force powers it off).
    Stop {
        /// The instance.
        name: String,
        #[command(flatten)]
        stop: lifecycle::StopArgs,
    },
    /// An instance's live state.
    Status {
        /// Name or id.
        name: String,
    },
    /// Snapshot every disk of an instance at one instant (--memory: its memory too).
    Snapshot {
        /// The instance.
        name: String,
        /// The snapshot's name [default: snapN].
        snapshot: Option<String>,
        /// Capture the running guest's memory too.
        #[arg(long)]
        memory: bool,
    },
    /// List an instance's snapshots (--delete one first).
    Snapshots {
        /// The instance.
        name: String,
        /// Delete this snapshot (the current state is untouched).
        #[arg(long, value_name = "SNAP")]
        delete: Option<String>,
    },
    /// Revert an instance to a snapshot, running or not.
    Revert {
        /// The instance.
        name: String,
        /// The snapshot.
        snapshot: String,
    },
    /// Shut down and undefine an instance's domain, keeping its disks and snapshots.
    Undeploy(lifecycle::UndeployArgs),
    /// Deploy an undeployed instance again.
    Redeploy {
        /// The instance.
        name: String,
        /// Revert to this snapshot first.
        #[arg(long, value_name = "SNAP")]
        snapshot: Option<String>,
        /// Start it.
        #[arg(long)]
        start: bool,
    },
    /// List every VMD.
    List,
    /// Show one VMD.
    Show {
        /// Name or id.
        name: String,
    },
    /// Find drift between the catalog and the host (orphan volumes and domains, missing
    /// volumes, stale files) and, with --fix, repair it.
    Doctor(doctor::DoctorArgs),
    /// Delete a VMD and its volumes (a master only once it has no clones).
    Delete {
        /// Name or id.
        name: String,
        /// Power off a running instance first.
        #[arg(long)]
        force: bool,
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

/// An error and its causes as one line: `outer: cause: root`, leaving out a cause whose
/// text the line already carries (some messages quote their cause).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
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
                // An error can quote a package string (an invalid name, a file name).
                eprintln!("vmd: {}", output::Term(&one_line(&err)));
                match signals::received() {
                    Some(signal) => ExitCode::from(signals::exit_status(signal)),
                    None => ExitCode::from(exit_status(&err)),
                }
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
            Command::Delete { name, force } => vmds::delete(&manager, &out, name, *force).await,
            Command::Doctor(args) => doctor::doctor(args, &manager, &out).await,
            Command::Clone(args) => lifecycle::clone(args, &manager, &out).await,
            Command::Create(args) => device::create(args, &manager, &out).await,
            Command::Attach { name } => device::attach(name, &manager, &out).await,
            Command::Device(cmd) => device::device(cmd, &manager, &out).await,
            Command::Deploy(args) => {
                lifecycle::deploy(args, &manager, &out).await?;
                match args.console_name() {
                    Some(name) => console::start(name, &manager, &out).await,
                    None => Ok(()),
                }
            }
            Command::Start {
                name,
                console: true,
            } => console::start(name, &manager, &out).await,
            Command::Start { name, .. } => lifecycle::start(name, &manager, &out).await,
            Command::Console { name } => console::console(name, &manager, &out).await,
            Command::Stop { name, stop } => lifecycle::stop(name, stop, &manager, &out).await,
            Command::Status { name } => lifecycle::status(name, &manager, &out).await,
            Command::Snapshot {
                name,
                snapshot,
                memory,
            } => lifecycle::snapshot(name, snapshot.clone(), *memory, &manager, &out).await,
            Command::Snapshots { name, delete } => {
                lifecycle::snapshots(name, delete.as_deref(), &manager, &out).await
            }
            Command::Revert { name, snapshot } => {
                lifecycle::revert(name, snapshot, &manager, &out).await
            }
            Command::Undeploy(args) => lifecycle::undeploy(args, &manager, &out).await,
            Command::Redeploy {
                name,
                snapshot,
                start,
            } => lifecycle::redeploy(name, snapshot.clone(), *start, &manager, &out).await,
        }
    }
}
