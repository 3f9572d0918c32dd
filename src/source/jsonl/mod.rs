//! The offline source: the gateway's own JSONL telemetry files on this disk.
//!
//! It answers every section (it sees every event), at the price of reading the files.

mod files;
mod piece;
mod progress;
mod reader;
mod tally;

use std::path::PathBuf;

use anyhow::{Context, Result};

pub use crate::event::{agent_from_session_key, normalise_model, parse_line, parse_timestamp, Event, EventKind, Shape};
#[doc(hidden)]
pub use crate::event::{parse_line_flat, parse_line_with_serde};
pub use files::{looks_like_telemetry, Discovery, LogFile};
pub use reader::{Collect, FileReport, MAX_LINE};

use super::{Answer, Query};
use crate::error::Unavailable;
use crate::window::Nanos;
use tally::Tally;

use super::filter::Filters;

#[derive(Clone, Debug)]
pub struct JsonlSource {
    /// Files or directories (`--logs`).
    pub paths: Vec<PathBuf>,
    /// Parsing threads; 1 reads and parses on the calling thread.
    pub threads: usize,
    /// Whether a long scan may show a progress bar (on a terminal); off with `--quiet`.
    pub progress: bool,
    /// Which events count (`--agent`, `--model`, `--experiment`).
    pub filters: Filters,
    /// `paths` is the default (`~/.openclaw/telemetry`), not a `--logs` the user gave.
    pub default_paths: bool,
}

impl JsonlSource {
    /// The telemetry files under the `--logs` paths that may hold events of `[span.0, span.1)`.
    pub fn discover(&self, span: (Nanos, Nanos)) -> Result<Discovery> {
        let found = files::discover(&self.paths, span);
        // No default directory: this machine holds no telemetry, which is data unavailable
        // (exit 3, as when the servers are down), not a --logs given wrongly (exit 2).
        if self.default_paths && found.is_err() && !self.paths.iter().any(|p| p.exists()) {
            return found.context("no --logs given, and the default directory does not exist").context(Unavailable);
        }
        found
    }

    /// Reads `files` on the source's threads, every valid event into `collector`.
    pub fn read<C: Collect>(&self, files: &[LogFile], collector: C) -> Result<(C, Vec<FileReport>)> {
        reader::scan(files, self.threads, self.progress, collector)
    }

    pub fn answer(&self, query: &Query) -> Result<Answer> {
        let tally = Tally::new(&query.window, query.previous.as_ref()).with_filters(&self.filters);
        let discovery = self.discover(tally.span())?;
        let files = discovery.files;
        let (tally, reports) = self.read(&files, tally)?;
        let (rows, previous, previous_costs) = tally.finish(query.top);
        tokens_fit(&rows.totals, "window", &reports)?;
        if let Some(previous) = &previous {
            tokens_fit(previous, "previous window", &reports)?;
        }
        let mut warnings: Vec<String> =
            discovery.doubles.iter().map(|(path, why)| format!("{} not read: {why}", path.display())).collect();
        let unknown: Vec<_> = discovery.ignored.iter().filter(|p| files::looks_like_telemetry(p)).collect();
        if let Some(first) = unknown.first() {
            let more = match unknown.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            warnings.push(format!(
                "{}{more} not read: named like telemetry, but not events.jsonl or a rotation obsctl reads \
                 (events.YYYY-MM-DD.jsonl, events.YYYY-Www.jsonl, optionally .gz); rename, or name it with --logs",
                first.display()
            ));
        }
        let mut skipped_lines = 0;
        for report in &reports {
            skipped_lines += report.skipped;
            if let Some((line, why)) = &report.first_skip {
                let more = match report.skipped {
                    1 => String::new(),
                    n => format!("; {} more after it", n - 1),
                };
                warnings.push(format!(
                    "{}: skipped {} malformed line{} (first at line {line}: {why}{more})",
                    report.path.display(),
                    report.skipped,
                    if report.skipped == 1 { "" } else { "s" },
                ));
            }
        }
        Ok(Answer { rows, previous, previous_costs, warnings, skipped_lines, files_read: files.len() })
    }
}

/// The tally adds token counts with saturation: a sum at `u64::MAX` means the files' counts
/// add up to more than 64 bits hold (every part is at most the total, so the totals tell),
/// which no real count does. Refused rather than shown wrapped or capped.
fn tokens_fit(totals: &crate::digest::Totals, which: &str, reports: &[reader::FileReport]) -> Result<()> {
    for (what, n) in [("input", totals.input_tokens), ("output", totals.output_tokens)] {
        if n == u64::MAX {
            let at = reports
                .iter()
                .find_map(|r| r.first_huge.map(|line| format!("{} line {line}", r.path.display())))
                .map_or("some line's count is not a real one".to_string(), |at| {
                    format!("the first count of {} or more is at {at}", reader::HUGE_COUNT)
                });
            anyhow::bail!(
                "the {which}'s {what} token counts add up to {} or more, past what a count can be: {at}",
                u64::MAX
            );
        }
    }
    Ok(())
}
