//! Prometheus: does it answer, does it hold every series the digest reads in the window
//! (and, when not, has it ever), the known naming mistakes, and whether it scrapes the
//! gateway at all.
//!
//! Every lookup is an index lookup (the series API, label values, targets): no sample is
//! read, so the checks cost the server next to nothing whatever the window.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use super::{Checkup, Finding, Need, Outcome, Severity, SourceStatus};
use crate::config::{redact_url, PrometheusNames};
use crate::error::describe;
use crate::source::prometheus::Target;
use crate::source::promql::PromQl;
use crate::window::NANOS_PER_SEC;

/// How far back "has this series ever existed" looks, before the window's start.
pub const LOOKBACK_DAYS: i64 = 30;
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One series the digest reads, and what the report loses without it.
struct Expected {
    name: String,
    /// The `[prometheus.metrics]` key that renames it, and the name to give there.
    key: &'static str,
    configured: String,
    /// Without it, the digest from Prometheus fails (the cost and token series).
    required: bool,
    loses: &'static str,
}

/// The series of [`PromQl::expected_series`], in its order, with what each is for.
fn expected(q: &PromQl) -> Vec<Expected> {
    let n = q.names();
    let e = |name: String, key, configured: &str, required, loses| Expected {
        name,
        key,
        configured: configured.to_string(),
        required,
        loses,
    };
    vec![
        e(
            q.cost_sum(),
            "session_cost",
            &n.session_cost,
            true,
            "no cost: a digest from Prometheus fails (exit 3); --source auto takes the cost from the files",
        ),
        e(
            q.cost_count(),
            "session_cost",
            &n.session_cost,
            true,
            "no costed-session counts: a digest from Prometheus fails (exit 3)",
        ),
        e(
            n.session_tokens.clone(),
            "session_tokens",
            &n.session_tokens,
            true,
            "no token counts: a digest from Prometheus fails (exit 3)",
        ),
        e(n.tool_calls.clone(), "tool_calls", &n.tool_calls, false, "tool calls and tool failures show as n/a"),
        e(n.model_errors.clone(), "model_errors", &n.model_errors, false, "model errors show as n/a"),
        e(
            q.duration_bucket(),
            "session_duration",
            &n.session_duration,
            false,
            "no p50/p95 session durations (the gate's duration checks cannot decide)",
        ),
    ]
}

pub async fn check(c: &Checkup, need: Need) -> Outcome {
    let settings = &c.sources.prometheus;
    let mut status = SourceStatus { source: "prometheus", location: redact_url(&settings.server.url), answered: false };
    let source = match crate::source::prometheus_source(&c.sources) {
        Ok(source) => source,
        Err(e) => return unreachable(status, need, &describe(&e)),
    };
    status.location = source.shown_url().to_string();
    if let Err(e) = source.probe(PROBE_TIMEOUT).await {
        return unreachable(status, need, &describe(&e));
    }
    status.answered = true;
    let mut findings = vec![Finding::ok(
        "prometheus.reachable",
        None,
        format!("Prometheus at {} answers", source.shown_url()),
        "the aggregates (totals, models, agents, days, durations) can come from Prometheus",
    )];
    let q = &settings.promql;
    let w = &c.window;
    let span = (w.start - LOOKBACK_DAYS * 86_400 * NANOS_PER_SEC, w.end.max(c.now));
    let bare = format!("{{__name__=\"{}\"}}", q.names().session_cost);
    let duration = format!("{{__name__=\"{}\"}}", q.duration_bucket());
    let presence = q.presence_selector();
    // The window is `(start, end]` for the series API, like the queries (see prometheus.rs).
    let (in_window, in_lookback, bare_series, duration_series, targets) = tokio::join!(
        source.series(&presence, w.start + 1_000_000, w.end),
        source.series(&presence, span.0, span.1),
        source.series(&bare, span.0, span.1),
        source.series(&duration, w.start + 1_000_000, w.end),
        source.targets(),
    );
    let day = |t| crate::window::from_nanos(t).format("%Y-%m-%d").to_string();
    let lookback = format!("{} – {} (UTC)", day(span.0), day(span.1));
    let series_jobs: BTreeSet<String>;
    let required_present = match (in_window, in_lookback) {
        (Ok(now), Ok(ever)) => {
            series_jobs = now.iter().filter_map(|l| l.get("job").cloned()).collect();
            findings.extend(label_findings(q.names(), &now));
            let (now, ever) = (count_by_name(&now), count_by_name(&ever));
            let missing: Vec<Expected> = expected(q).into_iter().filter(|e| !now.contains_key(&e.name)).collect();
            // Names to suggest, only when one is missing (the list can be long).
            let similar = match missing.is_empty() {
                true => Vec::new(),
                false => source.metric_names(span.0, span.1).await.unwrap_or_default(),
            };
            for e in expected(q) {
                findings.push(series_finding(&e, &now, &ever, &lookback, &similar, q.names()));
            }
            missing.iter().all(|e| !e.required)
        }
        (Err(e), _) | (_, Err(e)) => {
            // The other lookups would fail alike, and say nothing more.
            status.answered = false;
            let fix = "check --org-id (X-Scope-OrgID) and the credentials; --verbose shows the request";
            findings.push(Finding::refused("prometheus.series", &describe(&e), fix));
            return Outcome { status, findings };
        }
    };
    findings.push(match bare_series {
        Ok(series) => bare_finding(q, &series, &lookback),
        Err(e) => lookup_failed("prometheus.bare_cost", &describe(&e)),
    });
    if let Ok(series) = duration_series.as_ref().map(|s| s.as_slice()) {
        if let Some(f) = duration_finding(q.names(), &q.duration_bucket(), series) {
            findings.push(f);
        }
    }
    match targets {
        Ok(targets) => findings.extend(target_findings(&targets, &c.gateway_jobs, &series_jobs, required_present)),
        Err(e) => findings.push(Finding::problem(
            "prometheus.targets",
            Severity::Warning,
            None,
            format!("the scrape targets could not be read: {}", describe(&e)),
            "nothing: the targets only explain missing series (Thanos, Mimir and VictoriaMetrics do not all serve /api/v1/targets)",
            "ask the Prometheus that scrapes the gateway, if this one only stores what others send",
        )),
    }
    Outcome { status, findings }
}

fn unreachable(status: SourceStatus, need: Need, why: &str) -> Outcome {
    let finding = Finding::problem(
        "prometheus.reachable",
        need.missing(),
        None,
        why.to_string(),
        "no aggregates from Prometheus: --source prometheus fails (exit 3); --source auto takes them from the files",
        "start Prometheus, or point --prometheus-url (OBSCTL_PROMETHEUS_URL, [prometheus] url) at it; check --org-id and the credentials",
    );
    Outcome { status, findings: vec![finding] }
}

fn lookup_failed(check: &'static str, why: &str) -> Finding {
    Finding::undecided(check, why, "run again with --verbose to see the request; check the server's logs")
}

fn count_by_name(series: &[HashMap<String, String>]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for labels in series {
        if let Some(name) = labels.get("__name__") {
            *counts.entry(name.clone()).or_insert(0) += 1;
        }
    }
    counts
}

fn series_finding(
    e: &Expected,
    now: &BTreeMap<String, usize>,
    ever: &BTreeMap<String, usize>,
    lookback: &str,
    known: &[String],
    names: &PrometheusNames,
) -> Finding {
    let subject = Some(e.name.clone());
    if let Some(n) = now.get(&e.name) {
        return Finding::ok(
            "prometheus.series",
            subject,
            format!("present in the window ({n} series)"),
            "the digest reads it",
        );
    }
    let severity = if e.required { Severity::Error } else { Severity::Warning };
    let rename =
        format!("set [prometheus.metrics] {} = \"<name>\" in the config file (now \"{}\")", e.key, e.configured);
    if let Some(n) = ever.get(&e.name) {
        return Finding::problem(
            "prometheus.series",
            severity,
            subject,
            format!("no sample in the window, but {n} series of it hold samples in {lookback}: the gateway stopped exporting it, or Prometheus stopped scraping it"),
            e.loses,
            "check that the gateway still runs and that its scrape target is up (see prometheus.targets); a restart of the gateway resets its counters, it does not remove them",
        );
    }
    let similar = similar_names(&e.name, known, names);
    let hint = if similar.is_empty() {
        String::new()
    } else {
        format!("; Prometheus has similar names: {}", similar.join(", "))
    };
    // The config names a histogram by its base (`…_cost_usd` for `…_cost_usd_sum`): the
    // value to give is the similar name less the part obsctl adds.
    let added = e.name.strip_prefix(e.configured.as_str()).unwrap_or("");
    let rename = match similar.first().and_then(|s| s.strip_suffix(added)) {
        Some(base) => {
            format!("set [prometheus.metrics] {} = \"{base}\" in the config file (now \"{}\")", e.key, e.configured)
        }
        None => rename,
    };
    Finding::problem(
        "prometheus.series",
        severity,
        subject,
        format!("never recorded or never scraped: no series of that name in {lookback}{hint}"),
        e.loses,
        &format!(
            "make the gateway record it (the instrument is created but never updated, or lives on a meter no exporter reads) and make Prometheus scrape the endpoint that exports it; if your deployment renamed it, {rename}"
        ),
    )
}

/// Up to three known names that share the expected one's distinctive words
/// (`gateway_session_cost_usd_sum` for `openclaw_session_cost_usd_sum`).
fn similar_names(expected: &str, known: &[String], names: &PrometheusNames) -> Vec<String> {
    const GENERIC: [&str; 9] = ["openclaw", "total", "sum", "count", "bucket", "seconds", "usd", "session", "gateway"];
    let words = |name: &str| -> BTreeSet<String> {
        name.split(['_', ':']).filter(|w| !w.is_empty() && !GENERIC.contains(w)).map(str::to_string).collect()
    };
    let wanted = words(expected);
    let suffix = ["_sum", "_count", "_bucket", "_total"].into_iter().find(|s| expected.ends_with(s));
    let configured =
        [&names.session_cost, &names.session_tokens, &names.tool_calls, &names.model_errors, &names.session_duration];
    let mut scored: Vec<(usize, &String)> = known
        .iter()
        .filter(|k| k.as_str() != expected && !configured.iter().any(|c| k.starts_with(c.as_str())))
        .filter(|k| suffix.is_none_or(|s| k.ends_with(s)))
        .map(|k| (words(k).intersection(&wanted).count(), k))
        .filter(|&(shared, _)| shared > 0 && shared * 2 >= wanted.len())
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()
}

/// The labels the digest splits the tokens and tool calls on. Without the token type the
/// Prometheus digest fails (exit 3); without the tool status its failures are unknown.
fn label_findings(names: &PrometheusNames, series: &[HashMap<String, String>]) -> Vec<Finding> {
    let lacking = |metric: &str, label: &str| {
        series.iter().filter(|l| l.get("__name__").is_some_and(|n| n == metric) && !l.contains_key(label)).count()
    };
    let mut findings = Vec::new();
    let checks = [
        (
            &names.session_tokens,
            &names.token_type,
            Severity::Error,
            "token_type",
            "no Prometheus digest: it fails (exit 3), as it cannot tell input from output tokens",
        ),
        (
            &names.tool_calls,
            &names.status,
            Severity::Warning,
            "status",
            "tool failures are unknown in the digest, and a failure-rate gate is undecided",
        ),
    ];
    for (metric, label, severity, key, impact) in checks {
        let n = lacking(metric, label);
        if n > 0 {
            findings.push(Finding::problem(
                "prometheus.labels",
                severity,
                Some(metric.clone()),
                format!(
                    "{n} series of {metric} in the window {} no `{label}` label",
                    if n == 1 { "has" } else { "have" }
                ),
                impact,
                &format!("if the gateway names that label otherwise, set it in the config's [prometheus.labels] {key}"),
            ));
        }
    }
    findings
}

/// The bare histogram name: nothing should be called that.
fn bare_finding(q: &PromQl, series: &[HashMap<String, String>], lookback: &str) -> Finding {
    let bare = &q.names().session_cost;
    let subject = Some(bare.clone());
    let (sum, count) = (q.cost_sum(), q.cost_count());
    if series.is_empty() {
        return Finding::problem(
            "prometheus.bare_cost",
            Severity::Warning,
            subject,
            format!("no series is named {bare}: the cost histogram exists only as {sum}, {count} and _bucket"),
            "a dashboard or alert that queries the bare name (as the shipped OpenClaw dashboards do) shows no data or $0.00; obsctl's own figures are not affected",
            &format!("query sum(increase({sum}[$__range])) for the cost and {count} for costed sessions"),
        );
    }
    let jobs: BTreeSet<&str> = series.iter().filter_map(|l| l.get("job").map(String::as_str)).collect();
    let from = if jobs.is_empty() { String::new() } else { format!(" (job {})", join(jobs)) };
    Finding::problem(
        "prometheus.bare_cost",
        Severity::Warning,
        subject,
        format!(
            "{} named {bare} {} in {lookback}{from}: something exports another metric under the cost histogram's base name",
            match series.len() {
                1 => "1 series".to_string(),
                n => format!("{n} series"),
            },
            if series.len() == 1 { "exists" } else { "exist" }
        ),
        &format!("a dashboard querying {bare} reads that metric, not the histogram's cost; obsctl reads only {sum} and {count}"),
        &format!("find what exports {bare} and rename it, and make dashboards query {sum}"),
    )
}

/// The duration histogram's labels: a panel filtered by provider shows nothing without one.
fn duration_finding(names: &PrometheusNames, bucket: &str, series: &[HashMap<String, String>]) -> Option<Finding> {
    if series.is_empty() {
        return None; // prometheus.series says it is missing
    }
    let labels: BTreeSet<&str> =
        series.iter().flat_map(|l| l.keys().map(String::as_str)).filter(|k| !["__name__", "le"].contains(k)).collect();
    let has_provider = labels.contains(names.provider.as_str());
    let message = format!("labels: {}", join(labels));
    let impact = if has_provider {
        "durations can be broken down by provider".to_string()
    } else {
        format!(
            "it has no `{}` label: a duration query filtered by provider returns nothing (filter by `{}` instead); obsctl does not filter durations",
            names.provider, names.model
        )
    };
    Some(Finding::ok("prometheus.duration_labels", Some(bucket.to_string()), message, &impact))
}

/// The gateway's scrape jobs: up, or why not.
/// The gateway's scrape targets: those of the jobs its series carry, and those whose job
/// name matches.
fn target_findings(
    targets: &[Target],
    patterns: &[String],
    series_jobs: &BTreeSet<String>,
    required_present: bool,
) -> Vec<Finding> {
    let of_series = |t: &Target| t.labels.get("job").is_some_and(|j| series_jobs.contains(j));
    let gateway: Vec<&Target> = targets.iter().filter(|t| of_series(t) || is_gateway(t, patterns)).collect();
    if gateway.is_empty() {
        let names = patterns.join("|");
        let jobs: BTreeSet<&str> = targets.iter().filter_map(|t| t.labels.get("job").map(String::as_str)).collect();
        let scraped = if jobs.is_empty() { "none".to_string() } else { join(jobs) };
        let message = format!("no scrape target's job contains {names} (jobs scraped: {scraped})");
        return vec![if !required_present {
            Finding::problem(
                "prometheus.targets",
                Severity::Error,
                None,
                message,
                "Prometheus does not scrape the gateway: its cost series never arrive",
                "add a scrape job for the gateway's /metrics endpoint to prometheus.yml (or name the job with --gateway-job)",
            )
        } else {
            Finding::ok(
                "prometheus.targets",
                None,
                message,
                "the series arrive some other way (remote write, a collector, a job named otherwise: --gateway-job)",
            )
        }];
    }
    gateway.into_iter().map(target_finding).collect()
}

fn is_gateway(t: &Target, patterns: &[String]) -> bool {
    let job = t.labels.get("job").map(String::as_str).unwrap_or(&t.scrape_pool).to_ascii_lowercase();
    let pool = t.scrape_pool.to_ascii_lowercase();
    // Prometheus's own Pushgateway is no LLM gateway, unless asked for by name.
    let matches = |name: &str, p: &str| name.contains(p) && (!name.contains("pushgateway") || p.contains("push"));
    patterns.iter().any(|p| matches(&job, p) || matches(&pool, p))
}

fn target_finding(t: &Target) -> Finding {
    let label = |k: &str| t.labels.get(k).cloned().unwrap_or_default();
    let subject = Some(format!("job={} instance={}", label("job"), label("instance")));
    let url = redact_url(&t.scrape_url);
    let lost = "none of the gateway's metrics reach Prometheus: its figures stop at the last good scrape, and a cost report from Prometheus shows $0.00 for the window or fails";
    match t.health.as_str() {
        "up" => Finding::ok("prometheus.targets", subject, format!("{url} is up"), "the gateway's metrics are scraped"),
        "down" if t.last_error.contains("401") || t.last_error.contains("403") => Finding::problem(
            "prometheus.targets",
            Severity::Error,
            subject,
            format!("the last scrape of {url} failed: {}: the gateway answers /metrics only on loopback", t.last_error),
            lost,
            "the gateway refuses /metrics to any client but 127.0.0.1, and a Prometheus in a container or on another host is not loopback: let the gateway serve /metrics to Prometheus's address (bind it to the network Prometheus is on, or allow that address), or give the scrape job the credentials the gateway asks for (authorization: in prometheus.yml)",
        ),
        "down" => Finding::problem(
            "prometheus.targets",
            Severity::Error,
            subject,
            format!("the last scrape of {url} failed: {}", t.last_error),
            lost,
            "make the gateway's /metrics endpoint reachable from Prometheus at that address (is the gateway running, and on that port?)",
        ),
        other => Finding::problem(
            "prometheus.targets",
            Severity::Warning,
            subject,
            format!("{url} has not been scraped yet (health {other:?})"),
            "none yet: ask again after one scrape interval",
            "wait one scrape interval, then run obsctl doctor again",
        ),
    }
}

fn join<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promql() -> PromQl {
        PromQl::new(PrometheusNames::default(), 60, None).unwrap()
    }

    #[test]
    fn the_expected_series_are_the_digests() {
        let q = promql();
        let names: Vec<String> = expected(&q).into_iter().map(|e| e.name).collect();
        assert_eq!(names, q.expected_series());
    }

    #[test]
    fn similar_names_share_distinctive_words() {
        let known: Vec<String> = [
            "gateway_session_cost_usd_sum",
            "gateway_session_cost_usd_count",
            "openclaw_session_tokens_total",
            "process_cpu_seconds_total",
            "up",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let names = PrometheusNames::default();
        assert_eq!(similar_names("openclaw_session_cost_usd_sum", &known, &names), ["gateway_session_cost_usd_sum"]);
        assert_eq!(similar_names("openclaw_tool_calls_total", &known, &names), Vec::<String>::new());
        // The configured names are not "similar": they are the ones looked for.
        assert!(similar_names("openclaw_session_tokens_sum", &known, &names).is_empty());
    }

    #[test]
    fn a_401_scrape_is_the_loopback_mistake() {
        let t = Target {
            labels: HashMap::from([("job".into(), "openclaw-gateway".into()), ("instance".into(), "gw:9464".into())]),
            scrape_pool: "openclaw-gateway".into(),
            scrape_url: "http://gw:9464/metrics".into(),
            health: "down".into(),
            last_error: "server returned HTTP status 401 Unauthorized".into(),
        };
        let none = BTreeSet::new();
        let f = target_findings(std::slice::from_ref(&t), &["openclaw".into()], &none, true);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("only on loopback"), "{:?}", f[0]);
        let other =
            Target { labels: HashMap::from([("job".into(), "node".into())]), scrape_pool: "node".into(), ..t.clone() };
        let f = target_findings(std::slice::from_ref(&other), &["openclaw".into(), "gateway".into()], &none, false);
        assert_eq!(f[0].severity, Severity::Error, "series missing and no gateway job: not scraped");
        let f = target_findings(std::slice::from_ref(&other), &["openclaw".into()], &none, true);
        assert_eq!(f[0].severity, Severity::Ok, "series present: they arrive some other way");
        // With series arrived, the gateway is the job they carry, not a name that matches:
        // a `pushgateway` down is not the gateway down.
        let push = Target {
            labels: HashMap::from([("job".into(), "pushgateway".into())]),
            scrape_pool: "pushgateway".into(),
            ..other.clone()
        };
        let up = Target { health: "up".into(), last_error: String::new(), ..t.clone() };
        let f = target_findings(&[push.clone(), up], &["openclaw".into(), "gateway".into()], &none, true);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].severity == Severity::Ok && f[0].subject.as_deref().unwrap().contains("openclaw-gateway"),
            "{f:?}"
        );
        let f = target_findings(std::slice::from_ref(&push), &["openclaw".into(), "gateway".into()], &none, true);
        assert_eq!(f[0].severity, Severity::Ok, "no gateway target: the series arrive otherwise");
        // A job the series carry is the gateway's, whatever its name.
        let jobs = BTreeSet::from(["pushgateway".to_string()]);
        let f = target_findings(&[push], &["openclaw".into()], &jobs, true);
        assert_eq!(f[0].severity, Severity::Error, "{f:?}");
    }

    #[test]
    fn token_and_tool_series_without_their_labels_are_named() {
        let n = PrometheusNames::default();
        let series = |name: &str, labels: &[(&str, &str)]| {
            let mut l: HashMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            l.insert("__name__".into(), name.into());
            l
        };
        let healthy = [
            series("openclaw_session_tokens_total", &[("type", "input")]),
            series("openclaw_tool_calls_total", &[("status", "error")]),
        ];
        assert!(label_findings(&n, &healthy).is_empty());
        let relabelled = [
            series("openclaw_session_tokens_total", &[("token_type", "input")]),
            series("openclaw_session_tokens_total", &[("token_type", "output")]),
            series("openclaw_tool_calls_total", &[("outcome", "error")]),
        ];
        let f = label_findings(&n, &relabelled);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("2 series of openclaw_session_tokens_total in the window have no `type` label"));
        assert!(f[0].fix.as_deref().unwrap().contains("[prometheus.labels] token_type"));
        assert_eq!(f[1].severity, Severity::Warning);
    }
}
