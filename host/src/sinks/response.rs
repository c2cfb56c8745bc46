//! What a receiver's answer means for a delivery: success, a failure to retry (with the receiver's
//! `Retry-After` on 429 and 503), or 410 Gone, which stops the sink. Redirects are not followed, so a
//! 3xx is a failure too.

use std::time::{Duration, SystemTime};

use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};

/// Why a request did not deliver its events.
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    /// The receiver asked not to be called again before this (429 or 503 with `Retry-After`).
    pub retry_after: Option<Duration>,
    /// The receiver answered 410 Gone: stop the sink.
    pub gone: bool,
}

impl Failure {
    pub fn new(error: String) -> Failure {
        Failure {
            error,
            retry_after: None,
            gone: false,
        }
    }
}

/// A response that is not a success, as a failure.
pub fn refusal(response: &Response) -> Failure {
    let status = response.status();
    let mut failure = Failure::new(format!("HTTP {status}"));
    if status.is_redirection() {
        failure.error.push_str(" (redirects are not followed)");
    }
    failure.gone = status == StatusCode::GONE;
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        failure.retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| retry_after(value, SystemTime::now()));
    }
    failure
}

/// A `Retry-After` value, delay-seconds or an HTTP-date, as a wait from `now`.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        // Any count of seconds is a Duration; the caller holds it to backoff_max.
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A transport error in a few words: timeouts and refused connections are the common ones. The URL
/// is left out: it may carry credentials or a token, and the error is shown in `/v1/sinks`.
pub fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        format!(
            "cannot connect: {}",
            std::error::Error::source(&error).map_or(error.to_string(), |s| s.to_string())
        )
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
