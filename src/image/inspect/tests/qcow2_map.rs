//! The qcow2 mapping walk (SECURITY.md item 42): what the image maps, shared clusters.

use super::super::fixtures::*;
use super::{reject, run, GIB};

const C: u64 = 1 << 16;

fn mapped(bytes: &[u8]) -> u64 {
    run(bytes).unwrap().qcow2.unwrap().mapped_bytes
}

#[test]
fn qcow2_map_one_data_cluster_maps_one_cluster() {
    assert_eq!(mapped(&qcow2_shared(GIB, 1)), C);
}

#[test]
fn qcow2_map_empty_image_maps_nothing() {
    assert_eq!(mapped(&qcow2(3, GIB)), 0);
}

// SECURITY.md item 42: one data cluster behind every L2 entry is refused, naming the reason.
#[test]
fn qcow2_map_shared_data_cluster_is_refused() {
    let err = reject(&qcow2_shared(GIB, 8192));
    assert_eq!(
        err.to_string(),
        "qcow2 header: host cluster 0x50000 is mapped more than once (guest cluster 1); \
         shared clusters are refused"
    );
}

// SECURITY.md item 42: two L1 entries naming one L2 table are refused too.
#[test]
fn qcow2_map_shared_l2_table_is_refused() {
    let mut b = qcow2_shared(GIB, 1);
    poke_be64(&mut b, 3 * CLUSTER + 8, 4 * C);
    let err = reject(&b);
    assert!(
        err.to_string().contains("(L2 table of L1 entry 1)"),
        "{err}"
    );
}

// SECURITY.md item 42: compressed clusters may share host clusters; each counts in full.
#[test]
fn qcow2_map_compressed_clusters_count_a_cluster_each() {
    let mut b = qcow2_shared(GIB, 0);
    for j in 0..100 {
        poke_be64(&mut b, 4 * CLUSTER + 8 * j, (1 << 62) | (5 * C));
    }
    assert_eq!(mapped(&b), 100 * C);
}

#[test]
fn qcow2_map_zero_flagged_cluster_maps_nothing() {
    let mut b = qcow2_shared(GIB, 1);
    poke_be64(&mut b, 4 * CLUSTER, (5 * C) | 1);
    assert_eq!(mapped(&b), 0);
}

#[test]
fn qcow2_map_data_cluster_past_the_file_is_refused() {
    let mut b = qcow2_shared(GIB, 1);
    poke_be64(&mut b, 4 * CLUSTER, 64 * C);
    let err = reject(&b);
    assert!(err.to_string().contains("lies past the file"), "{err}");
}

#[test]
fn qcow2_map_unaligned_data_cluster_is_refused() {
    let mut b = qcow2_shared(GIB, 1);
    poke_be64(&mut b, 4 * CLUSTER, 5 * C + 512);
    let err = reject(&b);
    assert!(err.to_string().contains("not cluster aligned"), "{err}");
}

#[test]
fn qcow2_map_is_capped_at_the_virtual_size() {
    // One cluster mapped, but the disk is only 4 KiB.
    assert_eq!(mapped(&qcow2_shared(4096, 1)), 4096);
}
