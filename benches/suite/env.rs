//! The bench's own world on the real libvirtd: a run directory under `target/bench/`
//! holding vmd's state directory, a transient `dir` pool and scratch space, and the
//! clean-up that removes every libvirt object the run made.
//!
//! Every name the bench gives to libvirt carries the run's tag (`vmdbench-<tag>` and
//! `vmdbench-<tag>-xfs` for the pools, `b<tag>-...` for VMDs and so `vmd-b<tag>-...` for
//! their domains, `vmdbench-<tag>-...` for virt-install's domains), and the only mount it
//! makes lies in its run directory (row 8 adds one pool on the second host,
//! `vmdbench-<tag>-remote`), so that clean-up, including the sweep of runs that were killed
//! before they could clean up, touches nothing else on either host.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::measure::{self, run};

const URI: &str = "qemu:///system";

/// One bench run's environment.
pub struct Bench {
    /// The release-built `vmd` binary.
    pub vmd: PathBuf,
    /// `target/bench`: cached inputs and results.
    pub root: PathBuf,
    /// This run's directory, removed at the end.
    pub run_dir: PathBuf,
    /// Random, short: part of every name.
    pub tag: String,
    /// The transient dir pool every volume goes to.
    pub pool: String,
    pub pool_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Scratch files of the comparisons (same filesystem as the pool).
    pub work_dir: PathBuf,
    /// Samples per row.
    pub runs: usize,
}

/// The second libvirt host (`scripts/second-host`), the remote end of row 8.
pub const REMOTE_URI: &str = "qemu+tcp://127.0.0.1:16510/system";

/// `virsh -c qemu:///system ARGS`.
pub fn virsh(args: &[&str]) -> Command {
    virsh_at(URI, args)
}

/// `virsh -c URI ARGS`.
pub fn virsh_at(uri: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("virsh");
    cmd.args(["-q", "-c", uri]).args(args);
    cmd
}

/// Makes `dir` and its parents traversable by QEMU, which runs as its own user and must reach
/// the volumes and the console logs.
pub fn open_up(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for d in dir.ancestors().filter(|d| d.parent().is_some()) {
        let meta = std::fs::metadata(d).with_context(|| format!("stat {}", d.display()))?;
        let mode = meta.permissions().mode();
        if mode & 0o111 != 0o111 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o111))
                .with_context(|| format!("chmod {}", d.display()))?;
        }
    }
    Ok(())
}

impl Bench {
    /// Sweeps what killed runs left, then makes this run's directories and pool.
    pub fn new(vmd: PathBuf, root: PathBuf, runs: usize) -> Result<Self> {
        std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
        sweep_stale(&root)?;
        let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
        let run_dir = root.join(format!("run-{tag}"));
        let bench = Self {
            vmd,
            pool: format!("vmdbench-{tag}"),
            pool_dir: run_dir.join("pool"),
            state_dir: run_dir.join("state"),
            work_dir: run_dir.join("work"),
            run_dir,
            root,
            tag,
            runs,
        };
        for d in [&bench.pool_dir, &bench.state_dir, &bench.work_dir] {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        std::fs::write(
            bench.run_dir.join("pid"),
            std::process::id().to_string().as_bytes(),
        )?;
        open_up(&bench.pool_dir)?;
        open_up(&bench.state_dir)?;
        run(&mut virsh(&[
            "pool-create-as",
            &bench.pool,
            "dir",
            "--target",
            &bench.pool_dir.to_string_lossy(),
        ]))?;
        Ok(bench)
    }

    /// A VMD name of this run: `b<tag>-<what>`.
    pub fn name(&self, what: &str) -> String {
        format!("b{}-{what}", self.tag)
    }

    /// A name for a domain vmd does not manage: `vmdbench-<tag>-<what>`.
    pub fn foreign_name(&self, what: &str) -> String {
        format!("vmdbench-{}-{what}", self.tag)
    }

    /// `vmd ARGS` against this run's state directory and pool, guests under TCG.
    pub fn vmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.vmd);
        cmd.args(args)
            .env("VMD_CONNECT", URI)
            .env("VMD_STATE_DIR", &self.state_dir)
            .env("VMD_POOL", &self.pool)
            .env("VMD_VIRT_TYPE", "qemu");
        cmd
    }

    /// Runs vmd and returns its stdout; fails with its stderr.
    pub fn vmd_ok(&self, args: &[&str]) -> Result<String> {
        run(&mut self.vmd(args))
    }

    /// Runs vmd with `--json` and parses its one document.
    pub fn vmd_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.vmd_ok(&all)?;
        serde_json::from_str(&out).with_context(|| format!("vmd {args:?}: not one JSON document"))
    }

    /// Times one vmd call, in seconds.
    pub fn time_vmd(&self, args: &[&str]) -> Result<f64> {
        measure::time(&mut self.vmd(args))
    }

    /// The volume paths of a VMD's disks, in disk order, and their serials.
    pub fn disks(&self, name: &str) -> Result<Vec<(PathBuf, String)>> {
        let v = self.vmd_json(&["show", name])?;
        let disks = v["disks"].as_array().context("vmd show: no disks array")?;
        disks
            .iter()
            .map(|d| {
                Ok((
                    PathBuf::from(d["path"].as_str().context("vmd show: disk without path")?),
                    d["serial"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect()
    }

    /// Removes every domain and volume of this run, the pool and the run directory.
    pub fn cleanup(&self) {
        clean_tag(&self.tag, &self.run_dir);
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Where a run mounts its XFS image (row 3r), below its run directory.
pub fn xfs_mountpoint(run_dir: &Path) -> PathBuf {
    run_dir.join("xfs")
}

/// Destroys and undefines every domain whose name carries `tag`, deletes the volumes of the
/// tag's pools and destroys them, and unmounts the run's XFS image. Best effort: it reports
/// nothing and never fails.
fn clean_tag(tag: &str, run_dir: &Path) {
    let domains = run(&mut virsh(&["list", "--all", "--name"])).unwrap_or_default();
    let marks = [format!("vmd-b{tag}-"), format!("vmdbench-{tag}-")];
    for d in domains.lines().map(str::trim) {
        if marks.iter().any(|m| d.starts_with(m.as_str())) {
            let _ = virsh(&["destroy", d]).output();
            let _ = virsh(&["undefine", "--snapshots-metadata", d]).output();
        }
    }
    let pool = format!("vmdbench-{tag}");
    let pools = run(&mut virsh(&["pool-list", "--all", "--name"])).unwrap_or_default();
    for p in pools.lines().map(str::trim) {
        if p != pool && !p.starts_with(&format!("{pool}-")) {
            continue;
        }
        if let Ok(vols) = run(&mut virsh(&["vol-list", p, "--name"])) {
            for v in vols.lines().map(str::trim).filter(|v| !v.is_empty()) {
                let _ = virsh(&["vol-delete", v, "--pool", p]).output();
            }
        }
        let _ = virsh(&["pool-destroy", p]).output();
    }
    clean_remote_pool(&format!("{pool}-remote"));
    let mnt = xfs_mountpoint(run_dir);
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&*mnt.to_string_lossy()))
    {
        let _ = Command::new("umount").arg(&mnt).output();
    }
}

/// Deletes the volumes of row 8's pool on the second host, then stops, deletes (its
/// directory) and undefines the pool. Best effort, and quick when the host is not running.
pub fn clean_remote_pool(pool: &str) {
    let remote = |args: &[&str]| virsh_at(REMOTE_URI, args).output();
    if !matches!(remote(&["pool-info", pool]), Ok(o) if o.status.success()) {
        return;
    }
    // virsh 9.0's vol-list has no --name: the name is each line's first column.
    if let Ok(vols) = run(&mut virsh_at(REMOTE_URI, &["vol-list", pool])) {
        for v in vols.lines().filter_map(|l| l.split_whitespace().next()) {
            let _ = remote(&["vol-delete", v, "--pool", pool]);
        }
    }
    let _ = remote(&["pool-destroy", pool]);
    let _ = remote(&["pool-delete", pool]);
    let _ = remote(&["pool-undefine", pool]);
}

/// Cleans up after earlier runs whose process is gone (killed, interrupted).
fn sweep_stale(root: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(tag) = name.strip_prefix("run-") else {
            continue;
        };
        let pid = std::fs::read_to_string(e.path().join("pid")).unwrap_or_default();
        let alive = !pid.trim().is_empty() && Path::new("/proc").join(pid.trim()).exists();
        if !alive {
            eprintln!("bench: cleaning up after an interrupted run ({tag})");
            clean_tag(tag, &e.path());
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    Ok(())
}
