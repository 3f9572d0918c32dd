//! The Loki answer decoder (`loki::parse_vector`, counts, dollars, refusals) on arbitrary
//! bodies, with a write-and-read-back round trip (`checks::loki_answer`).
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run loki_answer seeds/loki_answer -- -dict=loki_answer.dict
//! ```
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::loki_answer(data);
});
