//! `--output` path templates: `reports/{iso_week}.md` → `reports/2026-W47.md`, so that a
//! cron job or a timer names each week's report without shell date arithmetic.
//!
//! The placeholders name the report's window, in the report's time zone; `{date}` is the
//! day the report is made (`now`, passed in: nothing here reads the clock). `{{` and `}}`
//! are literal braces; any other `{name}` is a usage error that names it, found before a
//! server is asked.

use anyhow::{bail, Result};
use chrono::{DateTime, Timelike, Utc};

use crate::window::{from_nanos, iso_week_label, local_midnight, Nanos, Window};

/// What the placeholders mean, for error messages and `--help`.
pub const PLACEHOLDERS: &str = "{iso_week}, {start}, {end}, {date}";

/// Expands every placeholder of `template` for `window`, made at `now`.
pub fn expand(template: &str, window: &Window, now: DateTime<Utc>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
            out.push_str(&tail[..1]);
            rest = after;
            continue;
        }
        if tail.starts_with('}') {
            bail!("--output {template}: a '}}' without its '{{' (write '}}}}' for a literal brace)");
        }
        let Some(close) = tail.find('}') else {
            bail!("--output {template}: a '{{' without its '}}' (write '{{{{' for a literal brace)");
        };
        let name = &tail[1..close];
        out.push_str(&value(name, window, now).ok_or_else(|| {
            anyhow::anyhow!(
                "--output {template}: unknown placeholder {{{name}}} (known: {PLACEHOLDERS}; '{{{{' and '}}}}' for literal braces)"
            )
        })?);
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn value(name: &str, window: &Window, now: DateTime<Utc>) -> Option<String> {
    Some(match name {
        "iso_week" => iso_week_label(window.local_date(window.start)),
        "start" => stamp(window.start, window),
        "end" => stamp(window.end, window),
        "date" => now.with_timezone(&window.tz).date_naive().format("%Y-%m-%d").to_string(),
        _ => return None,
    })
}

/// An instant of the window as a file-name-safe local stamp: `2026-11-16` when it is the
/// start of a local day, else `2026-11-16T0930` (with seconds, `T093015`, when it has
/// some). No colons: they are not allowed in file names everywhere.
fn stamp(t: Nanos, window: &Window) -> String {
    let date = window.local_date(t);
    if local_midnight(date, window.tz).ok() == Some(t) {
        return date.format("%Y-%m-%d").to_string();
    }
    let local = from_nanos(t).with_timezone(&window.tz);
    let format = if local.second() == 0 { "%Y-%m-%dT%H%M" } else { "%Y-%m-%dT%H%M%S" };
    local.format(format).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowSpec;
    use chrono_tz::Tz;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn week(w: &str, tz: Tz) -> Window {
        let spec = WindowSpec { week: Some(Some(w.into())), ..Default::default() };
        Window::resolve(&spec, tz, at("2027-06-01T12:00:00Z")).unwrap()
    }

    fn since(since: &str, until: &str) -> Window {
        let spec = WindowSpec { since: Some(since.into()), until: Some(until.into()), ..Default::default() };
        Window::resolve(&spec, Tz::UTC, at("2027-06-01T12:00:00Z")).unwrap()
    }

    fn expanded(template: &str, window: &Window) -> String {
        expand(template, window, at("2026-11-23T06:00:00Z")).unwrap()
    }

    #[test]
    fn a_week_names_its_files() {
        let w = week("2026-W47", Tz::UTC);
        assert_eq!(expanded("reports/{iso_week}.md", &w), "reports/2026-W47.md");
        assert_eq!(expanded("{start}_{end}.json", &w), "2026-11-16_2026-11-23.json");
        assert_eq!(expanded("made-{date}.md", &w), "made-2026-11-23.md");
        assert_eq!(expanded("plain.md", &w), "plain.md");
        assert_eq!(expanded("{iso_week}/{iso_week}.md", &w), "2026-W47/2026-W47.md");
    }

    #[test]
    fn iso_weeks_at_year_ends() {
        // 2026-12-28 (a Monday) is 2026-W53, and so is 2027-01-01; 2025-12-29 is 2026-W01.
        assert_eq!(expanded("{iso_week}", &week("2026-W53", Tz::UTC)), "2026-W53");
        assert_eq!(expanded("{iso_week}", &since("2027-01-01", "2027-01-02")), "2026-W53");
        assert_eq!(expanded("{iso_week}", &since("2025-12-29", "2026-01-05")), "2026-W01");
        assert_eq!(expanded("{start}", &week("2026-W01", Tz::UTC)), "2025-12-29");
    }

    #[test]
    fn dates_are_in_the_report_zone() {
        // W47 in Berlin starts at 2026-11-15T23:00Z, which is 16 November there.
        let w = week("2026-W47", chrono_tz::Europe::Berlin);
        assert_eq!(expanded("{iso_week} {start} {end}", &w), "2026-W47 2026-11-16 2026-11-23");
        // 23:30 UTC on Sunday is already Monday in Berlin.
        assert_eq!(expand("{date}", &w, at("2026-11-22T23:30:00Z")).unwrap(), "2026-11-23");
        assert_eq!(expand("{date}", &week("2026-W47", Tz::UTC), at("2026-11-22T23:30:00Z")).unwrap(), "2026-11-22");
        // Santiago's 6 September 2026 starts at 01:00 (DST skips midnight): still a day.
        let spec =
            WindowSpec { since: Some("2026-09-06".into()), until: Some("2026-09-07".into()), ..Default::default() };
        let santiago = Window::resolve(&spec, chrono_tz::America::Santiago, at("2027-01-01T00:00:00Z")).unwrap();
        assert_eq!(expanded("{start}", &santiago), "2026-09-06");
    }

    #[test]
    fn windows_off_day_boundaries_carry_the_time() {
        let w = since("2026-11-20T09:30:00Z", "2026-11-21T18:00:15Z");
        assert_eq!(expanded("{start}_{end}", &w), "2026-11-20T0930_2026-11-21T180015");
        assert_eq!(expanded("{iso_week}", &w), "2026-W47");
    }

    #[test]
    fn braces_and_mistakes() {
        let w = week("2026-W47", Tz::UTC);
        assert_eq!(expanded("{{literal}} {{{iso_week}}}", &w), "{literal} {2026-W47}");
        let error = |t: &str| expand(t, &w, at("2026-11-23T06:00:00Z")).unwrap_err().to_string();
        let unknown = error("reports/{week}.md");
        assert!(unknown.contains("unknown placeholder {week}"), "{unknown}");
        assert!(unknown.contains("{iso_week}, {start}, {end}, {date}"), "{unknown}");
        assert!(error("reports/{ISO_WEEK}.md").contains("{ISO_WEEK}"));
        assert!(error("reports/{}.md").contains("unknown placeholder {}"));
        assert!(error("reports/{iso_week.md").contains("without its '}'"));
        assert!(error("reports/iso_week}.md").contains("without its '{'"));
    }
}
