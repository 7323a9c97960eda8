//! Fuzzes the qcow2 mapping walk (SECURITY.md item 42): for every image the inspector
//! accepts, recounts the mapped clusters with a plain walk of the L1/L2 tables and checks
//! that the bound agrees, stays within the virtual size, and that no host cluster (L2 table
//! or standard data cluster) was mapped twice.
#![no_main]

use std::collections::HashSet;
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use vmd::image::inspect;

const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const COMPRESSED: u64 = 1 << 62;

fn be(data: &[u8], at: u64, n: usize) -> u64 {
    let at = at as usize;
    match data.get(at..at + n) {
        Some(b) => b.iter().fold(0, |v, &x| (v << 8) | u64::from(x)),
        None => panic!("the inspector accepted a table at {at} past the end"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(info) = inspect::inspect(&mut Cursor::new(data), data.len() as u64) else {
        return;
    };
    let Some(q) = info.qcow2 else {
        return;
    };
    assert!(q.mapped_bytes <= info.virtual_size);
    let cluster = 1u64 << q.cluster_bits;
    let extended = q.version == 3 && be(data, 72, 8) & (1 << 4) != 0;
    let entry_len: u64 = if extended { 16 } else { 8 };
    let per_l2 = cluster / entry_len;
    let guest = info.virtual_size.div_ceil(cluster);
    let l1_size = be(data, 36, 4);
    let l1 = be(data, 40, 8);
    let mut seen = HashSet::new();
    let mut count = 0u64;
    for i in 0..guest.div_ceil(per_l2).min(l1_size) {
        let l2 = be(data, l1 + 8 * i, 8) & OFFSET_MASK;
        if l2 == 0 {
            continue;
        }
        assert!(seen.insert(l2 / cluster), "L2 table {l2:#x} mapped twice");
        for j in 0..per_l2.min(guest - i * per_l2) {
            let e = be(data, l2 + j * entry_len, 8);
            if e & COMPRESSED != 0 {
                count += 1;
                continue;
            }
            let host = e & OFFSET_MASK;
            if host == 0 {
                continue;
            }
            assert!(seen.insert(host / cluster), "cluster {host:#x} mapped twice");
            if q.version < 3 || e & 1 == 0 {
                count += 1;
            }
        }
    }
    assert_eq!(q.mapped_bytes, (count * cluster).min(info.virtual_size));
});
