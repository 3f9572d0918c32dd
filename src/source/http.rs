//! The one HTTP client every server source uses: authentication, tenant, TLS, timeouts,
//! bounded retries, a cap on what is read and redirects kept to the same server, configured
//! once from a [`ServerConfig`].

use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};

use crate::config::ServerConfig;

/// Attempts for one request (see [`fetch`] for what is retried).
pub const ATTEMPTS: u32 = 3;

/// A server ready to be queried: the client, the URL to send to (credentials moved into
/// headers) and the URL to show (credentials redacted).
#[derive(Clone, Debug)]
pub struct Server {
    pub client: reqwest::Client,
    pub base_url: String,
    pub shown: String,
    /// Each request's time limit (`--timeout`).
    pub timeout: Duration,
}

/// Makes `ring` the process's TLS crypto provider. reqwest is built without one of its own
/// (`rustls-no-provider`): every client needs this first. Calling it again is harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn connect(cfg: &ServerConfig) -> Result<Server> {
    install_tls_provider();
    let (base_url, basic) = split_credentials(cfg)?;
    let mut headers = HeaderMap::new();
    if let Some(token) = &cfg.bearer_token {
        headers.insert(AUTHORIZATION, sensitive(&format!("Bearer {}", token.expose()))?);
    } else if let Some((user, password)) = basic {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        crate::config::remember(&password);
        crate::config::remember(&encoded);
        headers.insert(AUTHORIZATION, sensitive(&format!("Basic {encoded}"))?);
    }
    if let Some(org) = &cfg.org_id {
        headers.insert("X-Scope-OrgID", HeaderValue::from_str(org).context("invalid --org-id")?);
    }
    for (name, value) in &cfg.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).with_context(|| format!("invalid header name {name:?}"))?;
        headers.insert(name, sensitive(value.expose())?);
    }
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(cfg.connect_timeout)
        .timeout(cfg.query_timeout)
        .user_agent(concat!("obsctl/", env!("CARGO_PKG_VERSION")))
        .redirect(same_origin_redirects())
        .no_proxy();
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("cannot read --ca-file {}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("--ca-file {} is not a PEM certificate", path.display()))?;
        builder = builder.add_root_certificate(cert);
    }
    if cfg.insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    let client = builder.build().context("cannot set up the HTTP client")?;
    Ok(Server { client, shown: crate::config::redact_url(&base_url), base_url, timeout: cfg.query_timeout })
}

/// Redirects are followed on the same scheme, host and port only: every request carries
/// the credentials, tenant and headers, and none of them may reach another server.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let from = attempt.previous().first().map(|u| u.origin());
        let to = attempt.url().origin();
        if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else if from.as_ref() == Some(&to) {
            attempt.follow()
        } else {
            let target = to.ascii_serialization();
            attempt.error(format!(
                "redirected to another server ({target}); obsctl does not follow it, so that no credential \
                 reaches a server it was not given for: point --url at that server if it is the right one"
            ))
        }
    })
}

fn sensitive(value: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).context("a header value holds characters HTTP does not allow")?;
    v.set_sensitive(true);
    Ok(v)
}

/// Basic auth from the config or the URL's `user:password@`, and the URL without them
/// (so that no error message can carry them).
fn split_credentials(cfg: &ServerConfig) -> Result<(String, Option<(String, String)>)> {
    let mut url = reqwest::Url::parse(&cfg.url)
        .with_context(|| format!("invalid server URL {}", crate::config::redact_url(&cfg.url)))?;
    let from_url =
        (!url.username().is_empty()).then(|| (url.username().to_string(), url.password().unwrap_or("").to_string()));
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let auth = cfg.basic_auth.as_ref().map(|(u, p)| (u.clone(), p.expose().to_string())).or(from_url);
    Ok((url.to_string(), auth))
}

/// The most obsctl reads of one answer. A Prometheus or Loki answer to obsctl's queries is
/// a few hundred kilobytes; anything near this is a misdirected or broken server, and
/// reading it whole (several at a time) would exhaust memory before failing anyway.
pub const MAX_ANSWER: u64 = 64 << 20;

/// The longest `Retry-After` obsctl honours. A server asking for more is over its limits
/// for a while: better a clear failure now than a report that hangs in a cron job.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// An answer read whole: its status, whether it says it is JSON, its body.
#[derive(Debug)]
pub struct Reply {
    pub status: reqwest::StatusCode,
    pub json: bool,
    pub body: String,
    pub tries: Tries,
}

/// How long a request took, in how many attempts, and why it stopped retrying: printed
/// with every failure, so that a user sees the bound that was reached.
#[derive(Clone, Debug, Default)]
pub struct Tries {
    pub attempts: u32,
    pub elapsed: Duration,
    /// Each attempt's time limit.
    pub timeout: Duration,
    /// Why no further attempt was made though one was worth making.
    pub gave_up: Option<String>,
}

impl std::fmt::Display for Tries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "{} attempt{s} in {:.1} s, each allowed {} s",
            self.attempts,
            self.elapsed.as_secs_f64(),
            self.timeout.as_secs_f64()
        )?;
        if let Some(why) = &self.gave_up {
            write!(f, "; {why}")?;
        }
        Ok(())
    }
}

/// A request that got no answer worth reading.
#[derive(Debug)]
pub struct Failed {
    pub reason: String,
    pub tries: Tries,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.tries)
    }
}

/// Sends the request built by `make` and reads its answer (at most [`MAX_ANSWER`]),
/// retrying with backoff what may pass on another try: connection failures, timeouts, an
/// answer cut short, 5xx, and 429 (after its `Retry-After`, up to [`MAX_RETRY_AFTER`]). A
/// 4xx other than 429 is returned at once: the same query would fail the same way.
pub async fn fetch<F, Fut, E>(server: &Server, make: F) -> std::result::Result<Reply, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<reqwest::Response, E>>,
    E: RetryClass + std::error::Error + 'static,
{
    fetch_with(ATTEMPTS, server.timeout, make).await
}

/// One attempt, as [`fetch`] reads it: for a probe, which must be quick, and whose request
/// `make` gives its own `timeout`.
pub async fn probe<F, Fut>(timeout: Duration, make: F) -> std::result::Result<Reply, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<reqwest::Response, reqwest::Error>>,
{
    fetch_with(1, timeout, make).await
}

async fn fetch_with<F, Fut, E>(attempts: u32, timeout: Duration, mut make: F) -> std::result::Result<Reply, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<reqwest::Response, E>>,
    E: RetryClass + std::error::Error + 'static,
{
    let started = std::time::Instant::now();
    let mut tries = Tries { timeout, ..Tries::default() };
    let mut backoff = Duration::from_millis(200);
    loop {
        tries.attempts += 1;
        let last = tries.attempts >= attempts;
        let outcome = attempt(make(), &mut tries, backoff, last).await;
        tries.elapsed = started.elapsed();
        match outcome {
            Attempt::Again(wait) => {
                tokio::time::sleep(wait).await;
                backoff *= 2;
            }
            Attempt::Answered(status, json, body) => return Ok(Reply { status, json, body, tries }),
            Attempt::Failed(reason) => return Err(Failed { reason, tries }),
        }
    }
}

/// What one attempt came to.
enum Attempt {
    /// Worth another try, after this wait.
    Again(Duration),
    /// An answer read whole: its status, whether it says it is JSON, its body.
    Answered(reqwest::StatusCode, bool, String),
    /// No answer worth reading, and no other try: why.
    Failed(String),
}

async fn attempt<Fut, E>(request: Fut, tries: &mut Tries, backoff: Duration, last: bool) -> Attempt
where
    Fut: std::future::Future<Output = std::result::Result<reqwest::Response, E>>,
    E: RetryClass + std::error::Error + 'static,
{
    let resp = match request.await {
        Err(e) if e.is_transient() && !last => return Attempt::Again(backoff),
        Err(e) => return Attempt::Failed(format!("unreachable: {}", reason_of(&e))),
        Ok(resp) => resp,
    };
    let status = resp.status();
    if (status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS) && !last {
        match retry_after(&resp) {
            Some(wait) if wait > MAX_RETRY_AFTER => {
                // Read as the final answer: the caller shows the server's own words.
                tries.gave_up = Some(format!(
                    "the server asked to retry after {} s, more than the {} s obsctl waits",
                    wait.as_secs(),
                    MAX_RETRY_AFTER.as_secs()
                ));
            }
            asked => return Attempt::Again(asked.unwrap_or(backoff)),
        }
    }
    match read_body(resp).await {
        Ok((json, body)) => Attempt::Answered(status, json, body),
        Err(BodyError::Cut(_)) if !last => Attempt::Again(backoff),
        Err(BodyError::Cut(why)) => Attempt::Failed(format!("the answer was cut short: {why}")),
        Err(BodyError::TooLarge(why)) => Attempt::Failed(why),
    }
}

enum BodyError {
    /// The connection broke or timed out while the answer was being read.
    Cut(String),
    /// The answer is larger than [`MAX_ANSWER`] (the message says by how much it is known).
    TooLarge(String),
}

/// The body, read chunk by chunk so that an oversized answer is refused after at most
/// [`MAX_ANSWER`] bytes (at once when its `Content-Length` says so).
async fn read_body(mut resp: reqwest::Response) -> std::result::Result<(bool, String), BodyError> {
    let json = resp.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let too_large = |what: String| {
        BodyError::TooLarge(format!("the answer is {what}, more than the {} MiB obsctl reads", MAX_ANSWER >> 20))
    };
    if let Some(len) = resp.content_length().filter(|&n| n > MAX_ANSWER) {
        return Err(too_large(format!("{} MiB (Content-Length)", len >> 20)));
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|e| BodyError::Cut(reason_of(&e)))? {
        if (body.len() + chunk.len()) as u64 > MAX_ANSWER {
            return Err(too_large("larger".into()));
        }
        body.extend_from_slice(&chunk);
    }
    let body = String::from_utf8(body).map_err(|e| BodyError::Cut(format!("the answer is not UTF-8 ({e})")))?;
    Ok((json, body))
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let value = resp.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The innermost cause of an error, in a few words: "connection refused", "timed out".
fn reason_of(e: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = e.to_string();
    let mut timed_out = false;
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<reqwest::Error>() {
            timed_out |= r.is_timeout();
        }
        reason = s.to_string();
        source = s.source();
    }
    if timed_out {
        return "timed out".into();
    }
    reason
}

/// Which failures are worth another try.
pub trait RetryClass {
    fn is_transient(&self) -> bool;
}

impl RetryClass for reqwest::Error {
    fn is_transient(&self) -> bool {
        self.is_connect() || self.is_timeout() || self.is_request()
    }
}

impl RetryClass for prometheus_http_query::Error {
    fn is_transient(&self) -> bool {
        use std::error::Error as _;
        match self {
            prometheus_http_query::Error::Client(e) => {
                e.source().and_then(|s| s.downcast_ref::<reqwest::Error>()).is_some_and(RetryClass::is_transient)
            }
            _ => false,
        }
    }
}

/// `path` under the server's base URL, keeping any prefix (`https://host/prometheus/`).
pub fn endpoint(server: &Server, path: &str) -> Result<reqwest::Url> {
    let mut base = reqwest::Url::parse(&server.base_url).with_context(|| format!("invalid URL {}", server.shown))?;
    if !base.path().ends_with('/') {
        let with_slash = format!("{}/", base.path());
        base.set_path(&with_slash);
    }
    base.join(path).with_context(|| format!("invalid URL {}", server.shown))
}

/// Why a request got no answer, in a few words: "connection refused", "timed out".
pub fn short_reason(e: &reqwest::Error) -> String {
    reason_of(e)
}
