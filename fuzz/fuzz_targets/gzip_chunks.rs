//! Fuzzes gzip decoding of a chunked file, as an OVF reference with both
//! `ovf:compression="gzip"` and `ovf:chunkSize` is read: the first input byte picks the chunk
//! size, the rest is the compressed file, cut into chunks and read back through
//! `ChunkedReader` and `gzip_reader` under a small output cap.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use vmd::ovf::fileref::{self, ChunkedReader};

/// Output cap: small, so that a decompression bomb is cut off fast.
const CAP: u64 = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&first, file)) = data.split_first() else {
        return;
    };
    if file.is_empty() {
        return;
    }
    // At most MAX_CHUNKS chunks, as plan_chunks allows.
    let fewest = file.len().div_ceil(fileref::MAX_CHUNKS as usize);
    let chunk_size = (usize::from(first) * 16 + 1).max(fewest);
    let chunks: Vec<&[u8]> = file.chunks(chunk_size).collect();
    let size_of = |name: &str| {
        let index: usize = name.strip_prefix("d.gz.")?.parse().ok()?;
        chunks.get(index).map(|c| c.len() as u64)
    };
    let plan = match fileref::plan_chunks("d.gz", chunk_size as u64, file.len() as u64, size_of) {
        Ok(plan) => plan,
        Err(e) => panic!("chunks cut at {chunk_size} do not plan: {e}"),
    };
    assert_eq!(plan.len(), chunks.len());
    let open = |name: &str| {
        let index: usize = name
            .strip_prefix("d.gz.")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| io::Error::other("not a chunk"))?;
        chunks
            .get(index)
            .copied()
            .ok_or_else(|| io::Error::other("no such chunk"))
    };
    let chunked = ChunkedReader::new("d.gz", plan, open);
    let mut gz = fileref::gzip_reader(chunked, CAP, "d.gz");
    // Odd-sized reads, so buffer boundaries fall anywhere in the stream.
    let mut buf = [0u8; 4093];
    let mut total = 0u64;
    loop {
        match gz.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    assert!(total <= CAP, "{total} bytes came out past the cap");
});
