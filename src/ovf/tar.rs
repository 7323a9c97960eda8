//! The OVA tar walker: vmd's one tar parser, used both to check an archive and to read from it.
//!
//! It never extracts. [`index`] walks the headers once and records, for every member, where its
//! data lies in the archive, so disks are read in place through [`Slice`] (virt-v2v's
//! "TarOptimized" mode). Because the same index serves checking and reading, no second tar
//! implementation can see a different archive (TARmageddon, RUSTSEC-2026-0068).
//!
//! Policy, strict on purpose since an OVA needs only a handful of regular files:
//! - accepted: ustar and GNU headers of regular files (`'0'`, `'\0'`), PAX extended headers
//!   (`'x'`) applied to the next member, GNU long names (`'L'`), PAX global headers (`'g'`)
//!   that do not touch `path`, `size`, `linkpath` or sparse keys (ignored otherwise);
//! - rejected: every other member type (links, devices, FIFOs, directories, sparse files,
//!   GNU long link names), names that are not one plain component matching
//!   `^[A-Za-z0-9._-]{1,255}$` (or are `.`/`..`), duplicate names, setuid/setgid/sticky bits,
//!   a PAX size that disagrees with a nonzero ustar size, extension headers that are chained
//!   or dangling, data that runs past the archive, anything but zeros after the
//!   end-of-archive marker, and more than [`MAX_TRAILING_ZEROS`] of those;
//! - the end-of-archive marker (two zero blocks) is required. GNU tar and Python's tarfile
//!   write it, and so does oVirt's `pack_ova.py`; a lone zero block or none at all means a
//!   truncated download, which must not import.
//!
//! This module must not create files, follow names into the file system, or print.

mod header;
mod slice;

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom};

pub use header::BLOCK;
use header::{extended, field, get, number, shown, Block, Format};
pub use slice::Slice;

/// Most regular-file members an archive may hold.
pub const MAX_MEMBERS: usize = 10_000;
/// Largest PAX extended header (`'x'` or `'g'`) data accepted.
pub const MAX_PAX_SIZE: u64 = 64 * 1024;
/// Largest GNU long-name (`'L'`) data accepted; names are capped at 255 bytes anyway.
const MAX_LONG_NAME_SIZE: u64 = 1024;
/// Longest member name accepted.
const MAX_NAME_LEN: usize = 255;
/// Most bytes accepted after the end-of-archive marker (all zeros). Tar writers pad the
/// archive to a whole record, 10 KiB by default (GNU tar's blocking factor 20) and 1 MiB at
/// its largest blocking factor; 4 MiB leaves room and keeps the scan short (SECURITY.md
/// item 44: a sparse terabyte of padding would otherwise take an hour to read).
pub const MAX_TRAILING_ZEROS: u64 = 4 << 20;

/// One regular file in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The validated name: one plain path component.
    pub name: String,
    /// Offset of the member's first data byte in the archive.
    pub offset: u64,
    /// Length of the member's data in bytes.
    pub size: u64,
}

/// The regular files of an archive, in archive order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarIndex {
    /// Members in the order they appear in the archive.
    pub members: Vec<Member>,
}

impl TarIndex {
    /// The member called `name`, if the archive holds one.
    pub fn get(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// Why an archive was refused. Names that failed validation are quoted with escapes.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("cannot read the archive at offset {offset}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("tar header at offset {offset} has a bad checksum")]
    Checksum { offset: u64 },
    #[error("tar header at offset {offset} is neither ustar nor GNU format")]
    Format { offset: u64 },
    #[error("tar header at offset {offset} has an invalid {field} field")]
    Number { offset: u64, field: &'static str },
    #[error("member {name:?} is a {kind}; an OVA may hold only regular files")]
    NotRegular { name: String, kind: &'static str },
    #[error("member name {name:?} is not a single plain file name: {reason}")]
    Name { name: String, reason: &'static str },
    #[error("member {name} appears more than once in the archive")]
    Duplicate { name: String },
    #[error("member {name} has a PAX size of {pax} bytes but a ustar size of {ustar}")]
    SizeMismatch { name: String, pax: u64, ustar: u64 },
    #[error("member {name} has mode {mode:o}, which sets setuid, setgid or sticky bits")]
    Mode { name: String, mode: u64 },
    #[error("member {name} runs to byte {end} but the archive is only {archive_len} bytes long")]
    Truncated {
        name: String,
        end: u64,
        archive_len: u64,
    },
    #[error("extended header at offset {offset} is invalid: {detail}")]
    Extended { offset: u64, detail: String },
    #[error("non-zero data at offset {offset} after the end-of-archive marker")]
    TrailingGarbage { offset: u64 },
    #[error(
        "the archive has {len} bytes after its end-of-archive marker at offset {offset}, more \
         than the {cap} bytes of padding allowed"
    )]
    TrailingTooLong { offset: u64, len: u64, cap: u64 },
    #[error("the archive ends at offset {offset} without an end-of-archive marker")]
    MissingEnd { offset: u64 },
    #[error("the archive holds more than {cap} members")]
    TooManyMembers { cap: usize },
}

/// An extension header waiting for the member it describes.
enum Pending {
    Pax {
        offset: u64,
        path: Option<Vec<u8>>,
        size: Option<u64>,
    },
    LongName {
        offset: u64,
        name: Vec<u8>,
    },
}

impl Pending {
    fn offset(&self) -> u64 {
        match self {
            Pending::Pax { offset, .. } | Pending::LongName { offset, .. } => *offset,
        }
    }
}

/// Walks the archive's headers and returns its regular files with their data offsets.
///
/// `archive_len` is the length of the archive as the caller knows it (the file size); any
/// member whose data would run past it is refused as truncated. Reads headers only: the time
/// spent is bounded by the number of headers plus one scan of at most
/// [`MAX_TRAILING_ZEROS`] of padding at the end.
pub fn index<R: Read + Seek>(r: &mut R, archive_len: u64) -> Result<TarIndex, TarError> {
    let mut walk = Walk {
        r,
        archive_len,
        members: Vec::new(),
        seen: HashSet::new(),
        pending: None,
    };
    // Each member may be preceded by extension headers; this bounds the walk all the same.
    let max_headers = MAX_MEMBERS.saturating_mul(3);
    let mut pos = 0u64;
    for _ in 0..=max_headers {
        if archive_len.saturating_sub(pos) < BLOCK {
            let dangling = walk.pending.as_ref().map(Pending::offset);
            return Err(dangling.map_or(TarError::MissingEnd { offset: pos }, not_followed));
        }
        let block = walk.read_block(pos)?;
        if block.iter().all(|&b| b == 0) {
            if let Some(offset) = walk.pending.as_ref().map(Pending::offset) {
                return Err(not_followed(offset));
            }
            walk.check_end(pos)?;
            return Ok(TarIndex {
                members: walk.members,
            });
        }
        let data_at = pos + BLOCK;
        let skip = walk.header(&block, pos)?;
        pos = skip
            .checked_add(BLOCK - 1)
            .map(|s| s / BLOCK * BLOCK)
            .and_then(|padded| data_at.checked_add(padded))
            .filter(|&next| next <= archive_len)
            .ok_or(TarError::MissingEnd { offset: pos })?;
    }
    Err(TarError::TooManyMembers { cap: MAX_MEMBERS })
}

fn not_followed(offset: u64) -> TarError {
    extended(offset, "is not followed by a member")
}

/// The state of one pass over an archive.
struct Walk<'r, R> {
    r: &'r mut R,
    archive_len: u64,
    members: Vec<Member>,
    seen: HashSet<String>,
    pending: Option<Pending>,
}

impl<R: Read + Seek> Walk<'_, R> {
    /// Handles the non-zero header at `pos` and returns how many data bytes follow it.
    fn header(&mut self, block: &Block, pos: u64) -> Result<u64, TarError> {
        header::verify_checksum(block, pos)?;
        let format = header::header_format(block, pos)?;
        let ustar_size = number(block, field::SIZE, pos, "size")?;
        match block[field::TYPEFLAG] {
            b'0' | 0 => self.regular(block, format, ustar_size, pos),
            typeflag @ (b'x' | b'g' | b'L') => {
                self.extension(typeflag, ustar_size, pos)?;
                Ok(ustar_size)
            }
            other => {
                if let (b'K', Some(Pending::Pax { offset, .. })) = (other, &self.pending) {
                    return Err(extended(*offset, "is followed by a GNU long link name"));
                }
                let name = effective_name(block, format, self.pending.as_ref());
                Err(TarError::NotRegular {
                    name: shown(&name),
                    kind: kind_of(other),
                })
            }
        }
    }

    /// Records a regular file, applying any pending extension header.
    fn regular(
        &mut self,
        block: &Block,
        format: Format,
        ustar_size: u64,
        pos: u64,
    ) -> Result<u64, TarError> {
        let pending = self.pending.take();
        let name = validate_name(&effective_name(block, format, pending.as_ref()))?;
        let mode = number(block, field::MODE, pos, "mode")?;
        if mode & 0o7000 != 0 {
            return Err(TarError::Mode { name, mode });
        }
        let size = match pending {
            Some(Pending::Pax {
                size: Some(pax), ..
            }) => {
                // A zero ustar size with a PAX size is how writers store big files; any other
                // disagreement lets two tar readers see two different archives.
                if ustar_size != 0 && ustar_size != pax {
                    return Err(TarError::SizeMismatch {
                        name,
                        pax,
                        ustar: ustar_size,
                    });
                }
                pax
            }
            _ => ustar_size,
        };
        let offset = pos + BLOCK;
        let end = offset.saturating_add(size);
        if end > self.archive_len {
            return Err(TarError::Truncated {
                name,
                end,
                archive_len: self.archive_len,
            });
        }
        if self.members.len() == MAX_MEMBERS {
            return Err(TarError::TooManyMembers { cap: MAX_MEMBERS });
        }
        if !self.seen.insert(name.clone()) {
            return Err(TarError::Duplicate { name });
        }
        self.members.push(Member { name, offset, size });
        Ok(size)
    }

    /// Reads a PAX (`'x'`, `'g'`) or GNU long-name (`'L'`) header at `pos`.
    fn extension(&mut self, typeflag: u8, size: u64, pos: u64) -> Result<(), TarError> {
        match self.pending {
            Some(Pending::Pax { offset, .. }) if typeflag == b'L' => {
                return Err(extended(offset, "is followed by a GNU long name"));
            }
            Some(_) => return Err(extended(pos, "follows another extension header")),
            None => {}
        }
        let cap = if typeflag == b'L' {
            MAX_LONG_NAME_SIZE
        } else {
            MAX_PAX_SIZE
        };
        if size > cap {
            let detail = format!("its {size} bytes exceed the cap of {cap}");
            return Err(TarError::Extended {
                offset: pos,
                detail,
            });
        }
        let data_at = pos + BLOCK;
        if size > self.archive_len - data_at {
            return Err(extended(pos, "runs past the end of the archive"));
        }
        let mut data = vec![0u8; usize::try_from(size).map_err(|_| extended(pos, "too large"))?];
        self.read_at(data_at, &mut data)?;
        self.pending = match typeflag {
            b'x' => Some(pax_local(&data, pos)?),
            b'g' => {
                pax_global(&data, pos)?;
                None
            }
            _ => {
                while data.last() == Some(&0) {
                    data.pop();
                }
                Some(Pending::LongName {
                    offset: pos,
                    name: data,
                })
            }
        };
        Ok(())
    }

    /// Requires a second zero block after the one at `offset`, then only zeros up to the end
    /// (GNU tar pads archives to 10240-byte records), at most [`MAX_TRAILING_ZEROS`] of them.
    fn check_end(&mut self, offset: u64) -> Result<(), TarError> {
        let mut pos = offset + BLOCK;
        if self.archive_len.saturating_sub(pos) < BLOCK {
            return Err(TarError::MissingEnd { offset });
        }
        let len = self.archive_len - pos - BLOCK;
        if len > MAX_TRAILING_ZEROS {
            return Err(TarError::TrailingTooLong {
                offset,
                len,
                cap: MAX_TRAILING_ZEROS,
            });
        }
        let mut buf = vec![0u8; 64 * 1024];
        while pos < self.archive_len {
            let left = self.archive_len - pos;
            let want = usize::try_from(left).map_or(buf.len(), |n| n.min(buf.len()));
            self.read_at(pos, &mut buf[..want])?;
            if let Some(i) = buf[..want].iter().position(|&b| b != 0) {
                return Err(TarError::TrailingGarbage {
                    offset: pos + i as u64,
                });
            }
            pos += want as u64;
        }
        Ok(())
    }

    fn read_block(&mut self, offset: u64) -> Result<Block, TarError> {
        let mut block = [0u8; BLOCK as usize];
        self.read_at(offset, &mut block)?;
        Ok(block)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), TarError> {
        self.r
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.r.read_exact(buf))
            .map_err(|source| TarError::Io { offset, source })
    }
}

/// The member's name before validation: PAX `path`, else a GNU long name, else the header
/// (with the ustar prefix joined by `/`, which validation then refuses).
fn effective_name(block: &Block, format: Format, pending: Option<&Pending>) -> Vec<u8> {
    match pending {
        Some(Pending::Pax {
            path: Some(path), ..
        }) => return path.clone(),
        Some(Pending::LongName { name, .. }) => return name.clone(),
        _ => {}
    }
    let name = header::field_text(get(block, field::NAME));
    let prefix = header::field_text(get(block, field::PREFIX));
    if format == Format::Ustar && !prefix.is_empty() {
        [prefix, b"/", name].concat()
    } else {
        name.to_vec()
    }
}

/// Accepts only one plain path component of `[A-Za-z0-9._-]`, 1 to 255 bytes, not `.`/`..`.
fn validate_name(raw: &[u8]) -> Result<String, TarError> {
    let refuse = |reason| {
        Err(TarError::Name {
            name: shown(raw),
            reason,
        })
    };
    if raw.is_empty() {
        return refuse("it is empty");
    }
    if raw.len() > MAX_NAME_LEN {
        return refuse("it is longer than 255 bytes");
    }
    if raw.contains(&b'/') {
        return refuse("it contains '/'");
    }
    if raw == b"." || raw == b".." {
        return refuse("it names a directory");
    }
    if !raw
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return refuse("only letters, digits, '.', '_' and '-' are allowed");
    }
    // All bytes are ASCII here, so the conversion cannot fail.
    String::from_utf8(raw.to_vec()).or_else(|_| refuse("it is not ASCII"))
}

fn kind_of(typeflag: u8) -> &'static str {
    match typeflag {
        b'1' => "hard link",
        b'2' => "symbolic link",
        b'3' => "character device",
        b'4' => "block device",
        b'5' => "directory",
        b'6' => "FIFO",
        b'7' => "contiguous file",
        b'K' => "GNU long link name",
        b'S' => "GNU sparse file",
        b'D' => "GNU dump directory",
        b'M' => "GNU multi-volume continuation",
        b'V' => "GNU volume label",
        _ => "member of unknown type",
    }
}

/// Reads a PAX `'x'` header: only `path` and `size` matter to vmd; sparse keys are refused
/// because GNU tar would reinterpret the member's data.
fn pax_local(data: &[u8], offset: u64) -> Result<Pending, TarError> {
    let mut path = None;
    let mut size = None;
    for (key, value) in header::pax_records(data, offset)? {
        match key {
            b"path" => path = Some(value.to_vec()),
            b"size" => size = Some(header::pax_decimal(value, offset)?),
            _ if key.starts_with(b"GNU.sparse.") => {
                return Err(extended(offset, "declares a GNU sparse file"));
            }
            _ => {}
        }
    }
    Ok(Pending::Pax { offset, path, size })
}

/// Checks a PAX `'g'` header: POSIX applies it to every later member, so keys that would
/// change names, sizes or links are refused rather than ignored.
fn pax_global(data: &[u8], offset: u64) -> Result<(), TarError> {
    for (key, _) in header::pax_records(data, offset)? {
        if matches!(key, b"path" | b"size" | b"linkpath") || key.starts_with(b"GNU.sparse.") {
            let detail = format!("global header sets {:?}", shown(key));
            return Err(TarError::Extended { offset, detail });
        }
    }
    Ok(())
}

/// A reader over `m`'s data in the archive `r`, positioned at the member's first byte.
pub fn member_reader<R: Read + Seek>(r: R, m: &Member) -> io::Result<Slice<R>> {
    Slice::new(r, m.offset, m.size)
}

#[cfg(test)]
mod tests;
