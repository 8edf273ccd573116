//! Fleet report benchmark: `tenantform report` for N tenants x M users x 90 days of Secure
//! Score against the Graph sandbox in its own process (50 ms a request), after an apply and a
//! first end-user sync (so contacts exist to count seats per organization). Prints, per size,
//! the report's wall time (drift's reads, then each tenant's licences, Secure Score and
//! sign-in posture), requests per tenant, peak memory, the page's size, and the time to build
//! the page alone (the pure assembly and HTML rendering, in process) for a fleet of that size.
//! The second report of each size finds the history stored and writes nothing.
//!
//! Run: `cargo bench --bench report -- [TENANTS...] [--users M] [--parallelism N]`
//! (defaults: 1000 tenants, 500 users, parallelism 64).

mod common;

use std::time::Instant;

const LATENCY_MS: u64 = 50;

fn main() {
    let common::LiveArgs {
        sizes,
        users,
        parallelism,
    } = common::live_args(&[1_000]);
    println!(
        "tenantform fleet report benchmark ({} cores): {users} users a tenant, 90 days of Secure Score, sandbox latency {LATENCY_MS} ms, --parallelism {parallelism}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for n in sizes {
        measure(n, users, parallelism);
    }
}

fn measure(tenants: usize, users: usize, parallelism: usize) {
    let root = tempfile::tempdir().unwrap();
    let tree = root.path().join("tree");
    common::write_end_user_fleet(&tree, tenants);
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
    let env = server.env();
    let state = root.path().join("state.json");
    let state = state.to_str().unwrap();
    let tree = tree.to_str().unwrap();
    let parallel = parallelism.to_string();
    let run = |args: &[&str]| {
        common::release_memory();
        let mut all = args.to_vec();
        all.extend(["--parallelism", &parallel, "--state", state, tree]);
        common::run_tenantform_with_env(&all, &env, root.path())
    };
    let setup = Instant::now();
    let applied = run(&["apply", "--auto-approve"]);
    assert_eq!(applied.exit_code, 0, "apply failed:\n{}", applied.stdout);
    let synced = run(&["sync"]);
    assert_eq!(synced.exit_code, 0, "sync failed:\n{}", synced.stdout);
    println!(
        "{tenants} tenants: applied and synced in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let requests = || -> Vec<serde_json::Value> {
        runtime.block_on(async {
            let url = format!("{}/_sandbox/requests", server.base);
            let log: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
            reqwest::Client::new().delete(&url).send().await.unwrap();
            log.as_array().cloned().unwrap_or_default()
        })
    };
    let out = root.path().join("fleet.html");
    let out = out.to_str().unwrap();
    println!(
        "{:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>9}",
        "tenants", "report", "wall s", "graph/t", "token/t", "peak MB", "page MB"
    );
    for round in ["first", "again"] {
        requests();
        let report = run(&["report", "--out", out]);
        assert_eq!(report.exit_code, 0, "report failed:\n{}", report.stdout);
        let log = requests();
        let path = |r: &serde_json::Value| r["path"].as_str().unwrap_or("").to_string();
        let graph = log
            .iter()
            .filter(|r| path(r).starts_with("/v1.0") && r["inBatch"] != true)
            .count();
        let tokens = log
            .iter()
            .filter(|r| path(r).ends_with("/oauth2/v2.0/token"))
            .count();
        let size = std::fs::metadata(out).unwrap().len();
        println!(
            "{:>8} {:>8} {:>8.2} {:>9.2} {:>9.2} {:>8.1} {:>9.2}",
            tenants,
            round,
            report.wall_seconds,
            graph as f64 / tenants as f64,
            tokens as f64 / tenants as f64,
            report.peak_rss_bytes as f64 / 1e6,
            size as f64 / 1e6
        );
    }
    drop(server);
    // The page alone: a fleet of this size with 90 days each, assembled and rendered.
    let started = Instant::now();
    let parts: Vec<tenantform::report::TenantParts> = (0..tenants)
        .map(|i| {
            let days: Vec<tenantform::secure_score::DailyScore> = (0..90)
                .map(|d| tenantform::secure_score::DailyScore {
                    date: jiff::civil::date(2026, 9, 9)
                        .checked_add(jiff::Span::new().days(d))
                        .unwrap()
                        .to_string(),
                    current: 30.0 + (i % 40) as f64 + d as f64 * 0.05,
                    max: 100.0,
                    active_users: users as i64,
                    licensed_users: users as i64,
                    comparative: Vec::new(),
                    controls: Vec::new(),
                })
                .collect();
            tenantform::report::TenantParts {
                name: format!("tenant-{i:05}"),
                display_name: Some(format!("Customer {i}")),
                microsoft_tenant_id: Some(format!("{i:08}-0000-4000-8000-000000000000")),
                secure_score: Some(tenantform::report::ScoreView::of(
                    &days,
                    days.last(),
                    Vec::new(),
                )),
                ..Default::default()
            }
        })
        .collect();
    let report = tenantform::report::assemble(
        String::new(),
        "2026-12-07".into(),
        None,
        parts,
        None,
        Vec::new(),
    );
    let page = tenantform::report::html::render(&report);
    println!(
        "{tenants} tenants x 90 days: page assembled and rendered in {:.3} s, {:.2} MB",
        started.elapsed().as_secs_f64(),
        page.len() as f64 / 1e6
    );
}
