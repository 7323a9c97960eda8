//! vmd against the second libvirt host (`scripts/second-host`, `qemu+tcp://`), whose
//! `/var/lib/libvirt` is not this namespace's: import writes every disk through libvirt's
//! upload stream (the pool's files are not vmd's files here), every volume lands in the
//! second host's filesystem and none in this one's, and the whole life cycle runs there,
//! its guests' boots read from their serial consoles through libvirt (`vmd start
//! --console`), never from a file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::remote::RemotePool;
use common::{run, tiny_ova, Scratch};
use vmd::host::libvirt::LibvirtHost;
use vmd::host::Host;

/// How long one boot of the test appliance may take under TCG.
const GUEST_TIMEOUT: Duration = Duration::from_secs(240);

/// A state directory of its own and a pool on the second host.
struct Remote {
    pool: RemotePool,
    scratch: Scratch,
    /// Under this namespace's /var/lib/libvirt/images, which the second host does not see
    /// (it has its own), as a state directory on another machine would be.
    state: PathBuf,
    /// Makes VMD (and so domain) names unique on the second host, which other test runs
    /// share.
    tag: String,
}

impl Remote {
    fn new(tag: &str) -> Self {
        let pool = RemotePool::new(tag);
        let scratch = Scratch::new(tag);
        let state = scratch.path().join("state");
        let tag = format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        Self {
            pool,
            scratch,
            state,
            tag,
        }
    }

    /// A VMD name unique to this run.
    fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.tag)
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
        // A test that failed half-way may leave guests defined and volumes on the second
        // host: delete what the catalog holds, clones before their masters.
        for _ in 0..2 {
            let list = self.vmd(&["list", "--json"], &[]);
            let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap_or_default();
            for v in list.as_array().into_iter().flatten() {
                if let Some(name) = v["name"].as_str() {
                    let _ = self.vmd(&["delete", "--force", name], &[]);
                }
            }
        }
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

    /// Whether two volumes of the pool hold the same guest-visible content.
    fn same_content(&self, a: &str, b: &str) -> bool {
        let (fa, fb) = (self.scratch.path().join("a"), self.scratch.path().join("b"));
        self.download(a, &fa);
        self.download(b, &fb);
        Command::new("qemu-img")
            .args(["compare", "-q", "-f", "qcow2", "-F", "qcow2"])
            .arg(&fa)
            .arg(&fb)
            .status()
            .unwrap()
            .success()
    }

    /// Runs `vmd <args>` whose stdout is a guest's serial console (`start --console`,
    /// `deploy --start --console`) until the guest powers off, and returns the boot count
    /// its data disk reported there.
    fn console_boots(&self, args: &[&str], name: &str) -> u64 {
        let serial = self.json(&["show", name])["disks"][1]["serial"]
            .as_str()
            .unwrap()
            .to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vmd"))
            .env("VMD_STATE_DIR", &self.state)
            .env("VMD_CONNECT", &self.pool.uri)
            .env("VMD_VIRT_TYPE", "qemu")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            stdout.read_to_end(&mut bytes).map(|_| bytes)
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > GUEST_TIMEOUT {
                let _ = child.kill();
                panic!("vmd {args:?} still follows the console after {GUEST_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let console = String::from_utf8_lossy(&reader.join().unwrap().unwrap()).into_owned();
        let mut err = String::new();
        child.stderr.unwrap().read_to_string(&mut err).unwrap();
        assert!(status.success(), "vmd {args:?}: {status}: {err}\n{console}");
        assert!(
            console.lines().any(|l| l.trim() == "VMD-GUEST done"),
            "{name} did not finish; console:\n{console}"
        );
        let prefix = format!("VMD-GUEST disk={serial} boots=");
        console
            .lines()
            .find_map(|l| l.trim().strip_prefix(&prefix)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no boots line for {serial}; console:\n{console}"))
    }

    /// Every volume of the VMDs in the catalog, as `show --json` gives their disks.
    fn catalog_disks(&self) -> Vec<serde_json::Value> {
        let list = self.json(&["list"]);
        list.as_array()
            .unwrap()
            .iter()
            .flat_map(|v| {
                let shown = self.json(&["show", v["name"].as_str().unwrap()]);
                shown["disks"].as_array().unwrap().clone()
            })
            .collect()
    }
}

/// The names of the volumes in every pool of this namespace's host (`qemu:///system`).
fn first_host_volumes() -> Vec<String> {
    let c = common::remote::connect("qemu:///system");
    let mut names = Vec::new();
    for p in c.list_all_storage_pools(0).unwrap() {
        if p.is_active().unwrap_or(false) {
            let _ = p.refresh(0);
            names.extend(p.list_volumes().unwrap_or_default());
        }
    }
    names
}

/// Every disk vmd recorded is a volume of the second host's pool, its file in the second
/// host's filesystem (under `scripts/second-host`'s directory), and nothing of it is on
/// the first host: no file at the path the second host reports, no volume in any pool.
fn assert_on_second_host_only(r: &Remote, disks: &[serde_json::Value]) {
    let there = r.volumes();
    let here = first_host_volumes();
    for d in disks {
        let volume = d["volume"].as_str().unwrap();
        let path = d["path"].as_str().unwrap();
        assert_eq!(d["pool"], r.pool.name.as_str(), "{d}");
        assert!(
            there.iter().any(|v| v == volume),
            "{volume} not in {there:?}"
        );
        assert!(path.starts_with(&r.pool.path), "{path}");
        assert!(
            r.pool.real_path(path).is_file(),
            "{path} not on the second host"
        );
        assert!(!Path::new(path).exists(), "{path} exists in this namespace");
        assert!(
            !here.iter().any(|v| v == volume),
            "{volume} on the first host"
        );
    }
}

#[test]
fn lifecycle_on_second_host_clones_deploys_snapshots_redeploys_captures_and_deletes() {
    let r = Remote::new("rem-life");
    let (m, c, f, m2, c2) = (
        r.name("m"),
        r.name("c"),
        r.name("f"),
        r.name("m2"),
        r.name("c2"),
    );

    // 1. import; a linked and a full clone; every volume on the second host only.
    let master = r.json(&["import", tiny_ova().to_str().unwrap(), "--name", &m]);
    let linked = r.json(&["clone", &m, &c]);
    let full = r.json(&["clone", &m, &f, "--full"]);
    assert!(linked["disks"][0]["backing"].is_string(), "{linked}");
    assert!(full["disks"][0]["backing"].is_null(), "{full}");
    let os = |v: &serde_json::Value| v["disks"][0]["volume"].as_str().unwrap().to_string();
    assert!(r.same_content(&os(&master), &os(&full)), "full copy");

    // 2. deploy and boot on the console; the guest counts its boots on its data disk.
    assert_eq!(
        r.console_boots(&["deploy", &c, "--start", "--console"], &c),
        1
    );
    let shown = r.json(&["show", &c]);
    assert!(
        shown["deployment"].get("console_log").is_none(),
        "no log file on a remote host: {shown}"
    );
    let domains = run(Command::new("virsh").args(["-c", &r.pool.uri, "list", "--all", "--name"]));
    assert!(domains.contains(&format!("vmd-{c}")), "{domains}");
    let out = r.vmd(&["console", &c], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert_eq!(
        err.trim(),
        format!("vmd: {c} is not running: start it with `vmd start {c} --console`")
    );

    // 3. a snapshot brings the count back. The guest is off, so libvirt takes it on the
    // host; vmd killed before recording it leaves it to libvirt, and the retry replaces it
    // rather than adding a second `s1` to the qcow2 files.
    let out = r.vmd(
        &["snapshot", &c, "s1"],
        &[("VMD_FAIL", "snapshot.taken:exit")],
    );
    assert_eq!(out.status.code(), Some(137), "{:?}", out);
    r.ok(&["snapshot", &c, "s1"]);
    for d in r.json(&["show", &c])["disks"].as_array().unwrap() {
        let file = r.pool.real_path(d["path"].as_str().unwrap());
        // `info` opens no backing file (it names one of the second host's paths).
        let info = run(Command::new("qemu-img")
            .args(["info", "-U", "--output=json"])
            .arg(&file));
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        let named = info["snapshots"]
            .as_array()
            .map_or(0, |l| l.iter().filter(|s| s["name"] == "s1").count());
        assert_eq!(named, 1, "{}: {info}", file.display());
    }
    let meta = run(Command::new("virsh").args([
        "-c",
        &r.pool.uri,
        "snapshot-list",
        &format!("vmd-{c}"),
        "--name",
    ]));
    assert!(meta.trim().is_empty(), "libvirt keeps no metadata: {meta}");
    assert_eq!(r.console_boots(&["start", &c, "--console"], &c), 2);
    r.ok(&["revert", &c, "s1"]);
    assert_eq!(
        r.console_boots(&["start", &c, "--console"], &c),
        2,
        "back to s1, then one boot"
    );

    // 4. undeploy keeps the disks; a stopped instance without a domain cannot be
    // snapshotted on a pool reached only through libvirt; redeploy carries on.
    r.ok(&["undeploy", &c]);
    let out = r.vmd(&["snapshot", &c, "s2"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "a snapshot of a stopped instance is not available for pool {} (dir)",
            r.pool.name
        )),
        "{err}"
    );
    r.ok(&["redeploy", &c]);
    assert_eq!(r.console_boots(&["start", &c, "--console"], &c), 3);
    r.ok(&["snapshots", &c, "--delete", "s1"]);
    assert!(r.json(&["snapshots", &c]).as_array().unwrap().is_empty());

    // 5. capture as a master, copied on the host; its clone carries the count on; the full
    // clone is isolated from it.
    r.ok(&["undeploy", &c, "--as-master", &m2]);
    let captured = r.json(&["show", &m2]);
    assert!(captured["disks"][0]["backing"].is_null(), "{captured}");
    assert!(
        r.same_content(&os(&master), &os(&captured)),
        "captured OS disk"
    );
    r.ok(&["clone", &m2, &c2]);
    assert_eq!(
        r.console_boots(&["deploy", &c2, "--start", "--console"], &c2),
        4,
        "continues from c's count"
    );
    assert_eq!(
        r.console_boots(&["deploy", &f, "--start", "--console"], &f),
        1,
        "the full clone is isolated"
    );
    let disks = r.catalog_disks();
    assert_eq!(disks.len(), 10, "five VMDs of two disks");
    assert_on_second_host_only(&r, &disks);

    // 6. delete leaves nothing on either host.
    for name in [&c2, &m2, &c, &f, &m] {
        r.ok(&["delete", name, "--force"]);
    }
    assert!(r.volumes().is_empty(), "{:?}", r.volumes());
    let dir = r.pool.real_path(&r.pool.path);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{} holds {left:?}", dir.display());
    let here = first_host_volumes();
    for d in &disks {
        let volume = d["volume"].as_str().unwrap();
        assert!(
            !here.iter().any(|v| v == volume),
            "{volume} on the first host"
        );
    }
    let domains = run(Command::new("virsh").args(["-c", &r.pool.uri, "list", "--all", "--name"]));
    assert!(!domains.contains(&r.tag), "{domains}");
    let domains =
        run(Command::new("virsh").args(["-c", "qemu:///system", "list", "--all", "--name"]));
    assert!(!domains.contains(&r.tag), "{domains}");
    assert!(r.staging_left().is_empty(), "{:?}", r.staging_left());
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
