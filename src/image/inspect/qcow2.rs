//! qcow2 header checks (QEMU `docs/interop/qcow2.txt`, `block/qcow2.c` `qcow2_do_open`).
//! Rejects backing files, external data files, encryption, corrupt images and unknown
//! incompatible features, and checks the geometry QEMU would otherwise trust. Reads the
//! header, the 8-byte extension headers and (in [`super::qcow2_map`]) the L1 and L2 tables.

use std::io::{Read, Seek};

use super::qcow2_map::{self, MapGeometry};
use super::{be_u32, be_u64, shown, Image, Qcow2Details};
use crate::image::{ImageError, ImageFormat};

const V2_HEADER_LEN: u32 = 72;
const V3_MIN_HEADER_LEN: u32 = 104;
const MIN_CLUSTER_BITS: u32 = 9;
const MAX_CLUSTER_BITS: u32 = 21;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

/// QEMU's limits (`block/qcow2.h`): L1 table 32 MiB, refcount table 8 MiB, 65536 snapshots
/// with 40-byte fixed headers.
const MAX_L1_BYTES: u64 = 32 << 20;
const MAX_REFTABLE_BYTES: u64 = 8 << 20;
const MAX_SNAPSHOTS: u32 = 65536;
const SNAPSHOT_HEADER_LEN: u64 = 40;

const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_CRYPTO_HEADER: u32 = 0x0537_be77;
const EXT_DATA_FILE: u32 = 0x4441_5441;
/// Real images carry two or three extensions; more is a sign of a crafted header.
const MAX_EXTENSIONS: usize = 64;
/// QEMU caps the backing file name at 1023 bytes; we only read it for the error message.
const MAX_BACKING_NAME: u64 = 1023;

fn invalid(reason: String) -> ImageError {
    ImageError::InvalidHeader {
        format: ImageFormat::Qcow2,
        reason,
    }
}

struct Header {
    version: u32,
    backing_file_offset: u64,
    backing_file_size: u32,
    cluster_bits: u32,
    size: u64,
    crypt_method: u32,
    l1_size: u32,
    l1_table_offset: u64,
    refcount_table_offset: u64,
    refcount_table_clusters: u32,
    nb_snapshots: u32,
    snapshots_offset: u64,
    incompatible: u64,
    refcount_order: u32,
    header_length: u32,
    compression_type: u8,
}

/// Checks a qcow2 image; returns its virtual size and header facts.
pub(super) fn inspect<R: Read + Seek>(
    img: &mut Image<'_, R>,
) -> Result<(u64, Qcow2Details), ImageError> {
    let h = read_header(img)?;
    check_header(img, &h)?;
    check_geometry(img, &h)?;
    check_extensions(img, &h)?;
    let mapped_bytes = qcow2_map::mapped_bytes(
        img,
        &MapGeometry {
            cluster_bits: h.cluster_bits,
            virtual_size: h.size,
            l1_size: h.l1_size,
            l1_table_offset: h.l1_table_offset,
            extended_l2: h.incompatible & INCOMPAT_EXTL2 != 0,
            version: h.version,
        },
    )?;
    Ok((
        h.size,
        Qcow2Details {
            version: h.version,
            cluster_bits: h.cluster_bits,
            dirty: h.incompatible & INCOMPAT_DIRTY != 0,
            mapped_bytes,
        },
    ))
}

/// The checks that need the header alone: no backing file, no external data file, no
/// encryption, no unknown or corrupt incompatible features.
fn check_header<R: Read + Seek>(img: &mut Image<'_, R>, h: &Header) -> Result<(), ImageError> {
    if h.backing_file_offset != 0 || h.backing_file_size != 0 {
        let name = backing_name(img, h);
        return Err(ImageError::BackingFile {
            format: ImageFormat::Qcow2,
            detail: format!(
                "backing_file_offset {:#x}, backing_file_size {}{name}",
                h.backing_file_offset, h.backing_file_size
            ),
        });
    }
    if h.incompatible & INCOMPAT_DATA_FILE != 0 {
        return Err(ImageError::DataFile {
            detail: "incompatible feature bit 2 is set".into(),
        });
    }
    if h.crypt_method != 0 {
        return Err(ImageError::Encrypted {
            detail: format!("crypt_method {}", h.crypt_method),
        });
    }
    let unknown = h.incompatible & !INCOMPAT_KNOWN;
    if unknown != 0 {
        return Err(invalid(format!(
            "unknown incompatible feature bits {unknown:#x}"
        )));
    }
    if h.incompatible & INCOMPAT_CORRUPT != 0 {
        return Err(invalid(
            "image is marked corrupt (incompatible feature bit 1)".into(),
        ));
    }
    Ok(())
}

/// Checks the header of a qcow2 image known only by its first bytes (a compressed or
/// chunked package file, read front to back): the refusals [`inspect`] makes from the header
/// alone. The tables are checked later, when the whole image is staged.
pub(super) fn inspect_header<R: Read + Seek>(img: &mut Image<'_, R>) -> Result<(), ImageError> {
    let h = read_header(img)?;
    check_header(img, &h)
}

fn read_header<R: Read + Seek>(img: &mut Image<'_, R>) -> Result<Header, ImageError> {
    let mut b = [0u8; V3_MIN_HEADER_LEN as usize + 8];
    img.read_at(0, &mut b[..V2_HEADER_LEN as usize], "qcow2 header")?;
    let version = be_u32(&b, 4);
    if version != 2 && version != 3 {
        return Err(invalid(format!(
            "version {version} is not supported (only 2 and 3)"
        )));
    }
    let cluster_bits = be_u32(&b, 20);
    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
        return Err(invalid(format!(
            "cluster_bits {cluster_bits} is outside {MIN_CLUSTER_BITS}..={MAX_CLUSTER_BITS}"
        )));
    }
    let mut h = Header {
        version,
        backing_file_offset: be_u64(&b, 8),
        backing_file_size: be_u32(&b, 16),
        cluster_bits,
        size: be_u64(&b, 24),
        crypt_method: be_u32(&b, 32),
        l1_size: be_u32(&b, 36),
        l1_table_offset: be_u64(&b, 40),
        refcount_table_offset: be_u64(&b, 48),
        refcount_table_clusters: be_u32(&b, 56),
        nb_snapshots: be_u32(&b, 60),
        snapshots_offset: be_u64(&b, 64),
        incompatible: 0,
        refcount_order: 4,
        header_length: V2_HEADER_LEN,
        compression_type: 0,
    };
    if version == 3 {
        let v3 = &mut b[V2_HEADER_LEN as usize..V3_MIN_HEADER_LEN as usize];
        img.read_at(u64::from(V2_HEADER_LEN), v3, "qcow2 version 3 header")?;
        h.incompatible = be_u64(&b, 72);
        h.refcount_order = be_u32(&b, 96);
        h.header_length = be_u32(&b, 100);
        let cluster_size = 1u64 << cluster_bits;
        if h.header_length < V3_MIN_HEADER_LEN
            || !h.header_length.is_multiple_of(8)
            || u64::from(h.header_length) > cluster_size
        {
            return Err(invalid(format!(
                "header_length {} is not a multiple of 8 between {V3_MIN_HEADER_LEN} and the \
                 cluster size {cluster_size}",
                h.header_length
            )));
        }
        if h.header_length > V3_MIN_HEADER_LEN {
            let mut ct = [0u8; 1];
            img.read_at(
                u64::from(V3_MIN_HEADER_LEN),
                &mut ct,
                "qcow2 compression type",
            )?;
            h.compression_type = ct[0];
        }
    }
    Ok(h)
}

fn check_geometry<R: Read + Seek>(img: &Image<'_, R>, h: &Header) -> Result<(), ImageError> {
    let cluster_size = 1u64 << h.cluster_bits;
    let aligned = |offset: u64| offset.is_multiple_of(cluster_size);
    if h.refcount_order > 6 {
        return Err(invalid(format!(
            "refcount_order {} is above 6",
            h.refcount_order
        )));
    }
    let zstd = h.incompatible & INCOMPAT_COMPRESSION != 0;
    match (h.compression_type, zstd) {
        (0, false) | (1, true) => {}
        (ct, _) => {
            return Err(invalid(format!(
                "compression_type {ct} does not match incompatible feature bit 3 ({})",
                u8::from(zstd)
            )))
        }
    }
    let extended_l2 = h.incompatible & INCOMPAT_EXTL2 != 0;
    if extended_l2 && h.cluster_bits < 14 {
        return Err(invalid(format!(
            "extended L2 entries need cluster_bits >= 14, not {}",
            h.cluster_bits
        )));
    }

    // One L1 entry maps one L2 table: cluster_size / entry_size clusters.
    let l2_bits = h.cluster_bits - if extended_l2 { 4 } else { 3 };
    let shift = h.cluster_bits + l2_bits;
    let l1_needed = (h.size >> shift) + u64::from(h.size & ((1u64 << shift) - 1) != 0);
    if l1_needed > i32::MAX as u64 {
        return Err(invalid(format!("virtual size {} is too big", h.size)));
    }
    if u64::from(h.l1_size) > MAX_L1_BYTES / 8 {
        return Err(invalid(format!(
            "l1_size {} is above the limit of {} entries",
            h.l1_size,
            MAX_L1_BYTES / 8
        )));
    }
    if u64::from(h.l1_size) < l1_needed {
        return Err(invalid(format!(
            "l1_size {} is too small for the virtual size {} (needs {l1_needed})",
            h.l1_size, h.size
        )));
    }
    if h.l1_size > 0 {
        if !aligned(h.l1_table_offset) {
            return Err(invalid(format!(
                "l1_table_offset {:#x} is not cluster aligned",
                h.l1_table_offset
            )));
        }
        img.check_range(
            h.l1_table_offset,
            u64::from(h.l1_size) * 8,
            "qcow2 L1 table",
        )?;
    }

    if h.refcount_table_clusters == 0 {
        return Err(invalid("refcount_table_clusters is 0".into()));
    }
    let reftable_bytes = u64::from(h.refcount_table_clusters) << h.cluster_bits;
    if reftable_bytes > MAX_REFTABLE_BYTES {
        return Err(invalid(format!(
            "refcount table of {} clusters is above the limit of {MAX_REFTABLE_BYTES} bytes",
            h.refcount_table_clusters
        )));
    }
    if !aligned(h.refcount_table_offset) {
        return Err(invalid(format!(
            "refcount_table_offset {:#x} is not cluster aligned",
            h.refcount_table_offset
        )));
    }
    img.check_range(
        h.refcount_table_offset,
        reftable_bytes,
        "qcow2 refcount table",
    )?;

    if h.nb_snapshots > MAX_SNAPSHOTS {
        return Err(invalid(format!(
            "nb_snapshots {} is above {MAX_SNAPSHOTS}",
            h.nb_snapshots
        )));
    }
    if h.nb_snapshots > 0 {
        if !aligned(h.snapshots_offset) {
            return Err(invalid(format!(
                "snapshots_offset {:#x} is not cluster aligned",
                h.snapshots_offset
            )));
        }
        let min_bytes = u64::from(h.nb_snapshots) * SNAPSHOT_HEADER_LEN;
        img.check_range(h.snapshots_offset, min_bytes, "qcow2 snapshot table")?;
    }
    Ok(())
}

/// Walks the header extensions between the header and the end of the first cluster, as
/// `qcow2_read_extensions` does, reading only each 8-byte extension header.
fn check_extensions<R: Read + Seek>(img: &mut Image<'_, R>, h: &Header) -> Result<(), ImageError> {
    let end = 1u64 << h.cluster_bits;
    let mut offset = u64::from(h.header_length);
    let mut count = 0;
    while offset < end {
        let mut ext = [0u8; 8];
        img.read_at(offset, &mut ext, "qcow2 header extension")?;
        let (kind, len) = (be_u32(&ext, 0), be_u32(&ext, 4));
        offset += 8;
        if kind == EXT_END {
            return Ok(());
        }
        count += 1;
        if count > MAX_EXTENSIONS {
            return Err(invalid(format!(
                "more than {MAX_EXTENSIONS} header extensions"
            )));
        }
        if u64::from(len) > end - offset {
            return Err(invalid(format!(
                "header extension {kind:#010x} of {len} bytes runs past the first cluster"
            )));
        }
        match kind {
            EXT_DATA_FILE => {
                return Err(ImageError::DataFile {
                    detail: format!("header extension {kind:#010x} names a data file"),
                })
            }
            EXT_CRYPTO_HEADER => {
                return Err(ImageError::Encrypted {
                    detail: format!("header extension {kind:#010x} holds an encryption header"),
                })
            }
            EXT_BACKING_FORMAT => {
                return Err(ImageError::BackingFile {
                    format: ImageFormat::Qcow2,
                    detail: format!("header extension {kind:#010x} declares a backing format"),
                })
            }
            _ => {}
        }
        // Extension data is padded to 8 bytes; `len` fits the cluster, so this cannot wrap.
        offset += (u64::from(len) + 7) & !7;
    }
    Ok(())
}

/// The backing file name, for the error message only, when it can be read safely.
fn backing_name<R: Read + Seek>(img: &mut Image<'_, R>, h: &Header) -> String {
    let size = u64::from(h.backing_file_size);
    if h.backing_file_offset == 0 || size == 0 || size > MAX_BACKING_NAME {
        return String::new();
    }
    match img.read_vec_at(
        h.backing_file_offset,
        size as usize,
        "qcow2 backing file name",
    ) {
        Ok(bytes) => format!(", names {}", shown(&String::from_utf8_lossy(&bytes))),
        Err(_) => String::new(),
    }
}
