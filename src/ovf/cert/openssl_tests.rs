//! Tests on keys and certificates the `openssl` CLI makes at test time, in the layout
//! ovftool writes, so vmd is checked against fresh material and not only the committed
//! fixtures. openssl must be installed (Debian: `apt-get install openssl`); set
//! `VMD_TEST_NO_OPENSSL=1` to skip these on a machine that cannot have it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use super::*;

const MANIFEST: &[u8] =
    b"SHA256(appliance.ovf)= 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

/// A scratch directory with an openssl config, removed on drop.
struct Workdir {
    path: PathBuf,
}

impl Workdir {
    /// None when openssl is absent and the caller allowed skipping.
    fn new(test: &str) -> Option<Self> {
        if Command::new("openssl").arg("version").output().is_err() {
            assert!(
                std::env::var_os("VMD_TEST_NO_OPENSSL").is_some(),
                "openssl CLI not found: install it (apt-get install openssl) \
                 or set VMD_TEST_NO_OPENSSL=1 to skip"
            );
            eprintln!("{test}: skipped, no openssl");
            return None;
        }
        let path = std::env::temp_dir().join(format!("vmd-cert-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(
            path.join("openssl.cnf"),
            "[req]\ndistinguished_name = dn\n[dn]\n\
             [ca_ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign\n\
             [signer_ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n",
        )
        .unwrap();
        std::fs::write(path.join("x.mf"), MANIFEST).unwrap();
        Some(Self { path })
    }

    fn openssl(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "openssl {args:?}: {stderr}");
        out.stdout
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path.join(name)).unwrap()
    }

    /// `name.key` (RSA-2048) and `name.pem`, self-signed, valid for `days` from now.
    fn self_signed(&self, name: &str, days: &str) {
        let (key, pem, subject) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={name}"),
        );
        self.openssl(&["genrsa", "-out", &key, "2048"]);
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-out",
            &pem,
            "-subj",
            &subject,
            "-days",
            days,
            "-config",
            "openssl.cnf",
            "-extensions",
            "signer_ext",
        ]);
    }

    /// The `.cert` ovftool writes: `LABEL(x.mf)= hex` from `openssl dgst -hex`, then PEMs.
    fn cert_file(&self, digest: &str, label: &str, key: &str, pems: &[&str]) -> Vec<u8> {
        let line = self.openssl(&["dgst", &format!("-{digest}"), "-sign", key, "-hex", "x.mf"]);
        let line = String::from_utf8(line).unwrap();
        let hex = line.rsplit("= ").next().unwrap().trim();
        let mut file = format!("{label}(x.mf)= {hex}\n").into_bytes();
        for pem in pems {
            file.extend(self.read(pem));
        }
        file
    }

    fn der(&self, pem: &str) -> Vec<u8> {
        self.openssl(&["x509", "-in", pem, "-outform", "DER"])
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn check_at(
    cert: &[u8],
    manifest: &[u8],
    now: SystemTime,
    anchors: &[Vec<u8>],
) -> Result<CertReport, CertError> {
    verify(cert, "x.cert", manifest, "x.mf", now, anchors)
}

#[test]
fn verify_openssl_rsa_sha256_self_signed_accepted_untrusted() {
    let Some(dir) = Workdir::new("rsa256") else {
        return;
    };
    dir.self_signed("signer", "1");
    let cert = dir.cert_file("sha256", "SHA256", "signer.key", &["signer.pem"]);
    let report = check_at(&cert, MANIFEST, SystemTime::now(), &[]).unwrap();
    assert!(report.self_signed && !report.trusted && !report.expired);
    assert_eq!(
        (report.digest, report.subject.as_str()),
        (DigestAlgorithm::Sha256, "CN=signer")
    );
}

#[test]
fn verify_openssl_manifest_altered_rejected() {
    let Some(dir) = Workdir::new("altered") else {
        return;
    };
    dir.self_signed("signer", "1");
    let cert = dir.cert_file("sha256", "SHA256", "signer.key", &["signer.pem"]);
    let mut manifest = MANIFEST.to_vec();
    manifest[0] = b's';
    let err = check_at(&cert, &manifest, SystemTime::now(), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.cert: certificate signature does not verify for x.mf"
    );
}

#[test]
fn verify_openssl_signature_naming_other_file_rejected() {
    let Some(dir) = Workdir::new("othername") else {
        return;
    };
    dir.self_signed("signer", "1");
    let cert = dir.cert_file("sha256", "SHA256", "signer.key", &["signer.pem"]);
    let err = verify(&cert, "y.cert", MANIFEST, "y.mf", SystemTime::now(), &[]).unwrap_err();
    assert!(matches!(err, CertError::WrongManifest { .. }), "{err}");
}

#[test]
fn verify_openssl_sha1_and_raw_dgst_label_accepted() {
    let Some(dir) = Workdir::new("sha1") else {
        return;
    };
    dir.self_signed("signer", "1");
    let cert = dir.cert_file("sha1", "SHA1", "signer.key", &["signer.pem"]);
    let report = check_at(&cert, MANIFEST, SystemTime::now(), &[]).unwrap();
    assert_eq!(report.weaknesses, vec![Weakness::Sha1Digest]);
    // openssl's own label (`RSA-SHA2-256` in 3.x, `RSA-SHA256` in 1.1) pasted unchanged.
    let mut raw = dir.openssl(&["dgst", "-sha256", "-sign", "signer.key", "-hex", "x.mf"]);
    raw.extend(dir.read("signer.pem"));
    assert!(check_at(&raw, MANIFEST, SystemTime::now(), &[]).is_ok());
}

#[test]
fn verify_openssl_expired_certificate_accepted_and_reported() {
    let Some(dir) = Workdir::new("expired") else {
        return;
    };
    dir.self_signed("signer", "1");
    let cert = dir.cert_file("sha512", "SHA512", "signer.key", &["signer.pem"]);
    let two_days_later = SystemTime::now() + Duration::from_secs(2 * 86_400);
    let pinned = vec![dir.der("signer.pem")];
    let report = check_at(&cert, MANIFEST, two_days_later, &pinned).unwrap();
    assert!(report.expired && !report.trusted);
}

#[test]
fn verify_openssl_chain_to_ca_anchor_trusted() {
    let Some(dir) = Workdir::new("chain") else {
        return;
    };
    dir.openssl(&["genrsa", "-out", "ca.key", "2048"]);
    dir.openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=test CA",
        "-days",
        "2",
        "-config",
        "openssl.cnf",
        "-extensions",
        "ca_ext",
    ]);
    dir.openssl(&["genrsa", "-out", "leaf.key", "2048"]);
    dir.openssl(&[
        "req",
        "-new",
        "-key",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=leaf",
        "-config",
        "openssl.cnf",
    ]);
    dir.openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "7",
        "-days",
        "2",
        "-extfile",
        "openssl.cnf",
        "-extensions",
        "signer_ext",
        "-out",
        "leaf.pem",
    ]);
    let cert = dir.cert_file("sha256", "SHA256", "leaf.key", &["leaf.pem", "ca.pem"]);
    let anchors = vec![dir.der("ca.pem")];
    let report = check_at(&cert, MANIFEST, SystemTime::now(), &anchors).unwrap();
    assert!(report.trusted && !report.self_signed);
    assert_eq!(
        (report.chain_len, report.issuer.as_str()),
        (2, "CN=test CA")
    );
    assert!(
        !check_at(&cert, MANIFEST, SystemTime::now(), &[])
            .unwrap()
            .trusted
    );
}

#[test]
fn verify_openssl_ecdsa_p256_accepted() {
    let Some(dir) = Workdir::new("p256") else {
        return;
    };
    dir.openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ec.key",
    ]);
    dir.openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ec.key",
        "-out",
        "ec.pem",
        "-subj",
        "/CN=ec",
        "-days",
        "1",
        "-config",
        "openssl.cnf",
        "-extensions",
        "signer_ext",
    ]);
    let cert = dir.cert_file("sha256", "SHA256", "ec.key", &["ec.pem"]);
    let report = check_at(&cert, MANIFEST, SystemTime::now(), &[]).unwrap();
    assert_eq!(report.key, KeyKind::EcdsaP256);
}

#[test]
fn verify_openssl_garbage_pem_and_empty_rejected() {
    let Some(dir) = Workdir::new("garbage") else {
        return;
    };
    dir.self_signed("signer", "1");
    let cert = String::from_utf8(dir.cert_file("sha256", "SHA256", "signer.key", &["signer.pem"]))
        .unwrap();
    let body_start = cert.find("-----BEGIN CERTIFICATE-----\n").unwrap() + 28;
    let mut garbage = cert.clone();
    garbage.replace_range(body_start..body_start + 8, "QUJDREVG");
    let err = check_at(garbage.as_bytes(), MANIFEST, SystemTime::now(), &[]).unwrap_err();
    assert!(matches!(err, CertError::BadCertificate { .. }), "{err}");
    let err = check_at(b"\n\n", MANIFEST, SystemTime::now(), &[]).unwrap_err();
    assert!(matches!(err, CertError::Empty { .. }), "{err}");
}
