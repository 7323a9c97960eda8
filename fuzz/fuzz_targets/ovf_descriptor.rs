//! Fuzzes the OVF descriptor parser (XML reader and envelope validation), then resolves
//! every system of what it accepts under the default and under every deployment option.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmd::ovf::descriptor;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = descriptor::parse(data) else {
        return;
    };
    let _ = descriptor::select(&env, None, None);
    for system in &env.systems {
        let _ = descriptor::select(&env, Some(&system.id), None);
        for option in &env.deployment_options {
            let _ = descriptor::select(&env, Some(&system.id), Some(&option.id));
        }
    }
});
