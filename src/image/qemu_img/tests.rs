//! Runner tests: argv builders, version parsing, and stand-in binaries (shell scripts) for
//! hangs, CPU limits, stderr and output caps. Real `qemu-img` runs are in `real_tests`.

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use super::*;
use crate::image::test_support::TempDir;

fn stub(dir: &TempDir, script: &str, limits: Limits) -> Option<QemuImg> {
    let prlimit = match find_program("prlimit", PRLIMIT_ENV) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("note: skipping stub test: {err}");
            return None;
        }
    };
    let path = dir.path().join("fake-qemu-img");
    fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    Some(QemuImg::new(path, prlimit, limits))
}

fn fast(wall_secs: u64) -> Limits {
    Limits {
        wall: Duration::from_secs(wall_secs),
        ..Limits::INFO
    }
}

const GOOD_RAW_JSON: &str = r#"{"virtual-size": 512, "filename": "x", "format": "raw"}"#;

// ---- argv builders ----

fn strs(args: &[OsString]) -> Vec<&str> {
    args.iter().map(|a| a.to_str().unwrap()).collect()
}

#[test]
fn builders_every_image_command_passes_format_and_backing_format() {
    let all: Vec<Vec<OsString>> = vec![
        info_args("/i".into(), ImageFormat::Vmdk),
        convert_args(
            "/i".into(),
            ImageFormat::Vmdk,
            "/o".into(),
            ImageFormat::Qcow2,
            false,
        ),
        convert_args(
            "/i".into(),
            ImageFormat::Raw,
            "/o".into(),
            ImageFormat::Raw,
            true,
        ),
        overlay_args("/o".into(), "/m".into(), ImageFormat::Raw),
        create_args("/o".into(), ImageFormat::Qcow2, 1 << 30),
        snapshot::snapshot_list_args("/i".into()),
    ];
    for args in &all {
        let a = strs(args);
        let f = a.iter().position(|x| *x == "-f").expect("-f missing");
        assert!(["raw", "qcow2", "vmdk"].contains(&a[f + 1]), "{a:?}");
        if let Some(b) = a.iter().position(|x| *x == "-b") {
            assert!(a[b + 1].starts_with('/'), "relative backing: {a:?}");
            let ff = a.iter().position(|x| *x == "-F").expect("-b without -F");
            assert!(["raw", "qcow2", "vmdk"].contains(&a[ff + 1]), "{a:?}");
        }
    }
}

#[test]
fn builders_snapshot_commands_fix_the_format_in_a_json_spec() {
    // `qemu-img snapshot` refuses -f; the spec's driver is what rules out probing.
    use snapshot::{qcow2_spec, snapshot_args, SnapshotAction};
    let image = qcow2_spec(Path::new("/i.qcow2")).unwrap();
    for (action, flag) in [
        (SnapshotAction::Create, "-c"),
        (SnapshotAction::Apply, "-a"),
        (SnapshotAction::Delete, "-d"),
    ] {
        let args = snapshot_args(action, "s1", image.clone());
        let a = strs(&args);
        assert_eq!(a[..4], ["snapshot", "-q", flag, "s1"], "{a:?}");
        let spec: serde_json::Value =
            serde_json::from_str(a[4].strip_prefix("json:").expect("not a json: spec")).unwrap();
        assert_eq!(spec["driver"], "qcow2", "{a:?}");
        assert_eq!(spec["file"]["filename"], "/i.qcow2", "{a:?}");
        assert!(!a.contains(&"-f"), "qemu-img snapshot rejects -f: {a:?}");
    }
}

#[test]
fn builders_convert_uses_writeback_and_n_only_for_existing_target() {
    let a = convert_args(
        "/i".into(),
        ImageFormat::Vmdk,
        "/o".into(),
        ImageFormat::Raw,
        false,
    );
    assert_eq!(
        strs(&a),
        [
            "convert",
            "-q",
            "-f",
            "vmdk",
            "-O",
            "raw",
            "-t",
            "writeback",
            "/i",
            "/o"
        ]
    );
    let a = convert_args(
        "/i".into(),
        ImageFormat::Vmdk,
        "/o".into(),
        ImageFormat::Raw,
        true,
    );
    assert!(strs(&a).contains(&"-n"));
}

#[test]
fn source_arg_relative_path_becomes_absolute() {
    let arg = source_arg(&ImageSource::File(Path::new("-disk.img"))).unwrap();
    assert!(Path::new(&arg).is_absolute() && arg.to_str().unwrap().ends_with("/-disk.img"));
}

#[test]
fn source_arg_slice_is_a_json_spec_with_escaped_name() {
    let arg = source_arg(&ImageSource::Slice {
        file: Path::new("/pool/a \"b\".ova"),
        offset: 1536,
        size: 1024,
    })
    .unwrap();
    assert_eq!(
        arg.to_str().unwrap(),
        r#"json:{"file":{"driver":"raw","file":{"driver":"file","filename":"/pool/a \"b\".ova"},"offset":1536,"size":1024}}"#
    );
}

#[test]
fn source_arg_slice_size_not_sector_multiple_is_rejected() {
    let src = ImageSource::Slice {
        file: Path::new("/a.ova"),
        offset: 0,
        size: 1000,
    };
    assert!(matches!(source_arg(&src), Err(ImageError::BadPath { .. })));
}

// SECURITY.md item 42: a capped run carries the file-size limit and no core dumps.
#[test]
fn invocation_argv_with_max_file_sets_fsize_and_no_core() {
    let q = QemuImg::new(
        "/usr/bin/qemu-img".into(),
        "/usr/bin/prlimit".into(),
        Limits::INFO,
    );
    let mut inv = q.invocation("convert", vec!["convert".into()], Limits::INFO);
    inv.max_file = Some(4096);
    assert_eq!(
        strs(&inv.argv()),
        [
            "/usr/bin/prlimit",
            "--as=1073741824",
            "--cpu=30",
            "--fsize=4096",
            "--core=0",
            "--",
            "/usr/bin/qemu-img",
            "convert"
        ]
    );
}

#[test]
fn invocation_argv_runs_qemu_img_under_prlimit() {
    let q = QemuImg::new(
        "/usr/bin/qemu-img".into(),
        "/usr/bin/prlimit".into(),
        Limits::INFO,
    );
    let inv = q.invocation("info", vec!["info".into()], Limits::INFO);
    assert_eq!(
        strs(&inv.argv()),
        [
            "/usr/bin/prlimit",
            "--as=1073741824",
            "--cpu=30",
            "--",
            "/usr/bin/qemu-img",
            "info"
        ]
    );
}

// ---- version ----

#[test]
fn version_parse_reads_debian_banner() {
    let v = QemuVersion::parse(
        "qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022\n",
    )
    .unwrap();
    assert_eq!(v.to_string(), "7.2.22");
    assert!(v.upstream_fixes_cve_2024_4467());
}

#[test]
fn version_parse_garbage_is_an_error() {
    for text in [
        "",
        "qemu-img version x.y",
        "QEMU emulator version 9.0.0",
        "qemu-img version 1.2.3.4",
    ] {
        assert!(
            matches!(QemuVersion::parse(text), Err(ImageError::Version(_))),
            "{text}"
        );
    }
}

#[test]
fn version_cve_2024_4467_gate_follows_upstream_releases() {
    let v = |major, minor, micro| QemuVersion {
        major,
        minor,
        micro,
    };
    assert!(!v(7, 2, 12).upstream_fixes_cve_2024_4467());
    assert!(v(7, 2, 13).upstream_fixes_cve_2024_4467());
    assert!(!v(8, 2, 0).upstream_fixes_cve_2024_4467());
    assert!(!v(9, 0, 0).upstream_fixes_cve_2024_4467());
    assert!(v(9, 1, 0).upstream_fixes_cve_2024_4467());
    assert!(v(10, 0, 0).upstream_fixes_cve_2024_4467());
}

// ---- stand-in binaries ----

// SECURITY.md item 43: a set cancel flag (SIGTERM in the CLI) kills the child at once.
#[test]
fn run_cancelled_binary_is_killed_at_once() {
    let dir = TempDir::new("cancel");
    let Some(q) = stub(&dir, "trap '' TERM INT\nexec sleep 30", fast(60)) else {
        return;
    };
    let flag = Arc::new(AtomicBool::new(false));
    let q = q.cancelled_by(Arc::clone(&flag));
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let started = Instant::now();
    let err = q.info(Path::new("/x"), ImageFormat::Raw).unwrap_err();
    setter.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, ImageError::Interrupted { op: "info" }),
        "{err:?}"
    );
}

#[test]
fn run_hanging_binary_is_killed_at_the_wall_timeout() {
    let dir = TempDir::new("hang");
    let Some(q) = stub(&dir, "trap '' TERM\nexec sleep 30", fast(1)) else {
        return;
    };
    let started = Instant::now();
    let err = q.info(Path::new("/x"), ImageFormat::Raw).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            ImageError::TimedOut {
                op: "info",
                secs: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "qemu-img info timed out after 1s and was killed"
    );
}

#[test]
fn run_cpu_hog_is_stopped_by_its_resource_limits() {
    let dir = TempDir::new("cpu");
    let limits = Limits {
        cpu_secs: 1,
        wall: Duration::from_secs(20),
        ..Limits::INFO
    };
    let Some(q) = stub(&dir, "while :; do :; done", limits) else {
        return;
    };
    let err = q.info(Path::new("/x"), ImageFormat::Raw).unwrap_err();
    assert!(
        matches!(err, ImageError::ResourceLimit { op: "info", .. }),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("qemu-img info was stopped by its resource limits"));
}

#[test]
fn run_stderr_with_exit_0_fails_info() {
    let dir = TempDir::new("stderr");
    let script = format!("echo 'qemu-img: warning: odd image' >&2\necho '{GOOD_RAW_JSON}'");
    let Some(q) = stub(&dir, &script, fast(10)) else {
        return;
    };
    let err = q.info(Path::new("/x"), ImageFormat::Raw).unwrap_err();
    assert_eq!(
        err.to_string(),
        "qemu-img info wrote to stderr: qemu-img: warning: odd image"
    );
}

#[test]
fn run_nonzero_exit_reports_code_and_message() {
    let dir = TempDir::new("exit");
    let Some(q) = stub(
        &dir,
        "echo 'qemu-img: Could not open' >&2\nexit 1",
        fast(10),
    ) else {
        return;
    };
    let err = q.info(Path::new("/x"), ImageFormat::Raw).unwrap_err();
    assert_eq!(
        err.to_string(),
        "qemu-img info failed with exit code 1: qemu-img: Could not open"
    );
}

#[test]
fn run_flood_on_stdout_is_capped() {
    let dir = TempDir::new("flood");
    let Some(q) = stub(&dir, "exec head -c 20000000 /dev/zero", fast(20)) else {
        return;
    };
    let err = q.info(Path::new("/x"), ImageFormat::Raw).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::OutputTooLarge {
                stream: "stdout",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn run_child_gets_c_locale_and_no_inherited_environment() {
    let dir = TempDir::new("env");
    let script = "[ \"$LC_ALL\" = C ] && [ \"$LANG\" = C ] && [ -z \"$HOME\" ] && \
                  [ \"$1\" = --version ] && echo 'qemu-img version 1.2.3'";
    let Some(q) = stub(&dir, script, fast(10)) else {
        return;
    };
    assert_eq!(q.version().unwrap().to_string(), "1.2.3");
}

#[test]
fn run_info_passes_exact_argv() {
    let dir = TempDir::new("argv");
    let log = dir.path().join("argv");
    let script = format!(
        "printf '%s\\n' \"$@\" > '{}'\necho '{GOOD_RAW_JSON}'",
        log.display()
    );
    let Some(q) = stub(&dir, &script, fast(10)) else {
        return;
    };
    q.info(Path::new("/pool/disk.img"), ImageFormat::Raw)
        .unwrap();
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "info\n-f\nraw\n--output=json\n--force-share\n/pool/disk.img\n"
    );
}

#[test]
fn run_missing_binary_is_a_clear_failure() {
    let dir = TempDir::new("missing");
    let Some(mut q) = stub(&dir, "", fast(10)) else {
        return;
    };
    q.binary = dir.path().join("no-such-qemu-img");
    let err = q.version().unwrap_err();
    assert!(matches!(err, ImageError::Failed { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-qemu-img"), "{err}");
}
