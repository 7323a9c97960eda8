//! Reading libvirt's capabilities document: which domain types (`kvm`, `qemu`) the host
//! offers for its own architecture. Plain parsing; the document comes from libvirt.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::HostError;

/// The domain types offered for `hvm` guests of the host's own architecture, in document
/// order and without repeats.
pub fn guest_domain_types(caps_xml: &str) -> Result<Vec<String>, HostError> {
    let bad = |message: String| HostError::BadXml {
        what: "capabilities",
        message,
    };
    let mut reader = Reader::from_str(caps_xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut host_arch = None::<String>;
    // Per <guest>: its os_type, its arch and the domain types listed under that arch.
    let mut guest_os = String::new();
    let mut guest_arch = String::new();
    let mut guest_types: Vec<String> = Vec::new();
    let mut offered: Vec<(String, String)> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| bad(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.name().as_ref().to_vec();
                let attr = |key: &[u8]| -> Option<String> {
                    e.try_get_attribute(key)
                        .ok()
                        .flatten()
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                let parents: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                match (parents.as_slice(), name.as_slice()) {
                    ([b"capabilities", b"guest"], b"arch") => {
                        guest_arch = attr(b"name").unwrap_or_default();
                    }
                    ([b"capabilities", b"guest", b"arch"], b"domain") => {
                        if let Some(t) = attr(b"type") {
                            guest_types.push(t);
                        }
                    }
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    path.push(name);
                }
            }
            Event::Text(t) => {
                let parents: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                let text = t.unescape().map_err(|e| bad(e.to_string()))?;
                match parents.as_slice() {
                    [b"capabilities", b"host", b"cpu", b"arch"] => {
                        host_arch = Some(text.trim().to_string());
                    }
                    [b"capabilities", b"guest", b"os_type"] => guest_os = text.trim().to_string(),
                    _ => {}
                }
            }
            Event::End(_) => {
                if path.len() == 2 && path[1] == b"guest" {
                    if guest_os == "hvm" {
                        for t in guest_types.drain(..) {
                            offered.push((guest_arch.clone(), t));
                        }
                    }
                    guest_os.clear();
                    guest_arch.clear();
                    guest_types.clear();
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let host_arch = host_arch.ok_or_else(|| bad("no host cpu arch".to_string()))?;
    let mut types: Vec<String> = Vec::new();
    for (arch, t) in offered {
        if arch == host_arch && !types.contains(&t) {
            types.push(t);
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: &str = r#"<capabilities>
  <host><uuid>x</uuid><cpu><arch>x86_64</arch><model>qemu64</model></cpu></host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='i686'><domain type='qemu'/><domain type='kvm'/></arch>
  </guest>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <wordsize>64</wordsize>
      <domain type='qemu'/>
      <domain type='kvm'/>
    </arch>
  </guest>
  <guest>
    <os_type>hvm</os_type>
    <arch name='aarch64'><domain type='qemu'/></arch>
  </guest>
</capabilities>"#;

    #[test]
    fn guest_domain_types_host_arch_lists_qemu_and_kvm() {
        assert_eq!(guest_domain_types(CAPS).unwrap(), vec!["qemu", "kvm"]);
    }

    #[test]
    fn guest_domain_types_without_kvm_lists_only_qemu() {
        let caps = CAPS.replace("<domain type='kvm'/>", "");
        assert_eq!(guest_domain_types(&caps).unwrap(), vec!["qemu"]);
    }

    #[test]
    fn guest_domain_types_no_host_arch_is_an_error() {
        let err = guest_domain_types("<capabilities><host/></capabilities>").unwrap_err();
        assert!(err.to_string().contains("no host cpu arch"), "{err}");
    }
}
