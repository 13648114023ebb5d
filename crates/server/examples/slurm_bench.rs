//! Slurm throughput benchmark: N short jobs (`true`, one GPU each) through suanli to Slurm,
//! beside the same N jobs submitted with plain `sbatch` on the same cluster. Reports accepted/s
//! (submissions per second) and end-to-end jobs/s (from the first submission until every job has
//! ended) for both.
//!
//! ```text
//! . .ci/slurm.sh
//! cargo run --release -p suanli-server --example slurm_bench -- --jobs 1000
//! ```
//!
//! The suanli server runs in this process with SQLite in a fresh temporary directory and only
//! the Slurm executor (`suanli serve --executor slurm`), polling Slurm every `--poll-ms`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn slurm_conf() -> String {
    std::env::var("SLURM_CONF").unwrap_or_else(|_| "/var/tmp/suanli-slurm/etc/slurm.conf".into())
}

/// Jobs named `name` Slurm has not finished.
fn unfinished(name: &str) -> usize {
    let output = Command::new("squeue")
        .args([
            "-h",
            "-t",
            "pending,running,completing,configuring",
            "-o",
            "%j",
        ])
        .env("SLURM_CONF", slurm_conf())
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.trim() == name)
        .count()
}

/// Plain `sbatch --wrap WRAP`, one process per job as a user's script would:
/// (accepted/s, jobs/s).
fn plain_sbatch(jobs: usize, wrap: &str) -> (f64, f64) {
    let name = format!("bench-plain-{}", std::process::id());
    let started = Instant::now();
    for _ in 0..jobs {
        let status = Command::new("sbatch")
            .args([
                "--parsable",
                "--job-name",
                &name,
                "--gres=gpu:h100:1",
                "--output=/dev/null",
                "--wrap",
                wrap,
            ])
            .env("SLURM_CONF", slurm_conf())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("sbatch");
        assert!(status.success(), "sbatch failed");
    }
    let accepted = jobs as f64 / started.elapsed().as_secs_f64();
    while unfinished(&name) > 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    (accepted, jobs as f64 / started.elapsed().as_secs_f64())
}

async fn through_suanli(jobs: usize, poll_ms: u64) -> (f64, f64) {
    let data_dir = std::env::temp_dir().join(format!("suanli-slurm-bench-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = suanli_server::ServerConfig {
        data_dir: data_dir.clone(),
        database: None,
        devices: None,
        policy: "fifo".into(),
        ..Default::default()
    };
    let mut cluster = suanli_server::slurm::SlurmConfig::new("slurm");
    cluster.slurm_conf = Some(slurm_conf().into());
    cluster.poll_interval = Duration::from_millis(poll_ms);
    let executors = suanli_server::Executors {
        no_local: true,
        slurm: vec![cluster],
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(suanli_server::run_clusters(
        config,
        executors,
        listener,
        None,
        async {
            let _ = stop_rx.await;
        },
    ));
    let http = reqwest::Client::new();
    while http.get(format!("{url}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = std::fs::read_to_string(data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    http.post(format!("{url}/api/v1/tenants"))
        .bearer_auth(&token)
        .json(&json!({ "name": "bench" }))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    for _ in 0..jobs {
        let response = http
            .post(format!("{url}/api/v1/jobs"))
            .bearer_auth(&token)
            .json(&json!({ "tenant": "bench", "gpus": 1, "command": ["true"] }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    let accepted = jobs as f64 / started.elapsed().as_secs_f64();
    loop {
        let list: Value = http
            .get(format!("{url}/api/v1/jobs"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jobs_list = list.as_array().cloned().unwrap_or_default();
        let ended = jobs_list
            .iter()
            .filter(|j| {
                ["succeeded", "failed", "cancelled"].contains(&j["state"].as_str().unwrap_or(""))
            })
            .count();
        let failed = jobs_list
            .iter()
            .filter(|j| j["state"] != "succeeded")
            .count();
        if ended >= jobs {
            assert_eq!(failed, 0, "some jobs did not succeed");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end_to_end = jobs as f64 / started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&data_dir);
    (accepted, end_to_end)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jobs: usize = flag(&args, "--jobs").map_or(1000, |s| s.parse().expect("--jobs N"));
    let poll_ms: u64 = flag(&args, "--poll-ms").map_or(1000, |s| s.parse().expect("--poll-ms N"));
    // `true` alone, and `srun true`: a job step, as every suanli run (and every gang) has.
    let (plain_accepted, plain_jobs) =
        tokio::task::spawn_blocking(move || plain_sbatch(jobs, "true"))
            .await
            .unwrap();
    let (step_accepted, step_jobs) =
        tokio::task::spawn_blocking(move || plain_sbatch(jobs, "srun true"))
            .await
            .unwrap();
    let (suanli_accepted, suanli_jobs) = through_suanli(jobs, poll_ms).await;
    println!("{jobs} jobs (`true`, 1 GPU each) on the 4-node Slurm of .ci/slurm.sh");
    println!("{:<18} {:>12} {:>14}", "", "accepted/s", "end-to-end/s");
    println!(
        "{:<18} {plain_accepted:>12.1} {plain_jobs:>14.2}",
        "sbatch true"
    );
    println!(
        "{:<18} {step_accepted:>12.1} {step_jobs:>14.2}",
        "sbatch srun true"
    );
    println!(
        "{:<18} {suanli_accepted:>12.1} {suanli_jobs:>14.2}",
        "through suanli"
    );
    println!(
        "suanli's end-to-end time is {:+.1}% of `sbatch true`'s, {:+.1}% of `sbatch srun true`'s",
        (plain_jobs / suanli_jobs - 1.0) * 100.0,
        (step_jobs / suanli_jobs - 1.0) * 100.0
    );
}
