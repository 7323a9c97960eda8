//! A runaway `qemu-img` (SECURITY.md item 14) in the commands that `tests/import_rejects_image`
//! (`runaway.rs`: `info` allocating without end, and hanging until the 60 s wall timeout)
//! does not reach: `convert`, which imports a qcow2 disk, and `snapshot`, which snapshots an
//! instance whose domain is off. A stand-in (`VMD_QEMU_IMG`) allocates without end in that
//! command and hands every other call to the real `qemu-img`; the address-space limit stops
//! it, and the operation fails in one line and leaves nothing of itself behind.
//!
//! A hanging `convert` or `snapshot` is stopped only by its wall timeout, ten minutes or more
//! (`Limits::convert_for`, `Limits::SNAPSHOT`), too long for this suite: the wall timeout
//! itself is shown by the `info` hang test and by the runner's unit tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
#[allow(dead_code)] // the rejection tests' fixtures; this file uses a few
#[path = "import_rejects_image/fixtures.rs"]
mod fixtures;
#[path = "reliability/lab.rs"]
mod lab;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::{pattern, processes_with, qemu_img, Disk, Trial, MIB, QCOW2};
use lab::{assert_fails, Lab};

/// Bash that doubles a string until the address-space limit stops it.
const ALLOCATE: &str = "s=x; while :; do s=\"$s$s\"; done";

/// Writes a stand-in `qemu-img` into `dir` that runs [`ALLOCATE`] on the `nth` call whose
/// first argument is `command`, and the real `qemu-img` for everything else.
fn runaway_stub(dir: &Path, command: &str, nth: u32) -> PathBuf {
    let path = dir.join("qemu-img-runaway");
    let count = dir.join("qemu-img-runaway.count");
    let script = format!(
        "#!/bin/bash\n\
         if [ \"$1\" = {command} ]; then\n\
         n=$(( $(cat '{count}' 2>/dev/null || echo 0) + 1 ))\n\
         echo $n > '{count}'\n\
         if [ $n = {nth} ]; then {ALLOCATE}; fi\n\
         fi\n\
         exec /usr/bin/qemu-img \"$@\"\n",
        count = count.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn runaway_qemu_img_convert_allocating_without_end_is_stopped_and_import_leaves_nothing() {
    let mut t = Trial::new("rconv");
    // A qcow2 disk is staged in the pool and converted into its volume by `qemu-img convert`.
    std::fs::write(t.file("disk.raw"), pattern(MIB as usize, 7)).unwrap();
    qemu_img(
        &t.pkg,
        &[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "qcow2",
            "disk.raw",
            "disk.qcow2",
        ],
    );
    std::fs::remove_file(t.file("disk.raw")).unwrap();
    t.package(&[Disk::file("disk.qcow2", QCOW2, MIB)]);
    let stub = runaway_stub(t.env.dir(), "convert", 1);
    t.stub.path = stub.clone();

    let out = t.import(&[]);

    // Exit 1: a tool failure, not a package rejection; the staged copy is gone too.
    t.assert_failed_clean(&out, 1, &["qemu-img convert"]);
    assert!(processes_with(&stub.to_string_lossy()).is_empty());
}

#[test]
fn runaway_qemu_img_snapshot_allocating_without_end_is_stopped_and_snapshot_leaves_nothing() {
    let lab = Lab::new("rsnap");
    let (master, inst) = (lab.name("m"), lab.name("i"));
    lab.import_tiny(&master);
    lab.ok(&["clone", &master, &inst]);
    // The second disk's `snapshot -c` runs away, after the first disk's succeeded: the
    // first disk's snapshot must be taken back.
    let stub = runaway_stub(lab.env.dir(), "snapshot", 2);

    let out = lab.run_env(
        &["snapshot", &inst, "s1"],
        &[("VMD_QEMU_IMG", stub.to_str().unwrap())],
    );

    let line = assert_fails(&out, Some(1), &["qemu-img snapshot"]);
    eprintln!("{line}");
    assert_eq!(lab.json(&["snapshots", &inst]), serde_json::json!([]));
    for path in lab.disk_paths(&inst) {
        let out = common::run(Command::new("qemu-img").args(["snapshot", "-l", "-U", &path]));
        assert!(!out.contains("s1"), "{path} keeps the snapshot: {out}");
    }
    assert!(processes_with(&stub.to_string_lossy()).is_empty());
    lab.assert_consistent();
    // The real qemu-img takes the same snapshot at once.
    lab.ok(&["snapshot", &inst, "s1"]);
}
