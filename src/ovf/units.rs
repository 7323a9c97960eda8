//! Sizes and their units: OVF allocation units (`ovf:capacityAllocationUnits`,
//! `rasd:AllocationUnits`), capacity × units, and the human sizes the CLI takes
//! (`--data-disk 10G`). Pure arithmetic, every step checked; no I/O.
//!
//! Allocation units follow DSP0004's programmatic units, restricted to what storage needs:
//! `byte`, then any number of `* N` or `* B^E` factors with `B` 2 or 10 (`byte * 2^20`,
//! `byte*2^30`, `byte * 1024`, `byte * 10^3`), whitespace anywhere between tokens. Vendors
//! also write words (`KiloBytes`, `MegaBytes`, `GigaBytes` from VirtualBox; `KB`, `MB`, `GB`
//! elsewhere); these are binary multiples, which is what those tools mean. Bits, division and
//! negative exponents are refused: a disk is never a fraction of a byte.

/// Longest units string or size accepted; bounds the work on hostile attributes.
const MAX_INPUT_LEN: usize = 256;

/// Why a unit, value or size was refused. Every message quotes the input.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitsError {
    #[error("allocation units {input:?} are invalid: {reason}")]
    Syntax { input: String, reason: &'static str },
    #[error("allocation units {input:?} are not supported: {reason}")]
    Unsupported { input: String, reason: &'static str },
    #[error("allocation units {input:?} overflow 64 bits")]
    Overflow { input: String },
    #[error("value {value:?} is not an integer from 0 to 2^64-1")]
    Value { value: String },
    #[error("value {value} in units {units:?} overflows 64 bits")]
    ValueOverflow { value: u64, units: String },
    #[error("size {input:?} is invalid: {reason}")]
    Size { input: String, reason: &'static str },
    #[error("size {input:?} overflows 64 bits")]
    SizeOverflow { input: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Number(&'a str),
    Star,
    Caret,
}

/// Splits units into words, numbers, `*` and `^`, skipping whitespace.
fn tokens(s: &str) -> Result<Vec<Token<'_>>, UnitsError> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let run = |pred: fn(&u8) -> bool| i + bytes[i..].iter().take_while(|c| pred(c)).count();
        let (token, next) = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'*' => (Token::Star, i + 1),
            b'^' => (Token::Caret, i + 1),
            b'/' => return Err(unsupported(s, "division is not supported")),
            _ if b.is_ascii_alphabetic() => {
                let end = run(u8::is_ascii_alphabetic);
                (Token::Word(&s[i..end]), end)
            }
            _ if b.is_ascii_digit() => {
                let end = run(u8::is_ascii_digit);
                (Token::Number(&s[i..end]), end)
            }
            _ => return Err(syntax(s, "unexpected character")),
        };
        out.push(token);
        i = next;
    }
    Ok(out)
}

/// The multiplier a unit word stands for, or why it is refused (`s` is the whole input).
fn word_multiplier(word: &str, s: &str) -> Result<u64, UnitsError> {
    let word = word.to_ascii_lowercase();
    Ok(match word.as_str() {
        "byte" | "bytes" => 1,
        "kilobyte" | "kilobytes" | "kb" | "kib" => 1 << 10,
        "megabyte" | "megabytes" | "mb" | "mib" => 1 << 20,
        "gigabyte" | "gigabytes" | "gb" | "gib" => 1 << 30,
        "terabyte" | "terabytes" | "tb" | "tib" => 1 << 40,
        "bit" | "bits" => return Err(unsupported(s, "bits are not a storage unit")),
        _ => return Err(syntax(s, "unknown unit")),
    })
}

/// Parses allocation units into a byte multiplier (`byte * 2^20` → 1048576).
pub fn parse_units(s: &str) -> Result<u64, UnitsError> {
    let syntax = |reason| syntax(s, reason);
    let overflow = || UnitsError::Overflow { input: shown(s) };
    if s.len() > MAX_INPUT_LEN {
        return Err(syntax("it is too long"));
    }
    let tokens = tokens(s)?;
    let mut rest = tokens.as_slice();
    let mut multiplier = match rest {
        [] => return Err(syntax("they are empty")),
        [Token::Word(word), tail @ ..] => {
            rest = tail;
            word_multiplier(word, s)?
        }
        _ => return Err(syntax("they must start with a unit such as byte")),
    };
    while !rest.is_empty() {
        let factor = match rest {
            [Token::Star, Token::Number(base), Token::Caret, Token::Number(exp), tail @ ..] => {
                rest = tail;
                let base = decimal(base).ok_or_else(overflow)?;
                if base != 2 && base != 10 {
                    return Err(syntax("an exponent's base must be 2 or 10"));
                }
                let exp = decimal(exp)
                    .and_then(|e| u32::try_from(e).ok())
                    .ok_or_else(overflow)?;
                base.checked_pow(exp).ok_or_else(overflow)?
            }
            [Token::Star, Token::Number(n), tail @ ..] => {
                rest = tail;
                match decimal(n).ok_or_else(overflow)? {
                    0 => return Err(syntax("a factor is zero")),
                    n => n,
                }
            }
            _ => return Err(syntax("expected '* N' or '* 2^E' after the unit")),
        };
        multiplier = multiplier.checked_mul(factor).ok_or_else(overflow)?;
    }
    Ok(multiplier)
}

/// A run of ASCII digits as a `u64`, or `None` on overflow or anything else.
fn decimal(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn syntax(input: &str, reason: &'static str) -> UnitsError {
    UnitsError::Syntax {
        input: shown(input),
        reason,
    }
}

fn unsupported(input: &str, reason: &'static str) -> UnitsError {
    UnitsError::Unsupported {
        input: shown(input),
        reason,
    }
}

/// An input quoted in an error, cut short so a hostile attribute cannot flood a message.
fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Bytes in `value` of `units` (`ovf:capacity` × `ovf:capacityAllocationUnits`); no units
/// means bytes. `value` is a decimal integer with optional surrounding whitespace.
pub fn bytes(value: &str, units: Option<&str>) -> Result<u64, UnitsError> {
    let n = decimal(value.trim()).ok_or_else(|| UnitsError::Value {
        value: shown(value),
    })?;
    let Some(units) = units else {
        return Ok(n);
    };
    let multiplier = parse_units(units)?;
    n.checked_mul(multiplier)
        .ok_or_else(|| UnitsError::ValueOverflow {
            value: n,
            units: shown(units),
        })
}

/// Parses a human size for the CLI: a decimal integer with an optional binary suffix `K`,
/// `M`, `G`, `T`, `P` (or `KiB` … `PiB`, any case) or `B`. `10G` is 10 GiB. `GB` and the like
/// are refused as ambiguous between 10^9 and 2^30.
pub fn parse_size(s: &str) -> Result<u64, UnitsError> {
    let bad = |reason| UnitsError::Size {
        input: shown(s),
        reason,
    };
    if s.len() > MAX_INPUT_LEN {
        return Err(bad("it is too long"));
    }
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    if digits.is_empty() {
        return Err(bad("it must start with a whole number"));
    }
    let n = decimal(digits).ok_or_else(|| UnitsError::SizeOverflow { input: shown(s) })?;
    let suffix = suffix.trim_start().to_ascii_lowercase();
    let shift = match suffix.as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        "p" | "pib" => 50,
        "kb" | "mb" | "gb" | "tb" | "pb" => {
            return Err(bad(
                "decimal or binary? write K, M, G, T (binary) or KiB … TiB",
            ));
        }
        _ => {
            return Err(bad(
                "the unit must be one of B, K, M, G, T, P (binary multiples)",
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| UnitsError::SizeOverflow { input: shown(s) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_units_accepts_programmatic_units_and_vendor_words() {
        let cases = [
            ("byte", 1),
            ("byte * 2^20", 1 << 20),
            ("byte*2^30", 1 << 30),
            ("  byte  *  2 ^ 10 ", 1 << 10),
            ("byte * 1024", 1024),
            ("byte * 10^3", 1000),
            ("byte * 2^10 * 2^10", 1 << 20),
            ("byte * 2^63", 1 << 63),
            ("bytes", 1),
            ("KiloBytes", 1 << 10),
            ("MegaBytes", 1 << 20),
            ("GigaBytes", 1 << 30),
            ("KB", 1 << 10),
            ("MB", 1 << 20),
            ("GB", 1 << 30),
        ];
        for (input, want) in cases {
            assert_eq!(parse_units(input), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn parse_units_rejects_bits_and_division_as_unsupported() {
        for input in ["bit", "bits * 2^3", "byte / 8"] {
            assert!(
                matches!(parse_units(input), Err(UnitsError::Unsupported { .. })),
                "{input}"
            );
        }
        assert_eq!(
            parse_units("bit").unwrap_err().to_string(),
            "allocation units \"bit\" are not supported: bits are not a storage unit"
        );
    }

    #[test]
    fn parse_units_rejects_overflowing_factors() {
        for input in [
            "byte * 2^64",
            "byte * 2^1000",
            "byte * 2^99999999999999999999",
            "byte * 99999999999999999999",
            "GigaBytes * 2^40",
            "byte * 2^32 * 2^32",
        ] {
            let err = parse_units(input).unwrap_err();
            assert_eq!(
                err,
                UnitsError::Overflow {
                    input: input.to_string()
                },
                "{input}"
            );
        }
        assert_eq!(
            parse_units("byte * 2^64").unwrap_err().to_string(),
            "allocation units \"byte * 2^64\" overflow 64 bits"
        );
    }

    #[test]
    fn parse_units_rejects_malformed_input() {
        let long = "byte".to_string() + &" ".repeat(MAX_INPUT_LEN);
        let inputs = [
            "",
            "   ",
            "byte *",
            "byte 2",
            "byte * 3^2",
            "byte * 2^-1",
            "byte * 0",
            "byte ** 2",
            "furlongs",
            "2^20",
            "* 2^20",
            "byte * 2^",
            "byte * 1.5",
            "byte,",
            "bytë",
            &long,
        ];
        for input in inputs {
            assert!(
                matches!(parse_units(input), Err(UnitsError::Syntax { .. })),
                "{input:?}"
            );
        }
    }

    #[test]
    fn bytes_multiplies_capacity_by_units() {
        assert_eq!(bytes("10", Some("byte * 2^30")), Ok(10 << 30));
        assert_eq!(bytes(" 42 ", Some("MegaBytes")), Ok(42 << 20));
        assert_eq!(bytes("4096", None), Ok(4096));
        assert_eq!(bytes("18446744073709551615", None), Ok(u64::MAX));
        assert_eq!(bytes("0", Some("byte * 2^40")), Ok(0));
    }

    #[test]
    fn bytes_rejects_non_integers_and_overflow() {
        for value in [
            "-1",
            "1.5",
            "1e9",
            "",
            "abc",
            "0x10",
            "+5",
            "18446744073709551616",
        ] {
            let err = bytes(value, None).unwrap_err();
            assert_eq!(
                err,
                UnitsError::Value {
                    value: value.to_string()
                },
                "{value:?}"
            );
        }
        let err = bytes("18446744073709551615", Some("byte * 1024")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "value 18446744073709551615 in units \"byte * 1024\" overflows 64 bits"
        );
        assert!(matches!(
            bytes("1", Some("byte * 2^64")),
            Err(UnitsError::Overflow { .. })
        ));
        assert!(matches!(
            bytes("16", Some("byte * 2^60")),
            Err(UnitsError::ValueOverflow { .. })
        ));
    }

    #[test]
    fn parse_size_accepts_binary_suffixes() {
        let cases = [
            ("512", 512),
            ("0", 0),
            ("64M", 64 << 20),
            ("64MiB", 64 << 20),
            ("64 mib", 64 << 20),
            ("10G", 10 << 30),
            ("10g", 10 << 30),
            ("1T", 1 << 40),
            ("2P", 2 << 50),
            ("4096B", 4096),
            ("8K", 8192),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn parse_size_rejects_ambiguous_and_malformed_sizes() {
        let err = parse_size("10GB").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("size \"10GB\" is invalid: decimal or binary?"));
        for input in ["", "G", "-1G", "1.5G", "10X", "10 G B", "0x10", "+1G"] {
            assert!(
                matches!(parse_size(input), Err(UnitsError::Size { .. })),
                "{input:?}"
            );
        }
    }

    #[test]
    fn parse_size_rejects_overflow() {
        for input in ["18446744073709551615K", "16384P", "99999999999999999999"] {
            let err = parse_size(input).unwrap_err();
            assert_eq!(
                err,
                UnitsError::SizeOverflow {
                    input: input.to_string()
                },
                "{input}"
            );
        }
        assert_eq!(parse_size("16383P"), Ok(16383 << 50));
    }
}
