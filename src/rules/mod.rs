//! Rule files for Prometheus and Loki's ruler, written from the same names and query forms
//! as the digest, so that an alert and the weekly report never disagree about a figure.
//!
//! - [`prometheus`]: recording rules for each hour's exact cost, sessions and tokens, and
//!   alerts on a cost spike, a daily budget and the model-error rate, all built on the
//!   digest's reset-aware exact increase (`PromQl`), never on `increase()`.
//! - [`loki`]: alerts on a session over its budget and on the failed-run and tool-failure
//!   rates of each experiment variant, from the Loki source's own LogQL (`LogQl`).
//!
//! Templates live in code: every expression is built by `PromQl`/`LogQl` from validated
//! metric and label names, thresholds are numbers this module formats, and the file is
//! written by [`yaml`], which quotes every value, so that no name or value can change an
//! expression or the file's structure. Alert annotations quote label values only through
//! the alert templates (`{{ $labels.agent }}`), whose output is never read as a template.
//!
//! What this module is not: it asks no server, and it does not decide which thresholds a
//! team should use (the command takes them from flags).

pub mod loki;
pub mod prometheus;
pub mod yaml;

use anyhow::{bail, Context, Result};

use crate::window::{parse_duration, NANOS_PER_SEC};
use yaml::Yaml;

/// A rule file: a comment header, then its groups.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleFile {
    pub header: Vec<String>,
    pub groups: Vec<Group>,
}

/// A rule group: evaluated together, every `interval`.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub interval: String,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A recording rule: the name of the series it writes.
    Record(String),
    /// An alerting rule: the alert's name.
    Alert(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub kind: Kind,
    pub expr: String,
    pub labels: Vec<(String, String)>,
    /// Alerts only: `summary`, `description`, `runbook`.
    pub annotations: Vec<(String, String)>,
}

impl RuleFile {
    /// The file as YAML (the format of Prometheus `rule_files` and of Loki's ruler).
    pub fn render(&self) -> String {
        let mut out: String = self.header.iter().map(|line| yaml::comment(line)).collect();
        let groups = self.groups.iter().map(Group::yaml).collect();
        out.push_str(&Yaml::Map(vec![("groups".into(), Yaml::Seq(groups))]).render());
        out
    }

    /// Every rule, with its group.
    pub fn rules(&self) -> impl Iterator<Item = (&Group, &Rule)> {
        self.groups.iter().flat_map(|g| g.rules.iter().map(move |r| (g, r)))
    }
}

impl Group {
    fn yaml(&self) -> Yaml {
        Yaml::Map(vec![
            ("name".into(), Yaml::str(&self.name)),
            ("interval".into(), Yaml::str(&self.interval)),
            ("rules".into(), Yaml::Seq(self.rules.iter().map(Rule::yaml).collect())),
        ])
    }
}

impl Rule {
    fn yaml(&self) -> Yaml {
        let pairs =
            |pairs: &[(String, String)]| Yaml::Map(pairs.iter().map(|(k, v)| (k.clone(), Yaml::str(v))).collect());
        let mut map = vec![match &self.kind {
            Kind::Record(name) => ("record".into(), Yaml::str(name)),
            Kind::Alert(name) => ("alert".into(), Yaml::str(name)),
        }];
        map.push(("expr".into(), Yaml::str(&self.expr)));
        if !self.labels.is_empty() {
            map.push(("labels".into(), pairs(&self.labels)));
        }
        if !self.annotations.is_empty() {
            map.push(("annotations".into(), pairs(&self.annotations)));
        }
        Yaml::Map(map)
    }

    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Record(n) | Kind::Alert(n) => n,
        }
    }
}

/// A rule's window: its length, and how the user wrote it (`1h`), which is also how
/// `obsctl digest --last` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub ms: i64,
    pub text: String,
}

impl Span {
    /// A whole number of hours, days or weeks (`1h`, `6h`, `1d`), as `--last` takes them.
    pub fn parse(text: &str) -> Result<Span> {
        let ns = parse_duration(text.trim())?;
        Ok(Span { ms: ns / (NANOS_PER_SEC / 1000), text: text.trim().to_string() })
    }

    pub fn nanos(&self) -> i64 {
        self.ms * (NANOS_PER_SEC / 1000)
    }
}

/// `USD/WINDOW` (`5/1h`): a cost over a window.
#[derive(Clone, Debug, PartialEq)]
pub struct CostLimit {
    pub usd: f64,
    pub span: Span,
}

impl CostLimit {
    pub fn parse(text: &str) -> Result<CostLimit> {
        let (usd, span) = split_limit(text, "USD/WINDOW, as in 5/1h")?;
        Ok(CostLimit { usd: parse_usd(usd)?, span: Span::parse(span)? })
    }
}

/// `RATE/WINDOW` (`10%/1h`): a rate over a window.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    /// A fraction: 0.1 for 10 %.
    pub rate: f64,
    pub span: Span,
}

impl RateLimit {
    pub fn parse(text: &str) -> Result<RateLimit> {
        let (rate, span) = split_limit(text, "RATE/WINDOW, as in 10%/1h")?;
        Ok(RateLimit { rate: crate::gate::policy::parse_rate(rate)?, span: Span::parse(span)? })
    }

    /// `10%`, for annotations.
    pub fn percent(&self) -> String {
        format!("{}%", number(self.rate * 100.0))
    }
}

fn split_limit<'a>(text: &'a str, expected: &str) -> Result<(&'a str, &'a str)> {
    match text.split_once('/') {
        Some((value, span)) if !value.trim().is_empty() && !span.trim().is_empty() => Ok((value.trim(), span)),
        _ => bail!("{text:?}: expected {expected}"),
    }
}

/// A dollar amount: a finite number above zero (`$` allowed).
pub fn parse_usd(text: &str) -> Result<f64> {
    let t = text.trim();
    let usd: f64 =
        t.strip_prefix('$').unwrap_or(t).parse().with_context(|| format!("{t:?} is not an amount of USD"))?;
    if !(usd.is_finite() && usd > 0.0) {
        bail!("{t:?}: an amount of USD above 0");
    }
    Ok(usd)
}

/// A threshold as a PromQL/LogQL number literal: plain decimal digits (Rust never writes an
/// exponent or a sign for a finite, non-negative `f64`).
pub fn number(v: f64) -> String {
    debug_assert!(v.is_finite() && v >= 0.0);
    format!("{v}")
}

/// `s` as one shell word, for the `obsctl` command lines in runbook annotations.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `s` as literal text in an alert template (Go's text/template): its only special
/// sequence in text is `{{`, written as an action that prints it.
pub fn template_text(s: &str) -> String {
    s.replace("{{", "{{ \"{{\" }}")
}

/// The template that prints a label's value as one shell word (single-quoted).
pub fn shell_quoted_label(label: &str) -> String {
    format!("'{{{{ reReplaceAll \"'\" \"'\\\\''\" $labels.{label} }}}}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_written() {
        assert_eq!(
            CostLimit::parse("5/1h").unwrap(),
            CostLimit { usd: 5.0, span: Span { ms: 3_600_000, text: "1h".into() } }
        );
        assert_eq!(CostLimit::parse(" $2.5 / 1d").unwrap().span.ms, 86_400_000);
        let r = RateLimit::parse("10%/6h").unwrap();
        assert_eq!((r.rate, r.span.ms, r.percent()), (0.1, 6 * 3_600_000, "10%".to_string()));
        assert_eq!(RateLimit::parse("0.25/1h").unwrap().rate, 0.25);
        for bad in ["5", "5/", "/1h", "5/1m", "-1/1h", "nan/1h", "inf/1h", "0/1h", "5/0h", "x/1h"] {
            assert!(CostLimit::parse(bad).is_err(), "{bad}");
        }
        for bad in ["150%/1h", "10%", "10%/30m"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(1e-7), "0.0000001");
        assert_eq!(number(1e21), "1000000000000000000000");
    }

    #[test]
    fn words_for_shell_and_templates() {
        assert_eq!(shell_quote("/etc/obsctl.toml"), "/etc/obsctl.toml");
        assert_eq!(shell_quote("it's {a b}"), r"'it'\''s {a b}'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(template_text("/x/{{ .Value }}/y}}"), "/x/{{ \"{{\" }} .Value }}/y}}");
        assert_eq!(shell_quoted_label("agent"), r#"'{{ reReplaceAll "'" "'\\''" $labels.agent }}'"#);
    }
}
