//! The bytes of one referenced file as vmd transfers them: located in the package (whole or in
//! chunks), read in place, hashed as they are read and checked against the manifest when the
//! last byte of each stored file has gone by, then decompressed with a cap. Everything is a
//! forward-only stream: nothing is extracted and nothing is read twice.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::fileref::{self, ChunkError, ChunkedReader};
use super::manifest::{Hasher, Manifest, ManifestError};
use super::package::{FileReader, Package, PackageError};

/// A referenced file as the descriptor declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared<'a> {
    /// The plain file name (`ovf:href`).
    pub href: &'a str,
    /// `ovf:size`, if declared.
    pub size: Option<u64>,
    /// `ovf:compression="gzip"`.
    pub gzip: bool,
    /// `ovf:chunkSize`, if declared.
    pub chunk_size: Option<u64>,
}

/// Where a referenced file's bytes are: one stored file, or its chunks in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The href.
    pub href: String,
    /// The stored files and their sizes, in order.
    pub parts: Vec<(String, u64)>,
    /// Whether the bytes are gzip-compressed.
    pub gzip: bool,
}

impl Stored {
    /// Total stored bytes: what a progress bar counts.
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|(_, s)| s).sum()
    }

    /// True when the file is stored in chunks.
    pub fn chunked(&self) -> bool {
        self.parts.len() > 1 || self.parts.first().is_some_and(|(n, _)| *n != self.href)
    }
}

/// Why a referenced file cannot be transferred.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The package does not hold it.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// Its chunks are not a complete set.
    #[error(transparent)]
    Chunks(#[from] ChunkError),
    /// The manifest does not cover it.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Its size is not the declared one.
    #[error("{href} is {actual} bytes but its ovf:size declares {declared}")]
    Size {
        /// The file.
        href: String,
        /// Size found.
        actual: u64,
        /// Size declared.
        declared: u64,
    },
}

/// Finds the stored bytes of `file` in `pkg` and checks them against the declaration.
pub fn locate(pkg: &Package, file: &Declared<'_>) -> Result<Stored, TransferError> {
    // A link or subdirectory in place of the file or one of its chunks: say so, rather than
    // report the file (or chunk) missing.
    let chunk_prefix = format!("{}.", file.href);
    if let Some((name, what)) = pkg
        .refused()
        .find(|(n, _)| *n == file.href || n.starts_with(&chunk_prefix))
    {
        return Err(PackageError::NotRegular {
            name: name.to_string(),
            what,
        }
        .into());
    }
    let parts = match file.chunk_size {
        Some(chunk) => {
            let total = file.size.ok_or_else(|| ChunkError::ZeroTotal {
                href: file.href.to_string(),
            })?;
            // Badly named chunks first: a set written with another number of digits is
            // better reported as such than as a missing chunk 0.
            let count = usize::try_from(total.div_ceil(chunk.max(1))).unwrap_or(usize::MAX);
            let others = pkg.names().filter(|n| *n != file.href);
            fileref::check_no_stray_chunks(file.href, count, others)?;
            let plan = fileref::plan_chunks(file.href, chunk, total, |n| pkg.size(n))?;
            fileref::check_no_stray_chunks(file.href, plan.len(), pkg.names())?;
            plan
        }
        None => {
            let actual = pkg.size(file.href).ok_or_else(|| PackageError::Missing {
                name: file.href.to_string(),
            })?;
            if let Some(declared) = file.size.filter(|d| *d != actual) {
                return Err(TransferError::Size {
                    href: file.href.to_string(),
                    actual,
                    declared,
                });
            }
            vec![(file.href.to_string(), actual)]
        }
    };
    Ok(Stored {
        href: file.href.to_string(),
        parts,
        gzip: file.gzip,
    })
}

/// Checks that a manifest lists every stored file of `stored` (each chunk has its own entry).
pub fn check_listed(manifest: &Manifest, stored: &Stored) -> Result<(), ManifestError> {
    for (name, _) in &stored.parts {
        if manifest.expected(name).is_none() {
            return Err(ManifestError::NotListed { file: name.clone() });
        }
    }
    Ok(())
}

/// Shared between a transfer and whoever watches it.
#[derive(Debug, Default)]
pub struct Meter {
    /// Stored bytes read so far.
    pub bytes: AtomicU64,
    /// Set to stop the transfer at its next read.
    pub cancel: Arc<AtomicBool>,
}

/// One stored file, hashed as read and verified against the manifest at its end.
struct Verified {
    inner: Box<dyn FileReader>,
    name: String,
    hasher: Option<Hasher>,
    manifest: Option<Arc<Manifest>>,
    meter: Arc<Meter>,
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.meter.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "import interrupted",
            ));
        }
        let n = self.inner.read(buf)?;
        self.meter.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if n > 0 {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
            return Ok(n);
        }
        if let (Some(h), Some(m)) = (self.hasher.take(), self.manifest.as_ref()) {
            m.verify(&self.name, &h.finish())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        Ok(0)
    }
}

/// A forward-only stream of the (decompressed) bytes of `stored`. Each stored file's digest is
/// checked when its last byte has been read: read the stream to its end (drain it after a
/// decoder stops) before trusting what was written. A mismatch surfaces as an `io::Error` of
/// kind `InvalidData` wrapping a [`ManifestError`]; a decompression beyond `cap` bytes as one
/// wrapping a [`fileref::FileRefError`].
pub fn open<'p>(
    pkg: &'p Package,
    stored: &Stored,
    manifest: Option<Arc<Manifest>>,
    cap: u64,
    meter: Arc<Meter>,
) -> Result<Box<dyn Read + Send + 'p>, TransferError> {
    let verified = {
        let manifest = manifest.clone();
        let meter = Arc::clone(&meter);
        move |name: &str| -> io::Result<Verified> {
            let inner = pkg
                .open_file(name)
                .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
            let hasher = manifest
                .as_ref()
                .and_then(|m| m.expected(name))
                .map(|(alg, _)| Hasher::new(alg));
            Ok(Verified {
                inner,
                name: name.to_string(),
                hasher,
                manifest: manifest.clone(),
                meter: Arc::clone(&meter),
            })
        }
    };
    let raw: Box<dyn Read + Send + 'p> = if stored.chunked() {
        Box::new(ChunkedReader::new(
            &stored.href,
            stored.parts.clone(),
            verified,
        ))
    } else {
        // Open eagerly so that a missing file is reported here, not mid-stream.
        let whole = verified(&stored.href).map_err(|_| PackageError::Missing {
            name: stored.href.clone(),
        })?;
        Box::new(whole)
    };
    Ok(if stored.gzip {
        Box::new(fileref::gzip_reader(raw, cap, &stored.href))
    } else {
        raw
    })
}

/// Finds the vmd error inside an `io::Error` from a transfer stream, if there is one, so a
/// digest mismatch or an exceeded cap is reported as itself.
pub fn cause(err: &io::Error) -> Option<String> {
    let inner = err.get_ref()?;
    if let Some(e) = inner.downcast_ref::<ManifestError>() {
        return Some(e.to_string());
    }
    if let Some(e) = inner.downcast_ref::<fileref::FileRefError>() {
        return Some(e.to_string());
    }
    inner.downcast_ref::<ChunkError>().map(|e| e.to_string())
}

/// How far ahead [`prefetch`] reads: this many buffers of [`PREFETCH_CHUNK`] bytes.
const PREFETCH_DEPTH: usize = 4;
/// The size of one prefetched buffer.
const PREFETCH_CHUNK: usize = 1 << 20;

/// A reader fed by a thread that reads (hashes, decompresses) ahead of its consumer, so that
/// a package's bytes are read and verified while the previous ones are being decoded.
pub struct Prefetched {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for Prefetched {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(buf)) => {
                    self.buf = buf;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads `inner` to its end on a thread of `scope`, a few buffers ahead of the returned
/// reader. An error of `inner` reaches the reader in order, after the bytes before it; when
/// the reader is dropped early the thread stops at its next buffer.
pub fn prefetch<'scope, R: Read + Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut inner: R,
) -> Prefetched {
    let (tx, rx) = std::sync::mpsc::sync_channel(PREFETCH_DEPTH);
    scope.spawn(move || loop {
        let mut buf = vec![0u8; PREFETCH_CHUNK];
        let mut filled = 0;
        let result = loop {
            match inner.read(&mut buf[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break Ok(());
                    }
                }
                // Interrupted is how a cancelled transfer stops: never retried here.
                Err(e) => break Err(e),
            }
        };
        buf.truncate(filled);
        let at_end = filled < PREFETCH_CHUNK;
        if filled > 0 && tx.send(Ok(buf)).is_err() {
            return;
        }
        match result {
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
            Ok(()) if at_end => return,
            Ok(()) => {}
        }
    });
    Prefetched {
        rx,
        buf: Vec::new(),
        pos: 0,
        done: false,
    }
}

#[cfg(test)]
mod prefetch_tests {
    use super::*;

    struct Failing {
        data: io::Cursor<Vec<u8>>,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.read(buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "digest mismatch",
                ));
            }
            Ok(n)
        }
    }

    #[test]
    fn prefetch_large_input_arrives_whole_and_in_order() {
        let data: Vec<u8> = (0..3 * PREFETCH_CHUNK + 12345)
            .map(|i| (i % 251) as u8)
            .collect();
        let got = std::thread::scope(|s| {
            let mut r = prefetch(s, io::Cursor::new(data.clone()));
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            out
        });
        assert_eq!(got, data);
    }

    #[test]
    fn prefetch_error_after_data_reaches_the_reader_after_the_data() {
        let (bytes, err) = std::thread::scope(|s| {
            let mut r = prefetch(
                s,
                Failing {
                    data: io::Cursor::new(vec![7u8; 1000]),
                },
            );
            let mut out = Vec::new();
            let err = r.read_to_end(&mut out).unwrap_err();
            (out.len(), err)
        });
        assert_eq!(bytes, 1000);
        assert_eq!(err.to_string(), "digest mismatch");
    }

    /// An endless source that counts what it hands out.
    struct Counting(Arc<AtomicU64>);

    impl Read for Counting {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(1);
            self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
            Ok(buf.len())
        }
    }

    #[test]
    fn prefetch_reader_dropped_early_stops_the_thread() {
        let read = Arc::new(AtomicU64::new(0));
        // The scope only ends once the thread has: an endless source that kept being read
        // would hang here.
        std::thread::scope(|s| {
            let mut r = prefetch(s, Counting(Arc::clone(&read)));
            let mut first = [0u8; 10];
            r.read_exact(&mut first).unwrap();
        });
        let bound = ((PREFETCH_DEPTH + 3) * PREFETCH_CHUNK) as u64;
        assert!(
            read.load(Ordering::Relaxed) <= bound,
            "read on after the reader went"
        );
    }
}
