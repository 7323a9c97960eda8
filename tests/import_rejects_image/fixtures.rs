//! Fixtures for the image rejection tests: a [`Trial`] (an isolated [`TestEnv`], a package
//! directory and a stand-in `qemu-img` that records every call), a one-system descriptor
//! written around the disks a test makes, image files made by the real `qemu-img` and then
//! patched byte by byte, and the assertions every rejection shares.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::env::TestEnv;
#[allow(unused_imports)] // test binaries that include these fixtures use different formats
pub use crate::common::ovf::{Disk, QCOW2, RAW, VMDK_SPARSE, VMDK_STREAM};
use crate::common::packages::{make_ova, package_dir};
use crate::common::run;

pub const MIB: u64 = 1 << 20;
/// The real binary the stand-in hands over to.
const REAL_QEMU_IMG: &str = "/usr/bin/qemu-img";

/// The descriptor of the test package holding `disks` (files looked up in `dir`).
fn descriptor(dir: &Path, disks: &[Disk]) -> String {
    crate::common::ovf::descriptor(dir, "rejects", disks)
}

/// A stand-in `qemu-img` (`VMD_QEMU_IMG`): appends its arguments to a log, one call per
/// line, then runs `body` (by default: hands over to the real `qemu-img`).
pub struct Stub {
    pub path: PathBuf,
    log: PathBuf,
}

impl Stub {
    /// `body` is bash run after the call is logged; it sees the arguments as `$@`.
    pub fn new(dir: &Path, body: &str) -> Self {
        let path = dir.join("qemu-img");
        let log = dir.join("qemu-img-calls.log");
        std::fs::write(&log, "").unwrap();
        let script = format!(
            "#!/bin/bash\nprintf '%s\\n' \"$*\" >> '{}'\n{body}\n",
            log.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { path, log }
    }

    /// A stand-in that only records, then runs the real `qemu-img`.
    pub fn recording(dir: &Path) -> Self {
        Self::new(dir, &format!("exec {REAL_QEMU_IMG} \"$@\""))
    }

    /// The recorded calls, each its arguments joined by spaces.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// One test's world: an isolated vmd environment, a package directory and a stand-in
/// `qemu-img`.
pub struct Trial {
    pub env: TestEnv,
    pub pkg: PathBuf,
    pub stub: Stub,
}

impl Trial {
    pub fn new(tag: &str) -> Self {
        let env = TestEnv::new(tag);
        let pkg = package_dir(env.dir(), "pkg");
        let stub = Stub::recording(env.dir());
        Self { env, pkg, stub }
    }

    /// Replaces the stand-in with one that runs `body` after logging.
    pub fn stub_body(&mut self, body: &str) {
        self.stub = Stub::new(self.env.dir(), body);
    }

    /// A path in the package directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.pkg.join(name)
    }

    /// Writes `pkg.ovf` for `disks`, whose files must already be in the package directory.
    pub fn package(&self, disks: &[Disk]) {
        std::fs::write(self.pkg.join("pkg.ovf"), descriptor(&self.pkg, disks)).unwrap();
    }

    /// Makes `pkg.ova` from the package directory (descriptor first, then `members`).
    pub fn ova(&self, members: &[&str]) -> PathBuf {
        let out = self.env.dir().join("pkg.ova");
        let mut all = vec!["pkg.ovf"];
        all.extend_from_slice(members);
        make_ova(&self.pkg, &out, &all);
        out
    }

    /// `vmd import <package> <args>` with the stand-in `qemu-img`.
    pub fn import_from(&self, package: &Path, args: &[&str]) -> Output {
        self.env
            .command()
            .env("VMD_QEMU_IMG", &self.stub.path)
            .arg("import")
            .arg(package)
            .args(args)
            .output()
            .expect("run vmd import")
    }

    /// `vmd import` of the package directory.
    pub fn import(&self, args: &[&str]) -> Output {
        self.import_from(&self.pkg, args)
    }

    /// Files left in the pool's directory (volumes, staging files, anything).
    pub fn pool_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.env.dir().join("pool"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Asserts that `out` failed with `code` and one line of stderr holding every needle,
    /// and that nothing is left: no volume, no file in the pool, no catalog entry.
    pub fn assert_failed_clean(&self, out: &Output, code: i32, needles: &[&str]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "want one line of stderr, got: {stderr}");
        assert!(lines[0].starts_with("vmd: "), "{stderr}");
        for n in needles {
            assert!(lines[0].contains(n), "{n:?} missing from: {stderr}");
        }
        assert_eq!(self.env.volumes(), Vec::<String>::new(), "volumes left");
        assert_eq!(
            self.pool_files(),
            Vec::<String>::new(),
            "files left in pool"
        );
        assert!(self.env.catalog().is_empty(), "catalog entry left");
    }

    /// Imports the package directory and asserts a rejection (exit 3) naming every needle
    /// that left nothing behind, without `qemu-img` ever running.
    pub fn assert_rejected(&self, needles: &[&str]) {
        let out = self.import(&[]);
        self.assert_failed_clean(&out, 3, needles);
        assert_eq!(self.stub.calls(), Vec::<String>::new(), "qemu-img ran");
    }
}

/// Runs the real `qemu-img` with `args` (in `dir`), panicking on failure.
pub fn qemu_img(dir: &Path, args: &[&str]) {
    run(Command::new(REAL_QEMU_IMG).current_dir(dir).args(args));
}

/// A file of `len` bytes of a fixed, non-repeating pattern (not zeros, so that nothing is
/// sparse and a copy is recognisable).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

/// Overwrites bytes of `path` at `offset`.
pub fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

pub fn patch_be32(path: &Path, offset: u64, v: u32) {
    patch(path, offset, &v.to_be_bytes());
}

pub fn patch_be64(path: &Path, offset: u64, v: u64) {
    patch(path, offset, &v.to_be_bytes());
}

pub fn patch_le64(path: &Path, offset: u64, v: u64) {
    patch(path, offset, &v.to_le_bytes());
}

/// Rewrites the text of the descriptor embedded in a VMDK sparse extent (sector
/// `descriptorOffset`, `descriptorSize` sectors, NUL-padded).
pub fn edit_vmdk_descriptor(path: &Path, edit: impl FnOnce(&str) -> String) {
    let bytes = std::fs::read(path).unwrap();
    let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let (offset, len) = ((le64(28) * 512) as usize, (le64(36) * 512) as usize);
    let area = &bytes[offset..offset + len];
    let text_len = area.iter().position(|&b| b == 0).unwrap();
    let text = std::str::from_utf8(&area[..text_len]).unwrap();
    let mut new = edit(text).into_bytes();
    assert!(new.len() < len, "descriptor does not fit its sectors");
    new.resize(len, 0);
    patch(path, offset as u64, &new);
}

/// Replaces the qcow2 header extensions (a v3 image without a backing file) with `exts`
/// (type, data), keeping the end marker.
pub fn set_qcow2_extensions(path: &Path, exts: &[(u32, Vec<u8>)]) {
    let bytes = std::fs::read(path).unwrap();
    let start = u32::from_be_bytes(bytes[100..104].try_into().unwrap()) as usize;
    let mut area = Vec::new();
    for (kind, data) in exts {
        area.extend_from_slice(&kind.to_be_bytes());
        area.extend_from_slice(&(data.len() as u32).to_be_bytes());
        area.extend_from_slice(data);
        area.resize(area.len().next_multiple_of(8), 0);
    }
    area.resize(4096 - start, 0);
    patch(path, start as u64, &area);
}

/// The header extensions of a v3 qcow2 image, as (type, data).
pub fn qcow2_extensions(path: &Path) -> Vec<(u32, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    let be32 = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let mut at = be32(100) as usize;
    let mut out = Vec::new();
    loop {
        let (kind, len) = (be32(at), be32(at + 4) as usize);
        at += 8;
        if kind == 0 {
            return out;
        }
        out.push((kind, b[at..at + len].to_vec()));
        at += len.next_multiple_of(8);
    }
}

/// gzip-compresses what the shell command `data_cmd` prints into `out`, with the `gzip`
/// tool (fast even for hundreds of MiB; the debug-built flate2 is not).
pub fn gzip_to(data_cmd: &str, out: &Path) {
    run(Command::new("bash").arg("-c").arg(format!(
        "set -o pipefail; {{ {data_cmd}; }} | gzip -c -9 > '{}'",
        out.display()
    )));
}

/// gzip-compresses `data` into one gzip member.
pub fn gzip_member(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}
