//! The bounds on what a VMD may hold: SCSI units. Every request and package is checked
//! against them before anything is written, so that what passes does not fail later at
//! `deploy` or `start`. Plain values and checks: no libvirt, no I/O, no printing.

use std::collections::BTreeSet;

/// The highest SCSI unit (LUN) on vmd's virtio-scsi controller. QEMU's virtio-scsi bus takes
/// LUNs 0 to 16383 (`VIRTIO_SCSI_MAX_LUN`); libvirt defines a domain with a higher unit, but
/// QEMU then refuses to start it ("bad scsi device lun").
pub const MAX_SCSI_UNIT: u32 = 16383;

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
