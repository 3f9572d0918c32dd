//! The JSONL fast path against serde_json, on arbitrary bytes.
//!
//! ```text
//! cargo +nightly fuzz run flat_line fuzz/seeds -- -max_total_time=300
//! ```
//!
//! Whenever the strict flat-object reader (`src/source/jsonl/line/flat.rs`) answers, its
//! answer must be exactly serde_json's; `parse_line` (fast path, then serde) must always be.
//! The input is cut at newlines into lines read one after another.
#![no_main]

use libfuzzer_sys::fuzz_target;
use obsctl::source::jsonl::{parse_line, parse_line_flat, parse_line_with_serde};

fuzz_target!(|data: &[u8]| {
    // One line or several, read in order: the fast reader reuses the reading of the
    // members a line ends with when the line before ended with the same ones.
    for line in data.split(|&b| b == b'\n') {
        let reference = parse_line_with_serde(line);
        if let Some(fast) = parse_line_flat(line) {
            assert_eq!(fast, reference);
        }
        assert_eq!(parse_line(line), reference);
    }
});
