//! The Prometheus answer decoder (`prometheus::decode` and the sample/series conversions,
//! the duration quantiles) on arbitrary bodies (`checks::prom_answer`).
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run prom_answer seeds/prom_answer -- -dict=prom_answer.dict
//! ```
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::prom_answer(data);
});
