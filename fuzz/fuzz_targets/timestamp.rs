//! Event timestamps (`parse_timestamp`, its fast reader against chrono) and
//! `window::parse_instant`, with format/parse round trips (`checks::timestamp`).
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run timestamp seeds/timestamp -- -dict=timestamp.dict
//! ```
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::timestamp(data);
});
