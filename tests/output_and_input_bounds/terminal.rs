//! SECURITY.md item 41 (terminal injection) with item 17's hostile strings: a package whose
//! system id, OS description, network name and EULA carry line breaks, carriage returns,
//! DEL, C1 controls (CSI, OSC) and bidi overrides (C0 escapes cannot pass the XML parser), shown by `verify`, `import --dry-run`, `show`, `list` and
//! in an error message. A forged line must not appear; no control reaches the terminal.

use std::path::PathBuf;
use std::process::Output;

use crate::common::env::TestEnv;
use crate::common::packages::{package_dir, tiny_parts};

/// Lines a hostile package tries to forge at the start of a line.
const FORGED: [&str; 3] = ["signed by:", "signed:", "manifest: SHA256"];

/// An unsigned copy of the tiny appliance (no manifest) whose strings are hostile.
fn hostile_package(env: &TestEnv) -> PathBuf {
    let dir = package_dir(env.dir(), "hostile");
    tiny_parts(&dir);
    std::fs::remove_file(dir.join("tiny.mf")).unwrap();
    let ovf = dir.join("tiny.ovf");
    let text = std::fs::read_to_string(&ovf)
        .unwrap()
        .replace(
            "ovf:id=\"tiny\"",
            "ovf:id=\"tiny&#10;signed by: CN=Trusted Vendor (trusted)\u{9b}31m\u{202e}\"",
        )
        .replace(
            "Debian GNU/Linux 10 (64-bit)",
            "Debian&#10;signed:    by CN=Trusted Vendor (trusted)\u{202e}\u{9b}2J&#13;\u{7f}",
        )
        .replace("VM Network", "lan&#10;manifest: SHA256 (verified)\u{2066}")
        .replace(
            "    <VirtualHardwareSection>",
            "    <EulaSection>\n      <Info>License</Info>\n      \
             <License>Terms\r\n1. \u{9d}0;owned\u{9c}use\u{202e}it</License>\n    \
             </EulaSection>\n    <VirtualHardwareSection>",
        );
    std::fs::write(&ovf, text).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// No forged line, and nothing a terminal would act on but the line breaks of the output.
fn assert_terminal_safe(what: &str, shown: &str) {
    for line in shown.lines() {
        for forged in FORGED {
            assert!(
                !line.starts_with(forged),
                "{what} forged {line:?}:\n{shown}"
            );
        }
    }
    let raw: Vec<char> = shown
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n') || matches!(c, '\u{200e}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(raw.is_empty(), "{what} printed raw {raw:?}:\n{shown}");
}

fn assert_success(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

// SECURITY.md items 41 and 17.
#[test]
fn verify_hostile_package_strings_are_escaped_and_forge_no_line() {
    let env = TestEnv::new("term-verify");
    let pkg = hostile_package(&env);

    let out = env.vmd(&["verify", pkg.to_str().unwrap()]);

    let shown = assert_success(&out);
    assert_terminal_safe("verify", &shown);
    assert!(
        shown.contains("system tiny\\nsigned by: CN=Trusted Vendor (trusted)\\u{9b}31m\\u{202e})"),
        "{shown}"
    );
    assert!(shown.contains("manifest: none\n"), "{shown}");
    // The EULA keeps its line break and nothing else.
    assert!(
        shown.contains("license agreement:\nTerms\n1. \\u{9d}0;owned\\u{9c}use\\u{202e}it\n"),
        "{shown}"
    );
    assert!(env.volumes().is_empty(), "verify wrote volumes");
}

// SECURITY.md items 41 and 17.
#[test]
fn import_dry_run_hostile_package_strings_are_escaped_and_nothing_is_written() {
    let env = TestEnv::new("term-dry");
    let pkg = hostile_package(&env);

    let out = env.vmd(&[
        "import",
        pkg.to_str().unwrap(),
        "--dry-run",
        "--accept-eula",
    ]);

    let shown = assert_success(&out);
    assert_terminal_safe("import --dry-run", &shown);
    assert!(shown.starts_with("would import "), "{shown}");
    assert!(env.volumes().is_empty(), "dry run wrote volumes");
    assert!(env.catalog().is_empty(), "dry run wrote the catalog");
}

// SECURITY.md items 41 and 17.
#[test]
fn show_and_list_of_hostile_import_are_escaped_and_forge_no_line() {
    let env = TestEnv::new("term-show");
    let pkg = hostile_package(&env);
    env.vmd_ok(&[
        "import",
        pkg.to_str().unwrap(),
        "--name",
        "hostile",
        "--accept-eula",
    ]);

    let show = assert_success(&env.vmd(&["show", "hostile"]));
    let list = assert_success(&env.vmd(&["list"]));

    assert_terminal_safe("show", &show);
    assert_terminal_safe("list", &list);
    assert!(
        show.contains(
            "Debian\\nsigned:    by CN=Trusted Vendor (trusted)\\u{202e}\\u{9b}2J\\r\\u{7f}\n"
        ),
        "{show}"
    );
    assert!(
        show.contains("networks:  lan\\nmanifest: SHA256 (verified)\\u{2066}\n"),
        "{show}"
    );
    assert!(!show.lines().any(|l| l.starts_with("signed")), "{show}");
}

// SECURITY.md items 41 and 17: an error message quoting package strings (the network
// names) as they are.
#[test]
fn deploy_unknown_network_error_quoting_hostile_names_is_one_escaped_line() {
    let env = TestEnv::new("term-err");
    let pkg = hostile_package(&env);
    env.vmd_ok(&[
        "import",
        pkg.to_str().unwrap(),
        "--name",
        "hostile",
        "--accept-eula",
    ]);
    let name = format!("term{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    env.vmd_ok(&["clone", "hostile", &name]);
    let before = env.json(&["show", &name]);

    let out = env.vmd(&[
        "deploy",
        &name,
        "--virt-type",
        "qemu",
        "--network",
        "nosuch=default",
    ]);

    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr,
        format!(
            "vmd: {name} has no network \"nosuch\" (it has: lan manifest: SHA256 \
             (verified)\\u{{2066}})\n"
        )
    );
    assert_terminal_safe("the error", &stderr);
    assert_eq!(env.json(&["show", &name]), before, "the record changed");
}
