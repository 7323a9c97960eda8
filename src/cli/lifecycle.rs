//! The life-cycle commands: clone, deploy, start, stop, snapshot, snapshots, revert,
//! undeploy, redeploy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use vmd::vmd::{PoolName, VmdName};
use vmd::{
    CloneRequest, DeployRequest, Placement, Status, StopOptions, StorageManager, UndeployRequest,
};

use super::output::{human_bytes, Output, Table, Term};

/// `KEY=VALUE`, for `--place` and `--network`.
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `vmd clone`.
#[derive(Debug, Args)]
pub struct CloneArgs {
    /// The master to clone, by name or id.
    master: String,
    /// The new instance's name.
    name: VmdName,
    /// Full copies instead of linked (copy-on-write) clones.
    #[arg(long)]
    full: bool,
    /// Put every device in this pool.
    #[arg(long, conflicts_with = "place")]
    pool: Option<PoolName>,
    /// Put the devices of a role (os, data, swap) in a pool: --place os=fast --place data=bulk.
    #[arg(long, value_name = "ROLE=POOL", value_parser = key_value)]
    place: Vec<(String, String)>,
}

pub async fn clone(args: &CloneArgs, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    let mut roles = BTreeMap::new();
    for (role, pool) in &args.place {
        if !matches!(role.as_str(), "os" | "data" | "swap") {
            anyhow::bail!(vmd::Error::Request(format!(
                "unknown role {role:?} in --place: use os, data or swap"
            )));
        }
        let pool: PoolName = pool
            .parse()
            .map_err(|e| vmd::Error::Request(format!("{e}")))?;
        roles.insert(role.clone(), pool);
    }
    let vmd = m
        .clone_vmd(CloneRequest {
            master: args.master.clone(),
            name: args.name.clone(),
            full: args.full,
            placement: Placement {
                default: args.pool.clone(),
                roles,
            },
        })
        .await?;
    if out.is_json() {
        return out.json(&vmd);
    }
    let mut table = Table::new(&["DISK", "ROLE", "CAPACITY", "POOL", "VOLUME", "BACKING"]);
    for d in &vmd.disks {
        table.row(vec![
            d.id.clone(),
            format!("{:?}", d.role).to_lowercase(),
            human_bytes(d.capacity_bytes),
            d.pool.to_string(),
            d.volume.to_string(),
            d.backing.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    out.text(&format!(
        "cloned {} ({}) from {}\n{}",
        Term(vmd.name.as_str()),
        if args.full { "full copy" } else { "linked" },
        Term(&args.master),
        table.render(2)
    ))
}

fn print_status(out: &Output, verb: &str, s: &Status) -> anyhow::Result<()> {
    if out.is_json() {
        return out.json(s);
    }
    let state = serde_json::to_value(s.state)?;
    out.text(&format!(
        "{} {}: {}{}\n",
        Term(verb),
        Term(&s.name),
        state.as_str().unwrap_or_default(),
        s.domain
            .as_deref()
            .map(|d| format!(" (domain {})", Term(d)))
            .unwrap_or_default()
    ))
}

/// `vmd deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The instance.
    name: String,
    /// Start the domain once defined.
    #[arg(long)]
    start: bool,
    /// With --start: start it paused, attach its serial console, resume it, and copy the
    /// console to stdout until the guest stops (as `vmd start --console`).
    #[arg(long, requires = "start")]
    console: bool,
    /// kvm, or qemu for TCG (software emulation) [default: kvm where the host offers it].
    #[arg(long, env = "VMD_VIRT_TYPE", value_parser = ["kvm", "qemu"])]
    virt_type: Option<String>,
    /// Connect the package's network OVFNET to libvirt network LIBVIRTNET; networks not
    /// mapped (and not named like a host network) use user-mode networking.
    #[arg(long, value_name = "OVFNET=LIBVIRTNET", value_parser = key_value)]
    network: Vec<(String, String)>,
    /// A domain XML template to use instead of templates/domain.xml.
    #[arg(long, value_name = "FILE")]
    template: Option<PathBuf>,
}

impl DeployArgs {
    /// The instance to follow on its console once deployed (`--start --console`).
    pub fn console_name(&self) -> Option<&str> {
        self.console.then_some(self.name.as_str())
    }
}

/// `vmd deploy`; with `--console` the domain is only defined here and started by the
/// console (stdout is then the console's alone).
pub async fn deploy(args: &DeployArgs, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    if args.console && out.is_json() {
        anyhow::bail!(vmd::Error::Request(
            "--json cannot be combined with the console, which is what vmd prints".into()
        ));
    }
    let status = m
        .deploy(DeployRequest {
            name: args.name.clone(),
            start: args.start && !args.console,
            virt_type: args.virt_type.clone(),
            networks: args.network.iter().cloned().collect(),
            template: args.template.clone(),
        })
        .await?;
    if args.console {
        return Ok(());
    }
    print_status(out, "deployed", &status)
}

/// Shutdown options of `stop` and `undeploy`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds the guest gets to shut down after the ACPI power button.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    timeout: u64,
    /// Power off without waiting for the guest.
    #[arg(long)]
    force: bool,
}

impl StopArgs {
    fn options(&self) -> StopOptions {
        StopOptions {
            timeout: Duration::from_secs(self.timeout),
            force: self.force,
        }
    }
}

pub async fn start(name: &str, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    print_status(out, "started", &m.start(name).await?)
}

pub async fn stop(
    name: &str,
    args: &StopArgs,
    m: &StorageManager,
    out: &Output,
) -> anyhow::Result<()> {
    print_status(out, "stopped", &m.stop(name, args.options()).await?)
}

pub async fn status(name: &str, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    print_status(out, "status of", &m.status(name).await?)
}

pub async fn snapshot(
    name: &str,
    snap: Option<String>,
    memory: bool,
    m: &StorageManager,
    out: &Output,
) -> anyhow::Result<()> {
    let info = m.snapshot(name, snap, memory).await?;
    if out.is_json() {
        return out.json(&info);
    }
    out.text(&format!(
        "snapshot {} of {} taken{}\n",
        Term(&info.name),
        Term(name),
        if info.memory { " with memory" } else { "" }
    ))
}

pub async fn snapshots(
    name: &str,
    delete: Option<&str>,
    m: &StorageManager,
    out: &Output,
) -> anyhow::Result<()> {
    if let Some(snap) = delete {
        m.delete_snapshot(name, snap).await?;
    }
    let list = m.snapshots(name).await?;
    if out.is_json() {
        return out.json(&list);
    }
    let mut table = Table::new(&["NAME", "CREATED", "MEMORY"]);
    for s in &list {
        table.row(vec![
            s.name.clone(),
            s.created.clone(),
            if s.memory { "yes" } else { "no" }.to_string(),
        ]);
    }
    out.text(&table.render(0))
}

pub async fn revert(
    name: &str,
    snap: &str,
    m: &StorageManager,
    out: &Output,
) -> anyhow::Result<()> {
    print_status(
        out,
        &format!("reverted to {}:", Term(snap)),
        &m.revert(name, snap).await?,
    )
}

/// `vmd undeploy`.
#[derive(Debug, Args)]
pub struct UndeployArgs {
    /// The instance.
    name: String,
    /// Also capture the instance's current disks as a new standalone master.
    #[arg(long, value_name = "NEW")]
    as_master: Option<VmdName>,
    #[command(flatten)]
    stop: StopArgs,
}

pub async fn undeploy(args: &UndeployArgs, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    let (status, master) = m
        .undeploy(UndeployRequest {
            name: args.name.clone(),
            as_master: args.as_master.clone(),
            stop: args.stop.options(),
        })
        .await?;
    if out.is_json() {
        return out.json(&serde_json::json!({ "status": status, "master": master }));
    }
    print_status(out, "undeployed", &status)?;
    if let Some(master) = master {
        out.text(&format!(
            "captured master {} ({})\n",
            Term(master.name.as_str()),
            master.id
        ))?;
    }
    Ok(())
}

pub async fn redeploy(
    name: &str,
    snapshot: Option<String>,
    start: bool,
    m: &StorageManager,
    out: &Output,
) -> anyhow::Result<()> {
    print_status(out, "redeployed", &m.redeploy(name, snapshot, start).await?)
}
