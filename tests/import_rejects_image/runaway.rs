//! Item 14: `qemu-img` running away during an import. At import vmd runs `qemu-img` for the
//! post-write `info` of each volume (and to convert qcow2 disks); a stand-in that allocates
//! without end or hangs on `info` must make the import fail (exit 1: a tool failure, not a
//! package rejection), undo the volume, write no catalog entry and leave no process behind.
//!
//! The `info` limits are fixed (`Limits::INFO`: 1 GiB address space, 30 s CPU, 60 s wall)
//! and no environment variable shortens them, so the hang test takes a minute.

use std::time::{Duration, Instant};

use crate::fixtures::{pattern, processes_with, Disk, Trial, MIB, RAW};

/// A package of one 1 MiB raw disk, whose stand-in `qemu-img` runs `on_info` for `info`
/// and the real `qemu-img` otherwise.
fn with_info_stub(tag: &str, on_info: &str) -> Trial {
    let mut t = Trial::new(tag);
    t.stub_body(&format!(
        "if [ \"$1\" = info ]; then\n{on_info}\nfi\nexec /usr/bin/qemu-img \"$@\""
    ));
    std::fs::write(t.file("disk.img"), pattern(MIB as usize, 11)).unwrap();
    t.package(&[Disk::file("disk.img", RAW, MIB)]);
    t
}

fn info_calls(t: &Trial) -> usize {
    t.stub
        .calls()
        .iter()
        .filter(|c| c.starts_with("info "))
        .count()
}

#[test]
fn import_qemu_img_info_allocating_without_end_fails_and_leaves_nothing() {
    // Doubles a string until the 1 GiB address-space limit stops it.
    let t = with_info_stub("alloc", "s=x\nwhile :; do s=\"$s$s\"; done");
    let out = t.import(&[]);
    t.assert_failed_clean(&out, 1, &["qemu-img info"]);
    assert_eq!(info_calls(&t), 1, "{:?}", t.stub.calls());
    assert!(processes_with(&t.stub.path.to_string_lossy()).is_empty());
}

#[test]
fn import_qemu_img_info_hanging_is_killed_at_wall_timeout_and_leaves_nothing() {
    let mark = format!("vmd-hang-stub-{}", uuid::Uuid::new_v4().simple());
    // Ignores SIGTERM and keeps its pid (exec), under a name this test can look for.
    let t = with_info_stub("hang", &format!("trap '' TERM\nexec -a {mark} sleep 3600"));
    let started = Instant::now();
    let out = t.import(&[]);
    let took = started.elapsed();
    t.assert_failed_clean(
        &out,
        1,
        &["qemu-img info timed out after 60s and was killed"],
    );
    assert!(took < Duration::from_secs(120), "took {took:?}");
    assert_eq!(info_calls(&t), 1, "{:?}", t.stub.calls());
    assert_eq!(processes_with(&mark), Vec::<String>::new(), "left running");
    assert!(processes_with(&t.stub.path.to_string_lossy()).is_empty());
}
