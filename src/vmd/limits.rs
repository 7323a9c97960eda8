//! The bounds on what a VMD may hold: vCPUs, memory, disk sizes and SCSI units. Every
//! request and package is checked against them before anything is written, so that what
//! passes does not fail later at `deploy` or `start`. Plain values and checks: no libvirt,
//! no I/O, no printing.

use std::collections::BTreeSet;

/// The highest SCSI unit (LUN) on vmd's virtio-scsi controller. QEMU's virtio-scsi bus takes
/// LUNs 0 to 16383 (`VIRTIO_SCSI_MAX_LUN`); libvirt defines a domain with a higher unit, but
/// QEMU then refuses to start it ("bad scsi device lun").
pub const MAX_SCSI_UNIT: u32 = 16383;

/// The most vCPUs `create` gives an instance: the `maxCpus` libvirt reports for the `pc`
/// machine type, which vmd's default domain template gets.
pub const MAX_VCPUS: u32 = 255;

/// The most memory, in MiB (16 TiB), the bound import applies to a package's memory too.
pub const MAX_MEMORY_MIB: u64 = 16 << 20;

/// The smallest new blank disk: 1 MiB.
pub const MIN_DISK_BYTES: u64 = 1 << 20;

/// The largest new blank disk: 64 TiB, the bound the image inspector applies to an imported
/// disk's virtual size. Far from any overflow of a byte count.
pub const MAX_DISK_BYTES: u64 = 64 << 40;

/// A requested amount outside its bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value} is out of range: use {min} to {max}")]
pub struct OutOfRange {
    what: String,
    value: String,
    min: String,
    max: String,
}

fn check(
    what: &str,
    value: u64,
    min: u64,
    max: u64,
    show: fn(u64) -> String,
) -> Result<u64, OutOfRange> {
    if (min..=max).contains(&value) {
        return Ok(value);
    }
    Err(OutOfRange {
        what: what.to_string(),
        value: show(value),
        min: show(min),
        max: show(max),
    })
}

fn plain(n: u64) -> String {
    n.to_string()
}

fn mib(n: u64) -> String {
    format!("{n} MiB")
}

/// A byte count as a user would write it when it is a whole number of MiB, GiB or TiB.
fn size(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB")] {
        if n != 0 && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// `vcpus` when it is 1 to [`MAX_VCPUS`].
pub fn vcpus(vcpus: u32) -> Result<u32, OutOfRange> {
    check("vcpus", vcpus.into(), 1, MAX_VCPUS.into(), plain).map(|_| vcpus)
}

/// `memory` (in MiB) when it is 1 MiB to [`MAX_MEMORY_MIB`].
pub fn memory_mib(memory: u64) -> Result<u64, OutOfRange> {
    check("memory", memory, 1, MAX_MEMORY_MIB, mib)
}

/// `bytes` when a new disk of that size is [`MIN_DISK_BYTES`] to [`MAX_DISK_BYTES`];
/// `what` names the disk in the error ("OS disk size").
pub fn disk_bytes(what: &str, bytes: u64) -> Result<u64, OutOfRange> {
    check(what, bytes, MIN_DISK_BYTES, MAX_DISK_BYTES, size)
}

/// The unit for a new disk beside disks at `used`: the one after the highest, or, when that
/// would pass [`MAX_SCSI_UNIT`] (or `u32::MAX`, in a record written by hand), the lowest
/// free one; `None` when every unit is taken.
pub fn next_unit(used: impl IntoIterator<Item = u32>) -> Option<u32> {
    let used: BTreeSet<u32> = used.into_iter().collect();
    let Some(&highest) = used.last() else {
        return Some(0);
    };
    highest
        .checked_add(1)
        .filter(|u| *u <= MAX_SCSI_UNIT)
        .or_else(|| (0..=MAX_SCSI_UNIT).find(|u| !used.contains(u)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // SECURITY.md item 13: zero and past-the-bound counts and sizes are refused.
    #[test]
    fn vcpus_zero_and_above_machine_limit_are_refused() {
        assert_eq!(
            vcpus(0).unwrap_err().to_string(),
            "vcpus 0 is out of range: use 1 to 255"
        );
        assert!(vcpus(256).is_err());
        assert!(vcpus(u32::MAX).is_err());
        assert_eq!(vcpus(1), Ok(1));
        assert_eq!(vcpus(255), Ok(255));
    }

    #[test]
    fn memory_zero_and_above_16_tib_are_refused() {
        assert_eq!(
            memory_mib(0).unwrap_err().to_string(),
            "memory 0 MiB is out of range: use 1 MiB to 16777216 MiB"
        );
        assert!(memory_mib(MAX_MEMORY_MIB + 1).is_err());
        assert!(memory_mib(u64::MAX).is_err());
        assert_eq!(memory_mib(MAX_MEMORY_MIB), Ok(MAX_MEMORY_MIB));
    }

    #[test]
    fn disk_bytes_zero_tiny_and_huge_are_refused_naming_the_disk() {
        assert_eq!(
            disk_bytes("OS disk size", 0).unwrap_err().to_string(),
            "OS disk size 0 bytes is out of range: use 1 MiB to 64 TiB"
        );
        assert!(disk_bytes("size", MIN_DISK_BYTES - 1).is_err());
        assert!(disk_bytes("size", MAX_DISK_BYTES + 1).is_err());
        assert!(disk_bytes("size", u64::MAX).is_err());
        assert_eq!(disk_bytes("size", MIN_DISK_BYTES), Ok(MIN_DISK_BYTES));
        assert_eq!(disk_bytes("size", MAX_DISK_BYTES), Ok(MAX_DISK_BYTES));
    }

    #[test]
    fn max_disk_bytes_is_the_inspectors_bound() {
        assert_eq!(MAX_DISK_BYTES, crate::image::inspect::MAX_VIRTUAL_SIZE);
    }

    // SECURITY.md item 13: the unit after u32::MAX used to wrap to 0.
    #[test]
    fn next_unit_follows_the_highest_and_never_wraps() {
        assert_eq!(next_unit([]), Some(0));
        assert_eq!(next_unit([0, 1, 5]), Some(6));
        assert_eq!(next_unit([0, u32::MAX]), Some(1));
        assert_eq!(next_unit([0, MAX_SCSI_UNIT]), Some(1));
        assert_eq!(next_unit([MAX_SCSI_UNIT - 1]), Some(MAX_SCSI_UNIT));
    }

    #[test]
    fn next_unit_with_every_unit_taken_is_none() {
        assert_eq!(next_unit(0..=MAX_SCSI_UNIT), None);
        assert_eq!(next_unit((0..=MAX_SCSI_UNIT).chain([u32::MAX])), None);
    }
}
