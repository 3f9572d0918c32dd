//! Where the figures come from, and which source answers which section.
//!
//! Every source answers the same [`Query`] with an [`Answer`] of rows; choosing among them
//! (and, once there are servers, falling back with a reason) happens here, so neither the
//! sources nor the renderers know about each other.

pub mod http;
pub mod jsonl;
pub mod loki;
pub mod prometheus;
pub mod promql;

use anyhow::Result;

use crate::digest::{Digest, Provenance, Rows, Section, Totals};
use crate::options::DigestOptions;
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
    /// The best source that answers; today the JSONL files.
    Auto,
    Jsonl,
    Prometheus,
}

/// Answers the query from the chosen source and assembles the digest.
pub fn digest(query: &Query, choice: SourceChoice, opts: &DigestOptions) -> Result<Digest> {
    let (answer, source) = match choice {
        SourceChoice::Auto | SourceChoice::Jsonl => (opts.jsonl.answer(query)?, "jsonl"),
        SourceChoice::Prometheus => {
            let mut prom = prometheus::PrometheusSource::new(&opts.prometheus.server, opts.prometheus.promql.clone())?;
            prom.verbose = opts.verbose;
            (block_on(prom.answer(query))?, "prometheus")
        }
    };
    let sources = Section::ALL
        .iter()
        .filter(|&&s| s != Section::Previous || query.previous.is_some())
        .map(|&section| match (source, section) {
            ("prometheus", Section::ByVariant | Section::BySession) => Provenance {
                section,
                source: "none",
                fallback_reason: Some("Prometheus has no per-session or per-variant series".into()),
            },
            _ => Provenance { section, source, fallback_reason: None },
        })
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

/// Runs the server queries of one digest to completion on this thread.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime needs no OS resources that can be missing")
        .block_on(future)
}
