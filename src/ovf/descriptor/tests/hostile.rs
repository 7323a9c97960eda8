//! Hostile descriptors (SECURITY.md §1.4 and checklist items 4, 16, 17): each is refused
//! with a message naming the problem, quickly, or carried through as inert data.

use super::*;

#[test]
fn billion_laughs_is_refused_as_dtd() {
    let e = parse_err(&fixture("hostile-billion-laughs.ovf"));
    assert_eq!(
        e.to_string(),
        "ovf descriptor contains a DTD, which is not allowed"
    );
}

#[test]
fn external_and_parameter_entities_are_refused_as_dtd() {
    let e = parse_err(&fixture("hostile-xxe.ovf"));
    assert_eq!(
        e.to_string(),
        "ovf descriptor contains a DTD, which is not allowed"
    );
}

#[test]
fn entity_reference_without_dtd_is_refused_by_name() {
    let doc = minimal_with("<Name>vm</Name>", "<Name>&passwd;</Name>");
    let line = line_of(&doc, "&passwd;");
    assert_eq!(
        parse_err(&doc).to_string(),
        format!("ovf descriptor uses unknown entity '&passwd;' at line {line}")
    );
}

#[test]
fn ten_thousand_deep_nesting_is_refused_at_the_depth_cap() {
    let deep = format!(
        "{}{}",
        "<x:a xmlns:x=\"urn:x\">".repeat(10_000),
        "</x:a>".repeat(10_000)
    );
    let doc = minimal_with("<NetworkSection>", &format!("{deep}<NetworkSection>"));
    let e = parse_err(&doc).to_string();
    assert!(
        e.starts_with("ovf descriptor nests elements deeper than 64 levels"),
        "{e}"
    );
}

#[test]
fn a_million_items_fail_fast_on_the_element_cap() {
    let items = "<a/>".repeat(1_000_000);
    let doc = minimal_with(
        "</VirtualHardwareSection>",
        &format!("{items}</VirtualHardwareSection>"),
    );
    assert!(
        doc.len() < 4 * 1024 * 1024,
        "the document must stay under the size cap"
    );
    let e = parse_err(&doc);
    assert_eq!(
        e.to_string(),
        "ovf descriptor has more than 100000 elements"
    );
}

#[test]
fn a_million_full_items_fail_on_the_size_cap() {
    let item = "<Item><rasd:ResourceType>1</rasd:ResourceType></Item>";
    let doc = minimal_with(
        "</VirtualHardwareSection>",
        &format!("{}</VirtualHardwareSection>", item.repeat(1_000_000)),
    );
    let e = parse_err(&doc).to_string();
    assert!(
        e.starts_with(&format!(
            "ovf descriptor is {} bytes, over the limit of 4194304 bytes",
            doc.len()
        )),
        "{e}"
    );
}

#[test]
fn huge_attribute_is_refused() {
    let name = "n".repeat(70 * 1024);
    let doc = minimal_with(
        r#"<Network ovf:name="net"/>"#,
        &format!(r#"<Network ovf:name="{name}"/>"#),
    );
    let line = line_of(&doc, "<Network ovf:name");
    assert_eq!(
        parse_err(&doc).to_string(),
        format!("attribute 'ovf:name' of <Network> at line {line} is longer than 65536 bytes")
    );
}

#[test]
fn hundred_megabyte_attribute_is_refused_by_size_before_parsing() {
    let doc = format!(r#"<Envelope a="{}"/>"#, "x".repeat(100 * 1024 * 1024));
    let expected = format!(
        "ovf descriptor is {} bytes, over the limit of 4194304 bytes",
        doc.len()
    );
    assert_eq!(parse_err(&doc).to_string(), expected);
}

#[test]
fn utf16_descriptor_is_refused() {
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(
        fixture("minimal.ovf")
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes()),
    );
    let e = parse(&bytes).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ovf descriptor is UTF-16 encoded; only UTF-8 is supported"
    );
}

#[test]
fn invalid_utf8_is_refused_with_offset() {
    let doc = minimal_with("<Name>vm</Name>", "<Name>vm\u{fffd}</Name>");
    let at = doc.find('\u{fffd}').unwrap();
    let mut bytes = doc.into_bytes();
    bytes.splice(at..at + 3, [0xc3, 0x28, b' ']);
    assert_eq!(
        parse(&bytes).unwrap_err().to_string(),
        format!("ovf descriptor is not valid UTF-8 (bad byte at offset {at})")
    );
}

#[test]
fn unsafe_hrefs_are_refused_naming_href_and_reason() {
    let cases = [
        ("../../etc/shadow", "it leaves the package directory"),
        ("..", "it leaves the package directory"),
        ("/etc/shadow", "it is an absolute path"),
        ("\\\\server\\share\\disk.vmdk", "it is an absolute path"),
        (
            "file:///etc/passwd",
            "it is a URL or carries a drive prefix, not a file in the package",
        ),
        (
            "http://x/y",
            "it is a URL or carries a drive prefix, not a file in the package",
        ),
        (
            "C:disk1.vmdk",
            "it is a URL or carries a drive prefix, not a file in the package",
        ),
        (
            "images/disk1.vmdk",
            "it names a subdirectory, not a file in the package",
        ),
        (
            "appliance.ovf",
            "it names a descriptor, manifest or certificate, not a disk or data file",
        ),
        (
            "appliance.MF",
            "it names a descriptor, manifest or certificate, not a disk or data file",
        ),
    ];
    for (href, reason) in cases {
        let escaped = href.replace('\\', "\\\\");
        let doc = minimal_with(r#"ovf:href="disk1.vmdk""#, &format!(r#"ovf:href="{href}""#));
        assert_eq!(
            parse_err(&doc).to_string(),
            format!("file 'file1' has unsafe href '{escaped}': {reason}"),
            "{href}"
        );
    }
}

#[test]
fn hostile_strings_are_kept_as_data() {
    let env = parse_ok(&fixture("hostile-strings.ovf"));
    let system = &env.systems[0];
    assert_eq!(system.id, "../../vm '\"%n");
    assert_eq!(
        system.name.as_deref(),
        Some("evil'\"<]]>%n%s\n$(reboot)`id`\u{202e}gpj.exe")
    );
    let network = "net'\"<]]>%n%s\n\u{202e}ten";
    assert_eq!(env.networks[0].name, network);
    assert_eq!(
        env.networks[0].description.as_deref(),
        Some("line one\nline two %s%s%s%n </Description>")
    );
    assert_eq!(
        system.annotation.as_deref(),
        Some(r#"<domain type="kvm"><name>pwned</name></domain> ]]> %x%x"#)
    );
    let app = select(&env, None, None).unwrap();
    assert_eq!(
        app.system.hardware.nics[0].network.as_deref(),
        Some(network)
    );
    assert_eq!(app.networks[0].name, network);
}

#[test]
fn hostile_strings_are_escaped_in_messages() {
    let env = parse_ok(&fixture("hostile-strings.ovf"));
    let e = select(&env, Some("x\u{202e}\n\u{1b}[2J"), None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "package has no system 'x\\u{202e}\\n\\u{1b}[2J'; it holds ../../vm \\'\\\"%n"
    );
    assert!(!e.contains('\u{202e}') && !e.contains('\n') && !e.contains('\u{1b}'));
}

#[test]
fn control_characters_in_names_are_refused() {
    let doc = minimal_with("<Name>vm</Name>", "<Name>vm&#27;[31m</Name>");
    assert!(parse_err(&doc)
        .to_string()
        .starts_with("ovf descriptor contains control character U+001B"));
}

#[test]
fn truncated_descriptors_never_panic_and_are_refused() {
    for name in [
        "vmware-ovftool-bios.ovf",
        "ovirt-4.4-ova.ovf",
        "ovf-2.0-storage-ethernet.ovf",
        "vmware-ovf-0.9.ovf",
    ] {
        let doc = fixture(name);
        let complete = doc.trim_end().len();
        for cut in (0..complete).step_by(13) {
            assert!(
                parse(&doc.as_bytes()[..cut]).is_err(),
                "{name} cut at {cut} parsed"
            );
        }
    }
}

#[test]
fn byte_garbage_never_panics_and_is_refused() {
    // A fixed linear congruential sequence: reproducible noise, some of it XML-ish.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"<>/=\"' :&;#xovfEnvelopeItemrasd\n\xff\xc3\x00";
    for _ in 0..500 {
        let len = (state >> 54) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                alphabet[(state >> 33) as usize % alphabet.len()]
            })
            .collect();
        assert!(parse(&bytes).is_err());
    }
}

#[test]
fn byte_flips_in_a_valid_descriptor_never_panic() {
    let doc = fixture("ovf-2.0-storage-ethernet.ovf").into_bytes();
    let mut refused = 0;
    for at in (0..doc.len()).step_by(17) {
        for replacement in [b'<', b'"', b'9', 0x80] {
            let mut mutated = doc.clone();
            mutated[at] = replacement;
            refused += usize::from(parse(&mutated).is_err());
        }
    }
    assert!(refused > 0);
}

#[test]
fn fifty_thousand_files_are_refused_at_the_cap() {
    let files: String = (0..50_000)
        .map(|i| format!(r#"<File ovf:href="f{i}" ovf:id="f{i}"/>"#))
        .collect();
    let doc = minimal_with("</References>", &format!("{files}</References>"));
    assert_eq!(
        parse_err(&doc).to_string(),
        "ovf descriptor declares more than 1024 files"
    );
}

#[test]
fn every_option_times_every_configured_item_is_selected() {
    let ids: Vec<String> = (0..64).map(|i| format!("c{i}")).collect();
    let options: String = ids
        .iter()
        .map(|id| format!(r#"<Configuration ovf:id="{id}"/>"#))
        .collect();
    let all = ids.join(" ");
    let nics: String = (0..1000)
        .map(|i| {
            format!(
                r#"<Item ovf:configuration="{all}"><rasd:Connection>net</rasd:Connection><rasd:InstanceID>n{i}</rasd:InstanceID><rasd:ResourceType>10</rasd:ResourceType></Item>"#
            )
        })
        .collect();
    let doc = minimal_with(
        "<VirtualSystem",
        &format!("<DeploymentOptionSection><Info>i</Info>{options}</DeploymentOptionSection><VirtualSystem"),
    );
    let doc = edit(
        &doc,
        "</VirtualHardwareSection>",
        &format!("{nics}</VirtualHardwareSection>"),
    );
    let env = parse_ok(&doc);
    let app = select(&env, None, Some("c63")).unwrap();
    assert_eq!(app.system.hardware.nics.len(), 1001);
}
