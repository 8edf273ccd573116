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
//! minutes). With `--postgres URL` (or `TENANTFORM_BENCH_DATABASE_URL`) the state is also
//! copied into a fresh schema there (`state migrate`) and the same plan runs against it:
//! PostgreSQL state must add at most 20% to the wall time of the file backend.

mod common;

use std::time::Instant;

use tenantform::sandbox::{Faults, Fixture, SandboxHandle};
use tenantform::synthetic::{Shape, fleet_shaped};

const LATENCY_MS: u64 = 50;

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

/// Builds a fleet of `tenants` (applied once, in-process, without latency), then runs a
/// no-change `tenantform plan` against the sandbox in its own process.
fn measure(tenants: usize, parallelism: usize, postgres: Option<&str>) -> Figures {
    let latency_ms = LATENCY_MS;
    let root = tempfile::tempdir().unwrap();
    // TENANTFORM_BENCH_KEEP=DIR keeps the tree, state and world under DIR/<tenants> for
    // profiling one plan by hand (`tenantform sandbox serve --fixture DIR/N/world.json`).
    let kept = std::env::var_os("TENANTFORM_BENCH_KEEP")
        .map(|dir| std::path::PathBuf::from(dir).join(tenants.to_string()));
    let manifests = root.path().join("tree");
    let shape = Shape {
        guests_per_tenant: 20,
        roles_per_guest: 2,
        fleet_wide_guests: false,
    };
    common::write_files(&manifests, fleet_shaped(tenants, shape));
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
    let setup = Instant::now();
    let sandbox = SandboxHandle::start(&Fixture::generated(tenants, 0), Faults::default()).unwrap();
    let state_path = root.path().join("state.json");
    let report = common::apply_in_process(&manifests, &state_path, &sandbox);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let world_path = root.path().join("world.json");
    common::write_world(&sandbox, &world_path);
    drop(sandbox);
    common::release_memory();
    println!(
        "setup: {} objects created through the sandbox in {:.1} s",
        report.created,
        setup.elapsed().as_secs_f64()
    );

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
    let run = common::run_tenantform_with_env(
        &[
            "plan",
            "--detailed-exitcode",
            "--parallelism",
            &parallel,
            "--state",
            state_path.to_str().unwrap(),
            manifests.to_str().unwrap(),
        ],
        &env,
        root.path(),
    );
    let requests: serde_json::Value = runtime.block_on(async {
        reqwest::get(format!("{base}/_sandbox/requests"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    // The same plan with the state copied into PostgreSQL (after the request log is read).
    let postgres = postgres.map(|url| {
        let schema = format!("bench{}_{tenants}", std::process::id());
        let db = common::database_url(url, &schema);
        let copied = common::copy_state(&state_path, &db);
        println!(
            "state copied into PostgreSQL: {} objects in {} partitions",
            copied.objects, copied.partitions
        );
        let run = common::run_tenantform_with_env(
            &[
                "plan",
                "--detailed-exitcode",
                "--parallelism",
                &parallel,
                "--state",
                &db,
                manifests.to_str().unwrap(),
            ],
            &env,
            root.path(),
        );
        assert_eq!(run.exit_code, 0, "expected no changes:\n{}", run.stdout);
        common::drop_schema(url, &schema);
        println!(
            "no-change plan with PostgreSQL state: {:.2} s wall, {:.1} MB peak",
            run.wall_seconds,
            run.peak_rss_bytes as f64 / 1e6
        );
        (run.wall_seconds, run.peak_rss_bytes)
    });
    drop(server);
    assert_eq!(run.exit_code, 0, "expected no changes:\n{}", run.stdout);
    if let Some(kept) = kept {
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
        shape.guests_per_tenant, shape.roles_per_guest, report.created
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
