//! Validation benchmark: `tenantform validate` over synthetic trees of 1,000 and 10,000 tenants
//! (about ten documents each). Runs the release binary as a child process and prints wall time
//! and peak resident memory. Target: 10,000 tenants in under 3 s and under 500 MB.
//!
//! Run: `cargo bench --bench validate` (add `-- 1000` to choose sizes).

mod common;

fn main() {
    println!(
        "tenantform validate benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>8} {:>7} {:>9} {:>8} {:>9} {:>9} {:>9}",
        "tenants", "files", "documents", "MiB", "best s", "median s", "peak MB"
    );
    for tenants in common::sizes(&[1_000, 10_000]) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("tree");
        let (files, bytes) = common::write_tree(&dir, tenants);
        let mut walls = Vec::new();
        let mut peak = 0;
        let mut documents = 0;
        for _ in 0..3 {
            let run = common::run_tenantform(
                &["validate", "--output", "json", dir.to_str().unwrap()],
                root.path(),
            );
            assert_eq!(run.exit_code, 0, "validate failed: {}", run.stdout);
            let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            documents = report["summary"]["documents"].as_u64().unwrap();
            walls.push(run.wall_seconds);
            peak = peak.max(run.peak_rss_bytes);
        }
        walls.sort_by(f64::total_cmp);
        println!(
            "{:>8} {:>7} {:>9} {:>8.1} {:>9.3} {:>9.3} {:>9.1}",
            tenants,
            files,
            documents,
            bytes as f64 / (1024.0 * 1024.0),
            walls[0],
            walls[1],
            peak as f64 / 1e6
        );
        if tenants == 10_000 {
            let ok = walls[1] < 3.0 && peak < 500_000_000;
            println!(
                "target (10,000 tenants: < 3 s, < 500 MB): {}",
                if ok { "met" } else { "MISSED" }
            );
        }
    }
}
