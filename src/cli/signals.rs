//! SIGINT and SIGTERM during `import` and `verify` (SECURITY.md item 43).
//!
//! The first signal sets the operation's cancel flag: the manager stops at its next check
//! (each read of the package, each `qemu-img` poll), undoes what it created and returns, and
//! vmd exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM). Should the
//! operation still be running [`GRACE`] later, or a second signal come, vmd exits at once
//! with that status without its rollback: staged files and volumes it leaves carry the VMD
//! id of an uncommitted import and are removed by `vmd doctor --fix`.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// How long a cancelled operation has to undo its work before vmd exits without it.
pub const GRACE: Duration = Duration::from_secs(10);

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// The first signal received, 0 for none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The first SIGINT or SIGTERM received since [`cancel_on_signal`], if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}

/// The exit status for a run ended by `signal`: 128 + its number.
pub fn exit_status(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

async fn recv(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

async fn next(int: &mut Option<Signal>, term: &mut Option<Signal>) -> i32 {
    tokio::select! {
        _ = recv(int) => SIGINT,
        _ = recv(term) => SIGTERM,
    }
}

/// Installs the handlers; returns the flag the first signal sets. See the module docs.
pub fn cancel_on_signal() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&flag);
    // Installed before the operation starts, so that no signal finds the default action
    // half-way through (which would skip the rollback).
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::spawn(async move {
        let first = next(&mut int, &mut term).await;
        let _ = RECEIVED.compare_exchange(0, first, Ordering::SeqCst, Ordering::SeqCst);
        f.store(true, Ordering::SeqCst);
        let why = tokio::select! {
            _ = tokio::time::sleep(GRACE) => format!(
                "interrupted, and the operation did not stop within {}s",
                GRACE.as_secs()
            ),
            _ = next(&mut int, &mut term) => "interrupted twice".to_string(),
        };
        eprintln!("vmd: {why}; exiting now: run `vmd doctor --fix` to remove what it left");
        std::process::exit(i32::from(exit_status(first)));
    });
    flag
}
