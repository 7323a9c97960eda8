//! `vmd doctor`: drift between the catalog and the host, found and (with `--fix`) repaired.

use clap::Args;
use vmd::{DoctorReport, StorageManager};

use super::output::{Output, Table, Term};

/// `vmd doctor`.
#[derive(Debug, Args)]
#[command(after_long_help = steps_help())]
pub struct DoctorArgs {
    /// Repair what can be repaired (delete orphan volumes and staging files, destroy and
    /// undefine orphan domains, mark deployed VMDs whose domain is gone as undeployed,
    /// remove stale temporary and lock files) and say what was done.
    #[arg(long)]
    fix: bool,
}

/// The failure-injection steps, for `--help`: what a crash test can interrupt, and what
/// `doctor --fix` then cleans up.
fn steps_help() -> String {
    let mut s = String::from(
        "Exit status: 0 when no problem remains after the run, 1 otherwise.\n\n\
         Objects are this state directory's when the catalog has a record or a lock file for the\n\
         VMD id they carry (volumes named vmd-<id>-d<N>.<ext>, domains with vmd's metadata);\n\
         others are never touched.\n\n\
         Failure injection (tests): VMD_FAIL=<step>:<error|exit>[:<n>] fails at the nth time a\n\
         command reaches <step>; see docs/reliability.md. Steps:\n",
    );
    for step in vmd::FAULT_STEPS {
        s.push_str(&format!("  {step}\n"));
    }
    s
}

/// `vmd doctor [--fix]`.
pub async fn doctor(args: &DoctorArgs, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    let report = m.doctor(args.fix).await?;
    if out.is_json() {
        out.json(&report)?;
    } else {
        out.text(&render(&report, args.fix))?;
    }
    let remaining = report.remaining();
    if remaining > 0 {
        let hint = if !args.fix && report.problems.iter().any(|p| p.repairable()) {
            " (vmd doctor --fix repairs what it can)"
        } else {
            ""
        };
        anyhow::bail!(
            "{remaining} problem{} remain{}{hint}",
            if remaining == 1 { "" } else { "s" },
            if remaining == 1 { "s" } else { "" }
        );
    }
    Ok(())
}

fn render(report: &DoctorReport, fix: bool) -> String {
    let mut s = String::new();
    if report.problems.is_empty() {
        s.push_str("no problems found\n");
    } else {
        let mut table = Table::new(&["KIND", "OBJECT", "FIXED", "DETAIL"]);
        for p in &report.problems {
            table.row(vec![
                serde_json::to_value(p.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                p.object.clone(),
                if p.fixed { "yes" } else { "no" }.to_string(),
                p.detail.clone(),
            ]);
        }
        s.push_str(&table.render(0));
        if fix {
            s.push_str(&format!(
                "{} problem(s), {} fixed\n",
                report.problems.len(),
                report.fixed
            ));
        }
    }
    if !report.busy.is_empty() {
        s.push_str(&format!(
            "not checked, another vmd process is working on them: {}\n",
            Term(&report.busy.join(", "))
        ));
    }
    s
}
