//! The offline source: the gateway's own JSONL telemetry files on this disk.
//!
//! It answers every section (it sees every event), at the price of reading the files.

mod files;
mod line;
mod piece;
mod progress;
mod reader;
mod tally;

use std::path::PathBuf;

use anyhow::Result;

pub use line::{agent_from_session_key, normalise_model, parse_line, Event, EventKind, Shape};
#[doc(hidden)]
pub use line::{parse_line_flat, parse_line_with_serde};
pub use reader::{FileReport, MAX_LINE};

use super::{Answer, Query};
use tally::Tally;

pub struct JsonlSource {
    /// Files or directories (`--logs`).
    pub paths: Vec<PathBuf>,
    /// Parsing threads; 1 reads and parses on the calling thread.
    pub threads: usize,
    /// Whether a long scan may show a progress bar (on a terminal); off with `--quiet`.
    pub progress: bool,
}

impl JsonlSource {
    pub fn answer(&self, query: &Query) -> Result<Answer> {
        let tally = Tally::new(&query.window, query.previous.as_ref());
        let (files, _pruned) = files::discover(&self.paths, tally.span())?;
        let (tally, reports) = reader::scan(&files, self.threads, self.progress, tally)?;
        let (rows, previous, previous_costs) = tally.finish(query.top);
        let mut warnings = Vec::new();
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
