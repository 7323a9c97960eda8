//! [`Qcow2Sink`]: writes a qcow2 v3 image (compat 1.1, 64 KiB clusters, 16-bit refcounts,
//! no backing file, no extensions) straight from guest writes, without `qemu-img`.
//!
//! Layout: cluster 0 holds the header, data clusters follow in allocation order, and
//! `finish` appends the L2 tables, the L1 table, the refcount table and the refcount blocks,
//! then writes the header last. Until then cluster 0 is zeros, so an interrupted import never
//! leaves a file that parses as qcow2. Every cluster up to the end of the file is in use, so
//! every refcount is 1 and every table entry carries `QCOW_OFLAG_COPIED`.
//!
//! This writer only ever creates new images; it never reads or updates an existing one.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::{check_range, is_zero, DiskSink};

const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// Guest clusters mapped by one L2 table (8-byte entries).
const L2_ENTRIES: u64 = CLUSTER / 8;
/// `refcount_order` 4: 16-bit refcounts.
const REFCOUNT_ORDER: u32 = 4;
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER / 2;
/// Set on L1/L2 entries whose cluster has refcount 1; `qemu-img check` requires it.
const OFLAG_COPIED: u64 = 1 << 63;
/// QEMU refuses L1 tables over 32 MiB (`QCOW_MAX_L1_SIZE`): 2 PiB of virtual disk here.
const MAX_L1_ENTRIES: u64 = (32 << 20) / 8;
const QCOW_MAGIC: u32 = 0x5146_49fb;
const HEADER_LENGTH: u32 = 104;

/// Writes a new qcow2 image. Data clusters are allocated at the end of the file as writes
/// arrive (all-zero data allocates nothing); the guest-to-host map is kept in memory, one
/// 4-byte entry per guest cluster in each touched 512 MiB span of the disk.
#[derive(Debug)]
pub struct Qcow2Sink {
    file: File,
    virtual_size: u64,
    l1_size: u64,
    /// Per L2 table: the host cluster index of each of its guest clusters, 0 = unallocated
    /// (cluster 0 is the header, so never data). Created on the first allocation in its span.
    l2: Vec<Option<Box<[u32]>>>,
    /// Next free host cluster.
    next_cluster: u32,
    /// Whether `finish` syncs: not for a scratch file, which nothing relies on after a crash.
    sync: bool,
}

impl Qcow2Sink {
    /// Prepares to write an image of `virtual_size` bytes into `file`, which must be empty
    /// (freshly created and writable): the image is built in place, from offset 0.
    pub fn new(file: File, virtual_size: u64) -> io::Result<Self> {
        let len = file.metadata()?.len();
        if len != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("qcow2 output file is not empty ({len} bytes)"),
            ));
        }
        let l1_size = virtual_size.div_ceil(CLUSTER).div_ceil(L2_ENTRIES);
        if l1_size > MAX_L1_ENTRIES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("virtual size of {virtual_size} bytes is too large for a qcow2 image"),
            ));
        }
        let mut l2 = Vec::new();
        l2.resize_with(l1_size as usize, || None);
        Ok(Self {
            file,
            virtual_size,
            l1_size,
            l2,
            next_cluster: 1,
            sync: true,
        })
    }

    /// The same for a scratch file (a staging copy deleted once used): `finish` does not
    /// sync it, as a crash discards it anyway.
    pub fn scratch(self) -> Self {
        Self {
            sync: false,
            ..self
        }
    }

    /// Host cluster of guest cluster `guest`, allocating one if `allocate`; `None` if
    /// unallocated and not asked to allocate.
    fn host_cluster(&mut self, guest: u64, allocate: bool) -> io::Result<Option<u64>> {
        // `guest` is below the virtual size (checked by the caller), so both indices fit.
        let table = (guest / L2_ENTRIES) as usize;
        let index = (guest % L2_ENTRIES) as usize;
        let slot = &mut self.l2[table];
        if let Some(host) = slot.as_ref().map(|t| t[index]).filter(|&h| h != 0) {
            return Ok(Some(u64::from(host)));
        }
        if !allocate {
            return Ok(None);
        }
        let host = self.next_cluster;
        self.next_cluster = host
            .checked_add(1)
            .ok_or_else(|| io::Error::other("qcow2 output grew beyond 256 TiB"))?;
        slot.get_or_insert_with(|| vec![0u32; L2_ENTRIES as usize].into_boxed_slice())[index] =
            host;
        Ok(Some(u64::from(host)))
    }

    /// Writes `count` big-endian u64 `entries` as a table starting at host cluster `first`.
    fn write_table(
        &self,
        buf: &mut [u8],
        first: u64,
        count: u64,
        mut entries: impl Iterator<Item = u64>,
    ) -> io::Result<()> {
        let per_cluster = CLUSTER / 8;
        for c in 0..count.div_ceil(per_cluster) {
            for slot in buf.chunks_exact_mut(8) {
                slot.copy_from_slice(&entries.next().unwrap_or(0).to_be_bytes());
            }
            self.file.write_all_at(buf, (first + c) * CLUSTER)?;
        }
        Ok(())
    }
}

impl DiskSink for Qcow2Sink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        check_range(offset, data.len(), self.virtual_size)?;
        // Pieces that land in consecutive host clusters go out as one pwrite.
        let mut pending: Option<(u64, usize, usize)> = None; // (host offset, start, end)
        let mut at = 0usize;
        while at < data.len() {
            let guest = offset + at as u64;
            let in_cluster = guest % CLUSTER;
            let end = data.len().min(at + (CLUSTER - in_cluster) as usize);
            let piece = &data[at..end];
            // An unallocated cluster reads as zeros, so zero data needs no cluster.
            let host = self.host_cluster(guest / CLUSTER, !is_zero(piece))?;
            if let Some(host) = host.map(|h| h * CLUSTER + in_cluster) {
                pending = match pending {
                    Some((h, s, e)) if h + (e - s) as u64 == host && e == at => Some((h, s, end)),
                    other => {
                        if let Some((h, s, e)) = other {
                            self.file.write_all_at(&data[s..e], h)?;
                        }
                        Some((host, at, end))
                    }
                };
            }
            at = end;
        }
        if let Some((h, s, e)) = pending {
            self.file.write_all_at(&data[s..e], h)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let data_end = u64::from(self.next_cluster);
        let l2_count = self.l2.iter().filter(|t| t.is_some()).count() as u64;
        let l1_clusters = (self.l1_size * 8).div_ceil(CLUSTER);
        let l1_start = data_end + l2_count;
        let rt_start = l1_start + l1_clusters;
        let (rt_clusters, rb_count) = refcount_layout(rt_start);
        let rb_start = rt_start + rt_clusters;
        let total = rb_start + rb_count;

        let mut buf = vec![0u8; CLUSTER as usize];
        let mut l1 = vec![0u64; self.l1_size as usize];
        let mut next_l2 = data_end;
        for (i, table) in self.l2.iter().enumerate() {
            let Some(table) = table else { continue };
            let entries = table.iter().map(|&host| match host {
                0 => 0,
                host => (u64::from(host) << CLUSTER_BITS) | OFLAG_COPIED,
            });
            self.write_table(&mut buf, next_l2, L2_ENTRIES, entries)?;
            l1[i] = (next_l2 << CLUSTER_BITS) | OFLAG_COPIED;
            next_l2 += 1;
        }
        self.write_table(&mut buf, l1_start, self.l1_size, l1.into_iter())?;
        let blocks = (0..rb_count).map(|b| (rb_start + b) << CLUSTER_BITS);
        self.write_table(&mut buf, rt_start, rb_count, blocks)?;
        for b in 0..rb_count {
            for (i, slot) in buf.chunks_exact_mut(2).enumerate() {
                let cluster = b * REFCOUNTS_PER_BLOCK + i as u64;
                slot.copy_from_slice(&u16::from(cluster < total).to_be_bytes());
            }
            self.file.write_all_at(&buf, (rb_start + b) * CLUSTER)?;
        }
        self.file.set_len(total * CLUSTER)?;
        // Metadata first, header last: a crash in between leaves no valid qcow2 magic.
        if self.sync {
            self.file.sync_data()?;
        }
        let l1_offset = if self.l1_size == 0 {
            0
        } else {
            l1_start * CLUSTER
        };
        let header = Header {
            virtual_size: self.virtual_size,
            l1_size: self.l1_size as u32,
            l1_offset,
            refcount_table_offset: rt_start * CLUSTER,
            refcount_table_clusters: rt_clusters as u32,
        };
        self.file.write_all_at(&header.to_bytes(), 0)?;
        if self.sync {
            self.file.sync_all()?;
        }
        Ok(())
    }
}

/// Refcount table clusters and refcount blocks needed when metadata starts at host cluster
/// `base` and ends with them: every cluster below the end, theirs included, needs a refcount.
fn refcount_layout(base: u64) -> (u64, u64) {
    let (mut table, mut blocks) = (1u64, 1u64);
    loop {
        let total = base + table + blocks;
        let need_blocks = total.div_ceil(REFCOUNTS_PER_BLOCK);
        let need_table = (need_blocks * 8).div_ceil(CLUSTER);
        if need_blocks <= blocks && need_table <= table {
            return (table, blocks);
        }
        blocks = blocks.max(need_blocks);
        table = table.max(need_table);
    }
}

/// The qcow2 v3 header fields this writer varies; the rest are fixed.
struct Header {
    virtual_size: u64,
    l1_size: u32,
    l1_offset: u64,
    refcount_table_offset: u64,
    refcount_table_clusters: u32,
}

impl Header {
    /// Header (104 bytes) followed by the end-of-extensions marker (8 zero bytes).
    fn to_bytes(&self) -> [u8; 112] {
        let mut h = [0u8; 112];
        h[0..4].copy_from_slice(&QCOW_MAGIC.to_be_bytes());
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        // 8..20: no backing file.
        h[20..24].copy_from_slice(&CLUSTER_BITS.to_be_bytes());
        h[24..32].copy_from_slice(&self.virtual_size.to_be_bytes());
        // 32..36: no encryption.
        h[36..40].copy_from_slice(&self.l1_size.to_be_bytes());
        h[40..48].copy_from_slice(&self.l1_offset.to_be_bytes());
        h[48..56].copy_from_slice(&self.refcount_table_offset.to_be_bytes());
        h[56..60].copy_from_slice(&self.refcount_table_clusters.to_be_bytes());
        // 60..96: no snapshots, no incompatible, compatible or autoclear features.
        h[96..100].copy_from_slice(&REFCOUNT_ORDER.to_be_bytes());
        h[100..104].copy_from_slice(&HEADER_LENGTH.to_be_bytes());
        // 104..112: header extension type 0 (end), length 0.
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_support::{real_qemu_img, TempDir};
    use std::path::Path;
    use std::process::Command;

    fn qemu_img(qemu: &Path, args: &[&str]) -> (bool, String) {
        let out = Command::new(qemu).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// Writes the same pieces into a raw file and through a Qcow2Sink, then has qemu-img
    /// check the image and compare it with the raw file.
    fn assert_qcow2_matches(test: &str, size: u64, writes: &[(u64, Vec<u8>)]) {
        let Some(qemu) = real_qemu_img(test) else {
            return;
        };
        let dir = TempDir::new("qcow2");
        let raw = dir.path().join("want.raw");
        let img = dir.path().join("got.qcow2");
        let raw_file = File::create(&raw).unwrap();
        raw_file.set_len(size).unwrap();
        let mut sink = Qcow2Sink::new(File::create(&img).unwrap(), size).unwrap();
        for (off, data) in writes {
            raw_file.write_all_at(data, *off).unwrap();
            sink.write_at(*off, data).unwrap();
        }
        sink.finish().unwrap();
        check_and_compare(qemu.binary(), &raw, &img);
    }

    fn check_and_compare(qemu: &Path, raw: &Path, img: &Path) {
        let img = img.to_str().unwrap();
        let (ok, text) = qemu_img(qemu, &["check", "-f", "qcow2", img]);
        assert!(ok && text.contains("No errors were found"), "{text}");
        assert!(!text.contains("leaked"), "{text}");
        let (ok, text) = qemu_img(
            qemu,
            &[
                "compare",
                "-f",
                "raw",
                "-F",
                "qcow2",
                raw.to_str().unwrap(),
                img,
            ],
        );
        assert!(ok, "{text}");
    }

    #[test]
    fn qcow2_sink_scattered_writes_pass_qemu_check_and_compare() {
        let writes = vec![
            (0, vec![1u8; 512]),
            (70_000, vec![2u8; 200_000]),
            (5 << 20, vec![0u8; 1 << 20]),
            (3 << 20, vec![3u8; 65_536]),
            ((1 << 30) + 17, vec![4u8; 100]),
            ((3 << 30) - 1, vec![5u8; 1]),
            (65_536 * 3 + 100, vec![6u8; 10]),
        ];
        assert_qcow2_matches(
            "qcow2_sink_scattered_writes_pass_qemu_check_and_compare",
            3 << 30,
            &writes,
        );
    }

    #[test]
    fn qcow2_sink_unaligned_size_and_last_partial_cluster_round_trip() {
        let size = (10 << 20) + 1536;
        assert_qcow2_matches(
            "qcow2_sink_unaligned_size_and_last_partial_cluster_round_trip",
            size,
            &[(size - 1000, vec![9u8; 1000]), (0, vec![8u8; 3])],
        );
    }

    #[test]
    fn qcow2_sink_empty_and_zero_only_images_are_valid() {
        assert_qcow2_matches("qcow2_sink_empty_and_zero_only_images_are_valid", 0, &[]);
        let test = "qcow2_sink_empty_and_zero_only_images_are_valid";
        assert_qcow2_matches(test, 1 << 20, &[(0, vec![0u8; 1 << 20])]);
    }

    #[test]
    fn qcow2_sink_zero_writes_allocate_no_clusters() {
        let dir = TempDir::new("qcow2-zero");
        let img = dir.path().join("z.qcow2");
        let mut sink = Qcow2Sink::new(File::create(&img).unwrap(), 1 << 30).unwrap();
        for i in 0..64u64 {
            sink.write_at(i << 20, &vec![0u8; 1 << 20]).unwrap();
        }
        sink.finish().unwrap();
        // Header, one L1 cluster, one refcount table cluster, one refcount block.
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 4 * CLUSTER);
    }

    #[test]
    fn qcow2_sink_needing_several_refcount_blocks_is_consistent() {
        let test = "qcow2_sink_needing_several_refcount_blocks_is_consistent";
        let Some(qemu) = real_qemu_img(test) else {
            return;
        };
        // 40 000 data clusters: more than one refcount block covers (32768).
        let dir = TempDir::new("qcow2-many");
        let raw = dir.path().join("want.raw");
        let img = dir.path().join("got.qcow2");
        let size = 3u64 << 30;
        let raw_file = File::create(&raw).unwrap();
        raw_file.set_len(size).unwrap();
        let mut sink = Qcow2Sink::new(File::create(&img).unwrap(), size).unwrap();
        // One non-zero byte per cluster allocates a cluster while keeping the test cheap.
        for c in 0..40_000u64 {
            let off = c * CLUSTER + (c % 7) * 512;
            sink.write_at(off, &[1u8]).unwrap();
            raw_file.write_all_at(&[1u8], off).unwrap();
        }
        sink.finish().unwrap();
        check_and_compare(qemu.binary(), &raw, &img);
    }

    #[test]
    fn qcow2_sink_non_empty_output_file_is_refused() {
        let dir = TempDir::new("qcow2-nonempty");
        let img = dir.path().join("x.qcow2");
        std::fs::write(&img, b"old").unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        let err = Qcow2Sink::new(file, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }

    #[test]
    fn qcow2_sink_write_past_virtual_size_is_rejected() {
        let dir = TempDir::new("qcow2-bounds");
        let mut sink =
            Qcow2Sink::new(File::create(dir.path().join("b.qcow2")).unwrap(), 4096).unwrap();
        assert!(sink.write_at(4096, &[1]).is_err());
        assert!(sink.write_at(u64::MAX - 1, &[1, 2, 3]).is_err());
    }

    #[test]
    fn refcount_layout_covers_its_own_clusters() {
        for base in [1u64, 32_766, 32_767, 32_768, 1 << 20, 268_427_264] {
            let (table, blocks) = refcount_layout(base);
            let total = base + table + blocks;
            assert!(blocks * REFCOUNTS_PER_BLOCK >= total, "base {base}");
            assert!(table * (CLUSTER / 8) >= blocks, "base {base}");
        }
    }
}
