//! Full copies of a VMD's disks into new standalone qcow2 volumes, for `clone --full` and
//! `undeploy --as-master`. The source is always read as the format vmd recorded for it
//! (`qemu-img convert -f`), never as the format libvirt or qemu-img would probe: a raw disk
//! whose guest data begins with a qcow2 header naming a host file must copy as the bytes it
//! holds (SECURITY.md items 1, 2 and 39). libvirt's own copy (`virStorageVolCreateXMLFrom`)
//! reads the source as libvirt probed it: it is used only where vmd cannot reach the pools'
//! files, and only when libvirt's view of the source is the recorded format.
//!
//! This module must not record anything in the catalog: the operation does, once every disk
//! is copied.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::rollback::NewVmd;
use super::{image_format, Error};
use crate::host::{Host, NewVolume, PoolAccess, VolumeInfo};
use crate::image::inspect;
use crate::image::qemu_img::{ConvertOptions, Limits, QemuImg};
use crate::image::ImageFormat;
use crate::vmd::{Disk, DiskFormat, PoolName, VolumeName};

/// How a disk's content reaches its copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CopyMode {
    /// Byte for byte where the source is a standalone qcow2 with no internal snapshots (a
    /// master): `copy_file_range` shares extents where the filesystem can.
    Bytes,
    /// Always through `qemu-img convert`: backing chains flattened, snapshots left behind.
    Convert,
}

/// Where a copy goes.
pub(super) struct CopyTarget<'a> {
    /// The pool of the new volume.
    pub pool: &'a PoolName,
    /// The new volume's name.
    pub volume: &'a VolumeName,
    /// A master's volume (mode 0444), not an instance's.
    pub readonly: bool,
}

/// Which pools vmd reaches directly, proved once per pool for the length of one operation
/// (each proof creates and deletes a probe volume).
#[derive(Debug, Default)]
pub(super) struct Reach(BTreeMap<PoolName, bool>);

impl Reach {
    /// Whether `pool`'s files are this process's files.
    fn local(&mut self, host: &dyn Host, pool: &PoolName) -> Result<bool, Error> {
        if let Some(&local) = self.0.get(pool) {
            return Ok(local);
        }
        let local = matches!(host.pool_access(pool)?, PoolAccess::Local(_));
        self.0.insert(pool.clone(), local);
        Ok(local)
    }
}

/// Creates the target volume (recorded in `created` for rollback) as a standalone qcow2 copy
/// of disk `d`'s current content, then checks it: qcow2, no backing or data file, the disk's
/// capacity.
pub(super) fn copy_disk(
    host: &dyn Host,
    qemu_img: &QemuImg,
    reach: &mut Reach,
    created: &mut NewVmd<'_>,
    d: &Disk,
    to: &CopyTarget<'_>,
    mode: CopyMode,
) -> Result<VolumeInfo, Error> {
    let (pool, volume) = (to.pool, to.volume);
    if !reach.local(host, &d.pool)? || !reach.local(host, pool)? {
        return copy_on_host(host, created, d, to);
    }
    let info = host.create_volume(pool, volume, d.capacity_bytes, "qcow2", to.readonly)?;
    created.volume(pool.clone(), volume.clone());
    let target = Path::new(&info.path);
    if mode == CopyMode::Bytes && d.format == DiskFormat::Qcow2 && d.backing.is_none() {
        copy_bytes(Path::new(&d.path), target)?;
    } else {
        let opts = ConvertOptions {
            limits: Limits::convert_for(d.capacity_bytes),
            target_exists: true,
            max_output: None,
        };
        qemu_img.convert(
            Path::new(&d.path),
            image_format(d.format),
            target,
            ImageFormat::Qcow2,
            &opts,
        )?;
    }
    let check = inspect::inspect_path(target)?;
    inspect::check_declared(&check, ImageFormat::Qcow2)?;
    if check.virtual_size != d.capacity_bytes {
        return Err(Error::Rejected(format!(
            "copy {volume} has {} bytes, not {}",
            check.virtual_size, d.capacity_bytes
        )));
    }
    Ok(info)
}

/// The copy made by the host itself (`virStorageVolCreateXMLFrom`), for pools whose files vmd
/// does not reach: the host refuses it unless libvirt reads the source as the format vmd
/// recorded (see [`Host::copy_volume`]); the result is checked by the capacity libvirt
/// reports.
fn copy_on_host(
    host: &dyn Host,
    created: &mut NewVmd<'_>,
    d: &Disk,
    to: &CopyTarget<'_>,
) -> Result<VolumeInfo, Error> {
    let info = host.copy_volume(
        &d.pool,
        &d.volume,
        d.format.as_str(),
        &NewVolume {
            pool: to.pool,
            name: to.volume,
            format: "qcow2",
            readonly: to.readonly,
        },
    )?;
    created.volume(to.pool.clone(), to.volume.clone());
    let made = host.volume(to.pool, to.volume)?;
    if made.capacity_bytes != d.capacity_bytes {
        return Err(Error::Rejected(format!(
            "copy {} has {} bytes, not {}",
            to.volume, made.capacity_bytes, d.capacity_bytes
        )));
    }
    Ok(info)
}

/// Copies the file `source` into the (new, empty) volume file `target` and syncs it.
fn copy_bytes(source: &Path, target: &Path) -> Result<(), Error> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    let mut from = std::fs::File::open(source).map_err(io("open", source))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(io("open", target))?;
    // std's copy between files uses copy_file_range on Linux (reflinks on XFS and btrfs).
    std::io::copy(&mut from, &mut to).map_err(io("copy into", target))?;
    to.sync_all().map_err(io("sync", target))
}
