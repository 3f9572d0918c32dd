//! A progress bar on stderr for long scans of the telemetry files.
//!
//! Shown only when stderr is a terminal, `CI` is not set and `--quiet` was not given, and
//! only once a scan has run for a second: short runs, pipes, cron jobs, tests and CI never
//! see it. The thread handing out work updates it once per item (a 1 MiB piece or a
//! 2 MiB chunk), never per line, so it costs nothing in the parsing loop. Progress is counted in bytes read from disk (compressed bytes for
//! `.gz` files) against the files' total size.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a scan runs before the bar appears.
const DELAY: Duration = Duration::from_secs(1);

pub struct Progress {
    total: u64,
    started: Instant,
    enabled: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Progress of reading `total` bytes, shown if `wanted` and stderr is a terminal
    /// (outside CI).
    pub fn new(total: u64, wanted: bool) -> Progress {
        let enabled = wanted && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Progress::with(total, enabled)
    }

    fn with(total: u64, enabled: bool) -> Progress {
        Progress { total, started: Instant::now(), enabled, bar: None }
    }

    /// `done` bytes of the total have been read.
    pub fn update(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() >= DELAY {
            // `wide_bar` takes what the terminal has left, so the line never wraps.
            let style =
                ProgressStyle::with_template("reading logs {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::with_draw_target(Some(self.total), ProgressDrawTarget::hidden()).with_style(style);
            // Rate and ETA are measured from here, not from zero bytes a second ago.
            bar.set_position(done.min(self.total));
            bar.reset_eta();
            bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done.min(self.total));
        }
    }

    /// Removes the bar, if it was shown, before the report is printed.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_progress_never_draws() {
        let mut p = Progress::with(100, false);
        p.started = Instant::now().checked_sub(DELAY * 2).expect("uptime over 2 s");
        p.update(10);
        assert!(p.bar.is_none());
    }

    #[test]
    fn the_bar_waits_a_second() {
        let mut p = Progress::with(100, true);
        p.update(10);
        assert!(p.bar.is_none(), "too early");
        p.started = Instant::now().checked_sub(DELAY).expect("uptime over 1 s");
        p.update(20);
        let bar = p.bar.as_ref().expect("shown after a second");
        assert_eq!(bar.position(), 20);
        p.finish();
        assert!(p.bar.is_none());
    }
}
