//! The local JSONL files: which are there (plain, rotated, `.gz`), which shapes their
//! lines are, how many events fall in the window, the malformed lines, the model calls
//! without a cost (and their models), and how old the newest event is.
//!
//! The files are found and read exactly as the digest finds and reads them (the JSONL
//! source's discovery, reader and line parser); only what is counted differs.

use std::collections::BTreeMap;
use std::path::Path;

use super::{human_duration, Finding, Need, Outcome, Severity, SourceStatus};
use crate::error::describe;
use crate::source::jsonl::{
    looks_like_telemetry, Collect, Discovery, Event, EventKind, FileReport, JsonlSource, Shape,
};
use crate::window::{format_rfc3339, Nanos, Window, NANOS_PER_SEC};

/// Newer than this, the files are being written (when the window reaches the present).
pub const MAX_AGE_HOURS: i64 = 24;

/// What the events of the files say, beyond the digest's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Survey {
    window: (Nanos, Nanos),
    /// Events in the window, by shape A, B, C.
    pub shapes: [u64; 3],
    pub events: u64,
    pub model_calls: u64,
    /// Model calls in the window without a cost, by (model, provider).
    pub uncosted: BTreeMap<(String, String), u64>,
    /// The newest event of any file read, in the window or not.
    pub newest: Option<Nanos>,
    /// Events after [`AHEAD`] past `now` (0 until [`Survey::ahead_of`] sets it): a clock
    /// that runs ahead, on the gateway's host or on this one.
    now: Option<Nanos>,
    pub ahead: u64,
}

/// How far past this machine's clock an event may lie before its clock is suspect.
const AHEAD: Nanos = 5 * 60 * NANOS_PER_SEC;

impl Survey {
    pub fn new(window: &Window) -> Survey {
        Survey { window: (window.start, window.end), ..Survey::default() }
    }

    /// The same survey, counting the events that lie ahead of `now`.
    pub fn ahead_of(self, now: Nanos) -> Survey {
        Survey { now: Some(now), ..self }
    }
}

impl Collect for Survey {
    fn add(&mut self, e: &Event<'_>) {
        self.newest = self.newest.max(Some(e.time));
        self.ahead += u64::from(self.now.is_some_and(|now| e.time > now + AHEAD));
        if !(self.window.0 <= e.time && e.time < self.window.1) {
            return;
        }
        self.events += 1;
        self.shapes[match e.shape {
            Shape::A => 0,
            Shape::B => 1,
            Shape::C => 2,
        }] += 1;
        if e.kind == EventKind::ModelCall {
            self.model_calls += 1;
            if e.cost.is_none() {
                *self.uncosted.entry((e.model.to_string(), e.provider.to_string())).or_default() += 1;
            }
        }
    }

    fn empty_like(&self) -> Survey {
        Survey { window: self.window, now: self.now, ..Survey::default() }
    }

    fn merge(&mut self, other: Survey) {
        for (mine, theirs) in self.shapes.iter_mut().zip(other.shapes) {
            *mine += theirs;
        }
        self.events += other.events;
        self.model_calls += other.model_calls;
        for (k, n) in other.uncosted {
            *self.uncosted.entry(k).or_default() += n;
        }
        self.newest = self.newest.max(other.newest);
        self.ahead += other.ahead;
    }
}

pub fn check(source: &JsonlSource, window: &Window, now: Nanos, need: Need) -> Outcome {
    let location = source.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let mut status = SourceStatus { source: "jsonl", location, answered: false };
    let unavailable = |status, check, why: String| {
        let finding = Finding::problem(
            check,
            need.missing(),
            None,
            why,
            "no local telemetry: --source jsonl fails; --source auto has nothing to fall back to when a server does not answer",
            "point --logs (OBSCTL_LOGS) at the gateway's telemetry directory (default ~/.openclaw/telemetry)",
        );
        Outcome { status, findings: vec![finding] }
    };
    let found = match source.discover((window.start, window.end)) {
        Ok(found) => found,
        Err(e) => return unavailable(status, "jsonl.files", describe(&e)),
    };
    let (survey, reports) = match source.read(&found.files, Survey::new(window).ahead_of(now)) {
        Ok(read) => read,
        Err(e) => return unavailable(status, "jsonl.read", describe(&e)),
    };
    status.answered = true;
    let mut findings = vec![files_finding(&found, &reports)];
    findings.extend(found.ignored.iter().filter(|p| looks_like_telemetry(p)).map(|p| ignored_finding(p)));
    findings.push(window_finding(&survey, window));
    findings.push(malformed_finding(&reports));
    findings.push(uncosted_finding(&survey));
    findings.push(freshness_finding(&survey, window, now));
    Outcome { status, findings }
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn files_finding(found: &Discovery, reports: &[FileReport]) -> Finding {
    let (files, pruned) = (&found.files, &found.pruned);
    let gz = files.iter().filter(|f| f.gzip).count();
    let live = files.iter().filter(|f| f.live).count();
    let rotated = files.len() - live;
    let lines: u64 = reports.iter().map(|r| r.lines).sum();
    let names: Vec<String> = files.iter().map(|f| name_of(&f.path)).collect();
    let mut message = format!(
        "{} read ({} live, {} rotated, {} gzip; {} lines): {}",
        plural(files.len(), "file", "files"),
        live,
        rotated,
        gz,
        lines,
        names.join(", ")
    );
    if !pruned.is_empty() {
        let left: Vec<String> = pruned.iter().map(|p| name_of(p)).collect();
        message.push_str(&format!("; left out by the date in their name: {}", left.join(", ")));
    }
    for (path, why) in &found.doubles {
        message.push_str(&format!("; {} not read: {why}", name_of(path)));
    }
    if files.is_empty() {
        return Finding::problem(
            "jsonl.files",
            Severity::Warning,
            None,
            message,
            "no file can hold an event of the window: the files show $0.00 for it",
            "check that the gateway writes telemetry there, and the window",
        );
    }
    Finding::ok("jsonl.files", None, message, "the digest reads these files for this window")
}

fn ignored_finding(path: &Path) -> Finding {
    Finding::problem(
        "jsonl.names",
        Severity::Warning,
        Some(name_of(path)),
        format!("{} is not read: not a name obsctl reads as telemetry", path.display()),
        "its events are in no report",
        "rotate to events.YYYY-MM-DD.jsonl or events.YYYY-Www.jsonl (optionally .gz), or name the file with --logs",
    )
}

fn window_finding(s: &Survey, window: &Window) -> Finding {
    let shapes: Vec<String> =
        ["A", "B", "C"].iter().zip(s.shapes).filter(|(_, n)| *n > 0).map(|(name, n)| format!("{name} {n}")).collect();
    let when = format!("between {} and {}", format_rfc3339(window.start), format_rfc3339(window.end));
    if s.events == 0 {
        let newest = s.newest.map(|t| format!(" (the newest event read: {})", format_rfc3339(t))).unwrap_or_default();
        return Finding::problem(
            "jsonl.window",
            Severity::Warning,
            None,
            format!("no event {when}{newest}"),
            "a digest from the files shows $0.00 and no sessions for this window",
            "check the window (--since/--until, --tz) and that the gateway wrote telemetry then",
        );
    }
    Finding::ok(
        "jsonl.window",
        None,
        format!("{} events {when} ({} model calls); shapes by line: {}", s.events, s.model_calls, shapes.join(", ")),
        "the digest counts these events",
    )
}

/// Every file's skipped lines in one finding: the count, and where the first one is.
fn malformed_finding(reports: &[FileReport]) -> Finding {
    let bad: Vec<&FileReport> = reports.iter().filter(|r| r.skipped > 0).collect();
    if bad.is_empty() {
        return Finding::ok("jsonl.malformed", None, "no malformed line".into(), "every line counts");
    }
    let total: u64 = bad.iter().map(|r| r.skipped).sum();
    let each: Vec<String> = bad
        .iter()
        .map(|r| {
            let first =
                r.first_skip.as_ref().map(|(line, why)| format!(", first at line {line}: {why}")).unwrap_or_default();
            format!("{} ({}{first})", name_of(&r.path), r.skipped)
        })
        .collect();
    Finding::problem(
        "jsonl.malformed",
        Severity::Warning,
        Some(plural(bad.len(), "file", "files")),
        format!("{} skipped: {}", plural(total as usize, "malformed line", "malformed lines"), each.join("; ")),
        "skipped lines count in no total: if they were events, their cost is missing from the report",
        "find what writes these lines (a second writer, a crash mid-line, a hand edit) and stop it; the digest's warnings list them too",
    )
}

fn uncosted_finding(s: &Survey) -> Finding {
    let total: u64 = s.uncosted.values().sum();
    if total == 0 {
        return Finding::ok(
            "jsonl.uncosted",
            None,
            format!("every model call in the window carries a cost ({})", s.model_calls),
            "the cost is complete",
        );
    }
    let models: Vec<String> = s.uncosted.iter().map(|((m, p), n)| format!("{p}/{m} ({n})")).collect();
    Finding::problem(
        "jsonl.uncosted",
        Severity::Warning,
        Some(s.uncosted.keys().map(|(m, p)| format!("{p}/{m}")).collect::<Vec<_>>().join(", ")),
        format!(
            "{} of {} model calls in the window carry no cost; models without a price: {}",
            total,
            s.model_calls,
            models.join(", ")
        ),
        "the report's cost is low by what these calls cost; they are counted as uncosted_events, never as $0",
        "give these models a price where the gateway prices model calls, so that it writes their cost",
    )
}

fn freshness_finding(s: &Survey, window: &Window, now: Nanos) -> Finding {
    let Some(newest) = s.newest else {
        return Finding::problem(
            "jsonl.freshness",
            Severity::Warning,
            None,
            "no valid event in the files read".into(),
            "the files hold nothing a report can count",
            "check that the gateway writes telemetry to these files",
        );
    };
    let age = now - newest;
    if s.ahead > 0 {
        return Finding::problem(
            "jsonl.freshness",
            Severity::Warning,
            None,
            format!(
                "{} after this machine's clock: the newest is from {} ({} ahead)",
                plural(s.ahead as usize, "event lies", "events lie"),
                format_rfc3339(newest),
                human_duration(-age)
            ),
            "a clock runs ahead (the gateway's host, or this one): those events fall in no window that has ended, and a report of the last days misses them",
            "check both clocks (timedatectl; NTP); `obsctl digest --until` a later time reads them",
        );
    }
    let message = format!("the newest event is from {} ({} ago)", format_rfc3339(newest), human_duration(age));
    // Only a window that reaches the present expects fresh events.
    if window.end >= now - 3600 * NANOS_PER_SEC && age > MAX_AGE_HOURS * 3600 * NANOS_PER_SEC {
        return Finding::problem(
            "jsonl.freshness",
            Severity::Warning,
            None,
            message,
            "nothing was written since: the report's last days show $0.00 if the agents ran",
            "check that the gateway runs and writes ~/.openclaw/telemetry/events.jsonl (or the path --logs names)",
        );
    }
    Finding::ok("jsonl.freshness", None, message, "the files are being written")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowSpec;

    fn week() -> Window {
        let spec = WindowSpec { week: Some(Some("2026-W47".into())), ..WindowSpec::default() };
        Window::resolve(&spec, chrono_tz::UTC, chrono::Utc::now()).unwrap()
    }

    #[test]
    fn survey_counts_the_window_and_the_newest_event() {
        let lines = [
            r#"{"type":"model_usage","timestamp":"2026-11-17T10:00:00Z","sessionId":"s","model":"anthropic/claude-x","inputTokens":5}"#,
            r#"{"type":"model_usage","timestamp":"2026-11-17T10:00:01Z","sessionId":"s","model":"m","costUsd":0.5}"#,
            r#"{"eventType":"model_usage","timestamp":"2026-11-18T10:00:00Z","sessionKey":"agent:ops:x"}"#,
            r#"{"kind":"llm.call","ts":1795400000000,"sessionId":"t","data":{"costUsd":0.1}}"#,
        ];
        let mut a = Survey::new(&week());
        let mut b = a.empty_like();
        for (i, l) in lines.iter().enumerate() {
            let e = crate::source::jsonl::parse_line(l.as_bytes()).unwrap();
            if i % 2 == 0 {
                a.add(&e)
            } else {
                b.add(&e)
            }
        }
        a.merge(b);
        assert_eq!(a.events, 3, "the shape-C call is after the week");
        assert_eq!(a.shapes, [2, 1, 0]);
        assert_eq!(a.model_calls, 3);
        let uncosted: Vec<_> = a.uncosted.iter().map(|((m, p), n)| (m.as_str(), p.as_str(), *n)).collect();
        assert_eq!(uncosted, [("claude-x", "anthropic", 1), ("unknown", "unknown", 1)]);
        assert_eq!(a.newest, Some(1_795_400_000_000_000_000));
        let f = uncosted_finding(&a);
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.message.contains("anthropic/claude-x (1)"), "{}", f.message);
    }

    #[test]
    fn events_after_now_are_a_clock_ahead_not_fresh() {
        let now = 1_794_981_600 * NANOS_PER_SEC; // 2026-11-18T06:00:00Z
        let mut s = Survey::new(&week()).ahead_of(now);
        for l in [
            r#"{"type":"model_usage","timestamp":"2026-11-18T05:00:00Z","sessionId":"s","costUsd":0.5}"#,
            r#"{"type":"model_usage","timestamp":"2026-11-18T06:04:00Z","sessionId":"s","costUsd":0.5}"#,
            r#"{"type":"model_usage","timestamp":"2026-11-18T11:00:00Z","sessionId":"s","costUsd":2.5}"#,
        ] {
            s.add(&crate::source::jsonl::parse_line(l.as_bytes()).unwrap());
        }
        assert_eq!(s.ahead, 1, "within 5 minutes of the clock is not ahead");
        let f = freshness_finding(&s, &week(), now);
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.message.starts_with("1 event lies after this machine's clock") && f.message.contains("ahead"),
            "{}",
            f.message
        );
    }
}
