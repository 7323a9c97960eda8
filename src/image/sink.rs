//! Disk sinks: where decoded guest data lands. A [`DiskSink`] takes writes at guest (virtual
//! disk) byte offsets, in any order, and makes the finished volume durable in
//! [`DiskSink::finish`]. [`RawSink`] writes a sparse raw file, [`Qcow2Sink`] a fresh qcow2 v3
//! image.
//!
//! A sink owns only the output file it was handed: it never opens a path, never runs
//! `qemu-img` and never interprets guest data beyond "is this block all zeros". It does not
//! know where the data came from; validating the source is the decoder's job
//! ([`super::stream`]). Bounds are still checked here, so a decoder bug cannot write outside
//! the virtual disk.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

mod qcow2;

pub use qcow2::Qcow2Sink;

/// Granularity at which [`RawSink`] leaves all-zero data unwritten (holes in the file).
const ZERO_BLOCK: u64 = 4096;

/// Destination of a decoded disk image.
///
/// Contract between decoder and sink: guest ranges that are never written read as zeros in
/// the finished volume, so a writer may skip all-zero data, and a sink may drop it too. Each
/// guest byte is written at most once; writes may come in any order and at any alignment.
/// Nothing is durable, and for qcow2 nothing is even a valid image, until
/// [`finish`](DiskSink::finish) returns.
pub trait DiskSink {
    /// Writes `data` at guest byte `offset`; fails if the range ends beyond the virtual size.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Completes the volume (length, metadata) and fsyncs it, so that a catalog commit made
    /// after this returns never refers to data still in the page cache.
    fn finish(&mut self) -> io::Result<()>;
}

/// Raw output: guest offset = file offset. All-zero 4 KiB blocks are not written, so the
/// file stays sparse.
#[derive(Debug)]
pub struct RawSink {
    file: File,
    virtual_size: u64,
    /// Whether `finish` syncs: not for a scratch file, which nothing relies on after a crash.
    sync: bool,
}

impl RawSink {
    /// Wraps `file`, opened for writing by the caller, as the volume of a disk of
    /// `virtual_size` bytes. The file must read as zeros (new and empty, or sparse): zero
    /// blocks are skipped, not written. [`finish`](DiskSink::finish) sets its length to
    /// `virtual_size`, so it may start empty.
    pub fn new(file: File, virtual_size: u64) -> Self {
        Self {
            file,
            virtual_size,
            sync: true,
        }
    }

    /// The same for a scratch file (a staging copy deleted once used): `finish` does not
    /// sync it, as a crash discards it anyway.
    pub fn scratch(self) -> Self {
        Self {
            sync: false,
            ..self
        }
    }
}

impl DiskSink for RawSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        check_range(offset, data.len(), self.virtual_size)?;
        // Runs of non-zero blocks go out as one pwrite; zero blocks end a run and are skipped.
        let mut run_start: Option<usize> = None;
        let mut at = 0usize;
        while at < data.len() {
            let guest = offset + at as u64;
            let to_boundary = ZERO_BLOCK - guest % ZERO_BLOCK;
            let end = data.len().min(at.saturating_add(to_boundary as usize));
            if is_zero(&data[at..end]) {
                if let Some(start) = run_start.take() {
                    self.file
                        .write_all_at(&data[start..at], offset + start as u64)?;
                }
            } else if run_start.is_none() {
                run_start = Some(at);
            }
            at = end;
        }
        if let Some(start) = run_start {
            self.file
                .write_all_at(&data[start..], offset + start as u64)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.file.set_len(self.virtual_size)?;
        if self.sync {
            self.file.sync_all()?;
        }
        Ok(())
    }
}

/// Fails unless `[offset, offset + len)` lies within a disk of `virtual_size` bytes.
fn check_range(offset: u64, len: usize, virtual_size: u64) -> io::Result<()> {
    let end = u64::try_from(len)
        .ok()
        .and_then(|len| offset.checked_add(len));
    match end {
        Some(end) if end <= virtual_size => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "write of {len} bytes at guest offset {offset} ends beyond the virtual size of \
                 {virtual_size} bytes"
            ),
        )),
    }
}

/// True if every byte of `data` is zero. OR-folds 64-byte chunks, which the compiler
/// vectorises, and stops at the first non-zero chunk, so data blocks cost little.
pub(crate) fn is_zero(data: &[u8]) -> bool {
    let mut chunks = data.chunks_exact(64);
    chunks
        .by_ref()
        .all(|chunk| chunk.iter().fold(0u8, |acc, &b| acc | b) == 0)
        && chunks.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_support::TempDir;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    fn raw_sink(dir: &TempDir, size: u64) -> (RawSink, PathBuf) {
        let path = dir.path().join("out.raw");
        let file = File::create(&path).unwrap();
        (RawSink::new(file, size), path)
    }

    #[test]
    fn is_zero_single_nonzero_byte_anywhere_is_seen() {
        for len in [1usize, 63, 64, 65, 4096, 4097] {
            assert!(is_zero(&vec![0u8; len]));
            for pos in [0, len / 2, len - 1] {
                let mut data = vec![0u8; len];
                data[pos] = 1;
                assert!(!is_zero(&data), "len {len} pos {pos}");
            }
        }
    }

    #[test]
    fn raw_sink_unaligned_writes_in_any_order_land_at_their_offsets() {
        let dir = TempDir::new("raw-order");
        let (mut sink, path) = raw_sink(&dir, 20_000);
        sink.write_at(10_001, &[7u8; 3000]).unwrap();
        sink.write_at(3, b"abc").unwrap();
        sink.write_at(19_999, b"z").unwrap();
        sink.finish().unwrap();

        let got = std::fs::read(&path).unwrap();
        let mut want = vec![0u8; 20_000];
        want[10_001..13_001].fill(7);
        want[3..6].copy_from_slice(b"abc");
        want[19_999] = b'z';
        assert_eq!(got, want);
    }

    #[test]
    fn raw_sink_zero_blocks_stay_holes() {
        let dir = TempDir::new("raw-sparse");
        let size = 64 << 20;
        let (mut sink, path) = raw_sink(&dir, size);
        let mut chunk = vec![0u8; 1 << 20];
        chunk[0] = 1;
        for i in 0..64u64 {
            sink.write_at(i << 20, &chunk).unwrap();
        }
        sink.finish().unwrap();

        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), size);
        // One 4 KiB block of data per MiB; allow for filesystem allocation granularity.
        assert!(
            meta.blocks() * 512 <= 64 * 64 * 1024,
            "{} blocks",
            meta.blocks()
        );
    }

    #[test]
    fn raw_sink_write_past_virtual_size_is_rejected() {
        let dir = TempDir::new("raw-bounds");
        let (mut sink, _) = raw_sink(&dir, 4096);
        let err = sink.write_at(4000, &[1u8; 97]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("beyond the virtual size"), "{err}");
        assert!(sink.write_at(u64::MAX, &[1u8]).is_err());
    }
}
