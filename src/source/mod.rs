//! Where the figures come from, and which source answers which section.
//!
//! Every source answers the same [`Query`] with an [`Answer`] of rows; choosing among them
//! (and, once there are servers, falling back with a reason) happens here, so neither the
//! sources nor the renderers know about each other.

pub mod jsonl;

use anyhow::Result;

use crate::digest::{Digest, Provenance, Rows, Section, Totals};
use crate::window::Window;

/// What a digest needs from a source.
#[derive(Clone, Debug)]
pub struct Query {
    pub window: Window,
    /// `None` with `--no-compare`.
    pub previous: Option<Window>,
    /// How many sessions `by_session` must hold.
    pub top: usize,
}

/// A source's rows for a query, and what it noticed on the way.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub rows: Rows,
    pub previous: Option<Totals>,
    pub warnings: Vec<String>,
    pub skipped_lines: u64,
    pub files_read: usize,
}

/// `--source`: which source may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceChoice {
    /// The best source that answers; today the JSONL files, the only one there is.
    Auto,
    Jsonl,
}

/// Answers the query from the chosen source and assembles the digest.
pub fn digest(query: &Query, choice: SourceChoice, jsonl: &jsonl::JsonlSource) -> Result<Digest> {
    let (answer, source) = match choice {
        SourceChoice::Auto | SourceChoice::Jsonl => (jsonl.answer(query)?, "jsonl"),
    };
    let sources = Section::ALL
        .iter()
        .filter(|&&s| s != Section::Previous || query.previous.is_some())
        .map(|&section| Provenance { section, source, fallback_reason: None })
        .collect();
    let mut digest = Digest::assemble(
        query.window.clone(),
        query.previous.clone(),
        answer.rows,
        answer.previous,
        query.top,
        sources,
    );
    digest.warnings = answer.warnings;
    digest.skipped_lines = answer.skipped_lines;
    Ok(digest)
}
