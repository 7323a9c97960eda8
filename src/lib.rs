//! vmd: a storage manager for virtual machines.
//!
//! vmd keeps each VM's complete state (hardware definition, OS disk, data disks, snapshots)
//! in one container, a VMD, and drives a KVM host through libvirt. [`StorageManager`] is the
//! whole northbound API; the `vmd` command line is a thin shell over it.
//!
//! | patent northbound method | [`StorageManager`] |
//! | --- | --- |
//! | create a virtual storage container | [`import`](StorageManager::import), [`create`](StorageManager::create), [`clone_vmd`](StorageManager::clone_vmd) |
//! | attach the container to the host | [`attach`](StorageManager::attach) |
//! | deploy a virtual storage device | [`deploy`](StorageManager::deploy), [`add_device`](StorageManager::add_device), [`remove_device`](StorageManager::remove_device) |
//! | views of containers | [`list`](StorageManager::list), [`show`](StorageManager::show), [`status`](StorageManager::status), [`snapshots`](StorageManager::snapshots) |
//! | snapshot, undeploy, redeploy | [`snapshot`](StorageManager::snapshot), [`revert`](StorageManager::revert), [`undeploy`](StorageManager::undeploy), [`redeploy`](StorageManager::redeploy) |
//!
//! # Example
//!
//! A VM's whole life, scripted: import an appliance as a master, clone it, deploy and start
//! the clone, snapshot it, undeploy it, and bring it back.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use vmd::{
//!     CloneRequest, Config, DeployRequest, ImportOutcome, ImportRequest, NoProgress,
//!     StorageManager, UndeployRequest,
//! };
//!
//! # async fn demo() -> Result<(), vmd::Error> {
//! let manager = StorageManager::new(Config::default()); // qemu:///system, /var/lib/vmd
//!
//! // import: the package becomes a read-only master in the `vmd` pool
//! let outcome = manager
//!     .import(ImportRequest::new("appliance.ova"), Arc::new(NoProgress))
//!     .await?;
//! let ImportOutcome::Imported { vmd: master, .. } = outcome else { unreachable!() };
//!
//! // clone: a linked (copy-on-write) instance of the master
//! let web = manager
//!     .clone_vmd(CloneRequest {
//!         master: master.name.to_string(),
//!         name: "web1".parse().expect("a valid name"),
//!         full: false,
//!         placement: Default::default(),
//!     })
//!     .await?;
//!
//! // deploy: define the domain (disks on virtio-scsi) and start it
//! manager
//!     .deploy(DeployRequest {
//!         name: web.name.to_string(),
//!         start: true,
//!         ..Default::default()
//!     })
//!     .await?;
//!
//! // snapshot every disk (and the memory) at one instant
//! manager.snapshot("web1", Some("before-upgrade".into()), true).await?;
//!
//! // undeploy: the domain goes, the disks and snapshots stay
//! manager
//!     .undeploy(UndeployRequest {
//!         name: "web1".into(),
//!         ..Default::default()
//!     })
//!     .await?;
//!
//! // redeploy, back at the snapshot, and start it again
//! manager
//!     .redeploy("web1", Some("before-upgrade".into()), true)
//!     .await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod host;
pub mod image;
mod manager;
pub mod ovf;
pub mod vmd;

pub use manager::{
    AddDeviceRequest, AttachedDevice, CloneRequest, Config, Console, CreateRequest, DeployRequest,
    DoctorReport, Error, ErrorKind, ImportOutcome, ImportPlan, ImportRequest, NoProgress,
    Placement, PlannedDisk, PlannedSource, Problem, ProblemKind, Progress, SnapshotInfo, Status,
    StopOptions, StorageManager, UndeployRequest, VerifyReport, VmdSummary, FAULT_STEPS,
};
