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
