//! The northbound API's error type and what each failure means to a caller.

use crate::host::{HostError, HostErrorKind};
use crate::image::ImageError;
use crate::ovf::package::PackageError;
use crate::vmd::catalog::CatalogError;

/// How a caller should treat a failure; the CLI maps each kind to its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong or ambiguous (exit 2, as a usage error).
    Usage,
    /// A package or request was rejected as invalid or unsafe (exit 3).
    Rejected,
    /// The object named does not exist (exit 4).
    NotFound,
    /// A name is taken or an object is busy (exit 5).
    Conflict,
    /// Anything else (exit 1).
    Other,
}

/// An error of the northbound API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host side failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A package (or its content) was rejected as invalid or unsafe.
    #[error("{0}")]
    Rejected(String),
    /// The package could not be read.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// A disk image was refused or qemu-img failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The pool cannot hold what the operation would write.
    #[error("{0}")]
    NoSpace(String),
    /// The operation was interrupted and undone.
    #[error("interrupted; everything this operation created was removed")]
    Interrupted,
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The request itself is wrong (an unknown system id, a bad combination of options).
    #[error("{0}")]
    Request(String),
    /// An object inside a VMD (a snapshot, a device) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The object is in use or not in a state that allows the operation.
    #[error("{0}")]
    Busy(String),
    /// A file of vmd's own could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What vmd was doing.
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A failure injected through `VMD_FAIL` at this step (tests only; see `fault`).
    #[error("injected failure at {0} (VMD_FAIL)")]
    Injected(&'static str),
    /// A background task could not complete.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl Error {
    /// What the failure means to a caller.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Host(e) => match e.kind() {
                HostErrorKind::NotFound => ErrorKind::NotFound,
                HostErrorKind::AlreadyExists | HostErrorKind::InvalidState => ErrorKind::Conflict,
                HostErrorKind::Unreachable | HostErrorKind::Other => ErrorKind::Other,
            },
            Error::Catalog(CatalogError::NotFound(_)) => ErrorKind::NotFound,
            Error::Catalog(CatalogError::NameTaken(_) | CatalogError::Busy { .. }) => {
                ErrorKind::Conflict
            }
            Error::Catalog(CatalogError::Ambiguous { .. }) => ErrorKind::Usage,
            Error::Catalog(_) => ErrorKind::Other,
            Error::Request(_) => ErrorKind::Usage,
            Error::Rejected(_) => ErrorKind::Rejected,
            Error::Package(PackageError::Open { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ErrorKind::NotFound
            }
            Error::Package(_) => ErrorKind::Rejected,
            Error::Image(e) if e.is_rejection() => ErrorKind::Rejected,
            Error::Image(_) | Error::NoSpace(_) | Error::Interrupted => ErrorKind::Other,
            Error::Busy(_) => ErrorKind::Conflict,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Io { .. } | Error::Task(_) | Error::Injected(_) => ErrorKind::Other,
        }
    }
}

/// An error and its causes as one line, `outer: cause: root`, leaving out a cause whose
/// text the line already holds. For an error flattened into a message (a refusal's
/// `String`), whose `Display` alone would drop the reason carried in its sources.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    // A refusal names the file and the reason, not only the outer context.
    #[test]
    fn chain_keeps_every_cause_once() {
        let err = ImageError::Inspect {
            path: PathBuf::from("/pool/x.vmd-stage"),
            source: Box::new(ImageError::Empty),
        };

        assert_eq!(
            chain(&err),
            "cannot accept image /pool/x.vmd-stage: image has a virtual size of 0 bytes"
        );
    }

    #[test]
    fn chain_skips_a_cause_the_message_already_quotes() {
        let err = Error::Io {
            action: "read",
            path: PathBuf::from("/x"),
            source: std::io::Error::other("gone"),
        };

        assert_eq!(chain(&err), "read /x: gone");
    }
}
