#![allow(dead_code)] // Shared by every benchmark; each uses a part.
//! Shared by the benchmarks: writing synthetic trees and measuring a child process.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Writes a synthetic fleet of `tenants`; returns (files, bytes).
pub fn write_tree(dir: &Path, tenants: usize) -> (usize, u64) {
    write_files(dir, tenantform::synthetic::fleet(tenants))
}

/// Writes generated files under `dir`; returns (files, bytes).
pub fn write_files(dir: &Path, files: Vec<tenantform::synthetic::GeneratedFile>) -> (usize, u64) {
    let mut bytes = 0;
    for f in &files {
        let path = dir.join(&f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &f.text).unwrap();
        bytes += f.text.len() as u64;
    }
    (files.len(), bytes)
}

pub struct Measured {
    pub wall_seconds: f64,
    /// CPU time the child used (user + system, wait4's rusage): on a machine with few cores a
    /// run can be CPU-bound rather than latency-bound, and this says how far.
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub exit_code: i32,
    pub stdout: String,
}

/// Runs the release binary with `args`, returning wall time and peak RSS (wait4's rusage).
pub fn run_tenantform(args: &[&str], scratch: &Path) -> Measured {
    run_tenantform_with_env(args, &[], scratch)
}

/// Like [`run_tenantform`], with extra environment variables.
pub fn run_tenantform_with_env(args: &[&str], env: &[(&str, String)], scratch: &Path) -> Measured {
    spawn_tenantform_with_env(args, env, scratch).wait()
}

/// `tenantform plan --detailed-exitcode --parallelism N --state STATE TREE`: the no-change
/// plan the live benchmarks time (exit code 0 means nothing to change; callers check it).
pub fn plan_with_env(
    parallelism: &str,
    state: &str,
    tree: &str,
    env: &[(&str, String)],
    scratch: &Path,
) -> Measured {
    run_tenantform_with_env(
        &[
            "plan",
            "--detailed-exitcode",
            "--parallelism",
            parallelism,
            "--state",
            state,
            tree,
        ],
        env,
        scratch,
    )
}

/// Sizes from the command line (`cargo bench --bench X -- 1000`), or the defaults.
pub fn sizes(defaults: &[usize]) -> Vec<usize> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        defaults.to_vec()
    } else {
        sizes
    }
}

/// What the live benchmarks take from their command line: sizes, `--users M`,
/// `--parallelism N`.
pub struct LiveArgs {
    pub sizes: Vec<usize>,
    pub users: usize,
    pub parallelism: usize,
}

/// `cargo bench --bench X -- [TENANTS...] [--users M] [--parallelism N]`, with defaults.
pub fn live_args(default_sizes: &[usize]) -> LiveArgs {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut parsed = LiveArgs {
        sizes: Vec::new(),
        users: 500,
        parallelism: 64,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--parallelism" => {
                parsed.parallelism = it.next().and_then(|n| n.parse().ok()).expect("N")
            }
            "--users" => parsed.users = it.next().and_then(|n| n.parse().ok()).expect("M"),
            _ => {
                if let Ok(n) = a.parse() {
                    parsed.sizes.push(n)
                }
            }
        }
    }
    if parsed.sizes.is_empty() {
        parsed.sizes = default_sizes.to_vec();
    }
    parsed
}

/// A synthetic fleet of `tenants` with an end-user sync each (no guests, no roles), written
/// under `tree`: what the end-user and report benchmarks plan from.
pub fn write_end_user_fleet(tree: &Path, tenants: usize) {
    let shape = tenantform::synthetic::Shape {
        guests_per_tenant: 0,
        roles_per_guest: 0,
        fleet_wide_guests: false,
        end_user_sync: true,
    };
    write_files(tree, tenantform::synthetic::fleet_shaped(tenants, shape));
}

/// Returns freed heap pages to the kernel. Call before spawning the measured binary: a child
/// starts as a copy of this process, and pages this process still holds would count in the
/// child's peak memory (`ru_maxrss`) until it execs.
pub fn release_memory() {
    // SAFETY: malloc_trim only releases free memory held by the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The standalone sandbox and its environment, shared with the integration tests.
#[path = "../../tests/it/standalone.rs"]
pub mod standalone;

/// `tenantform sandbox serve ARGS` in its own process (stderr shown); killed on drop.
pub fn serve_sandbox(args: &[&str]) -> standalone::StandaloneSandbox {
    standalone::StandaloneSandbox::serve(args, Stdio::inherit())
}

/// CPU seconds (user + system) process `pid` has used so far, from `/proc/PID/stat`: what a
/// running server (the sandbox) spent during a measured run is the difference of two readings.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces, inside parentheses): utime and
    // stime are the 12th and 13th of them, in clock ticks.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / per_second
}

/// A `tenantform` child started by [`spawn_tenantform_with_env`]; [`Running::wait`] measures
/// it. Several can run at once (each has its own output and peak-memory files).
pub struct Running {
    child: std::process::Child,
    start: Instant,
    out_path: std::path::PathBuf,
    peak_path: std::path::PathBuf,
}

/// Starts the release binary with `args` and returns at once, so several can run at once; wait for each with [`Running::wait`] (from a thread of its own to learn when
/// each one ended).
pub fn spawn_tenantform_with_env(args: &[&str], env: &[(&str, String)], scratch: &Path) -> Running {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = format!("{}-{n}", std::process::id());
    let out_path = scratch.join(format!("bench-spawned-out-{tag}.txt"));
    let peak_path = scratch.join(format!("bench-spawned-peak-{tag}.txt"));
    let out = std::fs::File::create(&out_path).unwrap();
    let start = Instant::now();
    // Reaped by Running::wait (wait4), which also reports the child's peak memory.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_tenantform"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("TENANTFORM_PEAK_MEMORY_FILE", &peak_path)
        .stdout(Stdio::from(out))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tenantform");
    Running {
        child,
        start,
        out_path,
        peak_path,
    }
}

impl Running {
    /// Waits for the child (wait4 on its pid); wall time runs from its start to its exit.
    pub fn wait(self) -> Measured {
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 fills it for our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = unsafe { libc::wait4(self.child.id() as i32, &mut status, 0, &mut usage) };
        let wall_seconds = self.start.elapsed().as_secs_f64();
        assert_eq!(pid, self.child.id() as i32, "wait4 failed");
        let stdout = std::fs::read_to_string(&self.out_path).unwrap();
        let _ = std::fs::remove_file(&self.out_path);
        // The process's own high-water mark, as in run_tenantform_with_env.
        let own_peak_kb: Option<u64> = std::fs::read_to_string(&self.peak_path)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let _ = std::fs::remove_file(&self.peak_path);
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Measured {
            wall_seconds,
            cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
            peak_rss_bytes: own_peak_kb.unwrap_or(usage.ru_maxrss as u64) * 1024,
            exit_code: if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            },
            stdout,
        }
    }
}

/// `url` with tenantform's `schema` parameter added (`?schema=NAME` or `&schema=NAME`).
pub fn database_url(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { "&" } else { "?" };
    format!("{url}{separator}schema={schema}")
}

/// Drops `schema` (CASCADE) in the database at `url` (without tenantform's `schema`
/// parameter), on a thread of its own: the `postgres` crate's blocking client must not run
/// inside a tokio runtime.
pub fn drop_schema(url: &str, schema: &str) {
    let (url, schema) = (url.to_string(), schema.to_string());
    let _ = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .unwrap();
    })
    .join();
}

/// Copies the state at `from` (a file) into the empty store at `to` (a database URL) with
/// `state migrate`'s function, verified by it.
pub fn copy_state(from: &Path, to: &str) -> tenantform::state::ops::Migrated {
    let from = tenantform::ops::settings::open_store(from).unwrap();
    let to = tenantform::ops::settings::open_store(Path::new(to)).unwrap();
    tenantform::state::ops::migrate(
        from.as_ref(),
        to.as_ref(),
        tenantform::state::LockInfo::for_command("bench"),
        std::time::Duration::ZERO,
    )
    .unwrap()
}

/// Writes the sandbox's world as a fixture (JSON) for `tenantform sandbox serve --fixture`.
pub fn write_world(sandbox: &tenantform::sandbox::SandboxHandle, path: &Path) {
    std::fs::write(
        path,
        serde_json::to_vec(&sandbox.with_world(|w| w.to_fixture())).unwrap(),
    )
    .unwrap();
}

/// Applies the manifests at `manifests` once, in-process and without latency, against the
/// in-process `sandbox`, with the state in the file `state_path`: the same pipeline
/// `tenantform apply --auto-approve` runs (parallelism 32). Panics when any change failed.
pub fn apply_in_process(
    manifests: &Path,
    state_path: &Path,
    sandbox: &tenantform::sandbox::SandboxHandle,
) -> tenantform::apply::ApplyReport {
    use tenantform::ops::apply::{Approval, PlanSource};
    use tenantform::ops::{GraphSettings, GraphTarget, ManifestSource, Selection, Settings};
    let settings = Settings {
        manifests: ManifestSource {
            path: manifests.to_path_buf(),
            reference: None,
        },
        state_path: state_path.to_path_buf(),
        graph: GraphSettings {
            target: GraphTarget::Graph(Box::new(sandbox.graph_config())),
            parallelism: 32,
            consent_redirect_uri: "https://localhost".into(),
        },
        strict: false,
        lock_timeout: std::time::Duration::ZERO,
        apply_step_delay: None,
        command_line: "bench".into(),
        actor: tenantform::state::Actor::current(),
    };
    let silent = tenantform::ops::Silent;
    let mut ws = tenantform::ops::Workspace::open(settings, &silent).unwrap();
    let run = tenantform::ops::apply::apply(
        &mut ws,
        PlanSource::Compute {
            options: tenantform::plan::PlanOptions::default(),
            selection: &Selection::default(),
            changed_since: None,
        },
        "apply",
        &mut |_| Approval::Apply,
        &std::sync::atomic::AtomicBool::new(false),
        &silent,
    )
    .unwrap();
    let report = run.report.expect("the first apply has changes");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
}
