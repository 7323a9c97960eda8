//! SECURITY.md item 44: the zero padding after the end-of-archive marker is bounded.

use std::io::{self, Read, Seek, SeekFrom};

use super::*;

/// An archive followed by `tail` zero bytes that are never stored (a sparse file).
struct ZeroTail {
    head: Vec<u8>,
    len: u64,
    pos: u64,
    read: u64,
}

impl ZeroTail {
    fn new(head: Vec<u8>, tail: u64) -> Self {
        let len = head.len() as u64 + tail;
        Self {
            head,
            len,
            pos: 0,
            read: 0,
        }
    }
}

impl Read for ZeroTail {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min((self.len - self.pos.min(self.len)) as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.head.get((self.pos as usize) + i).copied().unwrap_or(0);
        }
        self.pos += n as u64;
        self.read += n as u64;
        Ok(n)
    }
}

impl Seek for ZeroTail {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        if let SeekFrom::Start(p) = to {
            self.pos = p;
        }
        Ok(self.pos)
    }
}

fn index_tail(tail: u64) -> (Result<TarIndex, TarError>, u64) {
    let mut r = ZeroTail::new(Ar::default().file("a", b"x").end(), tail);
    let len = r.len;
    let result = index(&mut r, len);
    (result, r.read)
}

#[test]
fn index_padding_of_the_cap_is_accepted() {
    let (result, _) = index_tail(MAX_TRAILING_ZEROS);
    assert_eq!(result.unwrap().members.len(), 1);
}

// SECURITY.md item 44: one block more than the cap is refused with a one-line message.
#[test]
fn index_padding_over_the_cap_is_refused() {
    let (result, _) = index_tail(MAX_TRAILING_ZEROS + 512);
    let err = result.unwrap_err();
    assert!(matches!(err, TarError::TrailingTooLong { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the archive has {} bytes after its end-of-archive marker at offset 1024, more \
             than the {MAX_TRAILING_ZEROS} bytes of padding allowed",
            MAX_TRAILING_ZEROS + 512
        )
    );
}

// SECURITY.md item 44: a terabyte of sparse padding is refused at once, not scanned.
#[test]
fn index_terabyte_of_padding_is_refused_without_reading_it() {
    let (result, read) = index_tail(1 << 40);
    assert!(matches!(result, Err(TarError::TrailingTooLong { .. })));
    assert!(read < 64 << 10, "read {read} bytes");
}
