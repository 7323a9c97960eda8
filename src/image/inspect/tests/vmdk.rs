//! VMDK sparse header, descriptor and footer cases (oslo and QEMU iotest 059 style).

use super::super::fixtures::*;
use super::{reject, run};
use crate::image::inspect::*;

#[test]
fn inspect_vmdk_monolithic_sparse_is_accepted() {
    let info = run(&vmdk_sparse(2048, &sparse_descriptor(2048))).unwrap();
    assert_eq!(info.format, ImageFormat::Vmdk);
    assert_eq!(info.vmdk_subformat, Some(VmdkSubformat::MonolithicSparse));
    assert_eq!(info.virtual_size, 2048 * 512);
    assert_eq!(
        info.vmdk,
        Some(VmdkDetails {
            subformat: VmdkSubformat::MonolithicSparse,
            version: 1,
            grain_sectors: 128,
            footer: false
        })
    );
}

#[test]
fn inspect_vmdk_stream_optimized_with_footer_is_accepted() {
    let info = run(&vmdk_stream(4096, &stream_descriptor(4096))).unwrap();
    assert_eq!(info.vmdk_subformat, Some(VmdkSubformat::StreamOptimized));
    assert_eq!(info.virtual_size, 4096 * 512);
    assert!(info.vmdk.unwrap().footer);
}

#[test]
fn inspect_vmdk_monolithic_flat_create_type_is_rejected() {
    let desc = descriptor("monolithicFlat", "RW 2048 SPARSE \"disk.vmdk\"");
    let err = reject(&vmdk_sparse(2048, &desc));
    assert_eq!(
        err.to_string(),
        "vmdk createType \"monolithicFlat\" is not allowed (only monolithicSparse and \
         streamOptimized)"
    );
}

#[test]
fn inspect_vmdk_flat_extent_naming_shadow_is_rejected() {
    let desc = descriptor("monolithicSparse", "RW 2048 FLAT \"/etc/shadow\" 0");
    let err = reject(&vmdk_sparse(2048, &desc));
    assert!(
        matches!(err, ImageError::VmdkDescriptor { line: 10, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("extent type \"FLAT\" is not allowed"),
        "{err}"
    );
}

#[test]
fn inspect_vmdk_sparse_extent_with_path_is_rejected() {
    for name in ["/etc/shadow", "../x.vmdk", "json:{}", "a\\b", "..", ""] {
        let desc = descriptor("monolithicSparse", &format!("RW 2048 SPARSE \"{name}\""));
        let err = reject(&vmdk_sparse(2048, &desc));
        assert!(
            err.to_string().contains("is not a plain file name"),
            "{name}: {err}"
        );
    }
}

#[test]
fn inspect_vmdk_unquoted_extent_is_rejected() {
    let desc = descriptor("monolithicSparse", "rw 2048 /etc/hosts");
    assert!(matches!(
        reject(&vmdk_sparse(2048, &desc)),
        ImageError::VmdkDescriptor { .. }
    ));
    let desc = descriptor("monolithicSparse", "RW 2048 SPARSE disk.vmdk");
    assert!(reject(&vmdk_sparse(2048, &desc))
        .to_string()
        .contains("no quoted file name"));
}

#[test]
fn inspect_vmdk_descriptor_offset_poked_is_rejected() {
    let mut b = vmdk_sparse(2048, &sparse_descriptor(2048));
    poke_le64(&mut b, 0x1c, 2);
    assert!(reject(&b)
        .to_string()
        .contains("descriptorOffset is sector 2"));
}

#[test]
fn inspect_vmdk_descriptor_size_2mib_is_rejected() {
    let mut b = vmdk_sparse(2048, &sparse_descriptor(2048));
    poke_le64(&mut b, 36, (2 << 20) / 512);
    assert!(reject(&b)
        .to_string()
        .contains("descriptorSize 4096 sectors"));
}

#[test]
fn inspect_vmdk_parent_cid_set_is_rejected() {
    let desc = sparse_descriptor(2048).replace("parentCID=ffffffff", "parentCID=5e3c1a2b");
    let err = reject(&vmdk_sparse(2048, &desc));
    assert!(matches!(
        err,
        ImageError::BackingFile {
            format: ImageFormat::Vmdk,
            ..
        }
    ));
}

#[test]
fn inspect_vmdk_parent_file_name_hint_even_in_a_comment_is_rejected() {
    let desc = format!(
        "{}# parentFileNameHint=\"/etc/shadow\"\n",
        sparse_descriptor(2048)
    );
    let err = reject(&vmdk_sparse(2048, &desc));
    assert!(err.to_string().contains("parentFileNameHint"), "{err}");
}

#[test]
fn inspect_vmdk_two_extents_are_rejected() {
    let desc = descriptor(
        "monolithicSparse",
        "RW 1024 SPARSE \"a.vmdk\"\nRW 1024 SPARSE \"b.vmdk\"",
    );
    let err = reject(&vmdk_sparse(2048, &desc));
    assert!(err.to_string().contains("only one extent"), "{err}");
}

#[test]
fn inspect_vmdk_no_extent_is_rejected() {
    let desc = descriptor("monolithicSparse", "");
    assert!(reject(&vmdk_sparse(2048, &desc))
        .to_string()
        .contains("no extent line"));
}

#[test]
fn inspect_vmdk_garbage_descriptor_line_is_rejected() {
    let desc = format!("{}this is not allowed\n", sparse_descriptor(2048));
    let err = reject(&vmdk_sparse(2048, &desc));
    assert!(
        err.to_string()
            .contains("is not a comment, key=value or extent line"),
        "{err}"
    );
}

#[test]
fn inspect_vmdk_control_bytes_in_descriptor_are_rejected() {
    let desc = format!("{}ddb.x = \"\x1b[2J\"\n", sparse_descriptor(2048));
    assert!(reject(&vmdk_sparse(2048, &desc))
        .to_string()
        .contains("control byte 0x1b"));
}

#[test]
fn inspect_vmdk_text_hidden_after_nul_is_rejected() {
    let mut b = vmdk_sparse(2048, &sparse_descriptor(2048));
    poke(&mut b, 512 * 10, b"RW 2048 FLAT \"/etc/shadow\" 0");
    assert!(reject(&b)
        .to_string()
        .contains("data after the descriptor text"));
}

#[test]
fn inspect_vmdk_descriptor_without_nul_is_rejected() {
    let mut b = vmdk_sparse(2048, &sparse_descriptor(2048));
    poke_le64(&mut b, 36, 1);
    let filler = format!("{}{}", sparse_descriptor(2048), "#".repeat(512));
    poke(&mut b, 512, &filler.as_bytes()[..512]);
    assert!(reject(&b).to_string().contains("without a terminating NUL"));
}

#[test]
fn inspect_vmdk_grain_size_0_and_2_pow_63_are_rejected() {
    for grain in [0, 1 << 63, 96, 256] {
        let mut b = vmdk_sparse(2048, &sparse_descriptor(2048));
        poke_le64(&mut b, 20, grain);
        assert!(reject(&b).to_string().contains("grainSize"), "{grain}");
    }
}

#[test]
fn inspect_vmdk_capacity_0_is_rejected() {
    let b = vmdk_sparse(0, &sparse_descriptor(0));
    assert!(reject(&b).to_string().contains("capacity is 0"));
}

#[test]
fn inspect_vmdk_huge_capacity_is_rejected() {
    let cases = [
        (1u64 << 62, "capacity 4611686018427387904 sectors overflows"),
        (
            1 << 50,
            "grain directory of 17179869184 entries is above the limit",
        ),
        (1 << 40, "vmdk grain directory needs bytes"),
    ];
    for (cap, message) in cases {
        let err = reject(&vmdk_sparse(cap, &sparse_descriptor(cap)));
        assert!(err.to_string().contains(message), "{err}");
    }
}

#[test]
fn inspect_vmdk_extent_size_mismatch_is_rejected() {
    let err = reject(&vmdk_sparse(4096, &sparse_descriptor(2048)));
    assert!(
        err.to_string()
            .contains("does not match the header capacity"),
        "{err}"
    );
}

#[test]
fn inspect_vmdk_stream_type_without_compression_is_rejected() {
    let err = reject(&vmdk_sparse(2048, &stream_descriptor(2048)));
    assert!(
        err.to_string()
            .contains("does not match compressAlgorithm 0"),
        "{err}"
    );
}

#[test]
fn inspect_vmdk_versions_0_and_4_are_rejected() {
    for v in [0, 4] {
        let mut b = vmdk_sparse(2048, &sparse_descriptor(2048));
        poke_le32(&mut b, 4, v);
        assert!(reject(&b).to_string().contains(&format!("version {v}")));
    }
}

#[test]
fn inspect_vmdk_damaged_newline_bytes_are_rejected() {
    let mut b = vmdk_sparse(2048, &sparse_descriptor(2048));
    poke(&mut b, 73, b"\n \n\n");
    assert!(reject(&b).to_string().contains("newline check bytes"));
}

#[test]
fn inspect_vmdk_footer_with_bad_magic_is_rejected() {
    let mut b = vmdk_stream(2048, &stream_descriptor(2048));
    let at = stream_footer_at(&b);
    poke(&mut b, at, b"XXXX");
    assert!(reject(&b).to_string().contains("not a footer marker"));
}

#[test]
fn inspect_vmdk_footer_changing_capacity_is_rejected() {
    let mut b = vmdk_stream(2048, &stream_descriptor(2048));
    let at = stream_footer_at(&b);
    poke_le64(&mut b, at + 12, 1 << 40);
    assert!(reject(&b)
        .to_string()
        .contains("footer (capacity 1099511627776"));
}

#[test]
fn inspect_vmdk_footer_gd_at_end_again_is_rejected() {
    let mut b = vmdk_stream(2048, &stream_descriptor(2048));
    let at = stream_footer_at(&b);
    poke_le64(&mut b, at + 56, u64::MAX);
    assert!(reject(&b)
        .to_string()
        .contains("footer gdOffset is GD_AT_END"));
}

#[test]
fn inspect_vmdk_footer_cut_off_is_rejected() {
    let b = vmdk_stream(2048, &stream_descriptor(2048));
    let err = reject(&b[..b.len() - 512]);
    assert!(err.to_string().contains("not a footer marker"), "{err}");
}

#[test]
fn inspect_vmdk_gd_at_end_in_sparse_is_rejected() {
    let mut b = vmdk_sparse(2048, &sparse_descriptor(2048));
    poke_le64(&mut b, 56, u64::MAX);
    assert!(reject(&b).to_string().contains("not streamOptimized"));
}

#[test]
fn inspect_vmdk_truncated_is_an_error_not_a_panic() {
    let b = vmdk_sparse(2048, &sparse_descriptor(2048));
    for cut in [4, 300, 511, 600, 512 * 21] {
        let err = reject(&b[..cut]);
        assert!(
            matches!(
                err,
                ImageError::Truncated { .. } | ImageError::InvalidHeader { .. }
            ),
            "{cut}: {err}"
        );
    }
}
