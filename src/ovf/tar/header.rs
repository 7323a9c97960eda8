//! Byte-level decoding of tar header blocks and PAX records: field layout, numbers,
//! checksums, magic. It decides nothing about which members are allowed (that is the walker's
//! job in `tar.rs`) and reads no input itself.

use super::TarError;

/// Size of a tar block; headers and data padding are aligned to it.
pub const BLOCK: u64 = 512;

/// One header block.
pub type Block = [u8; BLOCK as usize];

/// One PAX record: key and value bytes.
pub type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// Header layout of the fields vmd reads: (offset, length).
pub mod field {
    pub const NAME: (usize, usize) = (0, 100);
    pub const MODE: (usize, usize) = (100, 8);
    pub const SIZE: (usize, usize) = (124, 12);
    pub const CHKSUM: (usize, usize) = (148, 8);
    pub const TYPEFLAG: usize = 156;
    pub const MAGIC: (usize, usize) = (257, 8);
    pub const PREFIX: (usize, usize) = (345, 155);
}

/// The two header dialects accepted; they differ in what the prefix area holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ustar,
    Gnu,
}

pub fn get(block: &Block, (at, len): (usize, usize)) -> &[u8] {
    &block[at..at + len]
}

pub fn extended(offset: u64, detail: &str) -> TarError {
    TarError::Extended {
        offset,
        detail: detail.to_string(),
    }
}

/// A hostile byte string made safe to quote: lossy UTF-8, cut to 300 bytes; `{:?}` in the
/// error messages escapes control characters.
pub fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(300)]).into_owned()
}

/// Parses a numeric header field: octal with NUL/space terminators (leading spaces allowed,
/// empty means 0), or GNU base-256 when the high bit of the first byte is set.
pub fn parse_number(field: &[u8]) -> Option<u64> {
    let (&first, rest) = field.split_first()?;
    if first & 0x80 != 0 {
        if first == 0xff {
            return None; // negative base-256
        }
        let high = u64::from(first & 0x7f);
        return rest.iter().try_fold(high, |acc, &b| {
            acc.checked_mul(256)?.checked_add(u64::from(b))
        });
    }
    let start = field.iter().position(|&b| b != b' ').unwrap_or(field.len());
    let digits = &field[start..];
    let end = digits
        .iter()
        .position(|&b| !(b'0'..=b'7').contains(&b))
        .unwrap_or(digits.len());
    if !digits[end..].iter().all(|&b| b == 0 || b == b' ') {
        return None;
    }
    digits[..end].iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(8)?.checked_add(u64::from(b - b'0'))
    })
}

/// The numeric field at `at`, or an error naming the field and the header's offset.
pub fn number(
    block: &Block,
    at: (usize, usize),
    offset: u64,
    field: &'static str,
) -> Result<u64, TarError> {
    parse_number(get(block, at)).ok_or(TarError::Number { offset, field })
}

/// Accepts the unsigned sum (POSIX) or the signed one some old writers used, as GNU tar does.
pub fn verify_checksum(block: &Block, offset: u64) -> Result<(), TarError> {
    let stored = number(block, field::CHKSUM, offset, "checksum")?;
    let (at, len) = field::CHKSUM;
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in block.iter().enumerate() {
        let b = if (at..at + len).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(TarError::Checksum { offset })
    }
}

/// POSIX ustar (`"ustar\0" "00"`) or GNU (`"ustar " " \0"`); old v7 and others are refused.
pub fn header_format(block: &Block, offset: u64) -> Result<Format, TarError> {
    match get(block, field::MAGIC) {
        b"ustar\x0000" => Ok(Format::Ustar),
        b"ustar  \0" => Ok(Format::Gnu),
        _ => Err(TarError::Format { offset }),
    }
}

/// A NUL-terminated text field. Bytes after the terminator are kept (readers disagree on
/// them), so that name validation refuses the field.
pub fn field_text(field: &[u8]) -> &[u8] {
    let Some(end) = field.iter().position(|&b| b == 0) else {
        return field;
    };
    match field.iter().rposition(|&b| b != 0) {
        Some(last) if last > end => &field[..=last],
        _ => &field[..end],
    }
}

/// Splits PAX data into `"<len> <key>=<value>\n"` records, refusing anything malformed and
/// any key given twice (readers disagree on which occurrence wins). A NUL tail is allowed.
pub fn pax_records(data: &[u8], offset: u64) -> Result<Vec<PaxRecord<'_>>, TarError> {
    let bad = |detail: &str| extended(offset, detail);
    let mut records: Vec<PaxRecord<'_>> = Vec::new();
    let mut rest = data;
    while !rest.iter().all(|&b| b == 0) {
        let space = rest.iter().take(21).position(|&b| b == b' ');
        let space = space.ok_or_else(|| bad("a record has no length"))?;
        let len = pax_decimal(&rest[..space], offset)?;
        let len = usize::try_from(len).map_err(|_| bad("a record length is too large"))?;
        if len <= space + 1 || len > rest.len() {
            return Err(bad("a record length does not fit the header"));
        }
        let (record, tail) = rest.split_at(len);
        let body = record[space + 1..]
            .strip_suffix(b"\n")
            .ok_or_else(|| bad("a record does not end with a newline"))?;
        let eq = body.iter().position(|&b| b == b'=');
        let eq = eq
            .filter(|&eq| eq > 0)
            .ok_or_else(|| bad("a record has no key"))?;
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        if records.iter().any(|(k, _)| *k == key) {
            let detail = format!("key {:?} appears twice", shown(key));
            return Err(TarError::Extended { offset, detail });
        }
        records.push((key, value));
        rest = tail;
    }
    Ok(records)
}

/// A PAX decimal: digits only, no sign, overflow refused.
pub fn pax_decimal(digits: &[u8], offset: u64) -> Result<u64, TarError> {
    let bad = || extended(offset, "a number is not a decimal integer");
    if digits.is_empty() || digits.len() > 20 {
        return Err(bad());
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(bad)
    })
}
