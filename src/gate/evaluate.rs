//! From two digests (or a digest and an old baseline) and a policy to the checks.

use std::collections::BTreeSet;

use super::baseline::{DigestFile, GroupCosts, LegacyFile, VariantFile};
use super::policy::{Dim, Increase, Limit, Policy};
use super::stats::{self, MeanStats, Proportion};
use super::{BaselineInfo, Check, IntervalNote, Mover, Outcome, OverBudget, Unit, Verdict};
use crate::usd::Usd;

/// What the window is compared with.
pub enum Reference<'a> {
    Digest(&'a DigestFile),
    Legacy(&'a LegacyFile),
}

/// How many movers the reports show.
const MOVERS: usize = 5;

/// Rounding slack: a figure this close to its threshold is at it, and passes.
const SLACK: f64 = 1e-9;

/// The figures compared, per session or (against an old baseline) per model call.
struct Figures {
    /// Sessions (an old baseline: its model calls), for `--min-sessions`.
    sample: Option<u64>,
    cost: Option<f64>,
    cost_per_unit: Option<f64>,
    tokens_per_unit: Option<f64>,
    failed_run_rate: Option<f64>,
    tool_failure_rate: Option<f64>,
    p95_seconds: Option<f64>,
}

fn ratio(num: Option<f64>, den: Option<u64>) -> Option<f64> {
    match den {
        Some(d) if d > 0 => num.map(|n| n / d as f64),
        _ => None,
    }
}

impl Figures {
    fn of_digest(d: &DigestFile, per_call: bool) -> Figures {
        let t = &d.totals;
        let unit = if per_call { t.model_calls } else { Some(t.sessions) };
        Figures {
            sample: Some(t.sessions),
            cost: t.known_cost(),
            cost_per_unit: ratio(t.known_cost(), unit),
            tokens_per_unit: ratio(Some((t.input_tokens + t.output_tokens) as f64), unit),
            failed_run_rate: ratio(t.errors.map(|e| e as f64), t.runs),
            tool_failure_rate: ratio(t.tool_failures.map(|e| e as f64), t.tool_calls),
            p95_seconds: d.durations.as_ref().map(|x| x.p95_seconds),
        }
    }

    fn of_legacy(l: &LegacyFile) -> Figures {
        Figures {
            sample: Some(l.total_sessions),
            // The old files have no window: a total means nothing next to this one's.
            cost: None,
            cost_per_unit: Some(l.avg_cost_per_session_usd),
            tokens_per_unit: Some(l.avg_tokens_per_session),
            failed_run_rate: Some(l.model_error_rate),
            tool_failure_rate: l.tool_call_error_rate,
            p95_seconds: l.p95_session_duration_ms.map(|ms| ms / 1000.0),
        }
    }
}

/// Compares `current` with `reference` under `policy`. `fetched_top` is how many
/// sessions the current digest was asked for (to say "at least" of a full list).
pub fn evaluate(
    current: &DigestFile,
    reference: Reference,
    baseline: BaselineInfo,
    policy: &Policy,
    fetched_top: usize,
) -> Verdict {
    let per_call = matches!(reference, Reference::Legacy(_));
    // A legacy file has no total to compare: the default check is the cost per model call,
    // what the old script compared.
    let legacy_default;
    let policy = if per_call && policy.by_default {
        legacy_default = Policy { total_cost: Limit::default(), cost_per_session: policy.total_cost, ..policy.clone() };
        &legacy_default
    } else {
        policy
    };
    let now = Figures::of_digest(current, per_call);
    // A baseline of another length (a saved week against the last 24 h) is compared at its
    // rate: its totals scaled to this window's length, as a total of a week next to a
    // day's would pass any regression.
    let lengths = match reference {
        Reference::Digest(d) => different_lengths(current, d),
        Reference::Legacy(_) => None,
    };
    let scale = lengths.map(|(window, baseline)| window as f64 / baseline as f64);
    let mut before = match reference {
        Reference::Digest(d) => Figures::of_digest(d, false),
        Reference::Legacy(l) => Figures::of_legacy(l),
    };
    if let Some(ratio) = scale {
        before.cost = before.cost.map(|c| c * ratio);
    }
    let mut v = Verdict {
        window: current.window_phrase(),
        window_start: current.window.start.clone(),
        window_end: current.window.end.clone(),
        baseline,
        checks: Vec::new(),
        movers: Vec::new(),
        over_budget: Vec::new(),
        notes: Vec::new(),
        warnings: current.warnings.clone(),
        allow_missing: policy.allow_missing,
    };
    // A window still running would compare part of a window with a whole one: not a
    // verdict to trust either way (README: exit 3 for partial data).
    let unfinished = |id: &str, name: &str, what: &str, d: &DigestFile| {
        let why = format!("{what} ends in the future ({}): its figures are partial", d.window.end);
        Check::insufficient(id, name, "ended", why)
    };
    if current.window.partial {
        v.checks.push(unfinished("window.complete", "The window has ended", "the window", current));
    }
    if let Reference::Digest(d) = reference {
        if d.window.partial {
            v.checks.push(unfinished("baseline.complete", "The baseline's window had ended", "the baseline", d));
        }
    }
    if let Reference::Legacy(l) = reference {
        v.notes.push(format!(
            "legacy baseline {:?} (captured {}): its \"per session\" averages were per model call and its error rate \
             the failed-run rate, so this window is compared per model call and by failed-run rate; it has no window, \
             so no total is compared",
            l.tag, l.captured_at
        ));
    }
    if let (Some((window, baseline)), Some(ratio)) = (lengths, scale) {
        v.notes.push(format!(
            "the baseline's window ({}) is not as long as this one ({}): its totals (the cost, by model and by \
             agent) are scaled to this window's length (× {}); per-session figures and rates are compared as they are",
            human_span(baseline),
            human_span(window),
            trim_to(ratio, 3)
        ));
    }
    if let Reference::Digest(d) = reference {
        v.warnings.extend(d.warnings.iter().map(|w| format!("baseline: {w}")));
    }

    let unknown = |t: &super::baseline::TotalsFile| {
        format!("none of its {} model calls carries a cost: its cost is unknown, not zero", t.model_calls.unwrap_or(0))
    };
    if current.totals.known_cost().is_none() {
        v.warnings.push(format!("the window: {}", unknown(&current.totals)));
    }
    if let Reference::Digest(d) = reference {
        if d.totals.known_cost().is_none() {
            v.warnings.push(format!("baseline: {}", unknown(&d.totals)));
        }
    }

    // Variants against a control need no baseline: a new experiment is decided on its own.
    let before_sample = if uses_baseline(policy) { Some(before.sample) } else { None };
    enough_data(&mut v.checks, policy.min_sessions, now.sample, before_sample, per_call);
    let too_few = v.checks.iter().any(|c| c.id.starts_with("sessions.") && c.outcome.is_undecided());
    let per = if per_call { "model call" } else { "session" };
    let c = &mut v.checks;
    limit_checks(c, "total_cost", "Total cost", Unit::Usd, now.cost, before.cost, &policy.total_cost);
    let cps = format!("Cost per {per}");
    limit_checks(
        c,
        "cost_per_session",
        &cps,
        Unit::Usd,
        now.cost_per_unit,
        before.cost_per_unit,
        &policy.cost_per_session,
    );
    let tps = format!("Tokens per {per}");
    limit_checks(
        c,
        "tokens_per_session",
        &tps,
        Unit::Count,
        now.tokens_per_unit,
        before.tokens_per_unit,
        &policy.tokens_per_session,
    );
    let (fr, br) = (now.failed_run_rate, before.failed_run_rate);
    limit_checks(c, "failed_run_rate", "Failed-run rate", Unit::Rate, fr, br, &policy.failed_run_rate);
    let (ft, bt) = (now.tool_failure_rate, before.tool_failure_rate);
    limit_checks(c, "tool_failure_rate", "Tool-failure rate", Unit::Rate, ft, bt, &policy.tool_failure_rate);
    let (fp, bp) = (now.p95_seconds, before.p95_seconds);
    limit_checks(c, "p95_duration", "p95 session duration", Unit::Seconds, fp, bp, &policy.p95_duration);

    let reference_digest = match reference {
        Reference::Digest(d) => Some(d),
        Reference::Legacy(_) => None,
    };
    for dim in [Dim::Model, Dim::Agent] {
        let (now_costs, before_costs) = match dim {
            Dim::Model => (current.model_costs(), reference_digest.map(DigestFile::model_costs)),
            _ => (current.agent_costs(), reference_digest.map(DigestFile::agent_costs)),
        };
        let before_costs = before_costs.map(|mut costs| {
            if let Some(ratio) = scale {
                costs.values_mut().for_each(|c| *c = c.map(|c| c * ratio));
            }
            costs
        });
        group_checks(&mut v.checks, dim, &now_costs, before_costs.as_ref(), policy);
        if let Some(before) = &before_costs {
            v.movers.extend(movers(dim.name(), &now_costs, before));
        }
    }
    v.movers.sort_by(|a, b| (b.current - b.baseline).abs().total_cmp(&(a.current - a.baseline).abs()));
    v.movers.truncate(MOVERS);
    let wants_variants = policy.cost_per.contains_key(&Dim::Variant) || policy.increase_per.contains_key(&Dim::Variant);
    if wants_variants {
        if let Some(why) = no_section(current, "by_variant") {
            let why = format!("no per-variant figures{why}");
            v.checks.push(Check::insufficient("variant.figures", "Per-variant figures", "present", why));
        }
    }
    if let Some(&max) = policy.cost_per.get(&Dim::Variant) {
        for row in &current.by_variant {
            let limit = Limit { increase: None, max: Some(max) };
            let name = variant_name(row);
            let id = "variant.cost";
            limit_checks_of(&mut v.checks, id, "Variant cost", Some(name), Unit::Usd, row.cost_usd, None, &limit);
        }
    }
    if let Some(&pct) = policy.increase_per.get(&Dim::Variant) {
        variant_checks(&mut v.checks, current, reference_digest, pct, policy);
    }
    if let Some(budget) = policy.session_budget {
        v.over_budget = session_budget(&mut v.checks, current, budget, fetched_top);
    }
    if too_few {
        // A comparison with too few sessions on either side is noise, not a regression.
        let comparisons = v.checks.iter_mut().filter(|c| c.id.ends_with(".increase") && !c.outcome.is_undecided());
        for check in comparisons {
            check.outcome = Outcome::Insufficient;
            check.detail = Some("too few sessions to compare (see the sessions checks)".into());
        }
    }
    if let Some(check) = uncosted_check(current, reference_digest, policy) {
        v.checks.push(check);
    }
    if policy.allow_missing {
        for check in v.checks.iter().filter(|c| c.outcome.is_undecided()) {
            let subject = check.subject.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            let why = check.detail.as_deref().unwrap_or(check.outcome.name());
            v.warnings.push(format!("{}{subject} not decided, allowed by --allow-missing: {why}", check.name));
        }
    }
    v
}

/// Model calls without a cost make every cost figure a known part only: a window whose new
/// model has no price would pass any cost check. Present only when the policy checks a cost
/// and some call in the window or a digest baseline carried none.
fn uncosted_check(current: &DigestFile, baseline: Option<&DigestFile>, policy: &Policy) -> Option<Check> {
    let checks_cost = policy.total_cost != Limit::default()
        || policy.cost_per_session != Limit::default()
        || !policy.increase_per.is_empty()
        || !policy.cost_per.is_empty()
        || policy.session_budget.is_some();
    let uncosted = |d: &DigestFile| d.totals.uncosted_events.filter(|&n| n > 0).map(|n| (n, d.totals.model_calls));
    let (now, before) = (uncosted(current), baseline.and_then(uncosted));
    if !checks_cost || (now.is_none() && before.is_none()) {
        return None;
    }
    let of = |(n, calls): (u64, Option<u64>)| match calls {
        Some(calls) => format!("{n} of {calls} model calls"),
        None => format!("{n} model calls"),
    };
    let said: Vec<String> =
        [now.map(|n| format!("{} in the window", of(n))), before.map(|n| format!("{} in the baseline", of(n)))]
            .into_iter()
            .flatten()
            .collect();
    let why = format!(
        "{} carried no cost: the cost checks would compare known costs only (`obsctl doctor` names the models)",
        said.join(", ")
    );
    Some(Check {
        current: now.map(|(n, _)| n as f64),
        baseline: before.map(|(n, _)| n as f64),
        ..Check::insufficient("cost.known", "Every model call carried a cost", "0 uncosted", why)
    })
}

/// The lengths of this window and the baseline's, in seconds, when they differ.
fn different_lengths(current: &DigestFile, before: &DigestFile) -> Option<(i64, i64)> {
    let len = |d: &DigestFile| {
        let p = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
        Some((p(&d.window.end)? - p(&d.window.start)?).num_seconds())
    };
    match (len(current), len(before)) {
        (Some(a), Some(b)) if a != b && a > 0 && b > 0 => Some((a, b)),
        _ => None,
    }
}

fn human_span(seconds: i64) -> String {
    if seconds % 86_400 == 0 {
        format!("{} days", seconds / 86_400)
    } else {
        format!("{:.1} hours", seconds as f64 / 3600.0)
    }
}

/// Whether a check compares with the baseline: an increase, or a variant without a control.
fn uses_baseline(policy: &Policy) -> bool {
    let limits = [
        &policy.total_cost,
        &policy.cost_per_session,
        &policy.tokens_per_session,
        &policy.failed_run_rate,
        &policy.tool_failure_rate,
        &policy.p95_duration,
    ];
    limits.iter().any(|l| l.increase.is_some())
        || policy.increase_per.keys().any(|&d| d != Dim::Variant || policy.control.is_none())
}

/// The sessions checks; `before` is `None` when no check compares with the baseline (no
/// `sessions.baseline` then), `Some(count)` otherwise.
fn enough_data(checks: &mut Vec<Check>, min: u64, now: Option<u64>, before: Option<Option<u64>>, per_call: bool) {
    let mut check = |id: &str, name: &str, n: Option<u64>, what: &str, of_baseline: bool| {
        let outcome = match n {
            Some(n) if n >= min.max(1) => Outcome::Pass,
            _ => Outcome::Insufficient,
        };
        let detail = (outcome != Outcome::Pass).then(|| match n {
            Some(n) => format!("{n} {what}, fewer than the {} needed", min.max(1)),
            None => format!("no count of {what}"),
        });
        checks.push(Check {
            id: id.into(),
            name: name.into(),
            subject: None,
            unit: Unit::Count,
            baseline: n.filter(|_| of_baseline).map(|n| n as f64),
            current: n.filter(|_| !of_baseline).map(|n| n as f64),
            change: None,
            threshold: format!("≥ {}", min.max(1)),
            outcome,
            detail,
            interval: None,
        });
    };
    check("sessions.window", "Sessions in the window", now, "sessions", false);
    let (name, what) = if per_call {
        ("Model calls in the baseline", "model calls")
    } else {
        ("Sessions in the baseline", "sessions")
    };
    if let Some(before) = before {
        check("sessions.baseline", name, before, what, true);
    }
}

fn limit_checks(
    c: &mut Vec<Check>,
    id: &str,
    name: &str,
    unit: Unit,
    now: Option<f64>,
    before: Option<f64>,
    limit: &Limit,
) {
    limit_checks_of(c, id, name, None, unit, now, before, limit);
}

/// The increase and maximum checks of one figure, as far as its limit asks for them.
#[allow(clippy::too_many_arguments)]
fn limit_checks_of(
    checks: &mut Vec<Check>,
    id: &str,
    name: &str,
    subject: Option<String>,
    unit: Unit,
    now: Option<f64>,
    before: Option<f64>,
    limit: &Limit,
) {
    let change = match (now, before) {
        (Some(n), Some(b)) if b != 0.0 => Some((n - b) / b),
        _ => None,
    };
    let base = Check {
        id: String::new(),
        name: name.into(),
        subject,
        unit,
        baseline: before,
        current: now,
        change,
        threshold: String::new(),
        outcome: Outcome::Pass,
        detail: None,
        interval: None,
    };
    if let Some(increase) = limit.increase {
        let (outcome, detail) = match (now, before) {
            (None, _) => (Outcome::Insufficient, Some("no figure for this window".to_string())),
            (_, None) => (Outcome::Insufficient, Some("no figure in the baseline".to_string())),
            (Some(n), Some(b)) => judge_increase(n, b, increase, unit),
        };
        checks.push(Check {
            id: format!("{id}.increase"),
            threshold: show_increase(increase),
            outcome,
            detail,
            ..base.clone()
        });
    }
    if let Some(max) = limit.max {
        let (outcome, detail) = match now {
            None => (Outcome::Insufficient, Some("no figure for this window".to_string())),
            Some(n) if n > max + SLACK * max.abs().max(1.0) => (Outcome::Fail, None),
            Some(_) => (Outcome::Pass, None),
        };
        checks.push(Check {
            id: format!("{id}.max"),
            threshold: format!("≤ {}", show(max, unit)),
            outcome,
            detail,
            ..base
        });
    }
}

fn judge_increase(now: f64, before: f64, increase: Increase, unit: Unit) -> (Outcome, Option<String>) {
    match increase {
        Increase::Points(pp) => {
            let up = now - before;
            let outcome = if up > pp + SLACK { Outcome::Fail } else { Outcome::Pass };
            (outcome, Some(format!("{:+.2} percentage points", up * 100.0)))
        }
        Increase::Relative(_) if before == 0.0 && now == 0.0 => (Outcome::Pass, None),
        Increase::Relative(_) if before == 0.0 => (
            Outcome::Undefined,
            Some(format!(
                "the baseline is {}: a relative change is undefined; an absolute threshold can decide",
                show(0.0, unit)
            )),
        ),
        Increase::Relative(p) => {
            let change = (now - before) / before;
            (if change > p + SLACK { Outcome::Fail } else { Outcome::Pass }, None)
        }
    }
}

fn group_checks(checks: &mut Vec<Check>, dim: Dim, now: &GroupCosts, before: Option<&GroupCosts>, policy: &Policy) {
    let increase = policy.increase_per.get(&dim).map(|&p| Increase::Relative(p));
    let max = policy.cost_per.get(&dim).copied();
    if increase.is_none() && max.is_none() {
        return;
    }
    let mut names: BTreeSet<&String> = now.keys().collect();
    if let Some(before) = before {
        names.extend(before.keys());
    }
    if increase.is_some() && before.is_none() {
        checks.push(Check {
            id: format!("{}.cost.increase", dim.name()),
            name: format!("Cost per {}", dim.name()),
            subject: None,
            unit: Unit::Usd,
            baseline: None,
            current: None,
            change: None,
            threshold: increase.map(show_increase).unwrap_or_default(),
            outcome: Outcome::Insufficient,
            detail: Some(format!("the baseline has no cost by {}", dim.name())),
            interval: None,
        });
    }
    for name in names {
        // A group absent on one side spent nothing there.
        let cost_now = now.get(name).copied().unwrap_or(Some(0.0));
        let cost_before = before.map(|b| b.get(name).copied().unwrap_or(Some(0.0))).unwrap_or(None);
        let limit = Limit { increase: increase.filter(|_| before.is_some()), max };
        let id = format!("{}.cost", dim.name());
        let title = format!("Cost of {}", dim.name());
        limit_checks_of(checks, &id, &title, Some(name.clone()), Unit::Usd, cost_now, cost_before, &limit);
    }
}

fn movers(dim: &'static str, now: &GroupCosts, before: &GroupCosts) -> Vec<Mover> {
    let names: BTreeSet<&String> = now.keys().chain(before.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            // Absent on one side: nothing spent there. Present with no known cost: no mover,
            // as an unknown cost is not a drop to zero.
            let cost = |m: &GroupCosts| m.get(name).copied().unwrap_or(Some(0.0));
            let (current, baseline) = (cost(now)?, cost(before)?);
            (current != baseline).then(|| Mover { dim, name: name.clone(), baseline, current })
        })
        .collect()
}

fn variant_name(v: &VariantFile) -> String {
    format!("{}/{}", v.experiment.as_deref().unwrap_or("(none)"), v.variant.as_deref().unwrap_or("(none)"))
}

/// Each experiment's variants against the control variant of this window, or against the
/// same variant in the baseline: regressions only where the whole interval of the
/// difference lies past the threshold.
fn variant_checks(
    checks: &mut Vec<Check>,
    current: &DigestFile,
    before: Option<&DigestFile>,
    pct: f64,
    policy: &Policy,
) {
    let need = policy.min_sessions.max(2);
    for row in current.by_variant.iter().filter(|v| v.experiment.is_some()) {
        let reference = match &policy.control {
            Some(control) if row.variant.as_deref() == Some(control.as_str()) => continue,
            Some(control) => current
                .by_variant
                .iter()
                .find(|v| v.experiment == row.experiment && v.variant.as_deref() == Some(control.as_str()))
                .map(|v| (v, format!("{control} (control)")))
                .ok_or_else(|| format!("experiment has no variant {control:?} in this window")),
            None => match before {
                None => Err("a legacy baseline has no variants".to_string()),
                Some(b) => b
                    .by_variant
                    .iter()
                    .find(|v| v.experiment == row.experiment && v.variant == row.variant)
                    .map(|v| (v, "baseline".to_string()))
                    .ok_or_else(|| "the variant is not in the baseline".to_string()),
            },
        };
        let subject = variant_name(row);
        let missing = |id: &str, name: &str, unit, why: String| Check {
            subject: Some(subject.clone()),
            unit,
            ..Check::insufficient(id, name, "", why)
        };
        let (reference, against) = match reference {
            Ok(r) => r,
            Err(why) => {
                checks.push(missing("variant.cost_per_session", "Variant cost per session", Unit::Usd, why));
                continue;
            }
        };
        let too_few = [row, reference].iter().find(|v| v.sessions < need).map(|v| {
            format!("{} has {} sessions, fewer than the {need} an interval needs", variant_name(v), v.sessions)
        });
        let conf = policy.confidence;
        // Cost per session: Welch's t on the sessions' costs.
        let mean = |v: &VariantFile| {
            Some(MeanStats { n: v.sessions, sum: v.cost_usd?, sum_squares: v.cost_sum_squares_usd2? })
        };
        let check = IntervalCheck {
            id: "variant.cost_per_session",
            name: "Variant cost per session",
            subject: &subject,
            against: &against,
            unit: Unit::Usd,
            threshold: show_increase(Increase::Relative(pct)),
        };
        checks.push(match (&too_few, mean(row), mean(reference)) {
            (Some(why), ..) => check.undecided(why.clone()),
            (None, Some(a), Some(b)) => {
                let base = b.mean().unwrap_or(0.0);
                check.judge(
                    a.mean(),
                    Some(base),
                    base * pct,
                    stats::welch_difference(a, b, conf),
                    stats::welch_name(conf),
                )
            }
            _ => check.undecided("the source gives no spread of cost per session".into()),
        });
        // Rates: a two-proportion interval.
        let rates: [RateCheck; 2] = [
            ("variant.failed_run_rate", "Variant failed-run rate", policy.failed_run_rate.increase, |v| {
                Some(Proportion { events: v.errors, trials: v.runs? })
            }),
            ("variant.tool_failure_rate", "Variant tool-failure rate", policy.tool_failure_rate.increase, |v| {
                Some(Proportion { events: v.tool_failures?, trials: v.tool_calls? })
            }),
        ];
        for (id, name, increase, proportion) in rates {
            let Some(increase) = increase else { continue };
            let check = IntervalCheck {
                id,
                name,
                subject: &subject,
                against: &against,
                unit: Unit::Rate,
                threshold: show_increase(increase),
            };
            checks.push(match (&too_few, proportion(row), proportion(reference)) {
                (Some(why), ..) => check.undecided(why.clone()),
                (None, Some(a), Some(b)) if a.trials > 0 && b.trials > 0 => {
                    let base = b.rate().unwrap_or(0.0);
                    let margin = match increase {
                        Increase::Relative(p) => base * p,
                        Increase::Points(pp) => pp,
                    };
                    let ci = stats::proportion_difference(a, b, conf);
                    check.judge(a.rate(), Some(base), margin, ci, stats::newcombe_name(conf))
                }
                _ => check.undecided("no runs or tool calls to take a rate of".into()),
            });
        }
    }
}

/// A rate's check id and name, its threshold, and how to read its proportion off a variant.
type RateCheck = (&'static str, &'static str, Option<Increase>, fn(&VariantFile) -> Option<Proportion>);

struct IntervalCheck<'a> {
    id: &'static str,
    name: &'static str,
    subject: &'a str,
    against: &'a str,
    unit: Unit,
    threshold: String,
}

impl IntervalCheck<'_> {
    fn check(&self, outcome: Outcome, detail: String) -> Check {
        Check {
            id: self.id.into(),
            name: self.name.into(),
            subject: Some(format!("{} vs {}", self.subject, self.against)),
            unit: self.unit,
            baseline: None,
            current: None,
            change: None,
            threshold: self.threshold.clone(),
            outcome,
            detail: Some(detail),
            interval: None,
        }
    }

    fn undecided(&self, why: String) -> Check {
        self.check(Outcome::Insufficient, why)
    }

    /// A regression only when the whole interval lies above the margin.
    fn judge(
        &self,
        now: Option<f64>,
        before: Option<f64>,
        margin: f64,
        interval: Option<stats::Interval>,
        test: String,
    ) -> Check {
        let Some(ci) = interval else {
            return self.undecided("the interval cannot be computed from these figures".into());
        };
        let (outcome, detail) = if ci.low > margin + SLACK * margin.abs().max(1e-12) {
            (Outcome::Fail, "the whole interval lies above the allowed increase")
        } else if ci.high < 0.0 {
            (Outcome::Pass, "lower than the reference: the whole interval lies below zero")
        } else if ci.high <= margin {
            (Outcome::Pass, "the whole interval lies within the allowed increase")
        } else {
            (Outcome::Pass, "the interval overlaps the threshold: not a proven regression")
        };
        let change = match (now, before) {
            (Some(n), Some(b)) if b != 0.0 => Some((n - b) / b),
            _ => None,
        };
        Check {
            baseline: before,
            current: now,
            change,
            interval: Some(IntervalNote { low: ci.low, high: ci.high, margin, test }),
            ..self.check(outcome, detail.into())
        }
    }
}

fn session_budget(checks: &mut Vec<Check>, current: &DigestFile, budget: f64, fetched_top: usize) -> Vec<OverBudget> {
    let mut check = Check {
        id: "session.cost.max".into(),
        name: "Session budget".into(),
        subject: None,
        unit: Unit::Usd,
        baseline: None,
        current: None,
        change: None,
        threshold: format!("≤ {}", show(budget, Unit::Usd)),
        outcome: Outcome::Pass,
        detail: None,
        interval: None,
    };
    let missing = no_section(current, "by_session")
        .or_else(|| (current.by_session.is_empty() && current.totals.sessions > 0).then(|| " from this source".into()));
    if let Some(why) = missing {
        check.outcome = Outcome::Insufficient;
        check.detail = Some(format!("no per-session figures{why}"));
        checks.push(check);
        return Vec::new();
    }
    let over: Vec<OverBudget> = current
        .by_session
        .iter()
        .filter(|s| s.cost_usd.is_some_and(|c| c > budget + SLACK * budget.max(1.0)))
        .map(|s| OverBudget { session: s.session.clone(), agent: s.agent.clone(), cost: s.cost_usd.unwrap_or(0.0) })
        .collect();
    check.current = current.by_session.iter().filter_map(|s| s.cost_usd).reduce(f64::max).or(Some(0.0));
    // A session none of whose model calls carries a cost may be over budget or not.
    let unknown = current.by_session.iter().filter(|s| s.cost_usd.is_none()).count();
    if !over.is_empty() {
        check.outcome = Outcome::Fail;
        let at_least = if over.len() >= fetched_top { "at least " } else { "" };
        check.detail = Some(format!("{at_least}{} sessions over budget", over.len()));
    } else if unknown > 0 {
        check.outcome = Outcome::Insufficient;
        check.detail = Some(format!(
            "{unknown} of the sessions listed have no known cost (none of their model calls carries one): \
             whether they are over budget is unknown"
        ));
    }
    checks.push(check);
    over
}

/// `Some(reason)` when the source gave no figures for `section` (`by_session`, `by_variant`),
/// as `": why"` or `" from this source"`.
fn no_section(current: &DigestFile, section: &str) -> Option<String> {
    let source = current.source_of(section)?;
    (source.source == "none").then(|| match &source.fallback_reason {
        Some(why) => format!(": {why}"),
        None => " from this source".into(),
    })
}

pub fn show_increase(i: Increase) -> String {
    match i {
        Increase::Relative(p) => format!("≤ +{}%", trim(p * 100.0)),
        Increase::Points(pp) => format!("≤ +{}pp", trim(pp * 100.0)),
    }
}

fn trim(x: f64) -> String {
    trim_to(x, 4)
}

/// `x` with at most `decimals` decimals, without trailing zeros: `0.143`, `7`.
fn trim_to(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A figure in its unit, as the reports show it.
pub fn show(x: f64, unit: Unit) -> String {
    match unit {
        Unit::Usd => Usd::show_f64(x),
        Unit::Count if x.fract() == 0.0 => format!("{x:.0}"),
        Unit::Count => format!("{x:.1}"),
        Unit::Rate => format!("{}%", trim((x * 10_000.0).round() / 100.0)),
        Unit::Seconds => format!("{}s", trim(x)),
    }
}
