//! `vmd import` of packages whose disk images are hostile or broken (SECURITY.md section 5,
//! items 5-15): a real import on the real libvirtd, into a throwaway pool, with a stand-in
//! `qemu-img` that records every call before handing over to the real one. Each rejection is
//! checked as a user sees it: the exit status, one line of stderr naming the file and the
//! problem, no volume, no file in the pool, no catalog entry, and `qemu-img` never run on
//! what the inspector refused.
//!
//! Fixtures are made at test time by `qemu-img create`/`convert` and patched in place.
//! Layout: `fixtures` (packages, stand-in, assertions), then one module per checklist area.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;

#[path = "import_rejects_image/bounds.rs"]
mod bounds;
#[path = "import_rejects_image/confusion.rs"]
mod confusion;
#[path = "import_rejects_image/fixtures.rs"]
mod fixtures;
#[path = "import_rejects_image/gzip.rs"]
mod gzip;
#[path = "import_rejects_image/qcow2.rs"]
mod qcow2;
#[path = "import_rejects_image/runaway.rs"]
mod runaway;
#[path = "import_rejects_image/sizes.rs"]
mod sizes;
#[path = "import_rejects_image/special.rs"]
mod special;
#[path = "import_rejects_image/vmdk.rs"]
mod vmdk;
