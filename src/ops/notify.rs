//! The HTTP edge of `--notify`: posts a signed payload (`crate::notify`) to a webhook,
//! attempt after attempt as the [`RetryPolicy`] says. Nothing here prints: the outcome is a
//! [`Delivered`] or a [`NotifyError`] whose message names the receiver by its origin only
//! (`scheme://host[:port]`), never its path or the secret. Retries are logged (tracing, `-v`).

use std::time::Duration;

use crate::notify::{
    Answer, DELIVERY_HEADER, Next, RetryPolicy, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookUrl,
    sign,
};

/// The shared secret. Debug never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// `None` for an empty value (an unset variable and an empty one mean the same).
    pub fn new(value: String) -> Option<Secret> {
        (!value.is_empty()).then_some(Secret(value))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Where and how to post.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub url: WebhookUrl,
    pub secret: Secret,
    pub policy: RetryPolicy,
}

/// A notification the receiver accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub status: u16,
    /// 1 when the first attempt was accepted.
    pub attempts: u32,
}

/// A notification that was not delivered. Its message starts with the receiver's origin and
/// never holds its path, query or the secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The receiver answered with a status that is not retried (another 4xx, a redirect).
    #[error("{origin} answered HTTP {status} (not retried)")]
    Refused { origin: String, status: u16 },
    /// Every attempt failed.
    #[error("{origin}: {attempts} attempts failed, the last: {last}")]
    GaveUp {
        origin: String,
        attempts: u32,
        last: String,
    },
    #[error("{origin}: cannot make an HTTP client: {message}")]
    Client { origin: String, message: String },
}

/// Posts `body` (the payload's JSON) to `hook` with a fresh timestamp and signature per
/// attempt (a receiver checking that the timestamp is recent accepts a late retry), and the
/// same `X-Tenantform-Delivery` id on every attempt. Redirects are not followed.
pub async fn deliver(hook: &Webhook, body: &str) -> Result<Delivered, NotifyError> {
    let origin = hook.url.origin();
    let client = reqwest::Client::builder()
        .timeout(hook.policy.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tenantform/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifyError::Client {
            origin: origin.clone(),
            message: e.without_url().to_string(),
        })?;
    let delivery = uuid::Uuid::new_v4().to_string();
    let mut attempt = 1;
    loop {
        let timestamp = jiff::Timestamp::now().as_second();
        let sent = client
            .post(hook.url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                sign(hook.secret.0.as_bytes(), timestamp, body.as_bytes()),
            )
            .header(DELIVERY_HEADER, &delivery)
            .body(body.to_string())
            .send()
            .await;
        let (answer, said) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // Read (and drop) the answer so the attempt is whole; its text is not shown (a
                // receiver may echo what it was sent).
                let _ = response.bytes().await;
                (
                    Answer::Status {
                        status,
                        retry_after,
                    },
                    format!("HTTP {status}"),
                )
            }
            Err(e) if e.is_timeout() => (
                Answer::TimedOut,
                format!("no answer within {}", seconds(hook.policy.timeout)),
            ),
            Err(e) => (Answer::Transport, transport_error(&e)),
        };
        match hook.policy.next(attempt, &answer) {
            Next::Delivered => {
                let Answer::Status { status, .. } = answer else {
                    unreachable!("only an answer is delivered")
                };
                tracing::info!("notified {origin} (attempt {attempt}: HTTP {status})");
                return Ok(Delivered {
                    status,
                    attempts: attempt,
                });
            }
            Next::RetryAfter(wait) => {
                tracing::info!(
                    "notifying {origin}: attempt {attempt} failed ({said}); again in {}",
                    seconds(wait)
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Next::GiveUp => {
                return Err(match answer {
                    Answer::Status { status, .. } if !answer.is_transient() => {
                        NotifyError::Refused { origin, status }
                    }
                    _ => NotifyError::GaveUp {
                        origin,
                        attempts: attempt,
                        last: said,
                    },
                });
            }
        }
    }
}

/// [`deliver`] on a runtime of its own, for the command line's synchronous commands (not to be
/// called from inside a runtime).
pub fn deliver_blocking(hook: &Webhook, body: &str) -> Result<Delivered, NotifyError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| NotifyError::Client {
            origin: hook.url.origin(),
            message: e.to_string(),
        })?;
    runtime.block_on(deliver(hook, body))
}

/// A transport error without the URL reqwest puts in its message: what failed (connect,
/// request, body) and the innermost cause (e.g. "Connection refused (os error 111)").
fn transport_error(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let cause = cause.to_string();
    // Without a cause, the innermost error is reqwest's own message, which names the URL.
    if cause.contains("://") {
        what.to_string()
    } else {
        format!("{what}: {cause}")
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
