//! Volume content through libvirt streams, and the evidence that makes a pool local
//! (`Host::pool_access`), on the real local libvirtd and on the second host
//! (`scripts/second-host`), whose `/var/lib/libvirt/images` is not this namespace's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

use std::path::PathBuf;

use common::env::TestEnv;
use common::remote::RemotePool;
use vmd::host::libvirt::LibvirtHost;
use vmd::host::{Host, PoolAccess};
use vmd::vmd::{PoolName, VolumeName};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

#[test]
fn pool_access_local_dir_pool_is_local_at_its_path() {
    let env = TestEnv::new("access-local");
    let host = LibvirtHost::connect("qemu:///system").unwrap();

    let access = host.pool_access(&env.pool.parse().unwrap()).unwrap();

    assert_eq!(access, PoolAccess::Local(env.dir().join("pool")));
    assert!(env.volumes().is_empty(), "the probe volume is gone");
}

#[test]
fn pool_access_second_host_path_that_exists_here_is_streams() {
    // The second host's pool sits at its own /var/lib/libvirt/images: that directory exists
    // here too, but it is the first host's.
    let pool = RemotePool::new("access-remote");
    let host = LibvirtHost::connect(&pool.uri).unwrap();
    let here = PathBuf::from("/var/lib/libvirt/images");
    assert!(here.is_dir(), "premise: the path exists in this namespace");
    let shared: PoolName = pool.name.parse().unwrap();

    let access = host.pool_access(&shared).unwrap();

    assert_eq!(access, PoolAccess::Streams);
    assert!(host.list_volumes(&shared).unwrap().is_empty(), "probe gone");
}

#[test]
fn upload_then_download_on_second_host_returns_the_same_bytes() {
    let pool = RemotePool::new("streams");
    let host = LibvirtHost::connect(&pool.uri).unwrap();
    let p: PoolName = pool.name.parse().unwrap();
    let v: VolumeName = "vmd-streams-d0.raw".parse().unwrap();
    let len = 3 * 1024 * 1024 + 4321;
    host.create_volume(&p, &v, len as u64, "raw", false)
        .unwrap();
    let data = pattern(len, 7);

    host.upload_volume(&p, &v, 0, len as u64, &mut data.as_slice())
        .unwrap();
    let patch = pattern(1000, 99);
    host.upload_volume(&p, &v, 5000, 1000, &mut patch.as_slice())
        .unwrap();
    let mut back = Vec::new();
    let n = host.download_volume(&p, &v, 0, 0, &mut back).unwrap();

    let mut want = data.clone();
    want[5000..6000].copy_from_slice(&patch);
    assert_eq!(n, len as u64);
    assert!(
        back == want,
        "downloaded bytes differ from what was uploaded"
    );
    // Nothing of it exists at that path in this namespace.
    let info = host.volume(&p, &v).unwrap();
    assert!(!std::path::Path::new(&info.path).exists(), "{}", info.path);
}

#[test]
fn upload_from_short_source_fails_naming_the_shortfall() {
    let pool = RemotePool::new("short");
    let host = LibvirtHost::connect(&pool.uri).unwrap();
    let p: PoolName = pool.name.parse().unwrap();
    let v: VolumeName = "vmd-short-d0.raw".parse().unwrap();
    host.create_volume(&p, &v, 1 << 20, "raw", false).unwrap();

    let err = host
        .upload_volume(&p, &v, 0, 1 << 20, &mut [1u8; 1000].as_slice())
        .unwrap_err();

    assert!(
        err.to_string()
            .contains("the source ended after 1000 of 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn host_check_reports_a_local_dir_pool_as_local() {
    let env = TestEnv::new("check-local");

    let info = env.json(&["host", "check"]);

    let pool = info["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == env.pool.as_str())
        .cloned()
        .unwrap();
    assert_eq!(pool["access"], "local", "{pool}");
}
