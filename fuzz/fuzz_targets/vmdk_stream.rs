//! Fuzzes the forward-only VMDK decoder (streamOptimized and monolithicSparse) into a sink
//! that keeps no data but checks the sink contract: every write lies inside the virtual
//! disk the decoder reports, and no guest byte is written twice.
#![no_main]

use std::collections::BTreeMap;
use std::io;

use libfuzzer_sys::fuzz_target;
use vmd::image::sink::DiskSink;
use vmd::image::stream::{decode_vmdk, StreamLimits};

/// The largest disk vmd imports at all: a hostile OVF may declare that capacity, so the
/// decoder's memory must stay bounded even under these limits.
const MAX_VIRTUAL_SIZE: u64 = vmd::image::inspect::MAX_VIRTUAL_SIZE;

/// Guest ranges written so far, start to end, merged when adjacent.
#[derive(Default)]
struct CheckingSink {
    written: BTreeMap<u64, u64>,
}

impl DiskSink for CheckingSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset.checked_add(data.len() as u64);
        let Some(end) = end.filter(|&end| end <= MAX_VIRTUAL_SIZE) else {
            panic!(
                "write of {} bytes at {offset} leaves any disk allowed",
                data.len()
            );
        };
        if data.is_empty() {
            return Ok(());
        }
        if let Some((&start, &prev_end)) = self.written.range(..end).next_back() {
            assert!(
                prev_end <= offset,
                "write {offset}..{end} overlaps earlier write {start}..{prev_end}"
            );
        }
        self.written.insert(offset, end);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        panic!("decoders must leave finish to the caller");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut sink = CheckingSink::default();
    let limits = StreamLimits::new(MAX_VIRTUAL_SIZE);
    let mut last_progress = 0u64;
    let mut progress = |n: u64| {
        assert!(n >= last_progress && n <= data.len() as u64, "progress {n}");
        last_progress = n;
    };
    if let Ok(virtual_size) = decode_vmdk(data, &mut sink, &limits, &mut progress) {
        assert!(virtual_size <= MAX_VIRTUAL_SIZE);
        if let Some((_, &end)) = sink.written.last_key_value() {
            assert!(
                end <= virtual_size,
                "data written to {end}, past {virtual_size}"
            );
        }
    }
});
