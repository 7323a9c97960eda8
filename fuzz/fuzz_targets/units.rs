//! Fuzzes the size and allocation-unit parsers. The input is split at the first `0xff` byte
//! (never part of valid UTF-8) into a value and a units string, each read lossily.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmd::ovf::units;

fuzz_target!(|data: &[u8]| {
    let (value, unit_text) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let value = String::from_utf8_lossy(value);
    let unit_text = unit_text.map(String::from_utf8_lossy);
    let plain = units::bytes(&value, None);
    let _ = units::parse_size(&value);
    let _ = units::parse_units(&value);
    if let Some(unit_text) = unit_text.as_deref() {
        let scaled = units::bytes(&value, Some(unit_text));
        let _ = units::parse_units(unit_text);
        let _ = units::parse_size(unit_text);
        // Scaling is a checked multiplication of the plain value by the unit's multiplier.
        if let (Ok(n), Ok(m)) = (&plain, units::parse_units(unit_text)) {
            assert_eq!(scaled.ok(), n.checked_mul(m));
        }
    }
});
