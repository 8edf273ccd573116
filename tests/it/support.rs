//! Running the binary and shaping its output for assertions and snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::standalone::{StandaloneSandbox, partner_env, sandbox_env, sandbox_token};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// A finished command's exit code (-1 for a signal) and both streams.
    pub fn of(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

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
    for var in HERMETIC_VARS {
        cmd.env_remove(var);
    }
    // A developer's signed-in `az` must not become the default chain's credential.
    cmd.env("AZURE_CONFIG_DIR", "/nonexistent/tenantform-tests/azure");
    cmd
}

/// Commands that only read the repository and print: tests may run them from the repository
/// root. Every other command reads or writes state (`PATH/.tenantform/state.json` by default),
/// the sandbox's directory, plans or exported files.
const READ_ONLY: &[&str] = &["validate", "schema", "roles"];

/// Panics unless `tenantform ARGS` run in `cwd` stays out of the repository: a command that may
/// read or write state must run outside the work tree (see [`workspace`]) and name no path in
/// it. A test that wrote into `examples/` (or read what a local run left there, such as
/// `examples/foggy-it/.tenantform/`) would pass or fail depending on what ran before it.
pub fn assert_hermetic(cwd: &Path, args: &[&str]) {
    let root = repo_root();
    if args
        .iter()
        .any(|a| matches!(*a, "--help" | "-h" | "--version" | "-V"))
    {
        return;
    }
    if subcommand(args).is_none_or(|(s, _)| READ_ONLY.contains(&s)) {
        return;
    }
    let cwd = std::path::absolute(cwd).unwrap();
    assert!(
        !cwd.starts_with(&root),
        "`tenantform {}` runs in {} inside the repository: run it in a temporary directory \
         (support::workspace copies the example files it needs)",
        args.join(" "),
        cwd.display()
    );
    for arg in args {
        let value = arg.split_once('=').map_or(*arg, |(_, v)| v);
        let path = cwd.join(value);
        assert!(
            !path.starts_with(&root),
            "`tenantform {}` names {value} inside the repository: copy it into a temporary \
             directory (support::workspace)",
            args.join(" ")
        );
    }
}

/// The subcommand of `tenantform ARGS` (the first word that is neither an option nor
/// `--color`'s value) and the words after it.
fn subcommand<'a>(args: &[&'a str]) -> Option<(&'a str, Vec<&'a str>)> {
    let mut words = args.iter();
    while let Some(w) = words.next() {
        if *w == "--color" {
            words.next();
        } else if !w.starts_with('-') {
            return Some((w, words.copied().collect()));
        }
    }
    None
}

/// `tenantform ARGS` in `dir`, with its state in `dir/state.json` (so `dir` must be outside
/// the repository: see [`workspace`]).
///
/// A command that reads Entra (`plan`, `apply`, `import`, `drift`) reads the embedded Graph
/// sandbox (`--sandbox`; its directory is kept in `dir/sandbox-world.json`, which tests edit to
/// play "changed in the portal") with `--replication-window 0s`, since those edits come right
/// after an apply; unless ARGS say otherwise (`--offline`, `--sandbox`, `--replication-window`)
/// or apply a saved plan (`apply FILE.tfp`), which remembers how it was made.
pub fn tf(dir: &Path, args: &[&str]) -> Run {
    let state = dir.join("state.json");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--state", state.to_str().unwrap()]);
    if let Some((command, rest)) = subcommand(args) {
        let reads_entra = matches!(command, "plan" | "apply" | "import" | "drift");
        let saved_plan = command == "apply" && rest.first().is_some_and(|p| p.ends_with(".tfp"));
        if reads_entra && !saved_plan && !args.contains(&"--offline") {
            if !args.contains(&"--sandbox") {
                all.push("--sandbox");
            }
            if !args.contains(&"--replication-window") {
                all.extend(["--replication-window", "0s"]);
            }
        }
    }
    run_in(dir, &all, None)
}

/// [`tf`] with `manifests` (a path, relative to `dir` or absolute) after ARGS.
pub fn tf_on(dir: &Path, manifests: impl AsRef<Path>, args: &[&str]) -> Run {
    let manifests = manifests
        .as_ref()
        .to_str()
        .expect("a UTF-8 path")
        .to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.push(&manifests);
    tf(dir, &all)
}

/// A temporary directory holding copies of the repository's `paths` (directories or files) at
/// the same relative paths, so `examples/foggy-it` means the same there as in the repository.
/// Hidden entries (such as the `.tenantform/` a local run leaves in `examples/foggy-it`) are not
/// copied: a test starts from what is committed, and what it writes stays in the temporary
/// directory.
pub fn workspace(paths: &[&str]) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        if from.is_dir() {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                if !entry.file_name().to_string_lossy().starts_with('.') {
                    copy(&entry.path(), &to.join(entry.file_name()));
                }
            }
        } else {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for path in paths {
        let from = repo_root().join(path);
        assert!(from.exists(), "{} exists", from.display());
        copy(&from, &dir.path().join(path));
    }
    dir
}

/// Runs `tenantform ARGS` in `cwd` with stdin `input` (outside the repository unless the
/// command only reads: see [`assert_hermetic`]).
pub fn run_in(cwd: &Path, args: &[&str], input: Option<&[u8]>) -> Run {
    run_with_env(cwd, args, input, &[])
}

/// [`run_in`] with environment variables set (e.g. a CI run's `GITHUB_*`).
pub fn run_with_env(cwd: &Path, args: &[&str], input: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    assert_hermetic(cwd, args);
    let mut cmd = command();
    cmd.current_dir(cwd).args(args);
    cmd.envs(env.iter().copied());
    if let Some(input) = input {
        cmd.write_stdin(input.to_vec());
    }
    Run::of(cmd.output().expect("tenantform runs"))
}

/// Runs a read-only command (`validate`, `schema`, `roles`, `--help`) from the repository root.
pub fn run(args: &[&str]) -> Run {
    run_in(&repo_root(), args, None)
}

/// A temporary directory holding examples/foggy-it's manifests at its top, so that it is both
/// the manifests path and (through [`tf_on`]) where state and the sandbox's directory go.
pub fn foggy_it() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["tenant.yaml", "support.yaml"] {
        std::fs::copy(
            repo_root().join("examples/foggy-it").join(f),
            dir.path().join(f),
        )
        .unwrap_or_else(|e| panic!("copy examples/foggy-it/{f}: {e}"));
    }
    dir
}

/// [`foggy_it`] applied through the sandbox: Dana invited, with her roles.
pub fn foggy_it_applied() -> tempfile::TempDir {
    let dir = foggy_it();
    let run = tf_on(dir.path(), dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    dir
}

/// The sandbox's directory that [`tf`] keeps in `dir` (`sandbox-world.json`).
pub fn world(dir: &Path) -> serde_json::Value {
    let path = dir.join("sandbox-world.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Edits the sandbox's directory in `dir`, as someone working in the portal would.
pub fn edit_world(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut w = world(dir);
    edit(&mut w);
    std::fs::write(
        dir.join("sandbox-world.json"),
        serde_json::to_vec_pretty(&w).unwrap(),
    )
    .unwrap();
}

/// Edits the tenant with Microsoft tenant id `id` in the sandbox's directory in `dir`.
pub fn edit_world_tenant(dir: &Path, id: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    edit_world(dir, |w| {
        let tenant = w["tenants"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no tenant {id} in the sandbox's directory"));
        edit(tenant)
    });
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

#[test]
fn commands_that_may_write_state_never_run_in_the_repository() {
    let refused = |cwd: &Path, args: &[&str]| {
        let (cwd, args) = (
            cwd.to_path_buf(),
            args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        );
        std::panic::catch_unwind(move || {
            assert_hermetic(&cwd, &args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .is_err()
    };
    let root = repo_root();
    let elsewhere = tempfile::tempdir().unwrap();
    let inside = root.join("examples/foggy-it");
    let inside = inside.to_str().unwrap();
    // From the repository root: reading is fine, anything with state is not.
    assert!(!refused(&root, &["validate", "examples/foggy-it"]));
    assert!(!refused(&root, &["--color", "never", "schema", "plan"]));
    assert!(!refused(&root, &["plan", "--help"]));
    assert!(refused(
        &root,
        &["plan", "examples/foggy-it", "--state", "/tmp/s.json"]
    ));
    assert!(refused(&root, &["--color", "never", "state", "list"]));
    // Elsewhere: a path into the repository is refused too, in any spelling.
    assert!(!refused(
        elsewhere.path(),
        &["apply", "examples/foggy-it", "--sandbox"]
    ));
    assert!(refused(elsewhere.path(), &["apply", inside, "--sandbox"]));
    let flag = format!("--state={inside}/.tenantform/state.json");
    assert!(refused(elsewhere.path(), &["plan", ".", &flag]));
}

#[test]
fn workspaces_copy_what_is_committed_not_local_state() {
    let ws = workspace(&["examples/foggy-it"]);
    let copied = ws.path().join("examples/foggy-it");
    assert!(copied.join("tenant.yaml").is_file() && copied.join("support.yaml").is_file());
    assert!(
        !copied.join(".tenantform").exists(),
        "a local run's state is never copied"
    );
}

/// Environment variables that would point a child process at a real tenant or another state.
pub const HERMETIC_VARS: &[&str] = &[
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    // The secretless sources: a suite run inside GitHub Actions or Azure DevOps must not
    // sign in with the runner's own identity.
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "SYSTEM_OIDCREQUESTURI",
    "SYSTEM_ACCESSTOKEN",
    "AZURESUBSCRIPTION_CLIENT_ID",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
    "TENANTFORM_SERVICE_CONNECTION_ID",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "TENANTFORM_IMDS_ENDPOINT",
    "TENANTFORM_MANAGED_IDENTITY_CLIENT_ID",
    "TENANTFORM_AUTH",
    "TENANTFORM_STATE",
    // The CI the suite runs in must not become the actor apply history records.
    "GITHUB_ACTIONS",
    "TF_BUILD",
];

/// Commits the work tree of `repo` with `message`; returns the commit id.
pub fn git_commit(repo: &git2::Repository, message: &str) -> String {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("tenantform tests", "tests@tenantform.example").unwrap();
    let parents: Vec<git2::Commit> = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .into_iter()
        .collect();
    let parent_refs: Vec<&git2::Commit> = parents.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parent_refs)
        .unwrap()
        .to_string()
}

/// The ids of [`three_tenant_fleet`]'s customers.
pub const FLEET_IDS: [&str; 3] = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
];

/// Three customers `t0`..`t2` ("Customer i Ltd"), Dana invited into all with Helpdesk
/// Administrator and TenantAdmin, and a sandbox world beside the state in which `edit` shapes
/// tenant `i` (e.g. no consent, fewer permissions).
pub fn three_tenant_fleet(edit: impl Fn(usize, &mut serde_json::Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut manifests = String::new();
    for (i, id) in FLEET_IDS.iter().enumerate() {
        manifests.push_str(&format!(
            "kind: Tenant\nname: t{i}\ndisplayName: Customer {i} Ltd\nmicrosoftTenantId: {id}\n---\n"
        ));
    }
    manifests.push_str(
        "kind: GuestUser\nname: dana\nemail: dana@msp.example\ntenants: [t0, t1, t2]\n---\n\
         kind: RoleAssignment\nname: dana-admin\nprincipal: { guest: dana }\n\
         directoryRoles: [Helpdesk Administrator]\nmspRoles: [TenantAdmin]\n",
    );
    write_tree(dir.path(), &[("fleet.yaml", &manifests)]);
    let tenants: Vec<serde_json::Value> = FLEET_IDS
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut t = serde_json::json!({"id": id, "displayName": format!("Customer {i} Ltd"),
                                           "domain": format!("c{i}.onmicrosoft.com")});
            edit(i, &mut t);
            t
        })
        .collect();
    std::fs::create_dir_all(dir.path().join(".tenantform")).unwrap();
    std::fs::write(
        dir.path().join(".tenantform/sandbox-world.json"),
        serde_json::to_vec(&serde_json::json!({ "tenants": tenants })).unwrap(),
    )
    .unwrap();
    dir
}

/// One field (`users`, `roleAssignments`, ...) of `tenant` in the sandbox world kept under
/// `dir/.tenantform`, each item mapped by `pick` (items it returns `None` for are left out).
pub fn world_items(
    dir: &Path,
    tenant: &str,
    field: &str,
    pick: impl Fn(&serde_json::Value) -> Option<String>,
) -> Vec<String> {
    let world: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(".tenantform/sandbox-world.json")).unwrap(),
    )
    .unwrap();
    world["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tenant)
        .and_then(|t| t[field].as_array())
        .map(|items| items.iter().filter_map(&pick).collect())
        .unwrap_or_default()
}

/// The mail of every user of `tenant` in the sandbox world kept under `dir/.tenantform`.
pub fn guests_in_world(dir: &Path, tenant: &str) -> Vec<String> {
    world_items(dir, tenant, "users", |u| {
        u["mail"].as_str().map(str::to_string)
    })
}

/// The whole state stored at `path` (catalog and every tenant partition, journals replayed),
/// as JSON: `{"formatVersion", "lineage", "serial", "objects": {address: object}}`.
pub fn stored_state(path: &Path) -> serde_json::Value {
    use tenantform::state::StateStore;
    let state = tenantform::state::file::FileStateStore::new(path)
        .load()
        .expect("state loads");
    serde_json::to_value(&state).expect("state serializes")
}

/// A client that talks to the sandbox as a foreign program would (plain HTTP with a token of
/// the sandbox app), for tests of the sandbox's own answers rather than tenantform's client.
pub struct RawGraph {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/v1.0`.
    base: String,
    token: String,
}

impl RawGraph {
    pub async fn connect(sandbox: &tenantform::sandbox::SandboxHandle, tenant: &str) -> RawGraph {
        let http = reqwest::Client::new();
        let token = sandbox_token(&http, &sandbox.token_url(tenant)).await;
        RawGraph {
            http,
            base: sandbox.graph_url(),
            token,
        }
    }

    /// The application permissions (`roles`) the token carries.
    pub fn roles(&self) -> Vec<String> {
        use base64::Engine;
        let payload = self.token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        serde_json::from_value(claims["roles"].clone()).unwrap()
    }

    /// Status and JSON body (`null` when empty) of `method path` under `/v1.0`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.send_with(method, path, &[], body).await
    }

    /// [`Self::send`] with extra request headers (e.g. `If-Match`).
    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }
}

/// The addresses of a JSON plan's actions with operation `op` (`create`, `delete`, ...), in
/// plan order.
pub fn addresses_with_op<'a>(plan: &'a serde_json::Value, op: &str) -> Vec<&'a str> {
    plan["actions"]
        .as_array()
        .expect("a plan's actions")
        .iter()
        .filter(|a| a["op"] == op)
        .map(|a| a["address"].as_str().expect("an address"))
        .collect()
}

/// The PostgreSQL server tests use: `TENANTFORM_TEST_DATABASE_URL` when set (e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`), otherwise a throwaway cluster this test
/// process starts from the machine's PostgreSQL binaries (see [`throwaway_cluster`]). `None`
/// when there is neither: the PostgreSQL tests then say loudly that they were skipped.
pub fn test_database_url() -> Option<String> {
    if let Some(url) = std::env::var("TENANTFORM_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Some(url);
    }
    throwaway_cluster().map(|port| format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}

/// Whether a test database is there; says so on stderr (once per test) when it is not, and
/// fails instead when `TENANTFORM_REQUIRE_DATABASE_TESTS` is set (CI, where they must run).
pub fn test_database_available() -> bool {
    if test_database_url().is_some() {
        return true;
    }
    if std::env::var_os("TENANTFORM_REQUIRE_DATABASE_TESTS").is_some() {
        panic!(
            "TENANTFORM_REQUIRE_DATABASE_TESTS is set, but there is no TENANTFORM_TEST_DATABASE_URL and no PostgreSQL binaries (initdb, pg_ctl) to start a cluster with"
        );
    }
    eprintln!(
        "SKIPPED: PostgreSQL state test: no TENANTFORM_TEST_DATABASE_URL and no PostgreSQL binaries (initdb, pg_ctl) to start a throwaway cluster"
    );
    false
}

/// The port of a PostgreSQL cluster started once for this test process in a temporary
/// directory (initdb + pg_ctl, trust authentication, listening on 127.0.0.1 only, on a free
/// port) and stopped when the process exits. Both tools refuse to run as root: as root, they
/// run as the `postgres` user (Debian's packages create it) or `nobody`. The binaries come
/// from PATH or Debian's `/usr/lib/postgresql/<version>/bin` (the newest version).
pub fn throwaway_cluster() -> Option<u16> {
    static CLUSTER: std::sync::OnceLock<Option<u16>> = std::sync::OnceLock::new();
    *CLUSTER.get_or_init(|| match start_cluster(false) {
        Ok(port) => Some(port),
        Err(why) => {
            eprintln!("note: no throwaway PostgreSQL cluster: {why}");
            None
        }
    })
}

/// A throwaway cluster that speaks TLS only (plain connections are rejected), with a server
/// certificate for `localhost` and 127.0.0.1 from a test CA made for it: its port and the CA's
/// PEM file. Needs the PostgreSQL binaries and `openssl`.
pub fn tls_cluster() -> Option<(u16, PathBuf)> {
    static CLUSTER: std::sync::OnceLock<Option<u16>> = std::sync::OnceLock::new();
    let port = (*CLUSTER.get_or_init(|| match start_cluster(true) {
        Ok(port) => Some(port),
        Err(why) => {
            eprintln!("note: no throwaway TLS PostgreSQL cluster: {why}");
            None
        }
    }))?;
    Some((port, cluster_dir(true).join("ca.pem")))
}

fn cluster_dir(tls: bool) -> PathBuf {
    std::env::temp_dir().join(format!(
        "tenantform-test-pg{}-{}",
        if tls { "-tls" } else { "" },
        std::process::id()
    ))
}

/// Makes a CA and a server certificate (for localhost and 127.0.0.1) signed by it in `dir`,
/// with `openssl`: `ca.pem`, `server.crt`, `server.key`.
fn make_certificates(dir: &Path) -> Result<(), String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=tenantform test CA",
    ];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca)?;
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(&csr)?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.crt",
        "-extfile",
        "server.ext",
    ])
}

fn postgres_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

/// (uid, gid) to run the PostgreSQL tools as, when this process is root.
fn unprivileged_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: a NUL-terminated name; the result is read at once, before any other call.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: non-null, as checked.
            let pw = unsafe { &*pw };
            return Some((pw.pw_uid, pw.pw_gid));
        }
    }
    None
}

/// What stopping the cluster at exit needs: the tools' directory, the cluster's directory and
/// the user to run `pg_ctl` as.
type ClusterStop = (PathBuf, PathBuf, Option<(u32, u32)>);

static CLUSTER_STOP: std::sync::Mutex<Vec<ClusterStop>> = std::sync::Mutex::new(Vec::new());

extern "C" fn stop_cluster() {
    let stops = CLUSTER_STOP
        .lock()
        .map(|mut g| std::mem::take(&mut *g))
        .unwrap_or_default();
    for (bin, dir, user) in stops {
        let mut stop = Command::new(bin.join("pg_ctl"));
        stop.args(["stop", "-m", "immediate", "-D"])
            .arg(dir.join("data"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some((uid, gid)) = user {
            use std::os::unix::process::CommandExt;
            stop.uid(uid).gid(gid);
        }
        let _ = stop.status();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn start_cluster(tls: bool) -> Result<u16, String> {
    use std::os::unix::process::CommandExt;
    let bin = postgres_bin().ok_or("no initdb and pg_ctl on PATH or under /usr/lib/postgresql")?;
    let user = unprivileged_user();
    let dir = cluster_dir(tls);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    let tool = |name: &str| {
        let mut cmd = Command::new(bin.join(name));
        if let Some((uid, gid)) = user {
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir(&dir);
        cmd
    };
    let output = tool("initdb")
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(dir.join("data"))
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    if tls {
        make_certificates(&dir)?;
        let data = dir.join("data");
        for file in ["server.crt", "server.key"] {
            std::fs::copy(dir.join(file), data.join(file)).map_err(|e| e.to_string())?;
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(data.join(file), Some(uid), Some(gid))
                    .map_err(|e| e.to_string())?;
            }
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .map_err(|e| e.to_string())?;
        }
        // TLS or nothing over TCP.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .map_err(|e| e.to_string())?;
    }
    {
        let mut stops = CLUSTER_STOP.lock().unwrap();
        if stops.is_empty() {
            // SAFETY: registers a plain extern "C" function, once.
            unsafe { libc::atexit(stop_cluster) };
        }
        stops.push((bin.clone(), dir.clone(), user));
    }
    let mut options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        dir.display()
    );
    if tls {
        options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
    }
    let output = tool("pg_ctl")
        .args(["start", "-w", "-t", "60", "-o", &options, "-l"])
        .arg(dir.join("log"))
        .arg("-D")
        .arg(dir.join("data"))
        .output()
        .map_err(|e| format!("pg_ctl: {e}"))?;
    if !output.status.success() {
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        return Err(format!(
            "pg_ctl start failed: {}{log}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprintln!(
        "note: started a throwaway PostgreSQL cluster on 127.0.0.1:{port} for the state tests"
    );
    Ok(port)
}

/// Drops a test's schema when the test ends.
pub struct DropSchema {
    pub url: String,
    pub schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        // Off the test's thread: the client must not run inside a runtime.
        let _ = std::thread::spawn(move || {
            if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
                let _ =
                    client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        })
        .join();
    }
}

/// Manifests of tenants `a` and `b` (the first two sandbox tenants), each guest invited into
/// both with Helpdesk Administrator and TenantAdmin: the fleet of the concurrency tests.
pub fn two_tenant_fleet(guests: &[&str]) -> String {
    let mut text = format!(
        "kind: Tenant\nname: a\nmicrosoftTenantId: {}\n---\nkind: Tenant\nname: b\nmicrosoftTenantId: {}\n",
        tenantform::synthetic::synthetic_guid(0),
        tenantform::synthetic::synthetic_guid(1)
    );
    for g in guests {
        text.push_str(&format!(
            "---\nkind: GuestUser\nname: {g}\nemail: {g}@msp.example\ntenants: [a, b]\n---\n\
             kind: RoleAssignment\nname: {g}-admin\nprincipal: {{ guest: {g} }}\n\
             directoryRoles: [Helpdesk Administrator]\nmspRoles: [TenantAdmin]\n"
        ));
    }
    text
}

/// `tenantform ARGS` in the background against `sandbox`, pausing `step_delay_ms` after each
/// applied change (so a test can act in between), its stdout and stderr piped.
pub fn spawn_slow(
    sandbox: &crate::standalone::StandaloneSandbox,
    cwd: &Path,
    args: &[&str],
    step_delay_ms: u64,
) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantform"));
    for var in HERMETIC_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(sandbox.env())
        .env(
            "TENANTFORM_TEST_APPLY_STEP_DELAY_MS",
            step_delay_ms.to_string(),
        )
        .current_dir(cwd)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (up to a minute) until `ready`, failing if `child` ends first.
pub fn wait_while_running(child: &mut std::process::Child, what: &str, ready: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "timed out waiting: {what}"
        );
        assert!(child.try_wait().unwrap().is_none(), "ended before: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `tenantform ARGS` in `cwd` against the standalone `sandbox`, with `env` on top.
pub fn run_against(
    sandbox: &crate::standalone::StandaloneSandbox,
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    Run::of(
        command()
            .envs(sandbox.env())
            .envs(env.iter().copied())
            .current_dir(cwd)
            .args(args)
            .output()
            .unwrap(),
    )
}

/// `tenantform ARGS` in `dir` against the in-process `sandbox` with only `env`'s credentials
/// (the credential tests choose every variable themselves).
pub fn tf_against(
    sandbox: &tenantform::sandbox::SandboxHandle,
    dir: &Path,
    args: &[&str],
    env: &[(String, String)],
) -> Run {
    Run::of(
        command()
            .current_dir(dir)
            .env("TENANTFORM_LOGIN_URL", sandbox.base_url())
            .env("TENANTFORM_GRAPH_URL", sandbox.graph_url())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .output()
            .unwrap(),
    )
}

/// Runs a future to completion on a runtime of its own (one thread), for tests that call the
/// async Graph client directly.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Foggy IT's Microsoft tenant id in examples/foggy-it and examples/sandbox/fixture.yaml.
pub const FOGGY_TENANT_ID: &str = "3f2a9c4e-5b61-4d7e-9a8b-0c1d2e3f4a5b";

/// A copy of examples/sandbox/fixture.yaml (Foggy IT's people, licences and Secure Score) in a
/// temporary directory of its own, outside any manifests tree: for `--sandbox-world`.
pub fn example_fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixture.yaml");
    std::fs::copy(repo_root().join("examples/sandbox/fixture.yaml"), &path).unwrap();
    (dir, path)
}
