//! The import plan: everything that can be read and checked before anything is written.

use std::io::Read;
use std::sync::Arc;

use serde::Serialize;

use super::{bound, ImportRequest};
use crate::host::{Host, HostErrorKind};
use crate::image::inspect::{self, ImageInfo};
use crate::image::{ImageFormat, VmdkSubformat};
use crate::manager::error::chain;
use crate::manager::{Config, Error};
use crate::ovf::cert::{self, CertReport};
use crate::ovf::descriptor::{self, Appliance, Compression, DiskFormat as OvfDiskFormat};
use crate::ovf::manifest::{self, Manifest};
use crate::ovf::package::Package;
use crate::ovf::quirks::Quirks;
use crate::ovf::transfer::{self, Declared, Stored};
use crate::vmd::catalog::Catalog;
use crate::vmd::limits;
use crate::vmd::{DiskFormat, PoolName, Role, VmdId, VmdName, VolumeName};

/// Bytes of a decompressed stream read to recognise its format.
const PREFIX: usize = 64 << 10;

/// Where one disk's content comes from.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedSource {
    /// The package file (`ovf:href`).
    pub href: String,
    /// Bytes stored in the package (all chunks).
    pub stored_bytes: u64,
    /// gzip-compressed in the package.
    pub gzip: bool,
    /// Number of chunks (1 when not chunked).
    pub chunks: usize,
    /// The format the descriptor declares, e.g. `vmdk-streamOptimized`.
    pub format: String,
}

/// One disk of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedDisk {
    /// The package's disk id.
    pub id: String,
    /// OS or data.
    pub role: Role,
    /// The bus the package puts it on.
    pub bus: String,
    /// AddressOnParent.
    pub unit: u32,
    /// Virtual size in bytes.
    pub capacity_bytes: u64,
    /// The content's source; none for a blank disk.
    pub source: Option<PlannedSource>,
    /// The volume format.
    pub format: DiskFormat,
    /// The volume to create.
    pub volume: VolumeName,
    /// The most guest bytes the content can write, from what the image really holds (the
    /// clusters a qcow2 maps), never from `ovf:populatedSize`; the writers stop there.
    pub max_data_bytes: u64,
}

/// What `import` will do.
#[derive(Debug, Clone, Serialize)]
pub struct ImportPlan {
    /// The master's id.
    pub id: VmdId,
    /// The master's name.
    pub name: VmdName,
    /// The package path.
    pub package: String,
    /// OVF version of the descriptor.
    pub ovf_version: String,
    /// The VirtualSystem imported.
    pub system: String,
    /// The deployment option applied.
    pub deployment: Option<String>,
    /// The pool for every volume.
    pub pool: PoolName,
    /// Free bytes in the pool now (none when the pool is yet to be created, or for `verify`).
    pub pool_available_bytes: Option<u64>,
    /// Worst-case bytes the import takes in the pool: the volumes, and the staged copies of
    /// qcow2 sources beside them.
    pub required_bytes: u64,
    /// The manifest's digest algorithm, when the package has a manifest.
    pub manifest: Option<String>,
    /// The certificate, when the package is signed.
    pub certificate: Option<CertReport>,
    /// Whether the package carries license agreements.
    pub eula: bool,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// The disks, OS disk first.
    pub disks: Vec<PlannedDisk>,
    /// Things worth knowing that do not stop the import.
    pub warnings: Vec<String>,
}

/// The plan with what execution needs.
pub(super) struct Context {
    pub plan: ImportPlan,
    pub package: Package,
    pub appliance: Appliance,
    pub manifest: Option<Arc<Manifest>>,
    /// Per planned disk: its stored bytes and the inspected header (none for blank disks).
    pub sources: Vec<Option<(Stored, ImageFormat)>>,
    pub descriptor_digest: String,
}

fn rejected(msg: impl Into<String>) -> Error {
    Error::Rejected(msg.into())
}

/// Accepts an exporter quirk: a warning, or the package rejected under `--strict`.
#[allow(dead_code)] // the readers of issue-11 quirks call it as they land
fn quirk(quirks: &mut Quirks, what: impl Into<String>) -> Result<(), Error> {
    quirks.accept(what).map_err(rejected)
}

fn declared_format(f: OvfDiskFormat) -> (ImageFormat, Option<VmdkSubformat>, &'static str) {
    match f {
        OvfDiskFormat::VmdkStreamOptimized => (
            ImageFormat::Vmdk,
            Some(VmdkSubformat::StreamOptimized),
            "vmdk-streamOptimized",
        ),
        OvfDiskFormat::VmdkMonolithicSparse => (
            ImageFormat::Vmdk,
            Some(VmdkSubformat::MonolithicSparse),
            "vmdk-monolithicSparse",
        ),
        OvfDiskFormat::Qcow2 => (ImageFormat::Qcow2, None, "qcow2"),
        OvfDiskFormat::Raw => (ImageFormat::Raw, None, "raw"),
    }
}

/// A serde enum's word (`scsi`, `ide`, ...).
fn word<T: Serialize + std::fmt::Debug>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_lowercase))
        .unwrap_or_else(|| format!("{v:?}").to_lowercase())
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = manifest::Hasher::new(manifest::DigestAlgorithm::Sha256);
    h.update(bytes);
    h.finish().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the header of a stored disk against its declaration, before any decoder or
/// `qemu-img` sees it.
fn inspect_source(
    package: &Package,
    stored: &Stored,
    declared: ImageFormat,
    subformat: Option<VmdkSubformat>,
    capacity: u64,
) -> Result<(ImageFormat, Option<ImageInfo>), Error> {
    let href = &stored.href;
    let info: Option<ImageInfo> = if !stored.gzip && !stored.chunked() {
        let mut reader = package.open_file(href)?;
        let info = inspect::inspect(&mut reader, stored.total())
            .map_err(|e| rejected(format!("{href}: {}", chain(&e))))?;
        Some(info)
    } else {
        // A compressed or chunked file is read front to back only: recognise its format from
        // the start of the stream; the decoder checks the rest as it goes.
        let meter = Arc::default();
        let stream = transfer::open(package, stored, None, u64::MAX, meter)
            .map_err(|e| rejected(chain(&e)))?;
        let mut prefix = Vec::with_capacity(PREFIX);
        stream
            .take(PREFIX as u64)
            .read_to_end(&mut prefix)
            .map_err(|e| rejected(format!("{href}: {}", stream_error(&e))))?;
        let detected = inspect::detect_prefix(&prefix)
            .map_err(|e| rejected(format!("{href}: {}", chain(&e))))?
            .unwrap_or(ImageFormat::Raw);
        if detected != declared {
            return Err(rejected(format!(
                "{href} is {detected} but the descriptor declares {declared}"
            )));
        }
        if detected == ImageFormat::Qcow2 {
            inspect::check_qcow2_prefix(&prefix)
                .map_err(|e| rejected(format!("{href}: {}", chain(&e))))?;
        }
        None
    };
    if let Some(info) = &info {
        inspect::check_declared(info, declared)
            .map_err(|e| rejected(format!("{href}: {}", chain(&e))))?;
        if subformat.is_some() && info.vmdk_subformat != subformat {
            return Err(rejected(format!(
                "{href} is a {} vmdk but the descriptor declares {}",
                info.vmdk_subformat
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                subformat.map(|s| s.to_string()).unwrap_or_default()
            )));
        }
        if info.virtual_size > capacity {
            return Err(rejected(format!(
                "{href} has a virtual size of {} bytes, more than its declared capacity of \
                 {capacity}",
                info.virtual_size
            )));
        }
    }
    Ok((declared, info))
}

/// The message of a transfer stream's error: the vmd error inside it when there is one.
pub(super) fn stream_error(e: &std::io::Error) -> String {
    transfer::cause(e).unwrap_or_else(|| e.to_string())
}

/// Reads and checks the package and works out the plan. `host` is consulted for the pool
/// (free space, existence) unless it is `None` (`verify`).
pub(super) fn plan(
    host: Option<&dyn Host>,
    config: &Config,
    req: &ImportRequest,
) -> Result<Context, Error> {
    let package = Package::open(&req.package)?;
    let envelope = descriptor::parse(&package.descriptor)
        .map_err(|e| rejected(format!("{}: {}", package.descriptor_name, chain(&e))))?;
    let appliance = descriptor::select(&envelope, req.system.as_deref(), req.deployment.as_deref())
        .map_err(|e| Error::Request(e.to_string()))?;
    let mut warnings = Vec::new();
    // Exporter quirks found on the way: warnings, or the refusal under --strict.
    let mut quirks = Quirks::new(req.strict);

    // The manifest covers the descriptor and every file used; the certificate signs it.
    let manifest = match &package.manifest {
        Some((name, bytes)) => {
            let mut m =
                manifest::parse(bytes).map_err(|e| rejected(format!("{name}: {}", chain(&e))))?;
            let (alg, _) = m.expected(&package.descriptor_name).ok_or_else(|| {
                rejected(format!(
                    "{name} has no entry for {}",
                    package.descriptor_name
                ))
            })?;
            let mut h = manifest::Hasher::new(alg);
            h.update(&package.descriptor);
            m.verify(&package.descriptor_name, &h.finish())
                .map_err(|e| rejected(chain(&e)))?;
            m.warn_unknown_files(|f| package.size(f).is_some());
            warnings.append(&mut m.warnings.clone());
            Some(Arc::new(m))
        }
        None => None,
    };
    let certificate = match (&package.certificate, &package.manifest) {
        (None, _) => None,
        (Some((cert_name, _)), None) => {
            return Err(rejected(format!(
                "{cert_name} signs a manifest, but the package has none"
            )))
        }
        (Some((cert_name, cert)), Some((mf_name, mf))) => Some(
            cert::verify(
                cert,
                cert_name,
                mf,
                mf_name,
                std::time::SystemTime::now(),
                &[],
            )
            .map_err(|e| rejected(chain(&e)))?,
        ),
    };
    if let Some(c) = &certificate {
        if c.expired {
            warnings.push(format!(
                "the signing certificate expired on {}",
                c.not_after
            ));
        }
        if !c.trusted {
            warnings.push(format!(
                "the package is signed by {}, which is not a trusted signer",
                c.subject
            ));
        }
    }
    if !appliance.system.eulas.is_empty() && !req.accept_eula {
        return Err(rejected(format!(
            "{} carries a license agreement (EULA): read it with `vmd verify`, then import \
             with --accept-eula",
            package.path().display()
        )));
    }

    let id = VmdId::new();
    let name = match &req.name {
        Some(n) => n.clone(),
        None => default_name(&appliance, &package)?,
    };
    let catalog = Catalog::open(&config.state_dir)?;
    if catalog.name_taken(name.as_str())? {
        return Err(Error::Catalog(
            crate::vmd::catalog::CatalogError::NameTaken(name.to_string()),
        ));
    }
    let pool = match (&req.pool, host) {
        (Some(p), _) => p.clone(),
        (None, Some(host)) => crate::manager::pools::default_pool(host, &config.state_dir)?.name,
        (None, None) => PoolName::default_pool(),
    };

    let mut disks = Vec::new();
    let mut sources = Vec::new();
    let mut required: u64 = 0;
    for (index, d) in appliance.disks.iter().enumerate() {
        // Every disk lands on one virtio-scsi controller at its AddressOnParent; past the
        // bus's last LUN, libvirt defines the domain but QEMU refuses to start it.
        if d.unit > limits::MAX_SCSI_UNIT {
            return Err(rejected(format!(
                "{}: disk '{}' is at unit {} (AddressOnParent), above the virtio-scsi limit \
                 of {}",
                package.descriptor_name,
                d.disk.id.escape_debug(),
                d.unit,
                limits::MAX_SCSI_UNIT
            )));
        }
        let capacity = d.disk.capacity_bytes;
        // No image above this can pass the inspector; a blank disk must not exceed it either.
        if capacity > inspect::MAX_VIRTUAL_SIZE {
            return Err(rejected(format!(
                "{}: disk '{}' has a capacity of {capacity} bytes, above the limit of {} bytes",
                package.descriptor_name,
                d.disk.id.escape_debug(),
                inspect::MAX_VIRTUAL_SIZE
            )));
        }
        let (declared, subformat, format_word) = declared_format(d.disk.format);
        let (source, planned, max_data) = match &d.file {
            Some(file) => {
                let decl = Declared {
                    href: &file.href,
                    size: file.size,
                    gzip: matches!(file.compression, Some(Compression::Gzip)),
                    chunk_size: file.chunk_size,
                };
                let stored = transfer::locate(&package, &decl).map_err(|e| rejected(chain(&e)))?;
                if let Some(m) = &manifest {
                    transfer::check_listed(m, &stored).map_err(|e| rejected(chain(&e)))?;
                }
                bound::check_stored(&stored, declared, capacity).map_err(rejected)?;
                if declared == ImageFormat::Qcow2 && stored.gzip {
                    // qcow2 is read through qemu-img from a staged copy, whose length must be
                    // known before it is written; a gzip stream does not tell it.
                    return Err(rejected(format!(
                        "{}: gzip-compressed qcow2 disks are not supported",
                        file.href
                    )));
                }
                let (fmt, info) = inspect_source(&package, &stored, declared, subformat, capacity)?;
                let max_data = bound::data_bound(info.as_ref(), &stored, fmt, capacity);
                let planned = PlannedSource {
                    href: file.href.clone(),
                    stored_bytes: stored.total(),
                    gzip: stored.gzip,
                    chunks: stored.parts.len(),
                    format: format_word.to_string(),
                };
                (Some((stored, fmt)), Some(planned), max_data)
            }
            None => (None, None, 0),
        };
        // What the image really holds bounds the volume; `ovf:populatedSize` is not trusted.
        // A blank disk counts in full: it exists to be filled.
        let counted = if source.is_some() { max_data } else { capacity };
        required = required.saturating_add(bound::volume_bound(req.format, counted, capacity));
        // A qcow2 source is staged beside its volume until the import ends, so the pool holds
        // its stored bytes and the converted volume at once.
        if let Some((stored, ImageFormat::Qcow2)) = &source {
            required = required.saturating_add(stored.total());
        }
        disks.push(PlannedDisk {
            id: d.disk.id.clone(),
            role: match d.role {
                descriptor::Role::Os => Role::Os,
                descriptor::Role::Data => Role::Data,
            },
            bus: word(&d.bus),
            unit: d.unit,
            capacity_bytes: capacity,
            source: planned,
            format: req.format,
            volume: VolumeName::for_disk(&id, index, req.format.as_str()),
            max_data_bytes: max_data,
        });
        sources.push(source);
    }
    if disks.is_empty() {
        return Err(rejected(format!(
            "system {} has no disks to import",
            appliance.system.id
        )));
    }

    let pool_available_bytes = match host {
        Some(host) => match host.pool(&pool) {
            Ok(info) => Some(info.available_bytes),
            Err(e) if e.kind() == HostErrorKind::NotFound && req.pool.is_none() => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    if let Some(available) = pool_available_bytes {
        if required > available {
            return Err(Error::NoSpace(format!(
                "pool {pool} has {available} bytes free, the import needs up to {required}"
            )));
        }
    }

    let mut warnings = [quirks.take(), warnings].concat();
    warnings.dedup();
    let plan = ImportPlan {
        id,
        name,
        package: std::path::absolute(&req.package)
            .unwrap_or_else(|_| req.package.clone())
            .display()
            .to_string(),
        ovf_version: word(&appliance.version),
        system: appliance.system.id.clone(),
        deployment: appliance.deployment.clone(),
        pool,
        pool_available_bytes,
        required_bytes: required,
        manifest: manifest
            .as_ref()
            .and_then(|m| m.expected(&package.descriptor_name))
            .map(|(alg, _)| alg.to_string()),
        certificate,
        eula: !appliance.system.eulas.is_empty(),
        vcpus: appliance.system.hardware.vcpus,
        memory_mib: appliance.system.hardware.memory_mib,
        disks,
        warnings,
    };
    let descriptor_digest = sha256_hex(&package.descriptor);
    Ok(Context {
        plan,
        package,
        appliance,
        manifest,
        sources,
        descriptor_digest,
    })
}

/// The name a master gets when the user gives none: the system id, else the package's file
/// name, whichever is a valid VMD name. A UUID-shaped candidate is never valid: it could be
/// another VMD's id (a package can copy one, a guest can read its own), so a package whose
/// system id is a UUID is named after its file, and one whose file name is a UUID too needs
/// `--name`.
fn default_name(appliance: &Appliance, package: &Package) -> Result<VmdName, Error> {
    let stem = package
        .path()
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    [appliance.system.id.as_str(), stem.as_str()]
        .iter()
        .find_map(|c| c.parse::<VmdName>().ok())
        .ok_or_else(|| {
            Error::Request(format!(
                "the package's system id {:?} and file name {:?} are not valid VMD names \
                 (1 to 64 letters, digits, '.', '_' or '-', and not a UUID); choose one with \
                 --name",
                appliance.system.id.chars().take(64).collect::<String>(),
                stem.chars().take(64).collect::<String>()
            ))
        })
}
