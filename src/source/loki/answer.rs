//! What Loki answers: an instant vector's samples, read strictly (a value that is not a
//! finite number is refused, never zero), and the errors it answers with, classified so the
//! caller can split on a series limit and give a hint for the others.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{anyhow, Result};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::usd::Usd;

/// One series of an instant answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Why Loki refused a request, from its status and plain-text body (README point 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `maximum of series (500) reached for a single query`: split and ask again.
    SeriesLimit,
    /// `max entries limit per query exceeded` (log queries).
    EntriesLimit,
    /// `the query time range exceeds the limit` (`query_range`).
    QueryLength,
    /// `parse error at line 1, col N: …`.
    Parse,
    /// `pipeline error: 'SampleExtractionErr' …`.
    SampleExtraction,
    /// 401 `no org id`: multi-tenancy is on and no tenant was given.
    NoOrgId,
    /// Any other 401 or 403.
    Unauthorized,
    /// 404: not a Loki, or not this path.
    NotFound,
    Other,
}

impl Refusal {
    pub fn classify(status: StatusCode, body: &str) -> Refusal {
        let has = |s: &str| body.contains(s);
        match status.as_u16() {
            400 if has("maximum of series") => Refusal::SeriesLimit,
            400 if has("max entries limit") => Refusal::EntriesLimit,
            400 if has("query time range exceeds the limit") => Refusal::QueryLength,
            400 if has("parse error") => Refusal::Parse,
            400 if has("SampleExtractionErr") => Refusal::SampleExtraction,
            401 if has("no org id") => Refusal::NoOrgId,
            401 | 403 => Refusal::Unauthorized,
            404 => Refusal::NotFound,
            _ => Refusal::Other,
        }
    }

    pub(super) fn hint(self) -> &'static str {
        match self {
            Refusal::NoOrgId => " (this Loki has multi-tenancy on: give the tenant with --org-id)",
            Refusal::Unauthorized => " (check the credentials and the tenant, --org-id)",
            Refusal::NotFound => " (is this the URL of a Loki? Loki answers /loki/api/v1/query)",
            Refusal::Parse => " (is the stream selector valid LogQL?)",
            _ => "",
        }
    }
}

/// A request Loki answered with an error status. Shows the first line of the answer; the
/// whole of it is in `body` (multi-line answers such as 11a's explain themselves at length).
#[derive(Debug)]
pub struct LokiError {
    pub status: StatusCode,
    pub refusal: Refusal,
    pub body: String,
    pub(super) message: String,
}

impl fmt::Display for LokiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LokiError {}

/// The Loki refusal in an error chain, if any.
pub fn refusal_of(err: &anyhow::Error) -> Option<Refusal> {
    err.downcast_ref::<LokiError>().map(|e| e.refusal)
}

/// The envelope of a query answer; `data.stats` and anything else is ignored.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<VectorData>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct VectorData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSample>,
}

#[derive(Deserialize)]
struct RawSample {
    metric: BTreeMap<String, String>,
    /// `[time in seconds, "value"]`: the time is truncated to milliseconds and not used.
    value: (f64, String),
}

/// An instant answer's samples. Values are strings (`"38.123768749999996"`); one that is
/// not a finite number (Go would write `NaN`, `+Inf`) is refused, never read as zero.
pub fn parse_vector(body: &str) -> std::result::Result<Vec<Sample>, String> {
    let envelope: Envelope = serde_json::from_str(body).map_err(|e| format!("not a Loki answer ({e})"))?;
    if envelope.status != "success" {
        return Err(format!("the answer's status is {:?}, not \"success\"", envelope.status));
    }
    if !envelope.warnings.is_empty() {
        return Err(format!("the answer came with warnings (partial data?): {}", envelope.warnings.join("; ")));
    }
    let data = envelope.data.ok_or("the answer holds no data")?;
    if data.result_type != "vector" {
        return Err(format!("answered a {} where an instant vector was expected", data.result_type));
    }
    data.result
        .into_iter()
        .map(|s| {
            let value: f64 =
                s.value.1.parse().map_err(|_| format!("value {:?} of {:?} is not a number", s.value.1, s.metric))?;
            if !value.is_finite() {
                return Err(format!("value {:?} of {:?} is not a finite number", s.value.1, s.metric));
            }
            Ok(Sample { labels: s.metric, value })
        })
        .collect()
}

#[doc(hidden)]
pub fn count(s: &Sample) -> Result<u64> {
    let v = s.value;
    if v < 0.0 || (v - v.round()).abs() > 1e-6 {
        return Err(anyhow!("{v} for {:?} is not a count", s.labels));
    }
    Ok(v.round() as u64)
}

#[doc(hidden)]
pub fn usd(s: &Sample) -> Result<Usd> {
    Usd::from_f64(s.value).ok_or_else(|| anyhow!("{} for {:?} is not a cost (negative?)", s.value, s.labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified_by_status_and_text() {
        let c = |s: u16, b: &str| Refusal::classify(StatusCode::from_u16(s).unwrap(), b);
        assert_eq!(c(400, "maximum of series (500) reached for a single query"), Refusal::SeriesLimit);
        assert_eq!(c(400, "parse error at line 1, col 87: syntax error: unexpected $end"), Refusal::Parse);
        assert_eq!(c(401, "no org id\n"), Refusal::NoOrgId);
        assert_eq!(c(404, "404 page not found\n"), Refusal::NotFound);
        assert_eq!(c(500, "maximum of series"), Refusal::Other);
    }

    #[test]
    fn values_must_be_finite_numbers() {
        let body = |v: &str| {
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1795391999.999,"{v}"]}}]}}}}"#
            )
        };
        assert_eq!(parse_vector(&body("38.123768749999996")).unwrap()[0].value, 38.123768749999996);
        for bad in ["NaN", "+Inf", "-Inf", "n/a"] {
            assert!(parse_vector(&body(bad)).is_err(), "{bad}");
        }
        assert!(parse_vector(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#).is_err());
        assert!(parse_vector(r#"{"status":"success"}"#).is_err());
        assert!(parse_vector(r#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["x"]}"#)
            .is_err());
    }
}
