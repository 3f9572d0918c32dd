//! `window::parse_duration`: accepted lengths are positive, bounded, exact (`checks::duration`).
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run duration seeds/duration -- -dict=duration.dict
//! ```
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::duration(data);
});
