//! `vmd import` and `vmd verify`: OVF/OVA packages into master VMDs.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use vmd::vmd::{DiskFormat, PoolName, VmdName};
use vmd::{ImportOutcome, ImportPlan, ImportRequest, NoProgress, Progress, StorageManager};

use super::output::{human_bytes, term_block, Output, Table, Term};
use super::progress::Bars;

/// Options shared by `import` and `verify`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// An .ova file, an .ovf file (its files beside it) or a directory holding one .ovf.
    package: PathBuf,
    /// Which VirtualSystem to take, when the package holds several.
    #[arg(long, value_name = "ID")]
    system: Option<String>,
    /// Which deployment option (DeploymentOptionSection) to apply.
    #[arg(long, value_name = "ID")]
    deployment: Option<String>,
    /// Refuse every deviation from the OVF specification that vmd otherwise accepts with a
    /// warning (see docs/compatibility.md).
    #[arg(long)]
    strict: bool,
}

/// `vmd import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    package: PackageArgs,
    /// The master's name [default: the package's system id, else its file name; never a
    /// UUID].
    #[arg(long)]
    name: Option<VmdName>,
    /// The storage pool for the volumes [default: vmd's own dir pool, created on first use].
    #[arg(long, env = "VMD_POOL")]
    pool: Option<PoolName>,
    /// Volume format.
    #[arg(long, default_value = "qcow2", value_parser = ["qcow2", "raw"])]
    format: String,
    /// Accept the package's license agreements (EULA).
    #[arg(long)]
    accept_eula: bool,
    /// Print the plan (volumes, sizes, formats) and write nothing.
    #[arg(long)]
    dry_run: bool,
}

fn progress(out: &Output) -> Arc<dyn Progress> {
    match Bars::for_terminal(out.is_json()) {
        Some(bars) => Arc::new(bars),
        None => Arc::new(NoProgress),
    }
}

fn request(p: &PackageArgs) -> ImportRequest {
    let mut req = ImportRequest::new(p.package.clone());
    req.system = p.system.clone();
    req.deployment = p.deployment.clone();
    req.strict = p.strict;
    req.cancel = super::signals::cancel_on_signal();
    req
}

pub async fn import(
    args: &ImportArgs,
    manager: &StorageManager,
    out: &Output,
) -> anyhow::Result<()> {
    let mut req = request(&args.package);
    req.name = args.name.clone();
    req.pool = args.pool.clone();
    req.format = args
        .format
        .parse::<DiskFormat>()
        .map_err(anyhow::Error::msg)?;
    req.accept_eula = args.accept_eula;
    req.dry_run = args.dry_run;
    let outcome = manager.import(req, progress(out)).await?;
    if let ImportOutcome::Imported { warnings, .. } = &outcome {
        for w in warnings {
            eprintln!("vmd: warning: {}", Term(w));
        }
    }
    if out.is_json() {
        return match &outcome {
            ImportOutcome::Planned(plan) => out.json(plan),
            ImportOutcome::Imported { vmd, .. } => out.json(vmd),
        };
    }
    match outcome {
        ImportOutcome::Planned(plan) => out.text(&render_plan(&plan, "would import")),
        ImportOutcome::Imported { vmd, .. } => {
            let mut s = format!("imported master {} ({})\n", Term(vmd.name.as_str()), vmd.id);
            for d in &vmd.disks {
                s.push_str(&format!(
                    "  {} {} {} -> {}/{}\n",
                    Term(&d.id),
                    human_bytes(d.capacity_bytes),
                    d.format.as_str(),
                    d.pool,
                    d.volume
                ));
            }
            out.text(&s)
        }
    }
}

pub async fn verify(
    args: &PackageArgs,
    manager: &StorageManager,
    out: &Output,
) -> anyhow::Result<()> {
    let report = manager.verify(request(args), progress(out)).await?;
    if out.is_json() {
        return out.json(&report);
    }
    let mut s = render_plan(&report.plan, "verified");
    s.push_str(&format!(
        "every digest and disk checked ({} disk stream(s) read in full)\n",
        report.disks_verified
    ));
    for eula in &report.eulas {
        s.push_str("\nlicense agreement:\n");
        s.push_str(&term_block(eula));
        s.push('\n');
    }
    out.text(&s)
}

fn render_plan(plan: &ImportPlan, verb: &str) -> String {
    let mut s = format!(
        "{verb} {} as master {} (OVF {}, system {}{})\n",
        Term(&plan.package),
        Term(plan.name.as_str()),
        Term(&plan.ovf_version),
        Term(&plan.system),
        plan.deployment
            .as_deref()
            .map(|d| format!(", deployment {}", Term(d)))
            .unwrap_or_default()
    );
    s.push_str(&format!(
        "hardware: {} vCPU, {} MiB\n",
        plan.vcpus, plan.memory_mib
    ));
    s.push_str(&format!(
        "manifest: {}\n",
        Term(plan.manifest.as_deref().unwrap_or("none"))
    ));
    if let Some(c) = &plan.certificate {
        s.push_str(&format!(
            "signed by: {} ({}{})\n",
            Term(&c.subject),
            if c.trusted { "trusted" } else { "not trusted" },
            if c.expired { ", expired" } else { "" }
        ));
    }
    let mut table = Table::new(&[
        "DISK", "ROLE", "UNIT", "CAPACITY", "SOURCE", "STORED", "FORMAT", "VOLUME",
    ]);
    for d in &plan.disks {
        let (src, stored) = match &d.source {
            Some(src) => (
                format!(
                    "{} ({}{}{})",
                    src.href,
                    src.format,
                    if src.gzip { ", gzip" } else { "" },
                    if src.chunks > 1 {
                        format!(", {} chunks", src.chunks)
                    } else {
                        String::new()
                    }
                ),
                human_bytes(src.stored_bytes),
            ),
            None => ("blank".to_string(), "-".to_string()),
        };
        table.row(vec![
            d.id.clone(),
            format!("{:?}", d.role).to_lowercase(),
            format!("{}:{}", d.bus, d.unit),
            human_bytes(d.capacity_bytes),
            src,
            stored,
            d.format.as_str().to_string(),
            format!("{}/{}", plan.pool, d.volume),
        ]);
    }
    s.push_str(&table.render(2));
    s.push_str(&format!(
        "space: up to {} in pool {}{}\n",
        human_bytes(plan.required_bytes),
        Term(plan.pool.as_str()),
        plan.pool_available_bytes
            .map(|a| format!(" ({} free)", human_bytes(a)))
            .unwrap_or_default()
    ));
    for w in &plan.warnings {
        s.push_str(&format!("warning: {}\n", Term(w)));
    }
    s
}
