//! Package readers: an `.ova` archive (indexed in place, never extracted) or a directory
//! holding one `.ovf` with its files beside it. Both give the same view: the descriptor's
//! bytes, the manifest and certificate if present, and bounded readers over referenced files.
//!
//! Only plain names resolve: an `href` can name a member of the archive or a regular file in
//! the package directory, nothing else (no subdirectories, no links, no paths).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::tar::{self, Slice, TarError, TarIndex};

/// Largest descriptor accepted.
pub const MAX_DESCRIPTOR: u64 = 4 << 20;
/// Largest manifest or certificate file accepted.
pub const MAX_SIDE_FILE: u64 = 1 << 20;
/// Most entries a package directory may hold (of any kind), as an archive's members.
pub const MAX_DIR_ENTRIES: usize = tar::MAX_MEMBERS;

/// Why a package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The path given does not exist or cannot be opened.
    #[error("cannot open package {path}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The OVA archive is not acceptable.
    #[error("invalid OVA archive {path}")]
    Tar {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: TarError,
    },
    /// The package layout is wrong (no descriptor, several, not first, ...).
    #[error("{path}: {problem}")]
    Layout {
        /// The package.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A file the descriptor references is not in the package.
    #[error("{name} is referenced by the descriptor but is not in the package")]
    Missing {
        /// The href.
        name: String,
    },
    /// A file is larger than vmd accepts for its kind.
    #[error("{name} is {size} bytes, more than the {cap} bytes allowed")]
    TooLarge {
        /// The file.
        name: String,
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// A file the descriptor references is in the package directory but is not a regular
    /// file (a symbolic link, a subdirectory).
    #[error("{name} is {what}")]
    NotRegular {
        /// The file.
        name: String,
        /// What it is instead, in words.
        what: &'static str,
    },
    /// Reading a file failed.
    #[error("cannot read {name}: {source}")]
    Read {
        /// The file.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A reader over one file of a package: seekable within the file's own bytes.
pub trait FileReader: Read + Seek + Send {}
impl<T: Read + Seek + Send> FileReader for T {}

enum Source {
    Ova { file: Arc<File>, index: TarIndex },
    Dir { dir: PathBuf },
}

/// An opened package.
pub struct Package {
    path: PathBuf,
    source: Source,
    /// Plain file names in the package and their sizes (archive members or directory files).
    files: BTreeMap<String, u64>,
    /// Entries of a package directory that are not regular files, and what each is.
    refused: BTreeMap<String, &'static str>,
    /// The descriptor's file name.
    pub descriptor_name: String,
    /// The descriptor's bytes, read once: these exact bytes are hashed and parsed.
    pub descriptor: Vec<u8>,
    /// The manifest's name and bytes, if the package has one.
    pub manifest: Option<(String, Vec<u8>)>,
    /// The certificate's name and bytes, if the package has one.
    pub certificate: Option<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Package")
            .field("path", &self.path)
            .field("descriptor_name", &self.descriptor_name)
            .field("files", &self.files)
            .finish()
    }
}

fn layout(path: &Path, problem: impl Into<String>) -> PackageError {
    PackageError::Layout {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Opens a regular file without following a symlink in its last component.
///
/// Anything else is refused before it is opened for reading (SECURITY.md item 43): opening
/// a FIFO blocks until a writer comes, and a device can be read without end. The file is
/// looked at first (`lstat`), then opened with `O_NONBLOCK` (so that a FIFO swapped in
/// between cannot block the open) and looked at again through the descriptor (`fstat`).
/// `O_NONBLOCK` does not change reads of a regular file.
fn open_plain(path: &Path) -> io::Result<File> {
    if let Some(kind) = special(&std::fs::symlink_metadata(path)?) {
        return Err(not_regular(kind));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // What O_NOFOLLOW reports for a link, in words rather than as "too many levels".
            Some(libc::ELOOP) => io::Error::new(io::ErrorKind::InvalidInput, NOT_FOLLOWED),
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(special(&meta).unwrap_or("directory")));
    }
    Ok(file)
}

/// Why a symbolic link is refused, for every place a package path can be one.
const NOT_FOLLOWED: &str =
    "it is a symbolic link, which vmd does not follow (name the file it points to)";

/// What a directory entry that is not a regular file is, in words.
fn entry_kind(meta: &std::fs::Metadata) -> &'static str {
    if meta.file_type().is_symlink() {
        "a symbolic link, which vmd does not follow"
    } else if meta.is_dir() {
        "a directory, not a regular file"
    } else {
        "not a regular file"
    }
}

/// What a file that is neither regular nor a symbolic link is, for the refusal message.
pub(crate) fn special(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() || t.is_symlink() {
        None
    } else if t.is_fifo() {
        Some("FIFO")
    } else if t.is_char_device() {
        Some("character device")
    } else if t.is_block_device() {
        Some("block device")
    } else if t.is_socket() {
        Some("socket")
    } else {
        Some("directory")
    }
}

pub(crate) fn not_regular(kind: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a {kind} is not a regular file"),
    )
}

fn read_capped(mut r: impl Read, name: &str, size: u64, cap: u64) -> Result<Vec<u8>, PackageError> {
    if size > cap {
        return Err(PackageError::TooLarge {
            name: name.to_string(),
            size,
            cap,
        });
    }
    let mut buf = Vec::with_capacity(size as usize);
    r.by_ref()
        .take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|source| PackageError::Read {
            name: name.to_string(),
            source,
        })?;
    if buf.len() as u64 != size {
        return Err(PackageError::Read {
            name: name.to_string(),
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "size changed while reading"),
        });
    }
    Ok(buf)
}

fn stem(name: &str) -> &str {
    name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name)
}

impl Package {
    /// Opens `path`: an `.ova` file, an `.ovf` file (its files beside it), or a directory
    /// holding exactly one `.ovf`.
    pub fn open(path: &Path) -> Result<Self, PackageError> {
        let open_err = |source| PackageError::Open {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(open_err)?;
        if meta.is_dir() {
            return Self::open_dir(path, None);
        }
        let is_ovf = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ovf"));
        if is_ovf {
            // A bare `x.ovf` has the empty path as its parent: its files are in `.`.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Self::open_dir(dir, Some(name));
        }
        Self::open_ova(path)
    }

    fn open_ova(path: &Path) -> Result<Self, PackageError> {
        let open_err = |source| PackageError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = open_plain(path).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        let index = tar::index(&mut file, len).map_err(|source| PackageError::Tar {
            path: path.to_path_buf(),
            source,
        })?;
        let ovfs: Vec<&str> = index
            .members
            .iter()
            .map(|m| m.name.as_str())
            .filter(|n| n.to_ascii_lowercase().ends_with(".ovf"))
            .collect();
        let descriptor_name = match ovfs.as_slice() {
            [one] => one.to_string(),
            [] => return Err(layout(path, "the archive holds no .ovf descriptor")),
            many => {
                return Err(layout(
                    path,
                    format!("more than one .ovf file was found: {}", many.join(", ")),
                ))
            }
        };
        if index.members.first().map(|m| m.name.as_str()) != Some(descriptor_name.as_str()) {
            return Err(layout(
                path,
                format!("{descriptor_name} is not the first member, as OVF requires"),
            ));
        }
        let files = index
            .members
            .iter()
            .map(|m| (m.name.clone(), m.size))
            .collect();
        let mut pkg = Self {
            path: path.to_path_buf(),
            source: Source::Ova {
                file: Arc::new(file),
                index,
            },
            files,
            refused: BTreeMap::new(),
            descriptor_name,
            descriptor: Vec::new(),
            manifest: None,
            certificate: None,
        };
        pkg.read_side_files()?;
        Ok(pkg)
    }

    fn open_dir(dir: &Path, descriptor: Option<String>) -> Result<Self, PackageError> {
        let open_err = |source| PackageError::Open {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = BTreeMap::new();
        let mut refused = BTreeMap::new();
        for (count, entry) in std::fs::read_dir(dir).map_err(open_err)?.enumerate() {
            // The same bound as an archive's members: listing is never unbounded work.
            if count == MAX_DIR_ENTRIES {
                return Err(layout(
                    dir,
                    format!("the directory holds more than {MAX_DIR_ENTRIES} entries"),
                ));
            }
            let entry = entry.map_err(open_err)?;
            let meta = entry.metadata().map_err(open_err)?;
            // Only regular files resolve; links and subdirectories are never followed.
            if let Some(name) = entry.file_name().to_str() {
                if meta.is_file() {
                    files.insert(name.to_string(), meta.len());
                } else {
                    refused.insert(name.to_string(), entry_kind(&meta));
                }
            }
        }
        let descriptor_name = match descriptor {
            Some(name) => name,
            None => {
                let ovfs: Vec<&String> = files
                    .keys()
                    .filter(|n| n.to_ascii_lowercase().ends_with(".ovf"))
                    .collect();
                match ovfs.as_slice() {
                    [one] => (*one).clone(),
                    [] => return Err(layout(dir, "the directory holds no .ovf descriptor")),
                    many => {
                        let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                        return Err(layout(
                            dir,
                            format!("more than one .ovf file was found: {}", names.join(", ")),
                        ));
                    }
                }
            }
        };
        if !files.contains_key(&descriptor_name) {
            let what = refused
                .get(&descriptor_name)
                .copied()
                .unwrap_or("not a regular file in the package directory");
            return Err(layout(dir, format!("{descriptor_name} is {what}")));
        }
        let mut pkg = Self {
            path: dir.to_path_buf(),
            source: Source::Dir {
                dir: dir.to_path_buf(),
            },
            files,
            refused,
            descriptor_name,
            descriptor: Vec::new(),
            manifest: None,
            certificate: None,
        };
        pkg.read_side_files()?;
        Ok(pkg)
    }

    /// Reads the descriptor and, by the descriptor's base name, the manifest and certificate.
    fn read_side_files(&mut self) -> Result<(), PackageError> {
        let name = self.descriptor_name.clone();
        self.descriptor = self.read_small(&name, MAX_DESCRIPTOR)?;
        let base = stem(&name).to_string();
        for (ext, slot) in [("mf", 0), ("cert", 1)] {
            let wanted = format!("{base}.{ext}");
            let found: Vec<String> = self
                .files
                .keys()
                .filter(|n| n.to_ascii_lowercase().ends_with(&format!(".{ext}")))
                .cloned()
                .collect();
            let chosen = match found.as_slice() {
                [] => None,
                [one] if *one == wanted => Some(one.clone()),
                _ => {
                    return Err(layout(
                        &self.path,
                        format!(
                            "expected at most one .{ext} file, named {wanted}; found {}",
                            found.join(", ")
                        ),
                    ))
                }
            };
            if let Some(file) = chosen {
                let bytes = self.read_small(&file, MAX_SIDE_FILE)?;
                if slot == 0 {
                    self.manifest = Some((file, bytes));
                } else {
                    self.certificate = Some((file, bytes));
                }
            }
        }
        Ok(())
    }

    fn read_small(&self, name: &str, cap: u64) -> Result<Vec<u8>, PackageError> {
        let size = self.size(name).ok_or_else(|| PackageError::Missing {
            name: name.to_string(),
        })?;
        let reader = self.open_file(name)?;
        read_capped(reader, name, size, cap)
    }

    /// The package path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True for an `.ova` archive.
    pub fn is_archive(&self) -> bool {
        matches!(self.source, Source::Ova { .. })
    }

    /// The size of a file of the package, if it holds one by that plain name.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.files.get(name).copied()
    }

    /// Entries of a package directory that are not regular files, and what each is, so a
    /// refusal can say so rather than report a file missing.
    pub fn refused(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.refused.iter().map(|(n, w)| (n.as_str(), *w))
    }

    /// Every file name in the package (archive order is not kept here; see the tar index).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// A bounded reader over one file: an archive member read in place, or a regular file of
    /// the package directory opened without following links.
    pub fn open_file(&self, name: &str) -> Result<Box<dyn FileReader>, PackageError> {
        let read_err = |source| PackageError::Read {
            name: name.to_string(),
            source,
        };
        match &self.source {
            Source::Ova { file, index } => {
                let member = index.get(name).ok_or_else(|| PackageError::Missing {
                    name: name.to_string(),
                })?;
                let handle = SharedFile {
                    file: Arc::clone(file),
                    pos: 0,
                };
                let slice = tar::member_reader(handle, member).map_err(read_err)?;
                Ok(Box::new(slice))
            }
            Source::Dir { dir } => {
                let size = self.size(name).ok_or_else(|| PackageError::Missing {
                    name: name.to_string(),
                })?;
                let file = open_plain(&dir.join(name)).map_err(read_err)?;
                let now = file.metadata().map_err(read_err)?.len();
                if now != size {
                    return Err(read_err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "file changed size since the package was opened",
                    )));
                }
                Ok(Box::new(Slice::whole(file, size)))
            }
        }
    }
}

/// One open archive shared by several readers, each with its own position: reads are
/// positional (`pread`), so disks can be read in parallel from one file descriptor.
struct SharedFile {
    file: Arc<File>,
    pos: u64,
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let base = match to {
            io::SeekFrom::Start(n) => {
                self.pos = n;
                return Ok(n);
            }
            io::SeekFrom::Current(d) => (self.pos, d),
            io::SeekFrom::End(d) => (self.file.metadata()?.len(), d),
        };
        self.pos = base
            .0
            .checked_add_signed(base.1)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests;
