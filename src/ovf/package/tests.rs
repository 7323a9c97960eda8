//! Refusals of what is not a regular file name the file and say why in words (SECURITY.md
//! item 43): a link as the package path, as its descriptor, as a disk file or a chunk.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::ovf::transfer::{self, Declared, TransferError};

/// A directory of this test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("vmd-package-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The error with its causes, as the CLI prints it.
fn words(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        line.push_str(&format!(": {c}"));
        cause = c.source();
    }
    line
}

fn declared(href: &str, size: u64, chunk_size: Option<u64>) -> Declared<'_> {
    Declared {
        href,
        size: Some(size),
        gzip: false,
        chunk_size,
    }
}

#[test]
fn open_symlinked_ova_says_it_is_a_link_not_os_error_40() {
    let dir = Scratch::new("link-ova");
    std::fs::write(dir.path().join("real.ova"), b"").unwrap();
    let link = dir.path().join("link.ova");
    symlink(dir.path().join("real.ova"), &link).unwrap();

    let err = Package::open(&link).unwrap_err();

    assert_eq!(
        words(&err),
        format!(
            "cannot open package {}: it is a symbolic link, which vmd does not follow (name the \
             file it points to)",
            link.display()
        )
    );
}

#[test]
fn open_symlinked_descriptor_says_it_is_a_link() {
    let dir = Scratch::new("link-ovf");
    std::fs::write(dir.path().join("real.xml"), b"<Envelope/>").unwrap();
    let link = dir.path().join("pkg.ovf");
    symlink(dir.path().join("real.xml"), &link).unwrap();

    let err = Package::open(&link).unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "{}: pkg.ovf is a symbolic link, which vmd does not follow",
            dir.path().display()
        )
    );
}

#[test]
fn locate_symlinked_disk_file_is_not_regular_rather_than_missing() {
    let dir = Scratch::new("link-disk");
    std::fs::write(dir.path().join("pkg.ovf"), b"<Envelope/>").unwrap();
    std::fs::write(dir.path().join("elsewhere"), [0u8; 512]).unwrap();
    symlink(dir.path().join("elsewhere"), dir.path().join("disk.raw")).unwrap();
    let pkg = Package::open(dir.path()).unwrap();

    let err = transfer::locate(&pkg, &declared("disk.raw", 512, None)).unwrap_err();

    assert!(
        matches!(err, TransferError::Package(PackageError::NotRegular { .. })),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "disk.raw is a symbolic link, which vmd does not follow"
    );
}

#[test]
fn locate_subdirectory_as_chunk_is_not_regular_rather_than_missing() {
    let dir = Scratch::new("dir-chunk");
    std::fs::write(dir.path().join("pkg.ovf"), b"<Envelope/>").unwrap();
    std::fs::create_dir(dir.path().join("disk.raw.000000000")).unwrap();
    std::fs::write(dir.path().join("disk.raw.000000001"), [0u8; 512]).unwrap();
    let pkg = Package::open(dir.path()).unwrap();

    let err = transfer::locate(&pkg, &declared("disk.raw", 1024, Some(512))).unwrap_err();

    assert_eq!(
        err.to_string(),
        "disk.raw.000000000 is a directory, not a regular file"
    );
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

fn open_message(path: &Path) -> String {
    match Package::open(path) {
        Ok(_) => panic!("{} was opened", path.display()),
        Err(e) => format!("{e}: {}", std::error::Error::source(&e).unwrap()),
    }
}

// SECURITY.md item 43: a FIFO is refused without being opened (the open would block).
#[test]
fn open_plain_refuses_a_fifo_without_blocking() {
    let dir = Scratch::new("fifo");
    let fifo = dir.0.join("pkg.ova");
    mkfifo(&fifo);
    let err = open_plain(&fifo).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "a FIFO is not a regular file");
}

// SECURITY.md item 43: the package path itself, a FIFO or a character device.
#[test]
fn package_open_refuses_a_fifo_and_a_character_device() {
    let dir = Scratch::new("open");
    let fifo = dir.0.join("pkg.ova");
    mkfifo(&fifo);
    assert!(
        open_message(&fifo).ends_with("pkg.ova: a FIFO is not a regular file"),
        "{}",
        open_message(&fifo)
    );
    assert_eq!(
        open_message(Path::new("/dev/null")),
        "cannot open package /dev/null: a character device is not a regular file"
    );
}

// SECURITY.md item 43: a FIFO in a package directory is not one of its files.
#[test]
fn package_directory_ignores_a_fifo_named_by_the_descriptor() {
    let dir = Scratch::new("dir");
    std::fs::write(dir.0.join("pkg.ovf"), b"<Envelope/>").unwrap();
    mkfifo(&dir.0.join("disk.img"));
    let pkg = Package::open(&dir.0).unwrap();
    assert_eq!(pkg.size("disk.img"), None);
    assert!(matches!(
        pkg.open_file("disk.img"),
        Err(PackageError::Missing { .. })
    ));
}

#[test]
fn open_plain_reads_a_regular_file() {
    let dir = Scratch::new("regular");
    let path = dir.0.join("a");
    std::fs::write(&path, b"data").unwrap();
    let mut text = String::new();
    open_plain(&path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "data");
}

// SECURITY.md item 44: a package directory is listed with a stated limit.
#[test]
fn package_directory_with_too_many_entries_is_refused() {
    let dir = Scratch::new("many");
    std::fs::write(dir.0.join("pkg.ovf"), b"<Envelope/>").unwrap();
    for i in 0..MAX_DIR_ENTRIES {
        std::fs::write(dir.0.join(format!("f{i}")), b"").unwrap();
    }
    let err = Package::open(&dir.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the directory holds more than 10000 entries",
            dir.0.display()
        )
    );
}
