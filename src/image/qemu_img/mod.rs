//! The one place that runs `qemu-img`.
//!
//! Every call passes an explicit `-f` (and `-F` with `-b`), absolute paths in an argv
//! vector (no shell), `LC_ALL=C`, and runs under `prlimit` address-space and CPU limits with
//! a wall-clock deadline. Any stderr output counts as failure. It never decides whether an
//! image is safe: [`crate::image::inspect`] must have accepted the image first; `info` is a
//! second opinion that must agree with it.
//!
//! `qemu-img snapshot` takes no `-f`: its image is a `json:` block spec naming the driver,
//! which fixes the format just as firmly (see `snapshot`).

mod info;
mod lun;
#[cfg(test)]
mod real_tests;
mod run;
mod snapshot;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

pub use info::QemuInfo;
use run::Invocation;

use super::{ImageError, ImageFormat};

/// Environment variable naming the `qemu-img` binary (else `qemu-img` is looked up in PATH).
pub const QEMU_IMG_ENV: &str = "VMD_QEMU_IMG";
/// Environment variable naming util-linux `prlimit` (else looked up in PATH).
pub const PRLIMIT_ENV: &str = "VMD_PRLIMIT";

/// Resource limits for one `qemu-img` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `RLIMIT_AS` in bytes.
    pub address_space: u64,
    /// `RLIMIT_CPU` in seconds.
    pub cpu_secs: u64,
    /// Wall-clock time after which vmd kills the process.
    pub wall: Duration,
}

impl Limits {
    /// For `info`, `create` and `--version`: Nova's `QEMU_IMG_LIMITS` (1 GiB, 30 s CPU),
    /// plus a 60 s wall clock.
    pub const INFO: Limits = Limits {
        address_space: 1 << 30,
        cpu_secs: 30,
        wall: Duration::from_secs(60),
    };

    /// For internal-snapshot commands, which walk and rewrite a qcow2's refcounts (time
    /// grows with the allocated clusters, memory with the refcount cache): 2 GiB of
    /// address space and ten minutes of CPU and wall time.
    pub const SNAPSHOT: Limits = Limits {
        address_space: 2 << 30,
        cpu_secs: 600,
        wall: Duration::from_secs(600),
    };

    /// For converting an image of `virtual_size` bytes: 2 GiB of address space (Ironic's
    /// default) and ten minutes plus one second per 16 MiB of CPU and wall time, a floor
    /// that a stream-optimized VMDK (inflate-bound) comfortably beats.
    pub fn convert_for(virtual_size: u64) -> Limits {
        let secs = 600 + virtual_size / (16 << 20);
        Limits {
            address_space: 2 << 30,
            cpu_secs: secs,
            wall: Duration::from_secs(secs),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::INFO
    }
}

/// Where `qemu-img` reads an image from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource<'a> {
    /// A whole file.
    File(&'a Path),
    /// `size` bytes at `offset` inside `file` (a disk stored in an OVA), read in place
    /// through QEMU's `raw` driver. `size` must be a multiple of 512 (a QEMU rule) and the
    /// path valid UTF-8 (it goes into a JSON block spec).
    Slice {
        file: &'a Path,
        offset: u64,
        size: u64,
    },
    /// A LUN of an iSCSI target, read through QEMU's own iSCSI client (raw only).
    Iscsi(&'a crate::host::IscsiLun),
}

impl<'a> From<&'a Path> for ImageSource<'a> {
    fn from(path: &'a Path) -> ImageSource<'a> {
        ImageSource::File(path)
    }
}

impl<'a> From<&'a PathBuf> for ImageSource<'a> {
    fn from(path: &'a PathBuf) -> ImageSource<'a> {
        ImageSource::File(path)
    }
}

impl fmt::Display for ImageSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::File(path) => write!(f, "{}", path.display()),
            ImageSource::Slice { file, offset, size } => {
                write!(f, "{} (bytes {offset}+{size})", file.display())
            }
            ImageSource::Iscsi(lun) => write!(f, "{lun}"),
        }
    }
}

/// Options for [`QemuImg::convert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Limits for this run; see [`Limits::convert_for`].
    pub limits: Limits,
    /// The target already exists with the right format and size (`-n`). When false, the
    /// target must not exist and is created by `qemu-img`.
    pub target_exists: bool,
    /// The most bytes the target file may grow to, enforced by the kernel (`RLIMIT_FSIZE`
    /// through `prlimit --fsize`): a write past it fails with `EFBIG` (or `SIGXFSZ`) and the
    /// run ends with [`ImageError::OutputLimit`]. `None` for trusted sources only.
    pub max_output: Option<u64>,
}

/// A `qemu-img` version, as printed by `qemu-img --version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QemuVersion {
    pub major: u32,
    pub minor: u32,
    pub micro: u32,
}

impl QemuVersion {
    /// True when the upstream version alone proves the CVE-2024-4467 fix (`qemu-img info`
    /// opening data files and `json:` names): 9.1.0 and later, or 7.2.13 and later in the
    /// 7.2 stable series. False means "cannot tell" (distributions backport fixes): warn.
    pub fn upstream_fixes_cve_2024_4467(&self) -> bool {
        let v = (self.major, self.minor, self.micro);
        v >= (9, 1, 0) || ((7, 2, 13)..(7, 3, 0)).contains(&v)
    }

    fn parse(stdout: &str) -> Result<QemuVersion, ImageError> {
        let bad = || ImageError::Version(stdout.chars().take(200).collect());
        let first = stdout.lines().next().ok_or_else(bad)?;
        let rest = first.strip_prefix("qemu-img version ").ok_or_else(bad)?;
        let number = rest.split_whitespace().next().ok_or_else(bad)?;
        let mut parts = number.split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor)), micro, None) => Ok(QemuVersion {
                major,
                minor,
                micro: match micro {
                    None => 0,
                    Some(Ok(m)) => m,
                    Some(Err(_)) => return Err(bad()),
                },
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// A `qemu-img` binary with the limits for its short commands.
#[derive(Debug, Clone)]
pub struct QemuImg {
    binary: PathBuf,
    prlimit: PathBuf,
    limits: Limits,
    cancel: Option<Arc<AtomicBool>>,
}

impl QemuImg {
    /// Uses the given binaries (absolute paths) and limits for `info`/`create`/`--version`.
    pub fn new(binary: PathBuf, prlimit: PathBuf, limits: Limits) -> QemuImg {
        QemuImg {
            binary,
            prlimit,
            limits,
            cancel: None,
        }
    }

    /// The same runner, whose children are killed (and whose calls fail with
    /// [`ImageError::Interrupted`]) once `flag` is set, e.g. from a SIGTERM handler.
    pub fn cancelled_by(mut self, flag: Arc<AtomicBool>) -> QemuImg {
        self.cancel = Some(flag);
        self
    }

    /// Finds `qemu-img` (`VMD_QEMU_IMG` or PATH) and `prlimit` (`VMD_PRLIMIT` or PATH),
    /// with [`Limits::INFO`].
    pub fn from_env() -> Result<QemuImg, ImageError> {
        Ok(QemuImg::new(
            find_program("qemu-img", QEMU_IMG_ENV)?,
            find_program("prlimit", PRLIMIT_ENV)?,
            Limits::INFO,
        ))
    }

    /// The `qemu-img` binary this runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `qemu-img --version`, to record at startup and gate on.
    pub fn version(&self) -> Result<QemuVersion, ImageError> {
        let out = self
            .invocation("version", vec!["--version".into()], self.limits)
            .run()?;
        QemuVersion::parse(&String::from_utf8_lossy(&out.stdout))
    }

    /// `qemu-img info -f <format> --output=json --force-share`, checked: the reported
    /// format must be `format`, with no backing file, data file or encryption, and for
    /// VMDK an allowed layout with one extent.
    pub fn info<'a>(
        &self,
        src: impl Into<ImageSource<'a>>,
        format: ImageFormat,
    ) -> Result<QemuInfo, ImageError> {
        let src = src.into();
        let args = info_args(source_arg(&src)?, format);
        let out = self.invocation("info", args, self.limits).run()?;
        info::parse(&out.stdout, format, &src.to_string())
    }

    /// `qemu-img convert -f <src_format> -O <dst_format> -t writeback [-n]`.
    ///
    /// `-t writeback` rather than `-t none`: convert's default cache mode is `unsafe`,
    /// which never flushes; `writeback` flushes the target when qemu-img closes it, which
    /// is the durability we need before the rename, and unlike `none` (O_DIRECT) it works
    /// on every filesystem (tmpfs, some NFS/FUSE) without probing. The target is also
    /// fsynced here. On failure a target that this call created is removed.
    pub fn convert<'a>(
        &self,
        src: impl Into<ImageSource<'a>>,
        src_format: ImageFormat,
        dst: &Path,
        dst_format: ImageFormat,
        opts: &ConvertOptions,
    ) -> Result<(), ImageError> {
        let src = src.into();
        let dst = absolute(dst)?;
        match (opts.target_exists, dst.exists()) {
            (true, false) => {
                return Err(bad_path(
                    &dst,
                    "target does not exist (target_exists is set)",
                ))
            }
            (false, true) => {
                return Err(bad_path(
                    &dst,
                    "target already exists (convert never overwrites)",
                ))
            }
            _ => {}
        }
        let args = convert_args(
            source_arg(&src)?,
            src_format,
            dst.clone().into(),
            dst_format,
            opts.target_exists,
        );
        let mut run = self.invocation("convert", args, opts.limits);
        run.max_file = opts.max_output;
        let result = run.run().and_then(|_| sync(&dst));
        if result.is_err() && !opts.target_exists {
            let _ = fs::remove_file(&dst);
        }
        result
    }

    /// `qemu-img create -f qcow2 -b <absolute backing> -F <backing_format> <path>`: a
    /// linked clone. The overlay takes the backing image's size; `path` must not exist.
    pub fn create_overlay(
        &self,
        path: &Path,
        backing: &Path,
        backing_format: ImageFormat,
    ) -> Result<(), ImageError> {
        let path = absolute(path)?;
        let backing = absolute(backing)?;
        self.create_new(
            &path,
            overlay_args(path.clone().into(), backing.into(), backing_format),
        )
    }

    /// `qemu-img create -f <format> <path> <size>`: an empty disk; `path` must not exist.
    pub fn create(&self, path: &Path, format: ImageFormat, size: u64) -> Result<(), ImageError> {
        let path = absolute(path)?;
        self.create_new(&path, create_args(path.clone().into(), format, size))
    }

    fn create_new(&self, path: &Path, args: Vec<OsString>) -> Result<(), ImageError> {
        if path.exists() {
            return Err(bad_path(path, "already exists (create never overwrites)"));
        }
        let result = self.invocation("create", args, self.limits).run().map(drop);
        if result.is_err() {
            let _ = fs::remove_file(path);
        }
        result
    }

    fn invocation(&self, op: &'static str, args: Vec<OsString>, limits: Limits) -> Invocation<'_> {
        Invocation {
            prlimit: &self.prlimit,
            binary: &self.binary,
            op,
            args,
            limits,
            max_file: None,
            cancel: self.cancel.as_deref(),
        }
    }
}

fn info_args(src: OsString, format: ImageFormat) -> Vec<OsString> {
    vec![
        "info".into(),
        "-f".into(),
        format.as_str().into(),
        "--output=json".into(),
        "--force-share".into(),
        src,
    ]
}

fn convert_args(
    src: OsString,
    src_format: ImageFormat,
    dst: OsString,
    dst_format: ImageFormat,
    target_exists: bool,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "convert".into(),
        "-q".into(),
        "-f".into(),
        src_format.as_str().into(),
        "-O".into(),
        dst_format.as_str().into(),
        "-t".into(),
        "writeback".into(),
    ];
    if target_exists {
        args.push("-n".into());
    }
    args.extend([src, dst]);
    args
}

fn overlay_args(path: OsString, backing: OsString, backing_format: ImageFormat) -> Vec<OsString> {
    vec![
        "create".into(),
        "-q".into(),
        "-f".into(),
        "qcow2".into(),
        "-b".into(),
        backing,
        "-F".into(),
        backing_format.as_str().into(),
        path,
    ]
}

fn create_args(path: OsString, format: ImageFormat, size: u64) -> Vec<OsString> {
    vec![
        "create".into(),
        "-q".into(),
        "-f".into(),
        format.as_str().into(),
        path,
        size.to_string().into(),
    ]
}

/// The image argument. Paths are made absolute: a leading `/` keeps QEMU from reading a
/// `proto:` or `json:` prefix in the name and getopt from reading an option.
fn source_arg(src: &ImageSource<'_>) -> Result<OsString, ImageError> {
    match *src {
        ImageSource::File(path) => Ok(absolute(path)?.into()),
        ImageSource::Slice { file, offset, size } => {
            let file = absolute(file)?;
            let name = file
                .to_str()
                .ok_or_else(|| bad_path(&file, "a slice path must be valid UTF-8"))?;
            if size == 0 || !size.is_multiple_of(512) {
                return Err(bad_path(
                    &file,
                    "a slice size must be a non-zero multiple of 512",
                ));
            }
            // No top-level "driver": `-f` sets the format, and it wins over the spec.
            let spec = serde_json::json!({
                "file": {
                    "driver": "raw",
                    "offset": offset,
                    "size": size,
                    "file": { "driver": "file", "filename": name },
                },
            });
            let text = serde_json::to_string(&spec).map_err(ImageError::Spec)?;
            Ok(format!("json:{text}").into())
        }
        ImageSource::Iscsi(lun) => {
            let spec = serde_json::json!({ "file": lun::iscsi_spec(lun) });
            let text = serde_json::to_string(&spec).map_err(ImageError::Spec)?;
            Ok(format!("json:{text}").into())
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, ImageError> {
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    let cwd = std::env::current_dir().map_err(|source| ImageError::Open {
        path: path.to_owned(),
        source,
    })?;
    Ok(cwd.join(path))
}

fn bad_path(path: &Path, reason: &'static str) -> ImageError {
    ImageError::BadPath {
        path: path.to_owned(),
        reason,
    }
}

fn sync(path: &Path) -> Result<(), ImageError> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| ImageError::Sync {
            path: path.to_owned(),
            source,
        })
}

fn find_program(name: &'static str, env_var: &'static str) -> Result<PathBuf, ImageError> {
    let not_found = || ImageError::ToolNotFound {
        program: name,
        env_var,
    };
    if let Some(value) = std::env::var_os(env_var) {
        let path = absolute(Path::new(&value))?;
        return if path.is_file() {
            Ok(path)
        } else {
            Err(not_found())
        };
    }
    let dirs = std::env::var_os("PATH").ok_or_else(not_found)?;
    std::env::split_paths(&dirs)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(not_found)
}
