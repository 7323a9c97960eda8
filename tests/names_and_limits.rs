//! Names that could be mistaken for ids, and amounts past what a guest can start with, on
//! the real libvirtd: every such request is refused before anything is written (exit status,
//! one-line message, state directory and pool unchanged), and a reference that matches two
//! VMDs is an error naming both. See docs/reliability.md, "Names and limits".

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
#[path = "names_and_limits/support.rs"]
mod support;

use common::env::TestEnv;
use support::{
    arg, assert_refused, assert_usage, blank_package, create, edit_record, stderr, Written,
};

const SOME_ID: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

// --- names and ids (SECURITY.md item 40) ----------------------------------------------------

// SECURITY.md item 40: the package copies another VMD's id as its system id. Without --name
// it is named after its file, so the id still means the VMD it belongs to.
#[test]
fn import_system_id_that_is_another_vmds_id_is_named_after_the_file() {
    let env = TestEnv::new("nm-file");
    let victim = create(&env, "victim", 0);
    let package = blank_package(&env, "appliance", &victim, 0);

    env.vmd_ok(&["import", arg(&package)]);

    let show = env.json(&["show", "appliance"]);
    assert_eq!(show["source"]["system"], victim.as_str());
    assert_eq!(env.json(&["show", &victim])["name"], "victim");
    env.vmd_ok(&["delete", &victim]);
    assert_eq!(env.catalog(), vec!["appliance".to_string()]);
}

// SECURITY.md item 40: system id and file name are both UUIDs; nothing to name it after.
#[test]
fn import_system_id_and_file_name_both_uuids_is_refused_asking_for_name() {
    let env = TestEnv::new("nm-nofile");
    let victim = create(&env, "victim", 0);
    let package = blank_package(&env, &victim.replace('-', ""), &victim, 0);
    let before = Written::now(&env);

    let out = env.vmd(&["import", arg(&package)]);

    assert_refused(&env, &out, 2, &["--name", "not a UUID", &victim], &before);
}

// SECURITY.md item 40: every command that takes a new NAME refuses every UUID form.
#[test]
fn new_name_in_any_uuid_form_is_refused_by_every_command_that_takes_one() {
    let env = TestEnv::new("nm-cmds");
    let victim = create(&env, "victim", 0);
    let package = blank_package(&env, "appliance", "appliance", 0);
    let forms = [
        SOME_ID.to_string(),
        SOME_ID.to_uppercase(),
        SOME_ID.replace('-', ""),
        format!("{{{SOME_ID}}}"),
        format!("urn:uuid:{SOME_ID}"),
        victim.clone(),
    ];
    let before = Written::now(&env);
    for name in &forms {
        for args in [
            vec!["import", arg(&package), "--name", name],
            vec!["create", name, "--os-disk", "1M"],
            vec!["clone", "victim", name],
            vec!["undeploy", "victim", "--as-master", name],
        ] {
            let out = env.vmd(&args);
            // Braces and colons already break the character rule; the other forms pass it
            // and meet the UUID rule.
            let rule = if name.contains(['{', ':']) {
                "use 1 to 64 letters"
            } else {
                "may not look like a UUID"
            };
            assert_usage(&env, &out, &["invalid VMD name", rule], &before);
        }
    }
}

// SECURITY.md item 40: a catalog from before the rule holds a VMD named after another's id.
// The id matches one and the name the other: an error naming both, and nothing deleted.
#[test]
fn reference_that_is_one_vmds_id_and_anothers_name_is_refused_naming_both() {
    let env = TestEnv::new("nm-ambig");
    let victim = create(&env, "victim", 0);
    let squatter = create(&env, "squatter", 0);
    edit_record(&env, &squatter, |r| r["name"] = victim.clone().into());
    let before = Written::now(&env);

    for command in [vec!["delete", victim.as_str()], vec!["show", &victim]] {
        let out = env.vmd(&command);
        assert_refused(&env, &out, 2, &["ambiguous", "victim", &squatter], &before);
    }
    assert_eq!(env.json(&["show", "victim"])["id"], victim.as_str());
    assert_eq!(env.json(&["show", &squatter])["name"], victim.as_str());
}

// --- SCSI units (SECURITY.md item 13) -------------------------------------------------------

// SECURITY.md item 13: AddressOnParent past virtio-scsi's last LUN (16383) passed import
// and deploy and failed only at start ("bad scsi device lun").
#[test]
fn import_disk_unit_past_virtio_scsi_limit_is_refused_naming_disk_and_limit() {
    let env = TestEnv::new("lim-unit");
    for unit in [16384, 99999, u32::MAX] {
        let package = blank_package(&env, &format!("unit{unit}"), "units", unit);
        let before = Written::now(&env);
        for command in ["import", "verify"] {
            let out = env.vmd(&[command, arg(&package)]);
            let unit = unit.to_string();
            let needles = ["disk 'vmdisk1'", &unit, "AddressOnParent", "16383"];
            assert_refused(&env, &out, 3, &needles, &before);
        }
    }
}

// SECURITY.md item 13: the last unit the limit allows really starts (a TCG guest that sits in
// its BIOS), so the limit is the bus's, not a guess.
#[test]
fn import_disk_at_last_virtio_scsi_unit_deploys_and_starts() {
    let env = TestEnv::new("lim-last");
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (master, vm) = (format!("last-{tag}"), format!("last-{tag}-vm"));
    let package = blank_package(&env, "last", "last", 16383);
    env.vmd_ok(&["import", arg(&package), "--name", &master]);
    env.vmd_ok(&["clone", &master, &vm]);

    let out = env
        .command()
        .env("VMD_VIRT_TYPE", "qemu")
        .args(["deploy", &vm, "--start"])
        .output()
        .unwrap();

    let started = out.status.success();
    let show = env.json(&["show", &vm]);
    env.vmd_ok(&["delete", &vm, "--force"]);
    env.vmd_ok(&["delete", &master]);
    assert!(started, "deploy --start: {}", stderr(&out));
    assert_eq!(show["disks"][0]["unit"], 16383);
    assert_eq!(show["state"], "running");
}

// SECURITY.md item 13: `device add` took the unit after the highest; after u32::MAX that
// overflowed (a panic, or unit 0 again in a release build). Now the lowest free unit.
#[test]
fn device_add_after_unit_u32_max_takes_the_lowest_free_unit() {
    let env = TestEnv::new("lim-next");
    let id = create(&env, "vm", 1);
    edit_record(&env, &id, |r| r["disks"][1]["unit"] = u32::MAX.into());

    let added = env.json(&["device", "add", "vm", "--size", "1M"]);

    assert_eq!(added["unit"], 1);
    let units: Vec<u64> = env.json(&["show", "vm"])["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["unit"].as_u64().unwrap())
        .collect();
    assert_eq!(units, vec![0, u64::from(u32::MAX), 1]);
    assert_eq!(env.volumes().len(), 3);
}

// --- sizes and counts (SECURITY.md item 13) -------------------------------------------------

// SECURITY.md item 13: zero and past-the-bound vCPUs, memory and disk sizes for `create`.
#[test]
fn create_zero_or_oversized_hardware_is_refused_and_writes_nothing() {
    let env = TestEnv::new("lim-create");
    let before = Written::now(&env);
    let cases: [(&[&str], &str); 8] = [
        (&["--vcpus", "0"], "vcpus 0 is out of range: use 1 to 255"),
        (&["--vcpus", "256"], "vcpus 256 is out of range"),
        (&["--memory", "0"], "memory 0 MiB is out of range"),
        (
            &["--memory", "16777217"],
            "memory 16777217 MiB is out of range",
        ),
        (
            &["--os-disk", "0"],
            "OS disk size 0 bytes is out of range: use 1 MiB to 64 TiB",
        ),
        (&["--os-disk", "65T"], "OS disk size 65 TiB is out of range"),
        (
            &["--data-disk", "0"],
            "data disk 1 size 0 bytes is out of range",
        ),
        (
            &["--data-disk", "1M", "--data-disk", "1"],
            "data disk 2 size 1 bytes",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec!["create", "vm"];
        args.extend_from_slice(extra);
        if !extra.contains(&"--os-disk") {
            args.extend(["--os-disk", "1M"]);
        }
        let out = env.vmd(&args);
        assert_refused(&env, &out, 2, &[message], &before);
    }
    assert!(env.catalog().is_empty());
}

// SECURITY.md item 13: `device add --size 0` made a 0-byte volume; now the same bounds as
// `create`, checked before the VMD is even locked.
#[test]
fn device_add_zero_or_oversized_size_is_refused_and_writes_nothing() {
    let env = TestEnv::new("lim-dev");
    create(&env, "vm", 0);
    let before = Written::now(&env);
    for (size, message) in [
        (
            "0",
            "device size 0 bytes is out of range: use 1 MiB to 64 TiB",
        ),
        ("1K", "device size 1024 bytes is out of range"),
        ("65T", "device size 65 TiB is out of range"),
    ] {
        let out = env.vmd(&["device", "add", "vm", "--size", size]);
        assert_refused(&env, &out, 2, &[message], &before);
    }
}
