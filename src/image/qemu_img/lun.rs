//! Raw iSCSI LUNs through QEMU's own iSCSI client (`block-iscsi`, Debian's
//! qemu-block-extra): the size a guest sees, and writing an image onto a pre-existing LUN.
//!
//! The LUN is addressed by QEMU's structured options (`file.driver=iscsi`, `file.portal`,
//! `file.target`, `file.lun`), never by a URL string QEMU would parse: the portal, target and
//! initiator were checked by [`crate::host::caps`] to hold no `,` or `/`.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{source_arg, ImageSource, Limits, QemuImg};
use crate::host::IscsiLun;
use crate::image::{ImageError, ImageFormat};

/// The `iscsi` block driver's options for `lun`, as a `json:` spec's `file` node.
pub(super) fn iscsi_spec(lun: &IscsiLun) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "driver": "iscsi",
        "transport": "tcp",
        "portal": portal(lun),
        "target": lun.portal.target,
        "lun": lun.lun,
    });
    if let Some(initiator) = &lun.portal.initiator {
        spec["initiator-name"] = initiator.as_str().into();
    }
    spec
}

fn portal(lun: &IscsiLun) -> String {
    let p = &lun.portal;
    if p.host.contains(':') {
        format!("[{}]:{}", p.host, p.port)
    } else {
        format!("{}:{}", p.host, p.port)
    }
}

/// `--target-image-opts` for the raw LUN, or for `size` bytes of it from `offset`.
fn target_opts(lun: &IscsiLun, window: Option<(u64, u64)>) -> String {
    let mut opts = String::from("driver=raw");
    if let Some((offset, size)) = window {
        opts.push_str(&format!(",offset={offset},size={size}"));
    }
    opts.push_str(&format!(
        ",file.driver=iscsi,file.transport=tcp,file.portal={},file.target={},file.lun={}",
        portal(lun),
        lun.portal.target,
        lun.lun
    ));
    if let Some(initiator) = &lun.portal.initiator {
        opts.push_str(&format!(",file.initiator-name={initiator}"));
    }
    opts
}

fn onto_lun_args(src: OsString, src_format: ImageFormat, target: String) -> Vec<OsString> {
    vec![
        "convert".into(),
        "-q".into(),
        "-n".into(),
        "-f".into(),
        src_format.as_str().into(),
        "-t".into(),
        "writeback".into(),
        src,
        "--target-image-opts".into(),
        target.into(),
    ]
}

fn not_aligned(lun: &IscsiLun) -> ImageError {
    ImageError::BadPath {
        path: PathBuf::from(lun.url()),
        reason: "image and LUN sizes must be multiples of 512 bytes",
    }
}

impl QemuImg {
    /// The LUN's size as QEMU, and so a guest, sees it (`qemu-img info -f raw`).
    pub fn lun_size(&self, lun: &IscsiLun) -> Result<u64, ImageError> {
        Ok(self
            .info(ImageSource::Iscsi(lun), ImageFormat::Raw)?
            .virtual_size)
    }

    /// Writes `src` (read as `src_format`, `src_size` bytes) onto the start of `lun`
    /// (`lun_size` bytes), then zeroes the rest of the LUN, so that nothing a previous
    /// holder left is visible past the copy (`qemu-img convert -n ... --target-image-opts`,
    /// the second time from QEMU's `null-co` zero source into a `raw` window of the LUN).
    pub fn write_lun<'a>(
        &self,
        src: impl Into<ImageSource<'a>>,
        src_format: ImageFormat,
        src_size: u64,
        lun: &IscsiLun,
        lun_size: u64,
    ) -> Result<(), ImageError> {
        if src_size > lun_size {
            return Err(ImageError::TooLarge {
                size: src_size,
                limit: lun_size,
            });
        }
        if !src_size.is_multiple_of(512) || !lun_size.is_multiple_of(512) {
            return Err(not_aligned(lun));
        }
        let src = source_arg(&src.into())?;
        let limits = Limits::convert_for(lun_size);
        let args = onto_lun_args(src, src_format, target_opts(lun, None));
        self.invocation("convert", args, limits).run()?;
        let tail = lun_size - src_size;
        if tail > 0 {
            let zeros = serde_json::json!({
                "file": { "driver": "null-co", "size": tail, "read-zeroes": true }
            });
            let zeros = serde_json::to_string(&zeros).map_err(ImageError::Spec)?;
            let args = onto_lun_args(
                format!("json:{zeros}").into(),
                ImageFormat::Raw,
                target_opts(lun, Some((src_size, tail))),
            );
            self.invocation("convert", args, limits).run()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::IscsiPortal;

    fn lun() -> IscsiLun {
        IscsiLun {
            portal: IscsiPortal {
                host: "127.0.0.1".into(),
                port: 3260,
                target: "iqn.2026-12.dev.vmd:second-host".into(),
                initiator: Some("iqn.2026-12.dev.vmd:initiator".into()),
            },
            lun: 1,
        }
    }

    #[test]
    fn target_opts_name_portal_target_lun_and_initiator() {
        assert_eq!(
            target_opts(&lun(), Some((512, 1024))),
            "driver=raw,offset=512,size=1024,file.driver=iscsi,file.transport=tcp,\
             file.portal=127.0.0.1:3260,file.target=iqn.2026-12.dev.vmd:second-host,\
             file.lun=1,file.initiator-name=iqn.2026-12.dev.vmd:initiator"
        );
    }

    #[test]
    fn source_arg_iscsi_is_a_json_spec() {
        let l = lun();
        let arg = source_arg(&ImageSource::Iscsi(&l)).unwrap();
        let text = arg.to_str().unwrap();
        let spec: serde_json::Value =
            serde_json::from_str(text.strip_prefix("json:").unwrap()).unwrap();
        assert_eq!(spec["file"]["driver"], "iscsi");
        assert_eq!(spec["file"]["portal"], "127.0.0.1:3260");
        assert_eq!(spec["file"]["lun"], 1);
        assert_eq!(
            spec["file"]["initiator-name"],
            "iqn.2026-12.dev.vmd:initiator"
        );
    }

    #[test]
    fn write_lun_larger_image_is_refused_before_running() {
        let q = QemuImg::new("/nonexistent".into(), "/nonexistent".into(), Limits::INFO);
        let err = q
            .write_lun(
                std::path::Path::new("/x"),
                ImageFormat::Raw,
                2048,
                &lun(),
                1024,
            )
            .unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { .. }), "{err}");
    }
}
