//! Disk images: vmd's own header inspection (qcow2, VMDK, raw) and the one place that runs
//! `qemu-img`.
