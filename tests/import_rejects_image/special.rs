//! Item 43 (SECURITY.md): package paths that are not regular files (a FIFO, a character
//! device) are refused before they are opened for reading, and SIGINT/SIGTERM end an import
//! that is blocked, undoing what it created. Every run has a deadline, so that a regression
//! fails instead of hanging the suite.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::{pattern, processes_with, Disk, Trial, MIB, QCOW2, RAW};

/// Far above what a refusal takes, far below "forever".
const DEADLINE: Duration = Duration::from_secs(30);

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// Waits for `child` until `deadline`; kills it and fails the test past that.
fn wait_until(mut child: std::process::Child, deadline: Duration) -> (Output, Duration) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "vmd still running after {deadline:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    (child.wait_with_output().unwrap(), took)
}

/// `vmd <cmd> <package>` with the trial's stand-in `qemu-img`, under [`DEADLINE`].
fn run(t: &Trial, cmd: &str, package: &Path) -> Output {
    let child = t
        .env
        .command()
        .env("VMD_QEMU_IMG", &t.stub.path)
        .arg(cmd)
        .arg(package)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(child, DEADLINE).0
}

// SECURITY.md item 43: a FIFO as the package path is refused at once, never opened.
#[test]
fn import_fifo_package_path_is_refused_promptly() {
    let t = Trial::new("fifo-pkg");
    let fifo = t.env.dir().join("pkg.ova");
    mkfifo(&fifo);
    let out = run(&t, "import", &fifo);
    t.assert_failed_clean(
        &out,
        3,
        &[
            "cannot open package",
            "pkg.ova",
            "a FIFO is not a regular file",
        ],
    );
}

// SECURITY.md item 43: `verify` refuses it the same way.
#[test]
fn verify_fifo_package_path_is_refused_promptly() {
    let t = Trial::new("fifo-verify");
    let fifo = t.env.dir().join("pkg.ova");
    mkfifo(&fifo);
    let out = run(&t, "verify", &fifo);
    t.assert_failed_clean(&out, 3, &["pkg.ova", "a FIFO is not a regular file"]);
}

// SECURITY.md item 43: a character device as the package path is refused, not read.
#[test]
fn verify_character_device_package_path_is_refused() {
    let t = Trial::new("chardev");
    let out = run(&t, "verify", Path::new("/dev/zero"));
    t.assert_failed_clean(
        &out,
        3,
        &["/dev/zero", "a character device is not a regular file"],
    );
}

// SECURITY.md item 43: a FIFO named by the descriptor inside a package directory is not a
// file of the package: refused while planning, never opened.
#[test]
fn import_fifo_disk_in_package_directory_is_refused_promptly() {
    let t = Trial::new("fifo-disk");
    mkfifo(&t.file("disk.img"));
    t.package(&[Disk::file("disk.img", RAW, MIB)]);
    let out = run(&t, "import", &t.pkg);
    t.assert_failed_clean(&out, 3, &["disk.img", "is not a regular file"]);
}

// SECURITY.md item 43: a FIFO as the `.ovf` path of a package is refused too.
#[test]
fn import_fifo_descriptor_path_is_refused_promptly() {
    let t = Trial::new("fifo-ovf");
    let fifo = t.file("pkg.ovf");
    mkfifo(&fifo);
    let out = run(&t, "import", &fifo);
    t.assert_failed_clean(&out, 3, &["pkg.ovf", "is not a regular file"]);
}

/// Starts an import of a 4 MiB qcow2 whose `qemu-img convert` hangs (ignoring SIGTERM and
/// SIGINT), sends `signal` once the conversion has started, and returns the result and how
/// long vmd took after the signal.
fn interrupt_hung_convert(t: &mut Trial, signal: &str) -> (Output, Duration, String) {
    let mark = format!("vmd-convert-hang-{}", uuid::Uuid::new_v4().simple());
    t.stub_body(&format!(
        "if [ \"$1\" = convert ]; then trap '' TERM INT; exec -a {mark} sleep 3600; fi\n\
         exec /usr/bin/qemu-img \"$@\""
    ));
    let raw = t.env.dir().join("seed.raw");
    std::fs::write(&raw, pattern(4 * MIB as usize, 5)).unwrap();
    let raw = raw.to_str().unwrap().to_string();
    crate::fixtures::qemu_img(
        &t.pkg,
        &[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "qcow2",
            &raw,
            "disk.qcow2",
        ],
    );
    t.package(&[Disk::file("disk.qcow2", QCOW2, 4 * MIB)]);
    let child = t
        .env
        .command()
        .env("VMD_QEMU_IMG", &t.stub.path)
        .arg("import")
        .arg(&t.pkg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !t.stub.calls().iter().any(|c| c.starts_with("convert ")) {
        assert!(started.elapsed() < DEADLINE, "convert never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The stand-in has logged the call; give it a moment to exec the sleeper.
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    let ok = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(ok.success());
    let (out, took) = wait_until(child, DEADLINE);
    (out, took, mark)
}

// SECURITY.md item 43: SIGTERM ends an import blocked in a conversion: the child is killed,
// the volume and staged copy removed, and vmd exits with 143.
#[test]
fn import_sigterm_during_hung_convert_ends_promptly_and_leaves_nothing() {
    let mut t = Trial::new("sigterm");
    let (out, took, mark) = interrupt_hung_convert(&mut t, "-TERM");
    t.assert_failed_clean(&out, 143, &["interrupted"]);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(processes_with(&mark), Vec::<String>::new(), "left running");
}

// SECURITY.md item 43: SIGINT (Ctrl-C) does the same, with status 130.
#[test]
fn import_sigint_during_hung_convert_ends_promptly_and_leaves_nothing() {
    let mut t = Trial::new("sigint");
    let (out, took, mark) = interrupt_hung_convert(&mut t, "-INT");
    t.assert_failed_clean(&out, 130, &["interrupted"]);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(processes_with(&mark), Vec::<String>::new(), "left running");
}
