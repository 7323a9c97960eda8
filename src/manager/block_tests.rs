//! Pools of pre-existing raw volumes against the in-memory host: refusals come before any
//! change, and a claimed volume is released, never deleted. The real LUN is exercised by
//! `tests/iscsi.rs`.

use std::sync::Arc;

use super::{CloneRequest, Config, StorageManager};
use crate::host::memory::{MemoryHost, MemoryVolume};
use crate::host::Host;
use crate::vmd::catalog::Catalog;
use crate::vmd::{
    Disk, DiskFormat, Firmware, Hardware, Kind, Role, State, Vmd, VmdId, VolumeName,
    CATALOG_VERSION,
};

const DIRECT: &str = "<pool type='iscsi-direct'><source><host name='127.0.0.1'/>\
    <device path='iqn.2026-12.dev.vmd:t'/></source></pool>";

struct Lab {
    dir: std::path::PathBuf,
    host: Arc<MemoryHost>,
    manager: StorageManager,
}

impl Lab {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("vmd-block-{tag}-{}", uuid::Uuid::new_v4().simple()));
        let host = Arc::new(MemoryHost::with_pools(&["p", "lun"]));
        host.set_pool_caps(
            "lun",
            crate::host::caps::pool_caps("iscsi-direct", DIRECT).unwrap(),
        );
        host.put_volume("lun", "unit:0:0:1", volume("raw"));
        let config = Config {
            uri: "memory:///".to_string(),
            state_dir: dir.clone(),
        };
        let manager =
            StorageManager::with_host(config, host.clone() as Arc<dyn Host + Send + Sync>);
        Self { dir, host, manager }
    }

    /// Records a VMD whose disk 0 is in pool `p` and disk 1 is `data` (pool, volume).
    fn record(&self, name: &str, kind: Kind, data: (&str, &str, bool)) -> Vmd {
        let id = VmdId::new();
        let os = VolumeName::for_disk(&id, 0, "qcow2");
        self.host.put_volume("p", os.as_str(), volume("qcow2"));
        let disk = |i: usize, pool: &str, volume: VolumeName, claimed: bool| Disk {
            id: format!("disk{i}"),
            role: if i == 0 { Role::Os } else { Role::Data },
            bus: "scsi".to_string(),
            unit: i as u32,
            capacity_bytes: 1 << 20,
            format: if claimed {
                DiskFormat::Raw
            } else {
                DiskFormat::Qcow2
            },
            pool: pool.parse().unwrap(),
            path: format!("/memory/{pool}/{volume}"),
            volume,
            backing: None,
            serial: None,
            claimed,
        };
        let vmd = Vmd {
            version: CATALOG_VERSION,
            id,
            name: name.parse().unwrap(),
            kind,
            state: if kind == Kind::Master {
                State::Ready
            } else {
                State::Cloned
            },
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
            disks: vec![
                disk(0, "p", os, false),
                disk(1, data.0, data.1.parse().unwrap(), data.2),
            ],
            descriptor: None,
            deployment: None,
            snapshots: vec![],
        };
        let catalog = Catalog::open(&self.dir).unwrap();
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

fn volume(format: &str) -> MemoryVolume {
    MemoryVolume {
        format: format.to_string(),
        capacity: 1 << 20,
        backing: None,
        readonly: false,
        data: Vec::new(),
    }
}

#[tokio::test]
async fn clone_linked_onto_iscsi_direct_is_refused_before_anything_is_made() {
    let lab = Lab::new("linked");
    let master = lab.record("m", Kind::Master, ("p", "vmd-x-d1.qcow2", false));
    let mut placement = super::Placement::default();
    placement
        .roles
        .insert("data".to_string(), "lun".parse().unwrap());

    let err = lab
        .manager
        .clone_vmd(CloneRequest {
            master: "m".to_string(),
            name: "c".parse().unwrap(),
            full: false,
            placement,
        })
        .await
        .unwrap_err();

    let text = err.to_string();
    assert!(text.contains("pool lun (iscsi-direct)"), "{text}");
    assert!(text.contains("--full"), "{text}");
    assert_eq!(err.kind(), super::ErrorKind::Usage);
    let log = lab.host.log();
    assert!(
        !log.iter().any(|l| l.starts_with("create_")),
        "nothing is created: {log:?}"
    );
    let names: Vec<String> = Catalog::open(&lab.dir)
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .map(|v| v.name.to_string())
        .collect();
    assert_eq!(names, ["m"]);
    assert_eq!(master.disks.len(), 2);
}

#[tokio::test]
async fn delete_instance_with_claimed_lun_releases_it_and_deletes_the_rest() {
    let lab = Lab::new("release");
    lab.record("i", Kind::Instance, ("lun", "unit:0:0:1", true));

    lab.manager.delete("i", false).await.unwrap();

    assert!(lab.host.volumes("lun").contains_key("unit:0:0:1"));
    assert!(lab.host.volumes("p").is_empty(), "the OS volume is deleted");
    let log = lab.host.log();
    assert!(
        !log.iter().any(|l| l == "delete_volume unit:0:0:1"),
        "{log:?}"
    );
}

#[tokio::test]
async fn snapshot_with_disk_on_iscsi_direct_is_refused_naming_disk_and_pool() {
    let lab = Lab::new("snap");
    lab.record("i", Kind::Instance, ("lun", "unit:0:0:1", true));

    let err = lab.manager.snapshot("i", None, false).await.unwrap_err();

    let text = err.to_string();
    assert!(
        text.contains("disk disk1 is on pool lun (iscsi-direct)"),
        "{text}"
    );
    assert_eq!(err.kind(), super::ErrorKind::Usage);
}

#[tokio::test]
async fn create_on_iscsi_direct_is_refused_before_anything_is_made() {
    let lab = Lab::new("create");

    let err = lab
        .manager
        .create(super::CreateRequest {
            name: "b".parse().unwrap(),
            os_disk: 1 << 20,
            data_disks: vec![],
            vcpus: 1,
            memory_mib: 64,
            pool: Some("lun".parse().unwrap()),
        })
        .await
        .unwrap_err();

    let text = err.to_string();
    assert!(text.contains("pool lun (iscsi-direct)"), "{text}");
    assert_eq!(err.kind(), super::ErrorKind::Usage);
    let log = lab.host.log();
    assert!(!log.iter().any(|l| l.starts_with("create_")), "{log:?}");
}
