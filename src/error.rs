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
    // `downcast_ref` sees context values at any depth; `chain().is::<T>()` would not.
    if err.downcast_ref::<Unavailable>().is_some() {
        UNAVAILABLE
    } else {
        USAGE
    }
}

/// One readable sentence per cause, outermost first, without the markers.
pub fn describe(err: &anyhow::Error) -> String {
    let marker = Unavailable.to_string();
    err.chain().map(ToString::to_string).filter(|m| *m != marker).collect::<Vec<_>>().join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn marker_at_any_depth_means_exit_3() {
        let inner = anyhow::anyhow!("connection refused").context(Unavailable);
        let outer = Err::<(), _>(inner).context("Prometheus at http://x").unwrap_err();
        assert_eq!(exit_code(&outer), UNAVAILABLE);
        assert_eq!(describe(&outer), "Prometheus at http://x: connection refused");
        assert_eq!(exit_code(&anyhow::anyhow!("bad flag")), USAGE);
    }
}
