//! Webhook notifications as plain data: the payload `drift`, `sync` and `report` post with
//! `--notify URL`, its signature, which URLs are accepted and how they are named in messages,
//! and when a failed attempt is tried again. No I/O: the HTTP edge is `ops::notify`.
//!
//! The signature follows Stripe's and Slack's scheme: an HMAC-SHA256, keyed with a shared
//! secret, of `"{timestamp}.{body}"`, sent as `X-Tenantform-Signature: sha256=<lowercase hex>`
//! beside `X-Tenantform-Timestamp: <unix seconds>`. Signing the timestamp lets a receiver
//! refuse old deliveries replayed later (it checks the timestamp is recent, then the
//! signature over it).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// The environment variable the shared secret is read from unless `--notify-secret-env` names
/// another.
pub const DEFAULT_SECRET_ENV: &str = "TENANTFORM_NOTIFY_SECRET";
/// The time of the attempt, in Unix seconds (signed with the body).
pub const TIMESTAMP_HEADER: &str = "X-Tenantform-Timestamp";
/// `sha256=` and the HMAC-SHA256 of `"{timestamp}.{body}"` in lowercase hex.
pub const SIGNATURE_HEADER: &str = "X-Tenantform-Signature";
/// One id per notification, the same on every attempt, so a receiver can drop a repeat.
pub const DELIVERY_HEADER: &str = "X-Tenantform-Delivery";

/// What is posted: one JSON object per notification.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload<'a> {
    /// `drift`, `sync` or `report`.
    pub command: &'a str,
    /// RFC 3339, UTC.
    pub started_at: &'a str,
    pub finished_at: &'a str,
    /// The exit code the command ends with (a failed notification never changes it).
    pub exit_code: u8,
    /// The command's own JSON summary (for a command that failed: `{"error": ...}`).
    pub summary: &'a serde_json::Value,
    /// Always `tenantform`.
    pub tool: &'static str,
    /// tenantform's version.
    pub version: &'static str,
}

impl<'a> Payload<'a> {
    pub fn new(
        command: &'a str,
        started_at: &'a str,
        finished_at: &'a str,
        exit_code: u8,
        summary: &'a serde_json::Value,
    ) -> Payload<'a> {
        Payload {
            command,
            started_at,
            finished_at,
            exit_code,
            summary,
            tool: "tenantform",
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// The body as sent (and signed): compact JSON.
    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("a payload serializes")
    }
}

/// The `X-Tenantform-Signature` value for `body` sent at `timestamp` (Unix seconds):
/// `sha256=` and the HMAC-SHA256 of `"{timestamp}.{body}"` keyed with `secret`, in lowercase
/// hex.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * digest.len());
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A webhook URL that may be posted to: https, or http to this machine (127.0.0.0/8, ::1,
/// `localhost`) for tests and local receivers. Slack and Teams webhook URLs carry their
/// credential in the path, so messages name only [`WebhookUrl::origin`].
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

/// Why a URL is refused. The messages never repeat the URL (it may hold a credential).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("--notify is not a URL ({0})")]
    Invalid(String),
    #[error("--notify must be an https:// URL (not {0}://)")]
    Scheme(String),
    #[error(
        "--notify {0} is plain http to another machine: the summary and its signature would \
         cross the network readable by anyone on the way; use https (http is accepted only for \
         127.0.0.1, ::1 and localhost)"
    )]
    PlainHttp(String),
}

impl WebhookUrl {
    pub fn parse(text: &str) -> Result<WebhookUrl, UrlProblem> {
        let url = url::Url::parse(text.trim()).map_err(|e| UrlProblem::Invalid(e.to_string()))?;
        let hook = WebhookUrl(url);
        match hook.0.scheme() {
            "https" if hook.0.host().is_some() => Ok(hook),
            "http" if hook.is_loopback() => Ok(hook),
            "http" => Err(UrlProblem::PlainHttp(hook.origin())),
            "https" => Err(UrlProblem::Invalid("no host".into())),
            other => Err(UrlProblem::Scheme(other.to_string())),
        }
    }

    fn is_loopback(&self) -> bool {
        match self.0.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        }
    }

    /// `scheme://host[:port]`: all that messages say of the URL (never its path, query or
    /// user information).
    pub fn origin(&self) -> String {
        let host = match self.0.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => String::new(),
        };
        match self.0.port() {
            Some(port) => format!("{}://{host}:{port}", self.0.scheme()),
            None => format!("{}://{host}", self.0.scheme()),
        }
    }

    /// The whole URL, for the request only.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Debug names the origin only: the URL may be a credential.
impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookUrl({}/…)", self.origin())
    }
}

/// How a notification is attempted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first and its repeats).
    pub attempts: u32,
    /// The wait before the second attempt; each later wait doubles it.
    pub base_delay: Duration,
    /// The longest a `Retry-After` is honoured for.
    pub max_retry_after: Duration,
    /// How long one attempt may take, connecting included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, waiting 1 s, 2 s and 4 s between them (or what `Retry-After` asks, up to
    /// 30 s); 10 s an attempt.
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The receiver answered with this status (and `Retry-After` header, if any).
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// No answer within the attempt's timeout.
    TimedOut,
    /// No connection (refused, reset, DNS, TLS) or the answer broke off.
    Transport,
}

impl Answer {
    /// Worth another attempt: timeouts, connection errors, 408, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Answer::Status { status, .. } => {
                matches!(status, 408 | 429) || (500..600).contains(status)
            }
            Answer::TimedOut | Answer::Transport => true,
        }
    }
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// A 2xx: the receiver has it.
    Delivered,
    /// Try again after this long.
    RetryAfter(Duration),
    /// Stop: the receiver refused it for good (another 4xx, a redirect), or no attempt is left.
    GiveUp,
}

impl RetryPolicy {
    /// What follows attempt number `attempt` (1 for the first) that ended in `answer`: 2xx is
    /// delivered; timeouts, connection errors, 408, 429 and 5xx are retried (after the
    /// answer's `Retry-After` seconds when it has one, as 429 and 503 often do, up to
    /// `max_retry_after`; else after the doubling backoff) while attempts are left; anything else (another 4xx, a 3xx: redirects
    /// are not followed) is final.
    pub fn next(&self, attempt: u32, answer: &Answer) -> Next {
        let retry_after = match answer {
            Answer::Status { status, .. } if (200..300).contains(status) => return Next::Delivered,
            _ if !answer.is_transient() => return Next::GiveUp,
            Answer::Status { retry_after, .. } => {
                retry_after.as_deref().and_then(retry_after_seconds)
            }
            Answer::TimedOut | Answer::Transport => None,
        };
        if attempt >= self.attempts {
            return Next::GiveUp;
        }
        Next::RetryAfter(match retry_after {
            Some(wait) => wait.min(self.max_retry_after),
            None => self.backoff(attempt),
        })
    }

    /// The wait after attempt `attempt` without a `Retry-After`: base, 2 x base, 4 x base, ...
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
    }
}

/// `Retry-After` in its delay-seconds form (`120`); the HTTP-date form is not used by the
/// receivers this posts to and falls back to the backoff.
fn retry_after_seconds(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_one_computed_independently() {
        // printf '%s' '1700000000.{"command":"drift","exitCode":2}' \
        //   | openssl dgst -sha256 -hmac 'whsec_4f1c2b'
        assert_eq!(
            sign(
                b"whsec_4f1c2b",
                1_700_000_000,
                br#"{"command":"drift","exitCode":2}"#
            ),
            "sha256=f56e79267bb19c3477a3ab4a426814cdfb14833c6713c8aebc8bde12bf27db75"
        );
        // Non-ASCII in the key and the body (UTF-8 bytes), checked with openssl and Python's
        // hmac module alike.
        assert_eq!(
            sign(
                "a secret with spaces and ünïcode".as_bytes(),
                1_767_323_045,
                r#"{"command":"sync","tool":"tenantform","summary":{"name":"Zoë \u00e9"}}"#
                    .as_bytes()
            ),
            "sha256=c17590d993d0baf99db62fb9c4d081ab36bdf289d3ccc10c7eaa97aa8d544291"
        );
    }

    #[test]
    fn the_timestamp_and_every_byte_of_the_body_are_signed() {
        let body = br#"{"a":1}"#;
        let s = sign(b"k", 1, body);
        assert_ne!(s, sign(b"k", 2, body));
        assert_ne!(s, sign(b"k", 1, br#"{"a":2}"#));
        assert_ne!(s, sign(b"K", 1, body));
        assert!(s.starts_with("sha256="));
        assert_eq!(s.len(), 7 + 64);
        assert!(s[7..].chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    }

    #[test]
    fn the_payload_has_the_documented_fields() {
        let summary = serde_json::json!({"findings": 3});
        let body = Payload::new(
            "drift",
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:09Z",
            2,
            &summary,
        )
        .body();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "command": "drift",
                "startedAt": "2026-01-02T03:04:05Z",
                "finishedAt": "2026-01-02T03:04:09Z",
                "exitCode": 2,
                "summary": {"findings": 3},
                "tool": "tenantform",
                "version": env!("CARGO_PKG_VERSION"),
            })
        );
    }

    #[test]
    fn https_anywhere_and_http_only_to_this_machine() {
        let origin = |u: &str| WebhookUrl::parse(u).map(|w| w.origin());
        assert_eq!(
            origin("https://hooks.slack.com/services/T0/B0/XXXX"),
            Ok("https://hooks.slack.com".into())
        );
        assert_eq!(
            origin("https://psa.example:8443/hook?token=abc"),
            Ok("https://psa.example:8443".into())
        );
        assert_eq!(
            origin("https://user:pw@psa.example/x"),
            Ok("https://psa.example".into())
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/x"),
            Ok("http://127.0.0.1:8080".into())
        );
        assert_eq!(origin("http://[::1]:9/x"), Ok("http://[::1]:9".into()));
        assert_eq!(origin("http://LOCALHOST/x"), Ok("http://localhost".into()));
        assert_eq!(
            origin("http://psa.example/hook/secret-path"),
            Err(UrlProblem::PlainHttp("http://psa.example".into()))
        );
        assert_eq!(
            origin("http://10.0.0.1/x"),
            Err(UrlProblem::PlainHttp("http://10.0.0.1".into()))
        );
        assert_eq!(
            origin("http://localhost.psa.example/x"),
            Err(UrlProblem::PlainHttp("http://localhost.psa.example".into()))
        );
        assert_eq!(
            origin("ftp://psa.example/x"),
            Err(UrlProblem::Scheme("ftp".into()))
        );
        assert!(matches!(origin("not a url"), Err(UrlProblem::Invalid(_))));
        // Messages never repeat the path.
        let e = WebhookUrl::parse("http://psa.example/hook/secret-path").unwrap_err();
        assert!(!e.to_string().contains("secret-path"), "{e}");
        let w = WebhookUrl::parse("https://psa.example/hook/secret-path").unwrap();
        assert!(!format!("{w:?}").contains("secret-path"));
    }

    #[test]
    fn transient_failures_are_retried_with_a_doubling_backoff_and_others_are_not() {
        let p = RetryPolicy::default();
        let status = |status: u16| Answer::Status {
            status,
            retry_after: None,
        };
        let secs = |s| Next::RetryAfter(Duration::from_secs(s));
        assert_eq!(p.next(1, &status(200)), Next::Delivered);
        assert_eq!(p.next(1, &status(204)), Next::Delivered);
        assert_eq!(p.next(1, &status(503)), secs(1));
        assert_eq!(p.next(2, &status(500)), secs(2));
        assert_eq!(p.next(3, &Answer::TimedOut), secs(4));
        assert_eq!(p.next(4, &Answer::Transport), Next::GiveUp, "4 attempts");
        assert_eq!(p.next(1, &status(408)), secs(1));
        assert_eq!(p.next(1, &status(429)), secs(1));
        for final_status in [400, 401, 403, 404, 410, 422, 301, 302] {
            assert_eq!(
                p.next(1, &status(final_status)),
                Next::GiveUp,
                "{final_status}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_are_honoured_up_to_a_cap() {
        let p = RetryPolicy::default();
        let asked = |status: u16, value: &str| Answer::Status {
            status,
            retry_after: Some(value.into()),
        };
        assert_eq!(
            p.next(1, &asked(429, "7")),
            Next::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            p.next(1, &asked(503, " 3 ")),
            Next::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            p.next(1, &asked(429, "86400")),
            Next::RetryAfter(Duration::from_secs(30)),
            "capped"
        );
        // A date, or nonsense: the backoff.
        assert_eq!(
            p.next(2, &asked(429, "Wed, 21 Oct 2015 07:28:00 GMT")),
            Next::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(p.next(4, &asked(429, "1")), Next::GiveUp);
    }
}
