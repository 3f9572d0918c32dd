//! The CI gate: a `Digest` against a baseline, check by check, into a `Verdict`.
//!
//! Never talks to a server: the command asks the sources for digests and hands them here.

pub mod stats;
