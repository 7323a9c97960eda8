//! Volume content through libvirt: uploads and downloads over `virStream`s, and the evidence
//! that decides whether vmd may touch a pool's files directly instead.
//!
//! A pool is *local* only when vmd has proved that the directory libvirt reports is the same
//! directory here: a probe volume libvirt creates, of a size chosen at random, must appear at
//! that path in this process's view with that size. A path that merely exists here proves
//! nothing (a second machine, or a daemon in another mount namespace, has its own
//! `/var/lib/libvirt/images`).

use std::io::{Read, Write};
use std::path::PathBuf;

use virt::stream::Stream;

use super::libvirt::{call_error, LibvirtHost};
use super::{HostError, HostErrorKind, PoolAccess};
use crate::vmd::{PoolName, VolumeName};

/// The size of one stream message: libvirt's own limit (`VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX`
/// is 256 KiB) is what `virsh vol-upload` uses too.
const CHUNK: usize = 256 * 1024;

/// Pool kinds whose volumes are files under the pool's target directory.
const FILE_POOLS: [&str; 3] = ["dir", "fs", "netfs"];

impl LibvirtHost {
    /// `virStorageVolCreateXML` of a probe volume, `stat` of its path here,
    /// `virStorageVolDelete`; see the module documentation.
    pub(super) fn pool_access_impl(&self, name: &PoolName) -> Result<PoolAccess, HostError> {
        let info = self.pool_impl(name)?;
        let Some(dir) = info
            .path
            .filter(|_| FILE_POOLS.contains(&info.pool_type.as_str()))
        else {
            return Ok(PoolAccess::Streams);
        };
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            return Ok(PoolAccess::Streams);
        }
        let token = uuid::Uuid::new_v4();
        let probe: VolumeName = format!("vmd-probe-{}.raw", token.simple())
            .parse()
            .map_err(|e: crate::vmd::NameError| HostError::BadXml {
                what: "probe volume name",
                message: e.to_string(),
            })?;
        // 1 to 256 sectors: a size no other file of that new name could have by chance.
        let size = 512 * (1 + u64::from(token.as_bytes()[0]));
        let vol = self.create_volume_impl(name, &probe, size, "raw", false)?;
        let here = std::fs::symlink_metadata(&vol.path);
        let same = matches!(&here, Ok(m) if m.is_file() && m.len() == size)
            && std::path::Path::new(&vol.path).parent() == Some(dir.as_path());
        self.delete_volume_impl(name, &probe)?;
        Ok(if same {
            PoolAccess::Local(dir)
        } else {
            PoolAccess::Streams
        })
    }

    /// `virStorageVolUpload` of `len` bytes read from `source`, written at `offset`.
    pub(super) fn upload_impl(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        offset: u64,
        len: u64,
        source: &mut dyn Read,
    ) -> Result<(), HostError> {
        let vol = self.lookup_volume(pool, name)?;
        let stream = new_stream(self, name)?;
        vol.upload(&stream, offset, len, 0)
            .map_err(|e| call_error("virStorageVolUpload", name.as_str(), e))?;
        let mut buf = vec![0u8; CHUNK];
        let mut left = len;
        let sent = (|| {
            while left > 0 {
                let want = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
                let got = read_full(source, &mut buf[..want]).map_err(|e| local_io(name, e))?;
                if got == 0 {
                    return Err(short(name, len - left, len));
                }
                send_all(&stream, &buf[..got], name)?;
                left -= got as u64;
            }
            Ok(())
        })();
        match sent {
            Ok(()) => stream
                .finish()
                .map_err(|e| call_error("virStreamFinish", name.as_str(), e)),
            Err(e) => {
                let _ = stream.abort();
                Err(e)
            }
        }
    }

    /// `virStorageVolDownload` of `len` bytes from `offset` (0 for the rest of the volume)
    /// into `sink`; returns the number of bytes written.
    pub(super) fn download_impl(
        &self,
        pool: &PoolName,
        name: &VolumeName,
        offset: u64,
        len: u64,
        sink: &mut dyn Write,
    ) -> Result<u64, HostError> {
        let vol = self.lookup_volume(pool, name)?;
        let stream = new_stream(self, name)?;
        vol.download(&stream, offset, len, 0)
            .map_err(|e| call_error("virStorageVolDownload", name.as_str(), e))?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        let got = (|| loop {
            let n = stream
                .recv(&mut buf)
                .map_err(|e| call_error("virStreamRecv", name.as_str(), e))?;
            let n = usize::try_from(n).unwrap_or(0);
            if n == 0 {
                return Ok(total);
            }
            sink.write_all(&buf[..n]).map_err(|e| local_io(name, e))?;
            total += n as u64;
        })();
        match got {
            Ok(total) => {
                stream
                    .finish()
                    .map_err(|e| call_error("virStreamFinish", name.as_str(), e))?;
                Ok(total)
            }
            Err(e) => {
                let _ = stream.abort();
                Err(e)
            }
        }
    }
}

fn new_stream(host: &LibvirtHost, name: &VolumeName) -> Result<Stream, HostError> {
    Stream::new(host.conn(), 0).map_err(|e| call_error("virStreamNew", name.as_str(), e))
}

/// `virStreamSend` until every byte is taken (a call may take fewer).
fn send_all(stream: &Stream, mut data: &[u8], name: &VolumeName) -> Result<(), HostError> {
    while !data.is_empty() {
        let n = stream
            .send(data)
            .map_err(|e| call_error("virStreamSend", name.as_str(), e))?;
        let n = usize::try_from(n).unwrap_or(0).min(data.len());
        if n == 0 {
            return Err(HostError::Call {
                call: "virStreamSend",
                object: name.as_str().to_string(),
                message: "the stream took no data".to_string(),
                kind: HostErrorKind::Other,
            });
        }
        data = &data[n..];
    }
    Ok(())
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
fn read_full(source: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn local_io(name: &VolumeName, e: std::io::Error) -> HostError {
    HostError::Call {
        call: "virStreamSend",
        object: name.as_str().to_string(),
        message: format!("local side of the stream failed: {e}"),
        kind: HostErrorKind::Other,
    }
}

fn short(name: &VolumeName, got: u64, want: u64) -> HostError {
    HostError::Call {
        call: "virStorageVolUpload",
        object: name.as_str().to_string(),
        message: format!("the source ended after {got} of {want} bytes"),
        kind: HostErrorKind::Other,
    }
}
