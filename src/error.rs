//! Exit codes, the same for every command (CONTRACT.md §2).
//!
//! Errors travel as `anyhow::Error`; a marker in the chain says which code they mean, so
//! the code that fails does not need to know about process exit at all.

use std::fmt;

pub const OK: u8 = 0;
/// `gate`: a regression was found; `doctor`: an error-level finding.
pub const FINDING: u8 = 1;
/// Usage, configuration or input error.
pub const USAGE: u8 = 2;
/// Data unavailable or incomplete: fail closed.
pub const UNAVAILABLE: u8 = 3;

/// Marks an error as "the data is not there" (exit 3) rather than "you asked wrongly"
/// (exit 2). Attach with `.context(Unavailable)`.
#[derive(Debug)]
pub struct Unavailable;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("data unavailable")
    }
}

impl std::error::Error for Unavailable {}

pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<Unavailable>()) {
        UNAVAILABLE
    } else {
        USAGE
    }
}

/// One readable sentence per cause, outermost first, without the markers.
pub fn describe(err: &anyhow::Error) -> String {
    err.chain().filter(|e| !e.is::<Unavailable>()).map(ToString::to_string).collect::<Vec<_>>().join(": ")
}
