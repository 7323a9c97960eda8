//! OVF packages: the descriptor model, package readers (directory, OVA), manifests and
//! certificates. Plain code: no libvirt, no tokio, no printing.

pub mod cert;
pub mod descriptor;
pub mod fileref;
pub mod manifest;
pub mod package;
pub mod quirks;
pub mod tar;
pub mod transfer;
pub mod units;
pub mod xml;
