//! Certificates as parsed from a `.cert` file or given as trust anchors, and the simple path
//! check from the signer to an anchor. Owns only "who signed whom"; it does not build paths
//! from outside sources (AIA fetching, system stores) and checks no revocation.

use std::time::SystemTime;

use der::{Decode, Header, Reader, SliceReader, Tag};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::Certificate;

use super::key::PublicKey;

/// A certificate with the exact DER it came from, so signatures are checked over the bytes
/// that were signed rather than over a re-encoding.
pub(super) struct CertInfo {
    pub(super) der: Vec<u8>,
    pub(super) cert: Certificate,
    tbs: Vec<u8>,
}

impl CertInfo {
    pub(super) fn parse(der: Vec<u8>) -> Result<Self, der::Error> {
        let cert = Certificate::from_der(&der)?;
        let tbs = raw_tbs(&der)?.to_vec();
        Ok(Self { der, cert, tbs })
    }

    /// No other party vouches for this key: it names itself as issuer, or signed itself.
    pub(super) fn is_self_signed(&self) -> bool {
        let tbs = &self.cert.tbs_certificate;
        tbs.subject == tbs.issuer || self.signature_verifies_with(self)
    }

    /// keyUsage, when present, allows signing documents.
    pub(super) fn may_sign_documents(&self) -> bool {
        match self.cert.tbs_certificate.get::<KeyUsage>() {
            Ok(None) => true,
            Ok(Some((_, usage))) => usage.digital_signature() || usage.non_repudiation(),
            Err(_) => false,
        }
    }

    /// A CA by basicConstraints, allowed to sign certificates by keyUsage when present.
    fn may_issue(&self) -> bool {
        let tbs = &self.cert.tbs_certificate;
        let ca = matches!(tbs.get::<BasicConstraints>(), Ok(Some((_, bc))) if bc.ca);
        let usage = match tbs.get::<KeyUsage>() {
            Ok(None) => true,
            Ok(Some((_, usage))) => usage.key_cert_sign(),
            Err(_) => false,
        };
        ca && usage
    }

    fn valid_at(&self, now: SystemTime) -> bool {
        let validity = &self.cert.tbs_certificate.validity;
        validity.not_before.to_system_time() <= now && now <= validity.not_after.to_system_time()
    }

    /// `issuer` is named as this certificate's issuer and its key made the signature.
    fn issued_by(&self, issuer: &CertInfo) -> bool {
        self.cert.tbs_certificate.issuer == issuer.cert.tbs_certificate.subject
            && self.signature_verifies_with(issuer)
    }

    fn signature_verifies_with(&self, issuer: &CertInfo) -> bool {
        // RFC 5280 §4.1.1.2: the outer and inner algorithm must agree; a mismatch is how
        // algorithm-substitution tricks start.
        if self.cert.signature_algorithm != self.cert.tbs_certificate.signature {
            return false;
        }
        let Ok(key) = PublicKey::from_spki(&issuer.cert.tbs_certificate.subject_public_key_info)
        else {
            return false;
        };
        let Some(hash) = key.certificate_hash(&self.cert.signature_algorithm.oid) else {
            return false;
        };
        let Some(signature) = self.cert.signature.as_bytes() else {
            return false;
        };
        key.verify(hash, &self.tbs, signature)
    }
}

/// True when the signer (`chain[0]`) is an anchor, or each certificate is issued by the next
/// one found in `chain` until one is issued by an anchor. Every certificate on the way but the
/// anchor must be valid at `now`; intermediates must be CAs. Each chain certificate is used at
/// most once, which bounds the walk.
pub(super) fn leads_to_anchor(chain: &[CertInfo], anchors: &[CertInfo], now: SystemTime) -> bool {
    let Some(mut current) = chain.first() else {
        return false;
    };
    let mut used = vec![false; chain.len()];
    if let Some(first) = used.first_mut() {
        *first = true;
    }
    loop {
        if anchors.iter().any(|anchor| anchor.der == current.der) {
            return true;
        }
        if !current.valid_at(now) {
            return false;
        }
        if anchors.iter().any(|anchor| current.issued_by(anchor)) {
            return true;
        }
        let next = chain.iter().enumerate().find(|(i, candidate)| {
            !used.get(*i).copied().unwrap_or(true)
                && candidate.may_issue()
                && current.issued_by(candidate)
        });
        let Some((i, issuer)) = next else {
            return false;
        };
        if let Some(flag) = used.get_mut(i) {
            *flag = true;
        }
        current = issuer;
    }
}

/// The `tbsCertificate` TLV exactly as it appears in `der`.
fn raw_tbs(der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    let header = Header::decode(&mut reader)?;
    header.tag.assert_eq(Tag::Sequence)?;
    reader.tlv_bytes()
}
