//! One disk's target during an import: the volume's own file where vmd reaches the pool's
//! files, else a staging file in the state directory that is uploaded through libvirt once
//! it is written and checked. Either way the content is checked here before it is recorded.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use super::plan::{Context, PlannedDisk};
use super::write::{io_error, metered, write_disk};
use super::ImportRequest;
use crate::image::inspect;
use crate::image::qemu_img::QemuImg;
use crate::image::ImageFormat;
use crate::manager::error::chain;
use crate::manager::rollback::NewVmd;
use crate::manager::{image_format, Error, Progress};
use crate::ovf::transfer::{Meter, Stored};
use crate::vmd::DiskFormat;

/// One disk's content written from its package source into a target file: the volume's
/// own file (a local pool) or a staging file (a pool reached through libvirt).
pub(super) struct DiskWrite<'a> {
    pub ctx: &'a Context,
    pub req: &'a ImportRequest,
    pub planned: &'a PlannedDisk,
    pub source: &'a (Stored, ImageFormat),
    pub target: &'a Path,
    /// The target is a staging file, deleted once uploaded: not synced.
    pub scratch: bool,
}

impl DiskWrite<'_> {
    /// Decodes (or converts) the source into the target, with a progress bar.
    pub(super) fn run(
        &self,
        qemu_img: &QemuImg,
        progress: &dyn Progress,
        undo: &mut NewVmd<'_>,
    ) -> Result<(), Error> {
        let (stored, format) = self.source;
        let meter = Arc::new(Meter {
            cancel: Arc::clone(&self.req.cancel),
            ..Meter::default()
        });
        let label = format!("{} {}", self.ctx.plan.name, self.planned.id);
        metered(
            &self.planned.volume.to_string(),
            &label,
            stored.total(),
            &meter,
            progress,
            || {
                write_disk(
                    self.ctx,
                    qemu_img,
                    stored,
                    *format,
                    self.planned,
                    self.target,
                    self.scratch,
                    Arc::clone(&meter),
                    undo,
                )
            },
        )
    }
}

/// Makes an empty staging file for a disk, as libvirt would make its volume: a qcow2 of the
/// disk's capacity (`qemu-img create -f qcow2`), or a sparse raw file of that size.
pub(super) fn create_target(
    qemu_img: &QemuImg,
    path: &Path,
    planned: &PlannedDisk,
) -> Result<(), Error> {
    match planned.format {
        DiskFormat::Qcow2 => {
            Ok(qemu_img.create(path, ImageFormat::Qcow2, planned.capacity_bytes)?)
        }
        DiskFormat::Raw => OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .and_then(|f| f.set_len(planned.capacity_bytes))
            .map_err(io_error("create", path)),
    }
}

/// Re-inspects a written volume, with vmd's inspector and then `qemu-img info`: the format
/// must be the target, the size the declared capacity, and no backing or data file.
pub(super) fn verify_volume(
    qemu_img: &QemuImg,
    path: &Path,
    disk: &PlannedDisk,
) -> Result<(), Error> {
    let target = image_format(disk.format);
    let bad = |what: String| Error::Rejected(format!("volume {} {what}", disk.volume));
    // A raw volume is guest data, which may look like any format (a guest can write a qcow2
    // header to its disk): it is never probed, only read as raw by qemu-img below.
    if target == ImageFormat::Qcow2 {
        let info = inspect::inspect_path(path)
            .map_err(|e| bad(format!("failed inspection: {}", chain(&e))))?;
        inspect::check_declared(&info, target).map_err(|e| bad(chain(&e)))?;
        if info.virtual_size != disk.capacity_bytes {
            return Err(bad(format!(
                "has a virtual size of {} bytes, not {}",
                info.virtual_size, disk.capacity_bytes
            )));
        }
    }
    let q = qemu_img.info(path, target).map_err(Error::from)?;
    if q.virtual_size != disk.capacity_bytes {
        return Err(bad(format!(
            "has a virtual size of {} bytes per qemu-img, not {}",
            q.virtual_size, disk.capacity_bytes
        )));
    }
    Ok(())
}
