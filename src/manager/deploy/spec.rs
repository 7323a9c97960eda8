//! The typed descriptions a deploy and a hot-plug hand to the host, and the naming schemes
//! that reach it (domain names, disk serials). No libvirt XML here: the host writes its own
//! documents from these.

use sha2::{Digest, Sha256};

use crate::host::DiskSpec;
use crate::vmd::{Disk, Role, Vmd};

/// The serial the guest sees for disk `disk_id` of VMD `vmd_id`: `vmd-` and the first 16
/// hex digits of SHA-256(vmd id bytes ‖ disk id). Stable across deploys, 20 characters
/// of `[a-z0-9-]` (QEMU's scsi-hd limit; libvirt mangles spaces).
pub fn disk_serial(vmd_id: &uuid::Uuid, disk_id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // The UUID is a fixed 16 bytes, so the concatenation cannot be ambiguous.
    let digest = Sha256::new()
        .chain_update(vmd_id.as_bytes())
        .chain_update(disk_id.as_bytes())
        .finalize();
    let mut serial = String::with_capacity(20);
    serial.push_str("vmd-");
    for byte in digest.iter().take(8) {
        serial.push(char::from(HEX[usize::from(byte >> 4)]));
        serial.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    serial
}

/// The libvirt domain name for a VMD: `vmd-` and its (already validated) name.
pub fn domain_name(vmd_name: &str) -> String {
    ["vmd-", vmd_name].concat()
}

/// How the guest sees one of the VMD's disks: by pool and volume, at its unit, booting from
/// the OS disk.
pub fn disk_spec(vmd: &Vmd, d: &Disk) -> DiskSpec {
    DiskSpec {
        pool: d.pool.to_string(),
        volume: d.volume.to_string(),
        path: d.path.clone(),
        format: d.format.as_str().to_string(),
        serial: d
            .serial
            .clone()
            .unwrap_or_else(|| disk_serial(&vmd.id.uuid(), &d.id)),
        unit: d.unit,
        boot: d.role == Role::Os,
        readonly: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMD_ID: &str = "0b7e5d2c-9a41-4c3e-b6f8-2d1e0a9c8b7f";

    #[test]
    fn disk_serial_same_ids_is_stable() {
        let vmd = uuid::Uuid::parse_str(VMD_ID).unwrap();

        assert_eq!(disk_serial(&vmd, "vmdisk1"), disk_serial(&vmd, "vmdisk1"));
        // Pinned: a changed serial would change what deployed guests see.
        assert_eq!(disk_serial(&vmd, "vmdisk1"), "vmd-393a175f09d64f9c");
    }

    #[test]
    fn disk_serial_other_disk_or_vmd_differs() {
        let vmd = uuid::Uuid::parse_str(VMD_ID).unwrap();
        let other = uuid::Uuid::parse_str("6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b").unwrap();

        assert_ne!(disk_serial(&vmd, "vmdisk1"), disk_serial(&vmd, "vmdisk2"));
        assert_ne!(disk_serial(&vmd, "vmdisk1"), disk_serial(&other, "vmdisk1"));
    }

    #[test]
    fn disk_serial_any_disk_id_is_short_and_plain() {
        let vmd = uuid::Uuid::parse_str(VMD_ID).unwrap();
        let long = "x".repeat(10_000);
        for disk_id in ["", "vmdisk1", "'\"<]]>&\nx\r\ty", &long] {
            let serial = disk_serial(&vmd, disk_id);

            assert_eq!(serial.len(), 20, "{serial}");
            assert!(serial.starts_with("vmd-"), "{serial}");
            assert!(serial
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-'));
        }
    }

    #[test]
    fn domain_name_prefixes_vmd() {
        assert_eq!(domain_name("web01"), "vmd-web01");
    }
}
