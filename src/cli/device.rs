//! `vmd create`, `vmd attach`, `vmd device add|remove`.

use clap::{Args, Subcommand};
use vmd::vmd::{PoolName, Role, VmdName};
use vmd::{AddDeviceRequest, CreateRequest, StorageManager};

use super::output::{human_bytes, Output, Table, Term};

fn size(s: &str) -> Result<u64, String> {
    vmd::ovf::units::parse_size(s).map_err(|e| e.to_string())
}

/// `vmd create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The new VMD's name.
    name: VmdName,
    /// OS disk size (e.g. 10G).
    #[arg(long, value_parser = size, value_name = "SIZE")]
    os_disk: u64,
    /// A data disk of this size; repeat for more.
    #[arg(long, value_parser = size, value_name = "SIZE")]
    data_disk: Vec<u64>,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 1)]
    vcpus: u32,
    /// Memory in MiB.
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    memory: u64,
    /// Pool for the volumes [default: vmd's own dir pool].
    #[arg(long, env = "VMD_POOL")]
    pool: Option<PoolName>,
}

pub async fn create(args: &CreateArgs, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    let vmd = m
        .create(CreateRequest {
            name: args.name.clone(),
            os_disk: args.os_disk,
            data_disks: args.data_disk.clone(),
            vcpus: args.vcpus,
            memory_mib: args.memory,
            pool: args.pool.clone(),
        })
        .await?;
    if out.is_json() {
        return out.json(&vmd);
    }
    out.text(&format!(
        "created {} ({}) with {} disk(s)\n",
        Term(vmd.name.as_str()),
        vmd.id,
        vmd.disks.len()
    ))
}

pub async fn attach(name: &str, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    let devices = m.attach(name).await?;
    if out.is_json() {
        return out.json(&devices);
    }
    let mut table = Table::new(&["DEVICE", "POOL", "VOLUME", "PATH"]);
    for d in &devices {
        table.row(vec![
            d.id.clone(),
            d.pool.to_string(),
            d.volume.to_string(),
            d.path.clone(),
        ]);
    }
    out.text(&table.render(0))
}

/// `vmd device ...`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Add a new blank device to an instance.
    Add {
        /// The instance.
        name: String,
        /// Size (e.g. 1G).
        #[arg(long, value_parser = size)]
        size: u64,
        /// data or swap.
        #[arg(long, default_value = "data", value_parser = ["data", "swap"])]
        role: String,
        /// Pool for the volume [default: the OS disk's pool].
        #[arg(long)]
        pool: Option<PoolName>,
        /// Also attach it to the running guest.
        #[arg(long)]
        live: bool,
    },
    /// Remove a device from an instance and delete its volume.
    Remove {
        /// The instance.
        name: String,
        /// The device id (see `vmd show`).
        device: String,
        /// Also detach it from the running guest.
        #[arg(long)]
        live: bool,
    },
}

pub async fn device(cmd: &DeviceCommand, m: &StorageManager, out: &Output) -> anyhow::Result<()> {
    match cmd {
        DeviceCommand::Add {
            name,
            size,
            role,
            pool,
            live,
        } => {
            let disk = m
                .add_device(AddDeviceRequest {
                    name: name.clone(),
                    size: *size,
                    role: if role == "swap" {
                        Role::Swap
                    } else {
                        Role::Data
                    },
                    pool: pool.clone(),
                    live: *live,
                })
                .await?;
            if out.is_json() {
                return out.json(&disk);
            }
            out.text(&format!(
                "added {} ({}, unit {}) to {}: {}/{}\n",
                Term(&disk.id),
                human_bytes(disk.capacity_bytes),
                disk.unit,
                Term(name),
                Term(disk.pool.as_str()),
                Term(disk.volume.as_str())
            ))
        }
        DeviceCommand::Remove { name, device, live } => {
            m.remove_device(name, device, *live).await?;
            if out.is_json() {
                return out.json(&serde_json::json!({ "removed": device }));
            }
            out.text(&format!("removed {} from {}\n", Term(device), Term(name)))
        }
    }
}
