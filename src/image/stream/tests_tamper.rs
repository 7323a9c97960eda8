//! Tampered metadata: VMware-layout streams (built with the test builder) whose grain tables,
//! directory, footer or marker order lie, and monolithicSparse files whose tables point
//! backwards, alias grains or reach past the capacity.

use super::tests::{qemu, qemu_img, Builder, GRAIN};
use super::tests_hostile::{decode, patch, qemu_image};
use super::*;
use crate::image::test_support::TempDir;

/// A qemu-img monolithicSparse image of the 4 MiB pattern and that pattern, or `None`.
fn qemu_sparse(test: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    qemu_image(test, 4 << 20, "subformat=monolithicSparse")
}
/// Offset of the first grain table entry of a monolithicSparse file, and the entries.
fn first_grain_table(file: &[u8]) -> (usize, Vec<u32>) {
    let gd = u64::from_le_bytes(file[56..64].try_into().unwrap()) as usize * 512;
    let gt = u32::from_le_bytes(file[gd..gd + 4].try_into().unwrap()) as usize * 512;
    let entries = file[gt..gt + 2048]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (gt, entries)
}
/// A VMware-layout stream of 1 MiB with grains 0 and 2; `gt_fix` may tamper with the grain
/// table, `tail` writes what follows the grain directory.
fn vmware_parts(gt_fix: impl Fn(&mut [u32; 512]), tail: impl Fn(&mut Builder, u32)) -> Vec<u8> {
    let mut b = Builder::new(2048);
    let mut gt = [0u32; 512];
    gt[0] = b.grain(0, &[1u8; GRAIN]);
    gt[2] = b.grain(256, &[2u8; GRAIN]);
    gt_fix(&mut gt);
    let gt_sector = b.table(1, &gt);
    let gd_sector = b.table(2, &[gt_sector]);
    tail(&mut b, gd_sector);
    b.out
}

/// Like [`vmware_parts`], but the grain directory names sector `gd_entry` for its table.
fn vmware_with_directory_entry(gd_entry: u32) -> Vec<u8> {
    let mut b = Builder::new(2048);
    let mut gt = [0u32; 512];
    gt[0] = b.grain(0, &[1u8; GRAIN]);
    b.table(1, &gt);
    let gd_sector = b.table(2, &[gd_entry]);
    complete(&mut b, gd_sector);
    b.out
}

fn complete(b: &mut Builder, gd_sector: u32) {
    b.footer(gd_sector.into());
    b.eos();
}

#[test]
fn decode_vmdk_vmware_layout_tampering_is_metadata_error() {
    let ok = vmware_parts(|_| {}, complete);
    assert_eq!(decode(&ok, 1 << 20).unwrap()[2 * GRAIN], 2);

    let no_eos = &ok[..ok.len() - 512];
    assert!(matches!(
        decode(no_eos, 1 << 20),
        Err(DecodeError::Truncated { .. })
    ));

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            vmware_parts(|gt| gt[2] += 1, complete),
            "grain tables put grain 2",
        ),
        (
            vmware_parts(|gt| gt[5] = gt[2], complete),
            "grain tables put grain 5",
        ),
        (
            vmware_parts(|gt| gt[0] = 0, complete),
            "grain tables put grain 0 at sector 0",
        ),
        (
            vmware_with_directory_entry(5),
            "names sector 5, where the stream has no grain table",
        ),
        (
            vmware_with_directory_entry(0),
            "grain tables put grain 0 at sector 0",
        ),
        (
            vmware_parts(
                |_| {},
                |b, gd| {
                    b.footer((gd + 1).into());
                    b.eos()
                },
            ),
            "footer locates",
        ),
        (
            vmware_parts(|_| {}, |b, _| b.eos()),
            "end-of-stream marker before the footer",
        ),
        (
            vmware_parts(
                |_| {},
                |b, gd| {
                    b.grain(0, &[3u8; GRAIN]);
                    complete(b, gd)
                },
            ),
            "grain after",
        ),
        (
            vmware_parts(
                |_| {},
                |b, gd| {
                    complete(b, gd);
                    b.out.push(7)
                },
            ),
            "non-zero data",
        ),
        (
            vmware_parts(
                |_| {},
                |b, gd| {
                    b.footer(gd.into());
                    b.table(1, &[0; 512]);
                    b.eos()
                },
            ),
            "after the footer",
        ),
    ];
    for (stream, needle) in cases {
        let err = decode(&stream, 1 << 20).unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "expected {needle:?}: {err}"
        );
    }
}

#[test]
fn decode_vmdk_repeated_grain_is_error_before_second_write() {
    // CheckedSink panics on a second write of the same bytes, so the check must come first.
    let mut b = Builder::new(2048);
    b.grain(0, &[1u8; GRAIN]);
    b.grain(0, &[2u8; GRAIN]);
    let err = decode(&b.out, 1 << 20).unwrap_err();
    assert!(
        err.to_string().contains("repeats the grain at sector"),
        "{err}"
    );
}

#[test]
fn decode_vmdk_footer_describing_another_disk_is_header_error() {
    let stream = vmware_parts(
        |_| {},
        |b, gd| {
            b.capacity = 4096;
            complete(b, gd)
        },
    );
    let err = decode(&stream, 1 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Header {
                field: "capacity",
                ..
            }
        ),
        "{err}"
    );
}
#[test]
fn decode_vmdk_sparse_grain_behind_metadata_is_not_streamable() {
    let Some((file, _)) = qemu_sparse("decode_vmdk_sparse_grain_behind_metadata_is_not_streamable")
    else {
        return;
    };
    let (gt, entries) = first_grain_table(&file);
    let data = entries.iter().position(|&e| e != 0).unwrap();
    let mut bad = file.clone();
    patch(&mut bad, gt + 4 * data, &((gt / 512) as u32).to_le_bytes());
    let err = decode(&bad, 4 << 20).unwrap_err();
    assert!(matches!(err, DecodeError::NotStreamable { .. }), "{err}");
    assert!(err.to_string().contains("not in streaming order"), "{err}");

    // Two grains sharing one cluster of the file.
    let mut aliased = file.clone();
    let other = entries.iter().rposition(|&e| e != 0).unwrap();
    patch(&mut aliased, gt + 4 * other, &entries[data].to_le_bytes());
    let err = decode(&aliased, 4 << 20).unwrap_err();
    assert!(
        err.to_string().contains("overlapping the previous grain"),
        "{err}"
    );
}

#[test]
fn decode_vmdk_sparse_grain_directory_pointing_backwards_is_not_streamable() {
    let Some((mut file, _)) =
        qemu_sparse("decode_vmdk_sparse_grain_directory_pointing_backwards_is_not_streamable")
    else {
        return;
    };
    let gd = u64::from_le_bytes(file[56..64].try_into().unwrap()) as usize * 512;
    patch(&mut file, gd, &1u32.to_le_bytes());
    let err = decode(&file, 4 << 20).unwrap_err();
    assert!(
        err.to_string()
            .contains("grain table 0 at byte 512 lies behind"),
        "{err}"
    );
}

#[test]
fn decode_vmdk_sparse_truncated_mid_grain_is_error() {
    let Some((file, _)) = qemu_sparse("decode_vmdk_sparse_truncated_mid_grain_is_error") else {
        return;
    };
    let (_, entries) = first_grain_table(&file);
    let last = *entries.iter().max().unwrap() as usize * 512;
    let err = decode(&file[..last + 1000], 4 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                what: "a grain",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn decode_vmdk_sparse_table_entry_beyond_capacity_is_error() {
    let Some((mut file, _)) =
        qemu_sparse("decode_vmdk_sparse_table_entry_beyond_capacity_is_error")
    else {
        return;
    };
    let (gt, _) = first_grain_table(&file);
    patch(&mut file, gt + 4 * 100, &9999u32.to_le_bytes()); // 4 MiB = 64 grains
    let err = decode(&file, 4 << 20).unwrap_err();
    assert!(err.to_string().contains("beyond the capacity"), "{err}");
}

#[test]
fn decode_vmdk_sparse_zero_grain_entry_reads_zero_like_qemu() {
    let Some(qemu) = qemu("decode_vmdk_sparse_zero_grain_entry_reads_zero_like_qemu") else {
        return;
    };
    let dir = TempDir::new("hostile-zero-grain");
    let Some((mut file, _)) =
        qemu_sparse("decode_vmdk_sparse_zero_grain_entry_reads_zero_like_qemu")
    else {
        return;
    };
    let (gt, entries) = first_grain_table(&file);
    let data = entries.iter().position(|&e| e != 0).unwrap();
    patch(&mut file, 8, &7u32.to_le_bytes()); // + zeroed-grain flag
    patch(&mut file, gt + 4 * data, &1u32.to_le_bytes());
    let vmdk = dir.path().join("patched.vmdk");
    let raw = dir.path().join("qemu.raw");
    std::fs::write(&vmdk, &file).unwrap();
    let (v, r) = (vmdk.to_str().unwrap(), raw.to_str().unwrap());
    qemu_img(&qemu, &["convert", "-f", "vmdk", "-O", "raw", v, r]);
    assert!(decode(&file, 4 << 20).unwrap() == std::fs::read(&raw).unwrap());
}
