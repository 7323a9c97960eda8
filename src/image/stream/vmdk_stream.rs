//! streamOptimized VMDK: a sequence of markers from `overHead` on. A grain marker (lba u64,
//! size u32, zlib data) carries one compressed grain; a metadata marker (sectors u64, 0 u32,
//! type u32, padding to 512 bytes) precedes a grain table, the grain directory or the
//! footer, or ends the stream. Every structure starts on a sector boundary.
//!
//! Grains are placed by their marker's lba, but QEMU reads such a file through its grain
//! directory and tables and ignores the lba, so the decoder proves the two agree: a disk must
//! mean the same to every reader. Two layouts exist:
//! - the header names the grain directory (qemu-img's layout): tables come before the
//!   grains, so each grain marker is checked as it arrives, and when the stream ends (an
//!   end-of-stream marker, or simply the end of input: qemu-img writes none) every grain the
//!   tables name must have been seen;
//! - `gdOffset` is `GD_AT_END` (VMware's layout): grain table markers follow their grains,
//!   then come the grain directory, the footer (the header again, with the real `gdOffset`)
//!   and the end-of-stream marker, which is required because nothing else tells a complete
//!   stream from a truncated one. The tables are checked against the grains at the end.
//!
//! After the end-of-stream marker only zero bytes may follow (qemu-img leaves zero padding
//! there); anything else is rejected because some reader might take it for data.

use std::collections::HashMap;
use std::io::Read;

use flate2::{Decompress, FlushDecompress, Status};

use super::vmdk::{read_tables, Geometry, GrainMap, Header, GD_AT_END, SECTOR};
use super::{DecodeError, Input};
use crate::image::sink::DiskSink;

const MARKER_EOS: u32 = 0;
const MARKER_GT: u32 = 1;
const MARKER_GD: u32 = 2;
const MARKER_FOOTER: u32 = 3;

enum Marker {
    /// The input ended exactly where a marker would start.
    EndOfInput,
    Grain {
        lba: u64,
        size: u32,
    },
    Metadata {
        sectors: u64,
        kind: u32,
    },
}

fn next_marker<R: Read>(input: &mut Input<'_, R>) -> Result<Marker, DecodeError> {
    if input.fill()?.is_empty() {
        return Ok(Marker::EndOfInput);
    }
    let mut head = [0u8; 12];
    input.read_exact(&mut head, "a marker")?;
    let value = u64::from_le_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]);
    let size = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if size != 0 {
        return Ok(Marker::Grain { lba: value, size });
    }
    let mut rest = [0u8; SECTOR as usize - 12];
    input.read_exact(&mut rest, "a metadata marker")?;
    let kind = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    Ok(Marker::Metadata {
        sectors: value,
        kind,
    })
}

fn metadata(reason: String) -> DecodeError {
    DecodeError::Metadata { reason }
}

pub(super) fn decode<R: Read>(
    input: &mut Input<'_, R>,
    header: &Header,
    geo: &Geometry,
    sink: &mut dyn DiskSink,
) -> Result<(), DecodeError> {
    let tables = match header.gd_offset {
        GD_AT_END => None,
        gd => Some(read_tables(input, geo, gd)?),
    };
    let first_grain = header
        .overhead
        .checked_mul(SECTOR)
        .ok_or(DecodeError::Header {
            field: "overHead",
            value: header.overhead,
            reason: "lies beyond any file",
        })?;
    input.seek_forward(first_grain, || "the first grain (overHead)".to_owned())?;
    let mut grains = Grains::new(geo, sink);
    match tables {
        Some(tables) => grains.with_tables(input, &tables),
        None => grains.with_footer(input, header),
    }
}

/// Grain marker handling: range checks and inflation into the sink.
struct Grains<'a> {
    geo: &'a Geometry,
    sink: &'a mut dyn DiskSink,
    inflater: Decompress,
    /// One grain of output (grains are at most 1 MiB).
    out: Vec<u8>,
}

impl<'a> Grains<'a> {
    fn new(geo: &'a Geometry, sink: &'a mut dyn DiskSink) -> Self {
        Self {
            geo,
            sink,
            inflater: Decompress::new(true),
            out: vec![0u8; geo.grain_bytes as usize],
        }
    }

    /// Stream whose grain tables were read up front: each grain must be where they say.
    fn with_tables<R: Read>(
        &mut self,
        input: &mut Input<'_, R>,
        tables: &GrainMap,
    ) -> Result<(), DecodeError> {
        let expected = tables.allocated().count() as u64;
        let mut found = 0u64;
        loop {
            let at = input.position();
            match next_marker(input)? {
                Marker::EndOfInput => break,
                Marker::Grain { lba, size } => {
                    let grain = self.check(at, lba, size)?;
                    let named = tables.get(grain);
                    if u64::from(named) * SECTOR != at {
                        return Err(metadata(format!(
                            "grain marker for lba {lba} at byte {at} is not the one the grain \
                             table names (sector {named}, 0 = none)"
                        )));
                    }
                    self.inflate(input, at, lba, size, grain)?;
                    found += 1;
                }
                Marker::Metadata {
                    sectors: 0,
                    kind: MARKER_EOS,
                } => {
                    input.expect_zeros_to_end()?;
                    break;
                }
                Marker::Metadata { kind, .. } => {
                    return Err(metadata(format!(
                        "unexpected metadata marker (type {kind}) at byte {at}: the header \
                         already locates the grain directory"
                    )))
                }
            }
        }
        if found == expected {
            Ok(())
        } else {
            Err(DecodeError::MissingGrains { found, expected })
        }
    }

    /// Stream with grain table, grain directory and footer markers at the end.
    fn with_footer<R: Read>(
        &mut self,
        input: &mut Input<'_, R>,
        header: &Header,
    ) -> Result<(), DecodeError> {
        let geo = self.geo;
        let mut seen = GrainMap::new(geo);
        let mut grain_tables: HashMap<u64, Box<[u32]>> = HashMap::new();
        let mut directory: Option<(u64, Box<[u32]>)> = None;
        let mut footer_seen = false;
        loop {
            let at = input.position();
            let marker = next_marker(input)?;
            let order_error = |what: &str| metadata(format!("{what} at byte {at} is out of order"));
            match marker {
                Marker::EndOfInput => {
                    return Err(DecodeError::Truncated {
                        offset: at,
                        what: "the marker stream (no end-of-stream marker)",
                    })
                }
                Marker::Metadata {
                    sectors,
                    kind: MARKER_EOS,
                } => {
                    if sectors != 0 || !footer_seen {
                        return Err(order_error("end-of-stream marker before the footer"));
                    }
                    input.expect_zeros_to_end()?;
                    break;
                }
                _ if footer_seen => return Err(order_error("marker after the footer")),
                Marker::Grain { lba, size } => {
                    if directory.is_some() {
                        return Err(order_error("grain after the grain directory"));
                    }
                    let grain = self.check(at, lba, size)?;
                    let sector = u32::try_from(at / SECTOR).map_err(|_| DecodeError::Grain {
                        offset: at,
                        lba,
                        reason: "lies beyond what a grain table can address".to_owned(),
                    })?;
                    let earlier = seen.get(grain);
                    if earlier != 0 {
                        return Err(DecodeError::Grain {
                            offset: at,
                            lba,
                            reason: format!("repeats the grain at sector {earlier}"),
                        });
                    }
                    seen.set(grain, sector);
                    self.inflate(input, at, lba, size, grain)?;
                }
                Marker::Metadata {
                    sectors,
                    kind: MARKER_GT,
                } => {
                    if directory.is_some() {
                        return Err(order_error("grain table after the grain directory"));
                    }
                    if grain_tables.len() >= geo.gt_count as usize {
                        return Err(metadata(format!(
                            "grain table marker at byte {at} is one more than the {} the \
                             capacity needs",
                            geo.gt_count
                        )));
                    }
                    let entries = geo.gtes_per_gt as usize;
                    let table = read_metadata(input, sectors, entries, "a grain table")?;
                    grain_tables.insert(at / SECTOR + 1, table);
                }
                Marker::Metadata {
                    sectors,
                    kind: MARKER_GD,
                } => {
                    if directory.is_some() {
                        return Err(order_error("second grain directory"));
                    }
                    let entries = geo.gt_count as usize;
                    let gd = read_metadata(input, sectors, entries, "the grain directory")?;
                    directory = Some((at / SECTOR + 1, gd));
                }
                Marker::Metadata {
                    sectors,
                    kind: MARKER_FOOTER,
                } => {
                    let Some((gd_sector, _)) = &directory else {
                        return Err(order_error("footer before the grain directory"));
                    };
                    if sectors != 1 {
                        return Err(metadata(format!(
                            "footer marker at byte {at} covers {sectors} sectors instead of 1"
                        )));
                    }
                    check_footer(input, header, *gd_sector)?;
                    footer_seen = true;
                }
                Marker::Metadata { kind, .. } => {
                    return Err(metadata(format!("unknown marker type {kind} at byte {at}")))
                }
            }
        }
        // The footer requires a directory, and the end-of-stream marker requires the footer.
        let Some((_, directory)) = directory else {
            return Err(metadata("no grain directory".to_owned()));
        };
        check_tables(geo, &seen, &grain_tables, &directory)
    }

    /// Range checks on a grain marker; returns its grain index.
    fn check(&self, at: u64, lba: u64, size: u32) -> Result<u32, DecodeError> {
        let geo = self.geo;
        let bad = |reason: String| DecodeError::Grain {
            offset: at,
            lba,
            reason,
        };
        // QEMU reads at most two grains per compressed grain.
        if u64::from(size) > 2 * geo.grain_bytes {
            return Err(bad(format!(
                "compressed size {size} exceeds twice the grain size of {} bytes",
                geo.grain_bytes
            )));
        }
        if !lba.is_multiple_of(geo.grain_sectors) {
            return Err(bad(format!(
                "not a multiple of the grain size of {} sectors",
                geo.grain_sectors
            )));
        }
        let grain = lba / geo.grain_sectors;
        match u32::try_from(grain) {
            Ok(grain) if grain < geo.grains => Ok(grain),
            _ => Err(bad(format!(
                "beyond the capacity of {} sectors",
                geo.capacity / SECTOR
            ))),
        }
    }

    /// Inflates the `size` bytes of zlib data that follow a grain marker into the sink, then
    /// skips the padding to the next sector. The data must inflate to exactly the part of the
    /// grain inside the capacity (or, for a last partial grain, to a whole grain); never more
    /// than one grain is produced, whatever the input.
    fn inflate<R: Read>(
        &mut self,
        input: &mut Input<'_, R>,
        at: u64,
        lba: u64,
        size: u32,
        grain: u32,
    ) -> Result<(), DecodeError> {
        let bad = |reason: String| DecodeError::Grain {
            offset: at,
            lba,
            reason,
        };
        let guest = u64::from(grain) * self.geo.grain_bytes;
        let want = self.geo.grain_len(grain);
        let max = self.geo.grain_bytes as usize;
        self.inflater.reset(true);
        let mut left = u64::from(size);
        let mut produced = 0usize;
        let mut probe = [0u8; 1];
        loop {
            let avail = input.fill()?;
            let take = usize::try_from(left).map_or(avail.len(), |l| l.min(avail.len()));
            if take == 0 {
                return Err(if left == 0 {
                    bad("compressed data ends before its zlib stream does".to_owned())
                } else {
                    input.truncated("compressed grain data")
                });
            }
            let (in_before, out_before) = (self.inflater.total_in(), self.inflater.total_out());
            // Once a whole grain is out, a one-byte probe tells whether the stream wants more.
            let out = if produced < max {
                &mut self.out[produced..]
            } else {
                &mut probe[..]
            };
            let status = self
                .inflater
                .decompress(&avail[..take], out, FlushDecompress::None)
                .map_err(|source| DecodeError::Inflate {
                    offset: at,
                    lba,
                    source,
                })?;
            let used = (self.inflater.total_in() - in_before) as usize;
            let made = (self.inflater.total_out() - out_before) as usize;
            input.consume(used);
            left -= used as u64;
            if produced == max && made > 0 {
                return Err(bad(format!(
                    "inflates to more than the grain size of {max} bytes"
                )));
            }
            produced += made;
            if status == Status::StreamEnd {
                break;
            }
            if used == 0 && made == 0 {
                return Err(bad("compressed data makes no progress".to_owned()));
            }
        }
        let whole_last = produced == max && (produced as u64) > want;
        if produced as u64 != want && !whole_last {
            return Err(bad(format!(
                "inflates to {produced} bytes instead of {want}"
            )));
        }
        let keep = &self.out[..want as usize];
        self.sink
            .write_at(guest, keep)
            .map_err(|source| DecodeError::Write {
                offset: guest,
                len: keep.len(),
                source,
            })?;
        // Bytes after the end of the zlib stream but within `size` are ignored, as zlib's
        // uncompress() in QEMU does; then comes padding to the sector boundary.
        let used = 12 + u64::from(size);
        input.skip(left, "compressed grain data")?;
        input.skip(used.next_multiple_of(SECTOR) - used, "grain padding")
    }
}

/// Reads the body of a grain table or grain directory marker: `entries` u32 values in
/// `sectors` sectors (the rest is padding).
fn read_metadata<R: Read>(
    input: &mut Input<'_, R>,
    sectors: u64,
    entries: usize,
    what: &'static str,
) -> Result<Box<[u32]>, DecodeError> {
    let need = entries as u64 * 4;
    let have = sectors.saturating_mul(SECTOR);
    if have < need {
        return Err(metadata(format!(
            "{what} marker covers {sectors} sectors, too few for {entries} entries"
        )));
    }
    let values = input.read_u32s(entries, what)?;
    input.skip(have - need, what)?;
    Ok(values)
}

/// The footer (the header again, with the real `gdOffset`) is what QEMU reads in place of the
/// header, so it must describe the same disk, and name the directory the stream carried.
fn check_footer<R: Read>(
    input: &mut Input<'_, R>,
    header: &Header,
    gd_sector: u64,
) -> Result<(), DecodeError> {
    let mut sector = [0u8; SECTOR as usize];
    input.read_exact(&mut sector, "the footer")?;
    let footer = Header::parse(&sector)?;
    let fields: [(&'static str, u64, u64); 6] = [
        ("version", header.version.into(), footer.version.into()),
        ("flags", header.flags.into(), footer.flags.into()),
        ("capacity", header.capacity, footer.capacity),
        ("grainSize", header.grain_size, footer.grain_size),
        (
            "numGTEsPerGT",
            header.num_gtes.into(),
            footer.num_gtes.into(),
        ),
        (
            "compressAlgorithm",
            header.compress.into(),
            footer.compress.into(),
        ),
    ];
    if let Some(&(field, _, value)) = fields.iter().find(|(_, h, f)| h != f) {
        return Err(DecodeError::Header {
            field,
            value,
            reason: "the footer disagrees with the header",
        });
    }
    if footer.gd_offset != gd_sector {
        return Err(metadata(format!(
            "footer locates the grain directory at sector {}, the stream has it at sector \
             {gd_sector}",
            footer.gd_offset
        )));
    }
    Ok(())
}

/// Checks that the grain directory and tables map each grain to the marker seen for it, and
/// name no grain the stream lacks.
fn check_tables(
    geo: &Geometry,
    seen: &GrainMap,
    grain_tables: &HashMap<u64, Box<[u32]>>,
    directory: &[u32],
) -> Result<(), DecodeError> {
    let per_table = geo.gtes_per_gt as usize;
    for (index, &gt_sector) in directory.iter().enumerate() {
        let table = match gt_sector {
            0 => None,
            s => Some(grain_tables.get(&u64::from(s)).ok_or_else(|| {
                metadata(format!(
                    "grain directory entry {index} names sector {s}, where the stream has no \
                     grain table"
                ))
            })?),
        };
        let stream = seen.table(index);
        for i in 0..per_table {
            let named = table.map_or(0, |t| geo.entry_sector(t[i]));
            let actual = stream.map_or(0, |t| t[i]);
            if named != actual {
                let grain = index as u64 * per_table as u64 + i as u64;
                return Err(metadata(format!(
                    "grain tables put grain {grain} at sector {named}, the stream has it at \
                     sector {actual} (0 = none)"
                )));
            }
        }
    }
    Ok(())
}
