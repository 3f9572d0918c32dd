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

/// Errors of one step that failed in several places (outputs that could not be written,
/// while the others were): each is a line of its own on standard error.
#[derive(Debug)]
pub struct Several(pub Vec<anyhow::Error>);

impl fmt::Display for Several {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.iter().map(describe).collect::<Vec<_>>().join("; "))
    }
}

impl std::error::Error for Several {}

/// `Ok` when nothing failed, the error when one did, all of them ([`Several`]) otherwise.
pub fn all(mut errors: Vec<anyhow::Error>) -> anyhow::Result<()> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(Several(errors).into()),
    }
}

pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(Several(errors)) = err.downcast_ref::<Several>() {
        return errors.iter().map(exit_code).max().unwrap_or(USAGE);
    }
    // `downcast_ref` sees context values at any depth; `chain().is::<T>()` would not.
    if err.downcast_ref::<Unavailable>().is_some() {
        UNAVAILABLE
    } else {
        USAGE
    }
}

/// One readable sentence per cause, outermost first, without the markers, on one line: a
/// cause that spans lines (a server's plain-text error body) has them joined with "; ".
pub fn describe(err: &anyhow::Error) -> String {
    let marker = Unavailable.to_string();
    err.chain()
        .map(|cause| one_line(&cause.to_string()))
        .filter(|m| *m != marker && !m.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// What standard error shows for `err`: one line per error, each to be printed after
/// `error: `.
pub fn lines(err: &anyhow::Error) -> Vec<String> {
    match err.downcast_ref::<Several>() {
        Some(Several(errors)) => errors.iter().map(describe).collect(),
        None => vec![describe(err)],
    }
}

fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
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

    #[test]
    fn every_error_is_one_line() {
        let body = anyhow::anyhow!("parse error at line 1, col 5:\n  syntax error: unexpected IDENTIFIER\n");
        let err = Err::<(), _>(body).context("Loki at http://x: query refused").unwrap_err();
        assert_eq!(
            lines(&err),
            ["Loki at http://x: query refused: parse error at line 1, col 5:; syntax error: unexpected IDENTIFIER"]
        );
    }

    #[test]
    fn several_errors_are_a_line_each_and_the_worst_code() {
        assert!(all(Vec::new()).is_ok());
        let one = all(vec![anyhow::anyhow!("cannot write a.md")]).unwrap_err();
        assert_eq!(lines(&one), ["cannot write a.md"]);
        let both =
            all(vec![anyhow::anyhow!("cannot write a.md"), anyhow::anyhow!("connection refused").context(Unavailable)])
                .unwrap_err();
        assert_eq!(lines(&both), ["cannot write a.md", "connection refused"]);
        assert_eq!(exit_code(&both), UNAVAILABLE);
    }
}
