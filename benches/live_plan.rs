//! Live plan benchmark: a no-change `tenantform plan` for 1,000 tenants x 20 guests x 2
//! directory roles against the Graph sandbox (its own process) with 50 ms latency per request.
//! Prints wall time, requests made and peak memory. Targets: at most 2 HTTP requests per tenant
//! plus one token request per tenant, and wall time within 1.5x of
//! tenants x round trips x latency / parallelism.
//!
//! Run: `cargo bench --bench live_plan` (optional: `-- TENANTS PARALLELISM`).

mod common;

use std::time::{Duration, Instant};

use tenantform::ops::apply::{Approval, PlanSource};
use tenantform::ops::{
    GraphSettings, GraphTarget, ManifestSource, Selection, Settings, Silent, Workspace,
};
use tenantform::plan::PlanOptions;
use tenantform::sandbox::{Faults, Fixture, SandboxHandle};
use tenantform::synthetic::{Shape, fleet_shaped};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tenants = args.first().copied().unwrap_or(1_000);
    let parallelism = args.get(1).copied().unwrap_or(16);
    let latency_ms = 50u64;
    let root = tempfile::tempdir().unwrap();
    let manifests = root.path().join("tree");
    let shape = Shape {
        guests_per_tenant: 20,
        roles_per_guest: 2,
        fleet_wide_guests: false,
    };
    common::write_files(&manifests, fleet_shaped(tenants, shape));

    // Build the world and the state by applying once, in-process, without latency, through
    // the same pipeline `tenantform apply` runs.
    let setup = Instant::now();
    let sandbox = SandboxHandle::start(&Fixture::generated(tenants, 0), Faults::default()).unwrap();
    let state_path = root.path().join("state.json");
    let settings = Settings {
        manifests: ManifestSource {
            path: manifests.clone(),
            reference: None,
        },
        state_path: state_path.clone(),
        graph: GraphSettings {
            target: GraphTarget::Graph(Box::new(sandbox.graph_config())),
            parallelism: 32,
            consent_redirect_uri: "https://localhost".into(),
        },
        strict: false,
        lock_timeout: Duration::ZERO,
        apply_step_delay: None,
        command_line: "bench".into(),
    };
    let mut ws = Workspace::open(settings, &Silent).unwrap();
    let run = tenantform::ops::apply::apply(
        &mut ws,
        PlanSource::Compute {
            options: PlanOptions::default(),
            selection: &Selection::default(),
            changed_since: None,
        },
        "apply",
        &mut |_| Approval::Apply,
        &std::sync::atomic::AtomicBool::new(false),
        &Silent,
    )
    .unwrap();
    let report = run.report.expect("the first apply has changes");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    drop(ws);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let world_path = root.path().join("world.json");
    std::fs::write(
        &world_path,
        serde_json::to_vec(&sandbox.with_world(|w| w.to_fixture())).unwrap(),
    )
    .unwrap();
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
    drop(server);
    assert_eq!(run.exit_code, 0, "expected no changes:\n{}", run.stdout);

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
    let ideal =
        tenants as f64 * round_trips_per_tenant * latency_ms as f64 / 1000.0 / parallelism as f64;
    println!(
        "tenantform live plan benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
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
        "ideal (tenants x round trips x latency / parallelism): {ideal:.2} s; ratio {:.2}",
        run.wall_seconds / ideal
    );
    let requests_ok = graph <= 2 * tenants && tokens <= tenants;
    let time_ok = run.wall_seconds <= 1.5 * ideal;
    println!(
        "targets: <= 2 Graph + 1 token request per tenant {}; wall within 1.5x of ideal {}",
        if requests_ok { "met" } else { "MISSED" },
        if time_ok { "met" } else { "MISSED" }
    );
}
