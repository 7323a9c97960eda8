//! monolithicSparse VMDK: uncompressed grains placed by the grain directory and tables.
//!
//! Read front to back, this works because writers (qemu-img, VMware) put the header,
//! descriptor, redundant and primary grain directory and all grain tables in front of the
//! grains. The tables are read first, the grains are then visited in file order. A file laid
//! out otherwise cannot be streamed and is rejected rather than buffered.

use std::io::Read;

use super::vmdk::{read_tables, Geometry, Header, GD_AT_END, SECTOR};
use super::{DecodeError, Input};
use crate::image::sink::DiskSink;

pub(super) fn decode<R: Read>(
    input: &mut Input<'_, R>,
    header: &Header,
    geo: &Geometry,
    sink: &mut dyn DiskSink,
) -> Result<(), DecodeError> {
    if header.gd_offset == GD_AT_END {
        return Err(DecodeError::Header {
            field: "gdOffset",
            value: header.gd_offset,
            reason: "a grain directory at the end needs a streamOptimized footer",
        });
    }
    let map = read_tables(input, geo, header.gd_offset)?;
    // Bounded by the grain count limit: 8 bytes per allocated grain.
    let mut grains: Vec<(u32, u32)> = map.allocated().map(|(g, s)| (s, g)).collect();
    grains.sort_unstable();
    drop(map);

    // Grains must not overlap: each occupies a whole grain in the file, even the last one.
    let mut previous_end = 0u64;
    for (sector, grain) in grains {
        let offset = u64::from(sector) * SECTOR;
        if offset < previous_end {
            return Err(DecodeError::NotStreamable {
                what: format!("grain {grain}, overlapping the previous grain,"),
                offset,
                position: previous_end,
            });
        }
        input.seek_forward(offset, || format!("grain {grain}"))?;
        let guest = u64::from(grain) * geo.grain_bytes;
        input.copy_to(sink, guest, geo.grain_len(grain), "a grain")?;
        previous_end = offset + geo.grain_bytes;
    }
    // Whatever follows (unreferenced space) is no part of the disk for any reader, but it
    // is part of the file and so of the digest the caller computes.
    input.skip_to_end()
}
