//! Fuzzes `.cert` verification: the file layout, PEM and DER X.509 parsing, key extraction
//! and the signature check over a fixed manifest `m` named `m.mf`.
#![no_main]

use std::time::UNIX_EPOCH;

use libfuzzer_sys::fuzz_target;
use vmd::ovf::cert;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = cert::verify(data, "f.cert", b"m", "m.mf", UNIX_EPOCH, &[]) {
        // No anchors: nothing may be called trusted.
        assert!(!report.trusted);
    }
});
