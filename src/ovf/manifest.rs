//! The OVF manifest (`.mf`): parsing its digest lines, and hashing package files while they
//! are streamed so that a digest always covers the very bytes vmd then uses.
//!
//! Accepted lines are `ALG(name)= hex` with optional spaces before `(` and around `=`, as
//! written by VMware (`SHA1 (x)= h`), VirtualBox and ovftool (`SHA256(x)= h`). `ALG` is SHA1,
//! SHA256 or SHA512 in any case; hex is compared without case (VirtualBox ticket #17357);
//! LF and CRLF line ends are accepted and blank lines ignored.
//!
//! Policy. virt-v2v warns on unreadable lines; vmd does not, because the manifest is a
//! security artefact and a line it cannot read may be the one that covers a disk:
//! - an unreadable line, an unknown algorithm, a digest whose length does not fit its
//!   algorithm, or two entries for one file: the manifest is refused (an error);
//! - an entry for a file that is not in the package: a warning (as virt-v2v), recorded by
//!   [`Manifest::warn_unknown_files`];
//! - a package file without an entry: [`Manifest::expected`] returns `None`, and the package
//!   reader decides;
//! - a digest mismatch: always an error ([`Manifest::verify`]).
//!
//! This module does not open files or print; callers feed it bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};

use sha1::Digest;

/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_SIZE: usize = 1024 * 1024;
/// How much of an unreadable line an error message repeats.
const EXCERPT_LEN: usize = 60;

/// A digest algorithm a manifest may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DigestAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The name manifests use: `SHA1`, `SHA256` or `SHA512`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha512]
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a manifest was refused, or a file failed its check.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is {size} bytes, over the cap of {cap}")]
    TooLarge { size: usize, cap: usize },
    #[error(
        "manifest line {line} is not a digest entry ({excerpt:?}); the manifest is a security \
         artefact, so vmd refuses lines it cannot read"
    )]
    Syntax { line: usize, excerpt: String },
    #[error("manifest line {line} uses unknown digest algorithm {name:?}")]
    UnknownAlgorithm { line: usize, name: String },
    #[error("manifest line {line}: the {alg} digest for {file:?} is not {expected} hex digits")]
    DigestLength {
        line: usize,
        file: String,
        alg: DigestAlgorithm,
        expected: usize,
    },
    #[error("manifest lists {file:?} twice (lines {first} and {second})")]
    Duplicate {
        file: String,
        first: usize,
        second: usize,
    },
    #[error("manifest has no entry for {file}")]
    NotListed { file: String },
    #[error("manifest digest mismatch for {file} ({alg})")]
    Mismatch { file: String, alg: DigestAlgorithm },
}

/// A parsed manifest: one expected digest per file name.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    entries: BTreeMap<String, (DigestAlgorithm, Vec<u8>)>,
    /// Problems that the policy tolerates, for the caller to show.
    pub warnings: Vec<String>,
}

/// Parses a manifest under the policy in the module documentation.
pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
    if text.len() > MAX_MANIFEST_SIZE {
        return Err(ManifestError::TooLarge {
            size: text.len(),
            cap: MAX_MANIFEST_SIZE,
        });
    }
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let mut entries = BTreeMap::new();
    let mut lines_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let syntax = || ManifestError::Syntax {
            line,
            excerpt: excerpt(raw),
        };
        let text = std::str::from_utf8(raw).map_err(|_| syntax())?;
        if text.trim().is_empty() {
            continue;
        }
        let (alg_name, file, hex) = split_entry(text).ok_or_else(syntax)?;
        let alg = DigestAlgorithm::from_name(alg_name).ok_or_else(|| {
            ManifestError::UnknownAlgorithm {
                line,
                name: alg_name.to_string(),
            }
        })?;
        let digest = decode_hex(hex)
            .filter(|d| d.len() == alg.digest_len())
            .ok_or_else(|| {
                let expected = alg.digest_len() * 2;
                ManifestError::DigestLength {
                    line,
                    file: file.to_string(),
                    alg,
                    expected,
                }
            })?;
        if let Some(&first) = lines_of.get(file) {
            return Err(ManifestError::Duplicate {
                file: file.to_string(),
                first,
                second: line,
            });
        }
        lines_of.insert(file.to_string(), line);
        entries.insert(file.to_string(), (alg, digest));
    }
    Ok(Manifest {
        entries,
        warnings: Vec::new(),
    })
}

/// Splits `ALG(name)= hex` (spaces allowed before `(` and around `=`) into its parts.
fn split_entry(line: &str) -> Option<(&str, &str, &str)> {
    let line = line.trim();
    let open = line.find('(')?;
    let eq = line.rfind('=').filter(|&eq| eq > open)?;
    let alg = line.get(..open)?.trim_end();
    let file = line.get(open + 1..eq)?.trim_end().strip_suffix(')')?;
    let hex = line.get(eq + 1..)?.trim_start();
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (word(alg) && !file.is_empty() && word(hex)).then_some((alg, file, hex))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok())
        .collect()
}

fn excerpt(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(EXCERPT_LEN)]).into_owned()
}

impl Manifest {
    /// The algorithm and digest the manifest expects for `file`, if it lists it.
    pub fn expected(&self, file: &str) -> Option<(DigestAlgorithm, &[u8])> {
        self.entries
            .get(file)
            .map(|(alg, digest)| (*alg, digest.as_slice()))
    }

    /// The file names the manifest lists, sorted.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Records a warning for every listed file for which `in_package` is false.
    pub fn warn_unknown_files(&mut self, in_package: impl Fn(&str) -> bool) {
        for file in self.entries.keys().filter(|f| !in_package(f)) {
            self.warnings.push(format!(
                "manifest lists {file:?}, which is not in the package"
            ));
        }
    }

    /// Checks `computed` (from a [`Hasher`] of the expected algorithm) against the entry for
    /// `file`; a file the manifest does not list is an error here.
    pub fn verify(&self, file: &str, computed: &[u8]) -> Result<(), ManifestError> {
        let (alg, expected) = self
            .expected(file)
            .ok_or_else(|| ManifestError::NotListed {
                file: file.to_string(),
            })?;
        if expected == computed {
            Ok(())
        } else {
            Err(ManifestError::Mismatch {
                file: file.to_string(),
                alg,
            })
        }
    }
}

/// A streaming digest of one of the manifest algorithms.
#[derive(Clone)]
pub struct Hasher(State);

#[derive(Clone)]
enum State {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh digest of algorithm `alg`.
    pub fn new(alg: DigestAlgorithm) -> Self {
        Self(match alg {
            DigestAlgorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
            DigestAlgorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        })
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> DigestAlgorithm {
        match self.0 {
            State::Sha1(_) => DigestAlgorithm::Sha1,
            State::Sha256(_) => DigestAlgorithm::Sha256,
            State::Sha512(_) => DigestAlgorithm::Sha512,
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Vec<u8> {
        match self.0 {
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
            State::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Hasher").field(&self.algorithm()).finish()
    }
}

/// A reader that hashes every byte read through it: the consumer of the bytes and the digest
/// see the same stream, so nothing is re-read after verification.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`, hashing with `alg`.
    pub fn new(inner: R, alg: DigestAlgorithm) -> Self {
        Self {
            inner,
            hasher: Hasher::new(alg),
            bytes: 0,
        }
    }
}

impl<R> HashingReader<R> {
    /// How many bytes have been read (and hashed) so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The digest of the bytes read so far, and the inner reader.
    pub fn finish(self) -> (Vec<u8>, R) {
        (self.hasher.finish(), self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1_ABC: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";
    const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const SHA512_ABC: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                              2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    fn digest(alg: DigestAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut r = HashingReader::new(data, alg);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.bytes_read(), data.len() as u64);
        r.finish().0
    }

    fn parse_err(text: &str) -> ManifestError {
        parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn parse_both_spellings_crlf_and_blank_lines_are_accepted() {
        let text = format!(
            "SHA256(vm.ovf)= {SHA256_ABC}\r\n\r\nSHA1 (disk1.vmdk) = {}\n  \nsha512(d2)={SHA512_ABC}",
            SHA1_ABC.to_uppercase()
        );
        let mf = parse(text.as_bytes()).unwrap();
        assert_eq!(
            mf.files().collect::<Vec<_>>(),
            ["d2", "disk1.vmdk", "vm.ovf"]
        );
        assert_eq!(
            mf.expected("vm.ovf").map(|(alg, d)| (alg, d.len())),
            Some((DigestAlgorithm::Sha256, 32))
        );
        mf.verify("vm.ovf", &digest(DigestAlgorithm::Sha256, b"abc"))
            .unwrap();
        mf.verify("disk1.vmdk", &digest(DigestAlgorithm::Sha1, b"abc"))
            .unwrap();
        mf.verify("d2", &digest(DigestAlgorithm::Sha512, b"abc"))
            .unwrap();
    }

    #[test]
    fn verify_wrong_digest_names_file_and_algorithm() {
        let mf = parse(format!("SHA256(disk1.vmdk)= {SHA256_ABC}\n").as_bytes()).unwrap();
        let err = mf
            .verify("disk1.vmdk", &digest(DigestAlgorithm::Sha256, b"abd"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest digest mismatch for disk1.vmdk (SHA256)"
        );
    }

    #[test]
    fn verify_unlisted_file_is_an_error() {
        let mf = parse(format!("SHA1(a)= {SHA1_ABC}\n").as_bytes()).unwrap();
        assert!(mf.expected("b").is_none());
        let err = mf.verify("b", &[0; 20]).unwrap_err();
        assert_eq!(err.to_string(), "manifest has no entry for b");
    }

    #[test]
    fn parse_garbage_line_is_rejected_with_its_line_number() {
        let err = parse_err(&format!("SHA1(a)= {SHA1_ABC}\n\nthis is not a digest\n"));
        assert!(matches!(err, ManifestError::Syntax { line: 3, .. }));
        assert!(err
            .to_string()
            .starts_with("manifest line 3 is not a digest entry"));
        assert!(err.to_string().contains("security artefact"));
    }

    #[test]
    fn parse_malformed_entries_are_rejected() {
        let lines = [
            format!("SHA1 a= {SHA1_ABC}"),
            format!("SHA1(a) {SHA1_ABC}"),
            format!("SHA1()= {SHA1_ABC}"),
            format!("(a)= {SHA1_ABC}"),
            "SHA1(a)=".to_string(),
            format!("SHA1(a)= {} {}", &SHA1_ABC[..20], &SHA1_ABC[20..]),
            format!("SHA1(a)= {SHA1_ABC} trailing"),
        ];
        for line in lines {
            let err = parse_err(&line);
            assert!(
                matches!(err, ManifestError::Syntax { line: 1, .. }),
                "{line}: {err:?}"
            );
        }
    }

    #[test]
    fn parse_non_utf8_line_is_rejected() {
        let err = parse(b"SHA1(\xff)= 00\n").unwrap_err();
        assert!(matches!(err, ManifestError::Syntax { line: 1, .. }));
    }

    #[test]
    fn parse_two_entries_for_one_file_are_rejected() {
        let err = parse_err(&format!("SHA1(a)= {SHA1_ABC}\nSHA256(a)= {SHA256_ABC}\n"));
        assert_eq!(
            err.to_string(),
            "manifest lists \"a\" twice (lines 1 and 2)"
        );
    }

    #[test]
    fn parse_digest_length_not_matching_algorithm_is_rejected() {
        let err = parse_err(&format!("SHA256(disk1.vmdk)= {SHA1_ABC}\n"));
        assert_eq!(
            err.to_string(),
            "manifest line 1: the SHA256 digest for \"disk1.vmdk\" is not 64 hex digits"
        );
        let odd = parse_err(&format!("SHA1(a)= {SHA1_ABC}0\n"));
        assert!(matches!(odd, ManifestError::DigestLength { .. }));
        let not_hex = parse_err(&format!("SHA1(a)= {}zz\n", &SHA1_ABC[..38]));
        assert!(matches!(not_hex, ManifestError::DigestLength { .. }));
    }

    #[test]
    fn parse_unknown_algorithm_is_rejected() {
        let err = parse_err("MD5(a)= 900150983cd24fb0d6963f7d28e17f72\n");
        assert_eq!(
            err.to_string(),
            "manifest line 1 uses unknown digest algorithm \"MD5\""
        );
    }

    #[test]
    fn parse_manifest_over_cap_is_rejected() {
        let text = vec![b'\n'; MAX_MANIFEST_SIZE + 1];
        assert!(matches!(parse(&text), Err(ManifestError::TooLarge { .. })));
    }

    #[test]
    fn warn_unknown_files_warns_for_entries_not_in_package() {
        let mut mf =
            parse(format!("SHA1(a)= {SHA1_ABC}\nSHA1(gone)= {SHA1_ABC}\n").as_bytes()).unwrap();
        mf.warn_unknown_files(|f| f == "a");
        assert_eq!(
            mf.warnings,
            ["manifest lists \"gone\", which is not in the package"]
        );
    }

    #[test]
    fn hasher_fed_in_pieces_matches_known_digests() {
        for (alg, want) in [
            (DigestAlgorithm::Sha1, SHA1_ABC),
            (DigestAlgorithm::Sha256, SHA256_ABC),
            (DigestAlgorithm::Sha512, SHA512_ABC),
        ] {
            let mut h = Hasher::new(alg);
            h.update(b"a");
            h.update(b"bc");
            assert_eq!(h.algorithm(), alg);
            assert_eq!(Some(h.finish()), decode_hex(want), "{alg}");
        }
    }
}
