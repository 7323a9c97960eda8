//! Refusals of what is not a regular file name the file and say why in words (SECURITY.md
//! item 43): a link as the package path, as its descriptor, as a disk file or a chunk.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

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
