//! A pool on a small filesystem (SECURITY.md items 26 and 27), on the real libvirtd: a 64 MiB
//! ext4 image loop-mounted under the test's directory (a 48 MiB tmpfs where loop devices are
//! unavailable), with a `dir` pool on it. An import that cannot fit is refused before anything
//! is written, and so is one whose declared `populatedSize` lies (the preflight counts what
//! the image really holds), however often it is retried; a clone or a snapshot on a full
//! pool fails cleanly and succeeds once there is room.
//!
//! The filesystem is unmounted by a drop guard, also when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
#[path = "reliability/lab.rs"]
mod lab;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::ovf::{descriptor, Disk, QCOW2, RAW};
use common::run;
use lab::{assert_fails, volumes_of, Lab};

const MIB: u64 = 1 << 20;

/// A small filesystem mounted under a test directory, with a libvirt `dir` pool in it;
/// destroyed and unmounted when dropped. Declare it after the [`Lab`] it lives in, so that it
/// goes first.
struct SmallPool {
    name: String,
    mnt: PathBuf,
    image: PathBuf,
    mounted: bool,
    defined: bool,
}

impl SmallPool {
    fn new(dir: &Path) -> Self {
        let mut me = Self {
            name: format!(
                "vmdtest-small-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            mnt: dir.join("small"),
            image: dir.join("small.img"),
            mounted: false,
            defined: false,
        };
        std::fs::create_dir_all(&me.mnt).unwrap();
        std::fs::File::create(&me.image)
            .unwrap()
            .set_len(64 * MIB)
            .unwrap();
        // No blocks reserved for root: vmd runs as root here and would write into them.
        let loop_ok = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&me.image)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("mount")
                .args(["-o", "loop"])
                .arg(&me.image)
                .arg(&me.mnt)
                .status()
                .is_ok_and(|s| s.success());
        if !loop_ok {
            eprintln!("loop mount unavailable: using a 48 MiB tmpfs");
            run(Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=48m,mode=0755", "tmpfs"])
                .arg(&me.mnt));
        }
        me.mounted = true;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&me.mnt, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(me.pool_dir()).unwrap();
        let xml = format!(
            "<pool type='dir'><name>{}</name><target><path>{}</path></target></pool>",
            me.name,
            me.pool_dir().display()
        );
        virt::error::clear_error_callback();
        let c = virt::connect::Connect::open(Some("qemu:///system")).unwrap();
        c.create_storage_pool_xml(&xml, 0).unwrap();
        me.defined = true;
        me
    }

    fn pool_dir(&self) -> PathBuf {
        self.mnt.join("pool")
    }

    /// Bytes free on the filesystem.
    fn available(&self) -> u64 {
        let out = run(Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.mnt));
        out.lines().nth(1).unwrap().trim().parse().unwrap()
    }

    /// The files in the pool's directory.
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.pool_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Fills the filesystem (outside the pool's directory) until no block is left: one large
    /// allocation, then single blocks written until the filesystem refuses.
    fn fill_up(&self) {
        let avail = self.available();
        run(Command::new("fallocate")
            .args(["-l", &avail.saturating_sub(2 * MIB).to_string()])
            .arg(self.mnt.join("filler")));
        let mut f = std::fs::File::create(self.mnt.join("filler2")).unwrap();
        let block = [0u8; 4096];
        while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
        let left = self.available();
        assert!(
            left < 64 << 10,
            "the filesystem is not full: {left} bytes free"
        );
    }

    fn make_room(&self) {
        for f in ["filler", "filler2"] {
            let _ = std::fs::remove_file(self.mnt.join(f));
        }
    }
}

impl Drop for SmallPool {
    fn drop(&mut self) {
        if self.defined {
            virt::error::clear_error_callback();
            if let Ok(c) = virt::connect::Connect::open(Some("qemu:///system")) {
                if let Ok(p) = c.lookup_storage_pool_by_name(&self.name) {
                    let _ = p.destroy();
                }
            }
        }
        if self.mounted {
            let ok = (0..10).any(|_| {
                let done = Command::new("umount")
                    .arg(&self.mnt)
                    .status()
                    .is_ok_and(|s| s.success());
                if !done {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                done
            });
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            }
        }
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Writes a one-disk package into `dir` (`full.ovf` beside `href`) and returns the `.ovf`.
/// `populated` is the `ovf:populatedSize` the descriptor declares, true or not.
fn package(
    dir: &Path,
    href: &str,
    format: &'static str,
    capacity: u64,
    populated: Option<u64>,
) -> PathBuf {
    let mut disk = Disk::file(href, format, capacity);
    if let Some(p) = populated {
        disk = disk.populated(p);
    }
    let path = dir.join("full.ovf");
    std::fs::write(&path, descriptor(dir, "full", &[disk])).unwrap();
    path
}

/// `len` bytes that no filesystem or image format can compress or skip.
fn noise(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len as usize);
    out
}

/// A package directory under the lab holding `name` with `len` bytes of noise.
fn noise_file(lab: &Lab, name: &str, len: u64) -> PathBuf {
    let dir = lab.env.dir().join("pkg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), noise(len, 0x5eed)).unwrap();
    dir
}

/// After a failed import: no volume, no file in the pool, no catalog entry, and the space
/// it took given back.
fn assert_nothing_left(lab: &Lab, small: &SmallPool, free_before: u64) {
    assert_eq!(
        volumes_of(&small.name),
        Vec::<String>::new(),
        "volumes left"
    );
    assert_eq!(
        small.files(),
        Vec::<String>::new(),
        "files left in the pool"
    );
    assert!(lab.records().is_empty(), "catalog: {:?}", lab.records());
    let free = small.available();
    // ext4 may keep a few blocks of directory or journal growth.
    assert!(
        free + MIB >= free_before,
        "space not given back: {free_before} -> {free} bytes free"
    );
    lab.assert_consistent_in(&[&small.name]);
}

fn snapshot_names(lab: &Lab, name: &str) -> Vec<String> {
    lab.json(&["snapshots", name])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// The internal snapshots of a qcow2 image, by name, oldest first.
fn image_snapshots(path: &str) -> Vec<String> {
    let out = run(Command::new("qemu-img").args(["info", "-U", "--output=json", path]));
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    info["snapshots"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn disk_full_import_larger_than_free_space_is_refused_before_writing() {
    let lab = Lab::new("nofit");
    let small = SmallPool::new(lab.env.dir());
    let dir = noise_file(&lab, "disk.img", MIB);
    // A raw volume takes its whole capacity: 128 MiB on a 64 MiB filesystem.
    let ovf = package(&dir, "disk.img", RAW, 128 * MIB, None);
    let free = small.available();

    let out = lab.run(&[
        "import",
        ovf.to_str().unwrap(),
        "--name",
        &lab.name("big"),
        "--pool",
        &small.name,
        "--format",
        "raw",
    ]);

    let line = assert_fails(&out, Some(1), &["bytes free", &small.name]);
    assert!(
        line.contains(&format!("needs up to {}", 128 * MIB)),
        "{line}"
    );
    assert_nothing_left(&lab, &small, free);
    assert_eq!(small.available(), free, "something was written");
}

// SECURITY.md item 42: `ovf:populatedSize` is never trusted downward; the preflight counts
// the bytes the image really holds, so a lying descriptor is refused before anything is
// written.
#[test]
fn disk_full_import_whose_populated_size_lies_is_refused_before_writing() {
    let lab = Lab::new("lies");
    let small = SmallPool::new(lab.env.dir());
    // 64 MiB of noise declared as 1 MiB populated: the raw file's 64 MiB count.
    let dir = noise_file(&lab, "disk.img", 64 * MIB);
    let ovf = package(&dir, "disk.img", RAW, 64 * MIB, Some(MIB));
    let free = small.available();
    assert!(free < 64 * MIB, "{free}");

    // Twice: a retry fails the same way and leaks no space either.
    for attempt in 0..2 {
        let out = lab.run(&[
            "import",
            ovf.to_str().unwrap(),
            "--name",
            &lab.name("liar"),
            "--pool",
            &small.name,
        ]);
        let line = assert_fails(&out, Some(1), &["bytes free", &small.name]);
        eprintln!("attempt {attempt}: {line}");
        assert_nothing_left(&lab, &small, free);
        assert_eq!(small.available(), free, "something was written");
    }
}

// SECURITY.md item 42: a qcow2 is bounded by the clusters it maps (40 MiB), staged and
// converted beside each other, whatever populatedSize says: refused before writing.
#[test]
fn disk_full_qcow2_import_whose_populated_size_lies_is_refused_before_writing() {
    let lab = Lab::new("conv");
    let small = SmallPool::new(lab.env.dir());
    let dir = noise_file(&lab, "noise.raw", 40 * MIB);
    run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(dir.join("noise.raw"))
        .arg(dir.join("disk.qcow2")));
    let ovf = package(&dir, "disk.qcow2", QCOW2, 40 * MIB, Some(MIB));
    let free = small.available();

    let out = lab.run(&[
        "import",
        ovf.to_str().unwrap(),
        "--name",
        &lab.name("conv"),
        "--pool",
        &small.name,
    ]);

    let line = assert_fails(&out, Some(1), &["bytes free", &small.name]);
    eprintln!("{line}");
    assert_nothing_left(&lab, &small, free);
    assert_eq!(small.available(), free, "something was written");
}

#[test]
fn disk_full_qcow2_import_needing_room_to_stage_and_convert_is_refused_before_writing() {
    let lab = Lab::new("stage");
    let small = SmallPool::new(lab.env.dir());
    // A qcow2 disk is staged in the pool (30 MiB) and converted beside it (30 MiB more): it
    // needs twice its size on a filesystem with about 52 MiB free. The descriptor is honest.
    let dir = noise_file(&lab, "noise.raw", 30 * MIB);
    run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(dir.join("noise.raw"))
        .arg(dir.join("disk.qcow2")));
    let ovf = package(&dir, "disk.qcow2", QCOW2, 30 * MIB, Some(30 * MIB));
    let free = small.available();
    assert!(free > 31 * MIB && free < 60 * MIB, "{free}");

    let out = lab.run(&[
        "import",
        ovf.to_str().unwrap(),
        "--name",
        &lab.name("twice"),
        "--pool",
        &small.name,
    ]);

    assert_fails(&out, Some(1), &["bytes free", &small.name]);
    assert_nothing_left(&lab, &small, free);
    assert_eq!(small.available(), free, "something was written");
}

#[test]
fn disk_full_clone_and_snapshot_on_a_full_pool_fail_cleanly_then_succeed_with_room() {
    let lab = Lab::new("fullsnap");
    let small = SmallPool::new(lab.env.dir());
    let (master, inst) = (lab.name("m"), lab.name("i"));
    lab.import_tiny(&master);

    // A linked clone's overlays go to the full pool.
    small.fill_up();
    let out = lab.run(&["clone", &master, &inst, "--pool", &small.name]);
    let line = assert_fails(&out, Some(1), &["no space left on device"]);
    eprintln!("clone: {line}");
    assert_eq!(volumes_of(&small.name), Vec::<String>::new());
    assert_eq!(small.files(), Vec::<String>::new());
    lab.assert_consistent_in(&[&small.name]);

    small.make_room();
    lab.ok(&["clone", &master, &inst, "--pool", &small.name]);
    lab.ok(&["snapshot", &inst, "s1"]);

    // A snapshot on the full pool fails, and the catalog does not list it.
    small.fill_up();
    let out = lab.run(&["snapshot", &inst, "s2"]);
    let line = assert_fails(&out, Some(1), &["no space left on device"]);
    eprintln!("snapshot: {line}");
    assert_eq!(snapshot_names(&lab, &inst), ["s1"]);
    for path in lab.disk_paths(&inst) {
        run(Command::new("qemu-img").args(["check", "-U", &path]));
    }
    lab.assert_consistent_in(&[&small.name]);

    // With room again, the same command succeeds: every disk holds s1 and s2 once each, and
    // reverting to s2 works.
    small.make_room();
    lab.ok(&["snapshot", &inst, "s2"]);
    assert_eq!(snapshot_names(&lab, &inst), ["s1", "s2"]);
    for path in lab.disk_paths(&inst) {
        assert_eq!(image_snapshots(&path), ["s1", "s2"], "{path}");
    }
    lab.ok(&["revert", &inst, "s2"]);
    lab.ok(&["delete", &inst]);
    lab.ok(&["delete", &master]);
    lab.assert_consistent_in(&[&small.name]);
    assert_eq!(small.files(), Vec::<String>::new());
}
