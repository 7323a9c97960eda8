//! Golden files, escaping of hostile values, and errors that give a position and a kind
//! of problem without quoting the template.

use std::path::Path;

use anyhow::anyhow;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::*;
use crate::host::NicSpec;

const VMD_ID: &str = "0b7e5d2c-9a41-4c3e-b6f8-2d1e0a9c8b7f";
const HOSTILE: &str = "'\"<]]>&\nx\r\ty";

fn spec(virt_type: &str, firmware: &str, data_readonly: bool) -> DomainSpec {
    let disk = |id: &str, file: &str, format: &str, unit, boot, readonly| DiskSpec {
        pool: "default".to_string(),
        volume: file.to_string(),
        path: format!("/var/lib/vmd/pools/default/{file}"),
        format: format.to_string(),
        // The serials vmd gives these disks (`deploy::spec::disk_serial`).
        serial: match id {
            "vmdisk1" => "vmd-393a175f09d64f9c",
            _ => "vmd-8d2d679fee156045",
        }
        .to_string(),
        unit,
        boot,
        readonly,
    };
    DomainSpec {
        name: "vmd-web01".to_string(),
        uuid: "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b".to_string(),
        vmd_id: VMD_ID.to_string(),
        vmd_name: "web01".to_string(),
        virt_type: virt_type.to_string(),
        vcpus: 2,
        memory_mib: 2048,
        firmware: firmware.to_string(),
        disks: vec![
            disk("vmdisk1", "web01-os.qcow2", "qcow2", 0, true, false),
            disk("vmdisk2", "web01-data.raw", "raw", 1, false, data_readonly),
        ],
        nics: vec![
            NicSpec {
                user: false,
                network: Some("default".to_string()),
                model: "virtio".to_string(),
            },
            NicSpec {
                user: true,
                network: None,
                model: "e1000".to_string(),
            },
        ],
        console_log: "/var/lib/vmd/logs/web01-console.log".to_string(),
    }
}

/// Compares with a golden file; `VMD_BLESS=1` rewrites it instead (review the diff).
fn assert_golden(file: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(file);
    if std::env::var_os("VMD_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (VMD_BLESS=1 creates it)", path.display()));
    assert_eq!(actual, expected, "{} differs", path.display());
}

/// The unescaped values of `attribute` on every `element`, as libvirt will read them.
fn attribute_values(xml: &str, element: &str, attribute: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut values = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == element.as_bytes() => {
                if let Some(a) = e.try_get_attribute(attribute).unwrap() {
                    values.push(a.unescape_value().unwrap().into_owned());
                }
            }
            Event::Eof => return values,
            _ => {}
        }
    }
}

fn element_text(xml: &str, element: &str) -> String {
    let mut reader = Reader::from_str(xml);
    loop {
        if let Event::Start(e) = reader.read_event().unwrap() {
            if e.name().as_ref() == element.as_bytes() {
                let Event::Text(text) = reader.read_event().unwrap() else {
                    panic!("<{element}> has no text");
                };
                return text.unescape().unwrap().into_owned();
            }
        }
    }
}

fn template_error_line(result: Result<String, RenderError>) -> (Option<usize>, String) {
    match result {
        Err(err @ RenderError::Template { line, .. }) => (line, format!("{:#}", anyhow!(err))),
        other => panic!("expected a template error, got {other:?}"),
    }
}

#[test]
fn render_default_kvm_matches_golden() {
    let xml = render(DEFAULT_TEMPLATE, &spec("kvm", "bios", false)).unwrap();
    assert_golden("domain-kvm.xml", &xml);
}

#[test]
fn render_default_tcg_efi_matches_golden() {
    let xml = render(DEFAULT_TEMPLATE, &spec("qemu", "efi", true)).unwrap();
    assert_golden("domain-tcg-efi.xml", &xml);
}

#[test]
fn render_default_console_log_empty_names_no_log_file() {
    let mut remote = spec("qemu", "bios", false);
    remote.console_log = String::new();

    let local = render(DEFAULT_TEMPLATE, &spec("qemu", "bios", false)).unwrap();
    let xml = render(DEFAULT_TEMPLATE, &remote).unwrap();

    assert_eq!(
        attribute_values(&local, "log", "file"),
        ["/var/lib/vmd/logs/web01-console.log"]
    );
    assert!(attribute_values(&xml, "log", "file").is_empty(), "{xml}");
    assert!(xml.contains("<serial type='pty'>"), "{xml}");
}

#[test]
fn render_hostile_values_round_trip_through_xml() {
    let plain = render(DEFAULT_TEMPLATE, &spec("kvm", "bios", false)).unwrap();
    let mut hostile = spec("kvm", "bios", false);
    hostile.name = HOSTILE.to_string();
    hostile.vmd_name = HOSTILE.to_string();
    hostile.disks[0].pool = HOSTILE.to_string();
    hostile.disks[0].volume = HOSTILE.to_string();
    hostile.nics[0].network = Some(HOSTILE.to_string());

    let xml = render(DEFAULT_TEMPLATE, &hostile).unwrap();

    // Raw line breaks in attributes would reach libvirt as spaces.
    assert_eq!(xml.lines().count(), plain.lines().count(), "{xml}");
    assert!(!xml.contains("]]>"), "{xml}");
    assert_eq!(element_text(&xml, "name"), HOSTILE);
    assert_eq!(attribute_values(&xml, "vmd:vmd", "name"), [HOSTILE]);
    assert_eq!(attribute_values(&xml, "source", "pool")[0], HOSTILE);
    assert_eq!(attribute_values(&xml, "source", "volume")[0], HOSTILE);
    assert_eq!(attribute_values(&xml, "source", "network"), [HOSTILE]);
}

#[test]
fn render_value_with_control_character_fails_naming_it() {
    let mut spec = spec("kvm", "bios", false);
    spec.vmd_name = "web\u{1}01".to_string();

    let (line, message) = template_error_line(render(DEFAULT_TEMPLATE, &spec));

    assert!(line.is_some(), "{message}");
    assert!(message.contains("U+0001"), "{message}");
}

#[test]
fn render_network_nic_without_network_fails() {
    let mut spec = spec("kvm", "bios", false);
    spec.nics[0].network = None;

    let (line, message) = template_error_line(render(DEFAULT_TEMPLATE, &spec));

    assert!(line.is_some(), "{message}");
    assert!(message.contains("none"), "{message}");
}

#[test]
fn render_syntax_error_fails_naming_template_and_line() {
    let template = "<domain>\n  {% if %}\n</domain>\n";

    let result = render_named("my.xml", template, &spec("kvm", "bios", false));

    let (line, message) = template_error_line(result);
    assert_eq!(line, Some(2));
    assert!(
        message.starts_with("template my.xml failed at line 2, column "),
        "{message}"
    );
    assert!(message.ends_with(": syntax error"), "{message}");
}

#[test]
fn render_undefined_variable_fails_naming_line() {
    let template = "<domain>\n  <name>{{ name }}</name>\n  <title>{{ titel }}</title>\n</domain>\n";

    let (line, message) = template_error_line(render(template, &spec("kvm", "bios", false)));

    assert_eq!(line, Some(3), "{message}");
    assert!(message.contains("undefined"), "{message}");
}

#[test]
fn render_runaway_loops_run_out_of_fuel() {
    let template = "<domain>{% for i in range(100000) %}{% for j in range(100000) %}\
                    {% endfor %}{% endfor %}</domain>";

    let result = render(template, &spec("kvm", "bios", false));

    match result {
        Err(RenderError::Template { kind, .. }) => assert_eq!(kind, ErrorKind::OutOfFuel),
        other => panic!("expected running out of fuel, got {other:?}"),
    }
}

#[test]
fn render_mismatched_tag_fails_naming_output_line() {
    let template = "<domain>\n  <name>{{ name }}</nam>\n</domain>\n";

    let err = render_named("my.xml", template, &spec("kvm", "bios", false)).unwrap_err();

    let message = err.to_string();
    assert!(
        matches!(err, RenderError::Malformed { line: 2, .. }),
        "{message}"
    );
    assert_eq!(
        message,
        "template my.xml did not render well-formed XML at output line 2, column 18: an end \
         tag does not match its start tag"
    );
}

// Item 8 of the security issue (SECURITY.md item 44's `--template` of any file): a file
// that is not a template is reported by position and problem, never quoted.
#[test]
fn render_file_that_is_not_xml_quotes_none_of_it() {
    let shadow = "root:$6$Zm9vYmFy$c2VjcmV0:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";

    let err = render_named("/etc/shadow", shadow, &spec("kvm", "bios", false)).unwrap_err();

    let message = err.to_string();
    assert_eq!(
        message,
        "template /etc/shadow did not render well-formed XML at output line 1, column 1: \
         text outside the root element"
    );
}

// Item 8 of the security issue: minijinja's own details quote template text.
#[test]
fn render_template_errors_quote_no_template_text() {
    let cases = [
        "<domain>{{ s3cret_token | n0such_filter }}</domain>",
        "<domain>\n{% if s3cret_token n0such %}</domain>",
        "<domain>{{ s3cret_token }}</domain>",
        "<domain>{% n0such s3cret_token %}</domain>",
    ];
    for template in cases {
        let err = render_named("t.xml", template, &spec("kvm", "bios", false)).unwrap_err();

        let message = format!("{:#}", anyhow!(err));
        assert!(
            message.starts_with("template t.xml failed at line "),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{template}: {message}");
        assert!(!message.contains("n0such"), "{template}: {message}");
    }
}

// Item 8 of the security issue: quick-xml's messages quote names and entities.
#[test]
fn render_xml_errors_quote_no_names_or_entities() {
    let cases = [
        "<s3cret>\n</n0such>",
        "<domain>&s3cret;</domain>",
        "<domain a='1' a='2'/><s3cret/>",
        "<s3cret>",
    ];
    for template in cases {
        let err = render_named("t.xml", template, &spec("kvm", "bios", false)).unwrap_err();

        let message = err.to_string();
        assert!(matches!(err, RenderError::Malformed { .. }), "{message}");
        assert!(!message.contains("s3cret"), "{template}: {message}");
        assert!(!message.contains("n0such"), "{template}: {message}");
    }
}

#[test]
fn render_unclosed_root_fails() {
    let err = render("<domain>\n<name/>\n", &spec("kvm", "bios", false)).unwrap_err();

    assert!(
        err.to_string().ends_with(": an element is not closed"),
        "{err}"
    );
}

#[test]
fn render_doctype_fails() {
    let template = "<!DOCTYPE domain [<!ENTITY e \"x\">]>\n<domain>&e;</domain>\n";

    let err = render(template, &spec("kvm", "bios", false)).unwrap_err();

    assert!(
        matches!(err, RenderError::Malformed { line: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("DOCTYPE"), "{err}");
}

#[test]
fn render_two_roots_fail() {
    let err = render("<domain/>\n<domain/>\n", &spec("kvm", "bios", false)).unwrap_err();

    assert!(
        matches!(err, RenderError::Malformed { line: 2, .. }),
        "{err}"
    );
}

#[test]
fn render_default_test_driver_defines_and_undefines() {
    let xml = render(DEFAULT_TEMPLATE, &spec("test", "bios", true)).unwrap();
    let conn = virt::connect::Connect::open(Some("test:///default")).unwrap();

    let domain = conn
        .define_domain_xml_flags(&xml, virt::sys::VIR_DOMAIN_DEFINE_VALIDATE)
        .unwrap();

    assert_eq!(domain.name().unwrap(), "vmd-web01");
    let metadata = domain
        .metadata(
            virt::sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
            Some("https://vmd.dev/xmlns/domain/1"),
            0,
        )
        .unwrap();
    assert!(metadata.contains(VMD_ID), "{metadata}");
    domain.undefine().unwrap();
}
