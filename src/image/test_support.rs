//! Test helpers shared by the image tests: a self-removing temporary directory and a
//! `qemu-img` probe that lets real-image tests skip, with a note, where it is not installed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::qemu_img::QemuImg;

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("vmd-image-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real `qemu-img`, or `None` (with a note on stderr) when it is not installed.
pub fn real_qemu_img(test: &str) -> Option<QemuImg> {
    match QemuImg::from_env() {
        Ok(q) => Some(q),
        Err(err) => {
            eprintln!("note: skipping {test}: {err}");
            None
        }
    }
}
