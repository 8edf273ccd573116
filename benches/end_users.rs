//! End-user sync benchmark: `tenantform sync` for N tenants x M users against the Graph
//! sandbox in its own process with 50 ms latency per request: the first sync (every user read
//! through users/delta, every contact created) and a no-change sync (each tenant's stored
//! delta link). Prints, per size and run, wall time against the floor, Graph and token
//! requests per tenant and peak memory, and checks the targets: wall within 2x of the floor,
//! peak under 600 MB, a no-change sync costing one users/delta request plus one per named
//! group, and (given two sizes or more) the same peak within 20% at every size: memory grows
//! with `--parallelism`, not with the fleet.
//!
//! Run: `cargo bench --bench end_users -- [TENANTS...] [--users M] [--parallelism N]`
//! (defaults: 250 and 1000 tenants, 500 users, parallelism 64). Each tenant's rules name one
//! group by display name ("Finance Approvers", left out), so the first sync looks it up.

mod common;

use std::time::Instant;

const LATENCY_MS: u64 = 50;
/// Users a users/delta page holds (the sandbox's, as Graph's: about 200).
const DELTA_PAGE: usize = 200;

struct Figures {
    tenants: usize,
    first: Run,
    quiet: Run,
}

struct Run {
    wall: f64,
    floor: f64,
    /// CPU seconds of tenantform and of the sandbox during the run: with both on the same
    /// cores, their sum over the core count is a second floor (the CPU's).
    cpu: f64,
    sandbox_cpu: f64,
    peak: u64,
    graph_per_tenant: f64,
    tokens_per_tenant: f64,
    delta_per_tenant: f64,
    groups_per_tenant: f64,
    created: u64,
}

fn main() {
    let common::LiveArgs {
        sizes,
        users,
        parallelism,
    } = common::live_args(&[250, 1_000]);
    println!(
        "tenantform end-user sync benchmark ({} cores): {users} users a tenant, sandbox latency {LATENCY_MS} ms, --parallelism {parallelism}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let figures: Vec<Figures> = sizes
        .iter()
        .map(|&n| measure(n, users, parallelism))
        .collect();
    println!();
    println!(
        "{:>8} {:>12} {:>8} {:>8} {:>6} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "tenants",
        "sync",
        "wall s",
        "floor s",
        "ratio",
        "cpu s",
        "sbx cpu",
        "peak MB",
        "graph/t",
        "token/t",
        "delta/t",
        "groups/t"
    );
    for f in &figures {
        for (name, r) in [("first", &f.first), ("no-change", &f.quiet)] {
            println!(
                "{:>8} {:>12} {:>8.2} {:>8.2} {:>6.2} {:>7.2} {:>8.2} {:>8.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                f.tenants,
                name,
                r.wall,
                r.floor,
                r.wall / r.floor,
                r.cpu,
                r.sandbox_cpu,
                r.peak as f64 / 1e6,
                r.graph_per_tenant,
                r.tokens_per_tenant,
                r.delta_per_tenant,
                r.groups_per_tenant
            );
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for f in &figures {
        let r = &f.first;
        println!(
            "{} tenants, first sync: tenantform {:.1} us CPU a contact, the sandbox {:.1} us a user; the CPU's floor (both over {cores} cores) {:.2} s, {:.2}x the latency floor",
            f.tenants,
            r.cpu * 1e6 / r.created.max(1) as f64,
            r.sandbox_cpu * 1e6 / r.created.max(1) as f64,
            (r.cpu + r.sandbox_cpu) / cores,
            (r.cpu + r.sandbox_cpu) / cores / r.floor
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let runs = || figures.iter().flat_map(|f| [&f.first, &f.quiet]);
    println!(
        "target: wall within 2x of the floor: {}",
        verdict(runs().all(|r| r.wall <= 2.0 * r.floor))
    );
    println!(
        "target: peak under 600 MB: {}",
        verdict(runs().all(|r| r.peak < 600_000_000))
    );
    println!(
        "target: a no-change sync costs one users/delta request plus one per named group (1 + 1 here): {}",
        verdict(figures.iter().all(|f| f.quiet.delta_per_tenant == 1.0
            && f.quiet.groups_per_tenant == 1.0
            && f.quiet.graph_per_tenant == 2.0))
    );
    println!(
        "target: every user made a contact once: {}",
        verdict(
            figures
                .iter()
                .all(|f| f.first.created > 0 && f.quiet.created == 0)
        )
    );
    if figures.len() > 1 {
        let peaks: Vec<u64> = figures
            .iter()
            .map(|f| f.first.peak.max(f.quiet.peak))
            .collect();
        let (low, high) = (
            *peaks.iter().min().unwrap() as f64,
            *peaks.iter().max().unwrap() as f64,
        );
        println!(
            "target: the same peak within 20% at every size (largest / smallest = {:.2}): {}",
            high / low,
            verdict(high <= 1.2 * low)
        );
    }
}

fn measure(tenants: usize, users: usize, parallelism: usize) -> Figures {
    let root = tempfile::tempdir().unwrap();
    let tree = root.path().join("tree");
    common::write_end_user_fleet(&tree, tenants);
    let setup = Instant::now();
    let latency = format!("latency={LATENCY_MS}ms");
    let server = common::serve_sandbox(&[
        "--tenants",
        &tenants.to_string(),
        "--users",
        &users.to_string(),
        "--profiles",
        "--faults",
        &latency,
    ]);
    println!(
        "{tenants} tenants: sandbox up in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let env = server.env();
    let state = root.path().join("state.json");
    let parallel = parallelism.to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let requests = |clear: bool| -> Vec<serde_json::Value> {
        runtime.block_on(async {
            let url = format!("{}/_sandbox/requests", server.base);
            let log: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
            if clear {
                reqwest::Client::new().delete(&url).send().await.unwrap();
            }
            log.as_array().cloned().unwrap_or_default()
        })
    };
    let sandbox_pid = server.pid();
    let sync = || {
        common::release_memory();
        let sandbox_before = common::process_cpu_seconds(sandbox_pid);
        let run = common::run_tenantform_with_env(
            &[
                "sync",
                "--output",
                "json",
                "--parallelism",
                &parallel,
                "--state",
                state.to_str().unwrap(),
                tree.to_str().unwrap(),
            ],
            &env,
            root.path(),
        );
        assert_eq!(run.exit_code, 0, "sync failed:\n{}", run.stdout);
        let summary: serde_json::Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
        let sandbox_cpu = common::process_cpu_seconds(sandbox_pid) - sandbox_before;
        (run, summary, sandbox_cpu)
    };
    let per_tenant = |n: usize| n as f64 / tenants as f64;
    let figures_of = |(run, summary, sandbox_cpu): (common::Measured, serde_json::Value, f64),
                      round_trips: f64| {
        let log = requests(true);
        let path = |r: &serde_json::Value| r["path"].as_str().unwrap_or("").to_string();
        let graph: Vec<String> = log
            .iter()
            .filter(|r| path(r).starts_with("/v1.0") && r["inBatch"] != true)
            .map(path)
            .collect();
        let tokens = log
            .iter()
            .filter(|r| path(r).ends_with("/oauth2/v2.0/token"))
            .count();
        let delta = graph.iter().filter(|p| p.contains("/users/delta")).count();
        let groups = graph.iter().filter(|p| p.contains("/groups")).count();
        Run {
            wall: run.wall_seconds,
            floor: tenants as f64 * round_trips * LATENCY_MS as f64 / 1000.0 / parallelism as f64,
            cpu: run.cpu_seconds,
            sandbox_cpu,
            peak: run.peak_rss_bytes,
            graph_per_tenant: per_tenant(graph.len()),
            tokens_per_tenant: per_tenant(tokens),
            delta_per_tenant: per_tenant(delta),
            groups_per_tenant: per_tenant(groups),
            created: summary["created"].as_u64().unwrap_or(0),
        }
    };
    requests(true);
    // First sync: a token, then users/delta page by page (the named group's lookup and
    // members alongside), every contact created.
    let first_round_trips = 1.0 + users.div_ceil(DELTA_PAGE).max(2) as f64;
    let first = figures_of(sync(), first_round_trips);
    println!(
        "{tenants} tenants, first sync: {:.2} s, {} contacts, peak {:.1} MB, CPU {:.2} s (sandbox {:.2} s)",
        first.wall,
        first.created,
        first.peak as f64 / 1e6,
        first.cpu,
        first.sandbox_cpu
    );
    // No change: a token, then the stored delta link and the group's members at once.
    let quiet = figures_of(sync(), 2.0);
    println!(
        "{tenants} tenants, no-change sync: {:.2} s, peak {:.1} MB, CPU {:.2} s (sandbox {:.2} s)",
        quiet.wall,
        quiet.peak as f64 / 1e6,
        quiet.cpu,
        quiet.sandbox_cpu
    );
    drop(server);
    Figures {
        tenants,
        first,
        quiet,
    }
}
