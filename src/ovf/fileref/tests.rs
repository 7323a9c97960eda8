//! Tests for capped gzip reading and chunk planning.

use super::*;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::BTreeMap;
use std::io::{Cursor, Write};

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn read_all(mut r: impl Read) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).map(|_| out)
}

fn inner<E: std::error::Error + 'static>(err: &io::Error) -> &E {
    err.get_ref().and_then(|e| e.downcast_ref::<E>()).unwrap()
}

#[test]
fn capped_reader_at_cap_passes_everything() {
    let out = read_all(CappedReader::new(&[5u8; 100][..], 100, "f")).unwrap();
    assert_eq!(out, vec![5u8; 100]);
}

#[test]
fn capped_reader_over_cap_errors_instead_of_truncating() {
    let mut r = CappedReader::new(&[5u8; 101][..], 100, "disk1.vmdk.gz");
    let err = read_all(&mut r).unwrap_err();
    assert_eq!(
        err.to_string(),
        "decompressed data exceeds the cap of 100 bytes for disk1.vmdk.gz"
    );
    assert!(matches!(
        inner::<FileRefError>(&err),
        FileRefError::CapExceeded { cap: 100, .. }
    ));
    assert_eq!(r.bytes_read(), 100);
    assert!(r.read(&mut [0u8; 8]).is_err(), "the error must persist");
}

#[test]
fn gzip_reader_decodes_every_member_of_a_multi_member_stream() {
    let mut data = gz(b"first member, ");
    data.extend(gz(b"second member"));
    let out = read_all(gzip_reader(&data[..], 1 << 20, "d.gz")).unwrap();
    assert_eq!(out, b"first member, second member");
}

#[test]
fn gzip_reader_bomb_stops_at_the_cap() {
    let bomb = gz(&vec![0u8; 10 << 20]);
    assert!(bomb.len() < 100 << 10, "fixture should compress well");
    let err = read_all(gzip_reader(&bomb[..], 1 << 20, "disk1.vmdk.gz")).unwrap_err();
    assert!(
        matches!(inner::<FileRefError>(&err), FileRefError::CapExceeded { cap, .. } if *cap == 1 << 20)
    );
}

#[test]
fn gzip_reader_trailing_garbage_or_zeros_is_an_error() {
    for tail in [&b"garbage"[..], &[0u8; 512]] {
        let mut data = gz(b"payload");
        data.extend_from_slice(tail);
        let err = read_all(gzip_reader(&data[..], 1 << 20, "disk1.vmdk.gz")).unwrap_err();
        assert_eq!(err.to_string(), "cannot decompress disk1.vmdk.gz");
    }
}

#[test]
fn gzip_reader_truncated_stream_is_an_error() {
    let data = gz(&(0..100_000u32)
        .flat_map(|i| i.to_le_bytes())
        .collect::<Vec<u8>>());
    for cut in [data.len() / 2, data.len() - 4, data.len() - 1] {
        let err = read_all(gzip_reader(&data[..cut], 1 << 30, "d.gz")).unwrap_err();
        assert!(
            matches!(inner::<FileRefError>(&err), FileRefError::Gzip { .. }),
            "cut {cut}"
        );
    }
}

#[test]
fn gzip_reader_bad_crc_is_an_error() {
    let mut data = gz(b"payload");
    let crc_at = data.len() - 8;
    data[crc_at] ^= 0xff;
    let err = read_all(gzip_reader(&data[..], 1 << 20, "d.gz")).unwrap_err();
    assert!(matches!(
        inner::<FileRefError>(&err),
        FileRefError::Gzip { .. }
    ));
}

#[test]
fn gzip_reader_empty_input_is_an_error() {
    let err = read_all(gzip_reader(&b""[..], 1 << 20, "d.gz")).unwrap_err();
    assert_eq!(err.to_string(), "cannot decompress d.gz");
}

#[test]
fn chunk_name_has_nine_digits() {
    assert_eq!(chunk_name("disk1.vmdk", 2), "disk1.vmdk.000000002");
    assert_eq!(chunk_name("d", 123_456_789), "d.123456789");
}

/// A package holding chunks of `disk1.vmdk` with the given sizes (index → size).
fn package(sizes: &[(u64, u64)]) -> BTreeMap<String, u64> {
    sizes
        .iter()
        .map(|&(i, size)| (chunk_name("disk1.vmdk", i), size))
        .collect()
}

fn plan(
    files: &BTreeMap<String, u64>,
    chunk: u64,
    total: u64,
) -> Result<Vec<(String, u64)>, ChunkError> {
    plan_chunks("disk1.vmdk", chunk, total, |name| files.get(name).copied())
}

#[test]
fn plan_chunks_good_set_lists_chunks_in_order() {
    let files = package(&[(0, 100), (1, 100), (2, 30)]);
    let got = plan(&files, 100, 230).unwrap();
    let want: Vec<(String, u64)> = files.into_iter().collect();
    assert_eq!(got, want);
    let exact = package(&[(0, 100), (1, 100)]);
    assert_eq!(plan(&exact, 100, 200).unwrap().len(), 2);
}

#[test]
fn plan_chunks_missing_chunk_is_named() {
    let files = package(&[(0, 100), (1, 100), (3, 30)]);
    let err = plan(&files, 100, 330).unwrap_err();
    assert_eq!(err.to_string(), "chunk 2 of disk1.vmdk is missing");
}

#[test]
fn plan_chunks_extra_chunk_is_rejected() {
    let files = package(&[(0, 100), (1, 30), (2, 5)]);
    let err = plan(&files, 100, 130).unwrap_err();
    assert_eq!(
        err,
        ChunkError::Extra {
            href: "disk1.vmdk".into(),
            index: 2
        }
    );
}

#[test]
fn plan_chunks_wrong_size_middle_chunk_is_rejected() {
    let files = package(&[(0, 100), (1, 99), (2, 31)]);
    let err = plan(&files, 100, 230).unwrap_err();
    assert_eq!(
        err.to_string(),
        "chunk 1 of disk1.vmdk is 99 bytes; each chunk but the last must be 100"
    );
}

#[test]
fn plan_chunks_total_not_matching_ovf_size_is_rejected() {
    let files = package(&[(0, 100), (1, 20)]);
    let err = plan(&files, 100, 130).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the chunks of disk1.vmdk total 120 bytes, but its ovf:size is 130"
    );
    let oversized_last = package(&[(0, 100), (1, 101)]);
    assert!(matches!(
        plan(&oversized_last, 100, 130),
        Err(ChunkError::WrongLastSize { .. })
    ));
    let empty_last = package(&[(0, 100), (1, 0)]);
    assert!(matches!(
        plan(&empty_last, 100, 130),
        Err(ChunkError::WrongLastSize { .. })
    ));
}

#[test]
fn plan_chunks_degenerate_declarations_are_rejected() {
    let files = package(&[(0, 1)]);
    assert!(matches!(
        plan(&files, 0, 1),
        Err(ChunkError::ZeroChunkSize { .. })
    ));
    assert!(matches!(
        plan(&files, 1, 0),
        Err(ChunkError::ZeroTotal { .. })
    ));
    let err = plan(&files, 1, u64::MAX).unwrap_err();
    assert!(matches!(
        err,
        ChunkError::TooManyChunks {
            count: u64::MAX,
            ..
        }
    ));
}

#[test]
fn check_no_stray_chunks_rejects_odd_suffixes_extras_and_whole_file() {
    let ok = [
        "vm.ovf",
        "disk1.vmdk.000000000",
        "disk1.vmdk.000000001",
        "disk1.vmdk.gz",
    ];
    assert_eq!(check_no_stray_chunks("disk1.vmdk", 2, ok), Ok(()));
    let cases = [
        ("disk1.vmdk.00000001", "BadSuffix"),
        ("disk1.vmdk.0000000001", "BadSuffix"),
        ("disk1.vmdk.000000007", "Extra"),
        ("disk1.vmdk", "WholeAndChunks"),
    ];
    for (name, kind) in cases {
        let err = check_no_stray_chunks("disk1.vmdk", 2, [name]).unwrap_err();
        assert!(format!("{err:?}").starts_with(kind), "{name}: {err:?}");
    }
}

fn chunks_reader(contents: Vec<Vec<u8>>, plan: Vec<(String, u64)>) -> impl Read {
    let by_name: BTreeMap<String, Vec<u8>> =
        plan.iter().map(|(n, _)| n.clone()).zip(contents).collect();
    ChunkedReader::new("disk1.vmdk", plan, move |name| {
        by_name
            .get(name)
            .cloned()
            .map(Cursor::new)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    })
}

#[test]
fn chunked_reader_concatenates_chunks_in_plan_order() {
    let files = package(&[(0, 4), (1, 4), (2, 2)]);
    let plan = plan(&files, 4, 10).unwrap();
    let r = chunks_reader(
        vec![b"abcd".to_vec(), b"efgh".to_vec(), b"ij".to_vec()],
        plan,
    );
    assert_eq!(read_all(r).unwrap(), b"abcdefghij");
}

#[test]
fn chunked_reader_short_chunk_is_an_error_not_a_short_disk() {
    let plan = vec![
        (chunk_name("disk1.vmdk", 0), 4),
        (chunk_name("disk1.vmdk", 1), 4),
    ];
    let r = chunks_reader(vec![b"abc".to_vec(), b"efgh".to_vec()], plan);
    let err = read_all(r).unwrap_err();
    assert_eq!(
        err.to_string(),
        "chunk 0 of disk1.vmdk ended after 3 of its 4 bytes"
    );
}

#[test]
fn chunked_reader_long_chunk_is_an_error() {
    let plan = vec![(chunk_name("disk1.vmdk", 0), 4)];
    let r = chunks_reader(vec![b"abcde".to_vec()], plan);
    let err = read_all(r).unwrap_err();
    assert!(matches!(
        inner::<ChunkError>(&err),
        ChunkError::Long {
            index: 0,
            expected: 4,
            ..
        }
    ));
}

#[test]
fn chunked_then_gzip_reads_a_compressed_file_split_in_chunks() {
    let compressed = gz(b"the whole disk image");
    let (a, b) = compressed.split_at(10);
    let plan = vec![
        (chunk_name("disk1.vmdk", 0), 10),
        (chunk_name("disk1.vmdk", 1), b.len() as u64),
    ];
    let chunks = chunks_reader(vec![a.to_vec(), b.to_vec()], plan);
    assert_eq!(
        read_all(gzip_reader(chunks, 1 << 20, "disk1.vmdk")).unwrap(),
        b"the whole disk image"
    );
}
