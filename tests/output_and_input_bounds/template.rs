//! `vmd deploy --template FILE`: the file is read through a bound (SECURITY.md item 44:
//! a regular file of at most 1 MiB, never a device or FIFO) and a file that fails to parse
//! is reported by position and problem, never quoted (item 8 of the security issue: with
//! delegated privileges the path may name a file the user cannot read). A refused template
//! defines no domain and leaves the instance as it was.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::env::TestEnv;

/// A blank instance of its own (domain names are global on the host) and its record.
fn instance(env: &TestEnv) -> (String, Value) {
    let name = format!("tpl{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    env.vmd_ok(&["create", &name, "--os-disk", "1M"]);
    let record = env.json(&["show", &name]);
    (name, record)
}

/// `vmd deploy NAME --template FILE`, killed after 60 s and limited to 2 GiB of address
/// space, so that a regression (reading `/dev/zero` without end, waiting on a FIFO) fails
/// the test instead of taking the machine's memory or hanging it.
fn deploy(env: &TestEnv, name: &str, template: &Path) -> Output {
    let vmd = env.command();
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", "60", "prlimit", "--as=2147483648", "--"])
        .arg(vmd.get_program())
        .args(["deploy", name, "--virt-type", "qemu", "--template"])
        .arg(template);
    for (k, v) in vmd.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.output().expect("run vmd deploy")
}

/// Exit 2 with exactly `line` on stderr; the record as it was before (`show --json`); no
/// domain defined; no console directory made.
fn assert_refused(env: &TestEnv, name: &str, before: &Value, out: &Output, line: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr, format!("{line}\n"));
    assert_eq!(&env.json(&["show", name]), before, "the record changed");
    let dominfo = Command::new("virsh")
        .args(["-c", "qemu:///system", "domstate", &format!("vmd-{name}")])
        .output()
        .unwrap();
    assert!(!dominfo.status.success(), "a domain vmd-{name} was defined");
    assert!(
        !env.state_dir().join("consoles").exists(),
        "console directory made"
    );
}

// SECURITY.md item 44: `/dev/zero` would be read until memory runs out.
#[test]
fn deploy_template_dev_zero_is_refused_before_reading() {
    let env = TestEnv::new("tpl-zero");
    let (name, before) = instance(&env);

    let out = deploy(&env, &name, Path::new("/dev/zero"));

    assert_refused(
        &env,
        &name,
        &before,
        &out,
        "vmd: template /dev/zero: is a character device, not a regular file",
    );
}

// SECURITY.md items 43 and 44: opening a FIFO waits for a writer that never comes.
#[test]
fn deploy_template_fifo_is_refused_without_blocking() {
    let env = TestEnv::new("tpl-fifo");
    let (name, before) = instance(&env);
    let fifo = env.dir().join("template.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let out = deploy(&env, &name, &fifo);

    let line = format!(
        "vmd: template {}: is a FIFO, not a regular file",
        fifo.display()
    );
    assert_refused(&env, &name, &before, &out, &line);
}

// SECURITY.md item 44: the 1 MiB cap, checked before reading (the file is sparse).
#[test]
fn deploy_template_over_one_mib_is_refused_by_size() {
    let env = TestEnv::new("tpl-big");
    let (name, before) = instance(&env);
    let big = env.dir().join("big.xml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len((1 << 20) + 1)
        .unwrap();

    let out = deploy(&env, &name, &big);

    let line = format!(
        "vmd: template {}: is 1048577 bytes, more than the limit of 1048576 bytes for a template",
        big.display()
    );
    assert_refused(&env, &name, &before, &out, &line);
}

// Item 8 of the security issue (SECURITY.md item 17: file content into an error sink): a
// file that is not a template, say `/etc/shadow`, is reported by position, never quoted.
#[test]
fn deploy_template_that_is_not_xml_quotes_none_of_the_file() {
    let env = TestEnv::new("tpl-shadow");
    let (name, before) = instance(&env);
    let shadow = env.dir().join("shadow");
    std::fs::write(
        &shadow,
        "root:$6$s3cretsalt$s3crethash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    )
    .unwrap();

    let out = deploy(&env, &name, &shadow);

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(!stderr.contains("daemon"), "{stderr}");
    let line = format!(
        "vmd: template {} did not render well-formed XML at output line 1, column 1: text \
         outside the root element",
        shadow.display()
    );
    assert_refused(&env, &name, &before, &out, &line);
}

// Item 8 of the security issue: minijinja's messages quote the template's text.
#[test]
fn deploy_template_syntax_error_quotes_none_of_the_file() {
    let env = TestEnv::new("tpl-syntax");
    let (name, before) = instance(&env);
    let template = env.dir().join("bad.xml");
    std::fs::write(
        &template,
        "<domain>\n  {{ s3cret_token | n0such }}\n</domain>\n",
    )
    .unwrap();

    let out = deploy(&env, &name, &template);

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(!stderr.contains("n0such"), "{stderr}");
    let line = format!(
        "vmd: template {} failed at line 2, column 21: unknown filter",
        template.display()
    );
    assert_refused(&env, &name, &before, &out, &line);
}
