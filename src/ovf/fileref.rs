//! Reading the files an OVF References section names: gzip-compressed files
//! (`ovf:compression="gzip"`) under an output cap, and chunked files (`ovf:chunkSize`) split
//! into `href.000000000`, `href.000000001`, ….
//!
//! Every reader here fails rather than ends early or runs long: a disk is never silently
//! truncated, and a decompression bomb stops at the cap (virt-v2v's uncapped `zcat` is the
//! anti-pattern). Errors raised inside `Read` travel as `io::Error`s whose inner error is a
//! [`FileRefError`] or [`ChunkError`], for callers that want the kind back.
//!
//! Gzip policy: every member of a multi-member stream is decoded, as `gzip -d`/`zcat` do (a
//! single-member decoder would silently drop the rest of a concatenated file); anything after
//! the last member, zeros included, is an error, as is an empty or truncated stream or a bad
//! CRC. When a file is both chunked and compressed, chunking applies to the compressed bytes:
//! wrap a [`ChunkedReader`] in [`gzip_reader`].
//!
//! This module opens nothing by itself (callers pass readers, or a function that opens a
//! chunk by name) and prints nothing. Chunk names must be validated by the caller (the tar
//! index or the package reader) before they reach the file system.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;

/// Most chunks one file may be split into (as many as an archive may hold members).
pub const MAX_CHUNKS: u64 = 10_000;
/// Digits in a chunk suffix.
const CHUNK_DIGITS: usize = 9;

/// Why reading a referenced file failed.
#[derive(Debug, thiserror::Error)]
pub enum FileRefError {
    #[error("decompressed data exceeds the cap of {cap} bytes for {name}")]
    CapExceeded { name: String, cap: u64 },
    #[error("cannot decompress {name}")]
    Gzip {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// A reader that fails (rather than truncates) once more than `cap` bytes would come out.
#[derive(Debug)]
pub struct CappedReader<R> {
    inner: R,
    cap: u64,
    total: u64,
    name: String,
    exceeded: bool,
}

impl<R: Read> CappedReader<R> {
    /// Caps `inner` at `cap` bytes; `name` is the file the error message names.
    pub fn new(inner: R, cap: u64, name: &str) -> Self {
        Self {
            inner,
            cap,
            total: 0,
            name: name.to_string(),
            exceeded: false,
        }
    }

    /// Bytes returned so far.
    pub fn bytes_read(&self) -> u64 {
        self.total
    }

    fn exceeded(&mut self) -> io::Error {
        self.exceeded = true;
        let err = FileRefError::CapExceeded {
            name: self.name.clone(),
            cap: self.cap,
        };
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.exceeded {
            return Err(self.exceeded());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let allowed = self.cap - self.total;
        if allowed == 0 {
            // At the cap: any further byte means the stream is over it.
            return match self.inner.read(&mut [0u8; 1])? {
                0 => Ok(0),
                _ => Err(self.exceeded()),
            };
        }
        let want = usize::try_from(allowed).map_or(buf.len(), |a| a.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        self.total += n as u64;
        Ok(n)
    }
}

/// A gzip decoder over a referenced file, capped at `cap` decompressed bytes.
#[derive(Debug)]
pub struct GzipReader<R> {
    inner: CappedReader<MultiGzDecoder<R>>,
    name: String,
}

/// Decompresses `r` (all gzip members, nothing after them) and fails past `cap` output bytes.
pub fn gzip_reader<R: Read>(r: R, cap: u64, name: &str) -> GzipReader<R> {
    GzipReader {
        inner: CappedReader::new(MultiGzDecoder::new(r), cap, name),
        name: name.to_string(),
    }
}

impl<R: Read> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let gzip = |name: &str, source: io::Error| {
            let kind = source.kind();
            io::Error::new(
                kind,
                FileRefError::Gzip {
                    name: name.to_string(),
                    source,
                },
            )
        };
        match self.inner.read(buf) {
            Err(e) if e.get_ref().is_some_and(|i| i.is::<FileRefError>()) => Err(e),
            Err(e) => Err(gzip(&self.name, e)),
            // An empty input decodes to nothing without complaint; it is not a gzip file.
            Ok(0) if !buf.is_empty() && self.inner.inner.header().is_none() => {
                let empty = io::Error::new(io::ErrorKind::UnexpectedEof, "no gzip header");
                Err(gzip(&self.name, empty))
            }
            Ok(n) => Ok(n),
        }
    }
}

/// Why a chunked file's chunks do not add up.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("{href} declares an ovf:chunkSize of 0")]
    ZeroChunkSize { href: String },
    #[error("{href} is chunked but declares an ovf:size of 0")]
    ZeroTotal { href: String },
    #[error("{href} would need {count} chunks, more than the cap of {cap}")]
    TooManyChunks { href: String, count: u64, cap: u64 },
    #[error("chunk {index} of {href} is missing")]
    Missing { href: String, index: u64 },
    #[error(
        "chunk {index} of {href} is {size} bytes; each chunk but the last must be {chunk_size}"
    )]
    WrongSize {
        href: String,
        index: u64,
        size: u64,
        chunk_size: u64,
    },
    #[error(
        "the last chunk of {href} must be 1 to {chunk_size} bytes, but chunk {index} is {size}"
    )]
    WrongLastSize {
        href: String,
        index: u64,
        size: u64,
        chunk_size: u64,
    },
    #[error("the chunks of {href} total {total} bytes, but its ovf:size is {declared}")]
    TotalMismatch {
        href: String,
        total: u64,
        declared: u64,
    },
    #[error("chunk {index} of {href} lies beyond its ovf:size")]
    Extra { href: String, index: u64 },
    #[error("{name:?} is not a chunk of {href}: chunk suffixes are exactly 9 digits")]
    BadSuffix { href: String, name: String },
    #[error("{href} is present both whole and in chunks")]
    WholeAndChunks { href: String },
    #[error("chunk {index} of {href} ended after {got} of its {expected} bytes")]
    Short {
        href: String,
        index: u64,
        got: u64,
        expected: u64,
    },
    #[error("chunk {index} of {href} holds more than its {expected} bytes")]
    Long {
        href: String,
        index: u64,
        expected: u64,
    },
}

/// The name of chunk `index` of `href`: `href.000000002`.
pub fn chunk_name(href: &str, index: u64) -> String {
    format!("{href}.{index:0width$}", width = CHUNK_DIGITS)
}

/// Works out which chunks make up `href` and checks their sizes, given `available`, which
/// returns the size of a file of the package by name (or `None` if there is none).
///
/// Every chunk but the last must be exactly `chunk_size` bytes, the last 1 to `chunk_size`,
/// the total must equal `total_size` (`ovf:size`), no index may be missing and none may
/// follow the last. Returns the chunks' names and sizes in order. Also call
/// [`check_no_stray_chunks`] with the package's member list when one is at hand.
pub fn plan_chunks(
    href: &str,
    chunk_size: u64,
    total_size: u64,
    available: impl Fn(&str) -> Option<u64>,
) -> Result<Vec<(String, u64)>, ChunkError> {
    let href_owned = || href.to_string();
    if chunk_size == 0 {
        return Err(ChunkError::ZeroChunkSize { href: href_owned() });
    }
    if total_size == 0 {
        return Err(ChunkError::ZeroTotal { href: href_owned() });
    }
    let count = total_size.div_ceil(chunk_size);
    if count > MAX_CHUNKS {
        return Err(ChunkError::TooManyChunks {
            href: href_owned(),
            count,
            cap: MAX_CHUNKS,
        });
    }
    let last = count - 1;
    let mut plan = Vec::new();
    for index in 0..count {
        let name = chunk_name(href, index);
        let size = available(&name).ok_or(ChunkError::Missing {
            href: href_owned(),
            index,
        })?;
        if index < last && size != chunk_size {
            return Err(ChunkError::WrongSize {
                href: href_owned(),
                index,
                size,
                chunk_size,
            });
        }
        if index == last {
            if size == 0 || size > chunk_size {
                let href = href_owned();
                return Err(ChunkError::WrongLastSize {
                    href,
                    index,
                    size,
                    chunk_size,
                });
            }
            // `last * chunk_size < total_size`, so this cannot overflow.
            let total = last * chunk_size + size;
            if total != total_size {
                let href = href_owned();
                return Err(ChunkError::TotalMismatch {
                    href,
                    total,
                    declared: total_size,
                });
            }
        }
        plan.push((name, size));
    }
    if available(&chunk_name(href, count)).is_some() {
        return Err(ChunkError::Extra {
            href: href_owned(),
            index: count,
        });
    }
    Ok(plan)
}

/// Refuses package files that look like chunks of `href` but are not in a plan of
/// `planned` chunks: a suffix of digits that is not exactly 9 long, an index past the last
/// chunk, or `href` itself next to its chunks.
pub fn check_no_stray_chunks<'a>(
    href: &str,
    planned: usize,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ChunkError> {
    for name in names {
        if name == href {
            return Err(ChunkError::WholeAndChunks {
                href: href.to_string(),
            });
        }
        let Some(suffix) = name
            .strip_prefix(href)
            .and_then(|rest| rest.strip_prefix('.'))
        else {
            continue;
        };
        if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if suffix.len() != CHUNK_DIGITS {
            let (href, name) = (href.to_string(), name.to_string());
            return Err(ChunkError::BadSuffix { href, name });
        }
        let index: u64 = suffix.parse().unwrap_or(u64::MAX);
        if usize::try_from(index).map_or(true, |i| i >= planned) {
            return Err(ChunkError::Extra {
                href: href.to_string(),
                index,
            });
        }
    }
    Ok(())
}

/// Reads the chunks of a plan from [`plan_chunks`] one after another as one stream, opening
/// each with `open` when it is reached. Each chunk must yield exactly its planned size.
pub struct ChunkedReader<R, F> {
    href: String,
    plan: Vec<(String, u64)>,
    open: F,
    next: usize,
    current: Option<Current<R>>,
}

struct Current<R> {
    reader: R,
    index: u64,
    expected: u64,
    remaining: u64,
}

impl<R: Read, F: FnMut(&str) -> io::Result<R>> ChunkedReader<R, F> {
    /// A reader over the chunks of `href` listed in `plan`.
    pub fn new(href: &str, plan: Vec<(String, u64)>, open: F) -> Self {
        Self {
            href: href.to_string(),
            plan,
            open,
            next: 0,
            current: None,
        }
    }
}

impl<R: Read, F: FnMut(&str) -> io::Result<R>> Read for ChunkedReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(cur) = self.current.as_mut() else {
                let Some((name, size)) = self.plan.get(self.next) else {
                    return Ok(0);
                };
                let reader = (self.open)(name)?;
                let index = self.next as u64;
                self.current = Some(Current {
                    reader,
                    index,
                    expected: *size,
                    remaining: *size,
                });
                self.next += 1;
                continue;
            };
            let (index, expected) = (cur.index, cur.expected);
            if cur.remaining == 0 {
                if cur.reader.read(&mut [0u8; 1])? != 0 {
                    let err = ChunkError::Long {
                        href: self.href.clone(),
                        index,
                        expected,
                    };
                    return Err(io::Error::new(io::ErrorKind::InvalidData, err));
                }
                self.current = None;
                continue;
            }
            let want = usize::try_from(cur.remaining).map_or(buf.len(), |r| r.min(buf.len()));
            let n = cur.reader.read(&mut buf[..want])?;
            if n == 0 {
                let got = expected - cur.remaining;
                let err = ChunkError::Short {
                    href: self.href.clone(),
                    index,
                    got,
                    expected,
                };
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, err));
            }
            cur.remaining -= n as u64;
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests;
