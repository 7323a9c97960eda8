//! vmd against the second libvirt host (`scripts/second-host`, `qemu+tcp://`), whose
//! `/var/lib/libvirt` is not this namespace's: import writes every disk through libvirt's
//! upload stream (the pool's files are not vmd's files here), every volume lands in the
//! second host's filesystem and none in this one's, and a linked clone deployed there boots.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::remote::RemotePool;
use common::{run, tiny_ova, Scratch};
use vmd::host::libvirt::LibvirtHost;
use vmd::host::Host;

/// A state directory of its own and a pool on the second host.
struct Remote {
    pool: RemotePool,
    scratch: Scratch,
    /// Under /tmp, which both hosts of this machine see: the domain's console log is
    /// written by the second host's virtlogd at the path vmd names (see `boots`).
    state: PathBuf,
}

impl Remote {
    fn new(tag: &str) -> Self {
        let pool = RemotePool::new(tag);
        let scratch = Scratch::new(tag);
        let state = std::env::temp_dir().join(format!("vmd-remote-{}", pool.name));
        Self {
            pool,
            scratch,
            state,
        }
    }

    fn vmd(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmd"));
        cmd.env("VMD_STATE_DIR", &self.state)
            .env("VMD_CONNECT", &self.pool.uri)
            .env("VMD_POOL", &self.pool.name)
            .env("VMD_VIRT_TYPE", "qemu")
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.vmd(args, &[]);
        assert!(
            out.status.success(),
            "vmd {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn host(&self) -> LibvirtHost {
        LibvirtHost::connect(&self.pool.uri).unwrap()
    }

    fn volumes(&self) -> Vec<String> {
        let host = self.host();
        let pool = self.pool.name.parse().unwrap();
        host.list_volumes(&pool)
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect()
    }

    fn staging_left(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.state.join("staging"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // A test that failed half-way may leave its guest defined on the second host.
        let _ = Command::new(env!("CARGO_BIN_EXE_vmd"))
            .env("VMD_STATE_DIR", &self.state)
            .env("VMD_CONNECT", &self.pool.uri)
            .args(["undeploy", "--force", "rem-c1"])
            .output();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// The serial console lines `VMD-GUEST disk=<serial> boots=<n>` of a guest that ran to the
/// end, from the console log vmd named.
fn boots(console: &Path, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(console).unwrap_or_default();
        if text.contains("VMD-GUEST done") {
            return text;
        }
        assert!(start.elapsed() < timeout, "guest did not finish:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn import_into_second_host_uploads_every_disk_there_and_none_here() {
    let r = Remote::new("rem-import");

    let master = r.json(&["import", tiny_ova().to_str().unwrap(), "--name", "rem-m"]);

    let disks = master["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2);
    let mut names = r.volumes();
    names.sort();
    for d in disks {
        let path = d["path"].as_str().unwrap();
        assert!(path.starts_with(&r.pool.path), "{path}");
        assert!(!Path::new(path).exists(), "{path} exists in this namespace");
        assert!(names.contains(&d["volume"].as_str().unwrap().to_string()));
    }
    assert!(r.staging_left().is_empty(), "{:?}", r.staging_left());
    // The OS disk holds what a local import of the same package writes.
    let local = common::env::TestEnv::new("rem-import-local");
    let here = local.json(&["import", tiny_ova().to_str().unwrap(), "--name", "rem-l"]);
    let copy = r.scratch.path().join("os.qcow2");
    let mut file = std::fs::File::create(&copy).unwrap();
    r.host()
        .download_volume(
            &r.pool.name.parse().unwrap(),
            &disks[0]["volume"].as_str().unwrap().parse().unwrap(),
            0,
            0,
            &mut file,
        )
        .unwrap();
    run(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "qcow2", "-F", "qcow2"])
        .arg(&copy)
        .arg(here["disks"][0]["path"].as_str().unwrap()));
}

#[test]
fn import_into_second_host_failing_midway_leaves_nothing_on_either_host() {
    let r = Remote::new("rem-fail");

    let out = r.vmd(
        &["import", tiny_ova().to_str().unwrap(), "--name", "rem-f"],
        &[("VMD_FAIL", "import.disk-written:error")],
    );

    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(r.volumes().is_empty(), "{:?}", r.volumes());
    assert!(r.staging_left().is_empty(), "{:?}", r.staging_left());
    assert_eq!(r.json(&["list"]).as_array().map(Vec::len), Some(0));
}

#[test]
fn linked_clone_on_second_host_deploys_and_boots_there() {
    let r = Remote::new("rem-boot");
    r.ok(&["import", tiny_ova().to_str().unwrap(), "--name", "rem-m"]);
    r.ok(&["clone", "rem-m", "rem-c1"]);

    r.ok(&["deploy", "rem-c1", "--start"]);

    let shown = r.json(&["show", "rem-c1"]);
    let console = shown["deployment"]["console_log"].as_str().unwrap();
    let text = boots(Path::new(console), Duration::from_secs(120));
    let data_serial = shown["disks"][1]["serial"].as_str().unwrap();
    assert!(
        text.contains(&format!("VMD-GUEST disk={data_serial} boots=1")),
        "{text}"
    );
    let domains = run(Command::new("virsh").args(["-c", &r.pool.uri, "list", "--all", "--name"]));
    assert!(domains.contains("vmd-rem-c1"), "{domains}");
    r.ok(&["undeploy", "rem-c1", "--force"]);
    r.ok(&["delete", "rem-c1"]);
    r.ok(&["delete", "rem-m"]);
    assert!(r.volumes().is_empty(), "{:?}", r.volumes());
}

#[test]
fn host_check_on_second_host_reports_its_pool_reached_by_streams() {
    let r = Remote::new("rem-check");

    let info = r.json(&["host", "check"]);

    let pool = info["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == r.pool.name.as_str())
        .cloned()
        .unwrap();
    assert_eq!(pool["access"], "streams", "{pool}");
    assert_eq!(pool["type"], "dir", "{pool}");
    assert!(r.volumes().is_empty(), "the probe volume is gone");
}

impl Remote {
    /// Downloads volume `name` of the second host's pool into `file` here.
    fn download(&self, name: &str, file: &Path) {
        let mut out = std::fs::File::create(file).unwrap();
        self.host()
            .download_volume(
                &self.pool.name.parse().unwrap(),
                &name.parse().unwrap(),
                0,
                0,
                &mut out,
            )
            .unwrap();
    }
}

#[test]
fn full_clone_and_capture_on_second_host_are_copied_there_with_the_same_content() {
    let r = Remote::new("rem-copy");
    let m = r.json(&["import", tiny_ova().to_str().unwrap(), "--name", "rem-m"]);
    r.ok(&["clone", "rem-m", "rem-c3"]);
    r.ok(&["deploy", "rem-c3"]);

    let full = r.json(&["clone", "rem-m", "rem-full", "--full"]);
    r.ok(&["undeploy", "rem-c3", "--force", "--as-master", "rem-m2"]);
    let m2 = r.json(&["show", "rem-m2"]);

    for (copy, what) in [(&full, "full clone"), (&m2, "captured master")] {
        let (a, b) = (r.scratch.path().join("a"), r.scratch.path().join("b"));
        r.download(m["disks"][0]["volume"].as_str().unwrap(), &a);
        r.download(copy["disks"][0]["volume"].as_str().unwrap(), &b);
        let path = copy["disks"][0]["path"].as_str().unwrap();
        assert!(path.starts_with(&r.pool.path), "{what}: {path}");
        assert!(copy["disks"][0]["backing"].is_null(), "{what}: {copy}");
        run(Command::new("qemu-img")
            .args(["compare", "-q", "-f", "qcow2", "-F", "qcow2"])
            .arg(&a)
            .arg(&b));
    }
}

impl Remote {
    /// Waits until `name` has powered itself off and returns the boot count its data disk
    /// reported on that boot's console.
    fn wait_boots(&self, name: &str) -> u64 {
        let start = Instant::now();
        while self.json(&["show", name])["state"] == "running" {
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "{name} still runs"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        let shown = self.json(&["show", name]);
        let log = shown["deployment"]["console_log"].as_str().unwrap();
        let console = std::fs::read_to_string(log).unwrap_or_default();
        let prefix = format!(
            "VMD-GUEST disk={} boots=",
            shown["disks"][1]["serial"].as_str().unwrap()
        );
        console
            .lines()
            .find_map(|l| l.trim().strip_prefix(&prefix)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no boots line; console:\n{console}"))
    }

    fn start_and_count(&self, name: &str) -> u64 {
        self.ok(&["start", name]);
        self.wait_boots(name)
    }
}

#[test]
fn snapshot_revert_undeploy_redeploy_on_second_host_keep_the_guest_count() {
    let r = Remote::new("rem-snap");
    r.ok(&["import", tiny_ova().to_str().unwrap(), "--name", "rem-m"]);
    r.ok(&["clone", "rem-m", "rem-c4"]);
    r.ok(&["deploy", "rem-c4"]);
    assert_eq!(r.start_and_count("rem-c4"), 1);

    r.ok(&["snapshot", "rem-c4", "s1"]);
    assert_eq!(r.start_and_count("rem-c4"), 2);
    r.ok(&["revert", "rem-c4", "s1"]);
    assert_eq!(r.start_and_count("rem-c4"), 2, "back to s1, then one boot");
    r.ok(&["undeploy", "rem-c4"]);
    r.ok(&["redeploy", "rem-c4", "--start"]);
    assert_eq!(r.wait_boots("rem-c4"), 3);
    r.ok(&["snapshots", "rem-c4", "--delete", "s1"]);

    assert!(r
        .json(&["snapshots", "rem-c4"])
        .as_array()
        .unwrap()
        .is_empty());
    r.ok(&["undeploy", "rem-c4"]);
    let out = r.vmd(&["snapshot", "rem-c4", "s2"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "a snapshot of a stopped instance is not available for pool {} (dir)",
            r.pool.name
        )),
        "an instance without a domain on a remote pool: {err}"
    );
}

#[test]
fn import_into_second_host_killed_midway_is_cleaned_by_doctor_fix() {
    let r = Remote::new("rem-kill");

    let out = r.vmd(
        &["import", tiny_ova().to_str().unwrap(), "--name", "rem-k"],
        &[("VMD_FAIL", "import.volume-created:exit")],
    );
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r.volumes().len(), 1, "the volume made before the kill");
    assert_eq!(r.staging_left().len(), 1, "the staged disk");

    // doctor exits non-zero while problems remain; its report is on stdout either way.
    let report = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&r.vmd(args, &[]).stdout).unwrap()
    };
    let found = report(&["doctor", "--json"]);
    let fixed = report(&["doctor", "--fix", "--json"]);
    let again = report(&["doctor", "--json"]);

    let kinds: Vec<_> = found["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"orphan-volume".to_string()), "{found}");
    assert!(
        kinds.contains(&"orphan-staging-file".to_string()),
        "{found}"
    );
    assert!(
        fixed["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["fixed"] == true),
        "{fixed}"
    );
    assert_eq!(
        again["problems"].as_array().map(Vec::len),
        Some(0),
        "{again}"
    );
    assert!(r.volumes().is_empty(), "{:?}", r.volumes());
    assert!(r.staging_left().is_empty(), "{:?}", r.staging_left());
}
