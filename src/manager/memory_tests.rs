//! Rollback and ordering of the life-cycle operations, against the in-memory host
//! (`crate::host::memory`) with failures injected at chosen calls: no libvirtd. What each
//! operation does on a real host is shown by the integration tests in `tests/`.

use std::sync::Arc;

use super::{CloneRequest, Config, CreateRequest, StorageManager};
use crate::host::memory::{MemoryHost, MemoryVolume};
use crate::host::Host;
use crate::vmd::catalog::Catalog;
use crate::vmd::{
    Deployment, Disk, DiskFormat, Firmware, Hardware, Kind, Role, State, Vmd, VmdId, VolumeName,
    CATALOG_VERSION,
};

const POOL: &str = "p";

/// A state directory of its own and a memory host with pool `p`.
struct Lab {
    dir: std::path::PathBuf,
    host: Arc<MemoryHost>,
    manager: StorageManager,
}

impl Lab {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "vmd-memory-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let host = Arc::new(MemoryHost::with_pools(&[POOL]));
        let config = Config {
            uri: "memory:///".to_string(),
            state_dir: dir.clone(),
        };
        let manager =
            StorageManager::with_host(config, host.clone() as Arc<dyn Host + Send + Sync>);
        Self { dir, host, manager }
    }

    fn catalog(&self) -> Catalog {
        Catalog::open(&self.dir).unwrap()
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .catalog()
            .list()
            .unwrap()
            .into_iter()
            .map(|v| v.name.to_string())
            .collect();
        names.sort();
        names
    }

    fn volumes(&self) -> Vec<String> {
        self.host.volumes(POOL).into_keys().collect()
    }

    /// Lock files left in the state directory, besides those of `keep`.
    fn locks_besides(&self, keep: &[VmdId]) -> Vec<String> {
        let keep: Vec<String> = keep.iter().map(|id| id.to_string()).collect();
        std::fs::read_dir(self.dir.join("locks"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| !keep.iter().any(|k| n.contains(k.as_str())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records a VMD of `kind` and `state` with `disks` volumes in pool `p`, made on the host.
    fn record(&self, name: &str, kind: Kind, state: State, disks: usize) -> Vmd {
        let id = VmdId::new();
        let disks = (0..disks)
            .map(|i| {
                let volume = VolumeName::for_disk(&id, i, "qcow2");
                self.host.put_volume(
                    POOL,
                    volume.as_str(),
                    MemoryVolume {
                        format: "qcow2".to_string(),
                        capacity: 1 << 20,
                        backing: None,
                        readonly: kind == Kind::Master,
                        data: Vec::new(),
                    },
                );
                Disk {
                    id: format!("disk{i}"),
                    role: if i == 0 { Role::Os } else { Role::Data },
                    bus: "scsi".to_string(),
                    unit: i as u32,
                    capacity_bytes: 1 << 20,
                    format: DiskFormat::Qcow2,
                    pool: POOL.parse().unwrap(),
                    path: format!("/memory/{POOL}/{volume}"),
                    volume,
                    backing: None,
                    serial: None,
                    claimed: false,
                }
            })
            .collect();
        let vmd = Vmd {
            version: CATALOG_VERSION,
            id,
            name: name.parse().unwrap(),
            kind,
            state,
            created: String::new(),
            parent: None,
            source: None,
            hardware: Hardware {
                vcpus: 1,
                memory_mib: 64,
                firmware: Firmware::Bios,
                os_type: None,
            },
            networks: vec![],
            properties: vec![],
            disks,
            descriptor: None,
            deployment: (state == State::Deployed).then(|| Deployment {
                domain: format!("vmd-{name}"),
                virt_type: "qemu".to_string(),
                networks: Default::default(),
                template: None,
                console_log: "/dev/null".to_string(),
            }),
            snapshots: vec![],
        };
        let catalog = self.catalog();
        let lock = catalog.lock().unwrap();
        catalog.insert(&vmd, &lock).unwrap();
        vmd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn clone_second_overlay_fails_first_is_removed_and_nothing_recorded() {
    let lab = Lab::new("clone");
    let master = lab.record("m", Kind::Master, State::Ready, 2);
    let before = lab.volumes();
    lab.host.fail("create_overlay", 2);

    let err = lab
        .manager
        .clone_vmd(CloneRequest {
            master: "m".to_string(),
            name: "c".parse().unwrap(),
            full: false,
            placement: Default::default(),
        })
        .await
        .unwrap_err();

    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(lab.volumes(), before, "the first overlay is deleted again");
    assert_eq!(lab.names(), ["m"]);
    assert_eq!(lab.locks_besides(&[master.id]), Vec::<String>::new());
    let log = lab.host.log();
    let made = log
        .iter()
        .filter(|l| l.starts_with("create_overlay"))
        .count();
    let deleted = log
        .iter()
        .filter(|l| l.starts_with("delete_volume"))
        .count();
    assert_eq!((made, deleted), (2, 1), "{log:?}");
}

#[tokio::test]
async fn create_data_volume_fails_os_volume_is_removed_and_nothing_recorded() {
    let lab = Lab::new("create");
    lab.host.fail("create_volume", 2);

    let err = lab
        .manager
        .create(CreateRequest {
            name: "b".parse().unwrap(),
            os_disk: 1 << 20,
            data_disks: vec![1 << 20],
            vcpus: 1,
            memory_mib: 64,
            pool: Some(POOL.parse().unwrap()),
        })
        .await
        .unwrap_err();

    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(lab.volumes().is_empty(), "{:?}", lab.volumes());
    assert!(lab.names().is_empty());
    assert_eq!(lab.locks_besides(&[]), Vec::<String>::new());
}

#[tokio::test]
async fn delete_deployed_instance_removes_its_domain_before_its_volumes() {
    let lab = Lab::new("delete");
    let inst = lab.record("i", Kind::Instance, State::Deployed, 2);
    let uuid = inst.id.uuid();
    lab.host
        .define_domain(&format!(
            "<domain><name>vmd-i</name><uuid>{uuid}</uuid></domain>"
        ))
        .unwrap();
    lab.host.start_domain(&uuid).unwrap();

    lab.manager.delete("i", true).await.unwrap();

    let log = lab.host.log();
    let at = |call: &str| log.iter().position(|l| l.starts_with(call)).unwrap();
    assert!(at("destroy_domain") < at("undefine_domain"), "{log:?}");
    assert!(at("undefine_domain") < at("delete_volume"), "{log:?}");
    assert!(lab.host.domains().is_empty());
    assert!(lab.volumes().is_empty());
    assert!(lab.names().is_empty());
}

#[tokio::test]
async fn delete_volume_failure_keeps_the_record_so_delete_can_run_again() {
    let lab = Lab::new("delete-retry");
    lab.record("i", Kind::Instance, State::Cloned, 2);
    lab.host.fail("delete_volume", 2);

    let first = lab.manager.delete("i", false).await;
    let record_after_failure = lab.names();
    let second = lab.manager.delete("i", false).await;

    assert!(first.is_err());
    assert_eq!(
        record_after_failure,
        ["i"],
        "the record outlives a half-done delete"
    );
    second.unwrap();
    assert!(lab.volumes().is_empty());
    assert!(lab.names().is_empty());
}
