//! Disk images: vmd's own header inspection (qcow2, VMDK, raw) and the one place that runs
//! `qemu-img`.
mod error;
mod format;
pub mod inspect;
pub mod qemu_img;
pub mod sink;
pub mod stream;
#[cfg(test)]
mod test_support;

pub use error::ImageError;
pub use format::{ImageFormat, VmdkSubformat};
