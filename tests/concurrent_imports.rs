//! Eight imports into one pool at once (SECURITY.md item 45), on the real libvirtd: with
//! different names every one succeeds; with one name exactly one succeeds and every other
//! exits with the conflict status (5), naming the name. libvirt refuses to refresh a pool
//! while another client's volume job runs in it; that must never fail an import.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::process::{Output, Stdio};

use common::env::TestEnv;
use common::tiny_ova;

const IMPORTS: usize = 8;

fn import_all(env: &TestEnv, names: &[String]) -> Vec<Output> {
    let ova = tiny_ova();
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            env.command()
                .arg("import")
                .arg(&ova)
                .args(["--name", n])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn vmd")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

#[test]
fn import_eight_names_into_one_pool_all_succeed() {
    let env = TestEnv::new("par-names");
    let names: Vec<String> = (0..IMPORTS).map(|i| format!("par{i}")).collect();

    let outs = import_all(&env, &names);

    for (n, o) in names.iter().zip(&outs) {
        assert_eq!(
            o.status.code(),
            Some(0),
            "import {n}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let mut cataloged = env.catalog();
    cataloged.sort();
    assert_eq!(cataloged, names);
    assert_eq!(env.volumes().len(), 2 * IMPORTS, "two disks per master");
}

#[test]
fn import_eight_of_one_name_one_wins_others_conflict() {
    let env = TestEnv::new("par-same");
    let names = vec!["same".to_string(); IMPORTS];

    let outs = import_all(&env, &names);

    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "exactly one import wins");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(5), "a loser is a conflict: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("named same exists already"), "{err}");
    }
    assert_eq!(env.catalog(), ["same"]);
    assert_eq!(env.volumes().len(), 2, "losers leave no volume behind");
}
