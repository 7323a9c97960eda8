//! `vmd list`, `vmd show`, `vmd delete`: views of containers and their removal.

use vmd::vmd::Vmd;
use vmd::StorageManager;

use super::output::{human_bytes, Output, Table, Term};

/// `vmd list`.
pub async fn list(manager: &StorageManager, out: &Output) -> anyhow::Result<()> {
    let all = manager.list().await?;
    if out.is_json() {
        return out.json(&all);
    }
    let mut table = Table::new(&["NAME", "KIND", "STATE", "DISKS", "PARENT", "ID"]);
    for v in &all {
        table.row(vec![
            v.name.clone(),
            json_word(&v.kind),
            json_word(&v.state),
            v.disks.to_string(),
            v.parent.clone().unwrap_or_else(|| "-".to_string()),
            v.id.to_string(),
        ]);
    }
    out.text(&table.render(0))
}

/// `vmd show NAME`.
pub async fn show(manager: &StorageManager, out: &Output, name: &str) -> anyhow::Result<()> {
    let vmd = manager.show(name).await?;
    if out.is_json() {
        return out.json(&show_json(&vmd)?);
    }
    out.text(&render(&vmd))
}

/// `vmd delete NAME`.
pub async fn delete(
    manager: &StorageManager,
    out: &Output,
    name: &str,
    force: bool,
) -> anyhow::Result<()> {
    manager.delete(name, force).await?;
    if out.is_json() {
        return out.json(&serde_json::json!({ "deleted": name }));
    }
    out.text(&format!("deleted {}\n", Term(name)))
}

/// The record as `show --json` gives it: plus `domain` (the libvirt domain while deployed,
/// else null), minus libvirt's snapshot descriptions, which are vmd's bookkeeping.
fn show_json(vmd: &Vmd) -> anyhow::Result<serde_json::Value> {
    let mut doc = serde_json::to_value(vmd)?;
    let deployed = matches!(
        vmd.state,
        vmd::vmd::State::Deployed | vmd::vmd::State::Running | vmd::vmd::State::Paused
    );
    let domain = vmd
        .deployment
        .as_ref()
        .filter(|_| deployed)
        .map(|d| d.domain.clone());
    doc["domain"] = serde_json::json!(domain);
    if let Some(snaps) = doc["snapshots"].as_array_mut() {
        for s in snaps {
            if let Some(o) = s.as_object_mut() {
                o.remove("libvirt_xml");
            }
        }
    }
    Ok(doc)
}

/// A serde enum's lower-case word, as in the JSON output.
fn json_word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn render(v: &Vmd) -> String {
    let mut s = String::new();
    s.push_str(&format!("name:      {}\n", Term(v.name.as_str())));
    s.push_str(&format!("id:        {}\n", v.id));
    s.push_str(&format!("kind:      {}\n", json_word(&v.kind)));
    s.push_str(&format!("state:     {}\n", json_word(&v.state)));
    s.push_str(&format!("created:   {}\n", v.created));
    if let Some(src) = &v.source {
        s.push_str(&format!(
            "source:    {} (OVF {}, system {})\n",
            Term(&src.package),
            Term(&src.ovf_version),
            Term(&src.system)
        ));
        if let Some(cert) = &src.certificate {
            let word = |k: &str| cert[k].as_bool().unwrap_or(false);
            s.push_str(&format!(
                "signed:    by {} ({}{}{})\n",
                Term(cert["subject"].as_str().unwrap_or("?")),
                if word("trusted") {
                    "trusted"
                } else {
                    "not trusted"
                },
                if word("self_signed") {
                    ", self-signed"
                } else {
                    ""
                },
                if word("expired") { ", expired" } else { "" },
            ));
        }
    }
    let h = &v.hardware;
    s.push_str(&format!(
        "hardware:  {} vCPU, {} MiB, {}{}\n",
        h.vcpus,
        h.memory_mib,
        json_word(&h.firmware),
        h.os_type
            .as_deref()
            .map(|o| format!(", {}", Term(o)))
            .unwrap_or_default()
    ));
    if !v.networks.is_empty() {
        let nets: Vec<String> = v
            .networks
            .iter()
            .map(|n| Term(&n.name).to_string())
            .collect();
        s.push_str(&format!("networks:  {}\n", nets.join(", ")));
    }
    s.push_str("disks:\n");
    let mut table = Table::new(&["ID", "ROLE", "UNIT", "CAPACITY", "FORMAT", "POOL", "VOLUME"]);
    for d in &v.disks {
        table.row(vec![
            d.id.clone(),
            json_word(&d.role),
            format!("{}:{}", d.bus, d.unit),
            human_bytes(d.capacity_bytes),
            d.format.as_str().to_string(),
            d.pool.to_string(),
            d.volume.to_string(),
        ]);
    }
    s.push_str(&table.render(2));
    s
}
