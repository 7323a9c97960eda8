//! Throwaway guests: a transient libvirt domain over given disk images, run under TCG until
//! it powers off, with its serial console captured to a file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use virt::connect::Connect;

/// One disk of a throwaway guest.
pub struct Disk {
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: &'static str,
    pub serial: String,
    pub unit: u32,
    pub boot: bool,
}

/// What a guest printed, and how long it ran.
pub struct Run {
    pub console: String,
    pub elapsed: Duration,
}

impl Run {
    /// The `boots=<n>` the guest reported for the disk with this serial.
    pub fn boots(&self, serial: &str) -> Option<u64> {
        let prefix = format!("VMD-GUEST disk={serial} boots=");
        self.console
            .lines()
            .filter_map(|l| l.trim().strip_prefix(&prefix))
            .find_map(|n| n.trim().parse().ok())
    }

    pub fn done(&self) -> bool {
        self.console.lines().any(|l| l.trim() == "VMD-GUEST done")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// The domain XML of a throwaway guest.
pub fn domain_xml(name: &str, disks: &[Disk], console: &Path) -> String {
    let mut devices = String::from("<controller type='scsi' index='0' model='virtio-scsi'/>\n");
    for d in disks {
        let dev = format!("sd{}", (b'a' + d.unit as u8) as char);
        devices.push_str(&format!(
            "<disk type='file' device='disk'>\
             <driver name='qemu' type='{fmt}'/>\
             <source file='{path}'/>\
             <target dev='{dev}' bus='scsi'/>\
             <serial>{serial}</serial>{boot}\
             <address type='drive' controller='0' bus='0' target='0' unit='{unit}'/>\
             </disk>\n",
            fmt = d.format,
            path = xml_escape(&d.path.to_string_lossy()),
            serial = xml_escape(&d.serial),
            boot = if d.boot { "<boot order='1'/>" } else { "" },
            unit = d.unit,
        ));
    }
    format!(
        "<domain type='qemu'>\
         <name>{name}</name>\
         <memory unit='MiB'>256</memory>\
         <vcpu>1</vcpu>\
         <os><type arch='x86_64'>hvm</type></os>\
         <features><acpi/></features>\
         <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>\
         <on_crash>destroy</on_crash>\
         <devices>{devices}\
         <serial type='file'><source path='{console}'/><target port='0'/></serial>\
         <memballoon model='none'/>\
         </devices></domain>",
        name = xml_escape(name),
        console = xml_escape(&console.to_string_lossy()),
    )
}

/// Boots a transient guest on `disks` and waits until it powers off (or `timeout`).
pub fn boot(name: &str, disks: &[Disk], console: &Path, timeout: Duration) -> Run {
    virt::error::clear_error_callback();
    let conn = Connect::open(Some("qemu:///system")).expect("connect qemu:///system");
    let _ = std::fs::remove_file(console);
    let xml = domain_xml(name, disks, console);
    let start = Instant::now();
    let dom = conn
        .create_domain_xml(&xml, 0)
        .unwrap_or_else(|e| panic!("create domain {name}: {e}\n{xml}"));
    loop {
        let active = dom.is_active().unwrap_or(false);
        if !active {
            break;
        }
        if start.elapsed() > timeout {
            let _ = dom.destroy();
            let console = std::fs::read_to_string(console).unwrap_or_default();
            panic!("guest {name} still running after {timeout:?}; console:\n{console}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let elapsed = start.elapsed();
    let console = std::fs::read_to_string(console).unwrap_or_default();
    Run { console, elapsed }
}
