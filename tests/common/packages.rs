//! Building test packages: the tiny appliance's parts, new descriptors around them,
//! manifests, OVAs made by GNU tar, and hand-made (hostile) tar archives.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::{run, tiny_ova};

/// Extracts the tiny appliance into `dir`: `tiny.ovf`, `tiny.mf`, `tiny-disk1.vmdk` (OS,
/// streamOptimized) and `tiny-disk2.vmdk` (blank data disk, streamOptimized).
pub fn tiny_parts(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(tiny_ova())
        .arg("-C")
        .arg(dir));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex digest of a file with `alg` (`SHA1`, `SHA256` or `SHA512`).
pub fn digest(alg: &str, path: &Path) -> String {
    let data = std::fs::read(path).unwrap();
    match alg {
        "SHA1" => hex(&Sha1::digest(&data)),
        "SHA256" => hex(&Sha256::digest(&data)),
        "SHA512" => hex(&Sha512::digest(&data)),
        other => panic!("unknown algorithm {other}"),
    }
}

/// Writes `dir/<name>` as a manifest of `files` (in `dir`) with `alg`, in ovftool's form
/// `SHA256(file)= hex`.
pub fn write_manifest(dir: &Path, name: &str, alg: &str, files: &[&str]) {
    let mut text = String::new();
    for f in files {
        text.push_str(&format!("{alg}({f})= {}\n", digest(alg, &dir.join(f))));
    }
    std::fs::write(dir.join(name), text).unwrap();
}

/// Makes `out` a ustar archive of `members` of `dir`, in that order (GNU tar).
pub fn make_ova(dir: &Path, out: &Path, members: &[&str]) {
    run(Command::new("tar")
        .args(["--format=ustar", "--owner=0", "--group=0", "-cf"])
        .arg(out)
        .arg("-C")
        .arg(dir)
        .args(members));
}

/// The size in bytes of a file.
pub fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Replaces every `@KEY@` in `template` by its value.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (k, v) in values {
        s = s.replace(&format!("@{k}@"), v);
    }
    assert!(!s.contains("@DISK"), "unfilled placeholder in:\n{s}");
    s
}

/// One member of a hand-made tar archive.
pub struct RawEntry {
    pub name: String,
    /// `b'0'` regular, `b'1'` hard link, `b'2'` symlink, `b'3'` char, `b'5'` dir, `b'6'`
    /// fifo, `b'x'` PAX header, ...
    pub typeflag: u8,
    pub mode: u32,
    pub linkname: String,
    pub data: Vec<u8>,
    /// Size written in the header; the data's length when `None`.
    pub header_size: Option<u64>,
}

impl RawEntry {
    pub fn file(name: &str, data: Vec<u8>) -> Self {
        Self {
            name: name.to_string(),
            typeflag: b'0',
            mode: 0o644,
            linkname: String::new(),
            data,
            header_size: None,
        }
    }
}

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{value:0width$o}", width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
    field[s.len()] = 0;
}

/// A ustar archive of `entries` exactly as given (names, types and sizes unchecked), with the
/// two zero blocks at the end.
pub fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = [0u8; 512];
        let name = e.name.as_bytes();
        h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        octal(&mut h[100..108], u64::from(e.mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(
            &mut h[124..136],
            e.header_size.unwrap_or(e.data.len() as u64),
        );
        octal(&mut h[136..148], 0);
        h[156] = e.typeflag;
        let link = e.linkname.as_bytes();
        h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// A fresh directory for a test's package files.
pub fn package_dir(env_dir: &Path, name: &str) -> PathBuf {
    let d = env_dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}
