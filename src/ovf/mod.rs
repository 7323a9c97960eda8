//! OVF packages: the descriptor model, package readers (directory, OVA), manifests and
//! certificates. Plain code: no libvirt, no tokio, no printing.
