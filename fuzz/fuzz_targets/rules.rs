//! Rules files: any text is either rules or located errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        let _ = nudge_core::Triggers::parse(src, "fuzz.toml", Some(&["t".to_owned()]));
    }
});
