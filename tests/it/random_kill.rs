//! The random-kill test: `apply` killed at random points under Graph faults, many times.
//!
//! The promise under test: after `apply` exits 0, a `plan` of the same manifests has nothing
//! to do (pending invitations aside); and however an apply ends (exit 0, exit 1, SIGKILL,
//! SIGTERM, SIGINT), Entra never holds a guest or a role assignment twice, state never holds
//! an MSP role whose guest it does not know, state loads, and no stale lock is left.
//!
//! One standalone sandbox (`tenantform sandbox serve`, 30 tenants) serves every run. Each run
//! is `tenantform apply` as a child process under the fault mix (10% 429, 5% 5xx, 1% dropped
//! connections, 1 s replication delay), with its own fault seed, signalled after a random delay
//! or left to finish. After each run, with faults off (so a check never flakes), the
//! invariants are checked. Runs are grouped in epochs: an epoch starts from an empty sandbox
//! directory and a new state file, so most kills land while guests and roles are being written
//! (a converged fleet gives an apply nothing to do); it ends once a plan is empty, or after
//! a few runs, with an apply without faults that must converge.
//!
//! Bounded: about `TENANTFORM_RANDOM_KILL_SECS` (default 150) seconds of runs, at least
//! `MIN_RUNS`, never longer than `HARD_LIMIT`. Seeded: `TENANTFORM_RANDOM_KILL_SEED` replays
//! the same kill points (as fractions of a full apply, which the first run measures), signals
//! and fault seeds, though not the threads' timing; without it the seed comes from the clock,
//! and it is printed. Run with `--nocapture` to see each run and the figures:
//!
//! ```sh
//! cargo test --test it random_kill -- --nocapture
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tenantform::state::StateStore;
use tenantform::state::file::FileStateStore;

use crate::support::{HERMETIC_VARS, StandaloneSandbox, binary, write_fleet};

const TENANTS: usize = 30;
/// The issue's fault mix; the seed is set per run.
const FAULTS: &str = "throttle=0.1,5xx=0.05,drop=0.01,replication=1s";
const PARALLELISM: &str = "8";
const DEFAULT_BUDGET_SECS: u64 = 150;
const MIN_RUNS: usize = 20;
/// No new run starts after this, whatever `MIN_RUNS` says.
const HARD_LIMIT: Duration = Duration::from_secs(300);
/// Runs under faults per epoch before it is closed with an apply without faults.
const EPOCH_RUNS: usize = 6;
/// An apply nobody kills must end within this (it is killed and reported otherwise).
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
/// Share of runs left to finish on their own.
const UNKILLED: f64 = 0.2;

/// splitmix64, for kill delays, signals and fault seeds.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, Debug)]
enum Kill {
    None,
    Signal(i32, Duration),
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "signal",
    }
}

/// How one child process ended.
struct Ended {
    status: ExitStatus,
    /// A signal was sent while it was still running.
    signalled: bool,
    /// It ran past [`RUN_TIMEOUT`] and was killed for it.
    timed_out: bool,
    elapsed: Duration,
    stdout: String,
    stderr: String,
}

impl Ended {
    fn describe_status(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by {}", signal_name(signal)),
            _ => format!("{:?}", self.status),
        }
    }

    /// The lines of its output worth reading in a failure report.
    fn relevant_lines(&self, limit: usize) -> String {
        let keep = |l: &&str| {
            let lower = l.to_lowercase();
            [
                "failed",
                "not planned",
                "error",
                "recovered",
                "apply complete",
                "plan:",
            ]
            .iter()
            .any(|w| lower.contains(w))
        };
        // stderr first: it has what happened before the plan (a recovered journal).
        let mut lines: Vec<String> = self
            .stderr
            .lines()
            .filter(keep)
            .map(|l| format!("      err| {l}"))
            .chain(
                self.stdout
                    .lines()
                    .filter(keep)
                    .map(|l| format!("      out| {l}")),
            )
            .collect();
        let more = lines.len().saturating_sub(limit);
        lines.truncate(limit);
        let mut out = lines.join("\n");
        if more > 0 {
            out.push_str(&format!("\n         ... and {more} more such lines"));
        }
        if out.is_empty() {
            out = "         (no error lines in its output)".into();
        }
        out
    }
}

/// The binary under test, linked (or copied) into `dir`: the test runs for minutes, and a
/// rebuild meanwhile (another `cargo build`) must not change the program halfway through.
fn pin_binary(dir: &Path) -> PathBuf {
    let path = dir.join("tenantform");
    if std::fs::hard_link(binary(), &path).is_err() {
        std::fs::copy(binary(), &path).unwrap();
    }
    path
}

/// Runs `tenantform ARGS` against the sandbox; signals it as `kill` says.
fn run_tenantform(
    bin: &Path,
    env: &[(&'static str, String)],
    args: &[&str],
    kill: Kill,
    log: &Path,
) -> Ended {
    let out_path = log.with_extension("out");
    let err_path = log.with_extension("err");
    let mut cmd = Command::new(bin);
    for var in HERMETIC_VARS {
        cmd.env_remove(var);
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        // Files, not pipes: a full apply prints hundreds of kilobytes.
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("tenantform starts");
    let mut signalled = false;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let elapsed = started.elapsed();
        let send = match kill {
            Kill::Signal(signal, after) if elapsed >= after => Some(signal),
            _ if elapsed >= RUN_TIMEOUT => {
                timed_out = true;
                Some(libc::SIGKILL)
            }
            _ => None,
        };
        if let Some(signal) = send {
            // Not waited for yet, so the pid is still this child's (at worst a zombie).
            // SAFETY: kill(2) with a pid we own and a valid signal number.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
            signalled = true;
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ended {
        status,
        signalled,
        timed_out,
        elapsed: started.elapsed(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// What the sandbox holds, read through Graph.
struct Directory {
    /// Object ids of its users.
    user_ids: BTreeSet<String>,
    /// `mail` (lowercase) -> object ids.
    mails: BTreeMap<String, Vec<String>>,
    /// (principalId, roleDefinitionId, directoryScopeId) -> assignment ids.
    assignments: BTreeMap<(String, String, String), Vec<String>>,
}

/// What one check found.
#[derive(Default)]
struct Found {
    /// `plan --detailed-exitcode` exit code, when it ran.
    plan_code: Option<i32>,
    /// Changing actions of the plan: `op address (reason)`.
    changes: Vec<String>,
    /// Tenants the plan could not read, with why.
    not_read: Vec<String>,
    /// (what is duplicated, details): the key stays the same while the details may grow.
    duplicate_guests: Vec<(String, String)>,
    duplicate_roles: Vec<(String, String)>,
    /// (MSP role address, what is wrong with its guest).
    orphans: Vec<(String, String)>,
    state_error: Option<String>,
    lock_error: Option<String>,
    /// The check itself could not be made (plan failed, Graph read failed).
    check_error: Option<String>,
}

impl Found {
    fn converged(&self) -> bool {
        self.plan_code == Some(0)
            && self.changes.is_empty()
            && self.not_read.is_empty()
            && self.check_error.is_none()
    }
}

#[derive(Default)]
struct Figures {
    runs: usize,
    killed: usize,
    /// Runs that ended on their own, by exit code.
    finished: BTreeMap<i32, usize>,
    false_successes: usize,
    duplicate_guests: BTreeSet<String>,
    duplicate_roles: BTreeSet<String>,
    orphans: BTreeSet<String>,
    state_load_failures: usize,
    stale_locks: usize,
    hung: usize,
    failed_checks: usize,
    epochs: usize,
    converged_epochs: usize,
    /// Every violation, in full.
    violations: Vec<String>,
}

struct Harness {
    sandbox: StandaloneSandbox,
    bin: PathBuf,
    env: Vec<(&'static str, String)>,
    manifests: PathBuf,
    work: PathBuf,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    graph: tenantform::graph::GraphClient,
    /// (tenant name, Microsoft tenant id) of the fleet.
    tenants: Vec<(String, String)>,
}

impl Harness {
    fn put_faults(&self, faults: &tenantform::sandbox::Faults) {
        let url = format!("{}/_sandbox/faults", self.sandbox.base);
        self.rt.block_on(async {
            self.http
                .put(&url)
                .json(faults)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .expect("the sandbox takes new faults");
        });
    }

    fn faults_on(&self, seed: u64) {
        let mut faults = tenantform::sandbox::Faults::parse(FAULTS).unwrap();
        faults.seed = seed;
        self.put_faults(&faults);
    }

    fn faults_off(&self) {
        self.put_faults(&tenantform::sandbox::Faults::default());
    }

    fn directory(&self, tenant_id: &str) -> Result<Directory, String> {
        self.rt.block_on(async {
            let users = self
                .graph
                .get_all(tenant_id, "/users?$select=id,mail")
                .await
                .map_err(|e| format!("reading users of {tenant_id}: {e}"))?;
            let roles = self
                .graph
                .get_all(tenant_id, "/roleManagement/directory/roleAssignments")
                .await
                .map_err(|e| format!("reading role assignments of {tenant_id}: {e}"))?;
            let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
            let mut dir = Directory {
                user_ids: BTreeSet::new(),
                mails: BTreeMap::new(),
                assignments: BTreeMap::new(),
            };
            for u in &users {
                dir.user_ids.insert(text(u, "id"));
                if let Some(mail) = u["mail"].as_str() {
                    dir.mails
                        .entry(mail.to_lowercase())
                        .or_default()
                        .push(text(u, "id"));
                }
            }
            for r in &roles {
                let scope = r["directoryScopeId"].as_str().unwrap_or("/").to_string();
                dir.assignments
                    .entry((text(r, "principalId"), text(r, "roleDefinitionId"), scope))
                    .or_default()
                    .push(text(r, "id"));
            }
            Ok(dir)
        })
    }

    /// Deletes every user (and with them their role assignments) in every tenant.
    fn wipe(&self) {
        for (_, tid) in &self.tenants {
            let dir = self.directory(tid).expect("read before wiping");
            for id in dir.user_ids {
                let url = format!("{}/_sandbox/tenants/{tid}/users/{id}", self.sandbox.base);
                self.rt.block_on(async {
                    self.http
                        .delete(&url)
                        .send()
                        .await
                        .and_then(reqwest::Response::error_for_status)
                        .expect("the sandbox deletes a user");
                });
            }
        }
    }

    fn apply_args<'a>(&self, state: &'a str) -> Vec<&'a str> {
        vec![
            "apply",
            "--auto-approve",
            "--parallelism",
            PARALLELISM,
            "--state",
            state,
        ]
    }

    /// Checks every invariant, with faults off (a check must not flake).
    fn check(&self, state_path: &Path, log: &Path) -> Found {
        self.faults_off();
        let mut found = Found::default();
        let store = FileStateStore::new(state_path);
        // No stale lock: a new writer gets the lock at once.
        match store.lock(
            tenantform::state::LockInfo::for_command("random-kill check"),
            Duration::ZERO,
        ) {
            Ok(lock) => drop(lock),
            Err(e) => found.lock_error = Some(e.to_string()),
        }
        let state = match store.load() {
            Ok(state) => Some(state),
            Err(e) => {
                found.state_error = Some(e.to_string());
                None
            }
        };

        let state_arg = state_path.to_str().unwrap();
        let manifests = self.manifests.to_str().unwrap();
        let plan = run_tenantform(
            &self.bin,
            &self.env,
            &[
                "plan",
                "--detailed-exitcode",
                "--output",
                "json",
                "--parallelism",
                PARALLELISM,
                "--state",
                state_arg,
                manifests,
            ],
            Kill::None,
            log,
        );
        found.plan_code = plan.status.code();
        match serde_json::from_str::<Value>(&plan.stdout) {
            Ok(p) if matches!(found.plan_code, Some(0 | 2)) => {
                for a in p["actions"].as_array().into_iter().flatten() {
                    if a["op"] != "no-op" {
                        found.changes.push(format!(
                            "{} {} ({}{})",
                            a["op"].as_str().unwrap_or("?"),
                            a["address"].as_str().unwrap_or("?"),
                            a["reason"].as_str().unwrap_or(""),
                            a["blocked"]
                                .as_str()
                                .map(|b| format!("; blocked: {b}"))
                                .unwrap_or_default(),
                        ));
                    }
                }
                for t in p["notRead"].as_array().into_iter().flatten() {
                    found.not_read.push(format!(
                        "{}: {} {}",
                        t["tenant"].as_str().unwrap_or("?"),
                        t["status"].as_str().unwrap_or("?"),
                        t["message"].as_str().unwrap_or(""),
                    ));
                }
                if found.plan_code == Some(2) && found.changes.is_empty() {
                    found.check_error = Some("plan exited 2 but lists no changing action".into());
                }
            }
            _ => {
                found.check_error = Some(format!(
                    "plan without faults: {}\n{}",
                    plan.describe_status(),
                    plan.relevant_lines(10)
                ));
            }
        }

        // What Entra holds.
        let mut directories: BTreeMap<&str, Directory> = BTreeMap::new();
        for (name, tid) in &self.tenants {
            match self.directory(tid) {
                Ok(dir) => {
                    directories.insert(name.as_str(), dir);
                }
                Err(e) => {
                    found.check_error.get_or_insert(e);
                }
            }
        }
        for (name, dir) in &directories {
            for (mail, ids) in dir.mails.iter().filter(|(_, ids)| ids.len() > 1) {
                found.duplicate_guests.push((
                    format!("{name}: {mail}"),
                    format!("{name}: {mail} is {} users {ids:?}", ids.len()),
                ));
            }
            for ((principal, role, scope), ids) in
                dir.assignments.iter().filter(|(_, ids)| ids.len() > 1)
            {
                let key = format!("{name}: principal {principal} role {role} scope {scope}");
                let detail = format!("{key} assigned {} times {ids:?}", ids.len());
                found.duplicate_roles.push((key, detail));
            }
        }

        // Every MSP role of a guest has its guest: in state with an object id, and in Entra.
        for (address, object) in state.iter().flat_map(|s| s.objects_of_kind("msp_role")) {
            let attr = |k: &str| object.attributes.get(k).and_then(Value::as_str);
            let Some(guest) = attr("principal").and_then(|p| p.strip_prefix("guest:")) else {
                continue;
            };
            let tenant = attr("tenant").unwrap_or("?");
            let guest_address = format!("guest.{tenant}.{guest}");
            let stored = state.as_ref().expect("iterating it");
            let problem = match stored.objects.get(&guest_address) {
                None => Some(format!("{guest_address} is not in state")),
                Some(g) => match g.ids.get("objectId") {
                    None => Some(format!(
                        "{guest_address} has no objectId in state (ids: {})",
                        g.ids
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    Some(id) => match directories.get(tenant) {
                        Some(dir) if !dir.user_ids.contains(id) => Some(format!(
                            "{guest_address} is object {id}, which is not a user of the tenant"
                        )),
                        _ => None,
                    },
                },
            };
            if let Some(problem) = problem {
                found.orphans.push((address.clone(), problem));
            }
        }
        found
    }
}

fn budget() -> Duration {
    Duration::from_secs(
        std::env::var("TENANTFORM_RANDOM_KILL_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_BUDGET_SECS),
    )
}

fn base_seed() -> u64 {
    std::env::var("TENANTFORM_RANDOM_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64
                % 1_000_000
        })
}

/// Records what a check found against the run it followed; true when the fleet converged.
fn record(figures: &mut Figures, epoch: usize, what: &str, ran: &Ended, found: &Found) -> bool {
    let mut problems: Vec<String> = Vec::new();
    let exited_zero = ran.status.code() == Some(0);
    if exited_zero && (!found.changes.is_empty() || found.plan_code == Some(2)) {
        figures.false_successes += 1;
        let mut shown: Vec<String> = found.changes.iter().take(12).cloned().collect();
        if found.changes.len() > 12 {
            shown.push(format!("... and {} more", found.changes.len() - 12));
        }
        problems.push(format!(
            "FALSE SUCCESS: apply exited 0, but a plan without faults has {} changes:\n        {}",
            found.changes.len(),
            shown.join("\n        ")
        ));
    }
    // Counted once per epoch each: they stay in the sandbox (or state) until repaired.
    for (key, detail) in &found.duplicate_guests {
        if figures
            .duplicate_guests
            .insert(format!("epoch {epoch}: {key}"))
        {
            problems.push(format!("DUPLICATE GUEST: {detail}"));
        }
    }
    for (key, detail) in &found.duplicate_roles {
        if figures
            .duplicate_roles
            .insert(format!("epoch {epoch}: {key}"))
        {
            problems.push(format!("DUPLICATE ROLE ASSIGNMENT: {detail}"));
        }
    }
    for (address, problem) in &found.orphans {
        if figures.orphans.insert(format!("epoch {epoch}: {address}")) {
            problems.push(format!("ORPHAN MSP ROLE: {address}: {problem}"));
        }
    }
    if let Some(e) = &found.state_error {
        figures.state_load_failures += 1;
        problems.push(format!("STATE DOES NOT LOAD: {e}"));
    }
    if let Some(e) = &found.lock_error {
        figures.stale_locks += 1;
        problems.push(format!("STALE LOCK: {e}"));
    }
    if ran.timed_out {
        figures.hung += 1;
        problems.push(format!(
            "HUNG: still running after {} s, killed",
            RUN_TIMEOUT.as_secs()
        ));
    }
    if let Some(e) = &found.check_error {
        figures.failed_checks += 1;
        problems.push(format!("CHECK FAILED: {e}"));
    } else if !found.not_read.is_empty() {
        figures.failed_checks += 1;
        problems.push(format!(
            "CHECK FAILED: a plan without faults could not read {:?}",
            found.not_read
        ));
    }
    if !problems.is_empty() {
        let text = format!(
            "{what}: {} after {:.2} s\n    {}\n    its output:\n{}",
            ran.describe_status(),
            ran.elapsed.as_secs_f64(),
            problems.join("\n    "),
            ran.relevant_lines(14)
        );
        eprintln!("random-kill: {text}");
        figures.violations.push(text);
    }
    found.converged()
}

#[test]
fn apply_killed_at_random_points_under_faults_keeps_its_promises() {
    let seed = base_seed();
    let budget = budget();
    let started = Instant::now();
    let sandbox = StandaloneSandbox::start(TENANTS);
    let manifests = tempfile::tempdir().unwrap();
    write_fleet(manifests.path(), TENANTS);
    let work = tempfile::tempdir().unwrap();
    let h = Harness {
        bin: pin_binary(work.path()),
        env: sandbox.env(),
        graph: sandbox.graph_client(),
        sandbox,
        manifests: manifests.path().to_path_buf(),
        work: work.path().to_path_buf(),
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        http: reqwest::Client::new(),
        tenants: (0..TENANTS)
            .map(|i| {
                (
                    tenantform::synthetic::tenant_name(i),
                    tenantform::synthetic::synthetic_guid(i as u64),
                )
            })
            .collect(),
    };
    eprintln!(
        "random-kill: seed {seed} (TENANTFORM_RANDOM_KILL_SEED={seed} repeats it), budget {} s, {TENANTS} tenants, faults {FAULTS}",
        budget.as_secs()
    );
    let mut rng = Rng(seed);
    let mut figures = Figures::default();
    // How long an apply of the whole fleet takes: measured by the first run, never killed.
    let mut full_apply: Option<Duration> = None;
    let manifests_arg = h.manifests.to_str().unwrap().to_string();

    let out_of_time = |figures: &Figures| {
        let elapsed = started.elapsed();
        elapsed >= HARD_LIMIT || (elapsed >= budget && figures.runs >= MIN_RUNS)
    };
    while !out_of_time(&figures) {
        let epoch = figures.epochs;
        figures.epochs += 1;
        h.faults_off();
        h.wipe();
        let dir = h.work.join(format!("epoch-{epoch:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        let state_path = dir.join("state.json");
        let state_arg = state_path.to_str().unwrap().to_string();
        let mut converged = false;
        for in_epoch in 0..EPOCH_RUNS {
            if out_of_time(&figures) {
                break;
            }
            let run = figures.runs;
            figures.runs += 1;
            let fault_seed = rng.next_u64() % 1_000_000_007;
            let kill = match full_apply {
                None => Kill::None,
                Some(_) if rng.next_f64() < UNKILLED => Kill::None,
                Some(full) => {
                    let after = full.mul_f64(1.1 * rng.next_f64());
                    let r = rng.next_f64();
                    let signal = if r < 0.6 {
                        libc::SIGKILL
                    } else if r < 0.8 {
                        libc::SIGTERM
                    } else {
                        libc::SIGINT
                    };
                    Kill::Signal(signal, after)
                }
            };
            let planned_kill = match kill {
                Kill::None => "not killed".to_string(),
                Kill::Signal(s, after) => {
                    format!("{} at {:.2} s", signal_name(s), after.as_secs_f64())
                }
            };
            let what = format!(
                "run {run} (epoch {epoch} run {in_epoch}, seed {seed}, fault seed {fault_seed}, {planned_kill})"
            );
            h.faults_on(fault_seed);
            let mut args = h.apply_args(&state_arg);
            args.push(&manifests_arg);
            let ran = run_tenantform(
                &h.bin,
                &h.env,
                &args,
                kill,
                &dir.join(format!("run-{run:03}")),
            );
            if ran.timed_out {
                // Counted as hung when recorded.
            } else if ran.signalled {
                figures.killed += 1;
            } else {
                *figures
                    .finished
                    .entry(ran.status.code().unwrap_or(-1))
                    .or_default() += 1;
                if full_apply.is_none() {
                    full_apply = Some(ran.elapsed);
                }
            }
            let found = h.check(&state_path, &dir.join(format!("run-{run:03}-plan")));
            let before = figures.violations.len();
            converged = record(&mut figures, epoch, &what, &ran, &found);
            eprintln!(
                "random-kill: run {run} (epoch {epoch}.{in_epoch}, {planned_kill}): {} after {:.2} s, {} tenants not planned; then a plan has {} changes{}",
                ran.describe_status(),
                ran.elapsed.as_secs_f64(),
                ran.stdout.matches("Not planned: ").count(),
                found.changes.len(),
                if figures.violations.len() > before {
                    " -- VIOLATION, see above"
                } else {
                    ""
                }
            );
            if converged {
                break;
            }
        }
        // The fleet converges: without faults, one apply exits 0 and leaves nothing to do.
        h.faults_off();
        let mut args = h.apply_args(&state_arg);
        args.push(&manifests_arg);
        let what = format!("epoch {epoch} final apply without faults (seed {seed})");
        let ran = run_tenantform(&h.bin, &h.env, &args, Kill::None, &dir.join("final"));
        let found = h.check(&state_path, &dir.join("final-plan"));
        let final_converged = record(&mut figures, epoch, &what, &ran, &found);
        if ran.status.code() == Some(0) && final_converged {
            figures.converged_epochs += 1;
        } else {
            let text = format!(
                "{what}: NOT CONVERGED: {} (the epoch had {}converged under faults); plan exit {:?}, {} changes {:?}, not read {:?}\n{}",
                ran.describe_status(),
                if converged { "" } else { "not " },
                found.plan_code,
                found.changes.len(),
                found.changes.iter().take(8).collect::<Vec<_>>(),
                found.not_read,
                ran.relevant_lines(14)
            );
            eprintln!("random-kill: {text}");
            figures.violations.push(text);
        }
    }

    let finished: usize = figures.finished.values().sum();
    let by_code = figures
        .finished
        .iter()
        .map(|(code, n)| format!("{n} exit {code}"))
        .collect::<Vec<_>>()
        .join(", ");
    let summary = format!(
        "random-kill: {} runs, {} killed, {finished} finished ({by_code}), {} false successes, {} duplicate guests, {} duplicate role assignments, {} orphan MSP roles; {} state load failures, {} stale locks, {} hung applies, {} failed checks, {}/{} epochs converged (seed {seed}, {:.0} s{})",
        figures.runs,
        figures.killed,
        figures.false_successes,
        figures.duplicate_guests.len(),
        figures.duplicate_roles.len(),
        figures.orphans.len(),
        figures.state_load_failures,
        figures.stale_locks,
        figures.hung,
        figures.failed_checks,
        figures.converged_epochs,
        figures.epochs,
        started.elapsed().as_secs_f64(),
        if figures.runs < MIN_RUNS {
            format!(", fewer than {MIN_RUNS} runs: out of time")
        } else {
            String::new()
        }
    );
    eprintln!("{summary}");
    if !figures.violations.is_empty() {
        let _ = std::fs::remove_file(&h.bin);
        let kept = work.keep();
        eprintln!(
            "random-kill: runs' output and state kept in {}",
            kept.display()
        );
        panic!(
            "{summary}\n\n{} violations (first 10):\n\n{}",
            figures.violations.len(),
            figures
                .violations
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
}
