//! `Window::resolve` over `key=value` specs (week, last, since, until, tz, now): non-empty,
//! previous() ends where it starts, days() cover it (`checks::window`).
//!
//! ```text
//! cd fuzz && cargo +nightly fuzz run window seeds/window -- -dict=window.dict
//! ```
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::window(data);
});
