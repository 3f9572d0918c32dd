//! The config file parser (`FileConfig::parse`), then the gate policy and server settings
//! built from it (`checks::config`).
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run config seeds/config -- -dict=config.dict
//! ```
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::config(data);
});
