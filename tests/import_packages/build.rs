//! Building the project's own test packages: the tiny appliance's two disks wrapped in the
//! descriptors of `ovf/samples/`, compressed, chunked, signed or converted as a producer would,
//! and the checks every import test shares (disks, volumes, content against a plain import).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::env::TestEnv;
use crate::common::packages::{fill, package_dir, size, tiny_parts};
use crate::common::{repo, run, tiny_ova};

pub const MIB: u64 = 1 << 20;
/// The OS disk file names of the tiny appliance.
pub const DISK1: &str = "tiny-disk1.vmdk";
/// Its blank data disk.
pub const DISK2: &str = "tiny-disk2.vmdk";

/// The tiny appliance's parts, extracted once per test, and what descriptors say of them.
pub struct Tiny {
    pub dir: PathBuf,
    /// Virtual sizes of the OS and data disk, as qemu-img reads them.
    pub capacity: [u64; 2],
    /// `ovf:populatedSize` of each disk, as `ovf/build-tiny` wrote it.
    pub populated: [u64; 2],
}

impl Tiny {
    pub fn extract(env: &TestEnv) -> Self {
        let dir = package_dir(env.dir(), "tiny-parts");
        tiny_parts(&dir);
        let capacity = [DISK1, DISK2].map(|f| virtual_size(&dir.join(f)));
        let ovf = std::fs::read_to_string(dir.join("tiny.ovf")).unwrap();
        let populated: Vec<u64> = ovf
            .split("ovf:populatedSize=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse().unwrap())
            .collect();
        Self {
            dir,
            capacity,
            populated: populated.try_into().unwrap(),
        }
    }

    pub fn part(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Placeholder values for a sample whose two disk files are stored in `stored` bytes.
    pub fn values(&self, stored: [u64; 2]) -> Vec<(&'static str, String)> {
        vec![
            ("DISK1_FILE_SIZE", stored[0].to_string()),
            ("DISK2_FILE_SIZE", stored[1].to_string()),
            ("DISK1_CAPACITY", self.capacity[0].to_string()),
            ("DISK2_CAPACITY", self.capacity[1].to_string()),
            ("DISK1_CAPACITY_MIB", (self.capacity[0] / MIB).to_string()),
            ("DISK2_CAPACITY_MIB", (self.capacity[1] / MIB).to_string()),
            ("DISK1_POPULATED_SIZE", self.populated[0].to_string()),
            ("DISK2_POPULATED_SIZE", self.populated[1].to_string()),
        ]
    }

    /// The plain disk files' sizes.
    pub fn plain_sizes(&self) -> [u64; 2] {
        [size(&self.part(DISK1)), size(&self.part(DISK2))]
    }

    /// Copies the two plain disk files into `dir`.
    pub fn copy_disks(&self, dir: &Path) {
        for f in [DISK1, DISK2] {
            std::fs::copy(self.part(f), dir.join(f)).unwrap();
        }
    }
}

/// A path as a command-line argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// What a command printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh package directory under the environment's directory.
pub fn new_package(env: &TestEnv, name: &str) -> PathBuf {
    package_dir(env.dir(), name)
}

/// Writes `dir/file` from the sample `ovf/samples/<sample>` with `values` filled in.
pub fn write_descriptor(dir: &Path, file: &str, sample: &str, values: &[(&str, String)]) {
    let template = std::fs::read_to_string(repo().join("ovf/samples").join(sample)).unwrap();
    let text = fill(&template, values);
    if let Some(left) = placeholder(&text) {
        panic!("{sample}: placeholder {left} left unfilled");
    }
    std::fs::write(dir.join(file), text).unwrap();
}

/// The first `@NAME@` placeholder (upper case, digits, underscores) left in `text`.
fn placeholder(text: &str) -> Option<String> {
    let mut parts = text.split('@');
    parts.next();
    let mut candidates = parts.peekable();
    while let Some(p) = candidates.next() {
        let is_name = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if is_name && candidates.peek().is_some() {
            return Some(format!("@{p}@"));
        }
    }
    None
}

/// Writes `dst` as `gzip -n` compresses `src`, and returns its size.
pub fn gzip(src: &Path, dst: &Path) -> u64 {
    let out = File::create(dst).unwrap();
    let status = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(src)
        .stdout(Stdio::from(out))
        .status()
        .unwrap();
    assert!(status.success(), "gzip {src:?} failed");
    size(dst)
}

/// Stores `src` in `dir` as the chunks `<name>.000000000`, `<name>.000000001`, ... of `chunk`
/// bytes, as `split -b N -d -a 9` names them, and returns the chunk names in order.
pub fn split(src: &Path, dir: &Path, name: &str, chunk: u64) -> Vec<String> {
    let prefix = dir.join(format!("{name}."));
    run(Command::new("split")
        .args(["-b", &chunk.to_string(), "-d", "-a", "9"])
        .arg(src)
        .arg(&prefix));
    let mut chunks: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            n.strip_prefix(&format!("{name}."))
                .is_some_and(is_chunk_suffix)
        })
        .collect();
    chunks.sort();
    chunks
}

fn is_chunk_suffix(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `qemu-img info -U --output=json`.
pub fn qemu_info(path: &Path) -> Value {
    let out = run(Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(path));
    serde_json::from_str(&out).unwrap()
}

pub fn virtual_size(path: &Path) -> u64 {
    qemu_info(path)["virtual-size"].as_u64().unwrap()
}

/// Imports the plain `tiny.ova` as master `reference`: what every other package's disks must
/// equal. Returns its `show --json`.
pub fn import_reference(env: &TestEnv) -> Value {
    env.vmd_ok(&[
        "import",
        tiny_ova().to_str().unwrap(),
        "--name",
        "reference",
    ]);
    env.json(&["show", "reference"])
}

/// The path of disk `index` of a `show --json`.
pub fn disk_path(show: &Value, index: usize) -> PathBuf {
    PathBuf::from(show["disks"][index]["path"].as_str().unwrap())
}

/// Asserts `qemu-img compare` finds the volume at `path` (in `format`) and the qcow2 volume at
/// `reference` identical as guests see them.
pub fn assert_same_content(path: &Path, format: &str, reference: &Path) {
    let out = Command::new("qemu-img")
        .args(["compare", "-f", format, "-F", "qcow2"])
        .arg(path)
        .arg(reference)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{path:?} differs from {reference:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What one imported disk must be.
pub struct Expect<'a> {
    pub id: &'a str,
    pub role: &'a str,
    pub unit: u64,
    pub capacity: u64,
}

/// Asserts the disks of a `show --json` (in order) and that each volume is in the
/// environment's pool, in `format`, of the declared capacity and with no backing file.
pub fn assert_disks(env: &TestEnv, show: &Value, format: &str, expect: &[Expect<'_>]) {
    let disks = show["disks"].as_array().unwrap();
    assert_eq!(disks.len(), expect.len(), "{disks:#?}");
    let volumes = env.volumes();
    for (d, e) in disks.iter().zip(expect) {
        assert_eq!(d["id"], e.id, "{d:#}");
        assert_eq!(d["role"], e.role, "{d:#}");
        assert_eq!(d["bus"], "scsi", "{d:#}");
        assert_eq!(d["unit"], e.unit, "{d:#}");
        assert_eq!(d["capacity_bytes"], e.capacity, "{d:#}");
        assert_eq!(d["format"], format, "{d:#}");
        assert_eq!(d["pool"], env.pool.as_str(), "{d:#}");
        let volume = d["volume"].as_str().unwrap();
        assert!(
            volumes.iter().any(|v| v == volume),
            "{volume} not in {volumes:?}"
        );
        let info = qemu_info(Path::new(d["path"].as_str().unwrap()));
        assert_eq!(info["format"], format, "{info:#}");
        assert_eq!(info["virtual-size"], e.capacity, "{info:#}");
        assert!(info.get("backing-filename").is_none(), "{info:#}");
    }
}

/// The tiny appliance's two disks as every sample declares them.
pub fn tiny_disks(tiny: &Tiny) -> [Expect<'static>; 2] {
    [
        Expect {
            id: "vmdisk1",
            role: "os",
            unit: 0,
            capacity: tiny.capacity[0],
        },
        Expect {
            id: "vmdisk2",
            role: "data",
            unit: 1,
            capacity: tiny.capacity[1],
        },
    ]
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs `dir/<manifest>` with a new self-signed RSA key made by the `openssl` CLI, as
/// `tests/data/cert/make-fixtures.sh` makes its signers, and writes `dir/<cert>`: the
/// signature line, then the PEM certificate. The key stays in `work` (the test's scratch).
pub fn sign(work: &Path, dir: &Path, manifest: &str, cert: &str, subject: &str) {
    let cnf = work.join("openssl.cnf");
    std::fs::write(
        &cnf,
        "[req]\ndistinguished_name = dn\n[dn]\n[signer_ext]\nbasicConstraints = CA:FALSE\n\
         keyUsage = critical,digitalSignature\nextendedKeyUsage = codeSigning\n",
    )
    .unwrap();
    let key = work.join("signer.key");
    let pem = work.join("signer.pem");
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"])
        .args(["-days", "30", "-subj", subject, "-extensions", "signer_ext"])
        .arg("-config")
        .arg(&cnf)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&pem));
    let signature = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary", "-sign"])
        .arg(&key)
        .arg(dir.join(manifest))
        .output()
        .unwrap();
    assert!(signature.status.success(), "openssl dgst failed");
    let mut text = format!("SHA256({manifest})= {}\n", hex(&signature.stdout));
    text.push_str(&std::fs::read_to_string(&pem).unwrap());
    std::fs::write(dir.join(cert), text).unwrap();
}
