//! Item 15: `ovf:compression="gzip"` disks that expand beyond their cap, are damaged, or
//! whose image goes on past its capacity; and multi-member gzip, which vmd decodes in full
//! (as `gzip -d` does) rather than stopping after the first member.

use crate::fixtures::{
    gzip_member, gzip_to, pattern, qemu_img, Disk, Trial, MIB, RAW, VMDK_STREAM,
};

/// A streamOptimized VMDK of 1 MiB of guest data, made by `qemu-img convert`, in the
/// trial's directory (not the package).
fn stream_vmdk(t: &Trial) -> std::path::PathBuf {
    let raw = t.env.dir().join("guest.raw");
    std::fs::write(&raw, pattern(MIB as usize, 3)).unwrap();
    let vmdk = t.env.dir().join("guest.vmdk");
    qemu_img(
        t.env.dir(),
        &[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            raw.to_str().unwrap(),
            vmdk.to_str().unwrap(),
        ],
    );
    vmdk
}

/// A package of one gzip-compressed raw `disk.img.gz` of 1 MiB holding `compressed`.
fn gzip_raw(tag: &str, compressed: &[u8]) -> Trial {
    let t = Trial::new(tag);
    std::fs::write(t.file("disk.img.gz"), compressed).unwrap();
    t.package(&[Disk::file("disk.img.gz", RAW, MIB).gzip()]);
    t
}

#[test]
fn import_gzip_bomb_far_beyond_cap_is_rejected_at_the_cap() {
    let t = Trial::new("gz-bomb");
    let vmdk = stream_vmdk(&t);
    // 200 MiB of zeros after the image: about 1000:1, far past capacity + 1/8 + 64 MiB.
    let cmd = format!("cat '{}'; head -c 200M /dev/zero", vmdk.display());
    gzip_to(&cmd, &t.file("disk.vmdk.gz"));
    let stored = std::fs::metadata(t.file("disk.vmdk.gz")).unwrap().len();
    assert!(stored < 2 * MIB, "{stored}");
    t.package(&[Disk::file("disk.vmdk.gz", VMDK_STREAM, MIB).gzip()]);
    t.assert_rejected(&["disk.vmdk.gz", "decompressed data exceeds the cap of"]);
}

#[test]
fn import_gzip_raw_longer_than_capacity_is_rejected() {
    let t = gzip_raw("gz-long", &gzip_member(&pattern(2 * MIB as usize, 4)));
    t.assert_rejected(&["disk.img.gz", "longer than its expected 1048576 bytes"]);
}

#[test]
fn import_gzip_vmdk_with_data_after_end_of_stream_is_rejected() {
    let t = Trial::new("gz-trail");
    let mut data = std::fs::read(stream_vmdk(&t)).unwrap();
    assert_eq!(data.len() % 512, 0);
    data.extend_from_slice(&[0u8; 512]); // an end-of-stream marker
    data.extend_from_slice(&pattern(64 << 10, 5));
    std::fs::write(t.file("disk.vmdk.gz"), gzip_member(&data)).unwrap();
    t.package(&[Disk::file("disk.vmdk.gz", VMDK_STREAM, MIB).gzip()]);
    t.assert_rejected(&[
        "disk.vmdk.gz",
        "non-zero data",
        "after its end-of-stream marker",
    ]);
}

#[test]
fn import_gzip_truncated_is_rejected() {
    let mut gz = gzip_member(&pattern(MIB as usize, 6));
    gz.truncate(gz.len() - 100);
    let t = gzip_raw("gz-trunc", &gz);
    t.assert_rejected(&["disk.img.gz", "cannot decompress"]);
}

#[test]
fn import_gzip_bad_crc_is_rejected() {
    let mut gz = gzip_member(&pattern(MIB as usize, 7));
    let crc = gz.len() - 8;
    gz[crc] ^= 0xff;
    let t = gzip_raw("gz-crc", &gz);
    t.assert_rejected(&["disk.img.gz", "cannot decompress"]);
}

#[test]
fn import_gzip_multi_member_beyond_capacity_is_rejected() {
    let mut gz = gzip_member(&pattern(MIB as usize, 8));
    gz.extend(gzip_member(&pattern(4096, 9)));
    let t = gzip_raw("gz-multi-long", &gz);
    t.assert_rejected(&["disk.img.gz", "longer than its expected 1048576 bytes"]);
}

#[test]
fn import_gzip_multi_member_decodes_every_member() {
    let data = pattern(MIB as usize, 10);
    let mut gz = gzip_member(&data[..300_000]);
    gz.extend(gzip_member(&data[300_000..]));
    let t = gzip_raw("gz-multi", &gz);
    let out = t.import(&["--format", "raw"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let show = t.env.json(&["show", "rejects"]);
    let volume = std::fs::read(show["disks"][0]["path"].as_str().unwrap()).unwrap();
    assert!(volume == data, "the volume is not both members' data");
}
