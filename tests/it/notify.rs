//! `--notify URL`: the real binary posting `drift` and `sync` summaries to a receiver on
//! 127.0.0.1 in the test (axum), which checks the signature itself; and the HTTP edge
//! (`ops::notify::deliver_blocking`) against receivers that time out, throttle, refuse or
//! redirect.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::{Run, workspace};

const SECRET: &str = "whsec_hush-hush-0451";
/// A Slack-like webhook path: a credential of its own, never to be printed.
const SECRET_PATH: &str = "/services/T0SECRETPATH/B0/XyZ";

/// What the receiver answers a request with.
#[derive(Clone)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    location: Option<&'static str>,
    /// Wait this long before answering (a receiver too slow for the attempt's timeout).
    delay: Duration,
}

fn status(status: u16) -> Reply {
    Reply {
        status,
        retry_after: None,
        location: None,
        delay: Duration::ZERO,
    }
}

/// A request as the receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The receiver's own check, as the README tells receivers to do it: HMAC-SHA256 of
    /// "{timestamp}.{raw body}" with the shared secret, compared in constant time, and a
    /// timestamp within 5 minutes.
    fn assert_signed_with(&self, secret: &str) {
        let timestamp = self.header("x-tenantform-timestamp");
        let signature = self.header("x-tenantform-signature");
        let hex = signature
            .strip_prefix("sha256=")
            .unwrap_or_else(|| panic!("{signature}"));
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        mac.verify_slice(&bytes)
            .expect("the signature verifies with the shared secret");
        let sent: i64 = timestamp.parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - sent).abs() < 300, "timestamp {sent}, now {now}");
        // Another secret does not verify.
        let mut other = Hmac::<Sha256>::new_from_slice(b"another secret").unwrap();
        other.update(timestamp.as_bytes());
        other.update(b".");
        other.update(&self.body);
        assert!(other.verify_slice(&bytes).is_err());
    }
}

struct Shared {
    replies: Vec<Reply>,
    seen: Mutex<Vec<Seen>>,
}

/// An HTTP server on 127.0.0.1 answering each request with the next of its replies (the
/// last one repeated), recording what it was sent. Stopped on drop.
struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut seen = shared.seen.lock().unwrap();
        seen.push(Seen {
            path: uri.path().to_string(),
            headers,
            body,
            at: Instant::now(),
        });
        let i = (seen.len() - 1).min(shared.replies.len() - 1);
        shared.replies[i].clone()
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = StatusCode::from_u16(reply.status).unwrap().into_response();
    if let Some(v) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", v.parse().unwrap());
    }
    if let Some(v) = reply.location {
        response
            .headers_mut()
            .insert("location", v.parse().unwrap());
    }
    response
}

impl Receiver {
    fn start(replies: Vec<Reply>) -> Receiver {
        let shared = Arc::new(Shared {
            replies,
            seen: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Receiver {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // A slow reply may still be sleeping; do not wait for it.
        drop(self.thread.take());
    }
}

/// examples/foggy-it and the sandbox fixture, copied into a temporary directory.
fn foggy() -> tempfile::TempDir {
    workspace(&["examples/foggy-it", "examples/sandbox/fixture.yaml"])
}

/// `tenantform COMMAND --sandbox --sandbox-world examples/sandbox/fixture.yaml
/// examples/foggy-it ARGS` in `dir`, with `env` (and no notification secret or backoff from
/// the environment the tests run in).
fn tf(dir: &Path, command: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec![
        command,
        "--sandbox",
        "--sandbox-world",
        "examples/sandbox/fixture.yaml",
        "examples/foggy-it",
    ];
    all.extend_from_slice(args);
    if command == "drift" {
        all.extend(["--replication-window", "0s"]);
    }
    crate::support::assert_hermetic(dir, &all);
    let mut cmd = crate::support::command();
    cmd.env_remove("TENANTFORM_NOTIFY_SECRET")
        .env_remove("TENANTFORM_NOTIFY_BACKOFF_MS")
        .current_dir(dir)
        .args(&all)
        .envs(env.iter().copied());
    Run::of(cmd.output().expect("tenantform runs"))
}

/// The secret, and a backoff of 20 ms so retries do not slow the suite.
const ENV: &[(&str, &str)] = &[
    ("TENANTFORM_NOTIFY_SECRET", SECRET),
    ("TENANTFORM_NOTIFY_BACKOFF_MS", "20"),
];

#[test]
fn drift_posts_its_report_signed_and_the_receiver_verifies_the_signature() {
    let dir = foggy();
    let receiver = Receiver::start(vec![status(204)]);
    let url = receiver.url("/hooks/drift");
    let run = tf(dir.path(), "drift", &["--notify", &url], ENV);
    assert!(matches!(run.code, 0 | 2), "{}", run.transcript());
    assert!(!run.stderr.contains("warning"), "{}", run.transcript());

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1, "one delivery, accepted at once");
    let hook = &seen[0];
    assert_eq!(hook.path, "/hooks/drift");
    assert_eq!(hook.header("content-type"), "application/json");
    assert!(hook.header("user-agent").starts_with("tenantform/"));
    assert!(!hook.header("x-tenantform-delivery").is_empty());
    hook.assert_signed_with(SECRET);

    let payload = hook.json();
    assert_eq!(payload["command"], "drift");
    assert_eq!(payload["tool"], "tenantform");
    assert_eq!(payload["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(payload["exitCode"], run.code, "the command's own exit code");
    let started = payload["startedAt"].as_str().unwrap();
    let finished = payload["finishedAt"].as_str().unwrap();
    assert!(started.ends_with('Z') && started <= finished, "{payload}");
    // The summary: the drift report (as --output json prints it) and the failed tenants.
    let summary = &payload["summary"];
    assert_eq!(summary["kind"], "tenantform-drift", "{summary}");
    assert_eq!(summary["summary"]["tenants"], 1, "{summary}");
    assert_eq!(
        summary["summary"]["findings"].as_u64().unwrap() > 0,
        run.code == 2,
        "{summary}"
    );
    assert_eq!(summary["failedTenants"], serde_json::json!([]), "{summary}");
    let json = tf(dir.path(), "drift", &["--output", "json"], &[]);
    let printed: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(printed["summary"], summary["summary"]);
    assert_eq!(printed["tenants"], summary["tenants"]);
}

#[test]
fn sync_is_retried_through_two_503s_and_delivered_on_the_third_attempt() {
    let dir = foggy();
    let receiver = Receiver::start(vec![status(503), status(503), status(200)]);
    let url = receiver.url(SECRET_PATH);
    let run = tf(
        dir.path(),
        "sync",
        &["--output", "json", "--notify", &url],
        ENV,
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(!run.stderr.contains("warning"), "{}", run.transcript());

    let seen = receiver.seen();
    assert_eq!(seen.len(), 3, "503, 503, then 200");
    let delivery = seen[0].header("x-tenantform-delivery");
    for attempt in &seen {
        attempt.assert_signed_with(SECRET);
        assert_eq!(attempt.body, seen[0].body, "the same payload each time");
        assert_eq!(attempt.header("x-tenantform-delivery"), delivery);
    }
    // Waits of at least 20 ms and then 40 ms between attempts.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(20));
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(40));

    let payload = seen[2].json();
    assert_eq!(payload["command"], "sync");
    assert_eq!(payload["exitCode"], 0);
    let printed: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        payload["summary"], printed,
        "the round's summary, as printed"
    );
    assert!(payload["summary"]["created"].as_u64().unwrap() > 0);
}

#[test]
fn a_receiver_that_always_fails_changes_no_exit_code_and_is_named_by_host_only() {
    let dir = foggy();
    let without = tf(dir.path(), "drift", &[], &[]);
    assert!(matches!(without.code, 0 | 2), "{}", without.transcript());

    let receiver = Receiver::start(vec![status(500)]);
    let url = receiver.url(SECRET_PATH);
    let run = tf(dir.path(), "drift", &["--notify", &url], ENV);
    assert_eq!(run.code, without.code, "{}", run.transcript());
    assert_eq!(run.stdout, without.stdout);
    assert_eq!(receiver.seen().len(), 4, "4 attempts");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].contains(&receiver.origin()), "{}", warnings[0]);
    assert!(warnings[0].contains("HTTP 500"), "{}", warnings[0]);
    for secret in ["T0SECRETPATH", "/services", SECRET] {
        assert!(!run.stderr.contains(secret), "{secret} in {}", run.stderr);
        assert!(!run.stdout.contains(secret), "{secret} in {}", run.stdout);
    }

    // Nobody listening: connection errors are retried too, and the result still stands.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{closed}{SECRET_PATH}");
    let run = tf(dir.path(), "drift", &["--notify", &url], ENV);
    assert_eq!(run.code, without.code, "{}", run.transcript());
    let warning = run
        .stderr
        .lines()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(warning.contains(&format!("http://{closed}")), "{warning}");
    assert!(warning.contains("4 attempts") && warning.contains("cannot connect"));
    assert!(!run.stderr.contains("T0SECRETPATH"), "{}", run.stderr);
}

#[test]
fn a_missing_secret_stops_the_command_before_it_does_anything() {
    let dir = foggy();
    let receiver = Receiver::start(vec![status(200)]);
    let url = receiver.url("/hook");
    let run = tf(dir.path(), "drift", &["--notify", &url], &[]);
    // A usage error exits 1, as every usage error here (2 means drift).
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("TENANTFORM_NOTIFY_SECRET"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    // Nothing read or written: no sandbox directory, no state.
    assert!(!dir.path().join("examples/foggy-it/.tenantform").exists());

    // An empty variable is missing too; --notify-secret-env names the one to set.
    let run = tf(
        dir.path(),
        "sync",
        &[
            "--notify",
            &url,
            "--notify-secret-env",
            "PSA_WEBHOOK_SECRET",
        ],
        &[
            ("PSA_WEBHOOK_SECRET", ""),
            ("TENANTFORM_NOTIFY_SECRET", SECRET),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("PSA_WEBHOOK_SECRET"), "{}", run.stderr);
    assert!(receiver.seen().is_empty(), "no request made");
    assert!(!dir.path().join("examples/foggy-it/.tenantform").exists());

    // Named and set: used (and the default variable is not needed).
    let run = tf(
        dir.path(),
        "drift",
        &[
            "--notify",
            &url,
            "--notify-secret-env",
            "PSA_WEBHOOK_SECRET",
        ],
        &[("PSA_WEBHOOK_SECRET", "psa-secret")],
    );
    assert!(matches!(run.code, 0 | 2), "{}", run.transcript());
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    seen[0].assert_signed_with("psa-secret");
}

#[test]
fn plain_http_to_another_host_is_refused_up_front() {
    let dir = foggy();
    let run = tf(
        dir.path(),
        "drift",
        &["--notify", "http://psa.example/hooks/T0SECRETPATH"],
        ENV,
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("https") && run.stderr.contains("http://psa.example"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("T0SECRETPATH"), "{}", run.stderr);
    assert!(!dir.path().join("examples/foggy-it/.tenantform").exists());
}

#[test]
fn notify_help_teaches_the_payload_the_headers_and_how_to_verify() {
    let run = crate::support::run(&["drift", "--help"]);
    assert_eq!(run.code, 0);
    for needle in [
        "--notify <URL>",
        "--notify-secret-env <NAME>",
        "\"exitCode\"",
        "X-Tenantform-Timestamp",
        "X-Tenantform-Signature: sha256=",
        "openssl dgst -sha256 -hmac",
        "TENANTFORM_NOTIFY_SECRET",
    ] {
        assert!(run.stdout.contains(needle), "{needle} in\n{}", run.stdout);
    }
    let sync = crate::support::run(&["sync", "--help"]);
    assert!(sync.stdout.contains("--notify <URL>"), "{}", sync.stdout);
}

#[test]
fn sync_every_posts_one_notification_per_round() {
    let dir = foggy();
    let receiver = Receiver::start(vec![status(200)]);
    let url = receiver.url("/rounds");
    let mut child = std::process::Command::new(crate::support::binary())
        .args([
            "sync",
            "--sandbox",
            "--sandbox-world",
            "examples/sandbox/fixture.yaml",
            "examples/foggy-it",
            "--every",
            "1s",
            "--notify",
            &url,
        ])
        .env_remove("TENANTFORM_NOTIFY_BACKOFF_MS")
        .envs(ENV.iter().copied())
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while receiver.seen().len() < 2 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let seen = receiver.seen();
    assert!(seen.len() >= 2, "{} notifications", seen.len());
    let rounds: Vec<Value> = seen.iter().map(Seen::json).collect();
    assert!(rounds.iter().all(|r| r["command"] == "sync"));
    assert!(rounds[0]["summary"]["created"].as_u64().unwrap() > 0);
    assert_eq!(
        rounds[1]["summary"]["created"], 0,
        "the second round is quiet"
    );
    assert_ne!(
        seen[0].header("x-tenantform-delivery"),
        seen[1].header("x-tenantform-delivery"),
        "a notification per round"
    );
}

mod edge {
    //! The HTTP edge on its own: timeouts, Retry-After, what is not retried.

    use super::*;
    use tenantform::notify::{RetryPolicy, WebhookUrl};
    use tenantform::ops::notify::{NotifyError, Secret, Webhook, deliver_blocking};

    fn hook(receiver: &Receiver, policy: RetryPolicy) -> Webhook {
        Webhook {
            url: WebhookUrl::parse(&receiver.url(SECRET_PATH)).unwrap(),
            secret: Secret::new(SECRET.into()).unwrap(),
            policy,
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(10),
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn a_slow_receiver_times_out_each_attempt_and_is_retried() {
        let slow = Reply {
            delay: Duration::from_secs(3),
            ..status(200)
        };
        let receiver = Receiver::start(vec![slow.clone(), slow, status(200)]);
        let policy = RetryPolicy {
            timeout: Duration::from_millis(300),
            ..fast()
        };
        let done = deliver_blocking(&hook(&receiver, policy.clone()), "{}").unwrap();
        assert_eq!((done.status, done.attempts), (200, 3));

        let receiver = Receiver::start(vec![Reply {
            delay: Duration::from_secs(3),
            ..status(200)
        }]);
        let policy = RetryPolicy {
            attempts: 2,
            ..policy
        };
        let e = deliver_blocking(&hook(&receiver, policy), "{}").unwrap_err();
        let message = e.to_string();
        assert!(
            matches!(e, NotifyError::GaveUp { attempts: 2, .. }),
            "{e:?}"
        );
        assert!(message.starts_with(&receiver.origin()), "{message}");
        assert!(message.contains("no answer within 0.3s"), "{message}");
        assert!(!message.contains("T0SECRETPATH"), "{message}");
    }

    #[test]
    fn retry_after_is_honoured_on_429() {
        let receiver = Receiver::start(vec![
            Reply {
                retry_after: Some("1"),
                ..status(429)
            },
            status(202),
        ]);
        let done = deliver_blocking(&hook(&receiver, fast()), "{}").unwrap();
        assert_eq!((done.status, done.attempts), (202, 2));
        let seen = receiver.seen();
        assert!(
            seen[1].at - seen[0].at >= Duration::from_secs(1),
            "waited {:?}, not the 10 ms backoff",
            seen[1].at - seen[0].at
        );
    }

    #[test]
    fn other_4xx_and_redirects_are_final() {
        for first in [
            status(404),
            status(401),
            Reply {
                location: Some("http://127.0.0.1:9/elsewhere"),
                ..status(302)
            },
        ] {
            let code = first.status;
            let receiver = Receiver::start(vec![first, status(200)]);
            let e = deliver_blocking(&hook(&receiver, fast()), "{}").unwrap_err();
            assert!(
                matches!(e, NotifyError::Refused { status, .. } if status == code),
                "{e:?}"
            );
            assert_eq!(receiver.seen().len(), 1, "{code} is not retried");
            assert_eq!(
                e.to_string(),
                format!("{} answered HTTP {code} (not retried)", receiver.origin())
            );
        }
    }
}

#[test]
fn report_posts_its_overview_signed_and_names_where_it_wrote() {
    let dir = foggy();
    let receiver = Receiver::start(vec![status(204)]);
    let url = receiver.url("/hooks/report");
    let out = dir.path().join("fleet.html");
    let run = tf(
        dir.path(),
        "report",
        &["--notify", &url, "--out", out.to_str().unwrap()],
        ENV,
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(out.is_file());
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    seen[0].assert_signed_with(SECRET);
    let payload = seen[0].json();
    assert_eq!(payload["command"], "report");
    assert_eq!(payload["exitCode"], 0);
    let summary = &payload["summary"];
    assert_eq!(summary["overview"]["tenants"], 1, "{summary}");
    assert_eq!(summary["unread"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["out"], out.to_str().unwrap());
}
