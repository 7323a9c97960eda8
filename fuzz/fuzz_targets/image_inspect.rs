//! Fuzzes the disk-image header inspector (qcow2, VMDK, raw) and the prefix classifier.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use vmd::image::inspect;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(info) = inspect::inspect(&mut Cursor::new(data), len) {
        assert!(info.virtual_size > 0);
        assert!(info.virtual_size <= inspect::MAX_VIRTUAL_SIZE);
    }
    let _ = inspect::detect_prefix(data);
});
