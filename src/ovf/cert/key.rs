//! Public keys from certificates and the two signature schemes vmd checks with them (RSA
//! PKCS#1 v1.5, ECDSA P-256/P-384 with DER signatures). Owns no policy beyond refusing keys
//! too small to mean anything; the parent decides what a weak key is worth.

use der::oid::ObjectIdentifier;
use der::Encode;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::{DigestAlgorithm, KeyKind};

/// RSA keys below this are rejected outright: factoring them is within anyone's reach.
const MIN_RSA_BITS: usize = 1024;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// A digest algorithm, including SHA384 which certificate chains use but manifests do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl From<DigestAlgorithm> for Hash {
    fn from(name: DigestAlgorithm) -> Self {
        match name {
            DigestAlgorithm::Sha1 => Self::Sha1,
            DigestAlgorithm::Sha256 => Self::Sha256,
            DigestAlgorithm::Sha512 => Self::Sha512,
        }
    }
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(message).to_vec(),
            Self::Sha256 => Sha256::digest(message).to_vec(),
            Self::Sha384 => Sha384::digest(message).to_vec(),
            Self::Sha512 => Sha512::digest(message).to_vec(),
        }
    }

    fn pkcs1v15(self) -> Pkcs1v15Sign {
        match self {
            Self::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            Self::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            Self::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
            Self::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }
}

/// A verifying key taken from a certificate's subjectPublicKeyInfo.
pub(super) enum PublicKey {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Reads the key, or says in words why vmd cannot use it.
    pub(super) fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, String> {
        let der = spki
            .to_der()
            .map_err(|e| format!("cannot re-encode the public key: {e}"))?;
        let oid = spki.algorithm.oid;
        if oid == RSA_ENCRYPTION {
            // The rsa crate caps the modulus at 4096 bits, which bounds verification time.
            let key = RsaPublicKey::from_public_key_der(&der)
                .map_err(|e| format!("unusable rsa key (1024 to 4096 bits supported): {e}"))?;
            let bits = key.n().bits();
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "rsa key of {bits} bits is below the {MIN_RSA_BITS}-bit minimum"
                ));
            }
            return Ok(Self::Rsa(key));
        }
        if oid == EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            return match curve {
                Some(c) if c == SECP256R1 => p256::ecdsa::VerifyingKey::from_public_key_der(&der)
                    .map(Self::P256)
                    .map_err(|e| format!("unusable P-256 key: {e}")),
                Some(c) if c == SECP384R1 => p384::ecdsa::VerifyingKey::from_public_key_der(&der)
                    .map(Self::P384)
                    .map_err(|e| format!("unusable P-384 key: {e}")),
                Some(c) => Err(format!("elliptic curve {c} is not supported")),
                None => Err("elliptic-curve key without a named curve".to_owned()),
            };
        }
        Err(format!("key algorithm {oid} is not supported"))
    }

    pub(super) fn kind(&self) -> KeyKind {
        match self {
            Self::Rsa(key) => KeyKind::Rsa {
                bits: key.n().bits(),
            },
            Self::P256(_) => KeyKind::EcdsaP256,
            Self::P384(_) => KeyKind::EcdsaP384,
        }
    }

    /// True when `signature` is this key's signature over `message` hashed with `hash`: RSA
    /// PKCS#1 v1.5 for an RSA key, a DER `ECDSA-Sig-Value` for an EC key.
    pub(super) fn verify(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;

        let hashed = hash.digest(message);
        match self {
            Self::Rsa(key) => key.verify(hash.pkcs1v15(), &hashed, signature).is_ok(),
            // verify_prehash truncates or rejects a digest that does not fit the curve.
            Self::P256(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify_prehash(&hashed, &sig).is_ok()),
            Self::P384(key) => p384::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify_prehash(&hashed, &sig).is_ok()),
        }
    }

    /// Whether a certificate signature algorithm fits this key, and with which digest.
    pub(super) fn certificate_hash(&self, algorithm: &ObjectIdentifier) -> Option<Hash> {
        let (rsa, hash) = CERT_SIGNATURE_ALGORITHMS
            .iter()
            .find(|(oid, _, _)| oid == algorithm)
            .map(|(_, rsa, hash)| (*rsa, *hash))?;
        (rsa == matches!(self, Self::Rsa(_))).then_some(hash)
    }
}

/// Certificate signature algorithms: OID, whether it is RSA (else ECDSA), digest. SHA1 is
/// absent on purpose: a link signed over SHA1 does not make a trusted chain.
const CERT_SIGNATURE_ALGORITHMS: [(ObjectIdentifier, bool, Hash); 6] = [
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11"),
        true,
        Hash::Sha256,
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12"),
        true,
        Hash::Sha384,
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13"),
        true,
        Hash::Sha512,
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
        false,
        Hash::Sha256,
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3"),
        false,
        Hash::Sha384,
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4"),
        false,
        Hash::Sha512,
    ),
];
