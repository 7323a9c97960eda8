//! A `Read + Seek` window onto part of another reader, so that a disk stored inside an OVA
//! (tar member at some offset) can be inspected in place: position 0 is the member's first
//! byte and reads stop at its end, whatever follows in the archive.

use std::io::{self, Read, Seek, SeekFrom};

/// The bytes `start..start + len` of `inner`, seen as a stream of their own.
#[derive(Debug)]
pub struct Slice<R> {
    inner: R,
    start: u64,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> Slice<R> {
    /// A window of `len` bytes starting at byte `start` of `inner`.
    pub fn new(inner: R, start: u64, len: u64) -> Slice<R> {
        Slice {
            inner,
            start,
            len,
            pos: 0,
        }
    }

    /// The window's length, to pass to [`crate::image::inspect::inspect`].
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for a zero-length window.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gives back the underlying reader (its position is unspecified).
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read + Seek> Read for Slice<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let at = self.start.checked_add(self.pos).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "slice position overflows")
        })?;
        // Seek every time: the inner reader may be shared or moved between reads.
        self.inner.seek(SeekFrom::Start(at))?;
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Slice<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the slice or past u64",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn slice() -> Slice<Cursor<Vec<u8>>> {
        Slice::new(Cursor::new((0u8..100).collect()), 10, 20)
    }

    #[test]
    fn slice_read_stops_at_window_end() {
        let mut s = slice();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        assert_eq!(all, (10u8..30).collect::<Vec<_>>());
    }

    #[test]
    fn slice_seek_from_end_is_relative_to_window() {
        let mut s = slice();
        assert_eq!(s.seek(SeekFrom::End(-2)).unwrap(), 18);
        let mut b = [0u8; 4];
        assert_eq!(s.read(&mut b).unwrap(), 2);
        assert_eq!(&b[..2], &[28, 29]);
    }

    #[test]
    fn slice_seek_before_start_is_an_error() {
        let mut s = slice();
        assert!(s.seek(SeekFrom::Current(-1)).is_err());
        assert!(s.seek(SeekFrom::End(-21)).is_err());
    }

    #[test]
    fn slice_read_exact_past_end_is_unexpected_eof() {
        let mut s = slice();
        s.seek(SeekFrom::Start(15)).unwrap();
        let err = s.read_exact(&mut [0u8; 6]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn slice_inspect_sees_a_member_inside_an_archive() {
        use crate::image::inspect::inspect;
        use crate::image::ImageFormat;
        let member = crate::image::inspect::fixtures::qcow2(3, 1 << 30);
        let mut archive = vec![0x55u8; 1536];
        archive.extend_from_slice(&member);
        archive.extend_from_slice(&[0xaa; 4096]);
        let mut s = Slice::new(Cursor::new(archive), 1536, member.len() as u64);
        let len = s.len();
        let info = inspect(&mut s, len).unwrap();
        assert_eq!(info.format, ImageFormat::Qcow2);
    }
}
