//! Plan benchmark: `tenantform plan --offline` for synthetic fleets (3 organizations per
//! tenant, plus guests' MSP roles; the guests recorded as invited) against a state of the same
//! size, so the plan has no changes: the cost of loading manifests and state and diffing
//! everything. Prints wall time and peak memory.
//! Target: 10,000 tenants in under 2 s and under 500 MB.
//!
//! Run: `cargo bench --bench plan` (add `-- 1000` to choose sizes).

mod common;

use tenantform::apply::{StateOnlyExecutor, WholeLedger, apply};
use tenantform::plan::{PlanInput, PlanOptions, manifests_digest, plan};
use tenantform::state::file::FileStateStore;
use tenantform::state::{
    Actor, HistoryRecord, Journal, LockInfo, Provenance, Source, State, StateChange, StateError,
    StateStore,
};

/// The state is built in memory; the file is written once at the end.
struct NoJournal;

impl Journal for NoJournal {
    fn record(&mut self, _: &StateChange, _: bool) -> Result<(), StateError> {
        Ok(())
    }
    fn history(&mut self, _: &HistoryRecord<'_>, _: bool) -> Result<(), StateError> {
        Ok(())
    }
}

fn build_state(manifests: &std::path::Path, state_path: &std::path::Path) -> (usize, u64) {
    let started = std::time::Instant::now();
    let (mut sources, diags) = tenantform::load::load_path(manifests).unwrap();
    let validation = tenantform::validate_sources(&mut sources, diags).unwrap();
    assert_eq!(validation.errors(), 0);
    let model = validation.model().unwrap();
    let mut state = State::new();
    state.ensure_lineage();
    let source = Source {
        digest: manifests_digest(&model),
        commit: None,
    };
    // The guests were invited in an earlier (online) apply: MSP roles need them recorded.
    let guests = tenantform::resources::kind("guest").expect("guest kind");
    for (i, g) in (guests.desired)(&model).into_iter().enumerate() {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        state.objects.insert(
            g.address,
            tenantform::state::StateObject {
                kind: "guest".into(),
                ids: [("objectId".to_string(), id)].into_iter().collect(),
                attributes: g.attributes,
                source: source.clone(),
                applied_at: "2026-01-01T00:00:00Z".into(),
            },
        );
    }
    // The benchmark plans the MSP-side records (`--offline`): no Graph in the loop.
    let options = PlanOptions {
        offline: true,
        ..PlanOptions::default()
    };
    let p = plan(&PlanInput {
        desired: &model,
        state: &state,
        live: None,
        options,
        now: jiff::Timestamp::now(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut journal = NoJournal;
    let ledger = WholeLedger::new(&p, &mut state, &mut journal);
    let report = runtime.block_on(apply(
        &p,
        &ledger,
        &StateOnlyExecutor,
        &source,
        &tenantform::apply::Control {
            parallelism: 1,
            on_event: &|_| {},
            stop: &std::sync::atomic::AtomicBool::new(false),
            provenance: &Provenance::new("bench", None, None, Actor::default()),
        },
    ));
    drop(ledger);
    assert!(report.errors.is_empty());
    println!(
        "  (state built by applying {} objects in-process in {:.2} s)",
        state.objects.len(),
        started.elapsed().as_secs_f64()
    );
    state.serial = 1;
    let store = FileStateStore::new(state_path);
    let lock = store
        .lock(LockInfo::for_command("bench"), std::time::Duration::ZERO)
        .unwrap();
    store.write(&state, &lock).unwrap();
    (
        state.objects.len(),
        std::fs::metadata(state_path).unwrap().len(),
    )
}

fn main() {
    println!(
        "tenantform plan benchmark, no changes ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>8} {:>13} {:>13} {:>9} {:>9} {:>9} {:>9}",
        "tenants", "organizations", "state objects", "state MB", "best s", "median s", "peak MB"
    );
    for tenants in common::sizes(&[1_000, 10_000]) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("tree");
        common::write_tree(&dir, tenants);
        let state_path = root.path().join("state.json");
        let (objects, state_bytes) = build_state(&dir, &state_path);
        common::release_memory();
        let mut walls = Vec::new();
        let mut peak = 0;
        for _ in 0..3 {
            let run = common::run_tenantform(
                &[
                    "plan",
                    "--offline",
                    "--detailed-exitcode",
                    "--state",
                    state_path.to_str().unwrap(),
                    dir.to_str().unwrap(),
                ],
                root.path(),
            );
            assert_eq!(run.exit_code, 0, "expected no changes: {}", run.stdout);
            assert!(run.stdout.starts_with("No changes."), "{}", run.stdout);
            walls.push(run.wall_seconds);
            peak = peak.max(run.peak_rss_bytes);
        }
        walls.sort_by(f64::total_cmp);
        println!(
            "{:>8} {:>13} {:>13} {:>9.1} {:>9.3} {:>9.3} {:>9.1}",
            tenants,
            tenants * 3,
            objects,
            state_bytes as f64 / 1e6,
            walls[0],
            walls[1],
            peak as f64 / 1e6
        );
        if tenants == 10_000 {
            let ok = walls[1] < 2.0 && peak < 500_000_000;
            println!(
                "target (10,000 tenants x 3 organizations: < 2 s, < 500 MB): {}",
                if ok { "met" } else { "MISSED" }
            );
        }
    }
}
