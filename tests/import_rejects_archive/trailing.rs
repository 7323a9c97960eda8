//! Item 44 (SECURITY.md): zero padding after the end-of-archive marker has a stated limit
//! (4 MiB); a sparse gigabyte of it is refused at once instead of being scanned.

use std::time::{Duration, Instant};

use crate::common::env::TestEnv;
use crate::common::packages::raw_tar;
use crate::fixtures::{assert_rejected, import, ova_bytes, ova_members};

const CAP: u64 = 4 << 20;

/// `pkg.ova`: the valid archive followed by `tail` zero bytes, sparse on disk.
fn padded(env: &TestEnv, tail: u64) -> (std::path::PathBuf, u64) {
    let bytes = raw_tar(&ova_members());
    let marker = bytes.len() as u64 - 1024;
    let pkg = ova_bytes(env, &bytes);
    let f = std::fs::File::options().write(true).open(&pkg).unwrap();
    f.set_len(bytes.len() as u64 + tail).unwrap();
    (pkg, marker)
}

// SECURITY.md item 44: a sparse 1 GiB tail is refused promptly with a one-line message, and
// nothing is written.
#[test]
fn archive_gigabyte_of_zero_padding_is_refused_promptly() {
    let env = TestEnv::new("t-pad-gib");
    let (pkg, marker) = padded(&env, 1 << 30);
    let started = Instant::now();
    let out = import(&env, &pkg, &["--dry-run"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let len = 1u64 << 30;
    assert_rejected(
        &env,
        &out,
        &[
            "pkg.ova",
            &format!("{len} bytes after its end-of-archive marker at offset {marker}"),
            &format!("more than the {CAP} bytes of padding allowed"),
        ],
    );
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "end-of-archive marker"]);
}

// SECURITY.md item 44: padding up to the limit (GNU tar's 10 KiB record and far more) still
// imports.
#[test]
fn archive_zero_padding_at_the_limit_is_accepted() {
    let env = TestEnv::new("t-pad-cap");
    let (pkg, _) = padded(&env, CAP);
    let out = import(&env, &pkg, &["--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
