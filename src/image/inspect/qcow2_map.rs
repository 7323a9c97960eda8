//! The qcow2 mapping walk: reads the active L1 table and every L2 table it names, and counts
//! the guest clusters that carry data, so that what a conversion can write is known from what
//! the image really maps (SECURITY.md item 42), never from what a descriptor claims.
//!
//! A qcow2 that QEMU wrote never maps one host cluster twice in its active tables (refcounts
//! above 1 come only from internal snapshots, whose tables are not read here). A second
//! mapping of a standard data cluster, or of an L2 table, is how a 400 KB file claims a
//! terabyte of data, so it is refused. Compressed clusters share host clusters by design
//! (several are packed into one); each compressed mapping is counted as a whole cluster of
//! output. Because every L2 table read is a distinct cluster of the file, the walk reads at
//! most the file once, and its memory is one bit per host cluster, capped by
//! [`MAX_HOST_CLUSTERS`].

use std::io::{Read, Seek};

use super::{be_u64, Image};
use crate::image::{ImageError, ImageFormat};

/// One bit per host cluster of the file: 2^29 clusters, a 64 MiB bitmap (a 32 TiB file with
/// 64 KiB clusters, 256 GiB with 512-byte clusters).
pub(super) const MAX_HOST_CLUSTERS: u64 = 1 << 29;

const L1_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2_COMPRESSED: u64 = 1 << 62;
const L2_ZERO: u64 = 1;

/// What the walk needs from the header.
pub(super) struct MapGeometry {
    pub cluster_bits: u32,
    pub virtual_size: u64,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub extended_l2: bool,
    pub version: u32,
}

fn invalid(reason: String) -> ImageError {
    ImageError::InvalidHeader {
        format: ImageFormat::Qcow2,
        reason,
    }
}

/// Host clusters already claimed by an L2 table or a standard data cluster.
struct Claimed {
    bits: Vec<u64>,
    cluster_bits: u32,
}

impl Claimed {
    fn new(len: u64, cluster_bits: u32) -> Result<Self, ImageError> {
        let clusters = len.div_ceil(1u64 << cluster_bits);
        if clusters > MAX_HOST_CLUSTERS {
            return Err(invalid(format!(
                "{clusters} host clusters are more than the {MAX_HOST_CLUSTERS} whose mapping \
                 vmd checks"
            )));
        }
        Ok(Self {
            bits: vec![0; clusters.div_ceil(64) as usize],
            cluster_bits,
        })
    }

    /// Marks the host cluster at `offset` (inside the file); fails if it was already taken.
    fn claim(&mut self, offset: u64, what: &str) -> Result<(), ImageError> {
        let index = offset >> self.cluster_bits;
        let (word, bit) = ((index / 64) as usize, index % 64);
        let Some(w) = self.bits.get_mut(word) else {
            return Err(invalid(format!("{what} at {offset:#x} lies past the file")));
        };
        if *w & (1 << bit) != 0 {
            return Err(invalid(format!(
                "host cluster {offset:#x} is mapped more than once ({what}); shared clusters \
                 are refused"
            )));
        }
        *w |= 1 << bit;
        Ok(())
    }
}

/// Bytes of guest data the image maps: each allocated or compressed guest cluster counts as a
/// whole cluster, capped at the virtual size. Fails on a shared or misplaced cluster.
pub(super) fn mapped_bytes<R: Read + Seek>(
    img: &mut Image<'_, R>,
    g: &MapGeometry,
) -> Result<u64, ImageError> {
    let cluster = 1u64 << g.cluster_bits;
    let entry_len: u64 = if g.extended_l2 { 16 } else { 8 };
    let per_l2 = cluster / entry_len;
    let guest_clusters = g.virtual_size.div_ceil(cluster);
    let l1_needed = guest_clusters.div_ceil(per_l2).min(u64::from(g.l1_size));
    if l1_needed == 0 {
        return Ok(0);
    }
    let mut claimed = Claimed::new(img.len, g.cluster_bits)?;
    // Header checks bounded l1_size (32 MiB) and placed the table inside the file.
    let l1 = img.read_vec_at(
        g.l1_table_offset,
        (l1_needed * 8) as usize,
        "qcow2 L1 table",
    )?;
    // Compressed entries: host offset in the low `62 - (cluster_bits - 8)` bits.
    let compressed_mask = (1u64 << (62 - (g.cluster_bits - 8))) - 1;
    let mut mapped: u64 = 0;
    let mut table = vec![0u8; cluster as usize];
    for i in 0..l1_needed {
        let l2_offset = be_u64(&l1, (i * 8) as usize) & L1_OFFSET_MASK;
        if l2_offset == 0 {
            continue;
        }
        if !l2_offset.is_multiple_of(cluster) {
            return Err(invalid(format!(
                "L1 entry {i} names an L2 table at {l2_offset:#x}, not cluster aligned"
            )));
        }
        claimed.claim(l2_offset, &format!("L2 table of L1 entry {i}"))?;
        img.read_at(l2_offset, &mut table, "qcow2 L2 table")?;
        let first = i * per_l2;
        let count = per_l2.min(guest_clusters - first);
        for j in 0..count {
            let entry = be_u64(&table, (j * entry_len) as usize);
            let guest = first + j;
            if entry & L2_COMPRESSED != 0 {
                let host = entry & compressed_mask;
                if host >= img.len {
                    return Err(invalid(format!(
                        "compressed guest cluster {guest} lies at {host:#x}, past the file"
                    )));
                }
                mapped += 1;
                continue;
            }
            let host = entry & L2_OFFSET_MASK;
            if host == 0 {
                continue;
            }
            if !host.is_multiple_of(cluster) {
                return Err(invalid(format!(
                    "guest cluster {guest} maps {host:#x}, not cluster aligned"
                )));
            }
            claimed.claim(host, &format!("guest cluster {guest}"))?;
            // A preallocated zero cluster reads as zeros: nothing to write.
            if g.version < 3 || entry & L2_ZERO == 0 {
                mapped += 1;
            }
        }
    }
    Ok(mapped.saturating_mul(cluster).min(g.virtual_size))
}
