//! Bounds on what an import writes (SECURITY.md items 13 and 42): the most guest data each
//! disk can put into its volume, worked out from what the image really holds (the clusters a
//! qcow2 maps, the grains a VMDK can carry, the bytes a raw file has), never from the
//! descriptor's `ovf:populatedSize`. The preflight sums these bounds; the writers stop at
//! them: [`CappedSink`] for vmd's own decoders, `RLIMIT_FSIZE` for `qemu-img convert`.

use std::io;

use crate::image::inspect::ImageInfo;
use crate::image::sink::DiskSink;
use crate::image::{ImageFormat, VmdkSubformat};
use crate::ovf::transfer::Stored;
use crate::vmd::DiskFormat;

/// A streamOptimized grain marker and its data start on a sector boundary, so each grain
/// takes at least one sector of the stored file.
const MIN_STORED_GRAIN: u64 = 512;

/// The most guest bytes a disk can write into its volume. `info` is the inspector's verdict
/// on the stored file when it could be read in place (not gzip-compressed, not chunked);
/// without it only the capacity bounds a compressed stream.
pub(super) fn data_bound(
    info: Option<&ImageInfo>,
    stored: &Stored,
    format: ImageFormat,
    capacity: u64,
) -> u64 {
    let total = stored.total();
    let bound = match (format, info) {
        _ if stored.gzip => capacity,
        // Raw bytes are the disk; a sparse VMDK's grains each fill a grain of the file
        // (the decoder refuses overlapping grains).
        (ImageFormat::Raw, _) => total,
        (ImageFormat::Vmdk, Some(i))
            if i.vmdk_subformat == Some(VmdkSubformat::MonolithicSparse) =>
        {
            total
        }
        (ImageFormat::Vmdk, Some(i)) => match i.vmdk {
            Some(v) => (total / MIN_STORED_GRAIN).saturating_mul(v.grain_sectors * 512),
            None => capacity,
        },
        (ImageFormat::Qcow2, Some(i)) => i.qcow2.map_or(capacity, |q| q.mapped_bytes),
        (_, None) => capacity,
    };
    bound.min(capacity)
}

/// The most bytes a raw or VMDK disk of `capacity` can take in a package, compressed or not:
/// the capacity, an eighth more (VMDK grain tables and markers, a gzip stream's overhead on
/// incompressible data) and 64 MiB. A stored file above it is refused before it is read, so
/// that no padding (after a VMDK's end-of-stream marker, behind its last grain, after a gzip
/// stream) is scanned without a limit (SECURITY.md item 44). A qcow2 may hold internal
/// snapshots beyond its capacity: it is bounded by the pool instead, where it is staged.
pub(super) fn max_stored(capacity: u64) -> u64 {
    capacity
        .saturating_add(capacity / 8)
        .saturating_add(64 << 20)
}

/// Fails, naming the file, when `stored` is larger than [`max_stored`] allows.
pub(super) fn check_stored(
    stored: &Stored,
    format: ImageFormat,
    capacity: u64,
) -> Result<(), String> {
    let max = max_stored(capacity);
    if format != ImageFormat::Qcow2 && stored.total() > max {
        return Err(format!(
            "{} is {} bytes stored, more than the {max} bytes a disk of {capacity} bytes can \
             take",
            stored.href,
            stored.total()
        ));
    }
    Ok(())
}

/// The most bytes a volume of `capacity` holding at most `data` guest bytes takes in the
/// pool: raw is its capacity; qcow2 is the data plus its tables, a 2 MiB floor (header, L1
/// and refcount table) and 1/4096 of the capacity (L2 tables are 1/8192 with 64 KiB
/// clusters, refcount blocks 1/32768 of the file).
pub(super) fn volume_bound(target: DiskFormat, data: u64, capacity: u64) -> u64 {
    match target {
        DiskFormat::Raw => capacity,
        DiskFormat::Qcow2 => data.saturating_add(capacity / 4096).saturating_add(2 << 20),
    }
}

/// A sink that refuses, with `FileTooLarge`, a write that would take the bytes written past
/// `cap`: a stream claiming more data than its disk's bound ends there.
pub(super) struct CappedSink<'a> {
    pub inner: &'a mut dyn DiskSink,
    pub cap: u64,
    pub written: u64,
}

impl DiskSink for CappedSink<'_> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let written = self.written.saturating_add(data.len() as u64);
        if written > self.cap {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "the stream carries more than the {} bytes of data its image can hold",
                    self.cap
                ),
            ));
        }
        self.written = written;
        self.inner.write_at(offset, data)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(total: u64, gzip: bool) -> Stored {
        Stored {
            href: "d".into(),
            parts: vec![("d".into(), total)],
            gzip,
        }
    }

    struct Nothing;

    impl DiskSink for Nothing {
        fn write_at(&mut self, _: u64, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    // SECURITY.md item 42: a raw file bounds its data by its bytes, gzip by the capacity.
    #[test]
    fn data_bound_raw_is_its_bytes_and_gzip_its_capacity() {
        let cap = 1 << 30;
        assert_eq!(
            data_bound(None, &stored(4096, false), ImageFormat::Raw, cap),
            4096
        );
        assert_eq!(
            data_bound(None, &stored(4096, true), ImageFormat::Raw, cap),
            cap
        );
        assert_eq!(
            data_bound(None, &stored(4096, false), ImageFormat::Qcow2, cap),
            cap
        );
    }

    // SECURITY.md item 44: a stored VMDK far above its capacity is refused unread.
    #[test]
    fn check_stored_refuses_a_vmdk_far_above_its_capacity() {
        let cap = 64 << 20;
        assert!(check_stored(&stored(max_stored(cap), false), ImageFormat::Vmdk, cap).is_ok());
        let err = check_stored(&stored(1 << 30, true), ImageFormat::Vmdk, cap).unwrap_err();
        assert_eq!(
            err,
            "d is 1073741824 bytes stored, more than the 142606336 bytes a disk of 67108864 \
             bytes can take"
        );
        assert!(check_stored(&stored(1 << 30, false), ImageFormat::Qcow2, cap).is_ok());
    }

    #[test]
    fn volume_bound_raw_is_the_capacity_and_qcow2_the_data_and_tables() {
        assert_eq!(volume_bound(DiskFormat::Raw, 0, 1 << 30), 1 << 30);
        assert_eq!(
            volume_bound(DiskFormat::Qcow2, 1 << 20, 1 << 30),
            (1 << 20) + (1 << 18) + (2 << 20)
        );
    }

    // SECURITY.md item 42: the write past the cap fails and reaches nothing.
    #[test]
    fn capped_sink_refuses_the_write_past_its_cap() {
        let mut inner = Nothing;
        let mut sink = CappedSink {
            inner: &mut inner,
            cap: 10,
            written: 0,
        };
        sink.write_at(0, &[1; 10]).unwrap();
        let err = sink.write_at(10, &[1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(sink.written, 10);
    }
}
