//! Refusals name the file and the reason in words (SECURITY.md items 5 and 43: backing
//! files, links in place of package files): a chunked qcow2 whose backing file is a host
//! file, refused from its staged copy, and symbolic links as the package path, as a disk
//! file and as a chunk. Each leaves no volume, no file in the pool and no catalog entry.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::env::TestEnv;
use crate::common::ovf::{descriptor, Disk, QCOW2, RAW};
use crate::common::packages::{make_ova, package_dir};
use crate::common::run;

const MIB: u64 = 1 << 20;
const CHUNK: u64 = 64 << 10;

fn qemu_img(dir: &Path, args: &[&str]) {
    run(Command::new("qemu-img").current_dir(dir).args(args));
}

/// Writes `pkg.ovf` for `disks` (their whole files in `dir`); `chunked` hrefs get an
/// `ovf:chunkSize` of [`CHUNK`].
fn write_descriptor(dir: &Path, disks: &[Disk], chunked: &[&str]) {
    let mut text = descriptor(dir, "refusals", disks);
    for href in chunked {
        let file = format!("<File ovf:href=\"{href}\"");
        text = text.replace(&file, &format!("{file} ovf:chunkSize=\"{CHUNK}\""));
    }
    std::fs::write(dir.join("pkg.ovf"), text).unwrap();
}

/// Splits `dir/name` into `name.000000000`, ... of [`CHUNK`] bytes and removes the whole.
fn split(dir: &Path, name: &str) -> Vec<String> {
    run(Command::new("split")
        .current_dir(dir)
        .args(["-b", &CHUNK.to_string(), "-d", "-a", "9", name])
        .arg(format!("{name}.")));
    std::fs::remove_file(dir.join(name)).unwrap();
    let mut chunks: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(&format!("{name}.")))
        .collect();
    chunks.sort();
    chunks
}

/// A package directory holding a 1 MiB qcow2, stored in chunks, whose backing file is
/// `/etc/hosts`.
fn chunked_qcow2_with_backing(env: &TestEnv) -> PathBuf {
    let dir = package_dir(env.dir(), "pkg");
    qemu_img(
        &dir,
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "/etc/hosts",
            "-F",
            "raw",
            "disk.qcow2",
            "1M",
        ],
    );
    write_descriptor(
        &dir,
        &[Disk::file("disk.qcow2", QCOW2, MIB)],
        &["disk.qcow2"],
    );
    assert!(split(&dir, "disk.qcow2").len() > 1, "not chunked");
    dir
}

/// A package directory holding one 1 MiB raw disk, `disk.raw`.
fn raw_package(env: &TestEnv) -> PathBuf {
    let dir = package_dir(env.dir(), "pkg");
    qemu_img(&dir, &["create", "-q", "-f", "raw", "disk.raw", "1M"]);
    write_descriptor(&dir, &[Disk::file("disk.raw", RAW, MIB)], &[]);
    dir
}

fn import(env: &TestEnv, package: &Path) -> Output {
    env.command()
        .arg("import")
        .arg(package)
        .output()
        .expect("run vmd import")
}

/// Exit 3, exactly `line` on stderr, and nothing left: no volume, no file in the pool (no
/// staged copy), no catalog entry.
fn assert_refused_clean(env: &TestEnv, out: &Output, line: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert_eq!(stderr, format!("{line}\n"));
    assert_eq!(env.volumes(), Vec::<String>::new(), "volumes left");
    let left: Vec<_> = std::fs::read_dir(env.dir().join("pool"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left in the pool: {left:?}");
    assert!(env.catalog().is_empty(), "catalog entry left");
}

// SECURITY.md item 5: the reason, not only "cannot accept image <staging file>".
#[test]
fn import_chunked_qcow2_with_backing_file_names_the_file_and_the_reason() {
    let env = TestEnv::new("ref-chunk-bf");
    let pkg = chunked_qcow2_with_backing(&env);

    let out = import(&env, &pkg);

    assert_refused_clean(
        &env,
        &out,
        "vmd: disk.qcow2: qcow2 image has a backing file (backing_file_offset 0x210, \
         backing_file_size 10, names \"/etc/hosts\")",
    );
}

// SECURITY.md items 1 and 5: `verify` and `import --dry-run` read a chunked (or compressed)
// disk front to back and never stage it; they refuse its backing file from the header, as
// import does from the staged copy, instead of reporting every disk checked.
#[test]
fn verify_and_dry_run_chunked_qcow2_with_backing_file_are_refused() {
    let env = TestEnv::new("ref-chunk-bf-verify");
    let pkg = chunked_qcow2_with_backing(&env);

    for args in [vec!["verify"], vec!["import", "--dry-run"]] {
        let out = env
            .command()
            .args(&args)
            .arg(&pkg)
            .output()
            .expect("run vmd");

        assert_refused_clean(
            &env,
            &out,
            "vmd: disk.qcow2: qcow2 image has a backing file (backing_file_offset 0x210, \
             backing_file_size 10, names \"/etc/hosts\")",
        );
    }
}

// SECURITY.md item 43: a link as the package path, in words, not "(os error 40)".
#[test]
fn import_symlinked_ova_names_the_link_and_the_reason() {
    let env = TestEnv::new("ref-link-ova");
    let pkg = raw_package(&env);
    let ova = env.dir().join("pkg.ova");
    make_ova(&pkg, &ova, &["pkg.ovf", "disk.raw"]);
    let link = env.dir().join("link.ova");
    symlink(&ova, &link).unwrap();

    let out = import(&env, &link);

    let line = format!(
        "vmd: cannot open package {}: it is a symbolic link, which vmd does not follow (name \
         the file it points to)",
        link.display()
    );
    assert_refused_clean(&env, &out, &line);
}

// SECURITY.md item 43: a link in place of a disk file is a link, not a missing file.
#[test]
fn import_symlinked_disk_file_names_the_file_and_the_reason() {
    let env = TestEnv::new("ref-link-disk");
    let pkg = raw_package(&env);
    let real = env.dir().join("disk.raw");
    std::fs::rename(pkg.join("disk.raw"), &real).unwrap();
    symlink(&real, pkg.join("disk.raw")).unwrap();

    let out = import(&env, &pkg);

    assert_refused_clean(
        &env,
        &out,
        "vmd: disk.raw is a symbolic link, which vmd does not follow",
    );
}

// SECURITY.md item 43: a link in place of a chunk is a link, not a missing chunk.
#[test]
fn import_symlinked_chunk_names_the_chunk_and_the_reason() {
    let env = TestEnv::new("ref-link-chunk");
    let pkg = package_dir(env.dir(), "pkg");
    qemu_img(&pkg, &["create", "-q", "-f", "raw", "disk.raw", "1M"]);
    write_descriptor(&pkg, &[Disk::file("disk.raw", RAW, MIB)], &["disk.raw"]);
    let chunks = split(&pkg, "disk.raw");
    let real = env.dir().join("chunk0");
    std::fs::rename(pkg.join(&chunks[0]), &real).unwrap();
    symlink(&real, pkg.join(&chunks[0])).unwrap();

    let out = import(&env, &pkg);

    assert_refused_clean(
        &env,
        &out,
        "vmd: disk.raw.000000000 is a symbolic link, which vmd does not follow",
    );
}
