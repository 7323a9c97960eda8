//! Tests on committed fixtures (tests/data/cert, made by make-fixtures.sh there), so they run
//! without openssl. The fixtures' certificates start in November 2026 and last 100 years;
//! each test passes a fixed `now`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding};

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/cert/",
            $name
        ))
    };
}

const MANIFEST: &[u8] = fixture!("package.mf");
const RSA_SHA256: &[u8] = fixture!("rsa-sha256.cert");
const RSA_SHA1: &[u8] = fixture!("rsa-sha1.cert");
const RSA_SHA512: &[u8] = fixture!("rsa-sha512.cert");
const RSA_1024: &[u8] = fixture!("rsa1024.cert");
const RSA_512: &[u8] = fixture!("rsa512.cert");
const P256: &[u8] = fixture!("p256.cert");
const P384: &[u8] = fixture!("p384.cert");
const CHAIN: &[u8] = fixture!("chain.cert");
const CHAIN_NO_CA: &[u8] = fixture!("chain-noca.cert");
const CHAIN_EXPIRED_INTERMEDIATE: &[u8] = fixture!("chain-expired-intermediate.cert");
const CA_PEM: &[u8] = fixture!("ca.pem");
const IMPOSTOR_CA_PEM: &[u8] = fixture!("impostor-ca.pem");

/// 2030-01-01, inside every fixture's validity.
fn in_validity() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn check(cert: &[u8], anchors: &[Vec<u8>]) -> Result<CertReport, CertError> {
    verify(
        cert,
        "package.cert",
        MANIFEST,
        "package.mf",
        in_validity(),
        anchors,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// DER of each PEM block in `pem`, in order.
fn pem_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
    let pem = text(pem);
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|block| {
            let body = block.split("-----END").next().unwrap();
            Base64::decode_vec(&body.split_whitespace().collect::<String>()).unwrap()
        })
        .collect()
}

fn ca_anchor() -> Vec<Vec<u8>> {
    pem_blocks(CA_PEM)
}

#[test]
fn verify_rsa_self_signed_accepted_untrusted() {
    let report = check(RSA_SHA256, &[]).unwrap();
    assert_eq!(report.subject, "CN=vmd test signer,O=vmd tests");
    assert_eq!(report.issuer, report.subject);
    assert!(report.self_signed);
    assert!(!report.trusted);
    assert!(!report.expired && !report.not_yet_valid);
    assert_eq!(report.digest, DigestAlgorithm::Sha256);
    assert_eq!(report.key, KeyKind::Rsa { bits: 2048 });
    assert_eq!(report.chain_len, 1);
    assert!(report.weaknesses.is_empty());
}

#[test]
fn verify_validity_dates_are_rfc3339() {
    let report = check(RSA_SHA256, &[]).unwrap();
    for date in [&report.not_before, &report.not_after] {
        let shape: String = date
            .chars()
            .map(|c| if c.is_ascii_digit() { 'd' } else { c })
            .collect();
        assert_eq!(shape, "dddd-dd-ddTdd:dd:ddZ", "{date}");
    }
    assert!(
        report.not_after.starts_with("2126-"),
        "{}",
        report.not_after
    );
}

#[test]
fn verify_manifest_altered_one_byte_rejected() {
    let mut manifest = MANIFEST.to_vec();
    manifest[10] ^= 1;
    let err = verify(
        RSA_SHA256,
        "package.cert",
        &manifest,
        "package.mf",
        in_validity(),
        &[],
    );
    let message = err.unwrap_err().to_string();
    assert_eq!(
        message,
        "package.cert: certificate signature does not verify for package.mf"
    );
}

#[test]
fn verify_signature_bit_flipped_rejected() {
    let line_end = text(RSA_SHA256).find('\n').unwrap();
    let mut bytes = RSA_SHA256.to_vec();
    // The last hex digit of the signature, changed to another hex digit.
    let last = &mut bytes[line_end - 1];
    *last = if *last == b'0' { b'1' } else { b'0' };
    assert!(matches!(
        check(&bytes, &[]),
        Err(CertError::BadSignature { .. })
    ));
}

#[test]
fn verify_signature_line_naming_other_file_rejected() {
    let renamed = text(RSA_SHA256).replacen("(package.mf)", "(other.mf)", 1);
    let err = check(renamed.as_bytes(), &[]).unwrap_err();
    assert!(matches!(err, CertError::WrongManifest { .. }));
    assert_eq!(
        err.to_string(),
        "package.cert: signature is over `other.mf`, not the package manifest `package.mf`"
    );
}

#[test]
fn verify_manifest_of_other_name_rejected() {
    let err = verify(RSA_SHA256, "x.cert", MANIFEST, "x.mf", in_validity(), &[]).unwrap_err();
    assert!(matches!(err, CertError::WrongManifest { .. }), "{err}");
}

#[test]
fn verify_sha1_accepted_never_trusted() {
    let pinned = pem_blocks(RSA_SHA1);
    let report = check(RSA_SHA1, &pinned).unwrap();
    assert_eq!(report.digest, DigestAlgorithm::Sha1);
    assert_eq!(report.weaknesses, vec![Weakness::Sha1Digest]);
    assert!(!report.trusted);
}

#[test]
fn verify_sha512_accepted() {
    assert_eq!(
        check(RSA_SHA512, &[]).unwrap().digest,
        DigestAlgorithm::Sha512
    );
}

#[test]
fn verify_sha256_signature_labelled_sha512_rejected() {
    let relabelled = text(RSA_SHA256).replacen("SHA256(", "SHA512(", 1);
    assert!(matches!(
        check(relabelled.as_bytes(), &[]),
        Err(CertError::BadSignature { .. })
    ));
}

#[test]
fn verify_space_before_parenthesis_and_crlf_accepted() {
    let edited = text(RSA_SHA256)
        .replacen("SHA256(", "SHA256 (", 1)
        .replace('\n', "\r\n");
    assert!(check(edited.as_bytes(), &[]).is_ok());
}

#[test]
fn verify_uppercase_hex_accepted() {
    let line_end = text(RSA_SHA256).find('\n').unwrap();
    let mut edited = text(RSA_SHA256);
    let upper = edited[..line_end]
        .replace("(package.mf)", "(PACKAGE.MF)")
        .to_ascii_uppercase();
    let upper = upper.replace("(PACKAGE.MF)", "(package.mf)");
    edited.replace_range(..line_end, &upper);
    assert!(check(edited.as_bytes(), &[]).is_ok());
}

#[test]
fn verify_after_not_after_reports_expired() {
    let year_2200 = UNIX_EPOCH + Duration::from_secs(7_258_118_400);
    let pinned = pem_blocks(RSA_SHA256);
    let report = verify(
        RSA_SHA256,
        "p.cert",
        MANIFEST,
        "package.mf",
        year_2200,
        &pinned,
    )
    .unwrap();
    assert!(report.expired);
    assert!(
        !report.trusted,
        "an expired signer is never trusted, even pinned"
    );
}

#[test]
fn verify_before_not_before_reports_not_yet_valid() {
    let year_2020 = UNIX_EPOCH + Duration::from_secs(1_577_836_800);
    let pinned = pem_blocks(RSA_SHA256);
    let report = verify(
        RSA_SHA256,
        "p.cert",
        MANIFEST,
        "package.mf",
        year_2020,
        &pinned,
    )
    .unwrap();
    assert!(report.not_yet_valid && !report.expired);
    assert!(!report.trusted);
}

#[test]
fn verify_chain_to_given_ca_trusted() {
    let report = check(CHAIN, &ca_anchor()).unwrap();
    assert!(report.trusted);
    assert!(!report.self_signed);
    assert_eq!(report.chain_len, 2);
    assert_eq!(report.subject, "CN=vmd chained signer,O=vmd tests");
    assert_eq!(report.issuer, "CN=vmd test CA,O=vmd tests");
}

#[test]
fn verify_chain_without_anchors_untrusted() {
    let report = check(CHAIN, &[]).unwrap();
    assert!(!report.trusted);
    assert!(!report.self_signed);
}

#[test]
fn verify_chain_with_unrelated_anchor_untrusted() {
    assert!(!check(CHAIN, &pem_blocks(RSA_SHA256)).unwrap().trusted);
}

#[test]
fn verify_anchor_with_same_name_other_key_untrusted() {
    assert!(!check(CHAIN, &pem_blocks(IMPOSTOR_CA_PEM)).unwrap().trusted);
}

#[test]
fn verify_path_through_non_ca_untrusted() {
    let report = check(CHAIN_NO_CA, &ca_anchor()).unwrap();
    assert_eq!(report.chain_len, 3);
    assert_eq!(report.issuer, "CN=vmd chained signer,O=vmd tests");
    assert!(!report.trusted);
}

#[test]
fn verify_path_through_expired_intermediate_untrusted() {
    let report = check(CHAIN_EXPIRED_INTERMEDIATE, &ca_anchor()).unwrap();
    assert!(!report.expired && !report.trusted);
    // The day the intermediate was valid, the same path is trusted.
    let not_before = report.not_before.clone();
    let created = verify(
        CHAIN_EXPIRED_INTERMEDIATE,
        "p.cert",
        MANIFEST,
        "package.mf",
        rfc3339_to_time(&not_before) + Duration::from_secs(3600),
        &ca_anchor(),
    );
    assert!(created.unwrap().trusted);
}

#[test]
fn verify_signer_alone_issued_by_anchor_trusted() {
    let signer_only = text(CHAIN);
    let cut = signer_only.find("-----END CERTIFICATE-----").unwrap() + 26;
    assert!(
        check(&signer_only.as_bytes()[..cut], &ca_anchor())
            .unwrap()
            .trusted
    );
}

#[test]
fn verify_chain_after_expiry_untrusted() {
    let year_2200 = UNIX_EPOCH + Duration::from_secs(7_258_118_400);
    let anchors = ca_anchor();
    let report = verify(CHAIN, "p.cert", MANIFEST, "package.mf", year_2200, &anchors).unwrap();
    assert!(report.expired && !report.trusted);
}

#[test]
fn verify_ca_placed_first_rejected() {
    let blocks = pem_blocks(CHAIN);
    let first_line = text(CHAIN).lines().next().unwrap().to_owned();
    let swapped = format!("{first_line}\n{}{}", pem(&blocks[1]), pem(&blocks[0]));
    let err = check(swapped.as_bytes(), &ca_anchor()).unwrap_err();
    assert!(matches!(err, CertError::BadSignature { .. }), "{err}");
}

#[test]
fn verify_pinned_self_signed_signer_trusted() {
    let report = check(RSA_SHA256, &pem_blocks(RSA_SHA256)).unwrap();
    assert!(report.self_signed && report.trusted);
}

#[test]
fn verify_ecdsa_p256_accepted() {
    let report = check(P256, &[]).unwrap();
    assert_eq!(report.key, KeyKind::EcdsaP256);
    assert!(report.self_signed && !report.trusted);
}

#[test]
fn verify_ecdsa_p384_with_sha512_accepted() {
    let report = check(P384, &pem_blocks(P384)).unwrap();
    assert_eq!(
        (report.key, report.digest),
        (KeyKind::EcdsaP384, DigestAlgorithm::Sha512)
    );
    assert!(report.trusted, "pinned");
}

#[test]
fn verify_rsa_1024_accepted_as_weak() {
    let report = check(RSA_1024, &pem_blocks(RSA_1024)).unwrap();
    assert_eq!(
        report.weaknesses,
        vec![Weakness::ShortRsaKey { bits: 1024 }]
    );
    assert!(!report.trusted);
}

#[test]
fn verify_rsa_512_rejected() {
    let err = check(RSA_512, &[]).unwrap_err();
    assert!(matches!(err, CertError::UnsupportedKey { .. }));
    assert!(
        err.to_string()
            .contains("512 bits is below the 1024-bit minimum"),
        "{err}"
    );
}

#[test]
fn verify_signature_of_other_key_rejected() {
    let line = text(RSA_SHA256).lines().next().unwrap().to_owned();
    let chain_certs = text(CHAIN);
    let certs = &chain_certs[chain_certs.find("-----BEGIN").unwrap()..];
    let mixed = format!("{line}\n{certs}");
    assert!(matches!(
        check(mixed.as_bytes(), &[]),
        Err(CertError::BadSignature { .. })
    ));
}

#[test]
fn verify_garbage_pem_rejected() {
    let line = text(RSA_SHA256).lines().next().unwrap().to_owned();
    let garbage = format!("{line}\n{}", pem(b"this is not a certificate at all"));
    let err = check(garbage.as_bytes(), &[]).unwrap_err();
    assert!(
        matches!(err, CertError::BadCertificate { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn verify_empty_file_rejected() {
    assert!(matches!(check(b"", &[]), Err(CertError::Empty { .. })));
}

#[test]
fn verify_certificate_with_trailing_bytes_rejected() {
    let mut der = pem_blocks(RSA_SHA256).remove(0);
    der.push(0);
    let line = text(RSA_SHA256).lines().next().unwrap().to_owned();
    let padded = format!("{line}\n{}", pem(&der));
    assert!(matches!(
        check(padded.as_bytes(), &[]),
        Err(CertError::BadCertificate { .. })
    ));
}

#[test]
fn verify_oversized_file_rejected() {
    let big = vec![b' '; MAX_CERT_FILE + 1];
    assert!(matches!(check(&big, &[]), Err(CertError::TooLarge { .. })));
}

#[test]
fn verify_bad_anchor_rejected() {
    let err = check(CHAIN, &[b"junk".to_vec()]).unwrap_err();
    assert!(
        matches!(err, CertError::BadAnchor { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn printable_escapes_controls_and_bidi() {
    assert_eq!(printable("a\u{1b}[31m\u{202e}b"), "a\\u{1b}[31m\\u{202e}b");
    assert_eq!(
        printable(&"x".repeat(600)).chars().count(),
        MAX_PRINTABLE + 1
    );
}

/// A byte change every few bytes and truncations of the fixtures: no panic, and never
/// `trusted` without anchors. A stand-in until the cargo-fuzz target runs; the stride keeps
/// a debug build's RSA arithmetic to a few seconds.
#[test]
fn verify_mutated_fixtures_never_panic() {
    for original in [RSA_SHA256, CHAIN, P256] {
        for i in (0..original.len()).step_by(7) {
            let mut mutated = original.to_vec();
            mutated[i] ^= 1 << (i % 7);
            if let Ok(report) = check(&mutated, &[]) {
                assert!(!report.trusted);
            }
            let _ = check(&original[..i], &ca_anchor());
        }
    }
}

fn pem(der: &[u8]) -> String {
    let body = Base64::encode_string(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Seconds since the epoch for `YYYY-MM-DDTHH:MM:SSZ`, enough for fixture dates.
fn rfc3339_to_time(date: &str) -> SystemTime {
    let field = |range: std::ops::Range<usize>| date[range].parse::<u64>().unwrap();
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    let (hour, minute, second) = (field(11..13), field(14..16), field(17..19));
    // Days from civil (Howard Hinnant's algorithm), for years after 1970.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    UNIX_EPOCH + Duration::from_secs(days * 86_400 + hour * 3600 + minute * 60 + second)
}
