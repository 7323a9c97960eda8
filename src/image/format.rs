//! The disk formats vmd accepts, as names shared by the inspector, `qemu-img` and the OVF layer.
//! Plain data: no I/O here.

use std::fmt;
use std::str::FromStr;

use super::ImageError;

/// A disk image format vmd accepts. Everything else (QED, VHD, VDI, ISO, ...) is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// No container: the bytes are the disk.
    Raw,
    /// QEMU copy-on-write v2, version 2 or 3.
    Qcow2,
    /// VMware sparse extent (monolithicSparse or streamOptimized only).
    Vmdk,
}

impl ImageFormat {
    /// The name `qemu-img -f` and `qemu-img info` use.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vmdk => "vmdk",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImageFormat {
    type Err = ImageError;

    /// Accepts exactly the `qemu-img` names; anything else is an error, so a typo never
    /// falls back to probing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "raw" => Ok(ImageFormat::Raw),
            "qcow2" => Ok(ImageFormat::Qcow2),
            "vmdk" => Ok(ImageFormat::Vmdk),
            other => Err(ImageError::UnknownFormatName(other.to_owned())),
        }
    }
}

/// The VMDK layouts vmd accepts: both keep data and metadata in the one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmdkSubformat {
    /// `createType="monolithicSparse"`: grain tables, uncompressed grains.
    MonolithicSparse,
    /// `createType="streamOptimized"`: deflate-compressed grains with markers (OVA exports).
    StreamOptimized,
}

impl VmdkSubformat {
    /// The descriptor's `createType` value.
    pub fn as_str(self) -> &'static str {
        match self {
            VmdkSubformat::MonolithicSparse => "monolithicSparse",
            VmdkSubformat::StreamOptimized => "streamOptimized",
        }
    }
}

impl fmt::Display for VmdkSubformat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_format_display_round_trips_through_from_str() {
        for f in [ImageFormat::Raw, ImageFormat::Qcow2, ImageFormat::Vmdk] {
            assert_eq!(f.to_string().parse::<ImageFormat>().unwrap(), f);
        }
    }

    #[test]
    fn image_format_from_str_unknown_name_is_rejected() {
        let err = "QCOW2".parse::<ImageFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown image format name \"QCOW2\" (expected raw, qcow2 or vmdk)"
        );
        assert!("qed".parse::<ImageFormat>().is_err());
    }
}
