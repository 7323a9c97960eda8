//! How a package stores its disks, and what vmd writes: gzip, chunks, both, other source
//! image formats and the raw target format; every volume must read as the plain import's, and
//! a guest must boot from the gzip package's import.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::build::{
    arg, assert_disks, assert_same_content, disk_path, import_reference, new_package, tiny_disks,
    virtual_size, write_descriptor, Tiny, DISK1, DISK2,
};
use crate::common::env::TestEnv;
use crate::common::guest::{boot, Disk};
use crate::common::packages::{size, write_manifest};
use crate::common::{run, tiny_ova};
use crate::samples::{chunked_package, gzip_package, CHUNK};

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

// --- gzip and chunks --------------------------------------------------------------------------

#[test]
fn import_gzip_package_sha1_manifest_os_volume_matches_plain_import() {
    let env = TestEnv::new("gzip");
    let tiny = Tiny::extract(&env);
    let reference = import_reference(&env);
    let package = gzip_package(&env, &tiny);

    let plan = env.json(&["import", arg(&package), "--dry-run"]);
    for d in plan["disks"].as_array().unwrap() {
        assert_eq!(d["source"]["gzip"], true, "{d:#}");
        assert_eq!(d["source"]["chunks"], 1, "{d:#}");
    }
    env.vmd_ok(&["import", arg(&package)]);
    let show = env.json(&["show", "tiny-gzip"]);
    assert_eq!(show["source"]["system"], "tiny-gzip");
    assert_eq!(show["source"]["manifest"], "SHA1");
    assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
    assert_same_content(&disk_path(&show, 0), "qcow2", &disk_path(&reference, 0));
    assert_same_content(&disk_path(&show, 1), "qcow2", &disk_path(&reference, 1));
}

#[test]
fn import_gzip_package_guest_boots_from_overlays_and_counts_a_data_disk_boot() {
    let env = TestEnv::new("gzboot");
    let tiny = Tiny::extract(&env);
    let package = gzip_package(&env, &tiny);
    env.vmd_ok(&["import", arg(&package), "--name", "gz-gold"]);
    let show = env.json(&["show", "gz-gold"]);
    let masters = [disk_path(&show, 0), disk_path(&show, 1)];
    let before: Vec<Vec<u8>> = masters.iter().map(|p| sha256(p)).collect();

    let mut disks = Vec::new();
    for (i, master) in masters.iter().enumerate() {
        let overlay = env.dir().join(format!("overlay{i}.qcow2"));
        run(Command::new("qemu-img")
            .args([
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "qcow2",
                "-b",
                arg(master),
            ])
            .arg(&overlay));
        disks.push(Disk {
            path: overlay,
            format: "qcow2",
            serial: format!("vmd-gz-{i}"),
            unit: i as u32,
            boot: i == 0,
        });
    }
    let console = env.dir().join("console.log");
    let name = format!("vmd-test-gzboot-{}", std::process::id());
    let guest = boot(&name, &disks, &console, BOOT_TIMEOUT);
    assert_eq!(
        guest.boots("vmd-gz-1"),
        Some(1),
        "console:\n{}",
        guest.console
    );
    assert!(guest.done(), "console:\n{}", guest.console);
    let after: Vec<Vec<u8>> = masters.iter().map(|p| sha256(p)).collect();
    assert_eq!(before, after, "the master's volumes changed");
}

fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

#[test]
fn import_chunked_package_every_chunk_in_manifest_os_volume_matches_plain_import() {
    let env = TestEnv::new("chunk");
    let tiny = Tiny::extract(&env);
    let reference = import_reference(&env);
    let (package, counts) = chunked_package(&env, &tiny, false);
    assert_eq!(counts[0] as u64, tiny.plain_sizes()[0].div_ceil(CHUNK));
    assert!(counts[0] > 1, "the OS disk must span several chunks");

    let plan = env.json(&["import", arg(&package), "--dry-run"]);
    let sizes = tiny.plain_sizes();
    for (i, d) in plan["disks"].as_array().unwrap().iter().enumerate() {
        assert_eq!(d["source"]["chunks"], counts[i], "{d:#}");
        assert_eq!(d["source"]["stored_bytes"], sizes[i], "{d:#}");
        assert_eq!(d["source"]["gzip"], false, "{d:#}");
    }
    env.vmd_ok(&["import", arg(&package)]);
    let show = env.json(&["show", "tiny-chunked"]);
    assert_eq!(show["source"]["manifest"], "SHA256");
    assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
    assert_same_content(&disk_path(&show, 0), "qcow2", &disk_path(&reference, 0));
    assert_same_content(&disk_path(&show, 1), "qcow2", &disk_path(&reference, 1));
}

#[test]
fn import_gzip_then_chunked_package_os_volume_matches_plain_import() {
    let env = TestEnv::new("gzchunk");
    let tiny = Tiny::extract(&env);
    let reference = import_reference(&env);
    let (package, counts) = chunked_package(&env, &tiny, true);
    assert!(counts[0] > 1, "the OS disk must span several chunks");

    let plan = env.json(&["import", arg(&package), "--dry-run"]);
    assert_eq!(plan["disks"][0]["source"]["gzip"], true);
    assert_eq!(plan["disks"][0]["source"]["chunks"], counts[0]);
    env.vmd_ok(&["import", arg(&package)]);
    let show = env.json(&["show", "tiny-gzip-chunked"]);
    assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
    assert_same_content(&disk_path(&show, 0), "qcow2", &disk_path(&reference, 0));
}

// --- target and source formats ----------------------------------------------------------------

#[test]
fn import_raw_target_format_writes_raw_volumes_with_the_same_content() {
    let env = TestEnv::new("rawfmt");
    let tiny = Tiny::extract(&env);
    let reference = import_reference(&env);
    env.vmd_ok(&[
        "import",
        arg(&tiny_ova()),
        "--format",
        "raw",
        "--name",
        "raw",
    ]);

    let show = env.json(&["show", "raw"]);
    assert_disks(&env, &show, "raw", &tiny_disks(&tiny));
    for i in 0..2 {
        assert!(show["disks"][i]["volume"]
            .as_str()
            .unwrap()
            .ends_with(".raw"));
        assert_eq!(size(&disk_path(&show, i)), tiny.capacity[i]);
        assert_same_content(&disk_path(&show, i), "raw", &disk_path(&reference, i));
    }
}

/// Imports the source-formats sample as a directory package whose OS disk is the tiny OS disk
/// converted by `qemu-img convert -O <format> [-o <options>]` into `href`, declared as `uri`;
/// checks the plan names `word`, then that the volumes match the plain import.
fn import_source_format(
    tag: &str,
    format: &str,
    options: &[&str],
    href: &str,
    uri: &str,
    word: &str,
) {
    let env = TestEnv::new(tag);
    let tiny = Tiny::extract(&env);
    let reference = import_reference(&env);
    let dir = new_package(&env, tag);
    run(Command::new("qemu-img")
        .args(["convert", "-O", format])
        .args(options)
        .arg(tiny.part(DISK1))
        .arg(dir.join(href)));
    assert_eq!(virtual_size(&dir.join(href)), tiny.capacity[0]);
    std::fs::copy(tiny.part(DISK2), dir.join(DISK2)).unwrap();
    let mut values = tiny.values([size(&dir.join(href)), size(&dir.join(DISK2))]);
    values.extend([
        ("DISK1_HREF", href.to_string()),
        ("DISK1_FORMAT", uri.to_string()),
    ]);
    write_descriptor(&dir, "tiny-source.ovf", "source-formats.ovf", &values);
    write_manifest(
        &dir,
        "tiny-source.mf",
        "SHA256",
        &["tiny-source.ovf", href, DISK2],
    );

    let plan = env.json(&["import", arg(&dir), "--dry-run"]);
    assert_eq!(plan["disks"][0]["source"]["format"], word);
    env.vmd_ok(&["import", arg(&dir)]);
    let show = env.json(&["show", "tiny-source"]);
    assert_eq!(show["source"]["manifest"], "SHA256");
    assert_disks(&env, &show, "qcow2", &tiny_disks(&tiny));
    assert_same_content(&disk_path(&show, 0), "qcow2", &disk_path(&reference, 0));
}

#[test]
fn import_monolithic_sparse_vmdk_source_matches_plain_import() {
    import_source_format(
        "sparse",
        "vmdk",
        &["-o", "subformat=monolithicSparse"],
        "tiny-disk1-sparse.vmdk",
        "http://www.vmware.com/interfaces/specifications/vmdk.html#sparse",
        "vmdk-monolithicSparse",
    );
}

#[test]
fn import_raw_image_source_matches_plain_import() {
    import_source_format(
        "rawsrc",
        "raw",
        &[],
        "tiny-disk1.img",
        "http://en.wikipedia.org/wiki/Byte",
        "raw",
    );
}

#[test]
fn import_qcow2_image_source_matches_plain_import() {
    import_source_format(
        "qcow2src",
        "qcow2",
        &[],
        "tiny-disk1.qcow2",
        "http://www.gnome.org/~markmc/qcow-image-format.html",
        "qcow2",
    );
}
