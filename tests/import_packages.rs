//! `vmd import` of the project's own test packages: the tiny appliance's two disks wrapped the
//! ways producers ship them (the descriptors in `ovf/samples/`: OVF 1.0 and 2.0, a collection,
//! deployment options, properties, a EULA, a signature, gzip, chunks, directory packages,
//! other source formats), imported into a real pool, and what a user checks afterwards:
//! `show`, the volumes, their content against a plain import of `tiny.ova`, a guest booting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

#[path = "import_packages/build.rs"]
mod build;
mod common;
#[path = "import_packages/disks.rs"]
mod disks;
#[path = "import_packages/samples.rs"]
mod samples;

use std::process::Command;

use build::{
    arg, assert_disks, assert_same_content, disk_path, import_reference, sign, stderr, tiny_disks,
    Expect, Tiny, DISK1, DISK2, MIB,
};
use common::env::TestEnv;
use common::run;
use samples::{collection_package, ova, ovf2_package, plain_package};
use serde_json::Value;
use sha2::{Digest, Sha256};

// --- OVF 1.0 directory packages -------------------------------------------------------------

#[test]
fn import_directory_package_as_directory_or_ovf_path_matches_plain_import() {
    let env = TestEnv::new("pkgdir");
    let tiny = Tiny::extract(&env);
    let reference = import_reference(&env);
    let dir = &tiny.dir;
    let ovf = dir.join("tiny.ovf");
    env.vmd_ok(&["import", arg(dir), "--name", "by-dir"]);
    env.vmd_ok(&["import", arg(&ovf), "--name", "by-ovf"]);
    let out = env
        .command()
        .current_dir(dir)
        .args(["import", "tiny.ovf", "--name", "by-relative-ovf"])
        .output()
        .unwrap();
    assert!(out.status.success(), "relative .ovf: {}", stderr(&out));

    let descriptor_digest = format!("{:x}", Sha256::digest(std::fs::read(&ovf).unwrap()));
    for name in ["by-dir", "by-ovf", "by-relative-ovf"] {
        let show = env.json(&["show", name]);
        assert_eq!(show["name"], name);
        assert_eq!(show["source"]["ovf_version"], "1", "{name}");
        assert_eq!(show["source"]["system"], "tiny", "{name}");
        assert_eq!(show["source"]["manifest"], "SHA256", "{name}");
        assert_eq!(
            show["source"]["digest"],
            descriptor_digest.as_str(),
            "{name}"
        );
        assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
        assert_same_content(&disk_path(&show, 0), "qcow2", &disk_path(&reference, 0));
    }
    assert_eq!(env.json(&["show", "by-dir"])["source"]["package"], arg(dir));
    assert_eq!(env.volumes().len(), 8);
}

// --- OVF 2.0 ----------------------------------------------------------------------------------

#[test]
fn import_ovf2_storage_and_ethernet_items_gives_declared_hardware_and_same_os_content() {
    let env = TestEnv::new("ovf2");
    let tiny = Tiny::extract(&env);
    let reference = import_reference(&env);
    let package = ovf2_package(&env, &tiny);
    env.vmd_ok(&["import", arg(&package)]);

    let show = env.json(&["show", "tiny2"]);
    assert_eq!(show["kind"], "master");
    assert_eq!(show["source"]["ovf_version"], "2");
    assert_eq!(show["source"]["system"], "tiny2");
    assert_eq!(show["source"]["manifest"], "SHA512");
    assert_eq!(show["source"]["product"]["full_version"], "2.0-ovf2");
    assert_eq!(show["hardware"]["vcpus"], 2);
    assert_eq!(show["hardware"]["memory_mib"], 384);
    assert_eq!(show["networks"][0]["name"], "VM Network");
    assert_eq!(show["networks"][0]["model"], "E1000");
    assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
    assert_same_content(&disk_path(&show, 0), "qcow2", &disk_path(&reference, 0));
    assert_same_content(&disk_path(&show, 1), "qcow2", &disk_path(&reference, 1));
}

// --- VirtualSystemCollection ------------------------------------------------------------------

#[test]
fn import_collection_without_system_is_refused_listing_the_ids() {
    let env = TestEnv::new("coll-no");
    let tiny = Tiny::extract(&env);
    let package = collection_package(&env, &tiny);

    let out = env.vmd(&["import", arg(&package)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("frontend, backend") && err.contains("--system"),
        "{err}"
    );
    let out = env.vmd(&["import", arg(&package), "--system", "database"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("database") && err.contains("frontend, backend"),
        "{err}"
    );
    assert!(env.volumes().is_empty());
    assert!(env.catalog().is_empty());
}

#[test]
fn import_collection_each_system_with_system_gets_its_hardware_and_disks() {
    let env = TestEnv::new("coll");
    let tiny = Tiny::extract(&env);
    let reference = import_reference(&env);
    let package = collection_package(&env, &tiny);
    env.vmd_ok(&["import", arg(&package), "--system", "frontend"]);
    env.vmd_ok(&["import", arg(&package), "--system", "backend"]);

    let front = env.json(&["show", "frontend"]);
    assert_eq!(front["source"]["system"], "frontend");
    assert_eq!(front["source"]["manifest"], "SHA256");
    assert_eq!(front["hardware"]["vcpus"], 1);
    assert_eq!(front["hardware"]["memory_mib"], 256);
    let networks: Vec<&str> = front["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(networks, ["Frontend", "Backend"]);
    assert_disks(&env, &front, "qcow2", &tiny_disks(&tiny));

    let back = env.json(&["show", "backend"]);
    assert_eq!(back["source"]["system"], "backend");
    assert_eq!(back["hardware"]["vcpus"], 2);
    assert_eq!(back["hardware"]["memory_mib"], 512);
    assert_eq!(back["networks"][0]["name"], "Backend");
    let back_disks = [
        Expect {
            id: "vmdisk3",
            role: "os",
            unit: 0,
            capacity: tiny.capacity[0],
        },
        Expect {
            id: "vmdisk4",
            role: "data",
            unit: 1,
            capacity: 32 * MIB,
        },
    ];
    assert_disks(&env, &back, "qcow2", &back_disks);

    for show in [&front, &back] {
        assert_same_content(&disk_path(show, 0), "qcow2", &disk_path(&reference, 0));
    }
    // The blank disk reads as zeros, like the appliance's own blank data disk.
    let blank = disk_path(&back, 1);
    let zeros = env.dir().join("zeros.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&zeros)
        .arg((32 * MIB).to_string()));
    assert_same_content(&blank, "qcow2", &zeros);
    assert_eq!(env.volumes().len(), 6);
}

// --- DeploymentOptionSection and ProductSection -----------------------------------------------

/// The `value` of property `key` in a `show --json`.
fn property<'a>(show: &'a Value, key: &str) -> &'a Value {
    show["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == key)
        .unwrap_or_else(|| panic!("no property {key}: {:#}", show["properties"]))
}

#[test]
fn import_deployment_default_option_applies_when_none_is_chosen() {
    let env = TestEnv::new("deploy-def");
    let tiny = Tiny::extract(&env);
    let package = plain_package(&env, &tiny, "deployment.ovf");
    env.vmd_ok(&["import", arg(&package)]);

    let show = env.json(&["show", "tiny-sized"]);
    assert_eq!(show["source"]["deployment"], "medium");
    assert_eq!(show["hardware"]["vcpus"], 2);
    assert_eq!(show["hardware"]["memory_mib"], 512);
    assert_eq!(property(&show, "workers")["value"], "2");
    assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
}

#[test]
fn import_deployment_option_chosen_sets_cpus_memory_and_property_values() {
    let env = TestEnv::new("deploy");
    let tiny = Tiny::extract(&env);
    let package = plain_package(&env, &tiny, "deployment.ovf");
    for (option, vcpus, memory, workers) in [("small", 1, 256, "1"), ("large", 4, 1024, "8")] {
        env.vmd_ok(&[
            "import",
            arg(&package),
            "--deployment",
            option,
            "--name",
            option,
        ]);
        let show = env.json(&["show", option]);
        assert_eq!(show["source"]["deployment"], option);
        assert_eq!(show["hardware"]["vcpus"], vcpus, "{option}");
        assert_eq!(show["hardware"]["memory_mib"], memory, "{option}");
        assert_eq!(property(&show, "workers")["value"], workers, "{option}");
        assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
    }
}

#[test]
fn import_unknown_deployment_option_is_refused_listing_the_options() {
    let env = TestEnv::new("deploy-no");
    let tiny = Tiny::extract(&env);
    let package = plain_package(&env, &tiny, "deployment.ovf");
    let out = env.vmd(&["import", arg(&package), "--deployment", "huge"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("huge") && err.contains("small, medium, large"),
        "{err}"
    );
    assert!(env.volumes().is_empty());
    assert!(env.catalog().is_empty());
}

#[test]
fn import_product_properties_are_listed_with_keys_and_values_and_passwords_hidden() {
    let env = TestEnv::new("props");
    let tiny = Tiny::extract(&env);
    let package = plain_package(&env, &tiny, "eula.ovf");
    env.vmd_ok(&["import", arg(&package), "--accept-eula"]);

    let show = env.json(&["show", "tiny-licensed"]);
    let keys: Vec<&str> = show["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "guestinfo.hostname",
            "guestinfo.root_password",
            "guestinfo.debug",
            "vami.ip0.tiny",
            "vami.netmask0.tiny"
        ]
    );
    let hostname = property(&show, "guestinfo.hostname");
    assert_eq!(hostname["value"], "tiny.example.com");
    assert_eq!(hostname["type"], "string");
    assert_eq!(hostname["user_configurable"], true);
    assert_eq!(hostname["label"], "Hostname");
    assert_eq!(
        property(&show, "guestinfo.root_password")["value"],
        Value::Null
    );
    let debug = property(&show, "guestinfo.debug");
    assert_eq!(debug["value"], "false");
    assert_eq!(debug["type"], "boolean");
    assert_eq!(debug["user_configurable"], false);
    assert_eq!(property(&show, "vami.ip0.tiny")["value"], Value::Null);
    assert_eq!(
        property(&show, "vami.netmask0.tiny")["value"],
        "255.255.255.0"
    );
    assert_eq!(
        show["source"]["product"]["product"],
        "vmd tiny licensed appliance"
    );
}

// --- EULA -------------------------------------------------------------------------------------

const LICENSE_TITLE: &str = "VMD TINY TEST APPLIANCE LICENSE AGREEMENT";

#[test]
fn import_eula_package_without_accept_eula_is_refused_and_writes_nothing() {
    let env = TestEnv::new("eula-no");
    let tiny = Tiny::extract(&env);
    let package = plain_package(&env, &tiny, "eula.ovf");
    let out = env.vmd(&["import", arg(&package)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("license agreement") && err.contains("--accept-eula"),
        "{err}"
    );
    assert!(env.volumes().is_empty());
    assert!(env.catalog().is_empty());
}

#[test]
fn import_eula_package_with_accept_eula_records_the_acceptance() {
    let env = TestEnv::new("eula");
    let tiny = Tiny::extract(&env);
    let package = plain_package(&env, &tiny, "eula.ovf");
    env.vmd_ok(&["import", arg(&package), "--accept-eula"]);
    let show = env.json(&["show", "tiny-licensed"]);
    assert_eq!(show["source"]["eula_accepted"], true);
    assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
}

#[test]
fn verify_eula_package_prints_the_license_text_and_writes_nothing() {
    let env = TestEnv::new("eula-verify");
    let tiny = Tiny::extract(&env);
    let package = plain_package(&env, &tiny, "eula.ovf");
    let text = env.vmd_ok(&["verify", arg(&package)]);
    assert!(text.contains(LICENSE_TITLE), "{text}");
    assert!(
        text.contains("2. Restrictions. The appliance counts its boots"),
        "{text}"
    );
    let report = env.json(&["verify", arg(&package)]);
    assert_eq!(report["disks_verified"], 2);
    assert!(report["eulas"][0]
        .as_str()
        .unwrap()
        .starts_with(LICENSE_TITLE));
    assert!(env.volumes().is_empty());
    assert!(env.catalog().is_empty());
}

// --- signature --------------------------------------------------------------------------------

#[test]
fn import_signed_package_reports_a_self_signed_untrusted_certificate() {
    let env = TestEnv::new("signed");
    let tiny = Tiny::extract(&env);
    let subject = "/O=vmd tests/CN=vmd package signer";
    sign(env.dir(), &tiny.dir, "tiny.mf", "tiny.cert", subject);
    let members = ["tiny.ovf", "tiny.mf", "tiny.cert", DISK1, DISK2];
    let package = ova(&env, &tiny.dir, "signed", &members);

    let plan = env.json(&["import", arg(&package), "--dry-run"]);
    let warnings = plan["warnings"].to_string();
    assert!(warnings.contains("not a trusted signer"), "{warnings}");
    env.vmd_ok(&["import", arg(&package), "--name", "signed"]);

    let show = env.json(&["show", "signed"]);
    let cert = &show["source"]["certificate"];
    assert_eq!(
        cert["subject"], "CN=vmd package signer,O=vmd tests",
        "{cert:#}"
    );
    assert_eq!(cert["self_signed"], true, "{cert:#}");
    assert_eq!(cert["trusted"], false, "{cert:#}");
    assert_eq!(cert["expired"], false, "{cert:#}");
    assert_eq!(cert["digest"], "SHA256", "{cert:#}");
    assert_eq!(show["source"]["manifest"], "SHA256");
    assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
}
