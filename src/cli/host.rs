//! `vmd host ...`: views of the virtualization host.

use clap::Subcommand;
use vmd::StorageManager;

use super::output::{human_bytes, Output, Table, Term};

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Connect and report libvirt and QEMU versions, domain types and storage pools.
    Check,
}

pub async fn run(cmd: &HostCommand, manager: &StorageManager, out: &Output) -> anyhow::Result<()> {
    match cmd {
        HostCommand::Check => {
            let info = manager.host_info().await?;
            if out.is_json() {
                return out.json(&info);
            }
            let mut text = String::new();
            text.push_str(&format!(
                "host:        {} ({})\n",
                Term(&info.hostname),
                Term(&info.uri)
            ));
            text.push_str(&format!("libvirt:     {}\n", Term(&info.libvirt_version)));
            text.push_str(&format!("qemu:        {}\n", Term(&info.qemu_version)));
            text.push_str(&format!(
                "virt types:  {} (default: {})\n",
                if info.virt_types.is_empty() {
                    "none".to_string()
                } else {
                    Term(&info.virt_types.join(", ")).to_string()
                },
                Term(info.default_virt_type.as_deref().unwrap_or("none"))
            ));
            if info.pools.is_empty() {
                text.push_str("pools:       none\n");
            } else {
                text.push_str("pools:\n");
                let mut table =
                    Table::new(&["NAME", "TYPE", "STATE", "ACCESS", "AVAILABLE", "PATH"]);
                for p in &info.pools {
                    table.row(vec![
                        p.name.clone(),
                        p.pool_type.clone(),
                        p.state.clone(),
                        p.access.unwrap_or("-").to_string(),
                        human_bytes(p.available_bytes),
                        p.path.clone().unwrap_or_else(|| "-".to_string()),
                    ]);
                }
                text.push_str(&table.render(2));
            }
            out.text(&text)
        }
    }
}
