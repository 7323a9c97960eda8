//! Writing one disk of an import: the package's bytes decoded (or converted by qemu-img) into
//! a target file, bounded and metered, cancelled on request.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::bound::{self, CappedSink};
use super::plan::{stream_error, Context, PlannedDisk};
use crate::image::inspect;
use crate::image::qemu_img::{ConvertOptions, Limits, QemuImg};
use crate::image::sink::{DiskSink, Qcow2Sink, RawSink};
use crate::image::stream::{copy_raw, decode_vmdk, DecodeError, StreamLimits};
use crate::image::{ImageError, ImageFormat};
use crate::manager::error::chain;
use crate::manager::rollback::NewVmd;
use crate::manager::{image_format, Error, Progress};
use crate::ovf::transfer::{self, Meter, Stored};
use crate::vmd::DiskFormat;

pub(super) fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// Why a staged copy was refused, without the `cannot accept image <stage path>` context: the
/// staging file is vmd's own, and the caller names the package file it holds.
fn staged_reason(e: &ImageError) -> String {
    match e {
        ImageError::Inspect { source, .. } => chain(source.as_ref()),
        other => chain(other),
    }
}

/// The error of a decoder, named for the package file it read.
fn decode_error(href: &str, e: DecodeError) -> Error {
    match e {
        DecodeError::Read { source, .. } if source.kind() == io::ErrorKind::Interrupted => {
            Error::Interrupted
        }
        DecodeError::Read { source, .. } => {
            Error::Rejected(format!("{href}: {}", stream_error(&source)))
        }
        DecodeError::Write { source, .. } if source.kind() == io::ErrorKind::FileTooLarge => {
            Error::Rejected(format!("{href}: {source}"))
        }
        DecodeError::Write { source, .. } => Error::Io {
            action: "write volume for",
            path: PathBuf::from(href),
            source,
        },
        other => Error::Rejected(format!("{href}: {}", chain(&other))),
    }
}

/// Calls `progress.set` from the meter every 100 ms while `work` runs.
pub(super) fn metered<T>(
    id: &str,
    label: &str,
    total: u64,
    meter: &Arc<Meter>,
    progress: &dyn Progress,
    work: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let done = AtomicBool::new(false);
    progress.start(id, label, total);
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                progress.set(id, meter.bytes.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let r = work();
        done.store(true, Ordering::Relaxed);
        r
    });
    progress.set(id, meter.bytes.load(Ordering::Relaxed));
    progress.finish(id);
    result
}

/// The cap on a compressed disk's decompressed bytes: its capacity plus what stream
/// formats add (markers, tables), generously.
fn gzip_cap(capacity: u64) -> u64 {
    capacity
        .saturating_add(capacity / 8)
        .saturating_add(64 << 20)
}

/// Streams one disk's content into `sink`, reading every stored byte (so that every digest is
/// checked) and failing on anything the decoders refuse.
pub(super) fn decode_into(
    ctx: &Context,
    stored: &Stored,
    format: ImageFormat,
    capacity: u64,
    meter: Arc<Meter>,
    sink: &mut dyn DiskSink,
) -> Result<(), Error> {
    let href = stored.href.as_str();
    let stream = transfer::open(
        &ctx.package,
        stored,
        ctx.manifest.clone(),
        gzip_cap(capacity),
        meter,
    )
    .map_err(|e| Error::Rejected(chain(&e)))?;
    // Reading, hashing and decompressing run on their own thread, ahead of the decoder.
    std::thread::scope(|scope| {
        let stream = transfer::prefetch(scope, stream);
        decode_stream(href, stream, stored, format, capacity, sink)
    })
}

fn decode_stream(
    href: &str,
    stream: impl io::Read,
    stored: &Stored,
    format: ImageFormat,
    capacity: u64,
    sink: &mut dyn DiskSink,
) -> Result<(), Error> {
    let mut ignore = |_: u64| {};
    match format {
        ImageFormat::Vmdk => {
            let size = decode_vmdk(stream, sink, &StreamLimits::new(capacity), &mut ignore)
                .map_err(|e| decode_error(href, e))?;
            if size > capacity {
                return Err(Error::Rejected(format!(
                    "{href} has a virtual size of {size} bytes, more than its declared \
                     capacity of {capacity}"
                )));
            }
        }
        ImageFormat::Raw => {
            // A raw image is exactly its bytes; compressed, it must fill the capacity.
            let len = if stored.gzip {
                capacity
            } else {
                stored.total()
            };
            copy_raw(stream, len, sink, &mut ignore).map_err(|e| decode_error(href, e))?;
        }
        ImageFormat::Qcow2 => {
            return Err(Error::Rejected(format!(
                "{href}: qcow2 is not a stream format"
            )))
        }
    }
    Ok(())
}

fn open_volume(path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_error("open volume", path))?;
    file.set_len(0).map_err(io_error("truncate volume", path))?;
    Ok(file)
}

/// Fills the volume at `path` with the disk's content. A `scratch` target (a staging file
/// that is uploaded, then deleted) is not synced: a crash discards it anyway.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_disk(
    ctx: &Context,
    qemu_img: &QemuImg,
    stored: &Stored,
    format: ImageFormat,
    disk: &PlannedDisk,
    path: &Path,
    scratch: bool,
    meter: Arc<Meter>,
    undo: &mut NewVmd<'_>,
) -> Result<(), Error> {
    let capacity = disk.capacity_bytes;
    if format == ImageFormat::Qcow2 {
        // qcow2 cannot be decoded front to back: the verified bytes are staged beside the
        // volume, inspected, and converted by qemu-img from there.
        let stage = path.with_extension("vmd-stage");
        undo.file(stage.clone());
        let mut staged = RawSink::new(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&stage)
                .map_err(io_error("create", &stage))?,
            stored.total(),
        )
        .scratch();
        decode_into(
            ctx,
            stored,
            ImageFormat::Raw,
            stored.total().max(capacity),
            meter,
            &mut staged,
        )?;
        staged.finish().map_err(io_error("write", &stage))?;
        let refused =
            |e: ImageError| Error::Rejected(format!("{}: {}", stored.href, staged_reason(&e)));
        let info = inspect::inspect_path(&stage).map_err(refused)?;
        inspect::check_declared(&info, ImageFormat::Qcow2).map_err(refused)?;
        if info.virtual_size > capacity {
            return Err(Error::Rejected(format!(
                "{} has a virtual size of {} bytes, more than its declared capacity of \
                 {capacity}",
                stored.href, info.virtual_size
            )));
        }
        // The staged bytes are what qemu-img reads: their mapping must fit the plan's bound.
        let data = bound::data_bound(Some(&info), stored, ImageFormat::Qcow2, capacity);
        if data > disk.max_data_bytes {
            return Err(Error::Rejected(format!(
                "{} maps {data} bytes, more than the {} bytes planned",
                stored.href, disk.max_data_bytes
            )));
        }
        let target = image_format(disk.format);
        let opts = ConvertOptions {
            limits: Limits::convert_for(capacity),
            target_exists: true,
            max_output: Some(bound::volume_bound(
                disk.format,
                disk.max_data_bytes,
                capacity,
            )),
        };
        qemu_img
            .convert(stage.as_path(), ImageFormat::Qcow2, path, target, &opts)
            .map_err(|e| match e {
                ImageError::Interrupted { .. } => Error::Interrupted,
                e => Error::from(e),
            })?;
        // Not needed any more: gone now rather than at the end of the import.
        std::fs::remove_file(&stage).map_err(io_error("remove", &stage))?;
        if target == ImageFormat::Raw {
            // qemu-img writes the image's virtual size; the volume has the declared one.
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_error("open", path))?;
            f.set_len(capacity).map_err(io_error("resize", path))?;
        }
        return Ok(());
    }
    let file = open_volume(path)?;
    let mut sink: Box<dyn DiskSink> = match disk.format {
        DiskFormat::Qcow2 => {
            let sink = Qcow2Sink::new(file, capacity).map_err(io_error("write volume", path))?;
            Box::new(if scratch { sink.scratch() } else { sink })
        }
        DiskFormat::Raw => {
            let sink = RawSink::new(file, capacity);
            Box::new(if scratch { sink.scratch() } else { sink })
        }
    };
    let mut capped = CappedSink {
        inner: sink.as_mut(),
        cap: disk.max_data_bytes,
        written: 0,
    };
    decode_into(ctx, stored, format, capacity, meter, &mut capped)?;
    sink.finish().map_err(io_error("write volume", path))
}
