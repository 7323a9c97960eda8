//! The serial console of a deployed instance, through the host (libvirt's console stream):
//! read it while the guest runs ([`StorageManager::console`]), or start the guest with its
//! vCPUs paused, open the console and only then resume it
//! ([`StorageManager::start_with_console`]), so that none of its output is missed. The
//! same on a remote host as on this one: no file of the host is read.
//!
//! The console is read-only and its bytes are the guest's, unfiltered: escaping them for a
//! terminal is the caller's job (the CLI's).

use std::io::Read;
use std::time::{Duration, Instant};

use super::deploy::{state_word, status, Status};
use super::{lock_vmd, Error, StorageManager};
use crate::host::{DomainState, Host, HostErrorKind};
use crate::vmd::{Kind, State, Vmd};

/// A guest's serial console output, from when it was opened until the domain stops (then
/// `read` returns 0). Dropping it closes the session.
pub struct Console {
    name: String,
    reader: Box<dyn Read + Send>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").field("name", &self.name).finish()
    }
}

impl Console {
    /// The instance whose console this is.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Read for Console {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

/// Refuses masters and instances without a domain, as `start` does.
fn check_deployed(vmd: &Vmd) -> Result<(), Error> {
    if vmd.kind == Kind::Master {
        return Err(Error::Request(format!(
            "{} is a master, which never runs: clone it first",
            vmd.name
        )));
    }
    if vmd.state != State::Deployed {
        return Err(Error::Busy(format!(
            "{} is not deployed (it is {}): deploy it first",
            vmd.name,
            state_word(vmd.state)
        )));
    }
    Ok(())
}

/// Opens the console, turning the host's refusal of a second session into one line.
fn open(host: &dyn Host, vmd: &Vmd) -> Result<Console, Error> {
    match host.open_console(&vmd.id.uuid()) {
        Ok(reader) => Ok(Console {
            name: vmd.name.to_string(),
            reader,
        }),
        Err(e) if e.kind() == HostErrorKind::InvalidState => {
            let live = host.domain_state(&vmd.id.uuid())?;
            if matches!(live, None | Some(DomainState::Shutoff)) {
                return Err(not_running(vmd));
            }
            Err(Error::Busy(format!(
                "the serial console of {} is open in another session (vmd console, virsh \
                 console): close that first ({e})",
                vmd.name
            )))
        }
        Err(e) => Err(e.into()),
    }
}

fn not_running(vmd: &Vmd) -> Error {
    Error::Busy(format!(
        "{} is not running: start it with `vmd start {} --console`",
        vmd.name, vmd.name
    ))
}

/// `start_with_console` once the caller holds the VMD's lock: start paused, open the
/// console, resume; a failure after the start powers the guest off again.
pub(super) fn start_with_console_locked(host: &dyn Host, vmd: &Vmd) -> Result<Console, Error> {
    check_deployed(vmd)?;
    let uuid = vmd.id.uuid();
    if let Some(DomainState::Running | DomainState::Paused) = host.domain_state(&uuid)? {
        return Err(Error::Busy(format!(
            "{} runs already, and its console output so far is gone: use `vmd console {}`",
            vmd.name, vmd.name
        )));
    }
    host.start_domain_paused(&uuid)?;
    let console = open(host, vmd).and_then(|console| {
        host.resume_domain(&uuid)?;
        Ok(console)
    });
    if console.is_err() {
        // The guest never ran a cycle unobserved: nothing of it is worth keeping.
        let _ = host.destroy_domain(&uuid);
    }
    console
}

impl StorageManager {
    /// The serial console of a running instance, from now until its domain stops.
    pub async fn console(&self, name: &str) -> Result<Console, Error> {
        let this = self.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let catalog = this.catalog()?;
            // Only while opening: a console session can last the guest's lifetime, and the
            // instance must stay stoppable meanwhile.
            let (_lock, vmd) = lock_vmd(&catalog, &name, true)?;
            check_deployed(&vmd)?;
            match host.domain_state(&vmd.id.uuid())? {
                Some(DomainState::Running | DomainState::Paused) => open(host, &vmd),
                None | Some(DomainState::Shutoff) => Err(not_running(&vmd)),
            }
        })
        .await
    }

    /// Starts a deployed instance that is off with its vCPUs paused, opens its serial
    /// console, then resumes it: the console holds the guest's output from its first
    /// instruction. An instance that runs already is refused (see [`Self::console`]).
    pub async fn start_with_console(&self, name: &str) -> Result<Console, Error> {
        let this = self.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let catalog = this.catalog()?;
            let (_lock, vmd) = lock_vmd(&catalog, &name, false)?;
            start_with_console_locked(host, &vmd)
        })
        .await
    }

    /// Waits up to `timeout` for an instance to be off, as after its console ended: libvirt
    /// may close the console a moment before it records the domain as off. An instance
    /// that still runs then is an error (its console was closed by someone else).
    pub async fn wait_stopped(&self, name: &str, timeout: Duration) -> Result<Status, Error> {
        let this = self.clone();
        let name = name.to_string();
        self.on_host(move |host| {
            let catalog = this.catalog()?;
            let vmd = catalog.get(&name)?;
            let deadline = Instant::now() + timeout;
            loop {
                let now = status(&vmd, host)?;
                if !matches!(now.state, State::Running | State::Paused) {
                    return Ok(now);
                }
                if Instant::now() >= deadline {
                    return Err(Error::Busy(format!(
                        "the console of {} closed while it still runs (another session may \
                         have taken it over)",
                        vmd.name
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .await
    }
}
