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
//! `--skip-plain` leaves the plain runs out, `--keep-data` keeps suanli's data directory (run
//! directories with their scripts, Slurm job ids and exit files); `SUANLI_LOG=suanli_server=debug` logs how long
//! every `sbatch`, `squeue` and Slurm report took, with timestamps.
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

/// Jobs whose name starts with `prefix` that Slurm has not finished.
fn unfinished_prefix(prefix: &str) -> usize {
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
        .filter(|l| l.trim().starts_with(prefix))
        .count()
}

/// suanli's jobs in `state`, counted up to `up_to` (pages of at most 1,000).
async fn count(http: &reqwest::Client, url: &str, token: &str, state: &str, up_to: usize) -> usize {
    let mut counted = 0;
    let mut after: Option<String> = None;
    while counted < up_to {
        let limit = (up_to - counted).min(1000);
        let mut query = format!("{url}/api/v1/jobs?state={state}&limit={limit}");
        if let Some(after) = &after {
            query.push_str(&format!("&after={after}"));
        }
        let response = http.get(query).bearer_auth(token).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        after = response
            .headers()
            .get("x-suanli-next-after")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let page: Value = response.json().await.unwrap();
        counted += page.as_array().map_or(0, Vec::len);
        if after.is_none() {
            break;
        }
    }
    counted
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

async fn through_suanli(jobs: usize, poll_ms: u64, keep_data: bool) -> (f64, f64) {
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
    // Ended in suanli (nothing queued or running) and in Slurm (no job of this server left
    // pending, running or completing), as the plain runs are timed.
    while count(&http, &url, &token, "queued", 1).await > 0
        || count(&http, &url, &token, "running", 1).await > 0
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while tokio::task::spawn_blocking(|| unfinished_prefix("suanli-"))
        .await
        .unwrap()
        > 0
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end_to_end = jobs as f64 / started.elapsed().as_secs_f64();
    let succeeded = count(&http, &url, &token, "succeeded", jobs).await;
    if succeeded < jobs {
        // Reported, not hidden: a job Slurm failed (e.g. slurmd could not exec the batch
        // script) counts in the time but is named here.
        eprintln!(
            "{} of {jobs} jobs did not succeed (see their reasons with GET /api/v1/jobs?state=failed)",
            jobs - succeeded
        );
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    if keep_data {
        eprintln!("data directory kept: {}", data_dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    (accepted, end_to_end)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `SUANLI_LOG=suanli_server=debug` times every `sbatch` and `squeue` (to stderr).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SUANLI_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    let jobs: usize = flag(&args, "--jobs").map_or(1000, |s| s.parse().expect("--jobs N"));
    let poll_ms: u64 = flag(&args, "--poll-ms").map_or(1000, |s| s.parse().expect("--poll-ms N"));
    // `true` alone, and `srun true`: a job step, as every suanli run (and every gang) has.
    // Plain first: suanli then runs beside their 2 x N ended jobs, which Slurm keeps listing
    // for MinJobAge.
    let plain = !args.iter().any(|a| a == "--skip-plain");
    let (mut plain_rows, mut step_jobs) = (Vec::new(), None);
    if plain {
        for (label, wrap) in [("sbatch true", "true"), ("sbatch srun true", "srun true")] {
            let (accepted, per_s) = tokio::task::spawn_blocking(move || plain_sbatch(jobs, wrap))
                .await
                .unwrap();
            plain_rows.push((label, accepted, per_s));
            step_jobs = Some(per_s);
        }
    }
    let (suanli_accepted, suanli_jobs) =
        through_suanli(jobs, poll_ms, args.iter().any(|a| a == "--keep-data")).await;
    println!("{jobs} jobs (`true`, 1 GPU each) on the 4-node Slurm of .ci/slurm.sh");
    println!("{:<18} {:>12} {:>14}", "", "accepted/s", "end-to-end/s");
    for (label, accepted, per_s) in &plain_rows {
        println!("{label:<18} {accepted:>12.1} {per_s:>14.2}");
    }
    println!(
        "{:<18} {suanli_accepted:>12.1} {suanli_jobs:>14.2}",
        "through suanli"
    );
    if let Some(step_jobs) = step_jobs {
        println!(
            "suanli takes {:.2}x the end-to-end time of `sbatch srun true`",
            step_jobs / suanli_jobs
        );
    }
}
