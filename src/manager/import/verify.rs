//! `verify`: every disk stream read in full through its decoder, every digest checked,
//! nothing written.

use std::io;
use std::sync::Arc;

use super::plan::Context;
use super::write::{decode_into, metered};
use super::ImportRequest;
use crate::image::sink::DiskSink;
use crate::image::ImageFormat;
use crate::manager::{Error, Progress};
use crate::ovf::transfer::Meter;

/// Reads every disk stream in full through its decoder, writing nothing: `verify`.
pub(super) fn verify_streams(
    ctx: &Context,
    req: &ImportRequest,
    progress: &dyn Progress,
) -> Result<usize, Error> {
    let mut count = 0;
    for (planned, source) in ctx.plan.disks.iter().zip(&ctx.sources) {
        let Some((stored, format)) = source else {
            continue;
        };
        let meter = Arc::new(Meter {
            cancel: Arc::clone(&req.cancel),
            ..Meter::default()
        });
        let format = if *format == ImageFormat::Qcow2 {
            ImageFormat::Raw
        } else {
            *format
        };
        let capacity = planned.capacity_bytes.max(stored.total());
        metered(
            &planned.id,
            &planned.id,
            stored.total(),
            &meter,
            progress,
            || {
                let mut sink = NullSink { size: capacity };
                decode_into(ctx, stored, format, capacity, Arc::clone(&meter), &mut sink)
            },
        )?;
        count += 1;
    }
    Ok(count)
}

/// A sink that checks bounds and keeps nothing.
struct NullSink {
    size: u64,
}

impl DiskSink for NullSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "write beyond the disk",
            ));
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}
