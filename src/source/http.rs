//! The one HTTP client every server source uses: authentication, tenant, TLS, timeouts
//! and bounded retries, configured once from a [`ServerConfig`].

use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};

use crate::config::ServerConfig;

/// Attempts for one request: connection errors and 5xx are retried, 4xx never are (the
/// same query would fail the same way).
pub const ATTEMPTS: u32 = 3;

/// A server ready to be queried: the client, the URL to send to (credentials moved into
/// headers) and the URL to show (credentials redacted).
#[derive(Clone, Debug)]
pub struct Server {
    pub client: reqwest::Client,
    pub base_url: String,
    pub shown: String,
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
    Ok(Server { client, shown: crate::config::redact_url(&base_url), base_url })
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

/// Sends the request built by `make`, retrying connection failures and 5xx answers with
/// backoff. The last answer (or error) is returned as it came.
pub async fn send_with_retry<F, Fut, E>(mut make: F) -> std::result::Result<reqwest::Response, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<reqwest::Response, E>>,
    E: RetryClass,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let result = make().await;
        let retry = match &result {
            Ok(resp) => resp.status().is_server_error(),
            Err(e) => e.is_transient(),
        };
        if !retry || attempt >= ATTEMPTS {
            return result;
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
        attempt += 1;
    }
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
    use std::error::Error as _;
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    reason
}
