//! A headless Chromium driven over the DevTools protocol (a WebSocket, JSON commands and
//! events), for tests that must see a page as a browser does: what it logs, what it fetches,
//! what its script does. Debian's `chromium` (`.ci/run` installs it); outside CI a machine
//! without it skips those tests with a loud notice, in CI they fail.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The browser binary, or why there is none (after saying so loudly outside CI).
pub fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser tests: install Debian's chromium (.ci/run does)"
        );
        eprintln!(
            "\n!!! SKIPPED: no chromium on PATH; the headless browser test of the fleet report did not run.\n!!! Install Debian's `chromium` to run it (CI does).\n"
        );
    }
    found
}

/// What the page did while it loaded and ran.
#[derive(Debug, Default)]
pub struct Seen {
    /// Console messages of level error, uncaught exceptions, browser log errors (a blocked
    /// script or a Content-Security-Policy violation is logged there).
    pub errors: Vec<String>,
    /// URLs of every request the page made, the page itself included.
    pub requests: Vec<String>,
}

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    session: String,
    next_id: u64,
    pub seen: Seen,
}

impl Browser {
    /// Starts `binary` headless with a throwaway profile and opens an empty tab.
    pub async fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut command = Command::new(binary);
        command
            .args([
                "--headless=new",
                "--remote-debugging-port=0",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,2000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // Chromium's sandbox cannot run as root (CI containers): it refuses to start without this.
        if unsafe { libc::geteuid() } == 0 {
            command.arg("--no-sandbox");
        }
        let mut child = command.spawn().expect("chromium starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium says where its DevTools listen");
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("DevTools WebSocket");
        let mut browser = Browser {
            child,
            _profile: profile,
            socket,
            session: String::new(),
            next_id: 0,
            seen: Seen::default(),
        };
        let target = browser
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = browser
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            browser.page(domain, json!({})).await;
        }
        browser
    }

    /// Sends a command to the tab and waits for its answer.
    pub async fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params).await
    }

    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("DevTools command sent");
        loop {
            let reply = self.receive(Duration::from_secs(30)).await;
            if reply["id"].as_u64() == Some(id) {
                assert!(
                    reply.get("error").is_none(),
                    "DevTools {method} failed: {reply}"
                );
                return reply["result"].clone();
            }
        }
    }

    /// Reads the next message, noting the events tests look at.
    async fn receive(&mut self, timeout: Duration) -> Value {
        let message = tokio::time::timeout(timeout, self.socket.next())
            .await
            .expect("DevTools answered in time")
            .expect("DevTools socket open")
            .expect("DevTools message");
        let value: Value = match message {
            Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
            _ => Value::Null,
        };
        let params = &value["params"];
        match value["method"].as_str() {
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.seen
                    .errors
                    .push(format!("console.error: {}", params["args"]));
            }
            Some("Runtime.exceptionThrown") => {
                self.seen
                    .errors
                    .push(format!("exception: {}", params["exceptionDetails"]));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.seen
                    .errors
                    .push(format!("log: {}", params["entry"]["text"]));
            }
            Some("Network.requestWillBeSent") => {
                self.seen
                    .requests
                    .push(params["request"]["url"].as_str().unwrap_or("").to_string());
            }
            _ => {}
        }
        value
    }

    /// Opens `url` and waits for its load event, then a moment for late errors.
    pub async fn open(&mut self, url: &str) {
        self.page("Page.navigate", json!({"url": url})).await;
        loop {
            let event = self.receive(Duration::from_secs(30)).await;
            if event["method"] == "Page.loadEventFired" {
                break;
            }
        }
        // Anything the page does after load (its script runs before it) shows up by now.
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_millis(300), self.socket.next()).await
        {}
        let _ = self
            .page("Runtime.evaluate", json!({"expression": "0"}))
            .await;
    }

    /// Evaluates `expression` in the page and returns its value (JSON).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .page(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {result}"
        );
        result["result"]["value"].clone()
    }

    /// A PNG of the whole page.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let shot = self
            .page(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
