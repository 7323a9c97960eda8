//! Round trips through real `qemu-img` VMDKs and a VMware-layout stream builder: decoded
//! disks must equal the raw source byte for byte (RawSink) and to `qemu-img compare`
//! (Qcow2Sink, which must also pass `qemu-img check`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::ZlibEncoder;
use flate2::Compression;

use super::*;
use crate::image::sink::{Qcow2Sink, RawSink};
use crate::image::test_support::{real_qemu_img, TempDir};

pub(super) const GRAIN: usize = 64 << 10;

/// The `qemu-img` binary for a real-image test, or `None`: the test then skips with a note.
pub(super) fn qemu(test: &str) -> Option<PathBuf> {
    real_qemu_img(test).map(|q| q.binary().to_path_buf())
}

pub(super) fn qemu_img(qemu: &Path, args: &[&str]) -> String {
    let out = Command::new(qemu).args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "qemu-img {args:?}: {text}");
    text
}

/// A disk of `size` bytes with full grains, a partly filled grain, holes, and data in its
/// last (partial, when `size` is not grain-aligned) grain.
pub(super) fn pattern(size: usize) -> Vec<u8> {
    let mut disk = vec![0u8; size];
    for (g, grain) in disk.chunks_mut(GRAIN).enumerate() {
        match g % 4 {
            0 => {}
            1 => grain
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = ((g * 31 + i * 7) % 251) as u8 | 1),
            2 => {
                let n = grain.len().min(4096);
                grain[..n].fill(g as u8 | 0x80);
            }
            _ => grain
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]),
        }
    }
    let n = disk.len();
    disk[n - 700..n - 100].fill(0x5a);
    disk
}

/// Writes `disk` as raw and converts it with qemu-img to a VMDK of `options`.
pub(super) fn qemu_vmdk(
    qemu: &Path,
    dir: &TempDir,
    disk: &[u8],
    options: &str,
) -> (PathBuf, PathBuf) {
    let raw = dir.path().join("source.raw");
    std::fs::write(&raw, disk).unwrap();
    let vmdk = dir.path().join("source.vmdk");
    let (r, v) = (raw.to_str().unwrap(), vmdk.to_str().unwrap());
    qemu_img(
        qemu,
        &["convert", "-f", "raw", "-O", "vmdk", "-o", options, r, v],
    );
    (raw, vmdk)
}

pub(super) fn limits() -> StreamLimits {
    StreamLimits::new(1 << 40)
}

/// Decodes `input` into a RawSink at `out` (finished).
pub(super) fn decode_to_raw(input: &[u8], size: u64, out: &Path) -> Result<u64, DecodeError> {
    let mut sink = RawSink::new(File::create(out).unwrap(), size);
    let virtual_size = decode_vmdk(input, &mut sink, &limits(), &mut |_| {})?;
    sink.finish().unwrap();
    Ok(virtual_size)
}

fn assert_qcow2_equals(qemu: &Path, input: &[u8], raw: &Path, dir: &TempDir) {
    let img = dir.path().join("decoded.qcow2");
    let size = std::fs::metadata(raw).unwrap().len();
    let mut sink = Qcow2Sink::new(File::create(&img).unwrap(), size).unwrap();
    assert_eq!(
        decode_vmdk(input, &mut sink, &limits(), &mut |_| {}).unwrap(),
        size
    );
    sink.finish().unwrap();
    let img = img.to_str().unwrap();
    let check = qemu_img(qemu, &["check", "-f", "qcow2", img]);
    assert!(check.contains("No errors were found"), "{check}");
    let raw = raw.to_str().unwrap();
    qemu_img(qemu, &["compare", "-f", "raw", "-F", "qcow2", raw, img]);
}

fn round_trip_qemu(test: &str, size: usize, options: &str) {
    let Some(qemu) = qemu(test) else { return };
    let dir = TempDir::new("vmdk-rt");
    let disk = pattern(size);
    let (raw, vmdk) = qemu_vmdk(&qemu, &dir, &disk, options);
    let input = std::fs::read(vmdk).unwrap();

    let out = dir.path().join("decoded.raw");
    assert_eq!(
        decode_to_raw(&input, size as u64, &out).unwrap(),
        size as u64
    );
    assert!(
        std::fs::read(&out).unwrap() == disk,
        "decoded raw differs from the source"
    );
    assert_qcow2_equals(&qemu, &input, &raw, &dir);
}

#[test]
fn decode_vmdk_qemu_stream_optimized_equals_source() {
    round_trip_qemu(
        "decode_vmdk_qemu_stream_optimized_equals_source",
        5 << 20,
        "subformat=streamOptimized",
    );
}

#[test]
fn decode_vmdk_qemu_stream_optimized_partial_last_grain_equals_source() {
    round_trip_qemu(
        "decode_vmdk_qemu_stream_optimized_partial_last_grain_equals_source",
        (5 << 20) + 3584,
        "subformat=streamOptimized",
    );
}

#[test]
fn decode_vmdk_qemu_monolithic_sparse_equals_source() {
    round_trip_qemu(
        "decode_vmdk_qemu_monolithic_sparse_equals_source",
        (40 << 20) + 512,
        "subformat=monolithicSparse",
    );
}

#[test]
fn decode_vmdk_qemu_monolithic_sparse_zeroed_grain_equals_source() {
    round_trip_qemu(
        "decode_vmdk_qemu_monolithic_sparse_zeroed_grain_equals_source",
        3 << 20,
        "subformat=monolithicSparse,zeroed_grain=on",
    );
}

#[test]
fn decode_vmdk_qemu_stream_optimized_several_grain_tables_equals_source() {
    // 96 MiB: three grain tables of 512 grains.
    let test = "decode_vmdk_qemu_stream_optimized_several_grain_tables_equals_source";
    round_trip_qemu(test, 96 << 20, "subformat=streamOptimized");
}

/// Builds streamOptimized files in VMware's layout: `gdOffset` = GD_AT_END, grain table
/// markers after their grains, then grain directory, footer and end-of-stream markers.
pub(super) struct Builder {
    pub out: Vec<u8>,
    pub capacity: u64,
}

impl Builder {
    pub(super) const OVERHEAD: u64 = 128;

    pub(super) fn header(capacity: u64, gd_offset: u64) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[0..4].copy_from_slice(b"KDMV");
        h[4..8].copy_from_slice(&3u32.to_le_bytes());
        h[8..12].copy_from_slice(&0x3_0001u32.to_le_bytes());
        h[12..20].copy_from_slice(&capacity.to_le_bytes());
        h[20..28].copy_from_slice(&128u64.to_le_bytes());
        h[28..36].copy_from_slice(&1u64.to_le_bytes());
        h[36..44].copy_from_slice(&1u64.to_le_bytes());
        h[44..48].copy_from_slice(&512u32.to_le_bytes());
        h[56..64].copy_from_slice(&gd_offset.to_le_bytes());
        h[64..72].copy_from_slice(&Self::OVERHEAD.to_le_bytes());
        h[73..77].copy_from_slice(b"\n \r\n");
        h[77..79].copy_from_slice(&1u16.to_le_bytes());
        h
    }

    pub(super) fn new(capacity: u64) -> Self {
        let mut out = Self::header(capacity, u64::MAX).to_vec();
        let desc = format!(
            "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
             createType=\"streamOptimized\"\n\nRW {capacity} SPARSE \"x.vmdk\"\n"
        );
        out.extend_from_slice(desc.as_bytes());
        out.resize(Self::OVERHEAD as usize * 512, 0);
        Self { out, capacity }
    }

    fn pad(&mut self) {
        let n = self.out.len().next_multiple_of(512);
        self.out.resize(n, 0);
    }

    pub(super) fn zlib(data: &[u8]) -> Vec<u8> {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    /// Appends a grain marker with `compressed` as its data; returns its sector.
    pub(super) fn grain_raw(&mut self, lba: u64, compressed: &[u8]) -> u32 {
        let sector = (self.out.len() / 512) as u32;
        self.out.extend_from_slice(&lba.to_le_bytes());
        self.out
            .extend_from_slice(&(compressed.len() as u32).to_le_bytes());
        self.out.extend_from_slice(compressed);
        self.pad();
        sector
    }

    pub(super) fn grain(&mut self, lba: u64, data: &[u8]) -> u32 {
        self.grain_raw(lba, &Self::zlib(data))
    }

    /// Appends a metadata marker of `kind` followed by `body`; returns the body's sector.
    pub(super) fn meta(&mut self, kind: u32, body: &[u8]) -> u32 {
        let sectors = body.len().div_ceil(512) as u64;
        self.out.extend_from_slice(&sectors.to_le_bytes());
        self.out.extend_from_slice(&0u32.to_le_bytes());
        self.out.extend_from_slice(&kind.to_le_bytes());
        self.pad();
        let sector = (self.out.len() / 512) as u32;
        self.out.extend_from_slice(body);
        self.pad();
        sector
    }

    pub(super) fn table(&mut self, kind: u32, entries: &[u32]) -> u32 {
        let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        self.meta(kind, &body)
    }

    pub(super) fn footer(&mut self, gd_sector: u64) {
        let footer = Self::header(self.capacity, gd_sector);
        self.meta(3, &footer);
    }

    pub(super) fn eos(&mut self) {
        self.out.extend_from_slice(&[0u8; 512]);
    }

    /// A complete, valid stream of `disk` (a multiple of 512 bytes).
    pub(super) fn stream(disk: &[u8]) -> Vec<u8> {
        let mut b = Self::new(disk.len() as u64 / 512);
        let grains: Vec<&[u8]> = disk.chunks(GRAIN).collect();
        let mut gd = Vec::new();
        for (t, span) in grains.chunks(512).enumerate() {
            let mut gt = [0u32; 512];
            for (i, data) in span.iter().enumerate() {
                if data.iter().any(|&b| b != 0) {
                    gt[i] = b.grain(((t * 512 + i) * 128) as u64, data);
                }
            }
            gd.push(b.table(1, &gt));
        }
        let gd_sector = b.table(2, &gd);
        b.footer(gd_sector.into());
        b.eos();
        b.out
    }
}

#[test]
fn decode_vmdk_vmware_layout_stream_equals_source_and_qemu_agrees() {
    let Some(qemu) = qemu("decode_vmdk_vmware_layout_stream_equals_source_and_qemu_agrees") else {
        return;
    };
    let dir = TempDir::new("vmdk-vmware");
    let size = (36 << 20) + 1024;
    let disk = pattern(size);
    let raw = dir.path().join("source.raw");
    std::fs::write(&raw, &disk).unwrap();
    let stream = Builder::stream(&disk);
    // The builder itself is checked against QEMU's reader, which goes through the footer.
    let vmdk = dir.path().join("vmware.vmdk");
    std::fs::write(&vmdk, &stream).unwrap();
    let (r, v) = (raw.to_str().unwrap(), vmdk.to_str().unwrap());
    qemu_img(&qemu, &["compare", "-f", "raw", "-F", "vmdk", r, v]);

    let out = dir.path().join("decoded.raw");
    assert_eq!(
        decode_to_raw(&stream, size as u64, &out).unwrap(),
        size as u64
    );
    assert!(
        std::fs::read(&out).unwrap() == disk,
        "decoded raw differs from the source"
    );
    assert_qcow2_equals(&qemu, &stream, &raw, &dir);
}

#[test]
fn decode_vmdk_progress_is_monotonic_and_ends_at_input_length() {
    let stream = Builder::stream(&pattern(8 << 20));
    let mut seen = Vec::new();
    let mut sink = RawSink::new(tempfile_in_dir(), 8 << 20);
    decode_vmdk(&stream[..], &mut sink, &limits(), &mut |n| seen.push(n)).unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(stream.len() as u64));
}

/// An anonymous writable file (unlinked at once).
pub(super) fn tempfile_in_dir() -> File {
    let dir = TempDir::new("anon");
    File::create(dir.path().join("f")).unwrap()
}

#[test]
fn copy_raw_exact_length_copies_and_keeps_holes() {
    let dir = TempDir::new("raw-copy");
    let disk = pattern((3 << 20) + 100);
    let out = dir.path().join("out.raw");
    let mut sink = RawSink::new(File::create(&out).unwrap(), disk.len() as u64);
    let n = copy_raw(&disk[..], disk.len() as u64, &mut sink, &mut |_| {}).unwrap();
    sink.finish().unwrap();
    assert_eq!(n, disk.len() as u64);
    assert!(std::fs::read(&out).unwrap() == disk);
}

#[test]
fn copy_raw_short_input_is_truncated_error() {
    let disk = vec![1u8; 5000];
    let mut sink = RawSink::new(tempfile_in_dir(), 6000);
    let err = copy_raw(&disk[..], 6000, &mut sink, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, DecodeError::Truncated { offset: 5000, .. }),
        "{err}"
    );
}

#[test]
fn copy_raw_long_input_is_error() {
    let disk = vec![1u8; 5000];
    let mut sink = RawSink::new(tempfile_in_dir(), 4999);
    let err = copy_raw(&disk[..], 4999, &mut sink, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, DecodeError::TooLong { expected: 4999 }),
        "{err}"
    );
}
