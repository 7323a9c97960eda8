//! Row 3r: full clone where the filesystem can share extents. An XFS image with reflink,
//! loop-mounted in the run directory, holds a second dir pool; the row-1 master is imported
//! into it and cloned with `vmd clone --full`, against `cp --reflink=always` (the constant-
//! time copy the filesystem offers) and `qemu-img convert`.
//!
//! Needs `mkfs.xfs` (Debian package xfsprogs, which `make bench` installs) and loop devices;
//! without them the row reports why it did not run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::data::ImportData;
use crate::env::{open_up, virsh, xfs_mountpoint, Bench};
use crate::measure::{run, time, Samples};
use crate::report::{Measure, Row};

/// Room for the master (1 GiB of data), the copies and XFS's own metadata; sparse.
const IMAGE_BYTES: u64 = 6 << 30;

/// The mounted XFS image and its pool; unmounted and removed when dropped.
struct Xfs {
    image: PathBuf,
    mnt: PathBuf,
    pool: String,
}

impl Xfs {
    fn mount(b: &Bench) -> Result<Self> {
        let image = b.run_dir.join("xfs.img");
        let mnt = xfs_mountpoint(&b.run_dir);
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(IMAGE_BYTES))
            .with_context(|| format!("create {}", image.display()))?;
        run(Command::new("mkfs.xfs")
            .args(["-q", "-m", "reflink=1"])
            .arg(&image))?;
        std::fs::create_dir_all(&mnt)?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mnt))?;
        let xfs = Self {
            image,
            pool: format!("{}-xfs", b.pool),
            mnt,
        };
        let pool_dir = xfs.mnt.join("pool");
        std::fs::create_dir_all(&pool_dir)?;
        open_up(&pool_dir)?;
        run(&mut virsh(&[
            "pool-create-as",
            &xfs.pool,
            "dir",
            "--target",
            &pool_dir.to_string_lossy(),
        ]))?;
        Ok(xfs)
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        if let Ok(vols) = run(&mut virsh(&["vol-list", &self.pool, "--name"])) {
            for v in vols.lines().map(str::trim).filter(|v| !v.is_empty()) {
                let _ = virsh(&["vol-delete", v, "--pool", &self.pool]).output();
            }
        }
        let _ = virsh(&["pool-destroy", &self.pool]).output();
        let _ = Command::new("umount").arg(&self.mnt).output();
        let _ = std::fs::remove_file(&self.image);
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args([
            "-c",
            &format!("command -v {program} || test -x /usr/sbin/{program}"),
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Row 3r.
pub fn reflink_clone(b: &Bench, data: &ImportData) -> Result<Row> {
    if !have("mkfs.xfs") {
        bail!("mkfs.xfs is not installed (Debian package xfsprogs): row 3r needs an XFS image");
    }
    let xfs = Xfs::mount(b)?;
    let master = b.name("rl");
    b.vmd_ok(&[
        "import",
        &data.ova.to_string_lossy(),
        "--name",
        &master,
        "--pool",
        &xfs.pool,
    ])?;
    let (path, _) = b
        .disks(&master)?
        .into_iter()
        .next()
        .context("master without disks")?;
    let src = path.to_string_lossy().into_owned();
    let out = xfs.mnt.join("copy.qcow2");
    run(&mut Command::new("sync"))?;
    let [mut s_vmd, mut s_rl, mut s_q]: [Samples; 3] = Default::default();
    for round in 0..b.runs {
        let name = b.name(&format!("rc{round}"));
        s_vmd.push(b.time_vmd(&["clone", &master, &name, "--full"])?);
        b.vmd_ok(&["delete", &name])?;
        s_rl.push(time(
            Command::new("cp")
                .args(["--reflink=always", &src])
                .arg(&out),
        )?);
        remove(&out);
        s_q.push(time(
            Command::new("qemu-img")
                .args(["convert", "-f", "qcow2", "-O", "qcow2", &src])
                .arg(&out),
        )?);
        remove(&out);
        run(&mut Command::new("sync"))?;
        eprintln!(
            "  3r round {round}: vmd clone --full {:.2} s, cp --reflink {:.1} ms",
            s_vmd.0[round],
            s_rl.0[round] * 1e3
        );
    }
    b.vmd_ok(&["delete", &master])?;
    drop(xfs);
    let vmd = Measure::new("vmd clone --full", s_vmd);
    let rl = Measure::new("cp --reflink=always", s_rl);
    let q = Measure::new("qemu-img convert", s_q);
    let ratio = vmd.median() / rl.median();
    let constant = vmd.median() < 0.100;
    Ok(Row::new("3r", "full clone on XFS with reflink", vmd)
        .compare(rl)
        .compare(q)
        .ratio("vmd / cp --reflink", ratio)
        .target(
            "constant time (< 100 ms, as a reflink copy)",
            Some(constant),
        )
        .note(
            "the row-1 master imported into a dir pool on a loop-mounted XFS image \
             (mkfs.xfs -m reflink=1) on the same disk",
        ))
}
