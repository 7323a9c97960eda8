//! Fuzzes the OVA tar walker: `index` must refuse or accept any bytes without panicking, and
//! every member it accepts must be readable in full from the archive it came from.
#![no_main]

use std::io::{self, Cursor};

use libfuzzer_sys::fuzz_target;
use vmd::ovf::tar;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let Ok(index) = tar::index(&mut Cursor::new(data), len) else {
        return;
    };
    assert!(index.members.len() <= tar::MAX_MEMBERS);
    for m in &index.members {
        // The index promised that the data lies inside the archive.
        let end = m.offset.checked_add(m.size);
        assert!(end.is_some_and(|end| end <= len), "{m:?} runs past {len}");
        let mut reader = match tar::member_reader(Cursor::new(data), m) {
            Ok(r) => r,
            Err(e) => panic!("cannot open accepted member {m:?}: {e}"),
        };
        match io::copy(&mut reader, &mut io::sink()) {
            Ok(n) => assert_eq!(n, m.size, "member {m:?} read short"),
            Err(e) => panic!("cannot read accepted member {m:?}: {e}"),
        }
    }
});
