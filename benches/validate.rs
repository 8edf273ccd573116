//! Validation benchmark: `tenantform validate` over synthetic trees of 1,000 and 10,000 tenants
//! (about ten documents each). Runs the release binary as a child process and prints wall time
//! and peak resident memory (from wait4's rusage). Target: 10,000 tenants in under 3 s and
//! under 500 MB.
//!
//! Run: `cargo bench --bench validate` (add `-- 1000` to choose sizes).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn write_tree(dir: &Path, tenants: usize) -> (usize, u64) {
    let files = tenantform::synthetic::fleet(tenants);
    let mut bytes = 0;
    for f in &files {
        let path = dir.join(&f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &f.text).unwrap();
        bytes += f.text.len() as u64;
    }
    (files.len(), bytes)
}

/// Runs the binary, returning (wall seconds, peak RSS in bytes, exit status, stdout).
fn run_validate(dir: &Path) -> (f64, u64, i32, String) {
    let out_path = dir
        .join("..")
        .join(format!("validate-{}.json", std::process::id()));
    let out = std::fs::File::create(&out_path).unwrap();
    let start = Instant::now();
    // Reaped below by wait4, which also reports the child's peak memory.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_tenantform"))
        .args(["validate", "--output", "json"])
        .arg(dir)
        .stdout(Stdio::from(out))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tenantform");
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let _ = std::fs::remove_file(&out_path);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (wall, usage.ru_maxrss as u64 * 1024, code, stdout)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    println!(
        "tenantform validate benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>8} {:>7} {:>9} {:>8} {:>9} {:>9} {:>9}",
        "tenants", "files", "documents", "MiB", "best s", "median s", "peak MB"
    );
    for tenants in sizes {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("tree");
        let (files, bytes) = write_tree(&dir, tenants);
        let mut walls = Vec::new();
        let mut peak = 0;
        let mut documents = 0;
        for _ in 0..3 {
            let (wall, rss, code, stdout) = run_validate(&dir);
            assert_eq!(code, 0, "validate failed: {stdout}");
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            documents = report["summary"]["documents"].as_u64().unwrap();
            walls.push(wall);
            peak = peak.max(rss);
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
