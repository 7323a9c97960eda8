//! The sample packages: each descriptor of `ovf/samples/` filled in around the tiny
//! appliance's disks, stored as its producer would store them, in a package directory under
//! the test's environment, usually then archived as an OVA.

use std::path::{Path, PathBuf};

use crate::build::{gzip, new_package, split, write_descriptor, Tiny, DISK1, DISK2, MIB};
use crate::common::env::TestEnv;
use crate::common::packages::{make_ova, size, write_manifest};

/// The chunk size of the chunked samples.
pub const CHUNK: u64 = 4 * MIB;

/// Builds `<name>.ova` from the package directory `<name>`: descriptor, manifest, the rest.
pub fn ova(env: &TestEnv, dir: &Path, name: &str, members: &[&str]) -> PathBuf {
    let out = env.dir().join(format!("{name}.ova"));
    make_ova(dir, &out, members);
    out
}

/// The OVF 2.0 sample with both disks as they are, a SHA-512 manifest, as an OVA.
pub fn ovf2_package(env: &TestEnv, tiny: &Tiny) -> PathBuf {
    let dir = new_package(env, "ovf2");
    tiny.copy_disks(&dir);
    write_descriptor(
        &dir,
        "tiny2.ovf",
        "ovf2.ovf",
        &tiny.values(tiny.plain_sizes()),
    );
    let files = ["tiny2.ovf", DISK1, DISK2];
    write_manifest(&dir, "tiny2.mf", "SHA512", &files);
    ova(env, &dir, "tiny2", &["tiny2.ovf", "tiny2.mf", DISK1, DISK2])
}

/// The gzip sample: both disks `gzip -n`-compressed under their own names, a SHA-1 manifest.
pub fn gzip_package(env: &TestEnv, tiny: &Tiny) -> PathBuf {
    let dir = new_package(env, "gzip");
    let stored = [DISK1, DISK2].map(|f| gzip(&tiny.part(f), &dir.join(f)));
    write_descriptor(&dir, "gzip.ovf", "gzip.ovf", &tiny.values(stored));
    write_manifest(&dir, "gzip.mf", "SHA1", &["gzip.ovf", DISK1, DISK2]);
    ova(env, &dir, "gzip", &["gzip.ovf", "gzip.mf", DISK1, DISK2])
}

/// A chunked sample (`chunked.ovf`, or `gzip-chunked.ovf` when `compress`): each disk file
/// split into 4 MiB chunks, every chunk in the SHA-256 manifest. Returns the OVA and the
/// number of chunks of each disk.
pub fn chunked_package(env: &TestEnv, tiny: &Tiny, compress: bool) -> (PathBuf, [usize; 2]) {
    let (name, sample) = match compress {
        false => ("chunked", "chunked.ovf"),
        true => ("gzip-chunked", "gzip-chunked.ovf"),
    };
    let dir = new_package(env, name);
    let work = new_package(env, &format!("{name}-work"));
    let mut stored = [0; 2];
    let mut chunks: Vec<String> = Vec::new();
    let mut counts = [0; 2];
    for (i, f) in [DISK1, DISK2].iter().enumerate() {
        let whole = if compress {
            let gz = work.join(f);
            gzip(&tiny.part(f), &gz);
            gz
        } else {
            tiny.part(f)
        };
        stored[i] = size(&whole);
        let parts = split(&whole, &dir, f, CHUNK);
        counts[i] = parts.len();
        chunks.extend(parts);
    }
    let mut values = tiny.values(stored);
    values.push(("CHUNK_SIZE", CHUNK.to_string()));
    let ovf = format!("{name}.ovf");
    let mf = format!("{name}.mf");
    write_descriptor(&dir, &ovf, sample, &values);
    let mut members: Vec<&str> = vec![&ovf];
    members.extend(chunks.iter().map(String::as_str));
    write_manifest(&dir, &mf, "SHA256", &members);
    members.insert(1, &mf);
    (ova(env, &dir, name, &members), counts)
}

/// A sample built on the tiny appliance's two plain disks, with a SHA-256 manifest, as an OVA
/// named for the sample.
pub fn plain_package(env: &TestEnv, tiny: &Tiny, sample: &str) -> PathBuf {
    let name = sample.trim_end_matches(".ovf");
    let dir = new_package(env, name);
    tiny.copy_disks(&dir);
    write_descriptor(&dir, sample, sample, &tiny.values(tiny.plain_sizes()));
    let mf = format!("{name}.mf");
    write_manifest(&dir, &mf, "SHA256", &[sample, DISK1, DISK2]);
    ova(env, &dir, name, &[sample, &mf, DISK1, DISK2])
}

/// The collection sample: frontend (OS and data disk) and backend (OS disk and a blank disk).
pub fn collection_package(env: &TestEnv, tiny: &Tiny) -> PathBuf {
    let dir = new_package(env, "collection");
    let files = [
        (DISK1, "frontend-disk1.vmdk"),
        (DISK2, "frontend-disk2.vmdk"),
        (DISK1, "backend-disk1.vmdk"),
    ];
    for (from, to) in files {
        std::fs::copy(tiny.part(from), dir.join(to)).unwrap();
    }
    let names = ["pair.ovf", files[0].1, files[1].1, files[2].1];
    write_descriptor(
        &dir,
        names[0],
        "collection.ovf",
        &tiny.values(tiny.plain_sizes()),
    );
    write_manifest(&dir, "pair.mf", "SHA256", &names);
    ova(
        env,
        &dir,
        "pair",
        &[names[0], "pair.mf", names[1], names[2], names[3]],
    )
}
