//! The domain template a user names with `--template FILE`: a regular file of at most
//! [`MAX_TEMPLATE`] bytes of UTF-8 text, read once through a bounded reader (SECURITY.md
//! item 44). Errors name the file and the problem, never its content: with delegated
//! privileges the path may name a file the user cannot read (item 8 of the security issue).

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::Error;

/// The largest template accepted, 1 MiB. The built-in `templates/domain.xml` is under 4 KiB;
/// a domain template is a page of XML, not data. `/dev/zero` or a runaway file stops here.
pub const MAX_TEMPLATE: u64 = 1 << 20;

/// Reads the template at `path`. Anything but a regular file (a FIFO, a device, a directory,
/// a socket) is refused before it is opened for reading, and again by the opened file's own
/// type, in case the path was replaced in between.
pub fn read(path: &Path) -> Result<String, Error> {
    let refuse =
        |problem: String| Error::Request(format!("template {}: {problem}", path.display()));
    let io = |source| Error::Io {
        action: "read template",
        path: path.to_path_buf(),
        source,
    };
    check(&std::fs::metadata(path).map_err(io)?).map_err(refuse)?;
    // O_NONBLOCK: should a FIFO be swapped in after the check, opening it does not wait for
    // a writer; the type check on the opened file then refuses it.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    check(&file.metadata().map_err(io)?).map_err(refuse)?;
    let bytes = read_capped(file).map_err(io)?;
    if bytes.len() as u64 > MAX_TEMPLATE {
        return Err(refuse(format!(
            "grew past the limit of {MAX_TEMPLATE} bytes while being read"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// At most one byte more than [`MAX_TEMPLATE`], so a file that grew is noticed.
fn read_capped(file: File) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(MAX_TEMPLATE + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A regular file within the size limit, or what is wrong with it in words.
fn check(meta: &Metadata) -> Result<(), String> {
    let kind = meta.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    };
    if let Some(what) = what {
        return Err(format!("is {what}, not a regular file"));
    }
    if meta.len() > MAX_TEMPLATE {
        return Err(format!(
            "is {} bytes, more than the limit of {MAX_TEMPLATE} bytes for a template",
            meta.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A directory of this test's own, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("vmd-template-{tag}-{}", std::process::id()));
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

    fn message(result: Result<String, Error>) -> String {
        match result {
            Err(e @ Error::Request(_)) => e.to_string(),
            other => panic!("expected a refused request, got {other:?}"),
        }
    }

    // SECURITY.md item 44: /dev/zero would be read until memory runs out.
    #[test]
    fn read_character_device_is_refused_before_reading() {
        let msg = message(read(Path::new("/dev/zero")));

        assert_eq!(
            msg,
            "template /dev/zero: is a character device, not a regular file"
        );
    }

    // SECURITY.md items 43 and 44: opening a FIFO for reading would wait for a writer.
    #[test]
    fn read_fifo_is_refused_without_blocking() {
        let dir = Scratch::new("fifo");
        let fifo = dir.path().join("t.xml");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());

        let msg = message(read(&fifo));

        assert!(msg.ends_with(": is a FIFO, not a regular file"), "{msg}");
    }

    #[test]
    fn read_directory_is_refused() {
        let dir = Scratch::new("dir");

        let msg = message(read(dir.path()));

        assert!(
            msg.ends_with(": is a directory, not a regular file"),
            "{msg}"
        );
    }

    // SECURITY.md item 44: the cap is checked before reading (sparse: no disk used).
    #[test]
    fn read_file_over_the_cap_is_refused_by_size() {
        let dir = Scratch::new("big");
        let path = dir.path().join("big.xml");
        File::create(&path)
            .unwrap()
            .set_len(MAX_TEMPLATE + 1)
            .unwrap();

        let msg = message(read(&path));

        assert!(
            msg.ends_with(
                ": is 1048577 bytes, more than the limit of 1048576 bytes for a template"
            ),
            "{msg}"
        );
    }

    #[test]
    fn read_file_at_the_cap_is_accepted() {
        let dir = Scratch::new("max");
        let path = dir.path().join("max.xml");
        std::fs::write(&path, vec![b' '; MAX_TEMPLATE as usize]).unwrap();

        assert_eq!(read(&path).unwrap().len() as u64, MAX_TEMPLATE);
    }

    // Item 8 of the security issue: the error says where, not what.
    #[test]
    fn read_binary_file_names_the_offset_not_the_bytes() {
        let dir = Scratch::new("bin");
        let path = dir.path().join("bin.xml");
        std::fs::write(&path, b"secret\xff\xfe").unwrap();

        let msg = message(read(&path));

        assert!(
            msg.ends_with(": is not UTF-8 text (invalid byte at offset 6)"),
            "{msg}"
        );
        assert!(!msg.contains("secret"), "{msg}");
    }
}
