//! Export benchmark: `tenantform export --all-customers` for 200 tenants x 50 guests against
//! the Graph sandbox (its own process) with 50 ms latency per request. Prints wall time and
//! requests. Target: under 30 s.
//!
//! Run: `cargo bench --bench export` (optional: `-- TENANTS GUESTS`).

mod common;

use tenantform::sandbox::Fixture;
use tenantform::sandbox::fixture::{FixtureRoleAssignment, FixtureUser};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tenants = args.first().copied().unwrap_or(200);
    let guests = args.get(1).copied().unwrap_or(50);
    let root = tempfile::tempdir().unwrap();
    let mut fixture = Fixture::generated(tenants, 5);
    for (i, t) in fixture.tenants.iter_mut().enumerate().skip(1) {
        for g in 0..guests {
            let id = format!("{i:08x}-0000-4000-8000-{g:012x}");
            t.users.push(FixtureUser {
                id: Some(id.clone()),
                display_name: format!("Engineer {g}"),
                mail: Some(format!("eng{g}@msp.example")),
                other_mails: Vec::new(),
                user_type: "Guest".into(),
                external_user_state: Some("Accepted".into()),
                user_principal_name: None,
                account_enabled: true,
                profile: Default::default(),
            });
            t.role_assignments.push(FixtureRoleAssignment {
                id: None,
                principal_id: id,
                role_definition_id: "729827e3-9c14-49f7-bb1b-9608f156bbb8".into(),
                directory_scope_id: "/".into(),
            });
        }
    }
    let fixture_path = root.path().join("fixture.json");
    std::fs::write(&fixture_path, serde_json::to_vec(&fixture).unwrap()).unwrap();
    let latency = "latency=50ms";
    let server = common::serve_sandbox(&[
        "--fixture",
        fixture_path.to_str().unwrap(),
        "--faults",
        latency,
    ]);
    let base = server.base.clone();

    let env = server.partner_env();
    let dir = root.path().join("export");
    let run = common::run_tenantform_with_env(
        &["export", "--all-customers", "--out", dir.to_str().unwrap()],
        &env,
        root.path(),
    );
    let requests: Vec<serde_json::Value> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::get(format!("{base}/_sandbox/requests"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
    drop(server);
    assert_eq!(run.exit_code, 0, "{}", run.stdout);
    let wire = requests.iter().filter(|r| r["inBatch"] == false).count();
    let files = std::fs::read_dir(dir.join("tenants")).unwrap().count()
        + std::fs::read_dir(dir.join("people")).unwrap().count();
    println!(
        "tenantform export benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "fleet: {tenants} tenants x {guests} guests (each with a directory role), sandbox latency 50 ms"
    );
    println!(
        "export: {:.2} s wall, {:.1} MB peak, {wire} HTTP requests ({:.2} per tenant), {files} files written",
        run.wall_seconds,
        run.peak_rss_bytes as f64 / 1e6,
        wire as f64 / tenants as f64
    );
    println!(
        "target: under 30 s {}",
        if run.wall_seconds < 30.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}
