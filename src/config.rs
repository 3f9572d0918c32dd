//! Server settings: a TOML file, `OBSCTL_*` environment variables and flags merged into
//! one typed [`ServerConfig`] per server (flags win over the environment, which wins over
//! the file). Secrets are [`Secret`]s: they print as `<redacted>`, in `Debug` too.
//!
//! ```toml
//! # ~/.config/obsctl/config.toml
//! [prometheus]
//! url = "https://prometheus.internal:9090"
//! bearer_token_file = "/etc/obsctl/prometheus.token"
//! org_id = "team-a"
//! step_seconds = 60
//! [prometheus.headers]
//! "X-Team" = "agents"
//! [prometheus.metrics]
//! session_cost = "openclaw_session_cost_usd"
//! [prometheus.labels]
//! agent = "agent_id"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// A value that must never be shown: tokens, passwords, header values that carry them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// Every secret this process has read, so that whatever it prints can be scrubbed of them:
/// a server may echo a header back in an error, a message may quote a URL.
static KNOWN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Secrets shorter than this are not scrubbed from output: a report names agents, models and
/// sessions, and a short password such as `test` would match them and rewrite the report.
/// obsctl never prints a secret itself; the scrub is for what a server echoes back.
const SCRUBBED_FROM: usize = 8;

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        remember(&value);
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Adds `value` to the secrets [`scrub`] removes (a password from a URL, a header built of one).
pub fn remember(value: &str) {
    if value.len() >= SCRUBBED_FROM {
        if let Ok(mut known) = KNOWN.lock() {
            known.push(value.to_string());
        }
    }
}

/// `text` with every secret read so far replaced by `<redacted>`.
pub fn scrub(text: &str) -> std::borrow::Cow<'_, str> {
    let Ok(known) = KNOWN.lock() else { return text.into() };
    let mut out = std::borrow::Cow::Borrowed(text);
    for secret in known.iter().filter(|s| text.contains(s.as_str())) {
        out = out.replace(secret.as_str(), "<redacted>").into();
    }
    out
}

/// [`scrub`] for bytes that may not be UTF-8 (reports are; anything else passes as is).
pub fn scrub_bytes(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match std::str::from_utf8(bytes).map(scrub) {
        Ok(std::borrow::Cow::Owned(s)) => s.into_bytes().into(),
        _ => bytes.into(),
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to reach and authenticate to one server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// May carry `user:password@`; use [`redact_url`] before showing it.
    pub url: String,
    pub bearer_token: Option<Secret>,
    pub basic_auth: Option<(String, Secret)>,
    /// Sent as `X-Scope-OrgID` (Cortex, Mimir, Loki tenants).
    pub org_id: Option<String>,
    /// Extra headers; values are secrets (they often carry credentials).
    pub headers: Vec<(String, Secret)>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
}

/// Metric and label names, which deployments rename.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusNames {
    /// Histogram of USD per session: `<name>_sum`, `<name>_count`.
    pub session_cost: String,
    pub session_tokens: String,
    pub tool_calls: String,
    pub model_errors: String,
    /// Histogram of seconds: `<name>_bucket`.
    pub session_duration: String,
    pub agent: String,
    pub model: String,
    pub provider: String,
    /// `input`/`output` on the token counter.
    pub token_type: String,
    /// `success`/`error` on the tool-call counter.
    pub status: String,
}

impl Default for PrometheusNames {
    fn default() -> Self {
        PrometheusNames {
            session_cost: "openclaw_session_cost_usd".into(),
            session_tokens: "openclaw_session_tokens_total".into(),
            tool_calls: "openclaw_tool_calls_total".into(),
            model_errors: "openclaw_model_errors_total".into(),
            session_duration: "openclaw_session_duration_seconds".into(),
            agent: "agent".into(),
            model: "model".into(),
            provider: "provider".into(),
            token_type: "type".into(),
            status: "status".into(),
        }
    }
}

pub const DEFAULT_PROMETHEUS_URL: &str = "http://localhost:9090";
pub const DEFAULT_LOKI_URL: &str = "http://localhost:3100";

/// The config file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub prometheus: ServerFile,
    #[serde(default)]
    pub loki: ServerFile,
    /// `obsctl gate`'s policy, so a repository keeps its thresholds in one file.
    #[serde(default)]
    pub gate: GateFile,
    /// What is wrong with the file but does not stop a run (a secret others can read).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The `[gate]` section: the same thresholds as the flags, which win over it.
///
/// ```toml
/// [gate]
/// max_increase = "20%"
/// max_cost = 50
/// max_failed_run_rate_increase = "2pp"
/// max_session_cost = 2.5
/// min_sessions = 30
/// control = "control"
/// [gate.max_increase_per]
/// model = "10%"
/// variant = "15%"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateFile {
    pub max_increase: Option<String>,
    pub max_cost: Option<f64>,
    pub max_cost_per_session_increase: Option<String>,
    pub max_cost_per_session: Option<f64>,
    pub max_tokens_per_session_increase: Option<String>,
    pub max_tokens_per_session: Option<f64>,
    pub max_failed_run_rate_increase: Option<String>,
    pub max_failed_run_rate: Option<String>,
    pub max_tool_failure_rate_increase: Option<String>,
    pub max_tool_failure_rate: Option<String>,
    pub max_p95_duration_increase: Option<String>,
    pub max_p95_duration: Option<f64>,
    #[serde(default)]
    pub max_increase_per: BTreeMap<String, String>,
    #[serde(default)]
    pub max_cost_per: BTreeMap<String, f64>,
    pub max_session_cost: Option<f64>,
    pub control: Option<String>,
    pub min_sessions: Option<u64>,
    pub allow_missing: Option<bool>,
    /// The file this section came from, for errors in its values.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl GateFile {
    /// The file, as errors name it.
    pub fn origin(&self) -> String {
        self.path.as_ref().map_or_else(|| "the config file".to_string(), |p| format!("config file {}", p.display()))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub url: Option<String>,
    /// Loki only: the LogQL stream selector of the telemetry events.
    pub selector: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub org_id: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: Option<bool>,
    pub connect_timeout_seconds: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub step_seconds: Option<u64>,
    #[serde(default)]
    pub metrics: MetricsFile,
    #[serde(default)]
    pub labels: LabelsFile,
}

impl ServerFile {
    /// What can be wrong with the section's values on their own.
    fn check(&self, default_url: &str) -> Result<()> {
        if let Some(url) = &self.url {
            check_url(url, default_url)?;
        }
        for (what, v) in
            [("connect_timeout_seconds", self.connect_timeout_seconds), ("timeout_seconds", self.timeout_seconds)]
        {
            if let Some(v) = v {
                seconds(Some(v), what, 1.0)?;
            }
        }
        if self.step_seconds == Some(0) {
            bail!("step_seconds = 0: the Prometheus step must be at least 1 second");
        }
        PrometheusNames::from_file(self).check()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    pub session_cost: Option<String>,
    pub session_tokens: Option<String>,
    pub tool_calls: Option<String>,
    pub model_errors: Option<String>,
    pub session_duration: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsFile {
    pub agent: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub token_type: Option<String>,
    pub status: Option<String>,
}

impl FileConfig {
    /// Reads `path`; a missing file at the default location is an empty config, a missing
    /// file that was asked for by name is an error.
    pub fn load(path: Option<&Path>) -> Result<FileConfig> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => match default_path() {
                Some(p) => (p, false),
                None => return Ok(FileConfig::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(FileConfig::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read config file {}", path.display())),
        };
        let mut config = FileConfig::parse(&text, &path)?;
        config.warnings.extend(exposed_secrets(&path, &config));
        Ok(config)
    }

    /// Reads a config file's text (`path` names it in errors): what [`FileConfig::load`]
    /// does once the file is read.
    /// Values the flags may override are checked here all the same: a wrong value in the
    /// file is an error naming the file, not one that seems to come from a flag.
    pub fn parse(text: &str, path: &Path) -> Result<FileConfig> {
        let invalid = || format!("invalid config file {}", path.display());
        // A BOM (some Windows editors write one) is not TOML; what follows it is.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut config: FileConfig = toml::from_str(text).with_context(invalid)?;
        for (section, server, default_url) in
            [("prometheus", &config.prometheus, DEFAULT_PROMETHEUS_URL), ("loki", &config.loki, DEFAULT_LOKI_URL)]
        {
            server.check(default_url).with_context(|| format!("[{section}]")).with_context(invalid)?;
        }
        config.gate.path = Some(path.to_path_buf());
        Ok(config)
    }
}

/// A warning when the file holds a secret (a header value, a password in a URL) and users
/// other than its owner may read it, as ssh warns of a key file.
fn exposed_secrets(path: &Path, config: &FileConfig) -> Option<String> {
    let mut secrets = Vec::new();
    for (section, server) in [("prometheus", &config.prometheus), ("loki", &config.loki)] {
        if !server.headers.is_empty() {
            secrets.push(format!("[{section}.headers]"));
        }
        let url = server.url.as_deref().and_then(|u| reqwest::Url::parse(u).ok());
        if url.is_some_and(|u| u.password().is_some()) {
            secrets.push(format!("a password in [{section}] url"));
        }
    }
    if secrets.is_empty() {
        return None;
    }
    let mode = file_mode(path)?;
    (mode & 0o077 != 0).then(|| {
        format!(
            "config file {} holds secrets ({}) and other users may read it (mode {:03o}): chmod 600 {0}",
            path.display(),
            secrets.join(", "),
            mode & 0o777
        )
    })
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn file_mode(_: &Path) -> Option<u32> {
    None
}

fn default_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("obsctl").join("config.toml"))
}

/// What the command line (and its environment variables) said about servers.
#[derive(Clone, Debug, Default)]
pub struct ServerFlags {
    pub url: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub org_id: Option<String>,
    pub headers: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub connect_timeout: Option<f64>,
    pub timeout: Option<f64>,
}

impl ServerConfig {
    /// Flags over file over `default_url`. A bad URL's error starts with `url_names`, the
    /// flag and variable that give it (the other settings' errors name their own).
    pub fn merge(flags: &ServerFlags, file: &ServerFile, default_url: &str, url_names: &str) -> Result<ServerConfig> {
        let url = flags.url.clone().or_else(|| file.url.clone()).unwrap_or_else(|| default_url.to_string());
        check_url(&url, default_url).context(url_names.to_string())?;
        let bearer_token = match flags.bearer_token_file.as_ref().or(file.bearer_token_file.as_ref()) {
            Some(path) => Some(read_secret(path, "bearer token")?),
            None => None,
        };
        let username = flags.username.clone().or_else(|| file.username.clone());
        let password = match flags.password_file.as_ref().or(file.password_file.as_ref()) {
            Some(path) => Some(read_secret(path, "password")?),
            None => None,
        };
        let basic_auth = match (username, password) {
            (Some(user), Some(pass)) => Some((user, pass)),
            (Some(user), None) => Some((user, Secret::new(""))),
            (None, Some(_)) => bail!("a password file was given without a username"),
            (None, None) => None,
        };
        let mut headers: Vec<(String, Secret)> =
            file.headers.iter().map(|(k, v)| (k.clone(), Secret::new(v.clone()))).collect();
        for header in &flags.headers {
            let Some((name, value)) = header.split_once(':') else {
                bail!("invalid --header {:?}: expected NAME:VALUE", redact_header(header));
            };
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name.trim()));
            headers.push((name.trim().to_string(), Secret::new(value.trim())));
        }
        Ok(ServerConfig {
            url,
            bearer_token,
            basic_auth,
            org_id: flags.org_id.clone().or_else(|| file.org_id.clone()),
            headers,
            ca_file: flags.ca_file.clone().or_else(|| file.ca_file.clone()),
            insecure_skip_verify: flags.insecure_skip_verify || file.insecure_skip_verify.unwrap_or(false),
            connect_timeout: seconds(
                flags.connect_timeout.or(file.connect_timeout_seconds),
                "connect timeout (--connect-timeout, or connect_timeout_seconds in the config file)",
                3.0,
            )?,
            query_timeout: seconds(
                flags.timeout.or(file.timeout_seconds),
                "query timeout (--timeout, or timeout_seconds in the config file)",
                30.0,
            )?,
        })
    }

    /// The URL as it may be shown: without a password.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// A timeout in seconds (`default` when not given): more than 0 and less than a day.
fn seconds(v: Option<f64>, what: &str, default: f64) -> Result<Duration> {
    let v = v.unwrap_or(default);
    if !(v.is_finite() && v > 0.0 && v < 86_400.0) {
        bail!("invalid {what}: {v}; expected seconds, more than 0 and less than a day");
    }
    Ok(Duration::from_secs_f64(v))
}

impl PrometheusNames {
    /// Every name is a valid metric or label name: they are written into PromQL.
    pub fn check(&self) -> Result<()> {
        use crate::source::promql::{is_label_name, is_metric_name};
        for metric in
            [&self.session_cost, &self.session_tokens, &self.tool_calls, &self.model_errors, &self.session_duration]
        {
            if !is_metric_name(metric) {
                bail!("invalid metric name {metric:?}");
            }
        }
        for label in [&self.agent, &self.model, &self.provider, &self.token_type, &self.status] {
            if !is_label_name(label) {
                bail!("invalid label name {label:?}");
            }
        }
        Ok(())
    }

    pub fn from_file(file: &ServerFile) -> PrometheusNames {
        let d = PrometheusNames::default();
        let m = &file.metrics;
        let l = &file.labels;
        let pick = |v: &Option<String>, default: String| v.clone().unwrap_or(default);
        PrometheusNames {
            session_cost: pick(&m.session_cost, d.session_cost),
            session_tokens: pick(&m.session_tokens, d.session_tokens),
            tool_calls: pick(&m.tool_calls, d.tool_calls),
            model_errors: pick(&m.model_errors, d.model_errors),
            session_duration: pick(&m.session_duration, d.session_duration),
            agent: pick(&l.agent, d.agent),
            model: pick(&l.model, d.model),
            provider: pick(&l.provider, d.provider),
            token_type: pick(&l.token_type, d.token_type),
            status: pick(&l.status, d.status),
        }
    }
}

fn read_secret(path: &Path, what: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {what} file {}", path.display()))?;
    let value = text.trim();
    if value.is_empty() {
        bail!("{what} file {} is empty", path.display());
    }
    // It goes into a header, where HTTP allows no line break or other control character.
    if value.chars().any(char::is_control) {
        bail!(
            "{what} file {} holds more than one line (or a control character): it must hold the {what} alone",
            path.display()
        );
    }
    Ok(Secret::new(value))
}

fn redact_header(header: &str) -> String {
    match header.split_once(':') {
        Some((name, _)) => format!("{name}:<redacted>"),
        None => "<redacted>".into(),
    }
}

/// A server URL obsctl can use: `http` or `https` with a host. Anything else is a usage
/// error (exit 2) before any source is tried, so that `--source auto` does not quietly
/// fall back on a typo; `user:pass@host` without a scheme would otherwise parse as a URL of
/// scheme `user`.
///
/// A query string or fragment is refused too: obsctl appends API paths to the URL, so a
/// `?token=…` would be cut off or end up inside the path, and a secret there would be
/// sent where the user did not mean it and echoed back by servers that quote the request.
fn check_url(url: &str, example: &str) -> Result<()> {
    match http_url(url) {
        Some(u) if u.query().is_some() || u.fragment().is_some() => bail!(
            "invalid server URL {}: a server URL takes no query string or fragment (`?…`, `#…`); give a token \
             with --bearer-token-file or --header NAME:VALUE, a tenant with --org-id",
            redact_url(url)
        ),
        Some(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => bail!("invalid server URL {}: expected http:// or https:// and a host, e.g. {example}", redact_url(url)),
    }
}

/// `url` parsed, if it is an `http` or `https` URL.
fn http_url(url: &str) -> Option<reqwest::Url> {
    reqwest::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// `https://user:pass@host/x?token=abc` → `https://user:<redacted>@host/x?token=<redacted>`, and a
/// fragment `#…` → `#<redacted>`.
/// Anything unparseable, or of another scheme (`user:pass@host` parses as scheme `user`), is
/// shown only when it cannot hold a secret (no `@`, `?`, `#` or space), else hidden whole.
pub fn redact_url(url: &str) -> String {
    let Some(mut parsed) = http_url(url) else {
        let harmless = !url.contains(['@', '?', '#']) && !url.chars().any(char::is_whitespace);
        return if harmless { url.to_string() } else { "<invalid URL>".into() };
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("<redacted>"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> =
            parsed.query_pairs().map(|(k, _)| (k.into_owned(), "<redacted>".to_string())).collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some("<redacted>"));
    }
    parsed.to_string().replace("%3Credacted%3E", "<redacted>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_read_are_scrubbed_from_text_but_short_ones_leave_names_alone() {
        let _ = Secret::new("zq-long-secret-7731");
        let _ = Secret::new("qa01");
        assert_eq!(scrub("echo: Bearer zq-long-secret-7731!"), "echo: Bearer <redacted>!");
        assert_eq!(scrub("agent qa01-runner"), "agent qa01-runner");
        assert_eq!(&*scrub_bytes(b"x zq-long-secret-7731"), b"x <redacted>");
    }

    #[test]
    fn a_secret_file_holds_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "tok-one-line-7731\n").unwrap();
        assert_eq!(read_secret(&path, "bearer token").unwrap().expose(), "tok-one-line-7731");
        std::fs::write(&path, "tok-first-7731\ntok-second-7731\n").unwrap();
        let err = format!("{:#}", read_secret(&path, "bearer token").unwrap_err());
        assert!(err.contains(&path.display().to_string()) && err.contains("more than one line"), "{err}");
        assert!(!err.contains("tok-"), "{err}");
    }

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(redact_url("http://localhost:9090"), "http://localhost:9090/");
        assert_eq!(redact_url("https://bob:hunter2@prom.internal/"), "https://bob:<redacted>@prom.internal/");
        assert_eq!(redact_url("https://prom.internal/?token=abc"), "https://prom.internal/?token=<redacted>");
        assert_eq!(redact_url("https://prom.internal/#abc"), "https://prom.internal/#<redacted>");
        assert_eq!(redact_url("not a url hunter2"), "<invalid URL>");
        // Without a scheme, `admin:` would be the scheme and the password its path.
        assert_eq!(redact_url("admin:hunter2@127.0.0.1:9"), "<invalid URL>");
        assert_eq!(redact_url("localhost:9090"), "localhost:9090");
    }

    #[test]
    fn a_server_url_needs_http_or_https_and_a_host() {
        let merge = |url: &str| {
            let flags = ServerFlags { url: Some(url.into()), ..Default::default() };
            ServerConfig::merge(&flags, &ServerFile::default(), "http://localhost:9090", "--url")
        };
        assert!(merge("https://bob:pw@prom.internal:9090/x").is_ok());
        for with_query in
            ["http://127.0.0.1:3100/?api_key=QuerySecretABC123", "http://127.0.0.1:9090/#QuerySecretABC123"]
        {
            let err = format!("{:#}", merge(with_query).unwrap_err());
            assert!(err.contains("takes no query string") && !err.contains("QuerySecretABC123"), "{err}");
        }
        for bad in ["admin:hunter2@127.0.0.1:9", "localhost:9090", "ftp://127.0.0.1/", "http://"] {
            let err = format!("{:#}", merge(bad).unwrap_err());
            assert!(err.contains("expected http:// or https://"), "{bad}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let cfg = ServerConfig::merge(
            &ServerFlags { headers: vec!["Authorization: Bearer hunter2".into()], ..Default::default() },
            &ServerFile::default(),
            "http://localhost:9090",
            "--url",
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn flags_win_over_file() {
        let file: FileConfig = toml::from_str(
            r#"
            [prometheus]
            url = "http://file:9090"
            org_id = "from-file"
            headers = { "X-A" = "1", "X-B" = "2" }
            [prometheus.labels]
            agent = "agent_id"
            "#,
        )
        .unwrap();
        let flags =
            ServerFlags { url: Some("http://flag:9090".into()), headers: vec!["x-b: 3".into()], ..Default::default() };
        let cfg = ServerConfig::merge(&flags, &file.prometheus, "http://default:9090", "--url").unwrap();
        assert_eq!(cfg.url, "http://flag:9090");
        assert_eq!(cfg.org_id.as_deref(), Some("from-file"));
        let headers: Vec<_> = cfg.headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(headers, [("X-A", "1"), ("x-b", "3")]);
        assert_eq!(PrometheusNames::from_file(&file.prometheus).agent, "agent_id");
        assert_eq!(PrometheusNames::from_file(&file.prometheus).model, "model");
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_file_and_the_key() {
        let path = Path::new("/etc/obsctl/ci.toml");
        for (text, says) in [
            ("[prometheus]\nstep_seconds = 0\n", "step_seconds = 0"),
            ("[prometheus.metrics]\nsession_cost = \"cost usd\"\n", "invalid metric name \"cost usd\""),
            ("[loki]\nurl = \"localhost:3100\"\n", "invalid server URL localhost:3100"),
            ("[prometheus]\ntimeout_seconds = -2.0\n", "invalid timeout_seconds: -2"),
            ("[prometheus.labels]\nagent = \"agent-id\"\n", "invalid label name \"agent-id\""),
        ] {
            let err = format!("{:#}", FileConfig::parse(text, path).expect_err(text));
            assert!(err.starts_with("invalid config file /etc/obsctl/ci.toml: "), "{err}");
            assert!(err.contains(says), "{text}: {err}");
        }
        let config = FileConfig::parse("\u{feff}[gate]\nmax_cost = 5.0\n", path).expect("a BOM before TOML");
        assert_eq!(config.gate.max_cost, Some(5.0));
        assert_eq!(config.gate.origin(), "config file /etc/obsctl/ci.toml");
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(toml::from_str::<FileConfig>("[prometheus]\nurll = 'x'").is_err());
        let bad_header = ServerFlags { headers: vec!["no-colon".into()], ..Default::default() };
        assert!(ServerConfig::merge(&bad_header, &ServerFile::default(), "http://x", "--url").is_err());
        let bad_timeout = ServerFlags { timeout: Some(-1.0), ..Default::default() };
        assert!(ServerConfig::merge(&bad_timeout, &ServerFile::default(), "http://x", "--url").is_err());
    }
}
