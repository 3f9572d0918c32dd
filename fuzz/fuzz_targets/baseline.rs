//! The gate's baseline reader, `obsctl.digest/v1` and legacy (`gate::baseline::parse`)
//! (`checks::baseline`).
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run baseline seeds/baseline -- -dict=baseline.dict
//! ```
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::baseline(data);
});
