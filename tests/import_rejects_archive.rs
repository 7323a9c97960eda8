//! `vmd import` of crafted packages that must be refused, SECURITY.md section 5: archive and
//! paths (items 1-4), the descriptor as hostile XML and hostile strings (16-17), and
//! integrity: manifest, certificate, chunks, references (19-22).
//!
//! Every case is a real import through the `vmd` binary into a [`TestEnv`] on the real
//! libvirtd. A refusal must exit with the documented status (3 for a rejected package), say
//! on one stderr line which file is wrong and why, and leave the pool and the catalog empty:
//! with no volume at all, no host file's bytes can have reached one. The cases vmd accepts by
//! policy (uppercase hex, both manifest spellings, CRLF, a chunked disk, hostile strings kept
//! as data) import, so that each rejection test is known to fail for its one defect only.
//!
//! Packages are built around the tiny appliance's 64 KiB data disk (`tiny-disk2.vmdk`, a blank
//! 64 MiB streamOptimized VMDK), so every import is quick and no guest boots here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on failure by design

mod common;
#[path = "import_rejects_archive/fixtures.rs"]
mod fixtures;
#[path = "import_rejects_archive/trailing.rs"]
mod trailing;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::env::TestEnv;
use common::packages::{digest, raw_tar, write_manifest, RawEntry};
use common::run;
use fixtures::{
    assert_absent, assert_imported, assert_refused, assert_rejected, dir_package, dir_package_with,
    disk_bytes, disk_item, fresh_tmp_path, gnu_long, import, import_quick, mf_line, ova, ova_bytes,
    ova_members, ova_with, pax, special, write_mf, xml_escape, Descriptor, DISK, DISK_DEF,
    DISK_SIZE, FILE, OVF_NAME,
};

// ---------------------------------------------------------------------------------------------
// Controls: the fixtures import when nothing is wrong with them.

#[test]
fn dir_package_valid_imports() {
    let env = TestEnv::new("ctl-dir");
    let pkg = dir_package_with(&env, |_| {});
    let out = import(&env, &pkg, &[]);
    let show = assert_imported(&env, &out, "vm");
    assert_eq!(show["disks"][0]["capacity_bytes"], 64 << 20);
}

#[test]
fn ova_valid_hand_made_imports() {
    let env = TestEnv::new("ctl-ova");
    let pkg = ova(&env, &ova_members());
    let out = import(&env, &pkg, &[]);
    assert_imported(&env, &out, "vm");
}

// ---------------------------------------------------------------------------------------------
// Item 1: traversal member names. vmd never extracts, but the walk must refuse the archive.

/// An OVA holding a valid package plus one member called `name` (raw header bytes).
fn ova_with_member_named(env: &TestEnv, name: &str) -> PathBuf {
    let mut members = ova_members();
    members.push(RawEntry::file(name, b"escaped\n".to_vec()));
    ova(env, &members)
}

#[test]
fn member_absolute_path_is_rejected() {
    let env = TestEnv::new("m-abs");
    let target = PathBuf::from(format!(
        "/etc/cron.d/vmd-escape-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let pkg = ova_with_member_named(&env, target.to_str().unwrap());
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "/etc/cron.d/vmd-escape", "'/'"]);
    assert_absent(&target);
}

#[test]
fn member_parent_dir_is_rejected() {
    let env = TestEnv::new("m-dotdot");
    let pkg = ova_with_member_named(&env, "../escaped");
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", "../escaped", "not a single plain file name"],
    );
    assert_absent(&env.dir().join("escaped"));
}

#[test]
fn member_nested_parent_dirs_is_rejected() {
    let env = TestEnv::new("m-nested");
    let pkg = ova_with_member_named(&env, "a/../../escaped");
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", "a/../../escaped", "not a single plain"],
    );
    assert_absent(&env.dir().join("escaped"));
}

#[test]
fn member_dot_slash_parent_is_rejected() {
    let env = TestEnv::new("m-dotslash");
    let pkg = ova_with_member_named(&env, "./../escaped");
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", "./../escaped", "not a single plain"],
    );
    assert_absent(&env.dir().join("escaped"));
}

#[test]
fn member_name_with_nul_is_rejected() {
    // A reader that stops at the NUL sees `tiny-disk3.vmdk`; one that does not sees a path.
    let env = TestEnv::new("m-nul");
    let pkg = ova_with_member_named(&env, "tiny-disk3.vmdk\0/../../escaped");
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", "tiny-disk3.vmdk\\0", "not a single plain"],
    );
}

#[test]
fn member_name_with_backslash_is_rejected() {
    let env = TestEnv::new("m-bslash");
    let pkg = ova_with_member_named(&env, "..\\..\\escaped");
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", r#""..\\..\\escaped""#, "not a single plain"],
    );
}

#[test]
fn member_name_with_double_slash_is_rejected() {
    let env = TestEnv::new("m-dslash");
    let pkg = ova_with_member_named(&env, "a//escaped");
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "a//escaped", "not a single plain"]);
}

#[test]
fn member_gnu_long_name_over_255_bytes_is_rejected() {
    let env = TestEnv::new("m-gnulong");
    let long = "a".repeat(300);
    let mut members = ova_members();
    members.push(gnu_long(b'L', long.as_bytes()));
    members.push(RawEntry::file("short-name", b"data".to_vec()));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "aaaa", "longer than 255 bytes"]);
}

#[test]
fn member_pax_path_over_255_bytes_is_rejected() {
    let env = TestEnv::new("m-paxlong");
    let long = "b".repeat(300);
    let mut members = ova_members();
    members.push(pax(&[("path", long.as_bytes())]));
    members.push(RawEntry::file("short-name", b"data".to_vec()));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "bbbb", "longer than 255 bytes"]);
}

#[test]
fn member_pax_path_with_traversal_is_rejected() {
    // The ustar name is harmless; the PAX path, which a PAX reader uses, is not.
    let env = TestEnv::new("m-paxpath");
    let mut members = ova_members();
    members.push(pax(&[("path", b"../../escaped")]));
    members.push(RawEntry::file("harmless", b"data".to_vec()));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", "../../escaped", "not a single plain"],
    );
}

// ---------------------------------------------------------------------------------------------
// Item 2: link and special entries.

#[test]
fn member_symlink_to_root_then_path_through_it_is_rejected() {
    let env = TestEnv::new("l-root");
    let target = fresh_tmp_path("symlink");
    let mut members = ova_members();
    members.push(special("evil", b'2', "/"));
    let through = format!("evil{}", target.display());
    members.push(RawEntry::file(&through, b"escaped\n".to_vec()));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", "\"evil\"", "symbolic link", "only regular files"],
    );
    assert_absent(&target);
}

#[test]
fn member_symlink_to_parent_then_path_through_it_is_rejected() {
    let env = TestEnv::new("l-parent");
    let mut members = ova_members();
    members.push(special("up", b'2', ".."));
    members.push(RawEntry::file("up/escaped", b"escaped\n".to_vec()));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "\"up\"", "symbolic link"]);
    assert_absent(&env.dir().join("escaped"));
}

#[test]
fn member_symlink_then_directory_of_same_name_is_rejected() {
    let env = TestEnv::new("l-dir");
    let mut members = ova_members();
    members.push(special("etc", b'2', "/etc"));
    members.push(special("etc", b'5', ""));
    members.push(RawEntry::file("etc/vmd-escape", b"escaped\n".to_vec()));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "\"etc\"", "symbolic link"]);
    assert_absent(Path::new("/etc/vmd-escape"));
}

#[test]
fn member_directory_is_rejected() {
    let env = TestEnv::new("l-dironly");
    let mut members = ova_members();
    members.push(special("subdir", b'5', ""));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "\"subdir\"", "directory"]);
}

#[test]
fn member_hardlink_to_host_file_is_rejected() {
    // The disk itself is a hard link: a reader that followed it would import /etc/shadow.
    let env = TestEnv::new("l-hard");
    let members = vec![ova_members().remove(0), special(DISK, b'1', "/etc/shadow")];
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", DISK, "hard link"]);
}

#[test]
fn member_char_device_is_rejected() {
    let env = TestEnv::new("l-chr");
    let members = vec![ova_members().remove(0), special(DISK, b'3', "")];
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", DISK, "character device"]);
}

#[test]
fn member_block_device_is_rejected() {
    let env = TestEnv::new("l-blk");
    let members = vec![ova_members().remove(0), special(DISK, b'4', "")];
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", DISK, "block device"]);
}

#[test]
fn member_fifo_is_rejected() {
    let env = TestEnv::new("l-fifo");
    let mut members = ova_members();
    members.push(special("pipe", b'6', ""));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "\"pipe\"", "FIFO"]);
}

#[test]
fn member_setuid_mode_is_rejected() {
    let env = TestEnv::new("l-suid");
    let mut members = ova_members();
    members[1].mode = 0o4755;
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", DISK, "4755", "setuid"]);
}

#[test]
fn dir_package_disk_symlink_to_host_file_is_rejected() {
    // In a directory package the disk is a symlink to a host file (here a valid disk image,
    // so following it would import); only regular files resolve.
    let env = TestEnv::new("l-dirlink");
    let pkg = dir_package_with(&env, |_| {});
    let outside = env.dir().join("outside.vmdk");
    std::fs::rename(pkg.join(DISK), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, pkg.join(DISK)).unwrap();
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &[DISK, "is a symbolic link"]);
}

// ---------------------------------------------------------------------------------------------
// Item 3: tar parser differentials.

#[test]
fn member_pax_size_larger_than_ustar_size_is_rejected() {
    let env = TestEnv::new("t-paxbig");
    let mut members = ova_members();
    let pax_size = (DISK_SIZE + 512).to_string();
    members.insert(1, pax(&[("size", pax_size.as_bytes())]));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", DISK, "PAX size of 66048", "ustar size of 65536"],
    );
}

#[test]
fn member_pax_size_smaller_than_ustar_size_is_rejected() {
    let env = TestEnv::new("t-paxsmall");
    let mut members = ova_members();
    members.insert(1, pax(&[("size", b"512")]));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", DISK, "PAX size of 512", "ustar size of 65536"],
    );
}

#[test]
fn member_duplicate_name_is_rejected() {
    // Readers differ on which copy wins; the second one here is no disk at all.
    let env = TestEnv::new("t-dup");
    let mut members = ova_members();
    members.push(RawEntry::file(DISK, vec![0x5a; 4096]));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", DISK, "more than once"]);
}

#[test]
fn member_pax_header_before_gnu_long_name_is_rejected() {
    let env = TestEnv::new("t-paxL");
    let mut members = ova_members();
    members.push(pax(&[("path", b"pax-name")]));
    members.push(gnu_long(b'L', b"gnu-name"));
    members.push(RawEntry::file("ustar-name", b"data".to_vec()));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "extended header", "GNU long name"]);
}

#[test]
fn member_pax_header_before_gnu_long_link_name_is_rejected() {
    let env = TestEnv::new("t-paxK");
    let mut members = ova_members();
    members.push(pax(&[("path", b"pax-name")]));
    members.push(gnu_long(b'K', b"/etc/shadow"));
    members.push(RawEntry::file("ustar-name", b"data".to_vec()));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", "extended header", "GNU long link name"],
    );
}

#[test]
fn archive_trailing_garbage_after_end_marker_is_rejected() {
    let env = TestEnv::new("t-trail");
    let mut bytes = raw_tar(&ova_members());
    let marker_end = bytes.len();
    let mut garbage = vec![0u8; 512];
    garbage[..9].copy_from_slice(b"tiny.ovf\0");
    bytes.extend_from_slice(&garbage);
    let pkg = ova_bytes(&env, &bytes);
    let out = import(&env, &pkg, &[]);
    let offset = marker_end.to_string();
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", "after the end-of-archive marker", &offset],
    );
}

#[test]
fn archive_truncated_in_last_member_is_rejected() {
    let env = TestEnv::new("t-trunc");
    let bytes = raw_tar(&ova_members());
    // Cut in the middle of the disk's data: no end marker, a short last member.
    let cut = bytes.len() - 1024 - DISK_SIZE / 2;
    let pkg = ova_bytes(&env, &bytes[..cut]);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", DISK, "archive is only"]);
}

#[test]
fn archive_without_end_marker_is_rejected() {
    let env = TestEnv::new("t-noend");
    let bytes = raw_tar(&ova_members());
    let pkg = ova_bytes(&env, &bytes[..bytes.len() - 1024]);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "without an end-of-archive marker"]);
}

// ---------------------------------------------------------------------------------------------
// Item 4: hostile ovf:href. Only members of the archive (plain files of the directory) resolve.

/// An OVA whose one File has `href` (raw; escaped here).
fn ova_with_href(env: &TestEnv, href: &str) -> PathBuf {
    let file = FILE.replace(DISK, &xml_escape(href));
    ova_with(env, |d| d.files = file)
}

#[test]
fn href_parent_traversal_is_rejected() {
    let env = TestEnv::new("h-dotdot");
    let pkg = ova_with_href(&env, "../../etc/shadow");
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &[
            OVF_NAME,
            "'file1'",
            "../../etc/shadow",
            "leaves the package",
        ],
    );
}

#[test]
fn href_absolute_path_is_rejected() {
    let env = TestEnv::new("h-abs");
    let pkg = ova_with_href(&env, "/etc/shadow");
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &[OVF_NAME, "/etc/shadow", "absolute path"]);
}

#[test]
fn href_file_url_is_rejected() {
    let env = TestEnv::new("h-fileurl");
    let pkg = ova_with_href(&env, "file:///etc/shadow");
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &[OVF_NAME, "file:///etc/shadow", "URL"]);
}

#[test]
fn href_http_url_is_rejected() {
    let env = TestEnv::new("h-http");
    let pkg = ova_with_href(&env, "http://127.0.0.1:9/disk.vmdk");
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &[OVF_NAME, "http://127.0.0.1:9/disk.vmdk", "URL"],
    );
}

#[test]
fn href_to_descriptor_itself_is_rejected() {
    let env = TestEnv::new("h-ovf");
    let pkg = ova_with_href(&env, OVF_NAME);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &[OVF_NAME, "names a descriptor"]);
}

#[test]
fn href_to_manifest_is_rejected() {
    let env = TestEnv::new("h-mf");
    let pkg = ova_with_href(&env, "tiny.mf");
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["tiny.mf", "names a descriptor, manifest"]);
}

#[test]
fn href_to_certificate_is_rejected() {
    let env = TestEnv::new("h-cert");
    let pkg = ova_with_href(&env, "tiny.cert");
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["tiny.cert", "manifest or certificate"]);
}

#[test]
fn href_to_member_not_in_archive_is_rejected() {
    let env = TestEnv::new("h-missing");
    let pkg = ova_with_href(&env, "tiny-disk9.vmdk");
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["tiny-disk9.vmdk", "not in the package"]);
}

#[test]
fn href_parent_traversal_in_dir_package_is_rejected() {
    // The target exists and is a valid disk: following the href would import it.
    let env = TestEnv::new("h-dirdotdot");
    std::fs::write(env.dir().join("outside.vmdk"), disk_bytes()).unwrap();
    let file = FILE.replace(DISK, "../outside.vmdk");
    let pkg = dir_package_with(&env, |d| d.files = file);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &[OVF_NAME, "../outside.vmdk", "leaves the package"],
    );
}

#[test]
fn href_absolute_path_in_dir_package_is_rejected() {
    let env = TestEnv::new("h-dirabs");
    let outside = env.dir().join("outside.vmdk");
    std::fs::write(&outside, disk_bytes()).unwrap();
    let file = FILE.replace(DISK, outside.to_str().unwrap());
    let pkg = dir_package_with(&env, |d| d.files = file);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &[OVF_NAME, "outside.vmdk", "absolute path"]);
}

// ---------------------------------------------------------------------------------------------
// Item 16: XML attacks in the descriptor. Any DTD is refused; caps hold; bounded time.

#[test]
fn descriptor_billion_laughs_is_rejected() {
    let env = TestEnv::new("x-laughs");
    let mut dtd = String::from("<!DOCTYPE Envelope [\n  <!ENTITY l0 \"lol\">\n");
    for i in 1..10 {
        let refs = format!("&l{};", i - 1).repeat(10);
        dtd.push_str(&format!("  <!ENTITY l{i} \"{refs}\">\n"));
    }
    dtd.push_str("]>\n");
    let pkg = dir_package_with(&env, |d| {
        d.doctype = dtd;
        d.name = "&l9;".to_string();
    });
    let out = import_quick(&env, &pkg);
    assert_rejected(&env, &out, &[OVF_NAME, "contains a DTD"]);
}

#[test]
fn descriptor_external_entity_file_is_rejected() {
    let env = TestEnv::new("x-xxe");
    let pkg = dir_package_with(&env, |d| {
        d.doctype =
            "<!DOCTYPE Envelope [ <!ENTITY passwd SYSTEM \"file:///etc/passwd\"> ]>\n".to_string();
        d.product = "&passwd;".to_string();
    });
    let out = import_quick(&env, &pkg);
    assert_rejected(&env, &out, &[OVF_NAME, "contains a DTD"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("root:"));
}

#[test]
fn descriptor_external_entity_dev_tty_is_rejected() {
    let env = TestEnv::new("x-tty");
    let pkg = dir_package_with(&env, |d| {
        d.doctype = "<!DOCTYPE Envelope [ <!ENTITY tty SYSTEM \"/dev/tty\"> ]>\n".to_string();
        d.product = "&tty;".to_string();
    });
    let out = import_quick(&env, &pkg);
    assert_rejected(&env, &out, &[OVF_NAME, "contains a DTD"]);
}

#[test]
fn descriptor_parameter_entity_is_rejected() {
    let env = TestEnv::new("x-param");
    let pkg = dir_package_with(&env, |d| {
        d.doctype = "<!DOCTYPE Envelope [\n  <!ENTITY % remote SYSTEM \"http://127.0.0.1:9/evil.dtd\">\n  %remote;\n]>\n"
            .to_string();
    });
    let out = import_quick(&env, &pkg);
    assert_rejected(&env, &out, &[OVF_NAME, "contains a DTD"]);
}

#[test]
fn descriptor_doctype_alone_is_rejected() {
    let env = TestEnv::new("x-doctype");
    let pkg = dir_package_with(&env, |d| d.doctype = "<!DOCTYPE Envelope>\n".to_string());
    let out = import_quick(&env, &pkg);
    assert_rejected(&env, &out, &[OVF_NAME, "contains a DTD"]);
}

#[test]
fn descriptor_nested_10000_deep_is_rejected() {
    let env = TestEnv::new("x-deep");
    let deep = format!(
        "{}{}\n",
        "<vmdt:d>".repeat(10_000),
        "</vmdt:d>".repeat(10_000)
    );
    let pkg = dir_package_with(&env, |d| d.sections = deep);
    let out = import_quick(&env, &pkg);
    assert_rejected(&env, &out, &[OVF_NAME, "nests elements deeper than 64"]);
}

#[test]
fn descriptor_million_items_is_rejected_by_the_size_cap() {
    let env = TestEnv::new("x-items");
    let items = "<Item/>".repeat(1_000_000);
    let pkg = dir_package_with(&env, |d| d.items = items);
    let out = import_quick(&env, &pkg);
    assert_rejected(
        &env,
        &out,
        &[OVF_NAME, "more than the 4194304 bytes allowed"],
    );
}

#[test]
fn descriptor_200000_items_under_the_size_cap_is_rejected_by_the_element_cap() {
    let env = TestEnv::new("x-elems");
    let items = "<Item/>".repeat(200_000);
    let pkg = dir_package_with(&env, |d| d.items = items);
    let out = import_quick(&env, &pkg);
    assert_rejected(&env, &out, &[OVF_NAME, "more than 100000 elements"]);
}

#[test]
fn descriptor_100mb_attribute_is_rejected_by_the_size_cap() {
    let env = TestEnv::new("x-attr100m");
    let big = format!("  <vmdt:Big vmdt:a=\"{}\"/>\n", "n".repeat(100 << 20));
    let pkg = dir_package_with(&env, |d| d.sections = big);
    let out = import_quick(&env, &pkg);
    assert_rejected(
        &env,
        &out,
        &[OVF_NAME, "more than the 4194304 bytes allowed"],
    );
}

#[test]
fn descriptor_attribute_over_64k_is_rejected() {
    let env = TestEnv::new("x-attr64k");
    let pkg = dir_package_with(&env, |d| d.network = "n".repeat((64 << 10) + 1));
    let out = import_quick(&env, &pkg);
    assert_rejected(
        &env,
        &out,
        &[OVF_NAME, "ovf:name", "longer than 65536 bytes"],
    );
}

#[test]
fn descriptor_utf16_is_rejected() {
    let env = TestEnv::new("x-utf16");
    let text = Descriptor::valid()
        .render()
        .replace("encoding=\"UTF-8\"", "encoding=\"UTF-16\"");
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let pkg = dir_package(&env, &bytes);
    let out = import_quick(&env, &pkg);
    assert_rejected(&env, &out, &[OVF_NAME, "UTF-16"]);
}

#[test]
fn descriptor_invalid_utf8_is_rejected() {
    let env = TestEnv::new("x-badutf8");
    let text = Descriptor::valid().render();
    let at = text.find("vmd test package").unwrap();
    let mut bytes = text.into_bytes();
    bytes[at] = 0xc3; // a lead byte followed by ASCII
    let pkg = dir_package(&env, &bytes);
    let out = import_quick(&env, &pkg);
    assert_rejected(
        &env,
        &out,
        &[OVF_NAME, "not valid UTF-8", &format!("offset {at}")],
    );
}

// ---------------------------------------------------------------------------------------------
// Item 17: hostile strings are data. They never name anything in libvirt, never reach a shell
// or a format string, and come back intact from `show --json`.

/// Quotes, markup, a CDATA end, format directives, a newline, a path, an RTL override.
const HOSTILE: &str = "../../x '\"<]]>%n%s%x\n$(reboot)`id`/..\u{202e}gpj.exe";

/// A package whose system id, name, product, network, item ElementName and network
/// description are hostile (the description 64 KB of it).
fn hostile_descriptor() -> Descriptor {
    let h = xml_escape(HOSTILE);
    let mut d = Descriptor::valid();
    d.systems = vec![h.clone()];
    d.name = h.clone();
    d.product = h.clone();
    d.element = h.clone();
    d.network = h.clone();
    d.description = xml_escape(&HOSTILE.repeat(64 * 1024 / HOSTILE.len() + 1));
    d
}

#[test]
fn hostile_strings_with_name_import_as_data_and_name_nothing() {
    let env = TestEnv::new("s-named");
    let text = hostile_descriptor().render();
    let pkg = dir_package(&env, text.as_bytes());
    let out = import(&env, &pkg, &["--name", "safe"]);
    let show = assert_imported(&env, &out, "safe");
    assert_eq!(show["source"]["system"], HOSTILE);
    assert_eq!(show["source"]["product"]["product"], HOSTILE);
    assert_eq!(show["networks"][0]["name"], HOSTILE);
    assert_eq!(show["descriptor"], text.as_str());
    let volume = show["disks"][0]["volume"].as_str().unwrap();
    assert!(
        volume.starts_with("vmd-") && volume.ends_with("-d0.qcow2"),
        "{volume}"
    );
}

#[test]
fn hostile_strings_without_name_and_no_usable_file_name_are_refused_asking_for_name() {
    let env = TestEnv::new("s-noname");
    let dir = dir_package(&env, hostile_descriptor().render().as_bytes());
    // The package's own file name is no VMD name either.
    let pkg = env.dir().join("'%n$(reboot)'");
    std::fs::rename(&dir, &pkg).unwrap();
    let out = import(&env, &pkg, &[]);
    assert_refused(&env, &out, 2, &["--name", "not valid VMD names"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{202e}'), "raw RTL override: {stderr}");
}

#[test]
fn hostile_strings_without_name_take_the_package_file_name() {
    let env = TestEnv::new("s-stem");
    let text = hostile_descriptor().render();
    let dir = dir_package(&env, text.as_bytes());
    let pkg = env.dir().join("appliance");
    std::fs::rename(&dir, &pkg).unwrap();
    let out = import(&env, &pkg, &[]);
    let show = assert_imported(&env, &out, "appliance");
    assert_eq!(show["source"]["system"], HOSTILE);
}

// ---------------------------------------------------------------------------------------------
// Item 19: manifest mismatches and spellings.

/// A directory package with a manifest of both files made by `line`.
fn dir_package_with_mf(env: &TestEnv, line: impl Fn(&Path, &str) -> String) -> PathBuf {
    let pkg = dir_package_with(env, |_| {});
    let text = [OVF_NAME, DISK]
        .iter()
        .map(|f| line(&pkg, f))
        .collect::<String>();
    write_mf(&pkg, &text);
    pkg
}

/// A digest of the right length for `alg` that matches nothing.
fn wrong_digest(alg: &str) -> String {
    let len = match alg {
        "SHA1" => 40,
        "SHA256" => 64,
        _ => 128,
    };
    "0123456789abcdef".repeat(8)[..len].to_string()
}

#[test]
fn manifest_wrong_digest_for_descriptor_is_rejected() {
    let env = TestEnv::new("mf-ovf");
    let pkg = dir_package_with_mf(&env, |pkg, f| match f {
        OVF_NAME => format!("SHA256({f})= {}\n", wrong_digest("SHA256")),
        _ => mf_line(pkg, "SHA256", f),
    });
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["manifest digest mismatch for tiny.ovf (SHA256)"],
    );
}

#[test]
fn manifest_wrong_digest_for_disk_is_rejected_and_the_volume_removed() {
    // The disk's digest is checked as it streams into its volume: the volume existed and
    // must be gone.
    let env = TestEnv::new("mf-disk");
    let pkg = dir_package_with_mf(&env, |pkg, f| match f {
        DISK => format!("SHA256({f})= {}\n", wrong_digest("SHA256")),
        _ => mf_line(pkg, "SHA256", f),
    });
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["manifest digest mismatch for tiny-disk2.vmdk (SHA256)"],
    );
}

#[test]
fn manifest_sha512_uppercase_hex_imports() {
    let env = TestEnv::new("mf-upper");
    let pkg = dir_package_with_mf(&env, |pkg, f| {
        format!(
            "SHA512({f})= {}\n",
            digest("SHA512", &pkg.join(f)).to_uppercase()
        )
    });
    let out = import(&env, &pkg, &[]);
    let show = assert_imported(&env, &out, "vm");
    assert_eq!(show["source"]["manifest"], "SHA512");
}

#[test]
fn manifest_sha1_with_space_before_paren_imports() {
    let env = TestEnv::new("mf-sha1sp");
    let pkg = dir_package_with_mf(&env, |pkg, f| {
        format!("SHA1 ({f})= {}\n", digest("SHA1", &pkg.join(f)))
    });
    let out = import(&env, &pkg, &[]);
    let show = assert_imported(&env, &out, "vm");
    assert_eq!(show["source"]["manifest"], "SHA1");
}

#[test]
fn manifest_sha1_without_space_imports() {
    let env = TestEnv::new("mf-sha1");
    let pkg = dir_package_with_mf(&env, |pkg, f| mf_line(pkg, "SHA1", f));
    let out = import(&env, &pkg, &[]);
    let show = assert_imported(&env, &out, "vm");
    assert_eq!(show["source"]["manifest"], "SHA1");
}

#[test]
fn manifest_crlf_line_ends_import() {
    let env = TestEnv::new("mf-crlf");
    let pkg = dir_package_with_mf(&env, |pkg, f| {
        mf_line(pkg, "SHA256", f).replace('\n', "\r\n")
    });
    let out = import(&env, &pkg, &[]);
    let show = assert_imported(&env, &out, "vm");
    assert_eq!(show["source"]["manifest"], "SHA256");
}

#[test]
fn manifest_without_entry_for_referenced_disk_is_rejected() {
    let env = TestEnv::new("mf-nodisk");
    let pkg = dir_package_with(&env, |_| {});
    write_manifest(&pkg, "tiny.mf", "SHA256", &[OVF_NAME]);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["manifest has no entry for tiny-disk2.vmdk"]);
}

#[test]
fn manifest_without_entry_for_descriptor_is_rejected() {
    let env = TestEnv::new("mf-noovf");
    let pkg = dir_package_with(&env, |_| {});
    write_manifest(&pkg, "tiny.mf", "SHA256", &[DISK]);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["tiny.mf", "no entry for tiny.ovf"]);
}

#[test]
fn manifest_garbage_line_is_rejected() {
    let env = TestEnv::new("mf-garbage");
    let pkg = dir_package_with_mf(&env, |pkg, f| match f {
        DISK => format!("this is not a digest\n{}", mf_line(pkg, "SHA256", f)),
        _ => mf_line(pkg, "SHA256", f),
    });
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &[
            "tiny.mf",
            "line 2 is not a digest entry",
            "this is not a digest",
        ],
    );
}

#[test]
fn manifest_two_entries_for_one_file_is_rejected() {
    let env = TestEnv::new("mf-dup");
    let pkg = dir_package_with_mf(&env, |pkg, f| match f {
        DISK => format!(
            "{}SHA256({f})= {}\n",
            mf_line(pkg, "SHA256", f),
            wrong_digest("SHA256")
        ),
        _ => mf_line(pkg, "SHA256", f),
    });
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &[
            "tiny.mf",
            "lists \"tiny-disk2.vmdk\" twice",
            "lines 2 and 3",
        ],
    );
}

#[test]
fn manifest_entry_for_file_not_in_package_imports_and_the_plan_warns() {
    // Policy (as virt-v2v): an entry for a file the package lacks is a warning.
    let env = TestEnv::new("mf-extra");
    let pkg = dir_package_with_mf(&env, |pkg, f| match f {
        DISK => format!(
            "{}SHA256(gone.vmdk)= {}\n",
            mf_line(pkg, "SHA256", f),
            wrong_digest("SHA256")
        ),
        _ => mf_line(pkg, "SHA256", f),
    });
    let plan = env.json(&["import", pkg.to_str().unwrap(), "--dry-run"]);
    let warnings = plan["warnings"].to_string();
    assert!(warnings.contains("gone.vmdk"), "{warnings}");
    let out = import(&env, &pkg, &[]);
    assert_imported(&env, &out, "vm");
}

// ---------------------------------------------------------------------------------------------
// Item 20: certificate. Keys and certificates are made with the openssl CLI at test time.

/// A signing key and its self-signed certificate (ECDSA P-256), in `dir`.
struct Signer {
    key: PathBuf,
    cert_pem: String,
}

fn signer(dir: &Path, tag: &str) -> Signer {
    std::fs::create_dir_all(dir).unwrap();
    let key = dir.join(format!("{tag}.key"));
    let pem = dir.join(format!("{tag}.pem"));
    run(Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&key));
    run(Command::new("openssl")
        .args(["req", "-x509", "-new", "-sha256", "-days", "36500", "-subj"])
        .arg(format!("/O=vmd tests/CN=vmd {tag} signer"))
        .arg("-key")
        .arg(&key)
        .arg("-out")
        .arg(&pem));
    Signer {
        key,
        cert_pem: std::fs::read_to_string(pem).unwrap(),
    }
}

/// The hex SHA256 signature of `data` by `key`.
fn sign(key: &Path, data: &[u8], scratch: &Path) -> String {
    let input = scratch.join("to-sign");
    std::fs::write(&input, data).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg("-binary")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `tiny.cert`: the signature line over `named` and the certificate.
fn write_cert(pkg: &Path, named: &str, signature: &str, cert_pem: &str) {
    let text = format!("SHA256({named})= {signature}\n{cert_pem}");
    std::fs::write(pkg.join("tiny.cert"), text).unwrap();
}

/// A directory package with a good SHA256 manifest, and the bytes of that manifest.
fn dir_package_with_good_mf(env: &TestEnv) -> (PathBuf, Vec<u8>) {
    let pkg = dir_package_with_mf(env, |pkg, f| mf_line(pkg, "SHA256", f));
    let mf = std::fs::read(pkg.join("tiny.mf")).unwrap();
    (pkg, mf)
}

#[test]
fn cert_self_signed_valid_imports_untrusted() {
    // Policy: a signature that verifies under a self-signed certificate is "signed,
    // untrusted", never trusted.
    let env = TestEnv::new("c-ok");
    let (pkg, mf) = dir_package_with_good_mf(&env);
    let keys = env.dir().join("keys");
    let s = signer(&keys, "good");
    write_cert(&pkg, "tiny.mf", &sign(&s.key, &mf, &keys), &s.cert_pem);
    let out = import(&env, &pkg, &[]);
    let show = assert_imported(&env, &out, "vm");
    assert_eq!(show["source"]["certificate"]["trusted"], false);
    assert_eq!(show["source"]["certificate"]["self_signed"], true);
}

#[test]
fn cert_signature_corrupted_is_rejected() {
    let env = TestEnv::new("c-corrupt");
    let (pkg, mf) = dir_package_with_good_mf(&env);
    let keys = env.dir().join("keys");
    let s = signer(&keys, "good");
    let mut sig = sign(&s.key, &mf, &keys).into_bytes();
    // Flip a nibble inside the DER signature (past its header).
    let at = sig.len() - 10;
    sig[at] = if sig[at] == b'0' { b'1' } else { b'0' };
    write_cert(
        &pkg,
        "tiny.mf",
        &String::from_utf8(sig).unwrap(),
        &s.cert_pem,
    );
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["tiny.cert", "signature does not verify for tiny.mf"],
    );
}

#[test]
fn cert_of_another_key_than_the_signer_is_rejected() {
    let env = TestEnv::new("c-otherkey");
    let (pkg, mf) = dir_package_with_good_mf(&env);
    let keys = env.dir().join("keys");
    let (signing, shown) = (signer(&keys, "real"), signer(&keys, "claimed"));
    write_cert(
        &pkg,
        "tiny.mf",
        &sign(&signing.key, &mf, &keys),
        &shown.cert_pem,
    );
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["tiny.cert", "signature does not verify for tiny.mf"],
    );
}

#[test]
fn cert_signing_another_manifest_is_rejected() {
    // A valid signature, but over an earlier manifest: the package's manifest was changed
    // (here: a disk digest replaced) after signing.
    let env = TestEnv::new("c-othermf");
    let (pkg, mf) = dir_package_with_good_mf(&env);
    let keys = env.dir().join("keys");
    let s = signer(&keys, "good");
    let signed = String::from_utf8(mf.clone())
        .unwrap()
        .replace(&digest("SHA256", &pkg.join(DISK)), &wrong_digest("SHA256"));
    write_cert(
        &pkg,
        "tiny.mf",
        &sign(&s.key, signed.as_bytes(), &keys),
        &s.cert_pem,
    );
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["tiny.cert", "signature does not verify for tiny.mf"],
    );
}

#[test]
fn cert_naming_another_manifest_file_is_rejected() {
    let env = TestEnv::new("c-othername");
    let (pkg, mf) = dir_package_with_good_mf(&env);
    let keys = env.dir().join("keys");
    let s = signer(&keys, "good");
    write_cert(&pkg, "other.mf", &sign(&s.key, &mf, &keys), &s.cert_pem);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["tiny.cert", "other.mf", "not the package manifest"],
    );
}

#[test]
fn cert_without_manifest_is_rejected() {
    let env = TestEnv::new("c-nomf");
    let (pkg, mf) = dir_package_with_good_mf(&env);
    let keys = env.dir().join("keys");
    let s = signer(&keys, "good");
    write_cert(&pkg, "tiny.mf", &sign(&s.key, &mf, &keys), &s.cert_pem);
    std::fs::remove_file(pkg.join("tiny.mf")).unwrap();
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["tiny.cert", "the package has none"]);
}

// ---------------------------------------------------------------------------------------------
// Item 21: chunked files. The disk is split into four 16 KiB chunks.

const CHUNK: usize = 16 * 1024;

/// A directory package whose disk is stored in chunks `name(index) -> bytes`, declared with
/// ovf:chunkSize 16384 and ovf:size `declared`.
fn chunked_package(env: &TestEnv, declared: usize, chunks: &[(String, Vec<u8>)]) -> PathBuf {
    let file = format!(
        r#"    <File ovf:href="{DISK}" ovf:id="file1" ovf:size="{declared}" ovf:chunkSize="{CHUNK}"/>"#
    );
    let pkg = dir_package_with(env, |d| d.files = file);
    std::fs::remove_file(pkg.join(DISK)).unwrap();
    for (name, bytes) in chunks {
        std::fs::write(pkg.join(name), bytes).unwrap();
    }
    pkg
}

/// The disk's chunks as vSphere names them: `tiny-disk2.vmdk.000000000`, ...
fn chunks() -> Vec<(String, Vec<u8>)> {
    disk_bytes()
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| (format!("{DISK}.{i:09}"), c.to_vec()))
        .collect()
}

#[test]
fn chunked_disk_complete_imports() {
    let env = TestEnv::new("k-ok");
    let pkg = chunked_package(&env, DISK_SIZE, &chunks());
    let out = import(&env, &pkg, &[]);
    assert_imported(&env, &out, "vm");
}

#[test]
fn chunked_disk_missing_chunk_is_rejected() {
    let env = TestEnv::new("k-missing");
    let mut parts = chunks();
    parts.remove(1);
    let pkg = chunked_package(&env, DISK_SIZE, &parts);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["chunk 1 of tiny-disk2.vmdk is missing"]);
}

#[test]
fn chunked_disk_extra_chunk_is_rejected() {
    let env = TestEnv::new("k-extra");
    let mut parts = chunks();
    parts.push((format!("{DISK}.000000004"), vec![0u8; 512]));
    let pkg = chunked_package(&env, DISK_SIZE, &parts);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["chunk 4 of tiny-disk2.vmdk", "beyond its ovf:size"],
    );
}

#[test]
fn chunked_disk_short_middle_chunk_is_rejected() {
    // The bytes all there, but split 16384/15872/16896/16384: a reader going by sizes on disk
    // would shift every later byte.
    let env = TestEnv::new("k-middle");
    let mut parts = chunks();
    let moved: Vec<u8> = parts[1].1.split_off(CHUNK - 512);
    parts[2].1.splice(0..0, moved);
    let pkg = chunked_package(&env, DISK_SIZE, &parts);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["chunk 1 of tiny-disk2.vmdk is 15872 bytes", "must be 16384"],
    );
}

#[test]
fn chunked_disk_total_not_declared_size_is_rejected() {
    let env = TestEnv::new("k-total");
    let pkg = chunked_package(&env, DISK_SIZE - 100, &chunks());
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["tiny-disk2.vmdk", "65536", "ovf:size is 65436"],
    );
}

#[test]
fn chunked_disk_stray_chunk_with_ten_digit_suffix_is_rejected() {
    let env = TestEnv::new("k-suffix10");
    let mut parts = chunks();
    parts.push((format!("{DISK}.0000000004"), vec![0u8; 512]));
    let pkg = chunked_package(&env, DISK_SIZE, &parts);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["tiny-disk2.vmdk.0000000004", "exactly 9 digits"],
    );
}

#[test]
fn chunked_disk_with_eight_digit_suffixes_is_rejected() {
    let env = TestEnv::new("k-suffix8");
    let parts: Vec<_> = disk_bytes()
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| (format!("{DISK}.{i:08}"), c.to_vec()))
        .collect();
    let pkg = chunked_package(&env, DISK_SIZE, &parts);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["tiny-disk2.vmdk.00000000", "exactly 9 digits"],
    );
}

// ---------------------------------------------------------------------------------------------
// Item 22: referential integrity.

#[test]
fn disk_file_ref_naming_no_file_is_rejected() {
    let env = TestEnv::new("r-fileref");
    let pkg = dir_package_with(&env, |d| {
        d.disks = DISK_DEF.replace("\"file1\"", "\"file7\"")
    });
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &[
            OVF_NAME,
            "disk 'vmdisk1' names file 'file7'",
            "References does not list",
        ],
    );
}

#[test]
fn disk_section_two_disks_on_one_file_is_rejected() {
    let env = TestEnv::new("r-shared");
    let pkg = dir_package_with(&env, |d| {
        d.disks = format!("{DISK_DEF}\n{}", DISK_DEF.replace("vmdisk1", "vmdisk2"));
        d.items = format!(
            "{}\n{}",
            disk_item(4, 0, "vmdisk1"),
            disk_item(5, 1, "vmdisk2")
        );
    });
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &[
            OVF_NAME,
            "disks 'vmdisk1' and 'vmdisk2' both use file 'file1'",
        ],
    );
}

#[test]
fn host_resource_naming_missing_disk_is_rejected() {
    let env = TestEnv::new("r-hostres");
    let pkg = dir_package_with(&env, |d| {
        d.items = format!(
            "{}\n{}",
            disk_item(4, 0, "vmdisk1"),
            disk_item(5, 1, "vmdisk9")
        );
    });
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &[OVF_NAME, "'vmdisk9'", "DiskSection does not list"],
    );
}

#[test]
fn archive_with_two_descriptors_is_rejected() {
    let env = TestEnv::new("r-twoovf");
    let mut members = ova_members();
    members.push(RawEntry::file(
        "other.ovf",
        Descriptor::valid().render().into_bytes(),
    ));
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &["pkg.ova", "more than one .ovf file was found", "other.ovf"],
    );
}

#[test]
fn archive_with_descriptor_not_first_is_rejected() {
    let env = TestEnv::new("r-notfirst");
    let mut members = ova_members();
    members.reverse();
    let pkg = ova(&env, &members);
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &["pkg.ova", "tiny.ovf is not the first member"]);
}

#[test]
fn descriptor_without_virtual_system_is_rejected() {
    let env = TestEnv::new("r-nosys");
    let pkg = dir_package_with(&env, |d| d.systems.clear());
    let out = import(&env, &pkg, &[]);
    assert_rejected(&env, &out, &[OVF_NAME, "holds no VirtualSystem"]);
}

#[test]
fn descriptor_with_two_systems_without_choice_is_refused_asking_for_system() {
    // Valid, but ambiguous: a usage error (exit 2), not a rejection.
    let env = TestEnv::new("r-twosys");
    let pkg = dir_package_with(&env, |d| d.systems = vec!["vm1".into(), "vm2".into()]);
    let out = import(&env, &pkg, &[]);
    assert_refused(&env, &out, 2, &["vm1, vm2", "--system"]);
}

#[test]
fn descriptor_unknown_required_section_is_rejected() {
    let env = TestEnv::new("r-required");
    let pkg = dir_package_with(&env, |d| {
        d.sections = "  <vmdt:MagicSection ovf:required=\"true\">\n    <Info>must be understood</Info>\n  </vmdt:MagicSection>\n"
            .to_string();
    });
    let out = import(&env, &pkg, &[]);
    assert_rejected(
        &env,
        &out,
        &[OVF_NAME, "unsupported required section", "MagicSection"],
    );
}
