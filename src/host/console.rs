//! A domain's serial console over libvirt (`virDomainOpenConsole` on a `virStream`), and
//! starting a domain with its vCPUs paused so that a console attached before it runs misses
//! nothing. The console is read-only here: vmd never sends the guest input.
//!
//! The bytes cross libvirt's connection, so the console works the same on a remote host as
//! on this one; no file of the host is read.

use std::io::Read;

use uuid::Uuid;
use virt::error::ErrorNumber;
use virt::stream::Stream;
use virt::sys;

use super::libvirt::{call_error, LibvirtHost};
use super::{HostError, HostErrorKind};

impl LibvirtHost {
    /// `virDomainCreateWithFlags` with `VIR_DOMAIN_START_PAUSED`. Refuses a domain that runs
    /// (or is paused) already: its console output so far is gone, which the caller asked
    /// not to miss.
    pub(super) fn start_domain_paused_impl(&self, uuid: &Uuid) -> Result<(), HostError> {
        let dom = self.lookup_domain(uuid)?;
        dom.create_with_flags(sys::VIR_DOMAIN_START_PAUSED)
            .map_err(|e| call_error("virDomainCreateWithFlags", uuid.to_string(), e))
    }

    /// `virStreamNew`, then `virDomainOpenConsole` of the domain's first console with
    /// `VIR_DOMAIN_CONSOLE_SAFE`: the hypervisor keeps sessions exclusive, and a session
    /// already open is refused (kind `InvalidState`) rather than taken over.
    pub(super) fn open_console_impl(&self, uuid: &Uuid) -> Result<Box<dyn Read + Send>, HostError> {
        let dom = self.lookup_domain(uuid)?;
        let object = uuid.to_string();
        let stream =
            Stream::new(self.conn(), 0).map_err(|e| call_error("virStreamNew", &object, e))?;
        if let Err(e) = dom.open_console(None, &stream, sys::VIR_DOMAIN_CONSOLE_SAFE) {
            let busy = matches!(
                e.code(),
                virt::enumutil::Enum::Known(ErrorNumber::OperationFailed)
            );
            let _ = stream.abort();
            return Err(match call_error("virDomainOpenConsole", &object, e) {
                // The qemu driver reports "Active console session exists for this domain"
                // as a plain operation failure.
                HostError::Call {
                    call,
                    object,
                    message,
                    ..
                } if busy => HostError::Call {
                    call,
                    object,
                    message,
                    kind: HostErrorKind::InvalidState,
                },
                other => other,
            });
        }
        Ok(Box::new(ConsoleStream {
            stream: Some(stream),
            object,
        }))
    }
}

/// The guest's console output as a blocking byte stream: `virStreamRecv` until the domain
/// stops (0 bytes: end of stream).
struct ConsoleStream {
    /// `None` once the stream ended and was finished.
    stream: Option<Stream>,
    /// The domain, for error messages.
    object: String,
}

impl Read for ConsoleStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(stream) = &self.stream else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        match stream.recv(buf) {
            Ok(n) if n > 0 => Ok(usize::try_from(n).unwrap_or(0).min(buf.len())),
            Ok(_) => {
                if let Some(stream) = self.stream.take() {
                    // The end of the stream: nothing is left to lose if finishing fails.
                    let _ = stream.finish();
                }
                Ok(0)
            }
            Err(e) => {
                if let Some(stream) = self.stream.take() {
                    let _ = stream.abort();
                }
                let err = call_error("virStreamRecv", &self.object, e);
                Err(std::io::Error::other(err))
            }
        }
    }
}

impl Drop for ConsoleStream {
    fn drop(&mut self) {
        // Closed before its end (the reader stopped): tell the host, so that the session is
        // free for the next client.
        if let Some(stream) = self.stream.take() {
            let _ = stream.abort();
        }
    }
}
