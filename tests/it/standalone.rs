//! The Graph sandbox in a process of its own (`tenantform sandbox serve`), and the environment
//! that points `tenantform` at a sandbox. Shared by the integration tests (through `support`)
//! and the benchmarks (`benches/common` includes this file with `#[path]`, since benchmarks
//! cannot import `tests/`); it uses only std and the library.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use tenantform::sandbox::fixture::{
    SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_PARTNER_TENANT_ID,
};

/// The environment pointing `tenantform` at the sandbox whose login base is `base`
/// (`http://127.0.0.1:PORT`), signing in as the sandbox-only app. For the in-process sandbox
/// too: `sandbox_env(handle.base_url())`.
pub fn sandbox_env(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AZURE_CLIENT_ID", SANDBOX_CLIENT_ID.to_string()),
        ("AZURE_CLIENT_SECRET", SANDBOX_CLIENT_SECRET.to_string()),
        ("TENANTFORM_GRAPH_URL", format!("{base}/v1.0")),
        ("TENANTFORM_LOGIN_URL", base.to_string()),
    ]
}

/// [`sandbox_env`] signed in at the partner tenant, for commands that list customers
/// (`customers`, `export --all-customers`, `auth check` of the partner).
pub fn partner_env(base: &str) -> Vec<(&'static str, String)> {
    let mut env = sandbox_env(base);
    env.push(("AZURE_TENANT_ID", SANDBOX_PARTNER_TENANT_ID.to_string()));
    env
}

/// A `tenantform sandbox serve` process, killed on drop.
pub struct StandaloneSandbox {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl StandaloneSandbox {
    /// `tenants` generated customer tenants (`synthetic::synthetic_guid(0..tenants)`), no
    /// members; its stderr is dropped (tests).
    pub fn start(tenants: usize) -> Self {
        Self::start_with_faults(tenants, "")
    }

    /// The same, with `--faults SPEC` (e.g. `throttle=0.1,5xx=0.05,seed=7`).
    pub fn start_with_faults(tenants: usize, faults: &str) -> Self {
        let tenants = tenants.to_string();
        Self::serve(
            &["--tenants", &tenants, "--users", "0", "--faults", faults],
            Stdio::null(),
        )
    }

    /// `tenantform sandbox serve ARGS`, its stderr going to `stderr` (benchmarks show it).
    pub fn serve(args: &[&str], stderr: Stdio) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenantform"))
            .args(["sandbox", "serve"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the sandbox");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let base = first.trim().rsplit(' ').next().unwrap().to_string();
        assert!(base.starts_with("http://"), "sandbox printed {first:?}");
        // Keep reading: a closed pipe would make the sandbox's next print fail and stop it.
        std::thread::spawn(move || for _ in stdout.lines() {});
        StandaloneSandbox { child, base }
    }

    /// The server's process id (the sandbox benchmark reads its memory).
    #[allow(dead_code)] // unused by the tests
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// [`sandbox_env`] for this sandbox.
    /// The sandbox's request log (`GET /_sandbox/requests`): method, path, tenant, ...
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            reqwest::get(format!("{}/_sandbox/requests", self.base))
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }

    /// How many invitations (`POST /invitations`) the sandbox has answered.
    pub fn invitations(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/invitations")
            })
            .count()
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        sandbox_env(&self.base)
    }

    /// [`partner_env`] for this sandbox.
    pub fn partner_env(&self) -> Vec<(&'static str, String)> {
        partner_env(&self.base)
    }

    /// A Graph client for this sandbox, to count what its directories hold.
    pub fn graph_client(&self) -> tenantform::graph::GraphClient {
        let env = self.env();
        let config = tenantform::graph::GraphConfig::from_env(|k| {
            env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        tenantform::graph::GraphClient::new(config, tenantform::graph::RetryPolicy::default())
            .unwrap()
    }
}

impl Drop for StandaloneSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sandbox token fetched over plain HTTP from `token_url` (for clients that talk to the
/// sandbox as a foreign client would, not through tenantform's client).
pub async fn sandbox_token(http: &reqwest::Client, token_url: &str) -> String {
    let answer: serde_json::Value = http
        .post(token_url)
        .form(&[
            ("client_id", SANDBOX_CLIENT_ID),
            ("client_secret", SANDBOX_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}
