//! Rows 5 to 7: many linked clones and `list` over them, the pause a snapshot imposes on a
//! running guest, and the start-up time of the `vmd` command.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::env::{virsh, Bench};
use crate::measure::{run, time, time_output, Samples};
use crate::report::{Measure, Row};

/// Row 5: how many clones.
pub const CLONES: usize = 200;
/// `list` calls timed per round (after one untimed call).
const LIST_CALLS: usize = 5;

/// Row 5a, 5b, 5c: 200 linked clones of the tiny appliance, one `vmd clone` each, against
/// `qemu-img create -b` of the same overlays; then `vmd list --json` with all of them,
/// against `virsh vol-list` of the pool.
pub fn many_clones(b: &Bench, master: &str) -> Result<Vec<Row>> {
    let master_disks = b.disks(master)?;
    let [mut total_vmd, mut total_q, mut per_vmd, mut per_q]: [Samples; 4] = Default::default();
    let [mut list, mut vol_list, mut delete]: [Samples; 3] = Default::default();
    let mut growth = Vec::new();
    for round in 0..b.runs {
        let names: Vec<String> = (0..CLONES)
            .map(|i| b.name(&format!("n{round}-{i}")))
            .collect();
        let mut this_round = Samples::default();
        let start = Instant::now();
        for name in &names {
            this_round.push(b.time_vmd(&["clone", master, name])?);
        }
        total_vmd.push(start.elapsed().as_secs_f64());
        growth.push((
            Samples(this_round.0[..10].to_vec()).median(),
            Samples(this_round.0[CLONES - 10..].to_vec()).median(),
        ));
        per_vmd.0.extend(&this_round.0);

        let (_, out) = time_output(&mut b.vmd(&["list", "--json"]))?;
        let listed: serde_json::Value = serde_json::from_str(&out)?;
        let count = listed.as_array().map_or(0, Vec::len);
        if count < CLONES {
            bail!("vmd list --json shows {count} VMDs, expected at least {CLONES}");
        }
        for _ in 0..LIST_CALLS {
            list.push(time(&mut b.vmd(&["list", "--json"]))?);
        }
        run(&mut virsh(&["pool-refresh", &b.pool]))?;
        for _ in 0..LIST_CALLS {
            vol_list.push(time(&mut virsh(&["vol-list", &b.pool]))?);
        }

        let start = Instant::now();
        for i in 0..CLONES {
            let t0 = Instant::now();
            for (d, (path, _)) in master_disks.iter().enumerate() {
                let out = b.work_dir.join(format!("q{i}-{d}.qcow2"));
                run(Command::new("qemu-img")
                    .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
                    .arg(path)
                    .arg(out))?;
            }
            per_q.push(t0.elapsed().as_secs_f64());
        }
        total_q.push(start.elapsed().as_secs_f64());
        for i in 0..CLONES {
            for d in 0..master_disks.len() {
                let _ = std::fs::remove_file(b.work_dir.join(format!("q{i}-{d}.qcow2")));
            }
        }
        for name in &names {
            delete.push(b.time_vmd(&["delete", name])?);
        }
        eprintln!(
            "  5 round {round}: {CLONES} clones {:.1} s, list {:.1} ms",
            total_vmd.0[round],
            list.median() * 1e3
        );
    }
    let first = Samples(growth.iter().map(|g| g.0).collect()).median();
    let last = Samples(growth.iter().map(|g| g.1).collect()).median();
    let disks = master_disks.len();

    let vmd = Measure::new(&format!("{CLONES} x vmd clone"), total_vmd);
    let q = Measure::new(&format!("{CLONES} x {disks} qemu-img create -b"), total_q);
    let ratio = vmd.median() / q.median();
    let under = vmd.median() < CLONES as f64 * 0.100;
    let row_a = Row::new("5a", &format!("{CLONES} linked clones, total"), vmd)
        .compare(q)
        .ratio("vmd / qemu-img", ratio)
        .target(
            &format!("< {} s ({CLONES} x 100 ms)", CLONES / 10),
            Some(under),
        )
        .note(format!(
            "the master is the tiny appliance ({disks} disks, so {disks} overlays per clone)"
        ));
    let p95 = per_vmd.quantile(0.95);
    let vmd = Measure::new("vmd clone", per_vmd);
    let q = Measure::new(&format!("{disks} x qemu-img create -b"), per_q);
    let ratio = vmd.median() / q.median();
    let under = vmd.median() < 0.100;
    let row_b = Row::new("5b", "per clone, among 200", vmd)
        .compare(q)
        .ratio("vmd / qemu-img", ratio)
        .target("< 100 ms", Some(under))
        .note(format!(
            "p95 {:.1} ms; median of the first 10 clones of a round {:.1} ms, of the last 10 \
             {:.1} ms; vmd delete of one clone {:.1} ms (median)",
            p95 * 1e3,
            first * 1e3,
            last * 1e3,
            delete.median() * 1e3
        ));
    let vmd = Measure::new("vmd list --json", list);
    let v = Measure::new("virsh vol-list (pool)", vol_list);
    let ratio = vmd.median() / v.median();
    let under = vmd.median() < 0.050;
    let row_c = Row::new("5c", &format!("list with {CLONES} clones"), vmd)
        .compare(v)
        .ratio("vmd / virsh", ratio)
        .target("< 50 ms", Some(under))
        .note(format!(
            "{LIST_CALLS} timed calls per round after an untimed one; virsh lists the pool's \
             {} volumes",
            CLONES * disks + disks
        ));
    Ok(vec![row_a, row_b, row_c])
}

/// `HH:MM:SS.mmm` of a `virsh ... --timestamp` line (`2024-01-01 12:00:00.123+0000: ...`),
/// in seconds since midnight.
fn stamp(line: &str) -> Option<f64> {
    let hms = line.get(11..23)?;
    let mut parts = hms.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Runs `act` while watching the domain's QMP events, and returns how long QEMU stopped the
/// guest (from its `STOP` to its `RESUME` event, as QEMU timestamps them) and what `act`
/// returned.
fn paused_during(domain: &str, act: impl FnOnce() -> Result<f64>) -> Result<(f64, f64)> {
    // Line-buffered, so that each event reaches us as it happens.
    let mut child = Command::new("stdbuf")
        .args([
            "-oL",
            "virsh",
            "-q",
            "-c",
            "qemu:///system",
            "qemu-monitor-event",
        ])
        .args([
            "--domain",
            domain,
            "--loop",
            "--timestamp",
            "--timeout",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run virsh qemu-monitor-event")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // virsh registers for events a moment after it starts.
    std::thread::sleep(Duration::from_millis(700));
    let acted = act();
    let mut stop = None;
    let mut resume = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while resume.is_none() && acted.is_ok() && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if line.contains("event STOP ") && stop.is_none() {
            stop = stamp(&line);
        } else if line.contains("event RESUME ") && stop.is_some() {
            resume = stamp(&line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let wall = acted?;
    match (stop, resume) {
        (Some(s), Some(r)) => Ok(((r - s).rem_euclid(86_400.0), wall)),
        _ => bail!("no STOP/RESUME pair among {domain}'s QMP events"),
    }
}

/// Row 6: `vmd snapshot` (no `--memory`) of a running 256 MiB guest, against `virsh
/// snapshot-create-as` of the same domain.
pub fn snapshot(b: &Bench) -> Result<Row> {
    let name = b.name("snap");
    let domain = format!("vmd-{name}");
    b.vmd_ok(&["create", &name, "--os-disk", "64M", "--memory", "256"])?;
    b.vmd_ok(&["deploy", &name, "--start"])?;
    std::thread::sleep(Duration::from_secs(2));
    let state = b.vmd_json(&["status", &name])?;
    if state["state"] != "running" {
        bail!("{name} is not running: {state}");
    }
    let [mut pause_vmd, mut wall_vmd, mut pause_virsh, mut wall_virsh]: [Samples; 4] =
        Default::default();
    for round in 0..b.runs {
        // Alternate which goes first, so that neither always follows the other's delete.
        for vmd_turn in [round % 2 == 0, round % 2 == 1] {
            if vmd_turn {
                let snap = format!("s{round}");
                let (p, w) = paused_during(&domain, || b.time_vmd(&["snapshot", &name, &snap]))?;
                pause_vmd.push(p);
                wall_vmd.push(w);
                b.vmd_ok(&["snapshots", &name, "--delete", &snap])?;
            } else {
                let snap = format!("v{round}");
                let (p, w) = paused_during(&domain, || {
                    time(&mut virsh(&["snapshot-create-as", &domain, &snap]))
                })?;
                pause_virsh.push(p);
                wall_virsh.push(w);
                run(&mut virsh(&["snapshot-delete", &domain, &snap]))?;
            }
        }
        eprintln!(
            "  6 round {round}: vmd paused {:.0} ms, virsh paused {:.0} ms",
            pause_vmd.0[round] * 1e3,
            pause_virsh.0[round] * 1e3
        );
    }
    b.vmd_ok(&["delete", &name, "--force"])?;
    let note = format!(
        "pause = QEMU's STOP to RESUME event (virsh qemu-monitor-event --timestamp, 1 ms \
         resolution); whole command: vmd snapshot {:.0} ms, virsh snapshot-create-as {:.0} ms; \
         the guest (vmd create, blank 64 MiB OS disk) sits in the BIOS boot-retry loop, so \
         most of its 256 MiB is never touched",
        wall_vmd.median() * 1e3,
        wall_virsh.median() * 1e3
    );
    let vmd = Measure::new("vmd snapshot: guest paused", pause_vmd);
    let v = Measure::new("virsh snapshot-create-as: guest paused", pause_virsh);
    let ratio = vmd.median() / v.median();
    let under = vmd.median() < 0.200;
    Ok(Row::new("6", "snapshot of a running 256 MiB guest", vmd)
        .compare(v)
        .ratio("vmd / virsh", ratio)
        .target("pause < 200 ms", Some(under))
        .note(note))
}

/// Row 7: `vmd --version`, against `/bin/true`, `qemu-img --version` and `virsh --version`.
pub fn startup(b: &Bench) -> Result<Row> {
    let n = (b.runs * 10).max(50);
    let measure = |program: &str, args: &[&str]| -> Result<Samples> {
        let mut s = Samples::default();
        for i in 0..n + 3 {
            let t = time(Command::new(program).args(args))?;
            // The first calls fault the binary into the page cache.
            if i >= 3 {
                s.push(t);
            }
        }
        Ok(s)
    };
    let vmd = Measure::new(
        "vmd --version",
        measure(&b.vmd.to_string_lossy(), &["--version"])?,
    );
    let t = Measure::new("/bin/true", measure("/bin/true", &[])?);
    let q = Measure::new("qemu-img --version", measure("qemu-img", &["--version"])?);
    let v = Measure::new("virsh --version", measure("virsh", &["--version"])?);
    let net = vmd.median() - t.median();
    let under = vmd.median() < 0.020;
    Ok(Row::new("7", "start-up", vmd)
        .compare(t)
        .compare(q)
        .compare(v)
        .target("< 20 ms", Some(under))
        .note(format!(
            "{n} calls each (after 3 untimed); vmd's own share above process creation: {:.1} ms",
            net * 1e3
        )))
}
