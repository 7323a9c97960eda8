//! Rows 1 to 3, the data path: import of an OVA, linked clones of masters from 1 to
//! 100 GiB, and full clones; each against the tools a user would run instead.
//!
//! Every variant of a row runs once per round, in an order that rotates from round to round
//! so that no variant always runs right after another's write-back; the written data is
//! synced (untimed) after each variant, and the inputs are read once before the first round
//! so that every variant starts with them in the page cache.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::data::{self, ImportData};
use crate::env::Bench;
use crate::measure::{read_file, run, time, with_cpu, Samples};
use crate::report::{Measure, Row};

const READ_BUFFER: usize = 1 << 20;

/// Flushes dirty pages (untimed) so that one variant's write-back does not land in the next.
fn sync() -> Result<()> {
    run(&mut Command::new("sync")).map(drop)
}

/// Bytes of `path` resident in the page cache, per `fincore`.
fn resident_bytes(path: &Path) -> Option<u64> {
    let out = Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Bytes allocated on disk for `path`.
fn allocated(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .blocks()
        * 512)
}

fn qemu_img(args: &[&str]) -> Command {
    let mut cmd = Command::new("qemu-img");
    cmd.args(args);
    cmd
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Row 1: `vmd import` of the generated OVA, against (a) `tar -xf` + `qemu-img convert`,
/// (b) `qemu-img convert` of the extracted VMDK and (c) one sequential read of the OVA.
pub fn import(b: &Bench, data: &ImportData) -> Result<Row> {
    let ova = data.ova.to_string_lossy().into_owned();
    let vmdk = data.vmdk.to_string_lossy().into_owned();
    let ova_bytes = std::fs::metadata(&data.ova)?.len();
    read_file(&data.ova, READ_BUFFER)?;
    read_file(&data.vmdk, READ_BUFFER)?;
    sync()?;
    let extract = b.work_dir.join("extract");
    let out_a = b.work_dir.join("a.qcow2");
    let out_b = b.work_dir.join("b.qcow2");
    let [mut s_vmd, mut s_a, mut s_b, mut s_bw, mut s_c]: [Samples; 5] = Default::default();
    let [mut c_vmd, mut c_a, mut c_b, mut c_bw]: [Samples; 4] = Default::default();
    let mut min_resident = u64::MAX;
    for round in 0..b.runs {
        for k in 0..5 {
            if let Some(r) = resident_bytes(&data.ova) {
                min_resident = min_resident.min(r);
            }
            match (round + k) % 5 {
                0 => {
                    let name = b.name(&format!("imp{round}"));
                    let (t, cpu) = with_cpu(|| b.time_vmd(&["import", &ova, "--name", &name]))?;
                    eprintln!("  1 round {round}: vmd import {t:.2} s (CPU {cpu:.2} s)");
                    s_vmd.push(t);
                    c_vmd.push(cpu);
                    b.vmd_ok(&["delete", &name])?;
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
                        let src = extract.join("bench-disk1.vmdk");
                        run(qemu_img(&["convert", "-f", "vmdk", "-O", "qcow2"])
                            .arg(&src)
                            .arg(&out_a))?;
                        Ok(start.elapsed().as_secs_f64())
                    })?;
                    eprintln!(
                        "  1 round {round}: tar + qemu-img convert {t:.2} s (CPU {cpu:.2} s)"
                    );
                    s_a.push(t);
                    c_a.push(cpu);
                    let _ = std::fs::remove_dir_all(&extract);
                    remove(&out_a);
                }
                2 => {
                    let (t, cpu) = with_cpu(|| {
                        time(qemu_img(&["convert", "-f", "vmdk", "-O", "qcow2", &vmdk]).arg(&out_b))
                    })?;
                    eprintln!("  1 round {round}: qemu-img convert {t:.2} s (CPU {cpu:.2} s)");
                    s_b.push(t);
                    c_b.push(cpu);
                    remove(&out_b);
                }
                3 => {
                    // qemu-img convert's default cache mode for the output is `unsafe`: it
                    // never flushes. vmd flushes the volume before it records the master, so
                    // this variant flushes at the end too.
                    let (t, cpu) = with_cpu(|| {
                        time(
                            qemu_img(&["convert", "-t", "writeback", "-f", "vmdk", "-O", "qcow2"])
                                .arg(&vmdk)
                                .arg(&out_b),
                        )
                    })?;
                    eprintln!("  1 round {round}: qemu-img convert -t writeback {t:.2} s");
                    s_bw.push(t);
                    c_bw.push(cpu);
                    remove(&out_b);
                }
                _ => s_c.push(read_file(&data.ova, READ_BUFFER)?.1),
            }
            sync()?;
        }
    }
    let vmd = Measure::new("vmd import", s_vmd)
        .with_bytes(ova_bytes)
        .with_cpu(c_vmd);
    let a = Measure::new("(a) tar -xf + qemu-img convert", s_a)
        .with_bytes(ova_bytes)
        .with_cpu(c_a);
    let bb = Measure::new("(b) qemu-img convert", s_b)
        .with_bytes(ova_bytes)
        .with_cpu(c_b);
    let bw = Measure::new("(b') qemu-img convert -t writeback", s_bw)
        .with_bytes(ova_bytes)
        .with_cpu(c_bw);
    let c = Measure::new("(c) read OVA", s_c).with_bytes(ova_bytes);
    let vs_b = vmd.median() / bb.median();
    let vs_bw = vmd.median() / bw.median();
    let a_vs = a.median() / vmd.median();
    let vs_c = vmd.median() / c.median();
    let resident = if min_resident == u64::MAX {
        "unknown (no fincore)".to_string()
    } else {
        format!(
            "at least {:.0}%",
            100.0 * min_resident as f64 / ova_bytes as f64
        )
    };
    Ok(
        Row::new("1", "import OVA (2 GiB virtual, 1 GiB data)", vmd.clone())
            .compare(a)
            .compare(bb)
            .compare(bw)
            .compare(c)
            .ratio("vmd / (b)", vs_b)
            .ratio("vmd / (b')", vs_bw)
            .ratio("(a) / vmd", a_vs)
            .ratio("vmd / (c)", vs_c)
            .target(
                "vmd <= 1.10x (b); (a) >= 1.5x vmd",
                Some(vs_b <= 1.10 && a_vs >= 1.5),
            )
            .note(format!(
                "OVA {:.0} MB ({:.0} MB of data in a {} MiB disk); warm page cache: the \
                 OVA was {resident} resident before every timed variant; MB/s are OVA bytes \
                 per second; CPU is user + system time of the command and its children; (a) \
                 and (b) leave the written data in the page cache (qemu-img convert's default \
                 cache mode, unsafe, never flushes), vmd and (b') flush it before they return",
                ova_bytes as f64 / 1e6,
                data.data_bytes as f64 / 1e6,
                data::IMPORT_VIRTUAL_BYTES >> 20
            )),
    )
}

/// Linked clones are cheap: row 2 takes at least ten samples per size, so that one slow
/// sample on a busy host cannot decide the flatness verdict.
fn linked_samples(runs: usize) -> usize {
    runs.max(10)
}

/// Row 2: `vmd clone` (linked) of blank masters of 1, 10 and 100 GiB, against `qemu-img
/// create -b` of an overlay on the same master volume.
pub fn linked_clone(b: &Bench) -> Result<Vec<Row>> {
    let sizes = [1u64, 10, 100];
    let mut measured = Vec::new();
    for gib in sizes {
        let ovf = data::sparse_package(&b.root, gib)?;
        let master = b.name(&format!("m{gib}g"));
        b.vmd_ok(&["import", &ovf.to_string_lossy(), "--name", &master])?;
        let (path, _) = b
            .disks(&master)?
            .into_iter()
            .next()
            .context("master without disks")?;
        let path = path.to_string_lossy().into_owned();
        let overlay = b.work_dir.join("overlay.qcow2");
        let (mut s_vmd, mut s_q) = (Samples::default(), Samples::default());
        for round in 0..linked_samples(b.runs) {
            let name = b.name(&format!("lc{gib}g{round}"));
            s_vmd.push(b.time_vmd(&["clone", &master, &name])?);
            b.vmd_ok(&["delete", &name])?;
            s_q.push(time(
                qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &path])
                    .arg(&overlay),
            )?);
            remove(&overlay);
        }
        b.vmd_ok(&["delete", &master])?;
        measured.push((gib, s_vmd, s_q));
    }
    let medians: Vec<f64> = measured.iter().map(|(_, s, _)| s.median()).collect();
    let (smallest, largest) = (medians[0], medians[medians.len() - 1]);
    let growth = largest - smallest;
    // Flat: the largest master clones no slower than the smallest, within run-to-run noise
    // on a shared host (10 ms or a quarter, whichever is more).
    let flat = growth <= 0.010_f64.max(0.25 * smallest);
    Ok(measured
        .into_iter()
        .zip(["2a", "2b", "2c"])
        .map(|((gib, s_vmd, s_q), id)| {
            let vmd = Measure::new("vmd clone", s_vmd);
            let q = Measure::new("qemu-img create -b", s_q);
            let ratio = vmd.median() / q.median();
            let under = vmd.median() < 0.100;
            let mut row = Row::new(id, &format!("linked clone, {gib} GiB master"), vmd)
                .compare(q)
                .ratio("vmd / qemu-img", ratio)
                .target("< 100 ms, flat 1-100 GiB", Some(under && flat));
            if id == "2c" {
                row = row.note(format!(
                    "{} samples per size; medians {}; 100 GiB minus 1 GiB: {:+.1} ms ({}: flat \
                     means within max(10 ms, 25%) of the 1 GiB median)",
                    linked_samples(b.runs),
                    medians
                        .iter()
                        .map(|m| format!("{:.1} ms", m * 1e3))
                        .collect::<Vec<_>>()
                        .join(", "),
                    growth * 1e3,
                    if flat { "flat" } else { "not flat" }
                ));
            }
            row
        })
        .collect())
}

/// Row 3: `vmd clone --full` of the row-1 master, against `qemu-img convert` (qcow2 to
/// qcow2) and `cp --sparse=always` of the same volume.
pub fn full_clone(b: &Bench, data: &ImportData) -> Result<Row> {
    let master = b.name("full");
    b.vmd_ok(&["import", &data.ova.to_string_lossy(), "--name", &master])?;
    let (path, _) = b
        .disks(&master)?
        .into_iter()
        .next()
        .context("master without disks")?;
    let src = path.to_string_lossy().into_owned();
    let bytes = allocated(&path)?;
    read_file(&path, READ_BUFFER)?;
    sync()?;
    let out = b.work_dir.join("full.qcow2");
    let [mut s_vmd, mut s_q, mut s_cp]: [Samples; 3] = Default::default();
    let [mut c_q, mut c_cp]: [Samples; 2] = Default::default();
    let mut vmd_alloc = 0;
    for round in 0..b.runs {
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    let name = b.name(&format!("fc{round}"));
                    let t = b.time_vmd(&["clone", &master, &name, "--full"])?;
                    eprintln!("  3 round {round}: vmd clone --full {t:.2} s");
                    s_vmd.push(t);
                    if let Some((p, _)) = b.disks(&name)?.first() {
                        vmd_alloc = allocated(p)?;
                    }
                    b.vmd_ok(&["delete", &name])?;
                }
                1 => {
                    let (t, cpu) = with_cpu(|| {
                        time(qemu_img(&["convert", "-f", "qcow2", "-O", "qcow2", &src]).arg(&out))
                    })?;
                    eprintln!("  3 round {round}: qemu-img convert {t:.2} s");
                    s_q.push(t);
                    c_q.push(cpu);
                    remove(&out);
                }
                _ => {
                    let (t, cpu) = with_cpu(|| {
                        time(Command::new("cp").args(["--sparse=always", &src]).arg(&out))
                    })?;
                    eprintln!("  3 round {round}: cp --sparse=always {t:.2} s");
                    s_cp.push(t);
                    c_cp.push(cpu);
                    remove(&out);
                }
            }
            sync()?;
        }
    }
    let reflink = Command::new("cp")
        .args(["--reflink=always", &src])
        .arg(&out)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    remove(&out);
    b.vmd_ok(&["delete", &master])?;
    let vmd = Measure::new("vmd clone --full", s_vmd).with_bytes(bytes);
    let q = Measure::new("qemu-img convert", s_q)
        .with_bytes(bytes)
        .with_cpu(c_q);
    let cp = Measure::new("cp --sparse=always", s_cp)
        .with_bytes(bytes)
        .with_cpu(c_cp);
    let ratio = q.median() / vmd.median();
    let cp_ratio = cp.median() / vmd.median();
    Ok(Row::new("3", "full clone (row-1 master)", vmd)
        .compare(q)
        .compare(cp)
        .ratio("vmd throughput / qemu-img's", ratio)
        .ratio("vmd throughput / cp's", cp_ratio)
        .target(">= 0.9x qemu-img throughput", Some(ratio >= 0.9))
        .note(format!(
            "source volume: {:.0} MB allocated (MB/s are these bytes per second); vmd's copy \
             allocates {:.0} MB (vmd copies the master's file with copy_file_range and flushes \
             it before recording the clone; qemu-img convert and cp do not flush); `cp \
             --reflink=always` {} on this filesystem (row 3r measures one where it works)",
            bytes as f64 / 1e6,
            vmd_alloc as f64 / 1e6,
            if reflink { "works" } else { "fails" },
        )))
}
