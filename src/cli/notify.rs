//! `--notify URL` for `drift`, `sync` and `report`: the flags, checked before the command does
//! anything ([`NotifyArgs::notifier`]), and the post when it ends ([`Notifier::send`]), whose
//! failure is one warning on stderr and never changes the exit code.
//!
//! A command wires it in like this:
//!
//! ```ignore
//! let notifier = args.notify.notifier()?;          // first: a bad URL or no secret stops here
//! let started_at = crate::state::now_rfc3339();
//! // ... the command's work, its output printed ...
//! notifier.send("report", &started_at, code, &summary_json);
//! ```
//!
//! or, to notify also when the command fails with an error, [`Notifier::finish`].

use crate::cli::CliError;
use crate::notify::{DEFAULT_SECRET_ENV, Payload, RetryPolicy, WebhookUrl};
use crate::ops::notify::{Secret, Webhook, deliver_blocking};
use crate::render::terminal_safe;

/// The base delay between attempts in milliseconds (default 1000), so tests need not wait.
pub const BACKOFF_ENV: &str = "TENANTFORM_NOTIFY_BACKOFF_MS";

const NOTIFY_HELP: &str = "\
Post the command's summary to URL when it ends (for a PSA, or Teams and Slack through a \
small relay), so a ticket can be opened. The URL must be https; plain http is accepted only \
to this machine (127.0.0.1, ::1, localhost) and refused up front otherwise.

What is sent: one POST with Content-Type: application/json (sync --every: one per round):
  {\"command\": \"drift\" | \"sync\" | \"report\", \"startedAt\": RFC 3339, \"finishedAt\": RFC 3339,
   \"exitCode\": the command's exit code, \"summary\": the command's JSON summary,
   \"tool\": \"tenantform\", \"version\": tenantform's version}
The summary is what --output json prints (drift adds failedTenants; report sends its overview, \
the unread tenants and where it was written); a command that fails \
with an error sends {\"error\": message} and exitCode 1.

Headers:
  X-Tenantform-Timestamp: the attempt's time in Unix seconds
  X-Tenantform-Signature: sha256=HEX
      HEX: the HMAC-SHA256, keyed with the shared secret, of \"TIMESTAMP.BODY\"
      (the timestamp header, a dot, the raw body), in lowercase hex
  X-Tenantform-Delivery: one id per notification, the same on every attempt (drop repeats)

To verify a delivery, recompute the HMAC over the timestamp header, '.', and the body bytes \
exactly as received (before parsing the JSON), compare it with the signature in constant \
time, and refuse a timestamp more than 5 minutes from your clock (a replay). In a shell:
  printf '%s.%s' \"$TIMESTAMP\" \"$BODY\" | openssl dgst -sha256 -hmac \"$SECRET\"

The secret is read from TENANTFORM_NOTIFY_SECRET (or the variable --notify-secret-env names); \
when it is unset or empty the command refuses to start. Delivery is tried up to 4 times, 1 s, \
2 s and 4 s apart (a Retry-After in seconds is honoured, up to 30 s), 10 s an attempt: \
timeouts, connection errors, 408, 429 and 5xx are retried; other answers are not, and \
redirects are not followed. A notification that fails is one warning line on stderr naming \
only scheme://host[:port] (a webhook URL's path is often its credential); the exit code is \
the command's either way.";

/// `--notify URL` and `--notify-secret-env NAME`, flattened into a command's arguments.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NotifyArgs {
    /// Post the summary to this webhook when the command ends, signed with the secret in
    /// TENANTFORM_NOTIFY_SECRET (see --help: payload, headers, verifying the signature).
    #[arg(long, value_name = "URL", long_help = NOTIFY_HELP)]
    pub notify: Option<String>,
    /// Read the webhook's shared secret from this environment variable instead of
    /// TENANTFORM_NOTIFY_SECRET (e.g. one secret per receiver).
    #[arg(long, value_name = "NAME", requires = "notify")]
    pub notify_secret_env: Option<String>,
}

impl NotifyArgs {
    /// Checks the flags and reads the secret, before the command does anything: a URL that is
    /// not https (or http to this machine) or a missing secret is a usage error naming what to
    /// fix. Without `--notify`, a notifier that sends nothing.
    pub fn notifier(&self) -> Result<Notifier, CliError> {
        self.notifier_with(|name| std::env::var_os(name))
    }

    fn notifier_with(
        &self,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Notifier, CliError> {
        let Some(url) = &self.notify else {
            return Ok(Notifier { hook: None });
        };
        let url = WebhookUrl::parse(url).map_err(|e| CliError::Usage(e.to_string()))?;
        let variable = self
            .notify_secret_env
            .as_deref()
            .unwrap_or(DEFAULT_SECRET_ENV);
        let secret = env(variable)
            .and_then(|v| v.into_string().ok())
            .and_then(Secret::new)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--notify signs what it sends with a shared secret, and the environment \
                     variable {variable} is not set (or is empty): set {variable} to the secret \
                     the receiver checks signatures with{}",
                    if self.notify_secret_env.is_none() {
                        ", or name another variable with --notify-secret-env"
                    } else {
                        ""
                    }
                ))
            })?;
        let mut policy = RetryPolicy::default();
        if let Some(ms) = env(BACKOFF_ENV) {
            let ms = ms
                .to_str()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    CliError::Usage(format!("{BACKOFF_ENV} must be a number of milliseconds"))
                })?;
            policy.base_delay = std::time::Duration::from_millis(ms);
        }
        Ok(Notifier {
            hook: Some(Webhook {
                url,
                secret,
                policy,
            }),
        })
    }
}

/// Sends a command's summary where `--notify` said, or nothing without it.
#[derive(Debug)]
pub struct Notifier {
    hook: Option<Webhook>,
}

impl Notifier {
    /// Whether anything will be sent (to skip building a summary nobody reads).
    pub fn is_enabled(&self) -> bool {
        self.hook.is_some()
    }

    /// Posts `{"command", "startedAt", "finishedAt" (now), "exitCode", "summary", "tool",
    /// "version"}`, retrying as `--help` says. A notification that is finally not delivered
    /// is one warning line on stderr (the receiver named by scheme://host[:port] only); the
    /// caller's exit code stays as it is.
    pub fn send(
        &self,
        command: &str,
        started_at: &str,
        exit_code: u8,
        summary: &serde_json::Value,
    ) {
        let Some(hook) = &self.hook else {
            return;
        };
        let finished_at = crate::state::now_rfc3339();
        let body = Payload::new(command, started_at, &finished_at, exit_code, summary).body();
        if let Err(e) = deliver_blocking(hook, &body) {
            eprintln!(
                "warning: the {command} notification was not delivered: {}",
                terminal_safe(&e.to_string())
            );
        }
    }

    /// [`Notifier::send`] for a command's result: its exit code and summary, or for an error
    /// `{"error": message}` with exit code 1; gives the result back unchanged.
    pub fn finish(
        &self,
        command: &str,
        started_at: &str,
        result: Result<(u8, serde_json::Value), CliError>,
    ) -> Result<u8, CliError> {
        match result {
            Ok((code, summary)) => {
                self.send(command, started_at, code, &summary);
                Ok(code)
            }
            Err(e) => {
                let summary = serde_json::json!({ "error": e.to_string() });
                self.send(command, started_at, crate::cli::exit::ERROR, &summary);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str, env: Option<&str>) -> NotifyArgs {
        NotifyArgs {
            notify: Some(url.into()),
            notify_secret_env: env.map(str::to_string),
        }
    }

    fn usage(r: Result<Notifier, CliError>) -> String {
        match r {
            Err(CliError::Usage(m)) => m,
            other => panic!("a usage error, not {other:?}"),
        }
    }

    #[test]
    fn a_missing_or_empty_secret_names_the_variable_to_set() {
        let none = |_: &str| None;
        let m = usage(args("https://psa.example/h", None).notifier_with(none));
        assert!(m.contains("TENANTFORM_NOTIFY_SECRET"), "{m}");
        assert!(m.contains("--notify-secret-env"), "{m}");
        let empty = |_: &str| Some("".into());
        let m = usage(args("https://psa.example/h", Some("PSA_SECRET")).notifier_with(empty));
        assert!(
            m.contains("PSA_SECRET") && !m.contains("TENANTFORM_NOTIFY_SECRET"),
            "{m}"
        );
        // The named variable, not the default, is read.
        let only_psa = |n: &str| (n == "PSA_SECRET").then(|| "s3cret".into());
        let n = args("https://psa.example/h", Some("PSA_SECRET"))
            .notifier_with(only_psa)
            .unwrap();
        assert!(n.is_enabled());
        assert!(!format!("{n:?}").contains("s3cret") && !format!("{n:?}").contains("/h"));
    }

    #[test]
    fn plain_http_elsewhere_is_refused_before_the_secret_is_looked_at() {
        let m = usage(args("http://psa.example/hook/T0KEN", None).notifier_with(|_| None));
        assert!(
            m.contains("https") && m.contains("http://psa.example"),
            "{m}"
        );
        assert!(!m.contains("T0KEN"), "{m}");
    }

    #[test]
    fn without_notify_nothing_is_checked_or_sent() {
        let n = NotifyArgs::default().notifier_with(|_| None).unwrap();
        assert!(!n.is_enabled());
    }

    #[test]
    fn the_backoff_can_be_shortened_for_tests() {
        let env = |n: &str| match n {
            DEFAULT_SECRET_ENV => Some("s".into()),
            BACKOFF_ENV => Some("5".into()),
            _ => None,
        };
        let n = args("http://127.0.0.1:9/h", None)
            .notifier_with(env)
            .unwrap();
        let hook = n.hook.unwrap();
        assert_eq!(hook.policy.base_delay, std::time::Duration::from_millis(5));
        assert_eq!(hook.policy.attempts, 4);
    }
}
