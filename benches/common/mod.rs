#![allow(dead_code)] // Shared by every benchmark; each uses a part.
//! Shared by the benchmarks: writing synthetic trees and measuring a child process.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Writes a synthetic fleet of `tenants`; returns (files, bytes).
pub fn write_tree(dir: &Path, tenants: usize) -> (usize, u64) {
    write_files(dir, tenantform::synthetic::fleet(tenants))
}

/// Writes generated files under `dir`; returns (files, bytes).
pub fn write_files(dir: &Path, files: Vec<tenantform::synthetic::GeneratedFile>) -> (usize, u64) {
    let mut bytes = 0;
    for f in &files {
        let path = dir.join(&f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &f.text).unwrap();
        bytes += f.text.len() as u64;
    }
    (files.len(), bytes)
}

pub struct Measured {
    pub wall_seconds: f64,
    pub peak_rss_bytes: u64,
    pub exit_code: i32,
    pub stdout: String,
}

/// Runs the release binary with `args`, returning wall time and peak RSS (wait4's rusage).
pub fn run_tenantform(args: &[&str], scratch: &Path) -> Measured {
    run_tenantform_with_env(args, &[], scratch)
}

/// Like [`run_tenantform`], with extra environment variables.
pub fn run_tenantform_with_env(args: &[&str], env: &[(&str, String)], scratch: &Path) -> Measured {
    let out_path = scratch.join(format!("bench-out-{}.txt", std::process::id()));
    let peak_path = scratch.join(format!("bench-peak-{}.txt", std::process::id()));
    let out = std::fs::File::create(&out_path).unwrap();
    let start = Instant::now();
    // Reaped below by wait4, which also reports the child's peak memory.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_tenantform"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("TENANTFORM_PEAK_MEMORY_FILE", &peak_path)
        .stdout(Stdio::from(out))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tenantform");
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall_seconds = start.elapsed().as_secs_f64();
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let _ = std::fs::remove_file(&out_path);
    // The process's own high-water mark; rusage would include this (parent) process's memory.
    let own_peak_kb: Option<u64> = std::fs::read_to_string(&peak_path)
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let _ = std::fs::remove_file(&peak_path);
    Measured {
        wall_seconds,
        peak_rss_bytes: own_peak_kb.unwrap_or(usage.ru_maxrss as u64) * 1024,
        exit_code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
        stdout,
    }
}

/// Sizes from the command line (`cargo bench --bench X -- 1000`), or the defaults.
pub fn sizes(defaults: &[usize]) -> Vec<usize> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        defaults.to_vec()
    } else {
        sizes
    }
}

/// Returns freed heap pages to the kernel. Call before spawning the measured binary: a child
/// starts as a copy of this process, and pages this process still holds would count in the
/// child's peak memory (`ru_maxrss`) until it execs.
pub fn release_memory() {
    // SAFETY: malloc_trim only releases free memory held by the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The standalone sandbox and its environment, shared with the integration tests.
#[path = "../../tests/it/standalone.rs"]
pub mod standalone;

/// `tenantform sandbox serve ARGS` in its own process (stderr shown); killed on drop.
pub fn serve_sandbox(args: &[&str]) -> standalone::StandaloneSandbox {
    standalone::StandaloneSandbox::serve(args, Stdio::inherit())
}
