//! Runs one `qemu-img` child: argv only (no shell), a minimal `LC_ALL=C` environment,
//! `prlimit` address-space and CPU limits (and a file-size limit for a run that writes an
//! untrusted image's data), a wall-clock deadline after which the child is
//! killed (as it is when the caller's cancel flag is set), and stdout/stderr captured with
//! caps. Knows nothing about image formats.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::Limits;
use crate::image::ImageError;

/// `qemu-img info` JSON for an image with thousands of snapshots stays well below this.
const STDOUT_CAP: usize = 4 << 20;
const STDERR_CAP: usize = 64 << 10;
/// What an error message quotes from stderr.
const STDERR_SHOWN: usize = 2000;
/// After the child exits, how long to wait for its pipes to close. A grandchild could
/// hold them open; we give up on its output rather than hang.
const PIPE_GRACE: Duration = Duration::from_secs(2);
const POLL_MAX: Duration = Duration::from_millis(50);
/// The search path the child gets; the caller's PATH and other variables are not passed on.
const CHILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Linux signal numbers of the rlimit kills: RLIMIT_CPU sends SIGXCPU at the soft limit and
/// SIGKILL at the hard limit.
const SIGKILL: i32 = 9;
const SIGXCPU: i32 = 24;
/// RLIMIT_FSIZE sends SIGXFSZ; qemu-img ignores it and reports the write's `EFBIG` instead.
const SIGXFSZ: i32 = 25;
const EFBIG_TEXT: &str = "File too large";

/// What a successful run printed.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) stdout: Vec<u8>,
}

/// One planned invocation; `op` names it in errors ("info", "convert", ...).
pub(super) struct Invocation<'a> {
    pub(super) prlimit: &'a Path,
    pub(super) binary: &'a Path,
    pub(super) op: &'static str,
    pub(super) args: Vec<OsString>,
    pub(super) limits: Limits,
    /// `RLIMIT_FSIZE` in bytes (with no core dumps, which that limit would also cap).
    pub(super) max_file: Option<u64>,
    /// Once set, the child is killed and the run fails with `Interrupted`.
    pub(super) cancel: Option<&'a AtomicBool>,
}

impl Invocation<'_> {
    /// The full argv handed to `execve`: prlimit, its limits, then qemu-img and its args.
    pub(super) fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            self.prlimit.into(),
            format!("--as={}", self.limits.address_space).into(),
            format!("--cpu={}", self.limits.cpu_secs).into(),
        ];
        if let Some(bytes) = self.max_file {
            argv.push(format!("--fsize={bytes}").into());
            argv.push("--core=0".into());
        }
        argv.push("--".into());
        argv.push(self.binary.into());
        argv.extend(self.args.iter().cloned());
        argv
    }

    /// Runs to completion or to the deadline. Success means exit 0 and an empty stderr:
    /// `qemu-img` warnings on untrusted images are treated as failures (the Glance rule).
    pub(super) fn run(&self) -> Result<Output, ImageError> {
        let mut cmd = Command::new(self.prlimit);
        cmd.args(&self.argv()[1..])
            .env_clear()
            .env("PATH", CHILD_PATH)
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawn_err = |source| ImageError::Spawn {
            program: self.prlimit.to_owned(),
            source,
        };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let pipes = capture_pipes(&mut child);
        let (stdout_rx, stderr_rx) = match pipes {
            Ok(rx) => rx,
            Err(source) => {
                reap(&mut child);
                return Err(spawn_err(source));
            }
        };
        let (status, stop) = match wait_with_deadline(&mut child, self.limits.wall, self.cancel) {
            Ok(waited) => waited,
            Err(source) => {
                reap(&mut child);
                return Err(spawn_err(source));
            }
        };
        let stdout = collect(&stdout_rx);
        let stderr = collect(&stderr_rx);
        let stderr_text = shown_stderr(&stderr.bytes);
        if stop == Stop::Cancelled {
            return Err(ImageError::Interrupted { op: self.op });
        }
        self.classify(status, stop == Stop::TimedOut, &stderr_text)?;
        if stdout.overflowed {
            return Err(ImageError::OutputTooLarge {
                op: self.op,
                stream: "stdout",
                limit: STDOUT_CAP,
            });
        }
        if !stderr_text.is_empty() {
            return Err(ImageError::Stderr {
                op: self.op,
                stderr: stderr_text,
            });
        }
        Ok(Output {
            stdout: stdout.bytes,
        })
    }

    fn classify(
        &self,
        status: ExitStatus,
        timed_out: bool,
        stderr: &str,
    ) -> Result<(), ImageError> {
        let op = self.op;
        if timed_out {
            return Err(ImageError::TimedOut {
                op,
                secs: self.limits.wall.as_secs(),
            });
        }
        if let Some(limit) = self.max_file {
            let efbig = status.code().is_some_and(|c| c != 0) && stderr.contains(EFBIG_TEXT);
            if status.signal() == Some(SIGXFSZ) || efbig {
                return Err(ImageError::OutputLimit { op, limit });
            }
        }
        if let Some(signal) = status.signal() {
            return Err(if signal == SIGKILL || signal == SIGXCPU {
                ImageError::ResourceLimit { op, signal }
            } else {
                ImageError::Crashed {
                    op,
                    signal,
                    stderr: stderr.to_owned(),
                }
            });
        }
        match status.code() {
            Some(0) => Ok(()),
            code => Err(ImageError::Failed {
                op,
                code: code.unwrap_or(-1),
                stderr: if stderr.is_empty() {
                    "(no message)".to_owned()
                } else {
                    stderr.to_owned()
                },
            }),
        }
    }
}

struct Captured {
    bytes: Vec<u8>,
    overflowed: bool,
}

type Receiver = mpsc::Receiver<Captured>;

fn capture_pipes(child: &mut Child) -> io::Result<(Receiver, Receiver)> {
    let missing = || io::Error::other("child pipe was not created");
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stderr = child.stderr.take().ok_or_else(missing)?;
    Ok((capture(stdout, STDOUT_CAP)?, capture(stderr, STDERR_CAP)?))
}

/// Reads a pipe on its own thread (so neither pipe can fill up and block the child),
/// keeping at most `cap` bytes and draining the rest.
fn capture<P: Read + Send + 'static>(mut pipe: P, cap: usize) -> io::Result<Receiver> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("qemu-img-pipe".into())
        .spawn(move || {
            let mut kept = Vec::new();
            let mut overflowed = false;
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let room = cap - kept.len();
                        overflowed |= n > room;
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(Captured {
                bytes: kept,
                overflowed,
            });
        })?;
    Ok(rx)
}

fn collect(rx: &Receiver) -> Captured {
    rx.recv_timeout(PIPE_GRACE).unwrap_or(Captured {
        bytes: Vec::new(),
        overflowed: false,
    })
}

/// Why [`wait_with_deadline`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Exited,
    TimedOut,
    Cancelled,
}

/// Polls until the child exits, `wall` passes or `cancel` is set; in the last two cases kills
/// (SIGKILL) and reaps it.
fn wait_with_deadline(
    child: &mut Child,
    wall: Duration,
    cancel: Option<&AtomicBool>,
) -> io::Result<(ExitStatus, Stop)> {
    let deadline = Instant::now() + wall;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, Stop::Exited));
        }
        let now = Instant::now();
        let stop = if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            Some(Stop::Cancelled)
        } else if now >= deadline {
            Some(Stop::TimedOut)
        } else {
            None
        };
        if let Some(stop) = stop {
            // prlimit exec()s qemu-img, so the child is qemu-img itself.
            let _ = child.kill();
            let status = child.wait()?;
            return Ok((status, stop));
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(POLL_MAX);
    }
}

fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// stderr for an error message: lossy UTF-8, control characters escaped, lines joined,
/// capped, so hostile image metadata echoed by qemu-img cannot drive the terminal.
fn shown_stderr(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let mut out = String::new();
    for c in joined.chars() {
        if out.len() >= STDERR_SHOWN {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_stderr_escapes_control_characters_and_joins_lines() {
        let s = shown_stderr(b"qemu-img: bad\x1b[31m\nsecond line\n\n");
        assert_eq!(s, "qemu-img: bad\\u{1b}[31m; second line");
    }

    #[test]
    fn shown_stderr_is_capped() {
        let s = shown_stderr(&[b'x'; 10_000]);
        assert!(s.len() <= STDERR_SHOWN + 3 && s.ends_with("..."));
    }
}
