//! `obsctl doctor`: why a cost report may be wrong, one finding at a time.
//!
//! Each source is checked on its own ([`prometheus`], [`loki`], [`jsonl`]): is it there,
//! does it hold what the digest reads, in the window, under the names obsctl expects, and
//! is anything known to be broken in how it was fed. Then [`reconcile`] asks every source
//! that answered for the same window's digest and compares the figures they share.
//!
//! A check returns [`Finding`]s: a severity, what was found, what it means for the cost
//! report, and how to fix it. Checks never format for a terminal and renderers
//! (`report::doctor`) never query: a [`Report`] is all that passes between them.

pub mod jsonl;
pub mod loki;
pub mod prometheus;
pub mod reconcile;

use crate::error;
use crate::source::Sources;
use crate::usd::Usd;
use crate::window::{Nanos, Window, NANOS_PER_SEC};

/// How bad a finding is. Ordered: the worst is the greatest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    /// The report is still right, or right with a caveat it states, but something is off.
    Warning,
    /// The report is wrong or missing something: `obsctl doctor` exits 1.
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One thing a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// A stable id: `prometheus.series`, `loki.timestamps`, `reconcile.cost`, …
    pub check: &'static str,
    pub severity: Severity,
    /// What it is about: a series, a file, a stream label, a pair of sources.
    pub subject: Option<String>,
    /// What was found, in a sentence or two.
    pub message: String,
    /// What it means for the cost report.
    pub impact: String,
    /// How to fix it (`None` when there is nothing to fix).
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, subject: Option<String>, message: String, impact: &str) -> Finding {
        Finding { check, severity: Severity::Ok, subject, message, impact: impact.to_string(), fix: None }
    }

    /// The lookup every other check of a source needs failed: the digest's queries would fail
    /// the same way.
    pub fn refused(check: &'static str, why: &str, fix: &str) -> Finding {
        Finding::problem(
            check,
            Severity::Error,
            None,
            format!("the server answers, but refused the lookup: {why}"),
            "the digest's queries fail the same way: nothing comes from this source",
            fix,
        )
    }

    /// A lookup that failed: the check could not decide.
    pub fn undecided(check: &'static str, why: &str, fix: &str) -> Finding {
        Finding::problem(
            check,
            Severity::Warning,
            None,
            format!("the lookup failed: {why}"),
            "this check could not decide",
            fix,
        )
    }

    pub fn problem(
        check: &'static str,
        severity: Severity,
        subject: Option<String>,
        message: String,
        impact: &str,
        fix: &str,
    ) -> Finding {
        Finding { check, severity, subject, message, impact: impact.to_string(), fix: Some(fix.to_string()) }
    }
}

/// Whether a source must answer: one named with `--source`, or configured explicitly
/// (a URL, `--logs`), must; a default location that is not there is only a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Required,
    Optional,
}

impl Need {
    /// The severity of "this source is not there".
    pub fn missing(self) -> Severity {
        match self {
            Need::Required => Severity::Error,
            Need::Optional => Severity::Warning,
        }
    }
}

/// What became of one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceStatus {
    /// `prometheus`, `loki`, `jsonl`.
    pub source: &'static str,
    /// Its URL (credentials redacted) or its `--logs` paths.
    pub location: String,
    /// It answered: its checks ran.
    pub answered: bool,
}

/// What a source's checks found, and whether the source answered at all.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: SourceStatus,
    pub findings: Vec<Finding>,
}

/// One source's figures for the window, for the side-by-side comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figures {
    pub source: &'static str,
    pub cost: Usd,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Distinct sessions (Loki, JSONL) or costed-session observations (Prometheus).
    pub sessions: u64,
}

/// Everything `obsctl doctor` found.
#[derive(Clone, Debug)]
pub struct Report {
    pub window: Window,
    /// When the checks ran.
    pub now: Nanos,
    pub sources: Vec<SourceStatus>,
    pub findings: Vec<Finding>,
    /// The window's figures from every source whose digest could be computed.
    pub figures: Vec<Figures>,
}

/// The overall state, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No source could be checked at all.
    Unavailable,
    Error,
    Warning,
    Ok,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Unavailable => "unavailable",
            Status::Error => "error",
            Status::Warning => "warning",
            Status::Ok => "ok",
        }
    }
}

impl Report {
    pub fn status(&self) -> Status {
        if !self.sources.iter().any(|s| s.answered) {
            return Status::Unavailable;
        }
        match self.findings.iter().map(|f| f.severity).max() {
            Some(Severity::Error) => Status::Error,
            Some(Severity::Warning) => Status::Warning,
            _ => Status::Ok,
        }
    }

    /// 3 when nothing could be checked, 1 on any error-level finding, else 0.
    pub fn exit_code(&self) -> u8 {
        match self.status() {
            Status::Unavailable => error::UNAVAILABLE,
            Status::Error => error::FINDING,
            Status::Warning | Status::Ok => error::OK,
        }
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == severity).count()
    }

    /// `2 errors, 3 warnings, 12 ok` (or why nothing was checked).
    pub fn headline(&self) -> String {
        if self.status() == Status::Unavailable {
            return "nothing could be checked: no source answered".into();
        }
        let n = |sev, one: &str, many: &str| {
            let k = self.count(sev);
            format!("{k} {}", if k == 1 { one } else { many })
        };
        format!(
            "{}, {}, {}",
            n(Severity::Error, "error", "errors"),
            n(Severity::Warning, "warning", "warnings"),
            n(Severity::Ok, "ok", "ok")
        )
    }
}

/// What `obsctl doctor` is asked to check.
pub struct Checkup {
    pub window: Window,
    /// How to reach every source (the same settings as `digest`).
    pub sources: Sources,
    /// Which sources to check, and whether each must answer; `None`: not checked.
    pub prometheus: Option<Need>,
    pub loki: Option<Need>,
    pub jsonl: Option<Need>,
    /// A scrape job is the gateway's when its name contains one of these (lowercase).
    pub gateway_jobs: Vec<String>,
    pub now: Nanos,
}

/// Runs every check: the sources at once (the servers on this thread, the files on
/// another), then the reconciliation of those that answered.
pub fn run(c: &Checkup) -> Report {
    let (servers, files) = std::thread::scope(|scope| {
        let files = c.jsonl.map(|need| scope.spawn(move || jsonl::check(&c.sources.jsonl, &c.window, c.now, need)));
        let servers = crate::source::block_on(async {
            tokio::join!(
                async {
                    match c.prometheus {
                        Some(need) => Some(prometheus::check(c, need).await),
                        None => None,
                    }
                },
                async {
                    match c.loki {
                        Some(need) => Some(loki::check(c, need).await),
                        None => None,
                    }
                }
            )
        });
        let files = files.map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        (servers, files)
    });
    let outcomes: Vec<Outcome> = [servers.0, servers.1, files].into_iter().flatten().collect();
    let answered: Vec<&'static str> = outcomes.iter().filter(|o| o.status.answered).map(|o| o.status.source).collect();
    let mut findings: Vec<Finding> = outcomes.iter().flat_map(|o| o.findings.iter().cloned()).collect();
    let (figures, compared) = reconcile::check(c, &answered);
    findings.extend(compared);
    Report {
        window: c.window.clone(),
        now: c.now,
        sources: outcomes.into_iter().map(|o| o.status).collect(),
        findings,
        figures,
    }
}

/// `3d 4h`, `25 min`, `12 s`: a duration for a sentence.
pub fn human_duration(ns: Nanos) -> String {
    let s = (ns / NANOS_PER_SEC).unsigned_abs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(answered: &[bool], severities: &[Severity]) -> Report {
        let window = Window::resolve(&Default::default(), chrono_tz::UTC, chrono::Utc::now()).unwrap();
        Report {
            window,
            now: 0,
            sources: answered
                .iter()
                .map(|&answered| SourceStatus { source: "jsonl", location: String::new(), answered })
                .collect(),
            findings: severities
                .iter()
                .map(|&severity| Finding {
                    check: "x",
                    severity,
                    subject: None,
                    message: String::new(),
                    impact: String::new(),
                    fix: None,
                })
                .collect(),
            figures: vec![],
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(report(&[true], &[Severity::Ok, Severity::Warning]).exit_code(), 0);
        assert_eq!(report(&[true, false], &[Severity::Ok, Severity::Error]).exit_code(), 1);
        assert_eq!(report(&[false, false], &[Severity::Error]).exit_code(), 3, "nothing answered");
        assert_eq!(report(&[], &[]).exit_code(), 3, "nothing asked");
        assert_eq!(report(&[true], &[Severity::Error, Severity::Ok]).headline(), "1 error, 0 warnings, 1 ok");
    }

    #[test]
    fn durations_for_humans() {
        assert_eq!(human_duration(12 * NANOS_PER_SEC), "12 s");
        assert_eq!(human_duration(-300 * NANOS_PER_SEC), "5 min");
        assert_eq!(human_duration(5 * 3600 * NANOS_PER_SEC), "5 h");
        assert_eq!(human_duration((3 * 86_400 + 4 * 3600) * NANOS_PER_SEC), "3d 4h");
    }
}
