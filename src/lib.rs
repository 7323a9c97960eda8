//! vmd: a storage manager for virtual machines.
//!
//! vmd keeps each VM's complete state (hardware definition, OS disk, data disks, snapshots)
//! in one container, a VMD, and drives a KVM host through libvirt. [`StorageManager`] is the
//! whole northbound API; the `vmd` command line is a thin shell over it.
#![forbid(unsafe_code)]

pub mod host;
pub mod image;
mod manager;
pub mod ovf;
pub mod vmd;

pub use manager::{
    AddDeviceRequest, AttachedDevice, CloneRequest, Config, CreateRequest, DeployRequest, Error,
    ErrorKind, ImportOutcome, ImportPlan, ImportRequest, NoProgress, Placement, PlannedDisk,
    PlannedSource, Progress, SnapshotInfo, Status, StopOptions, StorageManager, UndeployRequest,
    VerifyReport, VmdSummary,
};
