//! What a Loki's configuration says about splitting and the series limit, read from its
//! `GET /config` (the running configuration as YAML), so that queries summing per session
//! start at the classes of sessions the server needs instead of learning them from refusals.
//!
//! Only two keys of `limits_config` are read, by line, never the rest (the body is not
//! logged). A Loki that does not answer (a proxy refusing `/config`, an older server) is
//! taken to have Loki's defaults; per-tenant overrides are not visible here, and a refusal
//! still halves a class that needs it.

use crate::source::logql::Class;
use crate::window::Nanos;

const HOUR: Nanos = 3_600_000_000_000;

/// The limits the queries over sessions meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The span of the sub-queries an instant metric query is split into; `None`: no
    /// splitting.
    pub split: Option<Nanos>,
    /// `max_query_series`.
    pub max_series: u64,
}

impl Default for Limits {
    /// Loki 3.4's defaults.
    fn default() -> Limits {
        Limits { split: Some(HOUR), max_series: 500 }
    }
}

impl Limits {
    /// The limits in a `GET /config` body; Loki's defaults for what it does not say.
    pub fn from_config(yaml: &str) -> Limits {
        let mut limits = Limits::default();
        let mut instant = None;
        let mut any = None;
        let mut inside = false;
        for line in yaml.lines() {
            if !line.starts_with(' ') && !line.is_empty() {
                inside = line.trim_end() == "limits_config:";
                continue;
            }
            // The section's own keys, two spaces in.
            let Some(entry) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) else { continue };
            if !inside {
                continue;
            }
            let Some((key, value)) = entry.split_once(':') else { continue };
            let value = value.trim().trim_matches('"');
            match key {
                "split_instant_metric_queries_by_interval" => instant = duration(value),
                "split_queries_by_interval" => any = duration(value),
                "max_query_series" => {
                    if let Some(n) = value.parse().ok().filter(|&n| n > 0) {
                        limits.max_series = n;
                    }
                }
                _ => {}
            }
        }
        // Loki 3.4 splits instant metric queries by their own interval, 0 turning it off.
        if let Some(span) = instant.or(any) {
            limits.split = (span > 0).then_some(span);
        }
        limits
    }

    /// The classes of sessions a query summing per session over `[start, end)` needs for
    /// `sessions` sessions if they were spread evenly over the window, those that straddle
    /// two sub-queries counted twice (sessions taken to last up to a quarter of an hour).
    /// Real traffic has busier hours; a refusal still halves the classes that need it.
    pub fn classes_for(&self, sessions: u64, start: Nanos, end: Nanos) -> u32 {
        const STRADDLE: Nanos = HOUR / 4;
        let span = (end - start).max(1);
        let (pieces, straddling) = match self.split {
            Some(split) if split < span => {
                let share = (STRADDLE as f64 / split as f64).min(1.0);
                ((span / split).max(1) as u64, (sessions as f64 * share) as u64)
            }
            _ => (1, 0),
        };
        let per_piece = (sessions + straddling) / pieces;
        let classes = per_piece.div_ceil(self.max_series.max(1)).max(1).next_power_of_two();
        classes.min(u64::from(Class::MAX)) as u32
    }
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.split {
            Some(ns) => write!(f, "instant queries split by {}s", ns / 1_000_000_000)?,
            None => write!(f, "no splitting")?,
        }
        write!(f, ", max_query_series {}", self.max_series)
    }
}

/// A Prometheus-style duration as Loki writes it (`1h`, `1d`, `1h30m`, `0s`).
fn duration(text: &str) -> Option<Nanos> {
    const UNITS: [(&str, Nanos); 7] = [
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", HOUR),
        ("d", 24 * HOUR),
        ("w", 7 * 24 * HOUR),
        ("y", 365 * 24 * HOUR),
    ];
    let mut rest = text;
    let mut total: Nanos = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: Nanos = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, scale) =
            UNITS.iter().find(|(u, _)| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))?;
        rest = &rest[unit.len()..];
        total = total.checked_add(n.checked_mul(*scale)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: Nanos = 7 * 24 * HOUR;

    #[test]
    fn reads_the_limits_section_only() {
        let yaml =
            "server:\n  http_listen_port: 3100\n  max_query_series: 7\nlimits_config:\n  ingestion_rate_mb: 4\n  \
                    max_query_series: 1000\n  split_queries_by_interval: 30m\n  \
                    split_instant_metric_queries_by_interval: 1d\n  nested:\n    max_query_series: 3\nquerier:\n  \
                    split_queries_by_interval: 5m\n";
        assert_eq!(Limits::from_config(yaml), Limits { split: Some(24 * HOUR), max_series: 1000 });
        let off = "limits_config:\n  split_queries_by_interval: 1h\n  split_instant_metric_queries_by_interval: 0s\n";
        assert_eq!(Limits::from_config(off), Limits { split: None, max_series: 500 });
        assert_eq!(Limits::from_config("404 page not found\n"), Limits::default());
        assert_eq!(Limits::from_config("limits_config:\n  split_queries_by_interval: 2h\n").split, Some(2 * HOUR));
        assert_eq!(Limits::default().to_string(), "instant queries split by 3600s, max_query_series 500");
        assert_eq!(Limits { split: None, max_series: 9 }.to_string(), "no splitting, max_query_series 9");
    }

    #[test]
    fn durations_as_loki_writes_them() {
        assert_eq!(duration("1h30m"), Some(90 * 60_000_000_000));
        assert_eq!(duration("1d"), Some(24 * HOUR));
        assert_eq!(duration("250ms"), Some(250_000_000));
        assert_eq!(duration("0s"), Some(0));
        assert_eq!(duration(""), None);
        assert_eq!(duration("1x"), None);
        assert_eq!(duration("h"), None);
        assert_eq!(duration("99999999999999999999y"), None);
    }

    #[test]
    fn classes_grow_with_the_sessions_one_sub_query_holds() {
        let hourly = Limits::default();
        assert_eq!(hourly.classes_for(20_000, 0, WEEK), 1);
        assert_eq!(hourly.classes_for(100_000, 0, WEEK), 2);
        let daily = Limits { split: Some(24 * HOUR), max_series: 500 };
        assert_eq!(daily.classes_for(20_000, 0, WEEK), 8);
        assert_eq!(daily.classes_for(100_000, 0, WEEK), 32, "as measured on a real Loki (BENCHMARKS.md)");
        let whole = Limits { split: None, max_series: 500 };
        assert_eq!(whole.classes_for(713, 0, WEEK), 2);
        assert_eq!(whole.classes_for(400, 0, WEEK), 1);
        assert_eq!(whole.classes_for(10_000_000, 0, WEEK), 256, "never beyond the most classes");
        assert_eq!(hourly.classes_for(0, 0, WEEK), 1);
    }
}
