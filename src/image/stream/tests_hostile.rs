//! Hostile VMDKs, built by patching real qemu-img output: headers, grain markers, zlib data,
//! truncation, trailing data, random corruption. Each must fail with the error that names its
//! problem, never yield a short or wrong disk, never panic, and never make the decoder write a
//! guest byte twice or out of bounds.

use std::io;

use super::tests::{pattern, qemu, qemu_vmdk, Builder, GRAIN};
use super::*;
use crate::image::test_support::TempDir;

/// In-memory sink that enforces the sink contract: in bounds, each byte written once.
pub(super) struct CheckedSink {
    data: Vec<u8>,
    written: Vec<bool>,
}

impl CheckedSink {
    pub(super) fn new(size: usize) -> Self {
        Self {
            data: vec![0; size],
            written: vec![false; size],
        }
    }
}

impl DiskSink for CheckedSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let start = offset as usize;
        let end = start + data.len();
        if end > self.data.len() {
            // A header may declare a bigger disk than the sink; real sinks refuse too.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "beyond the disk",
            ));
        }
        assert!(
            !self.written[start..end].contains(&true),
            "byte written twice"
        );
        self.written[start..end].fill(true);
        self.data[start..end].copy_from_slice(data);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn decode(input: &[u8], size: usize) -> Result<Vec<u8>, DecodeError> {
    let mut sink = CheckedSink::new(size);
    decode_vmdk(input, &mut sink, &StreamLimits::new(1 << 30), &mut |_| {})?;
    Ok(sink.data)
}

pub(super) fn patch(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}
/// A qemu-img streamOptimized image of the 4 MiB pattern and that pattern, or `None`
/// without qemu-img (the test skips).
fn qemu_stream(test: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    qemu_image(test, 4 << 20, "subformat=streamOptimized")
}

pub(super) fn qemu_image(test: &str, size: usize, options: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let qemu = qemu(test)?;
    let dir = TempDir::new("hostile");
    let disk = pattern(size);
    let (_, vmdk) = qemu_vmdk(&qemu, &dir, &disk, options);
    Some((std::fs::read(vmdk).unwrap(), disk))
}
/// Byte offsets of the grain markers of a streamOptimized file, with their data sizes.
fn grain_markers(file: &[u8]) -> Vec<(usize, u32)> {
    let mut at = u64::from_le_bytes(file[64..72].try_into().unwrap()) as usize * 512;
    let mut found = Vec::new();
    while at + 12 <= file.len() {
        let size = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap());
        if size == 0 {
            break;
        }
        found.push((at, size));
        at += (12 + size as usize).next_multiple_of(512);
    }
    found
}
#[test]
fn decode_vmdk_absurd_capacity_is_limit_error() {
    let Some((mut file, _)) = qemu_stream("decode_vmdk_absurd_capacity_is_limit_error") else {
        return;
    };
    patch(&mut file, 12, &(1u64 << 40).to_le_bytes());
    let err = decode(&file, 4 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Limit {
                what: "virtual size in bytes",
                ..
            }
        ),
        "{err}"
    );
    patch(&mut file, 12, &u64::MAX.to_le_bytes());
    assert!(matches!(
        decode(&file, 1).unwrap_err(),
        DecodeError::Limit { .. }
    ));
}

#[test]
fn decode_vmdk_tiny_grains_over_grain_limit_is_limit_error() {
    let Some((mut file, _)) =
        qemu_stream("decode_vmdk_tiny_grains_over_grain_limit_is_limit_error")
    else {
        return;
    };
    patch(&mut file, 20, &8u64.to_le_bytes());
    let limits = StreamLimits {
        max_virtual_size: 1 << 30,
        max_grains: 100,
    };
    let err = decode_vmdk(&file[..], &mut CheckedSink::new(0), &limits, &mut |_| {});
    let err = err.unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Limit {
                what: "number of grains",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn decode_vmdk_bad_header_fields_are_rejected_by_name() {
    let Some((file, _)) = qemu_stream("decode_vmdk_bad_header_fields_are_rejected_by_name") else {
        return;
    };
    let cases: &[(usize, &[u8], &str)] = &[
        (4, &4u32.to_le_bytes(), "version"),
        (8, &0x3_0013u32.to_le_bytes(), "flags"),
        (8, &0x1_0003u32.to_le_bytes(), "flags"),
        (12, &0u64.to_le_bytes(), "capacity"),
        (20, &0u64.to_le_bytes(), "grainSize"),
        (20, &96u64.to_le_bytes(), "grainSize"),
        (20, &4096u64.to_le_bytes(), "grainSize"),
        (28, &0u64.to_le_bytes(), "descriptorOffset"),
        (36, &4096u64.to_le_bytes(), "descriptorSize"),
        (44, &0u32.to_le_bytes(), "numGTEsPerGT"),
        (44, &513u32.to_le_bytes(), "numGTEsPerGT"),
        (56, &(u64::MAX - 1).to_le_bytes(), "gdOffset"),
        (75, b"\n", "newline check bytes"),
        (77, &2u16.to_le_bytes(), "compressAlgorithm"),
    ];
    for &(at, bytes, field) in cases {
        let mut bad = file.clone();
        patch(&mut bad, at, bytes);
        match decode(&bad, 4 << 20) {
            Err(DecodeError::Header { field: f, .. }) if f == field => {}
            other => panic!("patch at {at}: expected {field} error, got {other:?}"),
        }
    }
}

#[test]
fn decode_vmdk_non_vmdk_and_contradicting_descriptor_are_rejected() {
    let Some((file, _)) =
        qemu_stream("decode_vmdk_non_vmdk_and_contradicting_descriptor_are_rejected")
    else {
        return;
    };
    let mut qcow = file.clone();
    patch(&mut qcow, 0, b"QFI\xfb");
    assert!(matches!(
        decode(&qcow, 4 << 20),
        Err(DecodeError::NotVmdk { found: 0x5146_49fb })
    ));

    let mut lying = file.clone();
    let at = lying
        .windows(15)
        .position(|w| w == b"streamOptimized")
        .unwrap();
    patch(&mut lying, at, b"monolithicFlat\"");
    let err = decode(&lying, 4 << 20).unwrap_err();
    assert!(
        err.to_string().contains("createType \"monolithicFlat"),
        "{err}"
    );
}

#[test]
fn decode_vmdk_grain_lba_out_of_range_or_unaligned_is_grain_error() {
    let Some((file, _)) =
        qemu_stream("decode_vmdk_grain_lba_out_of_range_or_unaligned_is_grain_error")
    else {
        return;
    };
    let (first, _) = grain_markers(&file)[0];
    for (lba, needle) in [
        (8192u64, "beyond the capacity"),
        (1, "not a multiple"),
        (u64::MAX, ""),
    ] {
        let mut bad = file.clone();
        patch(&mut bad, first, &lba.to_le_bytes());
        let err = decode(&bad, 4 << 20).unwrap_err();
        assert!(
            matches!(err, DecodeError::Grain { .. }) && err.to_string().contains(needle),
            "{err}"
        );
    }
    let mut bad = file.clone();
    patch(&mut bad, first + 8, &(2 * GRAIN as u32 + 1).to_le_bytes());
    let err = decode(&bad, 4 << 20).unwrap_err();
    assert!(
        err.to_string().contains("exceeds twice the grain size"),
        "{err}"
    );
}

#[test]
fn decode_vmdk_grain_moved_to_another_lba_contradicts_grain_table() {
    // QEMU reads by grain table and ignores the marker's lba, so a moved grain would make
    // qemu-img and vmd see different disks.
    let Some((mut file, _)) =
        qemu_stream("decode_vmdk_grain_moved_to_another_lba_contradicts_grain_table")
    else {
        return;
    };
    let (first, _) = grain_markers(&file)[0];
    let lba = u64::from_le_bytes(file[first..first + 8].try_into().unwrap());
    patch(&mut file, first, &(lba + 2 * 128).to_le_bytes());
    let err = decode(&file, 4 << 20).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not the one the grain table names"),
        "{err}"
    );
}

#[test]
fn decode_vmdk_stream_truncated_anywhere_in_grains_is_error() {
    let Some((file, _)) = qemu_stream("decode_vmdk_stream_truncated_anywhere_in_grains_is_error")
    else {
        return;
    };
    let markers = grain_markers(&file);
    let (last, size) = *markers.last().unwrap();
    // Mid-marker, mid-data, and exactly at a marker boundary (a whole grain missing).
    for cut in [
        markers[0].0 + 5,
        markers[0].0 + 40,
        last + 12 + size as usize / 2,
        last,
    ] {
        let err = decode(&file[..cut], 4 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Truncated { .. } | DecodeError::MissingGrains { .. }
            ),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn decode_vmdk_corrupt_zlib_data_is_inflate_error() {
    let Some((mut file, _)) = qemu_stream("decode_vmdk_corrupt_zlib_data_is_inflate_error") else {
        return;
    };
    let (first, _) = grain_markers(&file)[0];
    patch(&mut file, first + 12, &[0xff; 8]);
    assert!(matches!(
        decode(&file, 4 << 20),
        Err(DecodeError::Inflate { .. })
    ));
}

#[test]
fn decode_vmdk_nonzero_data_after_end_of_stream_is_error_zeros_are_not() {
    let Some((mut file, disk)) =
        qemu_stream("decode_vmdk_nonzero_data_after_end_of_stream_is_error_zeros_are_not")
    else {
        return;
    };
    file.extend_from_slice(&[0u8; 4096]);
    assert!(decode(&file, 4 << 20).unwrap() == disk);
    file.push(1);
    let err = decode(&file, 4 << 20).unwrap_err();
    assert!(matches!(err, DecodeError::TrailingData { .. }), "{err}");
}

#[test]
fn decode_vmdk_zip_bomb_grain_stops_at_one_grain() {
    let mut b = Builder::new(1024);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    io::Write::write_all(&mut z, &vec![0u8; 64 << 20]).unwrap();
    let bomb = z.finish().unwrap();
    assert!(
        bomb.len() <= 2 * GRAIN,
        "bomb must pass the size check to test inflation"
    );
    b.grain_raw(0, &bomb);
    let err = decode(&b.out, 1024 * 512).unwrap_err();
    assert!(
        err.to_string()
            .contains("inflates to more than the grain size"),
        "{err}"
    );
}

#[test]
fn decode_vmdk_grain_inflating_short_is_error() {
    let mut b = Builder::new(1024);
    b.grain(0, &[1u8; 1000]);
    let err = decode(&b.out, 1024 * 512).unwrap_err();
    assert!(
        err.to_string()
            .contains("inflates to 1000 bytes instead of 65536"),
        "{err}"
    );
}
#[test]
fn decode_vmdk_random_corruption_never_panics_and_truncation_never_succeeds() {
    let vmware = Builder::stream(&pattern(1 << 20));
    let Some((qemu, _)) = qemu_image(
        "decode_vmdk_random_corruption_never_panics_and_truncation_never_succeeds",
        1 << 20,
        "subformat=streamOptimized",
    ) else {
        return;
    };
    let Some((sparse, _)) = qemu_image(
        "decode_vmdk_random_corruption_never_panics_and_truncation_never_succeeds",
        1 << 20,
        "subformat=monolithicSparse",
    ) else {
        return;
    };
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..600 {
        let base = [&vmware, &qemu, &sparse][round % 3];
        let mut input = base.clone();
        for _ in 0..1 + next() % 6 {
            // Mostly headers and tables, sometimes anywhere.
            let span = if next() % 2 == 0 {
                4096.min(input.len())
            } else {
                input.len()
            };
            let at = (next() % span as u64) as usize;
            input[at] = next() as u8;
        }
        let _ = decode(&input, 1 << 20);
        let cut = (next() % vmware.len() as u64) as usize;
        assert!(
            decode(&vmware[..cut], 1 << 20).is_err(),
            "truncated at {cut} decoded"
        );
    }
}
