//! vmd's benchmark suite (`make bench`, or `cargo bench --bench suite`): each row times the
//! release-built `vmd` and the tools a user would use instead, in the same run, several
//! times, then prints a markdown table and writes `target/bench/results.json` (and
//! `results.md`).
//!
//! A plain program rather than a libtest or criterion harness: every measurement is a whole
//! external process (`vmd`, `qemu-img`, `virsh`, `virt-install`) against the real libvirtd,
//! run a handful of times, so what it needs is process timing, clean-up of libvirt objects
//! and its own report, not statistics over microsecond closures. As a `[[bench]]` of the
//! crate it gets the release `vmd` binary built with it (`CARGO_BIN_EXE_vmd`) and the
//! crate's dependencies, without a second crate.
//!
//! Rows: 1 import, 2 linked clone (1, 10, 100 GiB), 3 full clone (and 3r on XFS with
//! reflink), 4 deploy (define; define + start), 5 200 clones and `list`, 6 snapshot pause,
//! 7 start-up, 8 import into a pool on a remote host (the second libvirt host of
//! `scripts/second-host`). Environment: `BENCH_RUNS` (samples per row, default 5),
//! `BENCH_ROWS` (e.g. `1,3`; all by default; positional arguments work too), `BENCH_DIR`
//! (default `target/bench`).
//! Everything it creates on libvirt carries a per-run tag and is removed at the end; a run
//! that was killed is cleaned up by the next one.

mod data;
mod deploy;
mod env;
mod life;
mod measure;
mod reflink;
mod remote;
mod report;
mod storage;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use env::Bench;
use report::Row;

/// The rows, by number, as `BENCH_ROWS` names them.
const ALL_ROWS: [u32; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn selected_rows() -> Result<Vec<u32>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let spec = if args.is_empty() {
        std::env::var("BENCH_ROWS").unwrap_or_default()
    } else {
        args.join(",")
    };
    if spec.trim().is_empty() {
        return Ok(ALL_ROWS.to_vec());
    }
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<u32>() {
            Ok(n) if ALL_ROWS.contains(&n) => Ok(n),
            _ => bail!("unknown row {s:?} in BENCH_ROWS: use numbers 1 to 8"),
        })
        .collect()
}

fn runs() -> Result<usize> {
    match std::env::var("BENCH_RUNS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => bail!("BENCH_RUNS={v:?}: expected a whole number of at least 1"),
        },
        Err(_) => Ok(5),
    }
}

/// The tiny appliance's OVA, built by (or found in the cache of) `ovf/build-tiny`.
fn tiny_ova() -> Result<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ovf/build-tiny");
    let out = measure::run(&mut Command::new(&script))?;
    Ok(PathBuf::from(out.trim()))
}

/// Removes the run's libvirt objects and files however the run ends (error or panic).
struct Cleanup<'a>(&'a Bench);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        eprintln!("bench: cleaning up {}", self.0.pool);
        self.0.cleanup();
    }
}

/// Runs one row (or group of rows), keeping going after a failure so that the other rows
/// still report.
fn attempt(
    rows: &mut Vec<Row>,
    failures: &mut Vec<String>,
    what: &str,
    f: impl FnOnce() -> Result<Vec<Row>>,
) {
    eprintln!("bench: {what}");
    match f() {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("bench: {what} failed: {e:#}");
            failures.push(format!("{what}: {e:#}"));
        }
    }
}

fn suite() -> Result<bool> {
    let selected = selected_rows()?;
    let runs = runs()?;
    let vmd = PathBuf::from(env!("CARGO_BIN_EXE_vmd"));
    let root = match std::env::var_os("BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => vmd
            .parent()
            .and_then(|p| p.parent())
            .context("the vmd binary is not in a cargo target directory")?
            .join("bench"),
    };
    let root = std::path::absolute(&root)?;
    let priority = report::match_libvirtd_priority();
    eprintln!("bench: {priority}");
    let mut machine = report::machine(&root);
    machine["priority"] = priority.into();
    let bench = Bench::new(vmd, root.clone(), runs)?;
    let guard = Cleanup(&bench);
    eprintln!(
        "bench: {runs} runs per row; pool {}, state in {}",
        bench.pool,
        bench.state_dir.display()
    );
    let want = |n: u32| selected.contains(&n);
    let mut rows = Vec::new();
    let mut failures = Vec::new();

    let import_data = if want(1) || want(3) || want(8) {
        Some(data::import_ova(&root)?)
    } else {
        None
    };
    if let Some(d) = &import_data {
        if want(1) {
            attempt(&mut rows, &mut failures, "row 1: import", || {
                Ok(vec![storage::import(&bench, d)?])
            });
        }
    }
    if want(2) {
        attempt(&mut rows, &mut failures, "row 2: linked clone", || {
            storage::linked_clone(&bench)
        });
    }
    if let Some(d) = &import_data {
        if want(3) {
            attempt(&mut rows, &mut failures, "row 3: full clone", || {
                Ok(vec![storage::full_clone(&bench, d)?])
            });
            attempt(
                &mut rows,
                &mut failures,
                "row 3r: full clone with reflink",
                || Ok(vec![reflink::reflink_clone(&bench, d)?]),
            );
        }
    }
    // Rows 4 and 5 share one master of the tiny appliance, imported (untimed) on first use.
    let mut tiny = None;
    let mut tiny_master = || -> Result<String> {
        if let Some(name) = &tiny {
            return Ok(String::clone(name));
        }
        let name = bench.name("tiny");
        bench.vmd_ok(&["import", &tiny_ova()?.to_string_lossy(), "--name", &name])?;
        tiny = Some(name.clone());
        Ok(name)
    };
    if want(4) {
        attempt(&mut rows, &mut failures, "row 4: deploy", || {
            deploy::deploy(&bench, &tiny_master()?)
        });
    }
    if want(5) {
        attempt(
            &mut rows,
            &mut failures,
            &format!("row 5: {} linked clones and list", life::CLONES),
            || life::many_clones(&bench, &tiny_master()?),
        );
    }
    if want(6) {
        attempt(&mut rows, &mut failures, "row 6: snapshot", || {
            Ok(vec![life::snapshot(&bench)?])
        });
    }
    if want(7) {
        attempt(&mut rows, &mut failures, "row 7: start-up", || {
            Ok(vec![life::startup(&bench)?])
        });
    }
    if let Some(d) = &import_data {
        if want(8) {
            attempt(&mut rows, &mut failures, "row 8: remote import", || {
                Ok(vec![remote::remote_import(&bench, d)?])
            });
        }
    }
    drop(guard);

    machine["loadavg_end"] = report::loadavg().into();
    let table = report::markdown(&rows, runs);
    let mut doc = report::to_json(&rows, runs, &machine);
    doc["failures"] = failures.clone().into();
    std::fs::write(
        root.join("results.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    std::fs::write(root.join("results.md"), &table)?;
    println!("\n{table}");
    println!(
        "machine: {} CPUs, kernel {}, load {} at start, {} at end; {}",
        machine["nproc"].as_str().unwrap_or("?"),
        machine["kernel"].as_str().unwrap_or("?"),
        machine["loadavg_start"].as_str().unwrap_or("?"),
        machine["loadavg_end"].as_str().unwrap_or("?"),
        machine["priority"].as_str().unwrap_or("?"),
    );
    println!("results: {}", root.join("results.json").display());
    for f in &failures {
        println!("FAILED {f}");
    }
    Ok(failures.is_empty())
}

fn main() -> ExitCode {
    // `cargo bench` passes --bench; anything else (`cargo test --benches`, say) must not
    // start a quarter of an hour of guests and disk copies.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("the vmd benchmark suite runs with `make bench` or `cargo bench --bench suite`");
        return ExitCode::SUCCESS;
    }
    match suite() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
