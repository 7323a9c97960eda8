//! Row 8: import of the row-1 OVA into a pool on a remote libvirt host, whose files vmd
//! cannot reach, so every byte crosses libvirt's stream; against what a user would do
//! without vmd: convert locally with `qemu-img convert`, then `virsh vol-create-as` and
//! `virsh vol-upload` of the qcow2 to the remote host.
//!
//! The remote host is the second libvirtd of `scripts/second-host`
//! (`qemu+tcp://127.0.0.1:16510/system`, a private mount namespace on this machine): the
//! bytes cross a TCP connection on the loopback device, with no network in between, so
//! the row measures vmd's and virsh's stream handling, not a link's speed. The row starts
//! the host when it is not running (`make bench` does so before, and stops it afterwards
//! unless it was running already). The pool, `vmdbench-<tag>-remote`, is a persistent `dir`
//! pool built for the row and deleted with its directory after it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::data::ImportData;
use crate::env::{clean_remote_pool, virsh_at, Bench, REMOTE_URI};
use crate::measure::{read_file, run, time, with_cpu, Samples};
use crate::report::{Measure, Row};

/// The run's pool on the second host; removed (volumes, directory, definition) when
/// dropped.
struct RemotePool {
    name: String,
}

impl RemotePool {
    fn create(b: &Bench) -> Result<Self> {
        let name = format!("{}-remote", b.pool);
        let target = format!("/var/lib/libvirt/images/{name}");
        run(&mut virsh_at(
            REMOTE_URI,
            &["pool-define-as", &name, "dir", "--target", &target],
        ))?;
        let pool = Self { name };
        run(&mut virsh_at(REMOTE_URI, &["pool-build", &pool.name]))?;
        run(&mut virsh_at(REMOTE_URI, &["pool-start", &pool.name]))?;
        Ok(pool)
    }

    fn delete_volume(&self, vol: &str) -> Result<()> {
        run(&mut virsh_at(
            REMOTE_URI,
            &["vol-delete", vol, "--pool", &self.name],
        ))
        .map(drop)
    }
}

impl Drop for RemotePool {
    fn drop(&mut self) {
        clean_remote_pool(&self.name);
    }
}

/// Starts the second host unless it answers (`scripts/second-host start` is idempotent).
fn ensure_second_host() -> Result<()> {
    let answers = virsh_at(REMOTE_URI, &["version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !answers {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/second-host");
        eprintln!(
            "bench: starting the second libvirt host ({})",
            script.display()
        );
        run(Command::new(&script).arg("start"))?;
    }
    Ok(())
}

/// `vmd` against the second host: its own state directory, the remote pool.
fn vmd_remote(b: &Bench, state: &Path, pool: &str, args: &[&str]) -> Command {
    let mut cmd = b.vmd(args);
    cmd.env("VMD_CONNECT", REMOTE_URI)
        .env("VMD_STATE_DIR", state)
        .env("VMD_POOL", pool);
    cmd
}

/// `virsh vol-create-as` of a raw volume of `file`'s length, then `virsh vol-upload` of it.
fn create_and_upload(pool: &str, vol: &str, file: &Path) -> Result<()> {
    let len = std::fs::metadata(file)
        .with_context(|| format!("stat {}", file.display()))?
        .len()
        .to_string();
    run(&mut virsh_at(
        REMOTE_URI,
        &["vol-create-as", pool, vol, &len, "--format", "raw"],
    ))?;
    run(&mut virsh_at(
        REMOTE_URI,
        &["vol-upload", vol, &file.to_string_lossy(), "--pool", pool],
    ))
    .map(drop)
}

fn qemu_img_convert(src: &Path, out: &Path) -> Result<()> {
    run(Command::new("qemu-img")
        .args(["convert", "-f", "vmdk", "-O", "qcow2"])
        .arg(src)
        .arg(out))
    .map(drop)
}

fn sync() -> Result<()> {
    run(&mut Command::new("sync")).map(drop)
}

/// Row 8: see the module documentation. Comparisons: (a) `tar -xf` + `qemu-img convert` +
/// create + upload (from the OVA, as vmd starts), (b) `qemu-img convert` of the extracted
/// VMDK + create + upload (the target's baseline), (c) create + upload of an already
/// converted qcow2 (the transfer alone).
pub fn remote_import(b: &Bench, data: &ImportData) -> Result<Row> {
    ensure_second_host()?;
    let pool = RemotePool::create(b)?;
    let state = b.run_dir.join("state-remote");
    std::fs::create_dir_all(&state)?;
    let ova = data.ova.to_string_lossy().into_owned();
    let ova_bytes = std::fs::metadata(&data.ova)?.len();
    let extract = b.work_dir.join("extract-remote");
    let out = b.work_dir.join("remote.qcow2");
    // (c)'s input, converted once, untimed.
    let converted: PathBuf = b.work_dir.join("remote-converted.qcow2");
    qemu_img_convert(&data.vmdk, &converted)?;
    let qcow2_bytes = std::fs::metadata(&converted)?.len();
    read_file(&data.ova, 1 << 20)?;
    read_file(&data.vmdk, 1 << 20)?;
    read_file(&converted, 1 << 20)?;
    sync()?;
    let [mut s_vmd, mut s_a, mut s_b, mut s_c]: [Samples; 4] = Default::default();
    let [mut c_vmd, mut c_a, mut c_b, mut c_c]: [Samples; 4] = Default::default();
    let mut vmd_path = String::new();
    for round in 0..b.runs {
        for k in 0..4 {
            let vol = format!("{}-r{round}.qcow2", b.foreign_name("up"));
            match (round + k) % 4 {
                0 => {
                    let name = b.name(&format!("rimp{round}"));
                    let args = ["import", ova.as_str(), "--name", name.as_str()];
                    let (t, cpu) =
                        with_cpu(|| time(&mut vmd_remote(b, &state, &pool.name, &args)))?;
                    eprintln!("  8 round {round}: vmd import (remote) {t:.2} s (CPU {cpu:.2} s)");
                    s_vmd.push(t);
                    c_vmd.push(cpu);
                    let show = run(&mut vmd_remote(
                        b,
                        &state,
                        &pool.name,
                        &["show", &name, "--json"],
                    ))?;
                    let v: serde_json::Value = serde_json::from_str(&show)?;
                    vmd_path = v["disks"][0]["path"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    run(&mut vmd_remote(b, &state, &pool.name, &["delete", &name]))?;
                }
                1 => {
                    std::fs::create_dir_all(&extract)?;
                    let (t, cpu) = with_cpu(|| {
                        let start = Instant::now();
                        run(Command::new("tar")
                            .arg("-xf")
                            .arg(&data.ova)
                            .arg("-C")
                            .arg(&extract))?;
                        qemu_img_convert(&extract.join("bench-disk1.vmdk"), &out)?;
                        create_and_upload(&pool.name, &vol, &out)?;
                        Ok(start.elapsed().as_secs_f64())
                    })?;
                    eprintln!("  8 round {round}: tar + convert + upload {t:.2} s");
                    s_a.push(t);
                    c_a.push(cpu);
                    let _ = std::fs::remove_dir_all(&extract);
                    let _ = std::fs::remove_file(&out);
                    pool.delete_volume(&vol)?;
                }
                2 => {
                    let (t, cpu) = with_cpu(|| {
                        let start = Instant::now();
                        qemu_img_convert(&data.vmdk, &out)?;
                        create_and_upload(&pool.name, &vol, &out)?;
                        Ok(start.elapsed().as_secs_f64())
                    })?;
                    eprintln!("  8 round {round}: convert + upload {t:.2} s");
                    s_b.push(t);
                    c_b.push(cpu);
                    let _ = std::fs::remove_file(&out);
                    pool.delete_volume(&vol)?;
                }
                _ => {
                    let (t, cpu) = with_cpu(|| {
                        let start = Instant::now();
                        create_and_upload(&pool.name, &vol, &converted)?;
                        Ok(start.elapsed().as_secs_f64())
                    })?;
                    eprintln!("  8 round {round}: upload {t:.2} s");
                    s_c.push(t);
                    c_c.push(cpu);
                    pool.delete_volume(&vol)?;
                }
            }
            sync()?;
        }
    }
    let _ = std::fs::remove_file(&converted);
    if vmd_path.is_empty() || Path::new(&vmd_path).exists() {
        bail!(
            "vmd's remote volume {vmd_path:?} is reachable here: the row would not measure \
             an upload through libvirt"
        );
    }
    let vmd = Measure::new("vmd import", s_vmd)
        .with_bytes(ova_bytes)
        .with_cpu(c_vmd);
    let a = Measure::new("(a) tar -xf + qemu-img convert + virsh vol-upload", s_a)
        .with_bytes(ova_bytes)
        .with_cpu(c_a);
    let bb = Measure::new("(b) qemu-img convert + virsh vol-upload", s_b)
        .with_bytes(ova_bytes)
        .with_cpu(c_b);
    let c = Measure::new("(c) virsh vol-upload of the converted qcow2", s_c)
        .with_bytes(qcow2_bytes)
        .with_cpu(c_c);
    let vs_b = vmd.median() / bb.median();
    let vs_a = vmd.median() / a.median();
    let vs_c = vmd.median() / c.median();
    Ok(
        Row::new("8", "import OVA into a remote pool (row-1 OVA)", vmd)
            .compare(a)
            .compare(bb)
            .compare(c)
            .ratio("vmd / (b)", vs_b)
            .ratio("vmd / (a)", vs_a)
            .ratio("vmd / (c)", vs_c)
            .target("vmd <= 1.00x (b)", Some(vs_b <= 1.0))
            .note(format!(
                "the pool is a dir pool on the second libvirt host ({REMOTE_URI}, \
                 scripts/second-host: another libvirtd on this machine, in its own mount \
                 namespace, over loopback TCP), so vmd uploads through libvirt's stream; \
                 the comparisons create a raw volume of the qcow2's length with `virsh \
                 vol-create-as` and upload with `virsh vol-upload` (no --sparse), as vmd \
                 does; the converted qcow2 is {:.0} MB; MB/s are OVA bytes per second, \
                 for (c) qcow2 bytes; CPU is of the local processes only (not the two \
                 libvirtds)",
                qcow2_bytes as f64 / 1e6
            )),
    )
}
