//! A `delete` of a master racing eight `vmd clone` processes of it (SECURITY.md items 31 and
//! 32), on the real libvirtd, started at several offsets from the clones: it never leaves a
//! clone without its backing volume. Either the delete wins (the master and its volumes are
//! gone and no clone exists) or it is refused because clones exist (the master and its
//! volumes stay); nothing in between, whatever the timing. (Eight parallel clones that all
//! succeed: `tests/locks_and_faults.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
#[path = "reliability/lab.rs"]
mod lab;

use std::process::{Child, Output, Stdio};
use std::time::Duration;

use lab::{assert_fails, backing_chain, Lab};

const CLONES: usize = 8;

fn spawn(lab: &Lab, args: &[&str]) -> Child {
    lab.cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vmd")
}

fn clone_names(lab: &Lab, master: &str) -> Vec<String> {
    (0..CLONES)
        .map(|i| lab.name(&format!("{master}c{i}")))
        .collect()
}

/// Starts `CLONES` clones of `master` at once.
fn spawn_clones(lab: &Lab, master: &str) -> Vec<(String, Child)> {
    clone_names(lab, master)
        .into_iter()
        .map(|c| {
            let child = spawn(lab, &["clone", &lab.name(master), &c]);
            (c, child)
        })
        .collect()
}

fn wait(children: Vec<(String, Child)>) -> Vec<(String, Output)> {
    children
        .into_iter()
        .map(|(n, c)| (n, c.wait_with_output().unwrap()))
        .collect()
}

/// The instances in the catalog whose name is one of `names`.
fn cataloged(lab: &Lab, names: &[String]) -> Vec<String> {
    lab.records()
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .filter(|n| names.contains(n))
        .collect()
}

#[test]
fn delete_master_racing_eight_clones_never_orphans_a_clone() {
    let lab = Lab::new("race");
    // The delete starts at several points of the clones' run: just before them (it should
    // win), as they read the master, while they create overlays, and while they commit. A
    // negative offset starts the delete first.
    for (round, offset_ms) in [-5i64, -1, 0, 2, 4, 8, 15, 25].into_iter().enumerate() {
        let short = format!("m{round}");
        let master = lab.name(&short);
        lab.import_tiny(&master);
        let master_paths = lab.disk_paths(&master);

        let pause = Duration::from_millis(offset_ms.unsigned_abs());
        let (delete, clones) = if offset_ms < 0 {
            let delete = spawn(&lab, &["delete", &master]);
            std::thread::sleep(pause);
            (delete, spawn_clones(&lab, &short))
        } else {
            let clones = spawn_clones(&lab, &short);
            std::thread::sleep(pause);
            (spawn(&lab, &["delete", &master]), clones)
        };
        let delete = delete.wait_with_output().unwrap();
        let results = wait(clones);

        let made: Vec<&String> = results
            .iter()
            .filter(|(_, o)| o.status.success())
            .map(|(n, _)| n)
            .collect();
        for (name, out) in results.iter().filter(|(_, o)| !o.status.success()) {
            // A clone that lost the race says so in one line, and made nothing.
            let line = assert_fails(out, None, &[]);
            eprintln!("round {round}: clone {name}: {line}");
            assert!(
                !cataloged(&lab, std::slice::from_ref(name)).contains(name),
                "round {round}: failed clone {name} is in the catalog ({line})"
            );
        }
        let names = clone_names(&lab, &short);
        let mut in_catalog = cataloged(&lab, &names);
        in_catalog.sort();
        let mut made_sorted: Vec<String> = made.iter().map(|s| s.to_string()).collect();
        made_sorted.sort();
        assert_eq!(
            in_catalog, made_sorted,
            "round {round}: catalog vs clones that succeeded"
        );

        if delete.status.success() {
            assert!(
                made.is_empty(),
                "round {round}: the master was deleted, yet clones {made:?} succeeded"
            );
            assert!(
                lab.records().iter().all(|r| r["name"] != master.as_str()),
                "round {round}: deleted master still in the catalog"
            );
            for p in &master_paths {
                assert!(!std::path::Path::new(p).exists(), "round {round}: {p} left");
            }
        } else {
            assert_fails(&delete, Some(5), &["still has clones"]);
            assert!(
                !made.is_empty(),
                "round {round}: delete refused with no clone"
            );
            for p in &master_paths {
                assert!(std::path::Path::new(p).is_file(), "round {round}: {p} gone");
            }
        }
        for name in &made {
            for path in lab.disk_paths(name) {
                let chain = backing_chain(&path);
                assert_eq!(chain.len(), 2, "round {round}: {name}: {chain:?}");
            }
        }
        lab.assert_consistent();
        eprintln!(
            "round {round} (delete at {offset_ms:+} ms): delete {}, {} of {CLONES} clones made",
            if delete.status.success() {
                "won"
            } else {
                "refused"
            },
            made.len()
        );

        // Clear the round: clones first, then the master if it survived.
        for name in &made {
            lab.ok(&["delete", name]);
        }
        if !delete.status.success() {
            lab.ok(&["delete", &master]);
        }
        lab.assert_consistent();
    }
}
