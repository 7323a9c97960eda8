//! Rollback and ordering of the life-cycle operations, against the in-memory host
//! (`crate::host::memory`) with failures injected at chosen calls: no libvirtd. What each
//! operation does on a real host is shown by the integration tests in `tests/`.

use std::sync::Arc;

use super::{AddDeviceRequest, CloneRequest, Config, CreateRequest, DeployRequest, StorageManager};
use crate::host::memory::{MemoryHost, MemoryVolume};
use crate::host::{DomainDefinition, DomainSpec, Host};
use crate::vmd::catalog::Catalog;
use crate::vmd::{
    Deployment, Disk, DiskFormat, Firmware, Hardware, Kind, Role, State, Vmd, VmdId, VolumeName,
    CATALOG_VERSION,
};

mod streams;

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
                console_log: None,
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
    lab.host.define_domain(&definition("vmd-i", &uuid)).unwrap();
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

#[tokio::test]
async fn deploy_define_refused_leaves_no_domain_record_or_console_directory() {
    let lab = Lab::new("deploy-refused");
    lab.record("i", Kind::Instance, State::Cloned, 1);
    lab.host.fail("define_domain", 1);

    let req = DeployRequest {
        name: "i".to_string(),
        virt_type: Some("qemu".to_string()),
        ..DeployRequest::default()
    };
    let err = lab.manager.deploy(req).await.unwrap_err();

    assert!(err.to_string().contains("injected"), "{err}");
    assert!(lab.host.domains().is_empty());
    assert_eq!(lab.catalog().get("i").unwrap().state, State::Cloned);
    assert!(!lab.dir.join("consoles").exists());
}

#[tokio::test]
async fn add_device_attach_refused_deletes_the_new_volume() {
    let lab = Lab::new("attach-refused");
    let inst = lab.record("i", Kind::Instance, State::Deployed, 1);
    lab.host
        .define_domain(&definition("vmd-i", &inst.id.uuid()))
        .unwrap();
    lab.host.fail("attach_disk", 1);

    let req = AddDeviceRequest {
        name: "i".to_string(),
        size: 1 << 20,
        role: Role::Data,
        pool: None,
        live: false,
    };
    lab.manager.add_device(req).await.unwrap_err();

    assert_eq!(lab.volumes().len(), 1, "{:?}", lab.volumes());
    assert_eq!(lab.catalog().get("i").unwrap().disks.len(), 1);
    let log = lab.host.log();
    assert!(log.iter().any(|l| l.starts_with("attach_disk ")), "{log:?}");
}

#[tokio::test]
async fn snapshot_running_instance_record_round_trips_to_revert_and_delete() {
    let lab = Lab::new("snapshot");
    let inst = lab.record("i", Kind::Instance, State::Deployed, 2);
    let uuid = inst.id.uuid();
    lab.host.define_domain(&definition("vmd-i", &uuid)).unwrap();
    lab.host.start_domain(&uuid).unwrap();

    lab.manager
        .snapshot("i", Some("s1".to_string()), true)
        .await
        .unwrap();
    lab.manager.revert("i", "s1").await.unwrap();
    lab.manager.delete_snapshot("i", "s1").await.unwrap();

    let log = lab.host.log();
    let at = |call: &str| log.iter().position(|l| l.starts_with(call)).unwrap();
    assert!(at("snapshot_create") < at("snapshot_revert"), "{log:?}");
    assert!(at("snapshot_revert") < at("snapshot_delete"), "{log:?}");
    assert!(lab.catalog().get("i").unwrap().snapshots.is_empty());
}

#[tokio::test]
async fn snapshot_recorded_drops_libvirt_metadata_and_a_retry_replaces_an_unrecorded_one() {
    let lab = Lab::new("snapshot-retry");
    let inst = lab.record("i", Kind::Instance, State::Deployed, 1);
    let uuid = inst.id.uuid();
    lab.host.define_domain(&definition("vmd-i", &uuid)).unwrap();
    lab.host.start_domain(&uuid).unwrap();
    // What a vmd killed between libvirt's snapshot and its catalog write leaves behind.
    let spec = crate::host::SnapshotSpec {
        name: "s1",
        description: "interrupted",
    };
    lab.host.snapshot_create(&uuid, &spec).unwrap();

    lab.manager
        .snapshot("i", Some("s1".to_string()), true)
        .await
        .unwrap();

    let log = lab.host.log();
    let at = |call: &str| log.iter().rposition(|l| l.starts_with(call)).unwrap();
    assert!(
        at("snapshot_drop_unrecorded") < at("snapshot_create"),
        "{log:?}"
    );
    assert!(at("snapshot_create") < at("snapshot_forget"), "{log:?}");
    assert_eq!(
        lab.host.snapshots(&uuid),
        (vec!["s1".to_string()], vec![]),
        "one s1 in the disks, no metadata left in libvirt"
    );
    assert_eq!(lab.catalog().get("i").unwrap().snapshots.len(), 1);
}

/// A bare domain definition: the memory host keeps only its name and UUID.
fn definition(name: &str, uuid: &uuid::Uuid) -> DomainDefinition {
    DomainDefinition {
        spec: DomainSpec {
            name: name.to_string(),
            uuid: uuid.to_string(),
            vmd_id: uuid.to_string(),
            vmd_name: name.to_string(),
            virt_type: "qemu".to_string(),
            vcpus: 1,
            memory_mib: 64,
            firmware: "bios".to_string(),
            disks: Vec::new(),
            nics: Vec::new(),
            console_log: "/dev/null".to_string(),
        },
        template: None,
    }
}

/// A deployed instance `i` whose domain is defined and off.
fn deployed_off(lab: &Lab) -> uuid::Uuid {
    let inst = lab.record("i", Kind::Instance, State::Deployed, 1);
    let uuid = inst.id.uuid();
    lab.host.define_domain(&definition("vmd-i", &uuid)).unwrap();
    uuid
}

#[tokio::test]
async fn start_with_console_opens_it_before_the_guest_runs() {
    use std::io::Read;
    let lab = Lab::new("console");
    let uuid = deployed_off(&lab);
    lab.host.put_console(&uuid, b"VMD-GUEST done\n");

    let mut console = lab.manager.start_with_console("i").await.unwrap();
    let mut text = String::new();
    console.read_to_string(&mut text).unwrap();

    assert_eq!(text, "VMD-GUEST done\n");
    let log = lab.host.log();
    let at = |call: &str| log.iter().position(|l| l.starts_with(call)).unwrap();
    assert!(at("start_domain_paused") < at("open_console"), "{log:?}");
    assert!(at("open_console") < at("resume_domain"), "{log:?}");
    assert_eq!(
        lab.host.domain_state(&uuid).unwrap(),
        Some(crate::host::DomainState::Running)
    );
}

#[tokio::test]
async fn start_with_console_open_fails_guest_is_powered_off_again() {
    let lab = Lab::new("console-fail");
    let uuid = deployed_off(&lab);
    lab.host.fail("open_console", 1);

    let err = lab.manager.start_with_console("i").await.unwrap_err();

    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(
        lab.host.domain_state(&uuid).unwrap(),
        Some(crate::host::DomainState::Shutoff),
        "not left paused"
    );
    assert!(!lab
        .host
        .log()
        .iter()
        .any(|l| l.starts_with("resume_domain")));
}

#[tokio::test]
async fn console_of_an_instance_that_is_off_is_refused_naming_it() {
    let lab = Lab::new("console-off");
    deployed_off(&lab);

    let err = lab.manager.console("i").await.unwrap_err();

    assert_eq!(err.kind(), super::ErrorKind::Conflict);
    assert!(err.to_string().contains("i is not running"), "{err}");
    assert!(!lab.host.log().iter().any(|l| l.starts_with("open_console")));
}
