//! Executing an import plan: volumes created through libvirt, each disk streamed from the
//! package into its volume, the result re-inspected, the catalog record written last. A
//! [`NewVmd`] undo list removes every volume and staging file unless the import commits.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::bound::{self, CappedSink};
use super::plan::{stream_error, Context, PlannedDisk};
use super::target::{create_target, verify_volume, DiskWrite};
use super::ImportRequest;
use crate::host::{Host, PoolAccess};
use crate::image::inspect;
use crate::image::qemu_img::{ConvertOptions, Limits, QemuImg};
use crate::image::sink::{DiskSink, Qcow2Sink, RawSink};
use crate::image::stream::{copy_raw, decode_vmdk, DecodeError, StreamLimits};
use crate::image::{ImageError, ImageFormat};
use crate::manager::error::chain;
use crate::manager::fault;
use crate::manager::rollback::NewVmd;
use crate::manager::{image_format, Config, Error, Progress};
use crate::ovf::transfer::{self, Meter, Stored};
use crate::vmd::catalog::Catalog;
use crate::vmd::{
    now_rfc3339, Disk, DiskFormat, Firmware, Hardware, Kind, Network, Property, Source, State, Vmd,
    CATALOG_VERSION,
};

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

/// Fills the volume at `path` with the disk's content.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_disk(
    ctx: &Context,
    qemu_img: &QemuImg,
    stored: &Stored,
    format: ImageFormat,
    disk: &PlannedDisk,
    path: &Path,
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
        );
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
            Box::new(Qcow2Sink::new(file, capacity).map_err(io_error("write volume", path))?)
        }
        DiskFormat::Raw => Box::new(RawSink::new(file, capacity)),
    };
    let mut capped = CappedSink {
        inner: sink.as_mut(),
        cap: disk.max_data_bytes,
        written: 0,
    };
    decode_into(ctx, stored, format, capacity, meter, &mut capped)?;
    sink.finish().map_err(io_error("write volume", path))
}

/// Runs the plan: see the module documentation.
pub(super) fn execute(
    host: &dyn Host,
    config: &Config,
    qemu_img: &QemuImg,
    req: &ImportRequest,
    ctx: Context,
    progress: &dyn Progress,
) -> Result<Vmd, Error> {
    let pool = ctx.plan.pool.clone();
    let qemu_img = &qemu_img.clone().cancelled_by(Arc::clone(&req.cancel));
    let catalog = Catalog::open(&config.state_dir)?;
    let mut undo = NewVmd::begin(host, &catalog, &ctx.plan.id)?;
    if req.pool.is_none() {
        let default = crate::manager::pools::ensure_default_pool(host, &config.state_dir)?;
        if default != pool {
            return Err(Error::Request(format!(
                "the default pool changed while planning: {default}, not {pool}"
            )));
        }
    }
    // Where the pool's files are not this process's files, every disk is staged here and
    // uploaded through libvirt.
    let access = host.pool_access(&pool)?;
    let staging = match access {
        PoolAccess::Local(_) => None,
        PoolAccess::Streams => {
            let dir = config.state_dir.join("staging");
            std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
            Some(dir)
        }
    };
    let mut disks = Vec::with_capacity(ctx.plan.disks.len());
    for (planned, source) in ctx.plan.disks.iter().zip(&ctx.sources) {
        if req.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let vol = match (&access, source) {
            (PoolAccess::Streams, Some(source)) => {
                // The content is made and checked in a staging file here, then uploaded.
                let stage = staging
                    .as_ref()
                    .map(|dir| dir.join(planned.volume.as_str()))
                    .ok_or(Error::Interrupted)?;
                undo.file(stage.clone());
                create_target(qemu_img, &stage, planned)?;
                let write = DiskWrite {
                    ctx: &ctx,
                    req,
                    planned,
                    source,
                    target: &stage,
                };
                write.run(qemu_img, progress, &mut undo)?;
                verify_volume(qemu_img, &stage, planned)?;
                // Created raw, of the staged file's exact length, so that the upload leaves
                // no byte of libvirt's own initial content behind; what it holds is then the
                // qcow2 or raw image vmd checked, and vmd records and declares its format.
                let len = std::fs::metadata(&stage)
                    .map_err(io_error("inspect", &stage))?
                    .len();
                let vol = host.create_volume(&pool, &planned.volume, len, "raw", true)?;
                undo.volume(pool.clone(), planned.volume.clone());
                fault::point("import.volume-created")?;
                let mut file = File::open(&stage).map_err(io_error("open", &stage))?;
                host.upload_volume(&pool, &planned.volume, 0, len, &mut file)?;
                std::fs::remove_file(&stage).map_err(io_error("remove", &stage))?;
                vol
            }
            (access, source) => {
                // In place, or a blank disk that libvirt makes empty in its format on the host.
                let vol = host.create_volume(
                    &pool,
                    &planned.volume,
                    planned.capacity_bytes,
                    planned.format.as_str(),
                    true,
                )?;
                undo.volume(pool.clone(), planned.volume.clone());
                fault::point("import.volume-created")?;
                if let PoolAccess::Local(_) = access {
                    let path = PathBuf::from(&vol.path);
                    if let Some(source) = source {
                        let write = DiskWrite {
                            ctx: &ctx,
                            req,
                            planned,
                            source,
                            target: &path,
                        };
                        write.run(qemu_img, progress, &mut undo)?;
                    }
                    verify_volume(qemu_img, &path, planned)?;
                    // Masters are read-only: created 0444 by libvirt, and set so again here,
                    // where vmd reaches the file.
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))
                        .map_err(io_error("make read-only", &path))?;
                }
                vol
            }
        };
        disks.push(Disk {
            id: planned.id.clone(),
            role: planned.role,
            bus: planned.bus.clone(),
            unit: planned.unit,
            capacity_bytes: planned.capacity_bytes,
            format: planned.format,
            pool: pool.clone(),
            volume: planned.volume.clone(),
            path: vol.path.clone(),
            backing: None,
            serial: None,
            claimed: false,
        });
        fault::point("import.disk-written")?;
    }
    host.pool(&pool)?;
    let vmd = record(&ctx, req, disks);
    fault::point("import.before-commit")?;
    let lock = catalog.lock()?;
    catalog.insert(&vmd, &lock)?;
    drop(lock);
    undo.commit();
    fault::point("import.committed")?;
    Ok(vmd)
}

/// The catalog record of the new master.
fn record(ctx: &Context, req: &ImportRequest, disks: Vec<Disk>) -> Vmd {
    let a = &ctx.appliance;
    let hw = &a.system.hardware;
    let os_type = a.system.os.as_ref().and_then(|o| {
        o.description
            .clone()
            .or_else(|| o.vmw_os_type.clone())
            .or_else(|| o.id.map(|id| format!("cim:{id}")))
    });
    Vmd {
        version: CATALOG_VERSION,
        id: ctx.plan.id,
        name: ctx.plan.name.clone(),
        kind: Kind::Master,
        state: State::Ready,
        created: now_rfc3339(),
        parent: None,
        source: Some(Source {
            package: ctx.plan.package.clone(),
            digest: ctx.descriptor_digest.clone(),
            ovf_version: ctx.plan.ovf_version.clone(),
            system: a.system.id.clone(),
            deployment: a.deployment.clone(),
            product: a
                .system
                .product
                .as_ref()
                .and_then(|p| serde_json::to_value(p).ok()),
            manifest: ctx.plan.manifest.clone(),
            certificate: ctx
                .plan
                .certificate
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok()),
            eula_accepted: req.accept_eula && ctx.plan.eula,
        }),
        hardware: Hardware {
            vcpus: hw.vcpus,
            memory_mib: hw.memory_mib,
            firmware: match hw.firmware {
                crate::ovf::descriptor::Firmware::Bios => Firmware::Bios,
                crate::ovf::descriptor::Firmware::Efi { .. } => Firmware::Efi,
            },
            os_type,
        },
        networks: a
            .networks
            .iter()
            .map(|n| Network {
                name: n.name.clone(),
                model: hw
                    .nics
                    .iter()
                    .find(|nic| nic.network.as_deref() == Some(n.name.as_str()))
                    .and_then(|nic| nic.model.clone()),
            })
            .collect(),
        properties: a
            .system
            .properties
            .iter()
            .map(|p| Property {
                key: p.key.clone(),
                kind: Some(p.kind.clone()),
                value: if p.password { None } else { p.value.clone() },
                user_configurable: p.user_configurable,
                label: p.label.clone(),
                description: p.description.clone(),
            })
            .collect(),
        disks,
        descriptor: Some(String::from_utf8_lossy(&ctx.package.descriptor).into_owned()),
        deployment: None,
        snapshots: Vec::new(),
    }
}
