//! The VMD: one VM's container (hardware, devices, lineage, state) and the catalog that
//! stores VMDs on disk. Plain code: no libvirt, no tokio, no printing.

pub mod catalog;
pub mod limits;
pub mod lock;
mod model;
pub use model::now_rfc3339;
mod names;

pub use model::{
    Deployment, Disk, DiskFormat, Firmware, Hardware, Kind, Network, Property, Role, Snapshot,
    Source, State, Vmd, CATALOG_VERSION,
};
pub use names::{NameError, PoolName, VmdId, VmdName, VolumeName};
