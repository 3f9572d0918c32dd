//! `obsctl rules --target prometheus`: the files read back as written (an independent YAML
//! parser), `promtool check rules` accepts them, the `promtool test rules` unit tests in
//! tests/rules/ pass on them, hostile names and paths stay text, and the hourly recording
//! rules, evaluated on a real Prometheus, add up to the digest's figures for the same hours.

mod common;
#[path = "common/prometheus.rs"]
#[allow(dead_code)] // the JSONL half of the test week is for other tests
mod prom;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::obsctl;
use yaml_rust2::{Yaml, YamlLoader};

/// `obsctl rules` that reads no config file, environment or step but what a test gives.
fn rules_cmd() -> assert_cmd::Command {
    let mut cmd = obsctl();
    for var in ["OBSCTL_CONFIG", "OBSCTL_PROMETHEUS_STEP", "OBSCTL_LOKI_SELECTOR"] {
        cmd.env_remove(var);
    }
    // A directory without obsctl/config.toml: the default config file does not exist.
    cmd.env("XDG_CONFIG_HOME", rules_dir()).arg("rules");
    cmd
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules")
}

fn generate(args: &[&str]) -> String {
    let out = rules_cmd().args(args).output().expect("obsctl runs");
    assert!(out.status.success(), "obsctl rules {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The flags the committed `promtool test rules` files expect.
const TESTED: [&str; 8] =
    ["--spike", "5/1h", "--spike-per", "agent=2/1h", "--daily-budget", "100", "--error-rate", "10%/1h"];

/// `(group, rule name, expr, the rule's whole map)` of every rule in a rule file.
fn parsed_rules(text: &str) -> Vec<(String, String, String, Yaml)> {
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"));
    assert_eq!(docs.len(), 1, "one document");
    let mut out = Vec::new();
    for group in docs[0]["groups"].as_vec().expect("groups") {
        let name = group["name"].as_str().expect("group name").to_string();
        assert!(group["interval"].as_str().is_some(), "{name}: interval is a string");
        for rule in group["rules"].as_vec().expect("rules") {
            let rule_name = rule["record"].as_str().or(rule["alert"].as_str()).expect("record or alert").to_string();
            let expr = rule["expr"].as_str().expect("expr").to_string();
            out.push((name.clone(), rule_name, expr, rule.clone()));
        }
    }
    out
}

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("promtool").args(args).current_dir(dir).output().expect("run promtool");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn the_file_reads_back_as_the_queries_obsctl_builds() {
    let text = generate(&TESTED);
    let rules = parsed_rules(&text);
    let names: Vec<(&str, &str)> = rules.iter().map(|(g, n, _, _)| (g.as_str(), n.as_str())).collect();
    assert_eq!(
        names,
        [
            ("obsctl-hourly", "obsctl:cost_usd:hourly"),
            ("obsctl-hourly", "obsctl:sessions:hourly"),
            ("obsctl-hourly", "obsctl:tokens:hourly"),
            ("obsctl-alerts", "AgentCostSpike"),
            ("obsctl-alerts", "AgentCostSpikeByAgent"),
            ("obsctl-alerts", "AgentDailyBudgetExceeded"),
            ("obsctl-alerts", "ModelErrorRateHigh"),
        ]
    );
    let q = obsctl::source::promql::PromQl::new(Default::default(), 60, None).unwrap();
    let hour = q.increase_by("openclaw_session_cost_usd_sum", &["agent", "model", "provider"], 3_600_000);
    assert_eq!(rules[0].2, format!("last_over_time(({hour})[3599999ms:1h])"));
    let spike = q.increase_by("openclaw_session_cost_usd_sum", &[], 3_600_000);
    assert_eq!(rules[3].2, format!("{spike} > 5"));
    let alert = &rules[4].3;
    assert_eq!(alert["labels"]["severity"].as_str(), Some("warning"));
    assert_eq!(
        alert["annotations"]["runbook"].as_str(),
        Some(r#"obsctl digest --last 1h --agent '{{ reReplaceAll "'" "'\\''" $labels.agent }}' --source prometheus"#)
    );
    // The defaults: a $5 spike and the error rate; no per-agent spike, no budget.
    let defaults: Vec<String> = parsed_rules(&generate(&[])).into_iter().map(|r| r.1).collect();
    assert_eq!(defaults[3..], ["AgentCostSpike", "ModelErrorRateHigh"]);
    let off: Vec<String> =
        parsed_rules(&generate(&["--spike", "off", "--error-rate", "OFF"])).into_iter().map(|r| r.1).collect();
    assert_eq!(off.len(), 3, "{off:?}");
}

#[test]
fn flags_are_checked_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.yml");
    let fails = |args: &[&str], message: &str| {
        let out = rules_cmd().args(args).arg("-o").arg(&file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!file.exists(), "{args:?} wrote a file");
    };
    // A label name goes into `sum by (…)`: anything else is refused, never written.
    fails(&["--spike-per", "agent) or vector(1e9) or (x=2/1h"], "is not a label name");
    fails(&["--spike-per", "agent"], "expected LABEL=USD/WINDOW");
    fails(&["--spike", "5/30m"], "invalid duration");
    fails(&["--spike=-5/1h"], "above 0");
    fails(&["--daily-budget", "NaN"], "above 0");
    fails(&["--error-rate", "120%/1h"], "between 0 and 1");
    fails(&["--spike", "5000/2w"], "--prometheus-step");
    fails(&["--session-budget", "2"], "--session-budget is for the loki rule file");
    fails(&["--target", "loki", "--daily-budget", "100"], "--daily-budget is for the prometheus rule file");
    fails(&["--config", "/nonexistent/obsctl.toml"], "cannot read config file");
}

#[test]
fn both_targets_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (p, l) = (dir.path().join("p.yml"), dir.path().join("l.yml"));
    let out = rules_cmd()
        .args(["--session-budget", "2", "--daily-budget", "100", "--output"])
        .arg(format!("prometheus={}", p.display()))
        .arg("--output")
        .arg(format!("loki={}", l.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Files written, nothing printed, as digest does.
    let (p, l) = (std::fs::read_to_string(p).unwrap(), std::fs::read_to_string(l).unwrap());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
    assert!(parsed_rules(&p).iter().any(|r| r.1 == "AgentDailyBudgetExceeded"));
    assert!(parsed_rules(&l).iter().any(|r| r.1 == "AgentSessionOverBudget"));
    // Both to one file: the second would replace the first. Refused, as digest does.
    let one = dir.path().join("one.yml");
    let out = rules_cmd()
        .arg("--output")
        .arg(format!("prometheus={}", one.display()))
        .arg("--output")
        .arg(format!("loki={}", one.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("two outputs to the same file"));
    assert!(!one.exists());
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    if prom::binaries_or_skip("promtool_checks_and_tests_the_rules").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("obsctl.rules.yml"), generate(&TESTED)).unwrap();
    let (ok, out) = promtool(&["check", "rules", "obsctl.rules.yml"], dir.path());
    assert!(ok && out.contains("SUCCESS: 7 rules found"), "{out}");
    let mut tests = Vec::new();
    for entry in std::fs::read_dir(rules_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".test.yml") {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
            tests.push(name);
        }
    }
    tests.sort();
    assert_eq!(tests, ["cost-spike.test.yml", "daily-budget.test.yml", "error-rate.test.yml"]);
    let args: Vec<&str> = ["test", "rules"].into_iter().chain(tests.iter().map(String::as_str)).collect();
    let (ok, out) = promtool(&args, dir.path());
    assert!(ok, "promtool test rules failed:\n{out}");
    assert_eq!(out.matches("SUCCESS").count(), 3, "{out}");

    // A rule that does not hold fails them: the same tests on a file with increase()
    // instead of the exact increase (the series born in the hour is missed).
    let text = std::fs::read_to_string(dir.path().join("obsctl.rules.yml")).unwrap();
    let spike = parsed_rules(&text).into_iter().find(|r| r.1 == "AgentCostSpike").unwrap().2;
    let naive =
        text.replace(&yaml_quoted(&spike), &yaml_quoted("sum(increase(openclaw_session_cost_usd_sum[1h])) > 5"));
    assert_ne!(naive, text);
    std::fs::write(dir.path().join("obsctl.rules.yml"), naive).unwrap();
    let (ok, out) = promtool(&["test", "rules", "cost-spike.test.yml"], dir.path());
    assert!(!ok && out.contains("alertname: AgentCostSpike, time: 1h40m"), "{out}");
}

fn yaml_quoted(s: &str) -> String {
    obsctl::rules::yaml::quote(s)
}

#[test]
fn renamed_metrics_and_labels_and_a_hostile_path_stay_names_and_text() {
    if prom::binaries_or_skip("renamed_metrics_and_labels_and_a_hostile_path_stay_names_and_text").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A directory name that is a template action, a quote and a YAML line of its own.
    let odd = dir.path().join("it's {{ $value }}\n- alert: X");
    std::fs::create_dir(&odd).unwrap();
    let config = odd.join("obsctl.toml");
    std::fs::write(
        &config,
        "[prometheus.metrics]\nsession_cost = \"gw_session_usd\"\nmodel_errors = \"gw_errors_total\"\n\
         [prometheus.labels]\nagent = \"agent_id\"\nmodel = \"llm\"\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let text = generate(&["--config", config_arg, "--spike-per", "agent=2/1h", "--daily-budget", "100"]);
    assert!(!text.contains("openclaw_session_cost") && !text.contains("openclaw_model_errors"), "{text}");
    std::fs::write(dir.path().join("obsctl.rules.yml"), &text).unwrap();
    let (ok, out) = promtool(&["check", "rules", "obsctl.rules.yml"], dir.path());
    assert!(ok && out.contains("SUCCESS: 7 rules found"), "{out}");
    let rules = parsed_rules(&text);
    assert_eq!(rules.len(), 7, "the path added no rule");
    let by_agent = rules.iter().find(|r| r.1 == "AgentCostSpikeByAgentId").expect("per agent_id");
    assert!(by_agent.2.starts_with("sum by (agent_id) ("), "{}", by_agent.2);

    // The runbook renders the path as it is, shell-quoted, and the label from the series.
    let quoted_path = format!("'{}'", config_arg.replace('\'', r"'\''"));
    let runbook = format!("obsctl digest --last 1h --agent 'ops' --source prometheus --config {quoted_path}");
    let test = format!(
        "rule_files: [obsctl.rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n\
         \x20     - series: 'gw_session_usd_sum{{agent_id=\"ops\",llm=\"m\",provider=\"p\"}}'\n        values: '0x10 3x10'\n\
         \x20   alert_rule_test:\n      - eval_time: 15m\n        alertname: AgentCostSpikeByAgentId\n        exp_alerts:\n\
         \x20         - exp_labels: {{severity: warning, window: 1h, agent_id: ops}}\n            exp_annotations:\n\
         \x20             summary: {}\n              description: {}\n              runbook: {}\n",
        yaml_quoted("agent_id ops spent $3.00 in 1h (limit $2)"),
        yaml_quoted(
            "The cost of agent_id ops over the last 1h is $3.00, over the limit of $2 per agent_id. The figure is the \
             exact, reset-aware increase of gw_session_usd_sum that obsctl digest reports."
        ),
        yaml_quoted(&runbook),
    );
    std::fs::write(dir.path().join("odd.test.yml"), test).unwrap();
    let (ok, out) = promtool(&["test", "rules", "odd.test.yml"], dir.path());
    assert!(ok, "{out}");
}

// ---- The hourly rules against the digest, on a real Prometheus ----

type Labels = BTreeMap<String, String>;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// An instant query: each series' labels and value.
fn instant(url: &str, query: &str, time: i64) -> Vec<(Labels, f64)> {
    let url = reqwest::Url::parse_with_params(
        &format!("{url}/api/v1/query"),
        &[("query", query), ("time", &time.to_string())],
    )
    .unwrap();
    obsctl::source::http::install_tls_provider();
    let body = block_on(async { reqwest::get(url).await?.text().await }).expect("answer");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["status"], "success", "{body}");
    v["data"]["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|s| {
            let labels = serde_json::from_value(s["metric"].clone()).expect("labels");
            (labels, s["value"][1].as_str().expect("value").parse().expect("number"))
        })
        .collect()
}

fn key(labels: &Labels, names: &[&str]) -> String {
    names.iter().map(|n| labels.get(*n).map_or("", String::as_str)).collect::<Vec<_>>().join("/")
}

/// The hour after a Prometheus outage of 2 h 20 min (no event in it, none lost): the hourly
/// record and the spike alert's figure hold that hour's spend, not each series' lifetime value
/// (no sample in the hour before it: a lookback of an hour took every series as born).
#[test]
fn the_hour_after_an_outage_records_only_that_hour() {
    if prom::binaries_or_skip("the_hour_after_an_outage_records_only_that_hour").is_none() {
        return;
    }
    let day2 = prom::WEEK_START + 2 * 86_400;
    let week = prom::week_with_outages(7, &[(day2 - 80 * 60, day2 + 3600)]);
    let server = prom::TestPrometheus::start(&week.openmetrics);
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(logs.path().join("events.jsonl"), &week.jsonl).unwrap();
    let out = obsctl()
        .args(["digest", "--since", "2026-11-18T01:00:00Z", "--until", "2026-11-18T02:00:00Z", "--tz", "UTC"])
        .args(["--source", "jsonl", "--format", "json", "--logs"])
        .arg(logs.path())
        .output()
        .unwrap();
    let digest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let truth = digest["totals"]["cost_usd"].as_f64().unwrap();
    assert!(truth > 0.1, "the hour holds spend: {truth}");
    let rules = parsed_rules(&generate(&TESTED));
    let expr = |name: &str| rules.iter().find(|r| r.1 == name).unwrap_or_else(|| panic!("{name}")).2.clone();
    let recorded: f64 =
        instant(&server.url, &expr("obsctl:cost_usd:hourly"), day2 + 7200 + 600).iter().map(|r| r.1).sum();
    assert!((recorded - truth).abs() < 1e-9, "hourly record {recorded} vs the hour's spend {truth}");
    // The spike alert's figure (its expression without the threshold) at the hour's end.
    let spike = expr("AgentCostSpike");
    let figure = spike.rsplit_once(" > ").map(|(f, _)| f.to_string()).expect("a threshold");
    let spent: f64 = instant(&server.url, &figure, day2 + 7200).iter().map(|r| r.1).sum();
    assert!((spent - truth).abs() < 1e-9, "the spike alert sees {spent}, the hour's spend is {truth}");
}

#[test]
fn hourly_rules_sum_to_the_digest() {
    if prom::binaries_or_skip("hourly_rules_sum_to_the_digest").is_none() {
        return;
    }
    let week = prom::week(7);
    let server = prom::TestPrometheus::start(&week.openmetrics);
    let rules = parsed_rules(&generate(&[]));
    let expr = |name: &str| rules.iter().find(|r| r.1 == name).unwrap_or_else(|| panic!("{name}")).2.clone();
    let (cost, sessions, tokens) =
        (expr("obsctl:cost_usd:hourly"), expr("obsctl:sessions:hourly"), expr("obsctl:tokens:hourly"));

    // Each hour of the week, evaluated where a rule group might: anywhere in the hour after it.
    let mut cost_by: BTreeMap<String, f64> = BTreeMap::new();
    let mut sessions_by_agent: BTreeMap<String, f64> = BTreeMap::new();
    let mut tokens_by: BTreeMap<String, f64> = BTreeMap::new();
    let mut daily = [0.0; 7];
    for hour in 1..=7 * 24 {
        let end = prom::WEEK_START + hour * 3600;
        let at = end + (hour * 611) % 3600;
        for (labels, v) in instant(&server.url, &cost, at) {
            *cost_by.entry(key(&labels, &["agent", "model", "provider"])).or_default() += v;
            daily[((hour - 1) / 24) as usize] += v;
        }
        for (labels, v) in instant(&server.url, &sessions, at) {
            *sessions_by_agent.entry(key(&labels, &["agent"])).or_default() += v;
        }
        for (labels, v) in instant(&server.url, &tokens, at) {
            *tokens_by.entry(key(&labels, &["model", "provider", "type"])).or_default() += v;
        }
    }

    let out = obsctl()
        .args(["digest", "--week", "2026-W47", "--tz", "UTC", "--source", "prometheus", "--format", "json"])
        .args(["--prometheus-url", &server.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let digest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The digest's dollars are whole pico-dollars of one float sum; the hours are 168 float
    // sums: equal up to float rounding, far below a cent.
    let same = |hours: f64, digest: &serde_json::Value, what: &str| {
        let d = digest.as_f64().unwrap_or(f64::NAN);
        assert!((hours - d).abs() <= 1e-9 * d.abs().max(1.0), "{what}: hours {hours} vs digest {d}");
    };
    let total: f64 = cost_by.values().sum();
    same(total, &digest["totals"]["cost_usd"], "total cost");
    assert!(total > 1.0, "the week holds real spend: {total}");
    for row in digest["by_model"].as_array().unwrap() {
        let (model, provider) = (row["model"].as_str().unwrap(), row["provider"].as_str().unwrap());
        let of_model: f64 =
            cost_by.iter().filter(|(k, _)| k.ends_with(&format!("/{model}/{provider}"))).map(|(_, v)| v).sum();
        same(of_model, &row["cost_usd"], &format!("{model} cost"));
        for (kind, field) in [("input", "input_tokens"), ("output", "output_tokens")] {
            let hours = tokens_by.get(&format!("{model}/{provider}/{kind}")).copied().unwrap_or(0.0);
            assert_eq!(hours.round() as u64, row[field].as_u64().unwrap(), "{model} {field}");
        }
    }
    for row in digest["by_agent"].as_array().unwrap() {
        let agent = row["agent"].as_str().unwrap();
        let of_agent: f64 = cost_by.iter().filter(|(k, _)| k.starts_with(&format!("{agent}/"))).map(|(_, v)| v).sum();
        same(of_agent, &row["cost_usd"], &format!("{agent} cost"));
        assert_eq!(sessions_by_agent[agent].round() as u64, row["sessions"].as_u64().unwrap(), "{agent} sessions");
    }
    for (day, row) in daily.iter().zip(digest["daily"].as_array().unwrap()) {
        same(*day, &row["cost_usd"], &format!("day {}", row["date"]));
    }
    assert_eq!(digest["by_model"].as_array().unwrap().len(), 3, "gemini is born mid-week");
}

#[test]
fn a_hostile_loki_selector_stays_one_string() {
    // A selector that closes the YAML string and adds a rule of its own, were it templated in.
    let selector = "{job=\"x\\\"\" - alert: Injected expr: \"1\", a=\"'b'\"}";
    let text = generate(&["--target", "loki", "--session-budget", "2", "--loki-selector", selector]);
    let rules = parsed_rules(&text);
    assert_eq!(rules.len(), 4, "{text}");
    assert!(rules.iter().all(|r| r.1 != "Injected"));
    for (_, _, expr, rule) in &rules {
        assert!(expr.contains(&format!("{selector} |~ `")), "the selector is in every expression as given: {expr}");
        let runbook = rule["annotations"]["runbook"].as_str().unwrap();
        assert!(runbook.ends_with(&format!(" --loki-selector {}", obsctl::rules::shell_quote(selector))), "{runbook}");
    }
    // A line break is no LogQL at all: refused, nothing written.
    let out = rules_cmd()
        .args(["--target", "loki", "--session-budget", "2", "--loki-selector", "{job=\"x\"\n- alert: I}"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn rules_written_to_files_print_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loki = dir.path().join("l.yml");
    let out = rules_cmd().arg("-o").arg(format!("loki={}", loki.display())).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(std::fs::read_to_string(&loki).unwrap().contains("groups:"));
    // A Prometheus flag when only the Loki file is written is a mistake, not a no-op.
    let out = rules_cmd().arg("-o").arg(format!("loki={}", loki.display())).args(["--spike", "5/1h"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn two_spike_thresholds_for_one_label_and_window_are_refused() {
    let out = rules_cmd().args(["--spike-per", "agent=2/1h", "--spike-per", "agent=5/1h"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--spike-per agent=5/1h: a second threshold for \"agent\" over the same window"), "{err}");
    assert!(out.stdout.is_empty(), "nothing written");
    // Tiers over different windows are distinct alerts.
    let text = generate(&["--spike-per", "agent=2/1h", "--spike-per", "agent=5/6h"]);
    assert_eq!(text.matches("alert: \"AgentCostSpikeByAgent\"").count(), 2, "{text}");
}
