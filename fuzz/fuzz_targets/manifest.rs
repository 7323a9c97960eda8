//! Fuzzes the `.mf` manifest parser, and the look-ups on what it accepts: every listed file
//! has an expected digest of its algorithm's length that verifies against itself only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmd::ovf::manifest::{self, Hasher};

fuzz_target!(|data: &[u8]| {
    let Ok(mf) = manifest::parse(data) else {
        return;
    };
    for file in mf.files() {
        let Some((alg, digest)) = mf.expected(file) else {
            panic!("listed file {file:?} has no expected digest");
        };
        assert_eq!(digest.len(), alg.digest_len());
        assert!(mf.verify(file, digest).is_ok());
        let mut wrong = digest.to_vec();
        if let Some(b) = wrong.first_mut() {
            *b ^= 1;
        }
        assert!(mf.verify(file, &wrong).is_err());
        assert_eq!(Hasher::new(alg).finish().len(), alg.digest_len());
    }
    assert!(mf.verify("\0not listed", &[]).is_err());
});
