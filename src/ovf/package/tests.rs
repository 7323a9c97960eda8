//! Package files that are not regular files (SECURITY.md item 43).

use std::path::PathBuf;
use std::process::Command;

use super::*;

/// A fresh directory under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vmd-pkg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
