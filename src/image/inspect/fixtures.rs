//! Hand-written image fixtures for the inspector tests: minimal but structurally real qcow2
//! and VMDK files, plus iotests-style `poke` helpers to corrupt single fields.

pub const CLUSTER_BITS: u32 = 16;
pub const CLUSTER: usize = 1 << CLUSTER_BITS;
pub const SECTOR: usize = 512;

pub fn poke(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

pub fn poke_be32(buf: &mut [u8], at: usize, v: u32) {
    poke(buf, at, &v.to_be_bytes());
}

pub fn poke_be64(buf: &mut [u8], at: usize, v: u64) {
    poke(buf, at, &v.to_be_bytes());
}

pub fn poke_le32(buf: &mut [u8], at: usize, v: u32) {
    poke(buf, at, &v.to_le_bytes());
}

pub fn poke_le64(buf: &mut [u8], at: usize, v: u64) {
    poke(buf, at, &v.to_le_bytes());
}

/// A qcow2 image of `size` virtual bytes with 64 KiB clusters: header, refcount table,
/// refcount block, L1 table (four clusters).
pub fn qcow2(version: u32, size: u64) -> Vec<u8> {
    let mut b = vec![0u8; 4 * CLUSTER];
    let c = CLUSTER as u64;
    let l1_entry_covers = c * (c / 8);
    let l1_size = size.div_ceil(l1_entry_covers) as u32;
    poke(&mut b, 0, b"QFI\xfb");
    poke_be32(&mut b, 4, version);
    poke_be32(&mut b, 20, CLUSTER_BITS);
    poke_be64(&mut b, 24, size);
    poke_be32(&mut b, 36, l1_size);
    poke_be64(&mut b, 40, 3 * c);
    poke_be64(&mut b, 48, c);
    poke_be32(&mut b, 56, 1);
    if version == 3 {
        poke_be32(&mut b, 96, 4);
        poke_be32(&mut b, 100, 112);
    }
    poke_be64(&mut b, CLUSTER, 2 * c);
    b
}

/// Writes header extensions (type, data) after the header, followed by the end marker.
pub fn qcow2_with_extensions(mut b: Vec<u8>, exts: &[(u32, &[u8])]) -> Vec<u8> {
    let version = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let mut at = if version == 3 { 112 } else { 72 };
    for (kind, data) in exts {
        poke_be32(&mut b, at, *kind);
        poke_be32(&mut b, at + 4, data.len() as u32);
        poke(&mut b, at + 8, data);
        at += 8 + data.len().div_ceil(8) * 8;
    }
    poke_be64(&mut b, at, 0);
    b
}

pub fn descriptor(create_type: &str, extent: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=5e3c1a2b\nparentCID=ffffffff\n\
         isNativeSnapshot=\"no\"\ncreateType=\"{create_type}\"\n\n# Extent description\n{extent}\n\n\
         # The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\n\
         ddb.geometry.cylinders = \"2\"\nddb.uuid = \"60 00 C2 9a\"\nddb.adapterType = \"ide\"\n"
    )
}

pub fn sparse_descriptor(capacity: u64) -> String {
    descriptor(
        "monolithicSparse",
        &format!("RW {capacity} SPARSE \"disk.vmdk\""),
    )
}

pub fn stream_descriptor(capacity: u64) -> String {
    descriptor(
        "streamOptimized",
        &format!("RDONLY {capacity} SPARSE \"disk.vmdk\""),
    )
}

const OVERHEAD_SECTORS: usize = 128;
const DESC_SECTORS: usize = 20;

fn vmdk_header(capacity: u64, stream: bool) -> [u8; SECTOR] {
    let mut h = [0u8; SECTOR];
    poke(&mut h, 0, b"KDMV");
    poke_le32(&mut h, 4, if stream { 3 } else { 1 });
    let flags: u32 = if stream {
        1 | (1 << 16) | (1 << 17)
    } else {
        1 | 2
    };
    poke_le32(&mut h, 8, flags);
    poke_le64(&mut h, 12, capacity);
    poke_le64(&mut h, 20, 128);
    poke_le64(&mut h, 28, 1);
    poke_le64(&mut h, 36, DESC_SECTORS as u64);
    poke_le32(&mut h, 44, 512);
    poke_le64(&mut h, 48, if stream { 0 } else { 21 });
    poke_le64(&mut h, 56, if stream { u64::MAX } else { 22 });
    poke_le64(&mut h, 64, OVERHEAD_SECTORS as u64);
    poke(&mut h, 73, b"\n \r\n");
    h[77] = u8::from(stream);
    h
}

/// A monolithicSparse VMDK: header, descriptor at sector 1, tables inside the overhead.
pub fn vmdk_sparse(capacity: u64, desc: &str) -> Vec<u8> {
    let mut b = vec![0u8; OVERHEAD_SECTORS * SECTOR];
    poke(&mut b, 0, &vmdk_header(capacity, false));
    poke(&mut b, SECTOR, desc.as_bytes());
    b
}

/// A streamOptimized VMDK whose header says GD_AT_END and whose footer holds the tables.
pub fn vmdk_stream(capacity: u64, desc: &str) -> Vec<u8> {
    let mut b = vec![0u8; (OVERHEAD_SECTORS + 3) * SECTOR];
    poke(&mut b, 0, &vmdk_header(capacity, true));
    poke(&mut b, SECTOR, desc.as_bytes());
    let marker = OVERHEAD_SECTORS * SECTOR;
    poke_le64(&mut b, marker, 1);
    poke_le32(&mut b, marker + 12, 3);
    let mut footer = vmdk_header(capacity, true);
    poke_le64(&mut footer, 56, 100);
    poke(&mut b, marker + SECTOR, &footer);
    b
}

/// Byte offset of the footer sector in a `vmdk_stream` image.
pub fn stream_footer_at(image: &[u8]) -> usize {
    image.len() - 2 * SECTOR
}

/// A deterministic xorshift generator for the no-panic sweeps.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// [`qcow2`] of `size` virtual bytes with one L2 table (cluster 4) under L1 entry 0 and one
/// data cluster (cluster 5) of 0x5a bytes, mapped by the first `mappings` guest clusters:
/// `mappings` > 1 is the shared-cluster image of SECURITY.md item 42.
pub fn qcow2_shared(size: u64, mappings: u64) -> Vec<u8> {
    let c = CLUSTER as u64;
    let mut b = qcow2(3, size);
    b.resize(6 * CLUSTER, 0);
    poke_be64(&mut b, 3 * CLUSTER, (4 * c) | (1 << 63));
    for j in 0..mappings as usize {
        poke_be64(&mut b, 4 * CLUSTER + 8 * j, (5 * c) | (1 << 63));
    }
    b[5 * CLUSTER..].fill(0x5a);
    b
}
