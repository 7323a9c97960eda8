//! Verification of an OVF package's `.cert` file (DSP0243, VMware "OVF package
//! signing"). Owns the `.cert` layout, the signature over the manifest and the report of what
//! the certificate is worth; it must not read files, look at the manifest's entries (the
//! manifest module checks those) or consult any system trust store.
//!
//! A `.cert` file is one signature line naming the manifest, then the signer's X.509
//! certificate in PEM, then optionally the rest of its chain:
//!
//! ```text
//! SHA256(package.mf)= 5f0c...e1
//! -----BEGIN CERTIFICATE-----
//! ...
//! -----END CERTIFICATE-----
//! ```
//!
//! # Policy
//!
//! Rejected (an error, the import stops):
//! - a file that is empty, over [`MAX_CERT_FILE`] bytes, or not laid out as above: no
//!   signature line first, a digest other than SHA1, SHA256 or SHA512, a signature that is
//!   not hex, no certificate, a PEM block that is not a certificate or does not end, more
//!   than [`MAX_CERTIFICATES`] certificates, a certificate that is not valid DER X.509;
//! - a signature line that names any file but the package's manifest;
//! - a first certificate whose key vmd cannot use (only RSA of 1024 to 4096 bits and ECDSA
//!   P-256/P-384 are supported; RSA below 1024 bits is trivially forgeable);
//! - a signature that does not verify with the first certificate's key over the exact bytes
//!   of the manifest with the named digest (RSA PKCS#1 v1.5, or DER ECDSA).
//!
//! A `.cert` without a `.mf` is also a reject, but the package reader decides it, since only
//! it knows which members exist; [`verify`] always has a manifest to check against.
//!
//! Reported, not rejected: an expired, not yet valid or self-signed certificate, a SHA1
//! digest and an RSA key shorter than 2048 bits. [`CertReport::trusted`] is true only when
//! nothing of that kind applies and the certificates lead to a trust anchor the caller gave
//! (see [`verify`]), so `vmd show` never calls trusted a package that is not. vmd has no trust
//! store of its own: with no anchors every package is at best "signed, untrusted".
//!
//! The `.mf` covers every file but itself and the `.cert`; this module only proves that the
//! manifest bytes it was given are the ones the key signed.

mod chain;
mod file;
mod key;

#[cfg(test)]
mod openssl_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::SystemTime;

use self::chain::CertInfo;
use self::key::{Hash, PublicKey};
use super::manifest::DigestAlgorithm;

/// The largest `.cert` file accepted: a certificate is a few KiB, a long chain some tens.
pub const MAX_CERT_FILE: usize = 1024 * 1024;

/// The most certificates (signer and chain) one `.cert` file may hold.
pub const MAX_CERTIFICATES: usize = 16;

/// The kind of the signer's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KeyKind {
    /// RSA with a modulus of this many bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// ECDSA over NIST P-256.
    EcdsaP256,
    /// ECDSA over NIST P-384.
    EcdsaP384,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::EcdsaP384 => f.write_str("ECDSA P-384"),
        }
    }
}

/// Something that keeps a verified signature from being trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Weakness {
    /// The manifest was signed over SHA1, for which collisions can be computed.
    Sha1Digest,
    /// The signer's RSA key is shorter than 2048 bits.
    ShortRsaKey {
        /// Modulus size.
        bits: usize,
    },
}

impl fmt::Display for Weakness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha1Digest => f.write_str("manifest signed with SHA1"),
            Self::ShortRsaKey { bits } => write!(f, "rsa key of {bits} bits (under 2048)"),
        }
    }
}

/// What a verified `.cert` says about its signer. Produced only when the signature verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertReport {
    /// Signer's subject, RFC 4514, with control and bidi characters escaped.
    pub subject: String,
    /// Signer's issuer, same form as `subject`.
    pub issuer: String,
    /// Start of the signer's validity, RFC 3339 (`2024-01-31T12:00:00Z`).
    pub not_before: String,
    /// End of the signer's validity, RFC 3339.
    pub not_after: String,
    /// The signer's issuer is itself: nobody else vouches for the key.
    pub self_signed: bool,
    /// `now` is after `not_after`.
    pub expired: bool,
    /// `now` is before `not_before`.
    pub not_yet_valid: bool,
    /// Digest named on the signature line (`SHA1` is also listed in `weaknesses`).
    pub digest: DigestAlgorithm,
    /// The signer's key.
    pub key: KeyKind,
    /// Certificates in the file, the signer's included.
    pub chain_len: usize,
    /// Weak algorithms or key sizes found; any of them makes `trusted` false.
    pub weaknesses: Vec<Weakness>,
    /// The signer chains to a caller-given trust anchor and nothing above applies.
    pub trusted: bool,
}

/// Why a `.cert` file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file holds nothing but white space.
    #[error("{file}: empty certificate file")]
    Empty {
        /// The `.cert` file.
        file: String,
    },
    /// The file is larger than [`MAX_CERT_FILE`].
    #[error("{file}: {size} bytes is over the {max}-byte limit for a certificate file")]
    TooLarge {
        /// The `.cert` file.
        file: String,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The first non-blank line is not `DIGEST(manifest)= hex`.
    #[error("{file}: line {line}: {problem}")]
    Syntax {
        /// The `.cert` file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The signature line names a file other than the package manifest.
    #[error("{file}: signature is over `{named}`, not the package manifest `{manifest}`")]
    WrongManifest {
        /// The `.cert` file.
        file: String,
        /// The name on the signature line (escaped).
        named: String,
        /// The manifest the package has.
        manifest: String,
    },
    /// No PEM certificate follows the signature line.
    #[error("{file}: no certificate after the signature line")]
    NoCertificate {
        /// The `.cert` file.
        file: String,
    },
    /// More than [`MAX_CERTIFICATES`] certificates.
    #[error("{file}: more than {max} certificates")]
    TooManyCertificates {
        /// The `.cert` file.
        file: String,
        /// The limit.
        max: usize,
    },
    /// A PEM block decodes but is not DER X.509.
    #[error("{file}: certificate {index} is not a valid X.509 certificate")]
    BadCertificate {
        /// The `.cert` file.
        file: String,
        /// 1-based position in the file.
        index: usize,
        /// The DER decoding error.
        #[source]
        source: der::Error,
    },
    /// The signer's public key is of a kind or size vmd does not verify.
    #[error("{file}: signer key: {problem}")]
    UnsupportedKey {
        /// The `.cert` file.
        file: String,
        /// Which kind or size, and why.
        problem: String,
    },
    /// The signature does not verify with the first certificate's key.
    #[error("{file}: certificate signature does not verify for {manifest}")]
    BadSignature {
        /// The `.cert` file.
        file: String,
        /// The manifest it should sign.
        manifest: String,
    },
    /// A caller-given trust anchor is not DER X.509 (a configuration error, not the package's).
    #[error("trust anchor {index} is not a valid DER X.509 certificate")]
    BadAnchor {
        /// 1-based position in the anchor list.
        index: usize,
        /// The DER decoding error.
        #[source]
        source: der::Error,
    },
}

/// Checks `cert_file` (named `cert_file_name` in the package) against the exact bytes of the
/// package manifest `manifest` (named `manifest_name`), at time `now`.
///
/// `anchors` are DER certificates the caller trusts. `trusted` is true when the signer's
/// certificate is one of them, or when each certificate from the signer up is signed (RSA
/// PKCS#1 v1.5 or ECDSA over SHA-2) by the next one in the file, with the issuer name matching,
/// until one is signed by an anchor; each certificate on the way must be within its validity
/// at `now`, and each issuer taken from the file must be a CA (basicConstraints) allowed to
/// sign certificates (keyUsage, when present). Path length limits, name constraints, policies
/// and revocation are not checked.
///
/// See the module documentation for what is rejected and what is only reported.
pub fn verify(
    cert_file: &[u8],
    cert_file_name: &str,
    manifest: &[u8],
    manifest_name: &str,
    now: SystemTime,
    anchors: &[Vec<u8>],
) -> Result<CertReport, CertError> {
    let file = cert_file_name.to_owned();
    if cert_file.len() > MAX_CERT_FILE {
        return Err(CertError::TooLarge {
            file,
            size: cert_file.len(),
            max: MAX_CERT_FILE,
        });
    }
    let parsed = file::parse(cert_file, cert_file_name)?;
    if parsed.manifest_name != manifest_name {
        return Err(CertError::WrongManifest {
            file,
            named: printable(&parsed.manifest_name),
            manifest: printable(manifest_name),
        });
    }

    let mut chain = Vec::with_capacity(parsed.certificates.len());
    for (i, der) in parsed.certificates.into_iter().enumerate() {
        let info = CertInfo::parse(der).map_err(|source| CertError::BadCertificate {
            file: file.clone(),
            index: i.saturating_add(1),
            source,
        })?;
        chain.push(info);
    }
    let Some(signer) = chain.first() else {
        return Err(CertError::NoCertificate { file });
    };
    let key = PublicKey::from_spki(&signer.cert.tbs_certificate.subject_public_key_info).map_err(
        |problem| CertError::UnsupportedKey {
            file: file.clone(),
            problem,
        },
    )?;
    if !key.verify(Hash::from(parsed.digest), manifest, &parsed.signature) {
        return Err(CertError::BadSignature {
            file,
            manifest: printable(manifest_name),
        });
    }

    let mut anchor_infos = Vec::with_capacity(anchors.len());
    for (i, der) in anchors.iter().enumerate() {
        let info = CertInfo::parse(der.clone()).map_err(|source| CertError::BadAnchor {
            index: i.saturating_add(1),
            source,
        })?;
        anchor_infos.push(info);
    }

    let kind = key.kind();
    let mut weaknesses = Vec::new();
    if parsed.digest == DigestAlgorithm::Sha1 {
        weaknesses.push(Weakness::Sha1Digest);
    }
    if let KeyKind::Rsa { bits } = kind {
        if bits < 2048 {
            weaknesses.push(Weakness::ShortRsaKey { bits });
        }
    }
    let validity = &signer.cert.tbs_certificate.validity;
    let expired = now > validity.not_after.to_system_time();
    let not_yet_valid = now < validity.not_before.to_system_time();
    let self_signed = signer.is_self_signed();
    let trusted = weaknesses.is_empty()
        && !expired
        && !not_yet_valid
        && signer.may_sign_documents()
        && chain::leads_to_anchor(&chain, &anchor_infos, now);

    Ok(CertReport {
        subject: printable(&signer.cert.tbs_certificate.subject.to_string()),
        issuer: printable(&signer.cert.tbs_certificate.issuer.to_string()),
        not_before: validity.not_before.to_string(),
        not_after: validity.not_after.to_string(),
        self_signed,
        expired,
        not_yet_valid,
        digest: parsed.digest,
        key: kind,
        chain_len: chain.len(),
        weaknesses,
        trusted,
    })
}

/// Longest text taken from a certificate into a report or message.
const MAX_PRINTABLE: usize = 512;

/// Escapes what could disguise text on a terminal (controls, bidi overrides) and caps the
/// length, since names and subjects come from the package author.
fn printable(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_PRINTABLE {
            out.push('…');
            break;
        }
        // Marks, embeddings, overrides and isolates: they reorder what follows on screen.
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}')
            || matches!(c, '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}
