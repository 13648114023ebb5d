//! Load benchmark: concurrent clients submit jobs over HTTP for a while; reports accepted jobs
//! per second and latency percentiles.
//!
//! ```text
//! cargo run --release -p suanli-server --example load -- --seconds 30 --clients 16
//! cargo run --release -p suanli-server --example load -- --database postgres://...
//! ```
//!
//! The server runs in this process on 127.0.0.1 with SQLite in a fresh temporary directory (or
//! the given PostgreSQL). One job holds the only accelerator, so every submitted job is stored,
//! audited, admitted and queued behind it: the queue grows to the number of accepted jobs.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;

/// Submits the job `body` to the server at `url` as the holder of `token`.
async fn submit(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &serde_json::Value,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{url}/api/v1/jobs"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = flag(&args, "--seconds").map_or(30, |s| s.parse().expect("--seconds N"));
    let clients: usize = flag(&args, "--clients").map_or(16, |s| s.parse().expect("--clients N"));
    let database = flag(&args, "--database");
    let data_dir = std::env::temp_dir().join(format!("suanli-load-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = suanli_server::ServerConfig {
        data_dir: data_dir.clone(),
        database,
        devices: Some("h100:1".into()),
        policy: "fifo".into(),
        // One tenant queues tens of thousands of jobs here: lift the per-tenant cap (10,000).
        admission: suanli_server::engine::admission::AdmissionLimits {
            max_active_jobs_per_tenant: 1_000_000,
            ..Default::default()
        },
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(suanli_server::run(config, listener, async {
        let _ = stop_rx.await;
    }));
    let (http, token) = common::admin_with_tenant(&url, &data_dir, "load").await;
    let blocker = json!({ "tenant": "load", "command": ["sleep", (seconds + 30).to_string()] });
    let blocker: serde_json::Value = submit(&http, &url, &token, &blocker)
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the blocking job is accepted")
        .json()
        .await
        .expect("the server answers a job");

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let job = json!({ "tenant": "load", "name": format!("c{client}-{n}"),
                    "command": ["true"], "env": { "N": n.to_string() } });
                let response = submit(&http, &url, &token, &job).await;
                match response {
                    Ok(r) if r.status() == 201 => latencies.push(sent.elapsed()),
                    _ => errors += 1,
                }
                n += 1;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{clients} clients, {elapsed:.1} s: {} jobs accepted ({:.0} jobs/s), {errors} errors; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
    );
    let metrics = http
        .get(format!("{url}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let passes = value("suanli_scheduling_pass_seconds_count");
    println!(
        "queue at the end: {} jobs; {passes:.0} scheduling passes, mean {:.1} µs, last {:.1} µs",
        value("suanli_queue_length"),
        value("suanli_scheduling_pass_seconds_sum") / passes.max(1.0) * 1e6,
        value("suanli_last_scheduling_pass_seconds") * 1e6,
    );
    let id = blocker["id"].as_i64().unwrap();
    http.post(format!("{url}/api/v1/jobs/{id}/cancel"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let _ = stop_tx.send(());
    let _ = server.await;
    std::fs::remove_dir_all(&data_dir).ok();
}
