//! The JSONL fast path against serde_json, on arbitrary bytes.
//!
//! ```text
//! cargo +nightly fuzz run flat_line fuzz/seeds -- -max_total_time=300
//! ```
//!
//! Whenever the strict flat-object reader (`src/source/jsonl/line/flat.rs`) answers, its
//! answer must be exactly serde_json's; `parse_line` (fast path, then serde) must always be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obsctl::source::jsonl::{parse_line, parse_line_flat, parse_line_with_serde};

fuzz_target!(|line: &[u8]| {
    // The reader never hands over a line with a newline in it.
    if line.contains(&b'\n') {
        return;
    }
    let reference = parse_line_with_serde(line);
    if let Some(fast) = parse_line_flat(line) {
        assert_eq!(fast, reference);
    }
    assert_eq!(parse_line(line), reference);
});
