//! Timing and running external commands: wall-clock samples of whole processes, their
//! summary statistics, and checked runs whose failure carries the command's stderr.
//!
//! It knows nothing of vmd or libvirt and never prints.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Wall-clock samples of one measured thing, in seconds.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, secs: f64) {
        self.0.push(secs);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (the mean of the two middle samples for an even count); 0 when empty.
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(0.0)
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(0.0)
    }

    /// The sample at quantile `q` (0..=1), nearest rank.
    pub fn quantile(&self, q: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return 0.0;
        }
        let rank = (q * (v.len() - 1) as f64).round() as usize;
        v[rank.min(v.len() - 1)]
    }
}

/// A short description of a command for error messages: program and arguments.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn checked(cmd: &Command, out: Output) -> Result<Output> {
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Runs `cmd` to completion and returns its stdout; fails with its stderr unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    let out = checked(cmd, out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` and returns its wall-clock time from spawn to exit, in seconds, and its stdout
/// (read through a pipe while it runs); fails unless it exits 0.
pub fn time_output(cmd: &mut Command) -> Result<(f64, String)> {
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    let secs = start.elapsed().as_secs_f64();
    let out = checked(cmd, out)?;
    Ok((secs, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Runs `cmd` and returns its wall-clock time in seconds; fails unless it exits 0.
pub fn time(cmd: &mut Command) -> Result<f64> {
    Ok(time_output(cmd)?.0)
}

/// CPU seconds (user + system) used so far by the children this process has waited for,
/// with their own waited-for children: `cutime + cstime` of `/proc/self/stat`, in the
/// kernel's fixed 100 Hz clock ticks. Work a child hands to a daemon (libvirtd) is not in it.
pub fn children_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // The fields after the command name start at field 3; cutime and cstime are 16 and 17.
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(16) + ticks(17)) / 100.0
}

/// Runs `f` and returns its value and the children's CPU seconds it used.
pub fn with_cpu<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let before = children_cpu();
    let v = f()?;
    Ok((v, children_cpu() - before))
}

/// Reads `path` front to back through a buffer of `buf_size` bytes and returns the bytes
/// read and the time taken in seconds.
pub fn read_file(path: &Path, buf_size: usize) -> Result<(u64, f64)> {
    let start = Instant::now();
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = vec![0u8; buf_size];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    Ok((total, start.elapsed().as_secs_f64()))
}

/// Polls every 5 ms until `ready` returns a value, or fails after `timeout` naming `what`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = ready()? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
