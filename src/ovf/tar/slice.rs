//! A bounded, seekable window onto a reader: how members are read in place in an archive.
//! It must not read outside its window, nor end early when the inner reader runs short.

use std::io::{self, Read, Seek, SeekFrom};

/// A bounded view of `[start, start + len)` of an inner reader: position 0 is `start`, and
/// reads stop at `len`. Reading fails, rather than ending early, if the inner reader runs
/// out before `len` bytes, so a shrunken archive never yields a silently short disk.
#[derive(Debug)]
pub struct Slice<R> {
    inner: R,
    start: u64,
    len: u64,
    pos: u64,
}

impl<R: Seek> Slice<R> {
    /// A view of `len` bytes of `inner` from `start`, positioned at its beginning.
    pub fn new(mut inner: R, start: u64, len: u64) -> io::Result<Self> {
        if start.checked_add(len).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "slice end overflows u64",
            ));
        }
        inner.seek(SeekFrom::Start(start))?;
        Ok(Self {
            inner,
            start,
            len,
            pos: 0,
        })
    }
}

impl<R> Slice<R> {
    /// A view of the first `len` bytes of `inner`, which must be positioned at its start (a
    /// freshly opened file): unlike [`Slice::new`] it does not seek, so it cannot fail.
    pub fn whole(inner: R, len: u64) -> Self {
        Self {
            inner,
            start: 0,
            len,
            pos: 0,
        }
    }

    /// Length of the view in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the view holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inner reader, at an unspecified position.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Slice<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.len.saturating_sub(self.pos);
        if remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a member",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Slice<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let abs = new.and_then(|n| self.start.checked_add(n).map(|abs| (n, abs)));
        let (new, abs) = abs.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the member or past u64",
            )
        })?;
        self.inner.seek(SeekFrom::Start(abs))?;
        self.pos = new;
        Ok(new)
    }
}
