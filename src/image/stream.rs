//! Forward-only decoders from a disk file's bytes (as they come out of the package: tar
//! member, gzip, chunks, digest) to a [`DiskSink`]: VMDK sparse extents (streamOptimized and
//! monolithicSparse) and raw images.
//!
//! Each decoder reads its input once, front to back, to its end, so the bytes it used are
//! exactly the bytes the caller hashed; it never seeks, never opens a file and never runs
//! `qemu-img`. It treats the input as hostile even when the header inspector has passed it:
//! memory is bounded by [`StreamLimits`], offsets use checked arithmetic, and any input it
//! cannot account for completely is an error, never a shorter or silently zero-filled disk.
//! Decoders do not call [`DiskSink::finish`]: the caller checks the digest first.

use std::io::{self, Read};

use super::sink::{is_zero, DiskSink};

mod vmdk;
mod vmdk_sparse;
mod vmdk_stream;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_tamper;

pub use vmdk::decode_vmdk;

/// Size of the input buffer: large reads keep gzip and tar readers efficient.
const INPUT_BUFFER: usize = 1 << 20;
/// The progress callback runs at most once per this many input bytes (and at the end).
const PROGRESS_STEP: u64 = 1 << 20;

/// Resource limits for decoding one untrusted image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLimits {
    /// Largest virtual disk accepted, in bytes.
    pub max_virtual_size: u64,
    /// Largest number of VMDK grains accepted. The grain maps take up to 12 bytes per grain
    /// of virtual disk, so this caps memory even when a header declares tiny grains.
    pub max_grains: u64,
}

/// Grains always allowed by [`StreamLimits::new`], whatever the size: enough for 16 GiB in
/// 4 KiB grains, at most 48 MiB of maps.
const MIN_GRAIN_LIMIT: u64 = 1 << 22;

impl StreamLimits {
    /// Limits for disks up to `max_virtual_size` bytes, allowing as many grains as such a
    /// disk has with the usual 64 KiB grains (at most 192 KiB of maps per GiB), and never
    /// fewer than 4 Mi grains, so that small disks may use smaller grains.
    pub fn new(max_virtual_size: u64) -> Self {
        Self {
            max_virtual_size,
            max_grains: max_virtual_size.div_ceil(64 << 10).max(MIN_GRAIN_LIMIT),
        }
    }
}

/// Why a disk stream could not be decoded. Offsets are byte offsets into the decoder's input
/// (after any gzip or chunk layer); the caller adds which package member it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input reader failed.
    #[error("reading the image at byte {offset}")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// The sink failed (disk full, bounds).
    #[error("writing {len} bytes at guest offset {offset}")]
    Write {
        offset: u64,
        len: usize,
        #[source]
        source: io::Error,
    },
    /// The input ended before the structure that was being read.
    #[error("image is truncated: input ends at byte {offset} inside {what}")]
    Truncated { offset: u64, what: &'static str },
    /// A raw image had more bytes than expected.
    #[error("raw image is longer than its expected {expected} bytes")]
    TooLong { expected: u64 },
    /// The input does not start with a VMDK sparse extent header.
    #[error("not a vmdk sparse extent: magic is {found:#010x}, expected \"KDMV\"")]
    NotVmdk { found: u32 },
    /// A VMDK header (or footer) field is out of range or inconsistent.
    #[error("vmdk header field {field} is {value}: {reason}")]
    Header {
        field: &'static str,
        value: u64,
        reason: &'static str,
    },
    /// The declared disk exceeds [`StreamLimits`].
    #[error("vmdk {what} is {value}, above the limit of {limit}")]
    Limit {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    /// The embedded descriptor is unusable or contradicts the header.
    #[error("vmdk descriptor: {reason}")]
    Descriptor { reason: String },
    /// A grain marker is out of range or its data does not inflate to a grain.
    #[error("vmdk grain marker at byte {offset} (lba {lba}): {reason}")]
    Grain {
        offset: u64,
        lba: u64,
        reason: String,
    },
    /// A grain's compressed data is not a valid zlib stream.
    #[error("vmdk grain marker at byte {offset} (lba {lba}): invalid compressed data")]
    Inflate {
        offset: u64,
        lba: u64,
        #[source]
        source: flate2::DecompressError,
    },
    /// Grain directory, grain tables, markers or footer disagree with each other or with the
    /// grains in the stream.
    #[error("vmdk metadata: {reason}")]
    Metadata { reason: String },
    /// A structure lies behind one already read, so the file cannot be read front to back.
    #[error("vmdk is not in streaming order: {what} at byte {offset} lies behind byte {position}")]
    NotStreamable {
        what: String,
        offset: u64,
        position: u64,
    },
    /// The grain tables name grains the stream never delivered.
    #[error("vmdk stream ended after {found} of the {expected} grains its grain tables name")]
    MissingGrains { found: u64, expected: u64 },
    /// Non-zero bytes follow the end-of-stream marker.
    #[error("vmdk has non-zero data at byte {offset}, after its end-of-stream marker")]
    TrailingData { offset: u64 },
}

/// Copies a raw image of exactly `expected_len` bytes from `r` into `sink`, leaving all-zero
/// data to the sink's hole handling. Returns the number of bytes copied (`expected_len`).
/// Fails if the input is shorter or longer. `progress` receives input bytes consumed so far.
pub fn copy_raw<R: Read>(
    r: R,
    expected_len: u64,
    sink: &mut dyn DiskSink,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, DecodeError> {
    let mut input = Input::new(r, progress);
    input.copy_to(sink, 0, expected_len, "raw image")?;
    if !input.fill()?.is_empty() {
        return Err(DecodeError::TooLong {
            expected: expected_len,
        });
    }
    input.report_done();
    Ok(expected_len)
}

/// Forward-only buffered reader that knows its absolute position and reports progress.
struct Input<'p, R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Input offset of `buf[start]`: bytes consumed so far.
    pos: u64,
    progress: &'p mut dyn FnMut(u64),
    reported: u64,
}

impl<'p, R: Read> Input<'p, R> {
    fn new(inner: R, progress: &'p mut dyn FnMut(u64)) -> Self {
        Self {
            inner,
            buf: vec![0u8; INPUT_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            pos: 0,
            progress,
            reported: 0,
        }
    }

    fn position(&self) -> u64 {
        self.pos
    }

    /// The buffered bytes, reading more if none are left; empty only at the end of input.
    fn fill(&mut self) -> Result<&[u8], DecodeError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            let n = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(DecodeError::Read {
                            offset: self.pos,
                            source,
                        })
                    }
                }
            };
            self.end = n.min(self.buf.len());
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// Marks `n` buffered bytes as used.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.pos += n as u64;
        if self.pos - self.reported >= PROGRESS_STEP {
            self.reported = self.pos;
            (self.progress)(self.pos);
        }
    }

    /// Reports the final position to the progress callback.
    fn report_done(&mut self) {
        self.reported = self.pos;
        (self.progress)(self.pos);
    }

    fn truncated(&self, what: &'static str) -> DecodeError {
        DecodeError::Truncated {
            offset: self.pos,
            what,
        }
    }

    /// Fills `out` completely, or fails naming `what` was being read.
    fn read_exact(&mut self, out: &mut [u8], what: &'static str) -> Result<(), DecodeError> {
        let mut done = 0;
        while done < out.len() {
            let avail = self.fill()?;
            if avail.is_empty() {
                return Err(self.truncated(what));
            }
            let n = avail.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&avail[..n]);
            self.consume(n);
            done += n;
        }
        Ok(())
    }

    /// Reads `count` little-endian u32 values.
    fn read_u32s(&mut self, count: usize, what: &'static str) -> Result<Box<[u32]>, DecodeError> {
        let mut bytes = vec![0u8; count * 4];
        self.read_exact(&mut bytes, what)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Discards `n` bytes, which must all be present.
    fn skip(&mut self, mut n: u64, what: &'static str) -> Result<(), DecodeError> {
        while n > 0 {
            let avail = self.fill()?.len();
            if avail == 0 {
                return Err(self.truncated(what));
            }
            let take = usize::try_from(n).map_or(avail, |n| n.min(avail));
            self.consume(take);
            n -= take as u64;
        }
        Ok(())
    }

    /// Skips forward to input offset `target`; fails if `target` was already passed, since a
    /// stream cannot go back.
    fn seek_forward(
        &mut self,
        target: u64,
        what: impl FnOnce() -> String,
    ) -> Result<(), DecodeError> {
        match target.checked_sub(self.pos) {
            Some(n) => self.skip(n, "data skipped to reach the next structure"),
            None => Err(DecodeError::NotStreamable {
                what: what(),
                offset: target,
                position: self.pos,
            }),
        }
    }

    /// Copies `len` input bytes to guest offset `offset` of `sink`.
    fn copy_to(
        &mut self,
        sink: &mut dyn DiskSink,
        offset: u64,
        len: u64,
        what: &'static str,
    ) -> Result<(), DecodeError> {
        let mut done = 0u64;
        while done < len {
            let avail = self.fill()?;
            if avail.is_empty() {
                return Err(self.truncated(what));
            }
            let n = usize::try_from(len - done).map_or(avail.len(), |r| r.min(avail.len()));
            let at = offset.saturating_add(done);
            sink.write_at(at, &avail[..n])
                .map_err(|source| DecodeError::Write {
                    offset: at,
                    len: n,
                    source,
                })?;
            self.consume(n);
            done += n as u64;
        }
        Ok(())
    }

    /// Reads to the end of input, failing at the first non-zero byte.
    fn expect_zeros_to_end(&mut self) -> Result<(), DecodeError> {
        loop {
            let avail = self.fill()?;
            if avail.is_empty() {
                return Ok(());
            }
            if !is_zero(avail) {
                let i = avail.iter().position(|&b| b != 0).unwrap_or(0);
                return Err(DecodeError::TrailingData {
                    offset: self.pos + i as u64,
                });
            }
            let n = avail.len();
            self.consume(n);
        }
    }

    /// Reads to the end of input, ignoring the bytes (they still pass through the caller's
    /// digest).
    fn skip_to_end(&mut self) -> Result<(), DecodeError> {
        loop {
            let n = self.fill()?.len();
            if n == 0 {
                return Ok(());
            }
            self.consume(n);
        }
    }
}
