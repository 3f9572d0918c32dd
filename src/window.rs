//! Report windows: what `--week`, `--last`, `--since/--until` and `--tz` mean.
//!
//! A [`Window`] is a half-open interval `[start, end)` of instants, plus the time zone
//! the report is read in (it decides where weeks and days begin). Everything here is
//! pure arithmetic on instants; nothing reads data.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// An instant as nanoseconds since the Unix epoch (the unit Loki speaks, and exact for
/// every timestamp shape in the logs). Covers the years 1677..2262.
pub type Nanos = i64;

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// How the window was asked for; decides what "the previous window" is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// A calendar ISO week in the report's zone; the previous window is the week before.
    IsoWeek,
    /// Any other span; the previous window has the same length and ends at `start`.
    Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: Nanos,
    pub end: Nanos,
    pub tz: Tz,
    pub kind: WindowKind,
    /// Set when the window ends after the moment the report was made.
    pub partial: bool,
}

/// What the user asked for on the command line, before time zones are applied.
#[derive(Clone, Debug, Default)]
pub struct WindowSpec {
    /// `Some(None)` for a bare `--week` (last complete week), `Some(Some("2026-W47"))`.
    pub week: Option<Option<String>>,
    pub last: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Window {
    /// Resolves a spec against `now` in `tz`. With no window flags, the last complete week.
    pub fn resolve(spec: &WindowSpec, tz: Tz, now: DateTime<Utc>) -> Result<Window> {
        let now_ns = to_nanos(now)?;
        let (start, end, kind) = match (&spec.week, &spec.last, &spec.since) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                bail!("--week cannot be combined with --last or --since")
            }
            (Some(_), None, None) if spec.until.is_some() => {
                bail!("--week cannot be combined with --until")
            }
            (None, Some(_), Some(_)) => bail!("--last cannot be combined with --since"),
            (Some(Some(week)), None, None) => {
                let (start, end) = iso_week_bounds(parse_iso_week(week)?, tz)?;
                (start, end, WindowKind::IsoWeek)
            }
            (None, Some(last), None) => {
                let len = parse_duration(last)?;
                let end = match &spec.until {
                    Some(until) => parse_instant(until, tz)?,
                    None => now_ns,
                };
                let start = end.checked_sub(len).with_context(|| {
                    format!("--last {last} until {}: the window would start before 1677", format_rfc3339(end))
                })?;
                (start, end, WindowKind::Span)
            }
            (None, None, Some(since)) => {
                let start = parse_instant(since, tz)?;
                let end = match &spec.until {
                    Some(until) => parse_instant(until, tz)?,
                    None => now_ns,
                };
                (start, end, WindowKind::Span)
            }
            (None, None, None) if spec.until.is_some() => {
                bail!("--until needs --since or --last")
            }
            (Some(None), None, None) | (None, None, None) => {
                let today = now.with_timezone(&tz).date_naive();
                let this_monday = today - Duration::days(today.weekday().num_days_from_monday().into());
                let (start, end) = iso_week_bounds(this_monday - Duration::days(7), tz)?;
                (start, end, WindowKind::IsoWeek)
            }
        };
        if start >= end {
            bail!("empty window: start {} is not before end {}", format_rfc3339(start), format_rfc3339(end));
        }
        // The previous window (as long, just before) must fit in `Nanos` too.
        if end.checked_sub(start).and_then(|len| start.checked_sub(len)).is_none() {
            bail!(
                "window {} to {} is too long: the window before it would start before 1677",
                format_rfc3339(start),
                format_rfc3339(end)
            );
        }
        // An empty report of a window to come reads like a quiet week: say it instead.
        if start > now_ns {
            bail!(
                "the window starts in the future ({}, now is {}): it holds no events yet",
                format_rfc3339(start),
                format_rfc3339(now_ns)
            );
        }
        Ok(Window { start, end, tz, kind, partial: end > now_ns })
    }

    /// The window compared against: the week before, or the same length just before.
    pub fn previous(&self) -> Window {
        let (start, end) = match self.kind {
            WindowKind::IsoWeek => {
                let monday = self.local_date(self.start) - Duration::days(7);
                // Local midnights exist for every date chrono-tz knows; fall back to the
                // plain length if a zone ever says otherwise.
                iso_week_bounds(monday, self.tz).unwrap_or((self.start - (self.end - self.start), self.start))
            }
            WindowKind::Span => (self.start - (self.end - self.start), self.start),
        };
        Window { start, end, tz: self.tz, kind: self.kind, partial: false }
    }

    pub fn contains(&self, t: Nanos) -> bool {
        self.start <= t && t < self.end
    }

    pub fn local_date(&self, t: Nanos) -> NaiveDate {
        from_nanos(t).with_timezone(&self.tz).date_naive()
    }

    /// The local days the window touches, each with the instant its part of the window
    /// starts. Days are cut at local midnight, so a DST day is 23 or 25 hours long.
    pub fn days(&self) -> Vec<(NaiveDate, Nanos)> {
        let mut days = vec![(self.local_date(self.start), self.start)];
        let mut date = self.local_date(self.start);
        loop {
            date = match date.succ_opt() {
                Some(d) => d,
                None => break,
            };
            match local_midnight(date, self.tz) {
                Ok(t) if t < self.end => days.push((date, t)),
                _ => break,
            }
        }
        days
    }

    pub fn start_rfc3339(&self) -> String {
        format_rfc3339(self.start)
    }

    pub fn end_rfc3339(&self) -> String {
        format_rfc3339(self.end)
    }

    /// The window for humans, in its own zone: `2026-11-16 00:00 – 2026-11-23 00:00 (Europe/Berlin)`.
    pub fn describe(&self) -> String {
        let fmt = |t| from_nanos(t).with_timezone(&self.tz).format("%Y-%m-%d %H:%M").to_string();
        format!("{} – {} ({})", fmt(self.start), fmt(self.end), self.tz.name())
    }
}

/// Parses `2026-W47` (also `2026-w47`) to the Monday of that ISO week.
pub fn parse_iso_week(text: &str) -> Result<NaiveDate> {
    let bad = || format!("invalid ISO week {text:?}: expected YYYY-Www, e.g. 2026-W47");
    let (year, week) = text.split_once(['W', 'w']).with_context(bad)?;
    let year: i32 = year.strip_suffix('-').unwrap_or(year).parse().with_context(bad)?;
    let week: u32 = week.parse().with_context(bad)?;
    NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).with_context(|| format!("{year} has no ISO week {week}"))
}

/// The ISO week a date belongs to, as `2026-W47` (the inverse of [`parse_iso_week`]). The
/// year is the ISO year: 2027-01-01 is in 2026-W53, 2025-12-29 in 2026-W01.
pub fn iso_week_label(date: NaiveDate) -> String {
    let week = date.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

fn iso_week_bounds(monday: NaiveDate, tz: Tz) -> Result<(Nanos, Nanos)> {
    Ok((local_midnight(monday, tz)?, local_midnight(monday + Duration::days(7), tz)?))
}

/// The first instant of a local date. Where a DST jump skips midnight (some zones change
/// at 00:00), the day starts at the first local time that exists.
pub fn local_midnight(date: NaiveDate, tz: Tz) -> Result<Nanos> {
    let mut local = date.and_hms_opt(0, 0, 0).context("midnight")?;
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return to_nanos(t.with_timezone(&Utc));
        }
        local += Duration::minutes(30);
    }
    bail!("no local midnight on {date} in {}", tz.name())
}

/// `--last` lengths: a whole number with unit `h`, `d` or `w` (`36h`, `7d`, `2w`).
pub fn parse_duration(text: &str) -> Result<Nanos> {
    let bad = || format!("invalid duration {text:?}: expected a number with unit h, d or w, e.g. 7d");
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).with_context(bad)?;
    let (number, unit) = text.split_at(unit_at);
    let number: i64 = match number.parse() {
        Ok(n) => n,
        // All digits, yet no i64: too long, not malformed.
        Err(_) if !number.is_empty() => i64::MAX,
        Err(e) => return Err(e).with_context(bad),
    };
    let hours = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        _ => bail!(bad()),
    };
    let secs = number.checked_mul(hours * 3600).filter(|&s| s < 200 * 365 * 86_400).with_context(|| {
        format!("invalid duration {text:?}: longer than 200 years, the longest window obsctl takes")
    })?;
    if secs == 0 {
        bail!("invalid duration {text:?}: a window is at least 1h long");
    }
    Ok(secs * NANOS_PER_SEC)
}

/// `--since/--until`: RFC 3339, `YYYY-MM-DD` meaning local midnight in `tz`, or
/// `YYYY-MM-DDTHH:MM:SS` without an offset, a local time in `tz`.
pub fn parse_instant(text: &str, tz: Tz) -> Result<Nanos> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return to_nanos(t.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return local_midnight(date, tz);
    }
    if let Ok(local) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return match tz.from_local_datetime(&local).earliest() {
            Some(t) => to_nanos(t.with_timezone(&Utc)),
            None => bail!(
                "local time {text:?} does not exist in {tz}: the clocks skipped it (give an offset, as in RFC 3339)"
            ),
        };
    }
    bail!("invalid time {text:?}: expected RFC 3339 (2026-11-16T00:00:00Z), a date (2026-11-16) or a local time (2026-11-16T09:00:00)")
}

/// `--tz`: an IANA name; without one, the zone `TZ` names, then the machine's zone, else UTC.
pub fn resolve_tz(name: Option<&str>) -> Result<Tz> {
    resolve_tz_with(name, std::env::var("TZ").ok().as_deref())
}

/// [`resolve_tz`] with `TZ`'s value given. `TZ` is honoured as the C library reads it, for
/// the zones obsctl can read: `Europe/Berlin`, `:Europe/Berlin` or a file of a `zoneinfo`
/// directory. A cron line `TZ=Europe/Berlin obsctl digest --week` used to cut the week in
/// the machine's zone. A path elsewhere (`:/etc/localtime`) means the machine's zone; any
/// other value (a POSIX rule such as `CET-1CEST`) is refused rather than guessed.
fn resolve_tz_with(name: Option<&str>, tz_env: Option<&str>) -> Result<Tz> {
    if let Some(name) = name {
        return name.parse::<Tz>().map_err(|_| {
            anyhow::anyhow!("unknown time zone {name:?}: expected an IANA name such as Europe/Berlin or UTC")
        });
    }
    if let Some(value) = tz_env.filter(|v| !v.is_empty()) {
        let name = value.strip_prefix(':').unwrap_or(value);
        let name = name.rsplit_once("zoneinfo/").map_or(name, |(_, zone)| zone);
        if !name.starts_with('/') {
            return name.parse::<Tz>().map_err(|_| {
                anyhow::anyhow!(
                    "TZ={value:?} is not an IANA time zone name obsctl can read (such as Europe/Berlin): give the zone with --tz or OBSCTL_TZ"
                )
            });
        }
    }
    Ok(iana_time_zone::get_timezone().ok().and_then(|name| name.parse::<Tz>().ok()).unwrap_or(Tz::UTC))
}

pub fn to_nanos(t: DateTime<Utc>) -> Result<Nanos> {
    t.timestamp_nanos_opt().with_context(|| format!("{t} is outside the supported years 1677-2262"))
}

pub fn from_nanos(t: Nanos) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(t)
}

pub fn format_rfc3339(t: Nanos) -> String {
    from_nanos(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Nanos {
        to_nanos(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)).unwrap()
    }

    fn now(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Week `w`, asked for in 2030: every week of these tests is complete, none in the future.
    fn week(w: &str, tz: Tz) -> Window {
        let spec = WindowSpec { week: Some(Some(w.into())), ..Default::default() };
        Window::resolve(&spec, tz, now("2030-01-01T00:00:00Z")).unwrap()
    }

    #[test]
    fn an_instant_is_rfc_3339_a_date_or_a_local_time() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(parse_instant("2026-11-16T09:00:00+01:00", Tz::UTC).unwrap(), utc("2026-11-16T08:00:00Z"));
        assert_eq!(parse_instant("2026-11-16", berlin).unwrap(), utc("2026-11-15T23:00:00Z"));
        assert_eq!(parse_instant("2026-11-16T09:00:00", berlin).unwrap(), utc("2026-11-16T08:00:00Z"));
        let err = parse_instant("2026-11-16 09:00", berlin).unwrap_err().to_string();
        assert!(err.contains("a local time (2026-11-16T09:00:00)"), "{err}");
        let gap = parse_instant("2026-03-29T02:30:00", berlin).unwrap_err().to_string();
        assert!(gap.contains("does not exist in Europe/Berlin"), "{gap}");
    }

    #[test]
    fn iso_week_in_utc() {
        let w = week("2026-W47", Tz::UTC);
        assert_eq!(w.start, utc("2026-11-16T00:00:00Z"));
        assert_eq!(w.end, utc("2026-11-23T00:00:00Z"));
        assert!(!w.partial);
        let p = w.previous();
        assert_eq!((p.start, p.end), (utc("2026-11-09T00:00:00Z"), utc("2026-11-16T00:00:00Z")));
    }

    #[test]
    fn iso_weeks_across_year_ends() {
        // 2026 has 53 ISO weeks; W53 runs into 2027, and 2027-W01 starts on 4 January.
        let w53 = week("2026-W53", Tz::UTC);
        assert_eq!(w53.start, utc("2026-12-28T00:00:00Z"));
        assert_eq!(w53.end, utc("2027-01-04T00:00:00Z"));
        assert_eq!(week("2027-W01", Tz::UTC).start, w53.end);
        assert_eq!(week("2027-W01", Tz::UTC).previous(), Window { partial: false, ..w53.clone() });
        // 2020-W01 began on 30 December 2019.
        assert_eq!(week("2020-W01", Tz::UTC).start, utc("2019-12-30T00:00:00Z"));
        // 2027 has only 52 weeks.
        let spec = WindowSpec { week: Some(Some("2027-W53".into())), ..Default::default() };
        assert!(Window::resolve(&spec, Tz::UTC, now("2026-11-25T00:00:00Z")).is_err());
    }

    #[test]
    fn iso_week_labels_at_year_ends() {
        let label = |y, m, d| iso_week_label(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        assert_eq!(label(2026, 11, 16), "2026-W47");
        assert_eq!(label(2026, 12, 28), "2026-W53");
        assert_eq!(label(2027, 1, 1), "2026-W53");
        assert_eq!(label(2027, 1, 4), "2027-W01");
        assert_eq!(label(2025, 12, 29), "2026-W01");
        assert_eq!(label(2026, 1, 5), "2026-W02");
        for week in ["2026-W01", "2026-W47", "2026-W53", "2020-W01"] {
            assert_eq!(iso_week_label(parse_iso_week(week).unwrap()), week);
        }
    }

    #[test]
    fn bare_week_is_last_complete_week_in_zone() {
        let spec = WindowSpec { week: Some(None), ..Default::default() };
        // Wednesday 25 Nov: the last complete week is W47.
        let w = Window::resolve(&spec, Tz::UTC, now("2026-11-25T12:00:00Z")).unwrap();
        assert_eq!(w.start, utc("2026-11-16T00:00:00Z"));
        // Monday 23 Nov 00:30 in Berlin is still Sunday 22 Nov in UTC: W47 is complete in
        // Berlin but not in UTC.
        let t = now("2026-11-22T23:30:00Z");
        let berlin = Window::resolve(&spec, chrono_tz::Europe::Berlin, t).unwrap();
        assert_eq!(berlin.start, utc("2026-11-15T23:00:00Z"));
        let in_utc = Window::resolve(&spec, Tz::UTC, t).unwrap();
        assert_eq!(in_utc.start, utc("2026-11-09T00:00:00Z"));
        // No flags at all means the same.
        let none = Window::resolve(&WindowSpec::default(), Tz::UTC, t).unwrap();
        assert_eq!(none, in_utc);
    }

    #[test]
    fn dst_weeks_in_berlin_and_new_york() {
        // Berlin leaves DST on Sunday 25 Oct 2026 (W43): the week is 169 hours long.
        let berlin = week("2026-W43", chrono_tz::Europe::Berlin);
        assert_eq!(berlin.start, utc("2026-10-18T22:00:00Z"));
        assert_eq!(berlin.end, utc("2026-10-25T23:00:00Z"));
        assert_eq!(berlin.end - berlin.start, 169 * 3600 * NANOS_PER_SEC);
        let days = berlin.days();
        assert_eq!(days.len(), 7);
        assert_eq!(days[6].1, utc("2026-10-24T22:00:00Z"));
        // New York enters DST on Sunday 8 March 2026 (W10): 167 hours.
        let ny = week("2026-W10", chrono_tz::America::New_York);
        assert_eq!(ny.start, utc("2026-03-02T05:00:00Z"));
        assert_eq!(ny.end, utc("2026-03-09T04:00:00Z"));
        // The previous week of a DST week is a plain 168 hours.
        let prev = ny.previous();
        assert_eq!(prev.end, ny.start);
        assert_eq!(prev.end - prev.start, 168 * 3600 * NANOS_PER_SEC);
    }

    #[test]
    fn midnight_skipped_by_dst() {
        // America/Santiago springs forward at 00:00 on 6 Sep 2026: that day starts at 01:00.
        let date = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        let t = local_midnight(date, chrono_tz::America::Santiago).unwrap();
        assert_eq!(t, utc("2026-09-06T04:00:00Z"));
    }

    #[test]
    fn half_open_edges() {
        let w = week("2026-W47", Tz::UTC);
        assert!(w.contains(utc("2026-11-16T00:00:00Z")));
        assert!(w.contains(utc("2026-11-22T23:59:59.999999999Z")));
        assert!(!w.contains(utc("2026-11-23T00:00:00Z")));
        assert!(!w.contains(utc("2026-11-15T23:59:59.999999999Z")));
    }

    #[test]
    fn rolling_and_explicit_windows() {
        let at = now("2026-11-25T12:00:00Z");
        let last = |d: &str, until: Option<&str>| {
            let spec = WindowSpec { last: Some(d.into()), until: until.map(Into::into), ..Default::default() };
            Window::resolve(&spec, Tz::UTC, at).unwrap()
        };
        let w = last("7d", None);
        assert_eq!((w.start, w.end), (utc("2026-11-18T12:00:00Z"), utc("2026-11-25T12:00:00Z")));
        assert!(!w.partial);
        let p = w.previous();
        assert_eq!((p.start, p.end), (utc("2026-11-11T12:00:00Z"), w.start));
        assert_eq!(last("36h", Some("2026-11-20")).start, utc("2026-11-18T12:00:00Z"));
        assert_eq!(last("2w", None).start, utc("2026-11-11T12:00:00Z"));

        let spec = WindowSpec {
            since: Some("2026-11-20".into()),
            until: Some("2026-12-01T00:00:00+01:00".into()),
            ..Default::default()
        };
        let w = Window::resolve(&spec, chrono_tz::Europe::Berlin, at).unwrap();
        assert_eq!(w.start, utc("2026-11-19T23:00:00Z"));
        assert_eq!(w.end, utc("2026-11-30T23:00:00Z"));
        assert!(w.partial, "a window ending in the future is partial");
    }

    #[test]
    fn bad_windows_are_errors() {
        let at = now("2026-11-25T12:00:00Z");
        for spec in [
            WindowSpec { last: Some("7".into()), ..Default::default() },
            WindowSpec { last: Some("7m".into()), ..Default::default() },
            WindowSpec { last: Some("0d".into()), ..Default::default() },
            WindowSpec { last: Some("-3d".into()), ..Default::default() },
            WindowSpec { since: Some("last tuesday".into()), ..Default::default() },
            WindowSpec { since: Some("2026-11-20".into()), until: Some("2026-11-19".into()), ..Default::default() },
            WindowSpec { week: Some(Some("2026-47".into())), ..Default::default() },
            WindowSpec { week: Some(None), last: Some("7d".into()), ..Default::default() },
            WindowSpec { until: Some("2026-11-19".into()), ..Default::default() },
            // Starts after `at`: nothing in it yet.
            WindowSpec { week: Some(Some("2026-W49".into())), ..Default::default() },
            WindowSpec { since: Some("2026-11-26".into()), ..Default::default() },
        ] {
            assert!(Window::resolve(&spec, Tz::UTC, at).is_err(), "{spec:?} should be refused");
        }
        assert!(resolve_tz(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn a_duration_out_of_range_says_so() {
        for (text, says) in [
            ("99999999w", "longer than 200 years"),
            ("99999999999999999999d", "longer than 200 years"),
            ("0d", "at least 1h"),
            ("7m", "expected a number with unit h, d or w"),
        ] {
            let err = format!("{:#}", parse_duration(text).unwrap_err());
            assert!(err.contains(says), "{text}: {err}");
        }
        assert_eq!(parse_duration("2w").unwrap(), 14 * 86_400 * NANOS_PER_SEC);
    }

    #[test]
    fn the_tz_variable_names_the_zone_when_no_flag_does() {
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        let machine = resolve_tz_with(None, None).expect("the machine's zone");
        for value in [
            "Europe/Berlin",
            ":Europe/Berlin",
            "/usr/share/zoneinfo/Europe/Berlin",
            ":/usr/share/zoneinfo/Europe/Berlin",
        ] {
            assert_eq!(resolve_tz_with(None, Some(value)).expect(value), berlin, "{value}");
        }
        assert_eq!(resolve_tz_with(Some("UTC"), Some("Europe/Berlin")).expect("the flag wins"), Tz::UTC);
        assert_eq!(resolve_tz_with(None, Some(":/etc/localtime")).expect("a path"), machine);
        assert_eq!(resolve_tz_with(None, Some("")).expect("empty"), machine);
        let err = resolve_tz_with(None, Some("CET-1CEST")).expect_err("a POSIX rule").to_string();
        assert!(err.contains("TZ=\"CET-1CEST\"") && err.contains("--tz"), "{err}");
    }

    #[test]
    fn days_of_a_partial_day_window() {
        let spec = WindowSpec {
            since: Some("2026-11-20T12:00:00Z".into()),
            until: Some("2026-11-22T06:00:00Z".into()),
            ..Default::default()
        };
        let w = Window::resolve(&spec, Tz::UTC, now("2026-11-25T00:00:00Z")).unwrap();
        let days: Vec<_> = w.days().into_iter().map(|(d, _)| d.to_string()).collect();
        assert_eq!(days, ["2026-11-20", "2026-11-21", "2026-11-22"]);
    }
}
