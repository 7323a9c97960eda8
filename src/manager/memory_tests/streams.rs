//! Rollback of the paths that move volume content through the host (the memory host's pools
//! are reached through streams only, like a remote libvirt host's): an import that uploads,
//! a full clone and a capture that copy on the host. Each failure leaves no volume, no
//! record, no lock and no staging file.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{Lab, POOL};
use crate::manager::deploy::StopOptions;
use crate::manager::{CloneRequest, ImportOutcome, ImportRequest, NoProgress, UndeployRequest};
use crate::vmd::{DiskFormat, Kind, State};

/// Disk `n` of the test package: 1 MiB whose bytes say which disk and where.
fn disk_bytes(n: u8) -> Vec<u8> {
    (0..1u32 << 20)
        .map(|i| if i % 4096 == 0 { n } else { (i % 251) as u8 })
        .collect()
}

/// A directory package (an `.ovf` and two raw disks beside it) in the lab's directory.
fn package(lab: &Lab) -> std::path::PathBuf {
    let dir = lab.dir.join("package");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = String::new();
    let mut disks = String::new();
    let mut items = String::new();
    for n in 1..=2u8 {
        std::fs::write(dir.join(format!("d{n}.img")), disk_bytes(n)).unwrap();
        files.push_str(&format!(
            r#"<File ovf:href="d{n}.img" ovf:id="f{n}" ovf:size="1048576"/>"#
        ));
        disks.push_str(&format!(
            r#"<Disk ovf:capacity="1048576" ovf:diskId="v{n}" ovf:fileRef="f{n}" ovf:format="http://en.wikipedia.org/wiki/Byte"/>"#
        ));
        items.push_str(&format!(
            "<Item><rasd:AddressOnParent>{}</rasd:AddressOnParent><rasd:ElementName>d{n}</rasd:ElementName>\
             <rasd:HostResource>ovf:/disk/v{n}</rasd:HostResource><rasd:InstanceID>{}</rasd:InstanceID>\
             <rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>",
            n - 1,
            n + 3
        ));
    }
    let ovf = format!(
        r#"<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
<References>{files}</References>
<DiskSection><Info>disks</Info>{disks}</DiskSection>
<VirtualSystem ovf:id="streamed"><Info>vm</Info>
<VirtualHardwareSection><Info>hw</Info>
<Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>cpu</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
<Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>mem</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>64</rasd:VirtualQuantity></Item>
<Item><rasd:Address>0</rasd:Address><rasd:ElementName>scsi</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
{items}</VirtualHardwareSection></VirtualSystem></Envelope>
"#
    );
    let path = dir.join("streamed.ovf");
    std::fs::write(&path, ovf).unwrap();
    path
}

fn import_request(package: std::path::PathBuf) -> ImportRequest {
    ImportRequest {
        package,
        name: None,
        pool: Some(POOL.parse().unwrap()),
        format: DiskFormat::Raw,
        system: None,
        deployment: None,
        accept_eula: false,
        dry_run: false,
        strict: false,
        cancel: Arc::new(AtomicBool::new(false)),
    }
}

/// Files left in the state directory's staging area.
fn staged(lab: &Lab) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(lab.dir.join("staging"))
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn import_uploads_each_disk_through_the_host_byte_for_byte() {
    let lab = Lab::new("import-streams");
    let package = package(&lab);

    let outcome = lab
        .manager
        .import(import_request(package), Arc::new(NoProgress))
        .await
        .unwrap();

    let ImportOutcome::Imported { vmd, .. } = outcome else {
        panic!("not imported")
    };
    assert_eq!(vmd.kind, Kind::Master);
    let volumes = lab.host.volumes(POOL);
    for (n, disk) in (1..=2u8).zip(&vmd.disks) {
        let v = &volumes[disk.volume.as_str()];
        assert_eq!(v.format, "raw");
        assert!(v.data == disk_bytes(n), "disk {n} content differs");
    }
    assert!(
        lab.host
            .log()
            .iter()
            .any(|l| l.starts_with("upload_volume")),
        "{:?}",
        lab.host.log()
    );
    assert_eq!(staged(&lab), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn import_whose_second_upload_fails_leaves_no_volume_record_or_staging_file() {
    let lab = Lab::new("import-upload-fails");
    let package = package(&lab);
    // One upload per disk: the second call is the second disk's.
    lab.host.fail("upload_volume", 2);

    let err = lab
        .manager
        .import(import_request(package), Arc::new(NoProgress))
        .await
        .unwrap_err();

    assert!(err.to_string().contains("injected failure"), "{err}");
    let log = lab.host.log();
    let uploads: Vec<_> = log
        .iter()
        .filter(|l| l.starts_with("upload_volume"))
        .collect();
    assert_eq!(uploads.len(), 2, "the first disk went up whole: {log:?}");
    assert!(lab.volumes().is_empty(), "{:?}", lab.volumes());
    assert!(lab.names().is_empty());
    assert_eq!(lab.locks_besides(&[]), Vec::<String>::new());
    assert_eq!(staged(&lab), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn full_clone_whose_second_host_copy_fails_removes_the_first_copy() {
    let lab = Lab::new("full-clone-copy-fails");
    let master = lab.record("m", Kind::Master, State::Ready, 2);
    let before = lab.volumes();
    lab.host.fail("copy_volume", 2);

    let err = lab
        .manager
        .clone_vmd(CloneRequest {
            master: "m".to_string(),
            name: "c".parse().unwrap(),
            full: true,
            placement: Default::default(),
        })
        .await
        .unwrap_err();

    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(lab.volumes(), before);
    assert_eq!(lab.names(), ["m"]);
    assert_eq!(lab.locks_besides(&[master.id]), Vec::<String>::new());
}

#[tokio::test]
async fn capture_whose_second_host_copy_fails_keeps_the_instance_and_makes_no_master() {
    let lab = Lab::new("capture-copy-fails");
    let inst = lab.record("i", Kind::Instance, State::Cloned, 2);
    let before = lab.volumes();
    lab.host.fail("copy_volume", 2);

    let err = lab
        .manager
        .undeploy(UndeployRequest {
            name: "i".to_string(),
            as_master: Some("gold".parse().unwrap()),
            stop: StopOptions::default(),
        })
        .await
        .unwrap_err();

    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(lab.volumes(), before, "the first copy is deleted again");
    assert_eq!(lab.names(), ["i"]);
    let kept = lab.catalog().get("i").unwrap();
    assert_eq!((kept.kind, kept.state), (Kind::Instance, State::Cloned));
    assert_eq!(lab.locks_besides(&[inst.id]), Vec::<String>::new());
}

#[tokio::test]
async fn full_clone_proves_each_pool_once_however_many_disks_it_copies() {
    let lab = Lab::new("full-clone-reach");
    lab.record("m", Kind::Master, State::Ready, 3);

    lab.manager
        .clone_vmd(CloneRequest {
            master: "m".to_string(),
            name: "c".parse().unwrap(),
            full: true,
            placement: Default::default(),
        })
        .await
        .unwrap();

    let log = lab.host.log();
    let probes = log.iter().filter(|l| l.starts_with("pool_access")).count();
    let copies = log.iter().filter(|l| l.starts_with("copy_volume")).count();
    assert_eq!((probes, copies), (1, 3), "{log:?}");
}
