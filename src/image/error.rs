//! `ImageError`: every failure of the image module, from header inspection to `qemu-img` runs.
//! Messages are lower-case, name the field or command, and never echo untrusted bytes
//! unescaped.

use std::io;
use std::path::PathBuf;

use super::ImageFormat;

/// Why an image was rejected or could not be handled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A format name that is not `raw`, `qcow2` or `vmdk`.
    #[error("unknown image format name {0:?} (expected raw, qcow2 or vmdk)")]
    UnknownFormatName(String),

    /// Reading the image failed for a reason other than its end.
    #[error("cannot read the {what} at byte {offset} of the image")]
    Read {
        what: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },

    /// A structure the format requires lies (partly) past the end of the image.
    #[error(
        "image is truncated: the {what} needs bytes {offset}..{end} but the image has {len} bytes"
    )]
    Truncated {
        what: &'static str,
        offset: u64,
        /// One past the last byte needed; `u128` because `offset + size` may not fit `u64`.
        end: u128,
        len: u64,
    },

    /// The image names a backing (parent) file: it could make `qemu-img` read a host file.
    #[error("{format} image has a backing file ({detail})")]
    BackingFile { format: ImageFormat, detail: String },

    /// A qcow2 image whose data lives in an external file.
    #[error("qcow2 image has an external data file ({detail})")]
    DataFile { detail: String },

    /// An encrypted image (qcow2 `crypt_method` or a LUKS header extension).
    #[error("qcow2 image is encrypted ({detail})")]
    Encrypted { detail: String },

    /// A VMDK whose descriptor declares a layout other than monolithicSparse/streamOptimized.
    #[error("vmdk createType {0:?} is not allowed (only monolithicSparse and streamOptimized)")]
    VmdkCreateType(String),

    /// A VMDK descriptor line outside the allowlist, or with a forbidden value.
    #[error("vmdk descriptor line {line}: {reason}")]
    VmdkDescriptor { line: usize, reason: String },

    /// A header field that is out of range or inconsistent.
    #[error("{format} header: {reason}")]
    InvalidHeader { format: ImageFormat, reason: String },

    /// A container format vmd never accepts (QED, VHD, VDI, ISO 9660, LUKS, ...).
    #[error("{0} images are not supported")]
    UnsupportedFormat(&'static str),

    /// The bytes match the signatures of more than one format (a polyglot).
    #[error("image matches more than one format: {}", .0.join(", "))]
    MultipleFormats(Vec<&'static str>),

    /// The detected format is not the one the package (or caller) declared.
    #[error("image was declared {declared} but its content is {detected}")]
    FormatMismatch {
        declared: ImageFormat,
        detected: ImageFormat,
    },

    /// The virtual (guest-visible) size is above a limit.
    #[error("virtual size {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },

    /// A disk of zero bytes: almost always a truncated or broken package.
    #[error("image has a virtual size of 0 bytes")]
    Empty,

    /// Context: which file an inspection failed on.
    #[error("cannot accept image {path}")]
    Inspect {
        path: PathBuf,
        #[source]
        source: Box<ImageError>,
    },

    /// Opening or sizing a file failed.
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A path handed to `qemu-img` that cannot be made absolute, or a target in a wrong state.
    #[error("{path}: {reason}")]
    BadPath { path: PathBuf, reason: &'static str },

    /// No `qemu-img` (or `prlimit`) binary could be found.
    #[error("cannot find {program} (set {env_var} or install it in PATH)")]
    ToolNotFound {
        program: &'static str,
        env_var: &'static str,
    },

    /// Spawning or waiting for the child process failed.
    #[error("cannot run {program}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },

    /// vmd killed `qemu-img` after its wall-clock budget.
    #[error("qemu-img {op} timed out after {secs}s and was killed")]
    TimedOut { op: &'static str, secs: u64 },

    /// The kernel killed `qemu-img` for exceeding its CPU or memory rlimit.
    #[error("qemu-img {op} was stopped by its resource limits (signal {signal})")]
    ResourceLimit { op: &'static str, signal: i32 },

    /// `qemu-img` tried to make its output file larger than the bound the image allows.
    #[error(
        "qemu-img {op} was stopped: its output would exceed {limit} bytes, more than the \
         image maps"
    )]
    OutputLimit { op: &'static str, limit: u64 },

    /// The caller cancelled the run (an interrupt); the child was killed.
    #[error("qemu-img {op} was interrupted and killed")]
    Interrupted { op: &'static str },

    /// `qemu-img` died from a signal that is not one of the rlimit signals.
    #[error("qemu-img {op} was killed by signal {signal}: {stderr}")]
    Crashed {
        op: &'static str,
        signal: i32,
        stderr: String,
    },

    /// `qemu-img` exited non-zero.
    #[error("qemu-img {op} failed with exit code {code}: {stderr}")]
    Failed {
        op: &'static str,
        code: i32,
        stderr: String,
    },

    /// `qemu-img` exited 0 but complained on stderr; treated as a failure (the Glance rule).
    #[error("qemu-img {op} wrote to stderr: {stderr}")]
    Stderr { op: &'static str, stderr: String },

    /// `qemu-img` printed more than vmd is willing to buffer.
    #[error("qemu-img {op} printed more than {limit} bytes on {stream}")]
    OutputTooLarge {
        op: &'static str,
        stream: &'static str,
        limit: usize,
    },

    /// `qemu-img info --output=json` printed something that is not the expected JSON.
    #[error("cannot parse the output of qemu-img info")]
    InfoJson(#[source] serde_json::Error),

    /// `qemu-img info` reported a property vmd rejects (backing file, data file, wrong format).
    #[error("qemu-img info on {path}: {reason}")]
    InfoRejected { path: String, reason: String },

    /// `qemu-img --version` printed something unexpected.
    #[error("cannot parse the qemu-img version from {0:?}")]
    Version(String),

    /// A `json:` block spec for `qemu-img` could not be serialized.
    #[error("cannot build the qemu-img block spec")]
    Spec(#[source] serde_json::Error),

    /// An internal-snapshot command on a format that has none (only qcow2 has them).
    #[error("internal snapshots need a qcow2 image, not {0}")]
    SnapshotFormat(ImageFormat),

    /// A snapshot name `qemu-img` would misread or cut short.
    #[error("snapshot name {name:?} is not usable: {reason}")]
    SnapshotName { name: String, reason: &'static str },

    /// A snapshot that must exist does not, or one about to be taken exists already.
    #[error("{path}: snapshot {name:?} {reason}")]
    Snapshot {
        path: PathBuf,
        name: String,
        reason: &'static str,
    },

    /// Flushing the converted output to disk failed.
    #[error("cannot flush {path} to disk")]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    /// True when the image content itself was refused (unsafe, malformed or mismatched), as
    /// opposed to an I/O or tool failure; the importer reports these as a bad package.
    pub fn is_rejection(&self) -> bool {
        match self {
            ImageError::Truncated { .. }
            | ImageError::BackingFile { .. }
            | ImageError::DataFile { .. }
            | ImageError::Encrypted { .. }
            | ImageError::VmdkCreateType(_)
            | ImageError::VmdkDescriptor { .. }
            | ImageError::InvalidHeader { .. }
            | ImageError::UnsupportedFormat(_)
            | ImageError::MultipleFormats(_)
            | ImageError::FormatMismatch { .. }
            | ImageError::TooLarge { .. }
            | ImageError::Empty
            | ImageError::OutputLimit { .. }
            | ImageError::InfoRejected { .. } => true,
            ImageError::Inspect { source, .. } => source.is_rejection(),
            _ => false,
        }
    }
}
