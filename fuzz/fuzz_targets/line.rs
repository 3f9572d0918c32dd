//! The full JSONL line parser, all three shapes: fast path = serde_json = `parse_line`,
//! bounds of an accepted event, and its shape-A round trip (`checks::line`).
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run line seeds/line -- -dict=line.dict
//! ```
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::line(data);
});
