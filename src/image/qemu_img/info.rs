//! `qemu-img info --output=json`: the wire model (only the fields vmd reads; qemu adds
//! fields between releases, so unknown ones are ignored) and the checks that turn it into a
//! [`QemuInfo`]: format as declared, no backing file, no data file, no encryption, an
//! allowed VMDK layout.

use serde::Deserialize;

use crate::image::{ImageError, ImageFormat, VmdkSubformat};

/// What `qemu-img info` reported for an image that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuInfo {
    /// Always the format that was asked for (`-f`); a different report is an error.
    pub format: ImageFormat,
    /// Guest-visible size in bytes.
    pub virtual_size: u64,
    /// Bytes allocated on the host, when qemu-img knows.
    pub actual_size: Option<u64>,
    /// Cluster (grain) size in bytes, for qcow2 and VMDK.
    pub cluster_size: Option<u64>,
    /// The image is marked dirty (qcow2 lazy refcounts).
    pub dirty: bool,
    /// The VMDK layout, for VMDK images.
    pub vmdk_subformat: Option<VmdkSubformat>,
}

/// Missing `Option` fields deserialize as `None`; required fields make parsing fail.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct InfoWire {
    virtual_size: u64,
    format: String,
    actual_size: Option<u64>,
    cluster_size: Option<u64>,
    dirty_flag: Option<bool>,
    encrypted: Option<bool>,
    backing_filename: Option<String>,
    full_backing_filename: Option<String>,
    backing_filename_format: Option<String>,
    format_specific: Option<FormatSpecificWire>,
}

#[derive(Debug, Deserialize)]
struct FormatSpecificWire {
    #[serde(rename = "type")]
    kind: String,
    data: FormatDataWire,
}

/// The union of the qcow2 and VMDK `format-specific.data` fields vmd checks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FormatDataWire {
    data_file: Option<String>,
    corrupt: Option<bool>,
    encrypt: Option<serde::de::IgnoredAny>,
    create_type: Option<String>,
    parent_cid: Option<u64>,
    extents: Option<Vec<ExtentWire>>,
}

#[derive(Debug, Deserialize)]
struct ExtentWire {
    format: String,
}

const NO_PARENT_CID: u64 = 0xffff_ffff;

/// Parses and checks `qemu-img info` JSON for an image opened with `-f expected`;
/// `image` names it in errors.
pub(super) fn parse(
    json: &[u8],
    expected: ImageFormat,
    image: &str,
) -> Result<QemuInfo, ImageError> {
    let wire: InfoWire = serde_json::from_slice(json).map_err(ImageError::InfoJson)?;
    let reject = |reason: String| ImageError::InfoRejected {
        path: image.to_owned(),
        reason,
    };
    if wire.format != expected.as_str() {
        return Err(reject(format!(
            "format is {:?}, expected {expected}",
            wire.format
        )));
    }
    let backing = wire
        .backing_filename
        .or(wire.full_backing_filename)
        .or(wire.backing_filename_format.map(|f| format!("format {f}")));
    if let Some(name) = backing {
        return Err(reject(format!("has a backing file {name:?}")));
    }
    if wire.encrypted == Some(true) {
        return Err(reject("is encrypted".into()));
    }
    if wire.virtual_size == 0 {
        return Err(reject("virtual size is 0".into()));
    }
    let mut vmdk_subformat = None;
    match wire.format_specific {
        None if expected == ImageFormat::Raw => {}
        Some(fs) if fs.kind == expected.as_str() => {
            let d = fs.data;
            if let Some(file) = d.data_file {
                return Err(reject(format!("has an external data file {file:?}")));
            }
            if d.corrupt == Some(true) {
                return Err(reject("is marked corrupt".into()));
            }
            if d.encrypt.is_some() {
                return Err(reject("is encrypted".into()));
            }
            if expected == ImageFormat::Vmdk {
                vmdk_subformat = Some(check_vmdk(&d).map_err(reject)?);
            }
        }
        fs => {
            return Err(reject(format!(
                "unexpected format-specific data {:?} for {expected}",
                fs.map(|f| f.kind)
            )))
        }
    }
    Ok(QemuInfo {
        format: expected,
        virtual_size: wire.virtual_size,
        actual_size: wire.actual_size,
        cluster_size: wire.cluster_size,
        dirty: wire.dirty_flag == Some(true),
        vmdk_subformat,
    })
}

fn check_vmdk(d: &FormatDataWire) -> Result<VmdkSubformat, String> {
    let subformat = match d.create_type.as_deref() {
        Some("monolithicSparse") => VmdkSubformat::MonolithicSparse,
        Some("streamOptimized") => VmdkSubformat::StreamOptimized,
        other => return Err(format!("vmdk create-type {other:?} is not allowed")),
    };
    if let Some(cid) = d.parent_cid.filter(|&c| c != NO_PARENT_CID) {
        return Err(format!("vmdk parent-cid is {cid:#x} (a delta disk)"));
    }
    match d.extents.as_deref() {
        // A sparse extent stored in the image file itself reports an empty format.
        Some([only]) if only.format.is_empty() => Ok(subformat),
        Some([only]) => Err(format!("vmdk extent has format {:?}", only.format)),
        Some(many) => Err(format!("vmdk has {} extents", many.len())),
        None => Err("vmdk lists no extents".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QCOW2: &str = r#"{
        "virtual-size": 1073741824, "filename": "a.qcow2", "cluster-size": 65536,
        "format": "qcow2", "actual-size": 200704,
        "format-specific": {"type": "qcow2", "data": {"compat": "1.1",
            "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16,
            "corrupt": false, "extended-l2": false}},
        "dirty-flag": false, "children": []}"#;

    fn parse_str(json: &str, f: ImageFormat) -> Result<QemuInfo, ImageError> {
        parse(json.as_bytes(), f, "a.img")
    }

    #[test]
    fn info_parse_good_qcow2_gives_size_and_ignores_new_fields() {
        let info = parse_str(QCOW2, ImageFormat::Qcow2).unwrap();
        assert_eq!(info.virtual_size, 1 << 30);
        assert_eq!(info.cluster_size, Some(65536));
        assert!(!info.dirty);
    }

    #[test]
    fn info_parse_format_mismatch_is_rejected() {
        let err = parse_str(QCOW2, ImageFormat::Raw).unwrap_err();
        assert_eq!(
            err.to_string(),
            "qemu-img info on a.img: format is \"qcow2\", expected raw"
        );
    }

    #[test]
    fn info_parse_backing_file_is_rejected() {
        let json = QCOW2.replace(
            "\"dirty-flag\"",
            "\"backing-filename\": \"/etc/hosts\", \"dirty-flag\"",
        );
        let err = parse_str(&json, ImageFormat::Qcow2).unwrap_err();
        assert!(
            err.to_string()
                .contains("has a backing file \"/etc/hosts\""),
            "{err}"
        );
    }

    #[test]
    fn info_parse_backing_format_alone_is_rejected() {
        let json = QCOW2.replace(
            "\"dirty-flag\"",
            "\"backing-filename-format\": \"raw\", \"dirty-flag\"",
        );
        assert!(parse_str(&json, ImageFormat::Qcow2).is_err());
    }

    #[test]
    fn info_parse_data_file_is_rejected() {
        let json = QCOW2.replace("\"corrupt\"", "\"data-file\": \"/etc/hosts\", \"corrupt\"");
        let err = parse_str(&json, ImageFormat::Qcow2).unwrap_err();
        assert!(
            err.to_string()
                .contains("external data file \"/etc/hosts\""),
            "{err}"
        );
    }

    #[test]
    fn info_parse_vmdk_flat_is_rejected() {
        let json = r#"{"virtual-size": 1048576, "filename": "f.vmdk", "format": "vmdk",
            "format-specific": {"type": "vmdk", "data": {"cid": 1, "parent-cid": 4294967295,
            "create-type": "monolithicFlat",
            "extents": [{"virtual-size": 1048576, "filename": "f-flat.vmdk", "format": "FLAT"}]}}}"#;
        let err = parse_str(json, ImageFormat::Vmdk).unwrap_err();
        assert!(
            err.to_string()
                .contains("create-type Some(\"monolithicFlat\")"),
            "{err}"
        );
    }

    #[test]
    fn info_parse_vmdk_stream_is_accepted() {
        let json = r#"{"virtual-size": 1073741824, "filename": "s.vmdk", "format": "vmdk",
            "format-specific": {"type": "vmdk", "data": {"cid": 1, "parent-cid": 4294967295,
            "create-type": "streamOptimized", "extents": [{"compressed": true,
            "virtual-size": 1073741824, "filename": "s.vmdk", "format": ""}]}}}"#;
        let info = parse_str(json, ImageFormat::Vmdk).unwrap();
        assert_eq!(info.vmdk_subformat, Some(VmdkSubformat::StreamOptimized));
    }

    #[test]
    fn info_parse_missing_virtual_size_is_an_error() {
        let err = parse_str(r#"{"format": "raw"}"#, ImageFormat::Raw).unwrap_err();
        assert!(matches!(err, ImageError::InfoJson(_)));
    }

    #[test]
    fn info_parse_not_json_is_an_error() {
        assert!(matches!(
            parse_str("image: a.img", ImageFormat::Raw),
            Err(ImageError::InfoJson(_))
        ));
    }
}
