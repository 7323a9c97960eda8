//! `vmd host check` against the real libvirtd and an unreachable one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use common::vmd;

#[test]
fn host_check_json_reports_versions_virt_types_and_pools() {
    let out = vmd(&["--connect", "qemu:///system", "host", "check", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let version = doc["libvirt_version"].as_str().unwrap();
    assert_eq!(version.split('.').count(), 3, "{version}");
    assert!(doc["qemu_version"]
        .as_str()
        .unwrap()
        .starts_with(char::is_numeric));
    let types: Vec<&str> = doc["virt_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(types.contains(&"qemu"), "TCG must be offered: {types:?}");
    assert!(doc["pools"].is_array());
}

#[test]
fn host_check_unreachable_host_exits_nonzero_with_one_line() {
    let uri = "qemu+unix:///system?socket=/nonexistent";
    let out = vmd(&["--connect", uri, "host", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot connect to"), "{stderr}");
    assert!(stderr.contains("/nonexistent"), "{stderr}");
}

#[test]
fn host_check_env_connect_is_used() {
    let out = common::vmd_env(
        &["host", "check", "--json"],
        &[("VMD_CONNECT", "test:///default")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["uri"], "test:///default");
    assert_eq!(doc["pools"][0]["name"], "default-pool");
}
