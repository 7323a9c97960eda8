//! The text layout of a `.cert` file: a signature line, then PEM certificates. Owns the
//! framing only; it does no cryptography and gives the certificates no meaning.
//!
//! Text outside the PEM blocks after the signature line is ignored, as RFC 7468 §2 asks of
//! parsers (tools paste "subject=" or "Bag Attributes" lines there), except a second signature
//! line, which would make it ambiguous what was signed.

use base64ct::{Base64, Encoding};

use super::{printable, CertError, DigestAlgorithm, MAX_CERTIFICATES};

/// Longest signature accepted: RSA-4096 gives 512 bytes, a DER ECDSA P-384 one about 104.
const MAX_SIGNATURE: usize = 1024;

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

/// The parts of a `.cert` file, not yet checked against anything.
#[derive(Debug)]
pub(super) struct ParsedFile {
    pub(super) digest: DigestAlgorithm,
    pub(super) manifest_name: String,
    pub(super) signature: Vec<u8>,
    /// DER, in file order.
    pub(super) certificates: Vec<Vec<u8>>,
}

/// Splits `bytes` (the `.cert` file named `file`) into its parts.
pub(super) fn parse(bytes: &[u8], file: &str) -> Result<ParsedFile, CertError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let syntax = |line: usize, problem: String| CertError::Syntax {
        file: file.to_owned(),
        line,
        problem,
    };
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .enumerate()
        .map(|(i, line)| (i.saturating_add(1), line))
        .filter(|(_, line)| !line.is_empty());

    let Some((first_no, first)) = lines.next() else {
        return Err(CertError::Empty {
            file: file.to_owned(),
        });
    };
    let (digest, manifest_name, signature) =
        signature_line(first).map_err(|problem| syntax(first_no, problem))?;

    let mut certificates = Vec::new();
    // Line number of the open BEGIN and the base64 text so far.
    let mut block: Option<(usize, String)> = None;
    for (no, line) in lines {
        match block.as_mut() {
            None if line == BEGIN => block = Some((no, String::new())),
            None if line.starts_with(b"-----") => {
                return Err(syntax(no, unexpected_boundary(line)));
            }
            None if signature_line(line).is_ok() => {
                return Err(syntax(no, "a second signature line".to_owned()));
            }
            None => {}
            Some((begin, text)) if line == END => {
                let der = Base64::decode_vec(text).map_err(|e| {
                    syntax(
                        *begin,
                        format!("certificate block is not valid base64: {e}"),
                    )
                })?;
                if certificates.len() == MAX_CERTIFICATES {
                    return Err(CertError::TooManyCertificates {
                        file: file.to_owned(),
                        max: MAX_CERTIFICATES,
                    });
                }
                certificates.push(der);
                block = None;
            }
            Some(_) if line.starts_with(b"-----") => {
                return Err(syntax(no, unexpected_boundary(line)));
            }
            Some((begin, text)) => match std::str::from_utf8(line) {
                Ok(part) => text.push_str(part),
                Err(_) => {
                    return Err(syntax(*begin, "certificate block is not base64".to_owned()));
                }
            },
        }
    }
    if let Some((begin, _)) = block {
        return Err(syntax(
            begin,
            "certificate block has no END line".to_owned(),
        ));
    }
    if certificates.is_empty() {
        return Err(CertError::NoCertificate {
            file: file.to_owned(),
        });
    }
    Ok(ParsedFile {
        digest,
        manifest_name,
        signature,
        certificates,
    })
}

fn unexpected_boundary(line: &[u8]) -> String {
    let text = printable(&String::from_utf8_lossy(line));
    format!("unexpected `{text}`: only CERTIFICATE blocks belong in a .cert file")
}

/// Reads `DIGEST(name)= hex`, allowing a space before `(` and any blanks after `=`.
fn signature_line(line: &[u8]) -> Result<(DigestAlgorithm, String, Vec<u8>), String> {
    const SHAPE: &str = "expected a signature line `SHA256(<manifest>)= <hex signature>`";
    let text = std::str::from_utf8(line).map_err(|_| format!("{SHAPE}, found non-UTF-8 text"))?;
    let open = text.find('(').ok_or_else(|| SHAPE.to_owned())?;
    let close = text
        .rfind(")=")
        .filter(|&c| c > open)
        .ok_or_else(|| SHAPE.to_owned())?;
    let (Some(algorithm), Some(name), Some(hex)) = (
        text.get(..open),
        text.get(open.saturating_add(1)..close),
        text.get(close.saturating_add(2)..),
    ) else {
        return Err(SHAPE.to_owned());
    };
    let algorithm = algorithm.trim_end();
    let digest = digest_name(algorithm).ok_or_else(|| {
        format!(
            "unsupported digest `{}` (SHA1, SHA256 or SHA512 expected)",
            printable(algorithm)
        )
    })?;
    if name.is_empty() {
        return Err(format!("{SHAPE}: the manifest name is empty"));
    }
    let signature = decode_hex(hex.trim_start())?;
    Ok((digest, name.to_owned(), signature))
}

/// The spec's names, plus what `openssl dgst -sign -hex` prints (`RSA-SHA256`, `RSA-SHA2-256`)
/// since signing guides paste that output unchanged.
fn digest_name(text: &str) -> Option<DigestAlgorithm> {
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("RSA-").unwrap_or(&upper);
    match bare {
        "SHA1" => Some(DigestAlgorithm::Sha1),
        "SHA256" | "SHA2-256" => Some(DigestAlgorithm::Sha256),
        "SHA512" | "SHA2-512" => Some(DigestAlgorithm::Sha512),
        _ => None,
    }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    let digits = hex.as_bytes();
    if digits.is_empty() {
        return Err("the signature is empty".to_owned());
    }
    if digits.len() > MAX_SIGNATURE.saturating_mul(2) {
        return Err(format!(
            "the signature is over {MAX_SIGNATURE} bytes, longer than any supported key makes"
        ));
    }
    if !digits.len().is_multiple_of(2) {
        return Err("the signature has an odd number of hex digits".to_owned());
    }
    digits
        .chunks_exact(2)
        .map(|pair| match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(high), Some(low)) => Ok(high << 4 | low),
            _ => Err("the signature is not hexadecimal".to_owned()),
        })
        .collect()
}

fn hex_value(digit: u8) -> Option<u8> {
    // to_digit(16) is at most 15, so the cast cannot truncate.
    char::from(digit).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";

    fn parse_str(text: &str) -> Result<ParsedFile, CertError> {
        parse(text.as_bytes(), "p.cert")
    }

    #[test]
    fn parse_spec_layout_gives_parts() {
        let parsed = parse_str(&format!("SHA256(p.mf)= 0aFf\n{PEM}{PEM}")).unwrap();
        assert_eq!(parsed.digest, DigestAlgorithm::Sha256);
        assert_eq!(parsed.manifest_name, "p.mf");
        assert_eq!(parsed.signature, vec![0x0a, 0xff]);
        assert_eq!(parsed.certificates, vec![vec![0, 1, 2], vec![0, 1, 2]]);
    }

    #[test]
    fn parse_space_before_parenthesis_and_crlf_accepted() {
        let text = format!("SHA512 (p.mf)=  00\r\n{PEM}").replace('\n', "\r\n");
        let parsed = parse_str(&text).unwrap();
        assert_eq!(parsed.digest, DigestAlgorithm::Sha512);
        assert_eq!(parsed.manifest_name, "p.mf");
    }

    #[test]
    fn parse_openssl_digest_names_accepted() {
        for (name, digest) in [
            ("RSA-SHA2-256", DigestAlgorithm::Sha256),
            ("RSA-SHA1", DigestAlgorithm::Sha1),
            ("sha512", DigestAlgorithm::Sha512),
        ] {
            let parsed = parse_str(&format!("{name}(p.mf)= 00\n{PEM}")).unwrap();
            assert_eq!(parsed.digest, digest, "{name}");
        }
    }

    #[test]
    fn parse_name_with_parentheses_keeps_whole_name() {
        let parsed = parse_str(&format!("SHA256(my (1).mf)= 00\n{PEM}")).unwrap();
        assert_eq!(parsed.manifest_name, "my (1).mf");
    }

    #[test]
    fn parse_explanatory_text_ignored() {
        let text = format!("SHA256(p.mf)= 00\nsubject=CN = x\n{PEM}Bag Attributes\n");
        assert_eq!(parse_str(&text).unwrap().certificates.len(), 1);
    }

    #[test]
    fn parse_bad_inputs_rejected_with_reason() {
        let cases = [
            ("", "empty certificate file"),
            (" \n\r\n", "empty certificate file"),
            (
                "SHA256(p.mf)= 00\n",
                "no certificate after the signature line",
            ),
            (PEM, "line 1: expected a signature line"),
            ("MD5(p.mf)= 00\n", "unsupported digest `MD5`"),
            ("SHA256()= 00\n", "manifest name is empty"),
            ("SHA256(p.mf)=\n", "signature is empty"),
            ("SHA256(p.mf)= 0\n", "odd number of hex digits"),
            ("SHA256(p.mf)= zz\n", "not hexadecimal"),
            ("SHA256(p.mf)= 00  11\n", "not hexadecimal"),
            ("SHA256(p.mf= 00\n", "expected a signature line"),
            ("SHA256(p.mf)= \u{e9}\n", "not hexadecimal"),
        ];
        for (text, message) in cases {
            let err = parse_str(text).unwrap_err().to_string();
            assert!(err.contains(message), "{text:?}: {err}");
            assert!(err.starts_with("p.cert"), "{err}");
        }
    }

    #[test]
    fn parse_bad_blocks_rejected_with_line() {
        let sig = "SHA256(p.mf)= 00\n";
        let cases = [
            (
                format!("{sig}-----BEGIN CERTIFICATE-----\nAAEC\n"),
                "line 2: certificate block has no END",
            ),
            (
                format!("{sig}-----BEGIN CERTIFICATE-----\nAA!C\n-----END CERTIFICATE-----\n"),
                "line 2: certificate block is not valid base64",
            ),
            (
                format!("{sig}-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n"),
                "line 2: unexpected `-----BEGIN PRIVATE KEY-----`",
            ),
            (
                format!("{sig}{PEM}-----END CERTIFICATE-----\n"),
                "line 5: unexpected",
            ),
            (
                format!("{sig}-----BEGIN CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n"),
                "line 3: unexpected",
            ),
            (
                format!("{sig}{PEM}SHA1(p.mf)= 00\n"),
                "line 5: a second signature line",
            ),
            (
                format!("{sig}{}", PEM.repeat(MAX_CERTIFICATES + 1)),
                "more than 16 certificates",
            ),
        ];
        for (text, message) in cases {
            let err = parse_str(&text).unwrap_err().to_string();
            assert!(err.contains(message), "{text:?}: {err}");
        }
    }

    #[test]
    fn parse_oversized_signature_rejected() {
        let text = format!("SHA256(p.mf)= {}\n{PEM}", "00".repeat(MAX_SIGNATURE + 1));
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("over 1024 bytes"), "{err}");
    }
}
