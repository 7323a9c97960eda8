//! Failure injection: named points at every step of the multi-step operations where a test
//! can make vmd fail as a crash or an error would, to prove that rollback, `doctor` and a
//! retry converge. Always compiled in and inert unless `VMD_FAIL` is set:
//!
//! `VMD_FAIL=<step>:<mode>[:<n>]` fails at the `n`th time (default the first) the process
//! reaches `<step>`. Mode `error` returns an injected error, which the operation handles like
//! any other failure (it rolls back); mode `exit` ends the process at once with status 137,
//! as `SIGKILL` would: no destructor, rollback or cleanup runs.
//!
//! The steps, in the order each operation reaches them:
//!
//! | step | where |
//! | --- | --- |
//! | `import.planned` | the plan is made, nothing written yet |
//! | `import.volume-created` | after each volume is created, before its data is written |
//! | `import.disk-written` | after each disk is written and verified (the first is mid-write in a two-disk package) |
//! | `import.before-commit` | every disk written, before the catalog record |
//! | `import.committed` | the catalog record is written, before staging files are cleaned up |
//! | `clone.volume-created` | after each overlay or copy is created |
//! | `clone.before-commit` | every volume created, before the catalog record |
//! | `clone.committed` | the catalog record is written |
//! | `deploy.defined` | the domain is defined, the catalog not yet updated |
//! | `deploy.before-commit` | the record updated in memory, before the catalog write |
//! | `deploy.started` | the catalog says deployed and the domain was started |
//! | `snapshot.taken` | the snapshot exists on the disks, before the catalog write |
//! | `undeploy.shutdown` | the domain is off, still defined |
//! | `undeploy.undefined` | the domain is undefined, the catalog not yet updated |
//! | `undeploy.before-commit` | the record updated in memory, before the catalog write |
//! | `undeploy.captured-volume` | `--as-master`: after each captured volume is written |
//! | `undeploy.master-before-commit` | `--as-master`: every volume captured, before the master's record |
//!
//! This module must not be used for anything but tests: it never reads any other variable,
//! and an unknown step or mode simply never fires.

use std::sync::atomic::{AtomicU32, Ordering};

use super::Error;

/// The environment variable that arms a failure point.
pub const ENV: &str = "VMD_FAIL";

/// Every failure point, in the order the operations reach them.
pub const STEPS: &[&str] = &[
    "import.planned",
    "import.volume-created",
    "import.disk-written",
    "import.before-commit",
    "import.committed",
    "clone.volume-created",
    "clone.before-commit",
    "clone.committed",
    "deploy.defined",
    "deploy.before-commit",
    "deploy.started",
    "snapshot.taken",
    "undeploy.shutdown",
    "undeploy.undefined",
    "undeploy.before-commit",
    "undeploy.captured-volume",
    "undeploy.master-before-commit",
];

/// The exit status of an injected abrupt exit: what a shell reports for `SIGKILL`.
pub const EXIT_STATUS: i32 = 137;

/// What an armed point does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Error,
    Exit,
}

/// A parsed `VMD_FAIL` value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    step: String,
    mode: Mode,
    nth: u32,
}

fn parse(value: &str) -> Option<Spec> {
    let mut parts = value.trim().splitn(3, ':');
    let step = parts.next()?.to_string();
    let mode = match parts.next()? {
        "error" => Mode::Error,
        "exit" => Mode::Exit,
        _ => return None,
    };
    let nth = match parts.next() {
        Some(n) => n.parse().ok().filter(|n| *n > 0)?,
        None => 1,
    };
    Some(Spec { step, mode, nth })
}

/// How many times this process reached the armed step.
static HITS: AtomicU32 = AtomicU32::new(0);

/// A failure point: returns the injected error, or ends the process, when `VMD_FAIL` names
/// `step` and this is the `n`th time it is reached; otherwise does nothing.
pub fn point(step: &'static str) -> Result<(), Error> {
    debug_assert!(STEPS.contains(&step), "undeclared failure point {step}");
    let Some(spec) = std::env::var(ENV).ok().as_deref().and_then(parse) else {
        return Ok(());
    };
    if spec.step != step {
        return Ok(());
    }
    let hit = HITS.fetch_add(1, Ordering::SeqCst).saturating_add(1);
    if hit != spec.nth {
        return Ok(());
    }
    match spec.mode {
        Mode::Error => Err(Error::Injected(step)),
        // Like a crash: `exit` runs no destructor of any live value, so no rollback happens
        // and every lock is released only because the kernel closes the files.
        Mode::Exit => std::process::exit(EXIT_STATUS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_step_and_mode_defaults_to_first_hit() {
        assert_eq!(
            parse("import.planned:exit"),
            Some(Spec {
                step: "import.planned".into(),
                mode: Mode::Exit,
                nth: 1
            })
        );
        assert_eq!(
            parse("clone.volume-created:error:2").map(|s| s.nth),
            Some(2)
        );
    }

    #[test]
    fn parse_unknown_mode_or_bad_count_never_fires() {
        assert_eq!(parse("import.planned"), None);
        assert_eq!(parse("import.planned:explode"), None);
        assert_eq!(parse("import.planned:exit:0"), None);
        assert_eq!(parse("import.planned:exit:x"), None);
    }

    #[test]
    fn point_unarmed_does_nothing() {
        // VMD_FAIL is not set in unit tests; every point is inert.
        for step in STEPS {
            assert!(point(step).is_ok(), "{step}");
        }
    }

    #[test]
    fn steps_match_the_points_in_the_sources() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/manager");
        let mut found = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("fault.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for piece in text.split("fault::point(\"").skip(1) {
                        found.push(piece.split('"').next().unwrap().to_string());
                    }
                }
            }
        }
        found.sort();
        found.dedup();
        let mut declared: Vec<String> = STEPS.iter().map(|s| s.to_string()).collect();
        declared.sort();
        assert_eq!(found, declared);
    }

    #[test]
    fn steps_are_documented_in_reliability_doc() {
        let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
        let text = std::fs::read_to_string(doc).unwrap();
        for step in STEPS {
            assert!(text.contains(&format!("`{step}`")), "{step} not documented");
        }
    }
}
