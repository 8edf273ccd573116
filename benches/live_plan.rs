//! Live plan benchmark: a no-change `tenantform plan` for N tenants x 20 guests x 2 directory
//! roles against the Graph sandbox (its own process) with 50 ms latency per request. Prints,
//! per size, wall time, requests made and peak memory, and checks the targets: at most one
//! Graph request plus one token request per tenant, wall time within 2x of the floor (tenants x
//! round trips x latency / parallelism), peak memory under 600 MB, and (given two sizes or
//! more) the same peak within 20% at every size: memory grows with `--parallelism`, not with
//! the fleet.
//!
//! Run: `cargo bench --bench live_plan -- [TENANTS...] [--parallelism N] [--postgres URL]`
//! (defaults: 1000 and 10000 tenants, parallelism 64; the 10,000-tenant set-up takes several
//! minutes, and `TENANTFORM_BENCH_KEEP=DIR` keeps a fleet to measure again without it). With
//! `--postgres URL` (or `TENANTFORM_BENCH_DATABASE_URL`) the state is also copied into a fresh
//! schema there (`state migrate`) and the same plan runs against it: PostgreSQL state must add
//! at most 20% to the wall time of the file backend. Each backend plans five times, in turns
//! with the other; wall times are medians. Beside the plan's peak it prints `tenantform
//! validate`'s (the manifests alone) and the difference (what the plan adds).

mod common;

use std::time::Instant;

use tenantform::sandbox::{Faults, Fixture, SandboxHandle};
use tenantform::synthetic::{Shape, fleet_shaped};

const LATENCY_MS: u64 = 50;
/// Plans per backend: the figures are medians (a single plan on two shared cores varies by
/// 10% and more from run to run, once by 50%).
const ROUNDS: usize = 5;

/// The median wall time, the best one and the highest peak of some runs.
fn median_and_peak(runs: &[common::Measured]) -> (f64, f64, u64) {
    let mut walls: Vec<f64> = runs.iter().map(|r| r.wall_seconds).collect();
    walls.sort_by(f64::total_cmp);
    let peak = runs.iter().map(|r| r.peak_rss_bytes).max().unwrap_or(0);
    (walls[walls.len() / 2], walls[0], peak)
}

/// Each run's wall time, in the order they ran.
fn walls(runs: &[common::Measured]) -> String {
    let walls: Vec<String> = runs
        .iter()
        .map(|r| format!("{:.2}", r.wall_seconds))
        .collect();
    walls.join(" / ")
}

/// What one size measured.
struct Figures {
    tenants: usize,
    wall_seconds: f64,
    floor_seconds: f64,
    peak_bytes: u64,
    /// `tenantform validate` of the same tree: what loading the manifests alone peaks at.
    manifests_peak_bytes: u64,
    /// The same plan with the state in PostgreSQL: wall seconds and peak bytes.
    postgres: Option<(f64, u64)>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut parallelism = 64;
    let mut sizes = Vec::new();
    let mut postgres = std::env::var("TENANTFORM_BENCH_DATABASE_URL").ok();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--postgres" {
            postgres = Some(it.next().expect("--postgres URL").clone());
        } else if a == "--parallelism" {
            parallelism = it
                .next()
                .and_then(|n| n.parse().ok())
                .expect("--parallelism N");
        } else if let Ok(n) = a.parse() {
            sizes.push(n);
        }
    }
    if sizes.is_empty() {
        sizes = vec![1_000, 10_000];
    }
    println!(
        "tenantform live plan benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let figures: Vec<Figures> = sizes
        .iter()
        .map(|&n| measure(n, parallelism, postgres.as_deref()))
        .collect();
    println!();
    println!(
        "{:>8} {:>9} {:>9} {:>7} {:>9} {:>13} {:>11}",
        "tenants", "wall s", "floor s", "ratio", "peak MB", "manifests MB", "beyond MB"
    );
    for f in &figures {
        println!(
            "{:>8} {:>9.2} {:>9.2} {:>7.2} {:>9.1} {:>13.1} {:>11.1}",
            f.tenants,
            f.wall_seconds,
            f.floor_seconds,
            f.wall_seconds / f.floor_seconds,
            f.peak_bytes as f64 / 1e6,
            f.manifests_peak_bytes as f64 / 1e6,
            (f.peak_bytes as f64 - f.manifests_peak_bytes as f64) / 1e6
        );
    }
    println!(
        "(manifests MB: `tenantform validate` of the same tree, which loads and checks the whole tree; beyond MB: what the plan's peak adds to it: the state catalog, the tenants in flight, the plan kept)"
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let time_ok = figures
        .iter()
        .all(|f| f.wall_seconds <= 2.0 * f.floor_seconds);
    let memory_ok = figures.iter().all(|f| f.peak_bytes < 600_000_000);
    println!("target: wall within 2x of the floor: {}", verdict(time_ok));
    for f in &figures {
        if let Some((wall, peak)) = f.postgres {
            println!(
                "{} tenants with PostgreSQL state: {wall:.2} s wall ({:.2}x the file backend's), {:.1} MB peak; target: at most 1.2x: {}",
                f.tenants,
                wall / f.wall_seconds,
                peak as f64 / 1e6,
                verdict(wall <= 1.2 * f.wall_seconds)
            );
        }
    }
    println!("target: peak under 600 MB: {}", verdict(memory_ok));
    if figures.len() > 1 {
        let low = figures.iter().map(|f| f.peak_bytes).min().unwrap() as f64;
        let high = figures.iter().map(|f| f.peak_bytes).max().unwrap() as f64;
        println!(
            "target: the same peak within 20% at every size (largest / smallest = {:.2}): {}",
            high / low,
            verdict(high <= 1.2 * low)
        );
    }
}

/// Where a size's tree, state and world are: a temporary directory, or a kept one reused.
enum Root {
    Temporary(tempfile::TempDir),
    Reused(std::path::PathBuf),
}

impl Root {
    fn path(&self) -> &std::path::Path {
        match self {
            Root::Temporary(dir) => dir.path(),
            Root::Reused(dir) => dir,
        }
    }
}

/// Builds a fleet of `tenants` (applied once, in-process, without latency), then runs a
/// no-change `tenantform plan` against the sandbox in its own process.
fn measure(tenants: usize, parallelism: usize, postgres: Option<&str>) -> Figures {
    let latency_ms = LATENCY_MS;
    // TENANTFORM_BENCH_KEEP=DIR keeps the tree, state and world under DIR/<tenants> for
    // profiling one plan by hand (`tenantform sandbox serve --fixture DIR/N/world.json`), and
    // measures a fleet already kept there again without building it (the 10,000-tenant
    // set-up takes about 25 minutes here; the plans, about 5).
    let kept = std::env::var_os("TENANTFORM_BENCH_KEEP")
        .map(|dir| std::path::PathBuf::from(dir).join(tenants.to_string()));
    let reused = kept.as_ref().filter(|k| {
        ["tree", "state.json", "world.json"]
            .iter()
            .all(|f| k.join(f).exists())
    });
    let root = match reused {
        Some(kept) => Root::Reused(kept.clone()),
        None => Root::Temporary(tempfile::tempdir().unwrap()),
    };
    let manifests = root.path().join("tree");
    let shape = Shape {
        guests_per_tenant: 20,
        roles_per_guest: 2,
        fleet_wide_guests: false,
        end_user_sync: false,
    };
    if reused.is_none() {
        common::write_files(&manifests, fleet_shaped(tenants, shape));
    }
    let validated = common::run_tenantform(
        &["validate", "--output", "json", manifests.to_str().unwrap()],
        root.path(),
    );
    assert_eq!(
        validated.exit_code, 0,
        "validate failed: {}",
        validated.stdout
    );

    // Build the world and the state by applying once, in-process, without latency, through
    // the same pipeline `tenantform apply` runs.
    let state_path = root.path().join("state.json");
    let world_path = root.path().join("world.json");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let objects = tenants * (1 + 3 + shape.guests_per_tenant * (2 + shape.roles_per_guest));
    if reused.is_none() {
        let setup = Instant::now();
        let sandbox =
            SandboxHandle::start(&Fixture::generated(tenants, 0), Faults::default()).unwrap();
        let report = common::apply_in_process(&manifests, &state_path, &sandbox);
        assert_eq!(report.created, objects, "every object created once");
        common::write_world(&sandbox, &world_path);
        drop(sandbox);
        common::release_memory();
        println!(
            "setup: {} objects created through the sandbox in {:.1} s",
            report.created,
            setup.elapsed().as_secs_f64()
        );
    } else {
        println!("reused: {} (kept by an earlier run)", root.path().display());
    }

    // The sandbox, in its own process, 50 ms per request.
    let latency = &format!("latency={latency_ms}ms");
    let server = common::serve_sandbox(&[
        "--fixture",
        world_path.to_str().unwrap(),
        "--faults",
        latency,
    ]);
    let base = server.base.clone();

    let env = server.env();
    let parallel = parallelism.to_string();
    let plan_with = |state: &str| {
        let run = common::plan_with_env(
            &parallel,
            state,
            manifests.to_str().unwrap(),
            &env,
            root.path(),
        );
        assert_eq!(run.exit_code, 0, "expected no changes:\n{}", run.stdout);
        run
    };
    let file_state = state_path.to_str().unwrap();
    let first = plan_with(file_state);
    // The request log covers the first plan only.
    let requests: serde_json::Value = runtime.block_on(async {
        reqwest::get(format!("{base}/_sandbox/requests"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    // The state copied into PostgreSQL (after the request log is read), then both backends
    // planned in turns, ROUNDS times each, so a slow moment of the machine falls on both.
    let postgres_db = postgres.map(|url| {
        let schema = format!("bench{}_{tenants}", std::process::id());
        let db = common::database_url(url, &schema);
        let copied = common::copy_state(&state_path, &db);
        println!(
            "state copied into PostgreSQL: {} objects in {} partitions",
            copied.objects, copied.partitions
        );
        (url, schema, db)
    });
    let mut file_runs = vec![first];
    let mut postgres_runs = Vec::new();
    for round in 0..ROUNDS {
        if round > 0 {
            file_runs.push(plan_with(file_state));
        }
        if let Some((_, _, db)) = &postgres_db {
            postgres_runs.push(plan_with(db));
        }
    }
    if let Some((url, schema, _)) = &postgres_db {
        common::drop_schema(url, schema);
    }
    let (wall, best, peak) = median_and_peak(&file_runs);
    println!(
        "no-change plans, file state: {} s wall (median {wall:.2} s, best {best:.2} s), peak {:.1} MB",
        walls(&file_runs),
        peak as f64 / 1e6
    );
    let postgres = (!postgres_runs.is_empty()).then(|| {
        let (wall, best_postgres, peak) = median_and_peak(&postgres_runs);
        println!(
            "no-change plans, PostgreSQL state: {} s wall (median {wall:.2} s, best {best_postgres:.2} s: {:.2}x the file backend's best), peak {:.1} MB",
            walls(&postgres_runs),
            best_postgres / best,
            peak as f64 / 1e6
        );
        (wall, peak)
    });
    let run = common::Measured {
        wall_seconds: wall,
        cpu_seconds: 0.0,
        peak_rss_bytes: peak,
        exit_code: 0,
        stdout: String::new(),
    };
    drop(server);
    assert_eq!(run.exit_code, 0, "expected no changes:\n{}", run.stdout);
    if let (Some(kept), Root::Temporary(root)) = (kept, root) {
        let _ = std::fs::remove_dir_all(&kept);
        std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
        let from = root.keep();
        if std::fs::rename(&from, &kept).is_err() {
            println!("kept: {}", from.display());
        } else {
            println!("kept: {}", kept.display());
        }
    }

    let log = requests.as_array().unwrap();
    let tokens = log
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/oauth2/v2.0/token"))
        .count();
    let graph = log
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/v1.0") && r["inBatch"] == false)
        .count();
    let round_trips_per_tenant = 2.0; // token + one $batch
    // The floor: every tenant's round trips, `parallelism` at a time, and nothing else.
    let ideal =
        tenants as f64 * round_trips_per_tenant * latency_ms as f64 / 1000.0 / parallelism as f64;
    println!(
        "fleet: {tenants} tenants x {} guests x {} roles ({} state objects), sandbox latency {latency_ms} ms, --parallelism {parallelism}",
        shape.guests_per_tenant, shape.roles_per_guest, objects
    );
    println!(
        "no-change plan: {:.2} s wall, {:.1} MB peak; requests: {graph} Graph ({:.2}/tenant) + {tokens} token ({:.2}/tenant)",
        run.wall_seconds,
        run.peak_rss_bytes as f64 / 1e6,
        graph as f64 / tenants as f64,
        tokens as f64 / tenants as f64
    );
    println!(
        "floor (tenants x round trips x latency / parallelism): {ideal:.2} s; ratio {:.2}",
        run.wall_seconds / ideal
    );
    let requests_ok = graph <= tenants && tokens <= tenants;
    println!(
        "target: <= 1 Graph + 1 token request per tenant: {}",
        if requests_ok { "met" } else { "MISSED" }
    );
    Figures {
        tenants,
        wall_seconds: run.wall_seconds,
        floor_seconds: ideal,
        peak_bytes: run.peak_rss_bytes,
        manifests_peak_bytes: validated.peak_rss_bytes,
        postgres,
    }
}
