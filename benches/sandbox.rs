//! Sandbox benchmark: requests per second for simple Graph GETs over keep-alive connections,
//! and memory for 1,000 tenants x 100 users. The sandbox runs as its own process
//! (`tenantform sandbox serve`); the load generator is a small hyper client in this process.
//! Targets on 2 cores: over 20,000 GETs/s; under 300 MB for 1,000 x 100.
//!
//! Run: `cargo bench --bench sandbox` (optional: `-- CONNECTIONS SECONDS`).

use std::time::{Duration, Instant};

mod common;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;

fn rss_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn connection(addr: String, token: String, deadline: Instant) -> (u64, u64) {
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (mut ok, mut failed) = (0, 0);
    while Instant::now() < deadline {
        let request = hyper::Request::get("/v1.0/organization")
            .header("host", &addr)
            .header("authorization", format!("Bearer {token}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                let _ = response.into_body().collect().await;
                if status.is_success() {
                    ok += 1
                } else {
                    failed += 1
                }
            }
            Err(_) => {
                failed += 1;
                break;
            }
        }
    }
    (ok, failed)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let connections = args.first().copied().unwrap_or(32) as usize;
    let seconds = args.get(1).copied().unwrap_or(5);
    let (tenants, users) = (1_000, 100);

    let started = Instant::now();
    let server = common::serve_sandbox(&[
        "--tenants",
        &tenants.to_string(),
        "--users",
        &users.to_string(),
    ]);
    let ready = started.elapsed();
    let base = server.base.clone();
    let addr = base.trim_start_matches("http://").to_string();
    let pid = server.pid();
    let idle_rss = rss_kb(pid, "VmRSS:");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tenant = tenantform::synthetic::synthetic_guid(0);
    let token: String = runtime.block_on(common::standalone::sandbox_token(
        &reqwest::Client::new(),
        &format!("{base}/{tenant}/oauth2/v2.0/token"),
    ));

    // Warm up, then measure.
    runtime.block_on(connection(
        addr.clone(),
        token.clone(),
        Instant::now() + Duration::from_millis(300),
    ));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let (ok, failed) = runtime.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| tokio::spawn(connection(addr.clone(), token.clone(), deadline)))
            .collect();
        let mut total = (0, 0);
        for t in tasks {
            let (o, f) = t.await.unwrap();
            total.0 += o;
            total.1 += f;
        }
        total
    });
    let elapsed = start.elapsed().as_secs_f64();
    let peak_rss = rss_kb(pid, "VmHWM:");
    drop(server);

    let rps = ok as f64 / elapsed;
    println!(
        "tenantform Graph sandbox benchmark ({} cores; server in its own process)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "world: {tenants} tenants x {users} users, ready in {:.2} s, resident {:.1} MB idle, {:.1} MB peak",
        ready.as_secs_f64(),
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!("load: GET /v1.0/organization, {connections} keep-alive connections, {elapsed:.1} s");
    println!("served: {ok} ok, {failed} failed, {rps:.0} requests/s");
    println!(
        "targets: > 20,000 GETs/s {}; < 300 MB for 1,000 x 100 {}",
        if rps > 20_000.0 { "met" } else { "MISSED" },
        if peak_rss < 300 * 1024 {
            "met"
        } else {
            "MISSED"
        }
    );
}
