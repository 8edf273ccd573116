//! Team state benchmark (issue 14, "State for teams: PostgreSQL"): the figures for a team that
//! keeps one state in PostgreSQL, each fleet N tenants x 20 guests x 2 directory roles, against
//! the Graph sandbox in its own process with 50 ms latency per request, always through the
//! release binary (`tenantform apply` / `tenantform plan`).
//!
//! 1. **Apply of new tenants**: `tenantform apply --auto-approve --parallelism 64` of a fleet
//!    nobody has applied yet (default 1,000 tenants: 20,000 invitations and 40,000 role
//!    assignments) with the state in a fresh PostgreSQL schema; then a `plan
//!    --detailed-exitcode` against the same state must find nothing to do (exit 0). The same
//!    apply and plan with a state file, on a fresh copy of the same sandbox world, for
//!    comparison.
//! 2. **Shards at once against one database**: a fleet (default 4,000 tenants) applied once
//!    in-process without latency, its state copied into a fresh schema (`state migrate`'s
//!    function); then (a) one unsharded no-change `tenantform plan --detailed-exitcode
//!    --parallelism 64`, and (b) four `--shard K/4` plans started at once (K = 1..4), each
//!    with `--parallelism 64`, against the same database and sandbox: the total until all four
//!    ended, and each one's wall time and peak memory. Every plan must exit 0.
//!
//! Run: `cargo bench --bench team_state -- --postgres URL [--apply-tenants N]
//! [--shard-tenants N] [--shards N] [--parallelism N]` (defaults 1000, 4000, 4, 64), or set
//! `TENANTFORM_BENCH_DATABASE_URL` instead of `--postgres`; without a database it says so and
//! exits 0. `--shard-tenants 0` measures the apply only. Each measurement uses a schema of its own (`?schema=bench<pid>_<what>`), dropped
//! afterwards. The whole run takes several minutes.
//!
//! The figures: wall seconds and peak resident memory of each `tenantform` process (its own
//! high-water mark); round trips are the sandbox's requests outside `$batch` (tokens
//! included), and a floor is round trips x 50 ms / min(parallelism, tenants), the time the
//! latency alone takes (a tenant's changes go one after another, `--parallelism` tenants at a
//! time); a no-change plan makes two round trips per tenant (a token and one `$batch`). Shards only pay off with a core (or a CI runner) each: with fewer cores than shards,
//! the shards' total mostly measures CPU contention (every shard also loads the whole tree),
//! and the output says so.

mod common;

use std::path::Path;
use std::time::Instant;

use tenantform::sandbox::{Faults, Fixture, SandboxHandle};
use tenantform::synthetic::{Shape, fleet_shaped};

const LATENCY_MS: u64 = 50;

const SHAPE: Shape = Shape {
    guests_per_tenant: 20,
    roles_per_guest: 2,
    fleet_wide_guests: false,
    end_user_sync: false,
};

struct Options {
    postgres: Option<String>,
    apply_tenants: usize,
    shard_tenants: usize,
    shards: usize,
    parallelism: usize,
}

fn options() -> Options {
    let mut o = Options {
        postgres: std::env::var("TENANTFORM_BENCH_DATABASE_URL").ok(),
        apply_tenants: 1_000,
        shard_tenants: 4_000,
        shards: 4,
        parallelism: 64,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = || -> usize {
            it.next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{a} needs a number"))
        };
        match a.as_str() {
            "--apply-tenants" => o.apply_tenants = number(),
            "--shard-tenants" => o.shard_tenants = number(),
            "--shards" => o.shards = number().max(1),
            "--parallelism" => o.parallelism = number().max(1),
            "--postgres" => o.postgres = Some(it.next().expect("--postgres URL").clone()),
            "--bench" => {} // cargo bench passes it
            other => panic!(
                "unknown argument {other:?} (known: --postgres URL, --apply-tenants N, --shard-tenants N, --shards N, --parallelism N)"
            ),
        }
    }
    o
}

fn main() {
    let o = options();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("tenantform team state benchmark (issue 14: state for teams, PostgreSQL)");
    let Some(url) = o.postgres.clone() else {
        println!(
            "this benchmark needs a PostgreSQL database: pass --postgres URL or set TENANTFORM_BENCH_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres); nothing measured"
        );
        return;
    };
    println!(
        "machine: {cores} cores; sandbox latency {LATENCY_MS} ms per request, --parallelism {}; fleets of N tenants x {} guests x {} roles",
        o.parallelism, SHAPE.guests_per_tenant, SHAPE.roles_per_guest
    );
    if cores < o.shards {
        println!(
            "note: only {cores} cores for {} shards at once: the shards share them, so their total mostly measures CPU contention, not what {} CI runners would see",
            o.shards, o.shards
        );
    }

    println!();
    println!(
        "== 1. apply of {} new tenants ==",
        thousands(o.apply_tenants)
    );
    let apply = measure_apply(o.apply_tenants, o.parallelism, &url);

    let shards = (o.shard_tenants > 0).then(|| {
        println!();
        println!(
            "== 2. {} shards of a {}-tenant no-change plan at once, one database ==",
            o.shards,
            thousands(o.shard_tenants)
        );
        // `--shard-tenants 0` measures the apply only.
        measure_shards(o.shard_tenants, o.shards, o.parallelism, &url)
    });

    println!();
    println!("== summary ({cores} cores) ==");
    println!(
        "apply of {} new tenants ({} objects):",
        thousands(o.apply_tenants),
        apply.objects
    );
    println!(
        "  {:<12} {:>9} {:>8} {:>9} {:>7} {:>9} {:>13}",
        "state", "wall s", "trips", "floor s", "ratio", "peak MB", "then plan s"
    );
    for (name, run) in [("PostgreSQL", &apply.postgres), ("file", &apply.file)] {
        println!(
            "  {:<12} {:>9.2} {:>8} {:>9.2} {:>7.2} {:>9.1} {:>13.2}",
            name,
            run.wall_seconds,
            run.round_trips,
            run.floor_seconds,
            run.wall_seconds / run.floor_seconds,
            mb(run.peak_bytes),
            run.plan_seconds
        );
    }
    println!(
        "  PostgreSQL / file: {:.2}x the wall time",
        apply.postgres.wall_seconds / apply.file.wall_seconds
    );
    let Some(shards) = shards else {
        return;
    };
    println!(
        "no-change plan of {} tenants, PostgreSQL state:",
        thousands(o.shard_tenants)
    );
    println!(
        "  {:<22} {:>9} {:>9} {:>12}",
        "", "wall s", "floor s", "peak MB"
    );
    println!(
        "  {:<22} {:>9.2} {:>9.2} {:>12.1}",
        "unsharded",
        shards.unsharded.wall_seconds,
        shards.unsharded_floor,
        mb(shards.unsharded.peak_rss_bytes)
    );
    let peak_sum: u64 = shards.each.iter().map(|m| m.peak_rss_bytes).sum();
    println!(
        "  {:<22} {:>9.2} {:>9.2} {:>12}",
        format!("{} shards at once", o.shards),
        shards.total_seconds,
        shards.shard_floor,
        format!("{:.1} sum", mb(peak_sum))
    );
    println!(
        "  {} shards at once / unsharded: {:.2}x the wall time ({} cores)",
        o.shards,
        shards.total_seconds / shards.unsharded.wall_seconds,
        cores
    );
}

/// One `tenantform apply` of a fresh fleet, then a plan against the state it wrote.
struct ApplyRun {
    wall_seconds: f64,
    peak_bytes: u64,
    round_trips: usize,
    floor_seconds: f64,
    plan_seconds: f64,
}

struct ApplyFigures {
    objects: usize,
    postgres: ApplyRun,
    file: ApplyRun,
}

fn measure_apply(tenants: usize, parallelism: usize, url: &str) -> ApplyFigures {
    let root = tempfile::tempdir().unwrap();
    let manifests = root.path().join("tree");
    common::write_files(&manifests, fleet_shaped(tenants, SHAPE));
    // The world nobody has applied to yet: the tenants, consented, without guests.
    let world = root.path().join("world.json");
    let sandbox = SandboxHandle::start(&Fixture::generated(tenants, 0), Faults::default()).unwrap();
    common::write_world(&sandbox, &world);
    drop(sandbox);
    common::release_memory();

    let schema = format!("bench{}_apply", std::process::id());
    let db = common::database_url(url, &schema);
    common::drop_schema(url, &schema); // a leftover of an interrupted run
    let postgres = apply_once(
        "PostgreSQL",
        tenants,
        &db,
        &manifests,
        &world,
        parallelism,
        root.path(),
    );
    common::drop_schema(url, &schema);
    let state_file = root.path().join("state.json");
    let file = apply_once(
        "file",
        tenants,
        state_file.to_str().unwrap(),
        &manifests,
        &world,
        parallelism,
        root.path(),
    );
    ApplyFigures {
        objects: postgres.1,
        postgres: postgres.0,
        file: file.0,
    }
}

/// `tenantform apply` of `manifests` on a fresh sandbox process serving `world`, with the
/// state at `state` (a database URL or a file), then a no-change plan against it. Returns the
/// figures and the objects the plan found in place.
fn apply_once(
    name: &str,
    tenants: usize,
    state: &str,
    manifests: &Path,
    world: &Path,
    parallelism: usize,
    scratch: &Path,
) -> (ApplyRun, usize) {
    let latency = format!("latency={LATENCY_MS}ms");
    let server =
        common::serve_sandbox(&["--fixture", world.to_str().unwrap(), "--faults", &latency]);
    let env = server.env();
    let parallel = parallelism.to_string();
    let tree = manifests.to_str().unwrap();
    let run = common::run_tenantform_with_env(
        &[
            "apply",
            "--auto-approve",
            "--parallelism",
            &parallel,
            "--state",
            state,
            tree,
        ],
        &env,
        scratch,
    );
    assert_eq!(
        run.exit_code,
        0,
        "apply with {name} state failed:\n{}",
        tail(&run.stdout)
    );
    let round_trips = round_trips(&server.requests());
    let floor_seconds = floor(round_trips as f64, tenants, parallelism);
    println!(
        "apply, {name} state: {:.2} s wall, {:.1} MB peak; {round_trips} round trips (floor {floor_seconds:.2} s, ratio {:.2})",
        run.wall_seconds,
        mb(run.peak_rss_bytes),
        run.wall_seconds / floor_seconds
    );
    common::release_memory();
    let plan = common::plan_with_env(&parallel, state, tree, &env, scratch);
    assert_eq!(
        plan.exit_code,
        0,
        "the plan after the apply ({name} state) is not converged:\n{}",
        tail(&plan.stdout)
    );
    let objects = unchanged_objects(&plan.stdout);
    println!(
        "plan after it, {name} state: exit 0 (converged, {} objects in place), {:.2} s wall, {:.1} MB peak",
        objects.map_or("?".into(), |n| n.to_string()),
        plan.wall_seconds,
        mb(plan.peak_rss_bytes)
    );
    drop(server);
    (
        ApplyRun {
            wall_seconds: run.wall_seconds,
            peak_bytes: run.peak_rss_bytes,
            round_trips,
            floor_seconds,
            plan_seconds: plan.wall_seconds,
        },
        objects.unwrap_or(0),
    )
}

struct ShardFigures {
    unsharded: common::Measured,
    unsharded_floor: f64,
    /// From the first shard's start until the last one ended.
    total_seconds: f64,
    shard_floor: f64,
    each: Vec<common::Measured>,
}

fn measure_shards(tenants: usize, shards: usize, parallelism: usize, url: &str) -> ShardFigures {
    let root = tempfile::tempdir().unwrap();
    let manifests = root.path().join("tree");
    common::write_files(&manifests, fleet_shaped(tenants, SHAPE));

    // The world and the state: one apply, in-process, without latency, then the state copied
    // into a fresh schema.
    let setup = Instant::now();
    let sandbox = SandboxHandle::start(&Fixture::generated(tenants, 0), Faults::default()).unwrap();
    let state_path = root.path().join("state.json");
    let report = common::apply_in_process(&manifests, &state_path, &sandbox);
    let world = root.path().join("world.json");
    common::write_world(&sandbox, &world);
    drop(sandbox);
    let schema = format!("bench{}_shards", std::process::id());
    let db = common::database_url(url, &schema);
    common::drop_schema(url, &schema);
    let copied = common::copy_state(&state_path, &db);
    common::release_memory();
    println!(
        "setup: {} objects created through the sandbox, state copied into PostgreSQL ({} objects in {} partitions) in {:.1} s",
        report.created,
        copied.objects,
        copied.partitions,
        setup.elapsed().as_secs_f64()
    );

    let latency = format!("latency={LATENCY_MS}ms");
    let server =
        common::serve_sandbox(&["--fixture", world.to_str().unwrap(), "--faults", &latency]);
    let env = server.env();
    let parallel = parallelism.to_string();
    let tree = manifests.to_str().unwrap();
    // A no-change plan: a token and one `$batch` per tenant.
    let plan_floor = |tenants: usize| floor(2.0 * tenants as f64, tenants, parallelism);

    // (a) One plan for the whole fleet.
    let unsharded = common::run_tenantform_with_env(
        &[
            "plan",
            "--detailed-exitcode",
            "--parallelism",
            &parallel,
            "--state",
            &db,
            tree,
        ],
        &env,
        root.path(),
    );
    assert_eq!(
        unsharded.exit_code,
        0,
        "expected no changes (unsharded):\n{}",
        tail(&unsharded.stdout)
    );
    let unsharded_floor = plan_floor(tenants);
    let all_objects = unchanged_objects(&unsharded.stdout);
    println!(
        "(a) unsharded plan: exit 0, {:.2} s wall (floor {unsharded_floor:.2} s), {:.1} MB peak, {} objects",
        unsharded.wall_seconds,
        mb(unsharded.peak_rss_bytes),
        all_objects.map_or("?".into(), |n| n.to_string())
    );

    // (b) The shards, all started at once; each waited for on a thread of its own, so each
    // one's wall time ends when it does.
    common::release_memory();
    let shard_args: Vec<String> = (1..=shards).map(|k| format!("{k}/{shards}")).collect();
    let start = Instant::now();
    let running: Vec<common::Running> = shard_args
        .iter()
        .map(|shard| {
            common::spawn_tenantform_with_env(
                &[
                    "plan",
                    "--detailed-exitcode",
                    "--parallelism",
                    &parallel,
                    "--shard",
                    shard,
                    "--state",
                    &db,
                    tree,
                ],
                &env,
                root.path(),
            )
        })
        .collect();
    let each: Vec<common::Measured> = std::thread::scope(|s| {
        let waits: Vec<_> = running
            .into_iter()
            .map(|r| s.spawn(move || r.wait()))
            .collect();
        waits.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let total_seconds = start.elapsed().as_secs_f64();
    drop(server);
    common::drop_schema(url, &schema);

    let shard_floor = plan_floor(tenants.div_ceil(shards));
    println!(
        "(b) {shards} shards at once: all ended after {total_seconds:.2} s (floor {shard_floor:.2} s per shard)"
    );
    let mut shard_objects = Some(0);
    for (shard, m) in shard_args.iter().zip(&each) {
        assert_eq!(
            m.exit_code,
            0,
            "expected no changes (shard {shard}):\n{}",
            tail(&m.stdout)
        );
        let objects = unchanged_objects(&m.stdout);
        shard_objects = shard_objects.zip(objects).map(|(a, b)| a + b);
        println!(
            "    shard {shard}: exit 0, {:.2} s wall, {:.1} MB peak, {} objects",
            m.wall_seconds,
            mb(m.peak_rss_bytes),
            objects.map_or("?".into(), |n| n.to_string())
        );
    }
    if let (Some(all), Some(sum)) = (all_objects, shard_objects) {
        println!(
            "    the shards' objects add up to the unsharded plan's: {}",
            if all == sum {
                format!("yes ({sum})")
            } else {
                format!("NO ({sum} vs {all})")
            }
        );
    }
    ShardFigures {
        unsharded,
        unsharded_floor,
        total_seconds,
        shard_floor,
        each,
    }
}

/// The time `round_trips` take at 50 ms each, spread over `tenants`, `parallelism` at a time
/// (one tenant's requests go one after another).
fn floor(round_trips: f64, tenants: usize, parallelism: usize) -> f64 {
    round_trips * LATENCY_MS as f64 / 1000.0 / parallelism.min(tenants).max(1) as f64
}

/// The sandbox's requests outside `$batch` (token requests included): the round trips.
fn round_trips(log: &[serde_json::Value]) -> usize {
    log.iter().filter(|r| r["inBatch"] != true).count()
}

/// N of "No changes. State matches the manifests (N objects)." in a plan's text.
fn unchanged_objects(plan: &str) -> Option<usize> {
    let rest = plan.split("State matches the manifests (").nth(1)?;
    rest.split(' ').next()?.replace(',', "").parse().ok()
}

/// The last lines of a command's output, for a failed check.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// 4000 -> "4,000".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
