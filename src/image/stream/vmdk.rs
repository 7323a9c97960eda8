//! VMDK sparse extents ("KDMV", VMware Virtual Disk Format 5.0): the header, the embedded
//! descriptor and the grain directory/tables, shared by the two subformat decoders, and
//! [`decode_vmdk`], which picks one from the header.
//!
//! Only the structure needed to place guest data is interpreted. The descriptor is read for
//! its `createType` alone; whether its extent lines, parent hints or `ddb` keys are
//! acceptable is the header inspector's decision, made before decoding starts.

use std::io::Read;

use super::{vmdk_sparse, vmdk_stream, DecodeError, Input, StreamLimits};
use crate::image::sink::DiskSink;
use crate::image::VmdkSubformat;

pub(super) const SECTOR: u64 = 512;
const MAGIC: u32 = u32::from_le_bytes(*b"KDMV");
const FLAG_NL_DETECT: u32 = 1 << 0;
const FLAG_RGD: u32 = 1 << 1;
/// Grain table entry 1 means "reads as zeros" (QEMU's `zeroed_grain`).
const FLAG_ZERO_GRAIN: u32 = 1 << 2;
const FLAG_COMPRESSED: u32 = 1 << 16;
const FLAG_MARKERS: u32 = 1 << 17;
const KNOWN_FLAGS: u32 =
    FLAG_NL_DETECT | FLAG_RGD | FLAG_ZERO_GRAIN | FLAG_COMPRESSED | FLAG_MARKERS;
/// `gdOffset` of a stream whose grain directory comes at the end (located by the footer).
pub(super) const GD_AT_END: u64 = u64::MAX;
const COMPRESSION_DEFLATE: u16 = 1;
/// Grain table entries per grain table, fixed by the format in practice.
const GTES_PER_GT: u32 = 512;
/// QEMU reads at most 1 MiB of descriptor; so do we.
const MAX_DESCRIPTOR_SECTORS: u64 = 2048;
/// Grain sizes accepted: powers of two from 4 KiB (the format's minimum) to 1 MiB.
const GRAIN_SECTORS: std::ops::RangeInclusive<u64> = 8..=2048;

/// The sparse extent header (sector 0), also the layout of a streamOptimized footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain_size: u64,
    pub desc_offset: u64,
    pub desc_size: u64,
    pub num_gtes: u32,
    pub gd_offset: u64,
    pub overhead: u64,
    pub check_bytes: [u8; 4],
    pub compress: u16,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from(le_u32(b, at)) | (u64::from(le_u32(b, at + 4)) << 32)
}

impl Header {
    pub(super) fn parse(s: &[u8; 512]) -> Result<Self, DecodeError> {
        let magic = le_u32(s, 0);
        if magic != MAGIC {
            return Err(DecodeError::NotVmdk {
                found: u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
            });
        }
        Ok(Self {
            version: le_u32(s, 4),
            flags: le_u32(s, 8),
            capacity: le_u64(s, 12),
            grain_size: le_u64(s, 20),
            desc_offset: le_u64(s, 28),
            desc_size: le_u64(s, 36),
            num_gtes: le_u32(s, 44),
            gd_offset: le_u64(s, 56),
            overhead: le_u64(s, 64),
            check_bytes: [s[73], s[74], s[75], s[76]],
            compress: u16::from_le_bytes([s[77], s[78]]),
        })
    }

    /// Checks every field the decoders rely on and derives the disk geometry.
    fn validate(&self, limits: &StreamLimits) -> Result<(Geometry, VmdkSubformat), DecodeError> {
        let bad = |field, value, reason| DecodeError::Header {
            field,
            value,
            reason,
        };
        if !(1..=3).contains(&self.version) {
            return Err(bad(
                "version",
                self.version.into(),
                "only versions 1 to 3 exist",
            ));
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(bad("flags", self.flags.into(), "unknown flag bits are set"));
        }
        if self.flags & FLAG_NL_DETECT != 0 && self.check_bytes != *b"\n \r\n" {
            let value = u32::from_le_bytes(self.check_bytes).into();
            return Err(bad(
                "newline check bytes",
                value,
                "corrupted (text-mode transfer?)",
            ));
        }
        if self.capacity == 0 {
            // QEMU would then read the file as a descriptor naming other files.
            return Err(bad("capacity", 0, "a sparse extent cannot be empty"));
        }
        let capacity = self
            .capacity
            .checked_mul(SECTOR)
            .ok_or(DecodeError::Limit {
                what: "capacity in sectors",
                value: self.capacity,
                limit: limits.max_virtual_size / SECTOR,
            })?;
        if capacity > limits.max_virtual_size {
            return Err(DecodeError::Limit {
                what: "virtual size in bytes",
                value: capacity,
                limit: limits.max_virtual_size,
            });
        }
        if !self.grain_size.is_power_of_two() || !GRAIN_SECTORS.contains(&self.grain_size) {
            let reason = "must be a power of two from 8 to 2048 sectors";
            return Err(bad("grainSize", self.grain_size, reason));
        }
        if self.num_gtes != GTES_PER_GT {
            // Every writer uses 512; smaller tables would only multiply per-table overhead.
            let reason = "must be 512";
            return Err(bad("numGTEsPerGT", self.num_gtes.into(), reason));
        }
        let grains = self.capacity.div_ceil(self.grain_size);
        let grain_limit = limits.max_grains.min(u32::MAX.into());
        if grains > grain_limit {
            return Err(DecodeError::Limit {
                what: "number of grains",
                value: grains,
                limit: grain_limit,
            });
        }
        let compressed = self.flags & FLAG_COMPRESSED != 0 || self.compress != 0;
        let subformat = if compressed {
            if self.compress != COMPRESSION_DEFLATE {
                let reason = "only deflate (1) is defined";
                return Err(bad("compressAlgorithm", self.compress.into(), reason));
            }
            if self.flags & (FLAG_COMPRESSED | FLAG_MARKERS) != FLAG_COMPRESSED | FLAG_MARKERS {
                let reason = "compressed grains need both the compression and the marker flag";
                return Err(bad("flags", self.flags.into(), reason));
            }
            VmdkSubformat::StreamOptimized
        } else {
            if self.flags & FLAG_MARKERS != 0 {
                let reason = "markers without compressed grains";
                return Err(bad("flags", self.flags.into(), reason));
            }
            VmdkSubformat::MonolithicSparse
        };
        if self.desc_offset != 1 {
            // QEMU reads the descriptor at byte 512 whatever the header says.
            let reason = "the embedded descriptor must start at sector 1";
            return Err(bad("descriptorOffset", self.desc_offset, reason));
        }
        if !(1..=MAX_DESCRIPTOR_SECTORS).contains(&self.desc_size) {
            let reason = "must be from 1 to 2048 sectors";
            return Err(bad("descriptorSize", self.desc_size, reason));
        }
        // Both fit in u32: grains <= u32::MAX and num_gtes >= 1.
        let grains = grains as u32;
        let geometry = Geometry {
            capacity,
            grain_sectors: self.grain_size,
            grain_bytes: self.grain_size * SECTOR,
            grains,
            gtes_per_gt: self.num_gtes,
            gt_count: grains.div_ceil(self.num_gtes),
            zero_grain: self.flags & FLAG_ZERO_GRAIN != 0,
        };
        Ok((geometry, subformat))
    }
}

/// Disk geometry derived from a validated header.
#[derive(Debug)]
pub(super) struct Geometry {
    /// Virtual size in bytes.
    pub capacity: u64,
    pub grain_sectors: u64,
    pub grain_bytes: u64,
    /// Number of grains covering the capacity (the last may be partial).
    pub grains: u32,
    pub gtes_per_gt: u32,
    /// Number of grain tables (grain directory entries).
    pub gt_count: u32,
    /// Grain table entry 1 means a zero grain.
    pub zero_grain: bool,
}

impl Geometry {
    /// Bytes of grain `grain` that lie within the capacity.
    pub(super) fn grain_len(&self, grain: u32) -> u64 {
        let start = u64::from(grain) * self.grain_bytes;
        self.grain_bytes.min(self.capacity.saturating_sub(start))
    }

    /// A grain table entry as a sector, with "zero grain" read as "unallocated": both read
    /// as zeros, and the decoders write nothing for either.
    pub(super) fn entry_sector(&self, entry: u32) -> u32 {
        if self.zero_grain && entry == 1 {
            0
        } else {
            entry
        }
    }
}

/// A value per grain (a sector number; 0 = none), stored per grain table so that memory
/// follows the spans actually used.
pub(super) struct GrainMap {
    per_table: u32,
    tables: Vec<Option<Box<[u32]>>>,
}

impl GrainMap {
    pub(super) fn new(geo: &Geometry) -> Self {
        let mut tables = Vec::new();
        tables.resize_with(geo.gt_count as usize, || None);
        Self {
            per_table: geo.gtes_per_gt,
            tables,
        }
    }

    fn split(&self, grain: u32) -> (usize, usize) {
        (
            (grain / self.per_table) as usize,
            (grain % self.per_table) as usize,
        )
    }

    /// The value for `grain`, which must be below the geometry's grain count.
    pub(super) fn get(&self, grain: u32) -> u32 {
        let (t, i) = self.split(grain);
        self.tables[t].as_ref().map_or(0, |table| table[i])
    }

    pub(super) fn set(&mut self, grain: u32, value: u32) {
        let (t, i) = self.split(grain);
        let per_table = self.per_table as usize;
        self.tables[t].get_or_insert_with(|| vec![0; per_table].into_boxed_slice())[i] = value;
    }

    pub(super) fn table(&self, index: usize) -> Option<&[u32]> {
        self.tables.get(index).and_then(|t| t.as_deref())
    }

    /// `(grain, value)` for every non-zero value.
    pub(super) fn allocated(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let per_table = self.per_table;
        self.tables.iter().enumerate().flat_map(move |(t, table)| {
            table.iter().flat_map(move |table| {
                table
                    .iter()
                    .enumerate()
                    .filter(|(_, &v)| v != 0)
                    .map(move |(i, &v)| {
                        // t < gt_count and i < per_table, so this is a grain index below 2^32.
                        (t as u32 * per_table + i as u32, v)
                    })
            })
        })
    }
}

/// Reads the grain directory at sector `gd_sector` and the grain tables it names, which must
/// come in front of everything still unread. Returns each grain's sector (0 = none).
pub(super) fn read_tables<R: Read>(
    input: &mut Input<'_, R>,
    geo: &Geometry,
    gd_sector: u64,
) -> Result<GrainMap, DecodeError> {
    let gd_offset = gd_sector.checked_mul(SECTOR).ok_or(DecodeError::Header {
        field: "gdOffset",
        value: gd_sector,
        reason: "lies beyond any file",
    })?;
    input.seek_forward(gd_offset, || "the grain directory".to_owned())?;
    let gd = input.read_u32s(geo.gt_count as usize, "the grain directory")?;
    let mut order: Vec<(u32, usize)> = gd
        .iter()
        .enumerate()
        .filter(|(_, &sector)| sector != 0)
        .map(|(index, &sector)| (sector, index))
        .collect();
    order.sort_unstable();
    let mut map = GrainMap::new(geo);
    let per_table = geo.gtes_per_gt as usize;
    for (sector, index) in order {
        let offset = u64::from(sector) * SECTOR;
        input.seek_forward(offset, || format!("grain table {index}"))?;
        let table = input.read_u32s(per_table, "a grain table")?;
        for (i, &entry) in table.iter().enumerate() {
            let sector = geo.entry_sector(entry);
            if sector == 0 {
                continue;
            }
            let grain = u64::from(geo.gtes_per_gt) * index as u64 + i as u64;
            match u32::try_from(grain) {
                Ok(grain) if grain < geo.grains => map.set(grain, sector),
                _ => {
                    return Err(DecodeError::Metadata {
                        reason: format!(
                            "grain table {index} names sector {sector} for grain {grain}, \
                             beyond the capacity"
                        ),
                    })
                }
            }
        }
    }
    Ok(map)
}

/// `b` without leading and trailing ASCII whitespace.
fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}

/// Reads the embedded descriptor (header validation put it at sector 1, at most 1 MiB) and
/// checks that its `createType` names the subformat the header flags describe.
fn check_descriptor<R: Read>(
    input: &mut Input<'_, R>,
    header: &Header,
    subformat: VmdkSubformat,
) -> Result<(), DecodeError> {
    input.seek_forward(header.desc_offset * SECTOR, || "the descriptor".to_owned())?;
    let mut text = vec![0u8; (header.desc_size * SECTOR) as usize];
    input.read_exact(&mut text, "the embedded descriptor")?;
    let text = text.split(|&b| b == 0).next().unwrap_or_default();
    let create_type = text
        .split(|&b| b == b'\n')
        .filter_map(|line| trim(line).strip_prefix(b"createType"))
        .filter_map(|rest| trim(rest).strip_prefix(b"="))
        .map(|value| {
            let value = trim(value);
            value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value)
        })
        .next();
    match create_type {
        None => Err(DecodeError::Descriptor {
            reason: "no createType line".to_owned(),
        }),
        Some(value) if value == subformat.as_str().as_bytes() => Ok(()),
        Some(value) => {
            let shown: String = String::from_utf8_lossy(value).chars().take(64).collect();
            Err(DecodeError::Descriptor {
                reason: format!(
                    "createType {shown:?} contradicts the header, which describes {}",
                    subformat.as_str()
                ),
            })
        }
    }
}

/// Decodes a VMDK sparse extent (streamOptimized or monolithicSparse) from `r` into `sink`,
/// reading `r` to its end. Returns the virtual size in bytes, which the caller must compare
/// with the size the sink was created for (and the OVF capacity). `progress` receives input
/// bytes consumed so far. The sink is not finished.
///
/// Memory: a 1 MiB input buffer, one grain of output, and grain maps of at most 12 bytes per
/// grain (see [`StreamLimits::max_grains`]).
pub fn decode_vmdk<R: Read>(
    r: R,
    sink: &mut dyn DiskSink,
    limits: &StreamLimits,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, DecodeError> {
    let mut input = Input::new(r, progress);
    let mut sector = [0u8; SECTOR as usize];
    input.read_exact(&mut sector, "the vmdk header")?;
    let header = Header::parse(&sector)?;
    let (geo, subformat) = header.validate(limits)?;
    check_descriptor(&mut input, &header, subformat)?;
    match subformat {
        VmdkSubformat::StreamOptimized => vmdk_stream::decode(&mut input, &header, &geo, sink)?,
        VmdkSubformat::MonolithicSparse => vmdk_sparse::decode(&mut input, &header, &geo, sink)?,
    }
    input.report_done();
    Ok(geo.capacity)
}
