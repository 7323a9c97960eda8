//! VMDK sparse extent checks (VMware "Virtual Disk Format 5.0", QEMU `block/vmdk.c`
//! `vmdk_open_vmdk4`). Accepts only a hosted sparse extent with its descriptor embedded at
//! sector 1 and, for streamOptimized images with `gdOffset == GD_AT_END`, a valid footer.
//! Reads the header, the descriptor (capped below 1 MiB) and the last three sectors.

use std::io::{Read, Seek};

use super::descriptor;
use super::{le_u16, le_u32, le_u64, Image, VmdkDetails};
use crate::image::{ImageError, ImageFormat, VmdkSubformat};

const SECTOR: u64 = 512;
const MAGIC: &[u8; 4] = b"KDMV";
const GD_AT_END: u64 = u64::MAX;
const FLAG_NL_DETECT: u32 = 1 << 0;
const FLAG_RGD: u32 = 1 << 1;
const NL_CHECK_BYTES: [u8; 4] = *b"\n \r\n";
const COMPRESSION_NONE: u16 = 0;
const COMPRESSION_DEFLATE: u16 = 1;
/// The descriptor must start right after the header, as every hosted sparse extent has it;
/// anywhere else and QEMU and we could be reading different text.
const DESCRIPTOR_SECTOR: u64 = 1;
/// oslo's cap: descriptor below 1 MiB (QEMU reads at most 1 MiB - 1).
const MAX_DESCRIPTOR_SECTORS: u64 = ((1 << 20) - 1) / SECTOR;
/// VMware's own range: a power of two from 4 KiB to 64 KiB (QEMU and VMware write 64 KiB).
const MIN_GRAIN_SECTORS: u64 = 8;
const MAX_GRAIN_SECTORS: u64 = 128;
const MAX_GTES_PER_GT: u32 = 512;
/// QEMU's `vmdk_add_extent` limit on the grain directory.
const MAX_GD_ENTRIES: u64 = 32 << 20;
const MARKER_END_OF_STREAM: u32 = 0;
const MARKER_FOOTER: u32 = 3;

fn invalid(reason: String) -> ImageError {
    ImageError::InvalidHeader {
        format: ImageFormat::Vmdk,
        reason,
    }
}

#[derive(Debug, Clone, Copy)]
struct SparseHeader {
    version: u32,
    flags: u32,
    capacity: u64,
    grain: u64,
    desc_offset: u64,
    desc_size: u64,
    gtes_per_gt: u32,
    rgd_offset: u64,
    gd_offset: u64,
    overhead: u64,
    check_bytes: [u8; 4],
    compression: u16,
}

impl SparseHeader {
    /// `b` is one 512-byte sector starting with the magic.
    fn parse(b: &[u8]) -> SparseHeader {
        SparseHeader {
            version: le_u32(b, 4),
            flags: le_u32(b, 8),
            capacity: le_u64(b, 12),
            grain: le_u64(b, 20),
            desc_offset: le_u64(b, 28),
            desc_size: le_u64(b, 36),
            gtes_per_gt: le_u32(b, 44),
            rgd_offset: le_u64(b, 48),
            gd_offset: le_u64(b, 56),
            overhead: le_u64(b, 64),
            check_bytes: [b[73], b[74], b[75], b[76]],
            compression: le_u16(b, 77),
        }
    }
}

/// Checks a VMDK sparse image; returns its virtual size and header facts.
pub(super) fn inspect<R: Read + Seek>(
    img: &mut Image<'_, R>,
) -> Result<(u64, VmdkDetails), ImageError> {
    let mut sector = [0u8; SECTOR as usize];
    img.read_at(0, &mut sector, "vmdk header")?;
    let h = SparseHeader::parse(&sector);
    // A zero capacity makes QEMU treat the embedded descriptor as a descriptor file and
    // open the extents it names, so it is refused before anything else.
    if h.capacity == 0 {
        return Err(invalid("capacity is 0".into()));
    }
    check_fields(img, &h, "header")?;

    let desc = read_descriptor(img, &h)?;
    let subformat = desc.subformat;
    let compressed = h.compression == COMPRESSION_DEFLATE;
    if compressed != (subformat == VmdkSubformat::StreamOptimized) {
        return Err(invalid(format!(
            "createType {subformat} does not match compressAlgorithm {}",
            h.compression
        )));
    }
    if desc.extent_sectors != h.capacity {
        return Err(invalid(format!(
            "extent of {} sectors does not match the header capacity of {} sectors",
            desc.extent_sectors, h.capacity
        )));
    }

    let footer = h.gd_offset == GD_AT_END;
    let tables = if footer {
        if subformat != VmdkSubformat::StreamOptimized {
            return Err(invalid(
                "gdOffset is GD_AT_END but the image is not streamOptimized".into(),
            ));
        }
        let f = read_footer(img)?;
        check_fields(img, &f, "footer")?;
        if f.capacity != h.capacity
            || f.grain != h.grain
            || f.gtes_per_gt != h.gtes_per_gt
            || f.compression != h.compression
        {
            return Err(invalid(format!(
                "footer (capacity {}, grain {}, gtes {}, compression {}) differs from the \
                 header (capacity {}, grain {}, gtes {}, compression {})",
                f.capacity,
                f.grain,
                f.gtes_per_gt,
                f.compression,
                h.capacity,
                h.grain,
                h.gtes_per_gt,
                h.compression
            )));
        }
        if f.gd_offset == GD_AT_END {
            return Err(invalid("footer gdOffset is GD_AT_END too".into()));
        }
        f
    } else {
        h
    };
    check_tables(img, &tables)?;

    let virtual_size = h
        .capacity
        .checked_mul(SECTOR)
        .ok_or_else(|| invalid(format!("capacity {} sectors overflows", h.capacity)))?;
    Ok((
        virtual_size,
        VmdkDetails {
            subformat,
            version: h.version,
            grain_sectors: h.grain,
            footer,
        },
    ))
}

/// Range checks shared by the header and the footer (QEMU uses the footer's values).
fn check_fields<R: Read + Seek>(
    img: &Image<'_, R>,
    h: &SparseHeader,
    which: &str,
) -> Result<(), ImageError> {
    if !(1..=3).contains(&h.version) {
        return Err(invalid(format!(
            "{which} version {} is not supported (only 1 to 3)",
            h.version
        )));
    }
    if h.flags & FLAG_NL_DETECT != 0 && h.check_bytes != NL_CHECK_BYTES {
        return Err(invalid(format!(
            "{which} newline check bytes are damaged (was the file transferred as text?)"
        )));
    }
    if h.compression != COMPRESSION_NONE && h.compression != COMPRESSION_DEFLATE {
        return Err(invalid(format!(
            "{which} compressAlgorithm {} is unknown",
            h.compression
        )));
    }
    if !h.grain.is_power_of_two() || !(MIN_GRAIN_SECTORS..=MAX_GRAIN_SECTORS).contains(&h.grain) {
        return Err(invalid(format!(
            "{which} grainSize {} sectors is not a power of two from {MIN_GRAIN_SECTORS} to \
             {MAX_GRAIN_SECTORS}",
            h.grain
        )));
    }
    if h.gtes_per_gt == 0 || h.gtes_per_gt > MAX_GTES_PER_GT {
        return Err(invalid(format!(
            "{which} numGTEsPerGT {} is outside 1..={MAX_GTES_PER_GT}",
            h.gtes_per_gt
        )));
    }
    if h.capacity.checked_mul(SECTOR).is_none() {
        return Err(invalid(format!(
            "{which} capacity {} sectors overflows",
            h.capacity
        )));
    }
    if h.overhead > img.len / SECTOR {
        return Err(invalid(format!(
            "{which} overHead of {} sectors is past the end of the image",
            h.overhead
        )));
    }
    Ok(())
}

/// The grain directory (and its redundant copy) must fit the image and QEMU's limit.
fn check_tables<R: Read + Seek>(img: &Image<'_, R>, h: &SparseHeader) -> Result<(), ImageError> {
    // Both factors were range-checked: at most 512 * 128.
    let sectors_per_gde = u64::from(h.gtes_per_gt) * h.grain;
    let entries = h.capacity.div_ceil(sectors_per_gde);
    if entries > MAX_GD_ENTRIES {
        return Err(invalid(format!(
            "grain directory of {entries} entries is above the limit of {MAX_GD_ENTRIES}"
        )));
    }
    let gd_bytes = entries * 4;
    let mut dirs = vec![("gdOffset", h.gd_offset)];
    if h.flags & FLAG_RGD != 0 {
        dirs.push(("rgdOffset", h.rgd_offset));
    }
    for (field, sector) in dirs {
        let offset = sector
            .checked_mul(SECTOR)
            .filter(|_| sector != 0)
            .ok_or_else(|| invalid(format!("{field} {sector} is not a valid sector")))?;
        img.check_range(offset, gd_bytes, "vmdk grain directory")?;
    }
    Ok(())
}

fn read_descriptor<R: Read + Seek>(
    img: &mut Image<'_, R>,
    h: &SparseHeader,
) -> Result<descriptor::Descriptor, ImageError> {
    if h.desc_offset != DESCRIPTOR_SECTOR {
        return Err(invalid(format!(
            "descriptorOffset is sector {}; the embedded descriptor must start at sector \
             {DESCRIPTOR_SECTOR}",
            h.desc_offset
        )));
    }
    if h.desc_size == 0 || h.desc_size > MAX_DESCRIPTOR_SECTORS {
        return Err(invalid(format!(
            "descriptorSize {} sectors is outside 1..={MAX_DESCRIPTOR_SECTORS}",
            h.desc_size
        )));
    }
    // Bounded by MAX_DESCRIPTOR_SECTORS: below 1 MiB.
    let size = (h.desc_size * SECTOR) as usize;
    let bytes = img.read_vec_at(DESCRIPTOR_SECTOR * SECTOR, size, "vmdk descriptor")?;
    // QEMU reads the descriptor as a C string; the rest of its sectors must be padding so
    // that no hidden text follows what QEMU and we see.
    let text_len = bytes.iter().position(|&b| b == 0).ok_or_else(|| {
        invalid(format!(
            "descriptor fills its {} sectors without a terminating NUL",
            h.desc_size
        ))
    })?;
    if bytes[text_len..].iter().any(|&b| b != 0) {
        return Err(invalid(
            "descriptor sectors hold data after the descriptor text".into(),
        ));
    }
    descriptor::parse(&bytes[..text_len])
}

/// The footer sits in the second-to-last sector, after a footer marker and before the
/// end-of-stream marker, counted from the end of the image rounded down to a sector.
fn read_footer<R: Read + Seek>(img: &mut Image<'_, R>) -> Result<SparseHeader, ImageError> {
    let end = img.len / SECTOR * SECTOR;
    let start = end.checked_sub(3 * SECTOR).ok_or(ImageError::Truncated {
        what: "vmdk footer",
        offset: 0,
        end: u128::from(3 * SECTOR),
        len: img.len,
    })?;
    let mut b = [0u8; 3 * SECTOR as usize];
    img.read_at(start, &mut b, "vmdk footer")?;
    let (marker, footer, eos) = (&b[..512], &b[512..1024], &b[1024..]);
    let marker_ok = le_u32(marker, 8) == 0 && le_u32(marker, 12) == MARKER_FOOTER;
    let eos_ok =
        le_u64(eos, 0) == 0 && le_u32(eos, 8) == 0 && le_u32(eos, 12) == MARKER_END_OF_STREAM;
    if !marker_ok || &footer[..4] != MAGIC || !eos_ok {
        return Err(invalid(
            "gdOffset is GD_AT_END but the last three sectors are not a footer marker, a \
             footer and an end-of-stream marker"
                .into(),
        ));
    }
    Ok(SparseHeader::parse(footer))
}
