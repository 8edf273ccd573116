//! Running the binary and shaping its output for assertions and snapshots.

use std::path::{Path, PathBuf};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code and both streams, the form snapshots store.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn command() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("tenantform").expect("binary built");
    cmd.env_remove("NO_COLOR").env("COLUMNS", "100");
    // Hermetic: never reach a real tenant from the test suite.
    for var in [
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
        "TENANTFORM_STATE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `tenantform ARGS` in `cwd` with stdin `input`.
pub fn run_in(cwd: &Path, args: &[&str], input: Option<&[u8]>) -> Run {
    let mut cmd = command();
    cmd.current_dir(cwd).args(args);
    if let Some(input) = input {
        cmd.write_stdin(input.to_vec());
    }
    let out = cmd.output().expect("tenantform runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

pub fn run(args: &[&str]) -> Run {
    run_in(&repo_root(), args, None)
}

/// Writes `files` (relative path, text) under `dir`.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Writes a synthetic fleet of `n` tenants under `dir`.
pub fn write_fleet(dir: &Path, n: usize) {
    for f in tenantform::synthetic::fleet(n) {
        let path = dir.join(&f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, f.text).unwrap();
    }
}

/// The binary, for processes a test starts in the background (and may kill).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tenantform"))
}

/// Environment variables that would point a child process at a real tenant or another state.
pub const HERMETIC_VARS: [&str; 6] = [
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "TENANTFORM_STATE",
];

/// A standalone `tenantform sandbox serve` process (killed on drop), which `tenantform` reaches
/// over HTTP as it would reach Microsoft Graph (see [`StandaloneSandbox::env`]).
pub struct StandaloneSandbox {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl StandaloneSandbox {
    /// `tenants` generated customer tenants (`synthetic::synthetic_guid(0..tenants)`), no members.
    pub fn start(tenants: usize) -> Self {
        Self::start_with_faults(tenants, "")
    }

    /// The same, with `--faults SPEC` (e.g. `throttle=0.1,5xx=0.05,seed=7`).
    pub fn start_with_faults(tenants: usize, faults: &str) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(binary())
            .args([
                "sandbox",
                "serve",
                "--tenants",
                &tenants.to_string(),
                "--users",
                "0",
                "--faults",
                faults,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let base = first.trim().rsplit(' ').next().unwrap().to_string();
        assert!(base.starts_with("http://"), "sandbox printed {first:?}");
        // Keep reading: a closed pipe would make the sandbox's next print fail and stop it.
        std::thread::spawn(move || for _ in stdout.lines() {});
        StandaloneSandbox { child, base }
    }

    /// Environment pointing `tenantform` at this sandbox with its sandbox-only app.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        use tenantform::sandbox::fixture::{SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET};
        vec![
            ("AZURE_CLIENT_ID", SANDBOX_CLIENT_ID.to_string()),
            ("AZURE_CLIENT_SECRET", SANDBOX_CLIENT_SECRET.to_string()),
            ("TENANTFORM_GRAPH_URL", format!("{}/v1.0", self.base)),
            ("TENANTFORM_LOGIN_URL", self.base.clone()),
        ]
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
