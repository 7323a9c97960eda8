use super::*;

fn small_limits() -> Limits {
    Limits {
        max_bytes: 4096,
        max_elements: 10,
        max_depth: 4,
        max_attributes: 4,
        max_attribute_len: 16,
        max_text_len: 16,
        max_namespaces_in_scope: 3,
    }
}

fn err(doc: &str) -> XmlError {
    read(doc.as_bytes()).expect_err("document should be rejected")
}

#[test]
fn read_prefixed_and_default_namespaces_resolve_to_uris() {
    let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="urn:a" xmlns:b="urn:b" b:attr="1" plain="2">
  <b:Child/>
  <Child/>
</Envelope>"#;
    let root = read(doc.as_bytes()).unwrap();
    assert_eq!((root.ns(), root.local()), (Some("urn:a"), "Envelope"));
    assert_eq!(root.attr(Some("urn:b"), "attr"), Some("1"));
    assert_eq!(root.attr(None, "plain"), Some("2"));
    assert_eq!(
        root.attr(Some("urn:a"), "plain"),
        None,
        "unprefixed attributes have no ns"
    );
    let names: Vec<_> = root
        .children()
        .iter()
        .map(|c| (c.ns(), c.local()))
        .collect();
    assert_eq!(names, [(Some("urn:b"), "Child"), (Some("urn:a"), "Child")]);
}

#[test]
fn read_billion_laughs_is_rejected_as_dtd() {
    let doc = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Envelope>&lol3;</Envelope>"#;
    assert_eq!(
        err(doc).to_string(),
        "ovf descriptor contains a DTD, which is not allowed"
    );
}

#[test]
fn read_external_entity_is_rejected_as_dtd() {
    let doc = r#"<?xml version="1.0"?>
<!DOCTYPE e [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<Envelope>&xxe;</Envelope>"#;
    assert!(matches!(err(doc), XmlError::Dtd));
}

#[test]
fn read_parameter_entity_is_rejected_as_dtd() {
    let doc = r#"<!DOCTYPE e [ <!ENTITY % p SYSTEM "http://x/evil.dtd"> %p; ]><Envelope/>"#;
    assert!(matches!(err(doc), XmlError::Dtd));
}

#[test]
fn read_doctype_without_subset_is_rejected() {
    assert!(matches!(
        err(r#"<!DOCTYPE Envelope SYSTEM "/dev/tty"><Envelope/>"#),
        XmlError::Dtd
    ));
}

#[test]
fn read_unknown_entity_is_rejected_by_name() {
    let e = err("<Envelope>&lol;</Envelope>");
    assert_eq!(
        e.to_string(),
        "ovf descriptor uses unknown entity '&lol;' at line 1"
    );
}

#[test]
fn read_unknown_entity_in_attribute_is_rejected() {
    assert!(matches!(
        err(r#"<Envelope a="&xxe;"/>"#),
        XmlError::UnknownEntity { .. }
    ));
}

#[test]
fn read_predefined_and_character_references_are_decoded() {
    let root = read(r#"<E a="&lt;&#x41;&#66;&quot;">&amp;&apos;&gt;</E>"#.as_bytes()).unwrap();
    assert_eq!(root.attr(None, "a"), Some("<AB\""));
    assert_eq!(root.text(), "&'>");
}

#[test]
fn read_raw_control_character_is_rejected() {
    let e = err("<E>\n\n a\u{1b}[2J</E>");
    assert_eq!(
        e.to_string(),
        "ovf descriptor contains control character U+001B at line 3"
    );
}

#[test]
fn read_control_character_reference_is_rejected() {
    assert!(matches!(
        err("<E>&#1;</E>"),
        XmlError::ControlCharacter { code: 1, .. }
    ));
}

#[test]
fn read_nul_character_reference_is_rejected() {
    assert!(matches!(err("<E>&#0;</E>"), XmlError::Escape { .. }));
}

#[test]
fn read_utf16_with_bom_is_rejected() {
    let mut bytes = vec![0xff, 0xfe];
    for unit in "<E/>".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let e = read(&bytes).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ovf descriptor is UTF-16 encoded; only UTF-8 is supported"
    );
}

#[test]
fn read_utf16_without_bom_is_rejected() {
    let bytes: Vec<u8> = "<E/>"
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    assert!(matches!(read(&bytes), Err(XmlError::Utf16)));
}

#[test]
fn read_invalid_utf8_is_rejected_with_offset() {
    let e = read(b"<E>caf\xe9</E>").unwrap_err();
    assert_eq!(
        e.to_string(),
        "ovf descriptor is not valid UTF-8 (bad byte at offset 6)"
    );
}

#[test]
fn read_declared_latin1_is_rejected() {
    let e = err(r#"<?xml version="1.0" encoding="ISO-8859-1"?><E/>"#);
    assert_eq!(
        e.to_string(),
        "ovf descriptor declares encoding 'ISO-8859-1'; only UTF-8 is supported"
    );
}

#[test]
fn read_xml_1_1_is_rejected() {
    assert!(matches!(
        err(r#"<?xml version="1.1"?><E/>"#),
        XmlError::UnsupportedVersion(_)
    ));
}

#[test]
fn read_utf8_bom_is_accepted() {
    let root = read("\u{feff}<E>x</E>".as_bytes()).unwrap();
    assert_eq!(root.text(), "x");
}

#[test]
fn read_oversized_document_is_rejected_before_parsing() {
    let doc = format!("<E>{}</E>", "a".repeat(5000));
    let e = read_with(doc.as_bytes(), &small_limits()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ovf descriptor is 5007 bytes, over the limit of 4096 bytes"
    );
}

#[test]
fn read_too_many_elements_is_rejected() {
    let doc = format!("<E>{}</E>", "<i/>".repeat(10));
    let e = read_with(doc.as_bytes(), &small_limits()).unwrap_err();
    assert_eq!(e.to_string(), "ovf descriptor has more than 10 elements");
}

#[test]
fn read_nesting_deeper_than_limit_is_rejected() {
    let e = read_with(b"<a><b><c><d><e/></d></c></b></a>", &small_limits()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ovf descriptor nests elements deeper than 4 levels at line 1"
    );
}

#[test]
fn read_ten_thousand_deep_nesting_fails_on_depth() {
    let doc = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    assert!(matches!(
        read(doc.as_bytes()),
        Err(XmlError::TooDeep { max: 64, .. })
    ));
}

#[test]
fn read_too_many_attributes_is_rejected() {
    let e = read_with(br#"<E a="1" b="2" c="3" d="4" e="5"/>"#, &small_limits()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "element <E> at line 1 has more than 4 attributes"
    );
}

#[test]
fn read_long_attribute_is_rejected() {
    let doc = format!(r#"<E name="{}"/>"#, "x".repeat(17));
    let e = read_with(doc.as_bytes(), &small_limits()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "attribute 'name' of <E> at line 1 is longer than 16 bytes"
    );
}

#[test]
fn read_long_text_is_rejected() {
    let doc = format!("<E>{}<![CDATA[{}]]></E>", "x".repeat(10), "y".repeat(10));
    let e = read_with(doc.as_bytes(), &small_limits()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "text of <E> at line 1 is longer than 16 bytes"
    );
}

#[test]
fn read_too_many_namespaces_in_scope_is_rejected() {
    let doc = r#"<a xmlns:p="urn:1" xmlns:q="urn:2"><b xmlns:r="urn:3" xmlns:s="urn:4"/></a>"#;
    let e = read_with(doc.as_bytes(), &small_limits()).unwrap_err();
    assert!(
        matches!(e, XmlError::TooManyNamespaces { max: 3, .. }),
        "{e}"
    );
}

#[test]
fn read_namespaces_leave_scope_with_their_element() {
    let doc = r#"<a><b xmlns:p="urn:1" xmlns:q="urn:2"/><c xmlns:p="urn:1" xmlns:q="urn:2"/></a>"#;
    assert!(read_with(doc.as_bytes(), &small_limits()).is_ok());
}

#[test]
fn read_undeclared_element_prefix_is_rejected() {
    let e = err("<Envelope><vmw:Config/></Envelope>");
    assert_eq!(
        e.to_string(),
        "'vmw:Config' at line 1 uses undeclared namespace prefix 'vmw'"
    );
}

#[test]
fn read_undeclared_attribute_prefix_is_rejected() {
    assert!(matches!(
        err(r#"<E ovf:id="1"/>"#),
        XmlError::UndeclaredPrefix { .. }
    ));
}

#[test]
fn read_same_attribute_through_two_prefixes_is_rejected() {
    let e = err(r#"<E xmlns:a="urn:x" xmlns:b="urn:x" a:id="1" b:id="2"/>"#);
    assert_eq!(
        e.to_string(),
        "element <E> at line 1 has attribute 'b:id' twice"
    );
}

#[test]
fn read_literal_duplicate_attribute_is_rejected() {
    assert!(matches!(
        err(r#"<E id="1" id="2"/>"#),
        XmlError::Attribute { .. }
    ));
}

#[test]
fn read_xsi_type_is_resolved_against_scope() {
    let doc = r#"<E xmlns:o="urn:ovf" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
        <Section xsi:type="o:DiskSection_Type"/></E>"#;
    let root = read(doc.as_bytes()).unwrap();
    let t = root.children()[0].xsi_type().unwrap();
    assert_eq!((t.ns(), t.local()), (Some("urn:ovf"), "DiskSection_Type"));
}

#[test]
fn read_xsi_type_with_undeclared_prefix_is_rejected() {
    let doc = r#"<E xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="zz:T"/>"#;
    assert!(matches!(err(doc), XmlError::UndeclaredPrefix { .. }));
}

#[test]
fn read_attribute_whitespace_is_normalised_but_references_kept() {
    let root = read(b"<E a=\"x\ny\tz\" b=\"x&#10;y\"/>").unwrap();
    assert_eq!(root.attr(None, "a"), Some("x y z"));
    assert_eq!(root.attr(None, "b"), Some("x\ny"));
}

#[test]
fn read_text_keeps_inner_newlines_and_drops_indentation() {
    let root = read(b"<E>\n  <Name>line one\r\nline two</Name>\n</E>").unwrap();
    assert_eq!(root.text(), "");
    assert_eq!(root.children()[0].text(), "line one\nline two");
}

#[test]
fn read_cdata_is_text() {
    let root = read(b"<E><![CDATA[a <b> & c]]></E>").unwrap();
    assert_eq!(root.text(), "a <b> & c");
}

#[test]
fn read_second_root_is_rejected() {
    assert!(matches!(err("<a/><b/>"), XmlError::SecondRoot { .. }));
}

#[test]
fn read_text_outside_root_is_rejected() {
    assert!(matches!(err("<a/>junk"), XmlError::TextOutsideRoot { .. }));
}

#[test]
fn read_truncated_document_is_rejected() {
    let e = err("<Envelope><References>");
    assert_eq!(e.to_string(), "ovf descriptor ends inside <References>");
}

#[test]
fn read_mismatched_end_tag_is_rejected_with_line() {
    let e = err("<a>\n<b>\n</a>");
    assert!(matches!(e, XmlError::Syntax { line: 3, .. }), "{e:?}");
}

#[test]
fn read_empty_input_is_rejected() {
    assert!(matches!(read(b""), Err(XmlError::Empty)));
    assert!(matches!(read(b"   "), Err(XmlError::NoRoot)));
}

#[test]
fn read_comments_and_processing_instructions_are_ignored() {
    let root =
        read(b"<?xml version='1.0'?><!-- c --><?pi x?><E><!-- c -->t</E><!-- c -->").unwrap();
    assert_eq!(root.text(), "t");
}

#[test]
fn read_misplaced_declaration_is_rejected() {
    assert!(matches!(
        err("<E/><?xml version='1.0'?>"),
        XmlError::MisplacedDeclaration { .. }
    ));
}

#[test]
fn read_line_numbers_follow_newlines() {
    let root = read(b"<E>\n\n<a/>\n<b\n/></E>").unwrap();
    let lines: Vec<u64> = root.children().iter().map(Element::line).collect();
    assert_eq!(lines, [3, 5]);
}

#[test]
fn shown_escapes_controls_and_bidi_overrides() {
    let shown = Shown("a\u{202e}b\n'".to_owned()).to_string();
    assert_eq!(shown, "a\\u{202e}b\\n\\'");
}

#[test]
fn name_display_uses_clark_notation() {
    let root = read(br#"<x:E xmlns:x="urn:x"/>"#).unwrap();
    assert_eq!(root.name().to_string(), "{urn:x}E");
}
