//! Internal snapshots of the qcow2 disks of domains that are not running: `qemu-img snapshot`
//! `-c`/`-a`/`-d`, and the list from `qemu-img info`. A running domain's snapshots go
//! through libvirt (`crate::host`), never here; QEMU's image locking makes these commands
//! fail on an image that a running guest holds, and that failure is reported as it is.
//!
//! `qemu-img snapshot` takes no `-f` (7.2 rejects it), so the image is named by a `json:`
//! block spec with `"driver": "qcow2"`, which rules out probing just as `-f` does. qemu-img
//! finds a snapshot by id *or* name and lets two snapshots share a name: names that read as
//! ids are refused, and `snapshot_create` refuses a name that is taken.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{absolute, bad_path, sync, Limits, QemuImg};
use crate::image::{ImageError, ImageFormat};

/// QEMU copies a snapshot name into a 256-byte buffer and silently cuts longer ones short.
const NAME_MAX: usize = 255;

/// What `qemu-img snapshot` does, as its option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SnapshotAction {
    Create,
    Apply,
    Delete,
}

impl SnapshotAction {
    fn flag(self) -> &'static str {
        match self {
            SnapshotAction::Create => "-c",
            SnapshotAction::Apply => "-a",
            SnapshotAction::Delete => "-d",
        }
    }
}

impl QemuImg {
    /// `qemu-img snapshot -c <name>`: takes an internal snapshot of a qcow2 image. A name
    /// that is taken is refused (qemu-img would add a second snapshot of that name).
    pub fn snapshot_create(
        &self,
        path: &Path,
        format: ImageFormat,
        name: &str,
    ) -> Result<(), ImageError> {
        let path = checked(path, format, name)?;
        if self.snapshot_names(&path)?.iter().any(|n| n == name) {
            return Err(snapshot_error(&path, name, "exists already"));
        }
        self.snapshot_run(&path, SnapshotAction::Create, name)
    }

    /// `qemu-img snapshot -a <name>`: returns the image's content to the snapshot's.
    pub fn snapshot_apply(
        &self,
        path: &Path,
        format: ImageFormat,
        name: &str,
    ) -> Result<(), ImageError> {
        let path = checked(path, format, name)?;
        if !self.snapshot_names(&path)?.iter().any(|n| n == name) {
            return Err(snapshot_error(&path, name, "does not exist"));
        }
        self.snapshot_run(&path, SnapshotAction::Apply, name)
    }

    /// `qemu-img snapshot -d <name>`; a snapshot that is gone already is not an error.
    pub fn snapshot_delete(
        &self,
        path: &Path,
        format: ImageFormat,
        name: &str,
    ) -> Result<(), ImageError> {
        let path = checked(path, format, name)?;
        if !self.snapshot_names(&path)?.iter().any(|n| n == name) {
            return Ok(());
        }
        self.snapshot_run(&path, SnapshotAction::Delete, name)
    }

    /// The names of a qcow2 image's internal snapshots, oldest first
    /// (`qemu-img info -f qcow2 --output=json`, which leaves backing files unopened).
    pub fn snapshot_list(
        &self,
        path: &Path,
        format: ImageFormat,
    ) -> Result<Vec<String>, ImageError> {
        require_qcow2(format)?;
        self.snapshot_names(&absolute(path)?)
    }

    fn snapshot_names(&self, path: &Path) -> Result<Vec<String>, ImageError> {
        let args = snapshot_list_args(path.into());
        let out = self.invocation("info", args, self.limits).run()?;
        parse_names(&out.stdout)
    }

    /// Runs one modifying command, then fsyncs the image (qemu-img flushes on close; this
    /// makes the durability explicit, as `convert` does).
    fn snapshot_run(
        &self,
        path: &Path,
        action: SnapshotAction,
        name: &str,
    ) -> Result<(), ImageError> {
        let args = snapshot_args(action, name, qcow2_spec(path)?);
        self.invocation("snapshot", args, Limits::SNAPSHOT).run()?;
        sync(path)
    }
}

pub(super) fn snapshot_args(action: SnapshotAction, name: &str, image: OsString) -> Vec<OsString> {
    vec![
        "snapshot".into(),
        "-q".into(),
        action.flag().into(),
        name.into(),
        image,
    ]
}

pub(super) fn snapshot_list_args(path: OsString) -> Vec<OsString> {
    vec![
        "info".into(),
        "-f".into(),
        ImageFormat::Qcow2.as_str().into(),
        "--output=json".into(),
        path,
    ]
}

/// `json:{"driver":"qcow2","file":{"driver":"file","filename":<path>}}` for an absolute,
/// UTF-8 path (it goes into JSON).
pub(super) fn qcow2_spec(path: &Path) -> Result<OsString, ImageError> {
    let name = path.to_str().ok_or_else(|| {
        bad_path(
            path,
            "an image path for qemu-img snapshot must be valid UTF-8",
        )
    })?;
    let spec = serde_json::json!({
        "driver": ImageFormat::Qcow2.as_str(),
        "file": { "driver": "file", "filename": name },
    });
    let text = serde_json::to_string(&spec).map_err(ImageError::Spec)?;
    Ok(format!("json:{text}").into())
}

fn require_qcow2(format: ImageFormat) -> Result<(), ImageError> {
    match format {
        ImageFormat::Qcow2 => Ok(()),
        other => Err(ImageError::SnapshotFormat(other)),
    }
}

/// The format and name checks every command makes first, and the absolute path.
fn checked(path: &Path, format: ImageFormat, name: &str) -> Result<PathBuf, ImageError> {
    require_qcow2(format)?;
    check_name(name)?;
    absolute(path)
}

fn check_name(name: &str) -> Result<(), ImageError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > NAME_MAX {
        "it is longer than 255 bytes (qemu cuts it short)"
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        "it is all digits (qemu-img would take it for a snapshot id)"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(ImageError::SnapshotName {
        name: name.to_owned(),
        reason,
    })
}

fn snapshot_error(path: &Path, name: &str, reason: &'static str) -> ImageError {
    ImageError::Snapshot {
        path: path.to_owned(),
        name: name.to_owned(),
        reason,
    }
}

/// The `snapshots` of `qemu-img info` JSON; absent when the image has none.
#[derive(Debug, Deserialize)]
struct ListWire {
    #[serde(default)]
    snapshots: Vec<SnapshotWire>,
}

#[derive(Debug, Deserialize)]
struct SnapshotWire {
    name: String,
}

fn parse_names(stdout: &[u8]) -> Result<Vec<String>, ImageError> {
    let wire: ListWire = serde_json::from_slice(stdout).map_err(ImageError::InfoJson)?;
    Ok(wire.snapshots.into_iter().map(|s| s.name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_name_refuses_names_qemu_img_would_misread() {
        for (name, part) in [
            ("", "empty"),
            ("12", "all digits"),
            ("a\nb", "control character"),
        ] {
            let err = check_name(name).unwrap_err();
            assert!(err.to_string().contains(part), "{name:?}: {err}");
        }
        let long = "s".repeat(256);
        assert!(check_name(&long).unwrap_err().to_string().contains("255"));
        assert!(check_name(&"s".repeat(255)).is_ok());
        assert!(check_name("vmd-snap-1").is_ok());
    }

    #[test]
    fn snapshot_create_raw_format_is_refused_before_running_anything() {
        let q = QemuImg::new(
            "/nonexistent/qemu-img".into(),
            "/nonexistent/prlimit".into(),
            Limits::INFO,
        );
        let err = q
            .snapshot_create(Path::new("/x.raw"), ImageFormat::Raw, "s1")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "internal snapshots need a qcow2 image, not raw"
        );
        let err = q
            .snapshot_list(Path::new("/x.vmdk"), ImageFormat::Vmdk)
            .unwrap_err();
        assert!(
            matches!(err, ImageError::SnapshotFormat(ImageFormat::Vmdk)),
            "{err:?}"
        );
    }

    #[test]
    fn qcow2_spec_names_the_driver_and_escapes_the_path() {
        let spec = qcow2_spec(Path::new("/pool/a \"b\".qcow2")).unwrap();
        assert_eq!(
            spec.to_str().unwrap(),
            r#"json:{"driver":"qcow2","file":{"driver":"file","filename":"/pool/a \"b\".qcow2"}}"#
        );
    }

    #[test]
    fn parse_names_reads_names_in_order_and_none_when_absent() {
        let json = br#"{"snapshots":[{"id":"1","name":"a b"},{"id":"2","name":"c"}],
                        "virtual-size":1,"format":"qcow2"}"#;
        assert_eq!(parse_names(json).unwrap(), ["a b", "c"]);
        let none = br#"{"virtual-size":1,"format":"qcow2"}"#;
        assert!(parse_names(none).unwrap().is_empty());
        assert!(matches!(parse_names(b"nope"), Err(ImageError::InfoJson(_))));
    }
}
