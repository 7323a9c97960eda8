//! qcow2 header cases: each field QEMU trusts, poked iotest-080 style.

use super::super::fixtures::*;
use super::{reject, run, GIB};
use crate::image::inspect::*;

#[test]
fn inspect_qcow2_v3_is_accepted_with_its_size() {
    let info = run(&qcow2(3, GIB)).unwrap();
    assert_eq!(info.format, ImageFormat::Qcow2);
    assert_eq!(info.virtual_size, GIB);
    assert_eq!(
        info.qcow2,
        Some(Qcow2Details {
            version: 3,
            cluster_bits: 16,
            dirty: false,
            mapped_bytes: 0,
        })
    );
    assert_eq!(info.vmdk_subformat, None);
}

#[test]
fn inspect_qcow2_v2_is_accepted() {
    let info = run(&qcow2(2, 10 * GIB)).unwrap();
    assert_eq!(info.qcow2.unwrap().version, 2);
    assert_eq!(info.virtual_size, 10 * GIB);
}

#[test]
fn inspect_qcow2_backing_file_is_rejected_naming_it() {
    let mut b = qcow2(3, GIB);
    poke(&mut b, 0x200, b"/etc/shadow");
    poke_be64(&mut b, 8, 0x200);
    poke_be32(&mut b, 16, 11);
    let err = reject(&b);
    assert!(matches!(err, ImageError::BackingFile { .. }));
    assert_eq!(
        err.to_string(),
        "qcow2 image has a backing file (backing_file_offset 0x200, backing_file_size 11, \
         names \"/etc/shadow\")"
    );
}

#[test]
fn inspect_qcow2_backing_file_size_alone_is_rejected() {
    let mut b = qcow2(2, GIB);
    poke_be32(&mut b, 16, 5);
    assert!(matches!(reject(&b), ImageError::BackingFile { .. }));
}

#[test]
fn inspect_qcow2_data_file_bit_is_rejected() {
    let mut b = qcow2(3, GIB);
    poke_be64(&mut b, 72, 1 << 2);
    let err = reject(&b);
    assert!(matches!(err, ImageError::DataFile { .. }));
    assert!(err.to_string().contains("external data file"), "{err}");
}

#[test]
fn inspect_qcow2_data_file_extension_is_rejected() {
    let b = qcow2_with_extensions(qcow2(3, GIB), &[(0x4441_5441, b"/etc/hosts")]);
    assert!(matches!(reject(&b), ImageError::DataFile { .. }));
}

#[test]
fn inspect_qcow2_backing_format_extension_is_rejected() {
    let b = qcow2_with_extensions(qcow2(3, GIB), &[(0xe279_2aca, b"raw")]);
    assert!(matches!(reject(&b), ImageError::BackingFile { .. }));
}

#[test]
fn inspect_qcow2_luks_extension_is_rejected() {
    let b = qcow2_with_extensions(qcow2(3, GIB), &[(0x0537_be77, &[0u8; 16])]);
    assert!(matches!(reject(&b), ImageError::Encrypted { .. }));
}

#[test]
fn inspect_qcow2_unknown_extensions_are_walked_and_accepted() {
    let b = qcow2_with_extensions(
        qcow2(3, GIB),
        &[(0x6803_f857, &[0u8; 48]), (0x1234_5678, b"abc")],
    );
    assert_eq!(run(&b).unwrap().virtual_size, GIB);
}

#[test]
fn inspect_qcow2_extension_past_cluster_is_rejected() {
    let mut b = qcow2(3, GIB);
    poke_be32(&mut b, 112, 0x1234_5678);
    poke_be32(&mut b, 116, 0xffff_fff0);
    let err = reject(&b);
    assert!(
        err.to_string().contains("runs past the first cluster"),
        "{err}"
    );
}

#[test]
fn inspect_qcow2_endless_extensions_are_rejected() {
    let exts: Vec<(u32, &[u8])> = (0..65).map(|i| (0x100 + i, &b""[..])).collect();
    let err = reject(&qcow2_with_extensions(qcow2(3, GIB), &exts));
    assert!(
        err.to_string().contains("more than 64 header extensions"),
        "{err}"
    );
}

#[test]
fn inspect_qcow2_versions_1_and_4_are_rejected() {
    for version in [1, 4] {
        let mut b = qcow2(3, GIB);
        poke_be32(&mut b, 4, version);
        let err = reject(&b);
        assert_eq!(
            err.to_string(),
            format!("qcow2 header: version {version} is not supported (only 2 and 3)")
        );
    }
}

#[test]
fn inspect_qcow2_unknown_incompatible_bits_are_rejected() {
    for bit in [5, 31, 63] {
        let mut b = qcow2(3, GIB);
        poke_be64(&mut b, 72, 1 << bit);
        let err = reject(&b);
        assert!(
            err.to_string()
                .contains("unknown incompatible feature bits"),
            "{err}"
        );
    }
}

#[test]
fn inspect_qcow2_corrupt_bit_is_rejected() {
    let mut b = qcow2(3, GIB);
    poke_be64(&mut b, 72, 1 << 1);
    assert!(reject(&b).to_string().contains("marked corrupt"));
}

#[test]
fn inspect_qcow2_dirty_bit_is_accepted_and_reported() {
    let mut b = qcow2(3, GIB);
    poke_be64(&mut b, 72, 1);
    assert!(run(&b).unwrap().qcow2.unwrap().dirty);
}

#[test]
fn inspect_qcow2_encrypted_is_rejected() {
    for method in [1, 2] {
        let mut b = qcow2(2, GIB);
        poke_be32(&mut b, 32, method);
        let err = reject(&b);
        assert_eq!(
            err.to_string(),
            format!("qcow2 image is encrypted (crypt_method {method})")
        );
    }
}

#[test]
fn inspect_qcow2_huge_l1_size_is_rejected() {
    let mut b = qcow2(3, GIB);
    poke_be32(&mut b, 36, 0xffff_ffff);
    assert!(reject(&b)
        .to_string()
        .contains("l1_size 4294967295 is above the limit"));
}

#[test]
fn inspect_qcow2_l1_too_small_for_size_is_rejected() {
    let mut b = qcow2(3, GIB);
    poke_be64(&mut b, 24, 100 * GIB);
    assert!(reject(&b)
        .to_string()
        .contains("is too small for the virtual size"));
}

#[test]
fn inspect_qcow2_l1_table_past_end_is_truncated() {
    let mut b = qcow2(3, GIB);
    poke_be64(&mut b, 40, 1 << 40);
    assert!(matches!(
        reject(&b),
        ImageError::Truncated {
            what: "qcow2 L1 table",
            ..
        }
    ));
}

#[test]
fn inspect_qcow2_size_above_cap_is_rejected() {
    // 1 PiB with a large enough L1 table (2^21 entries of 512 MiB each) is otherwise valid.
    let size = 1u64 << 50;
    let mut b = qcow2(3, GIB);
    b.resize(3 * CLUSTER + (size >> 29) as usize * 8, 0);
    poke_be64(&mut b, 24, size);
    poke_be32(&mut b, 36, (size >> 29) as u32);
    let err = reject(&b);
    assert!(
        matches!(err, ImageError::TooLarge { size: s, limit } if s == size && limit == MAX_VIRTUAL_SIZE)
    );
}

#[test]
fn inspect_qcow2_size_u64_max_is_rejected() {
    let mut b = qcow2(3, GIB);
    poke_be64(&mut b, 24, u64::MAX);
    assert!(reject(&b).to_string().contains("is too big"));
}

#[test]
fn inspect_qcow2_cluster_bits_out_of_range_are_rejected() {
    for bits in [0, 8, 22, 0xffff_ffff] {
        let mut b = qcow2(3, GIB);
        poke_be32(&mut b, 20, bits);
        assert!(reject(&b).to_string().contains("cluster_bits"));
    }
}

#[test]
fn inspect_qcow2_bad_header_length_is_rejected() {
    for len in [0, 72, 108, 0xffff_ffff] {
        let mut b = qcow2(3, GIB);
        poke_be32(&mut b, 100, len);
        assert!(reject(&b).to_string().contains("header_length"), "{len}");
    }
}

#[test]
fn inspect_qcow2_huge_refcount_table_is_rejected() {
    let mut b = qcow2(3, GIB);
    poke_be32(&mut b, 56, 0xffff_ffff);
    assert!(reject(&b).to_string().contains("refcount table"));
}

#[test]
fn inspect_qcow2_many_snapshots_are_rejected() {
    let mut b = qcow2(3, GIB);
    poke_be32(&mut b, 60, 0xffff_ffff);
    assert!(reject(&b).to_string().contains("nb_snapshots"));
}

#[test]
fn inspect_qcow2_compression_type_without_bit_is_rejected() {
    let mut b = qcow2(3, GIB);
    b[104] = 1;
    assert!(reject(&b).to_string().contains("compression_type 1"));
}

#[test]
fn inspect_qcow2_truncated_header_is_an_error_not_a_panic() {
    let b = qcow2(3, GIB);
    for cut in [4, 50, 71, 80, 103] {
        let err = reject(&b[..cut]);
        assert!(matches!(err, ImageError::Truncated { .. }), "{cut}: {err}");
    }
}
