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
//! `--warm-spares N` sets the warm spares kept per node set (0: none, as before they existed),
//! `--skip-plain` leaves the plain runs out, `--keep-data` keeps suanli's data directory (run
//! directories with their scripts, Slurm job ids and exit files); `SUANLI_LOG=suanli_server=debug` logs how long
//! every `sbatch`, `squeue` and Slurm report took, with timestamps. Each phase prints its CPU per
//! job (see `slurm_bench/cpu.rs`; Slurm's own when `SUANLI_BENCH_SLURM_CGROUP` names a cpuacct
//! cgroup holding slurmctld, slurmd and munged).
//!
//! The suanli server runs in this process with SQLite in a fresh temporary directory and only
//! the Slurm executor (`suanli serve --executor slurm`), polling Slurm every `--poll-ms`.

mod common;
#[path = "slurm_bench/cpu.rs"]
mod cpu;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cpu::Cpu;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn slurm_conf() -> String {
    std::env::var("SLURM_CONF").unwrap_or_else(|_| "/var/tmp/suanli-slurm/etc/slurm.conf".into())
}

/// Jobs whose name and state (`PENDING`, `RUNNING`, ...) `count` that Slurm has not finished.
fn unfinished(counts: impl Fn(&str, &str) -> bool) -> usize {
    let output = Command::new("squeue")
        .args([
            "-h",
            "-t",
            "pending,running,completing,configuring",
            "-o",
            "%T|%j",
        ])
        .env("SLURM_CONF", slurm_conf())
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().split_once('|'))
        .filter(|(state, name)| counts(name, state))
        .count()
}

/// How this server's runs reached Slurm, from the Slurm job id each run directory recorded:
/// (bound to a warm spare, which keeps the spare's name; released from a spare, renamed to the
/// run; submitted with `sbatch`).
fn how_started(spare_name: &str, ids: &[String]) -> (usize, usize, usize) {
    let output = Command::new("squeue")
        .args(["-h", "-r", "-t", "all", "-o", "%i|%j"])
        .env("SLURM_CONF", slurm_conf())
        .output()
        .expect("squeue");
    let text = String::from_utf8_lossy(&output.stdout);
    let names: std::collections::HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.trim().split_once('|'))
        .collect();
    let warm = ids
        .iter()
        .filter(|id| names.get(id.as_str()) == Some(&spare_name))
        .count();
    let spares = ids.iter().filter(|id| id.contains('_')).count() - warm;
    (warm, spares, ids.len() - warm - spares)
}

/// Jobs of this server (names starting with `prefix`) that Slurm has not finished: runs, and
/// spares that hold an allocation (pending spares wait unallocated until suanli releases them,
/// and are not work; a warm spare bound to a run keeps the spare's name).
fn unfinished_prefix(prefix: &str) -> usize {
    unfinished(|name, state| {
        name.starts_with(prefix) && (!name.ends_with("-spare") || state != "PENDING")
    })
}

/// Clears slurmctld's request counters (`sdiag -r`; needs root or SlurmUser).
fn reset_requests() -> bool {
    Command::new("sdiag")
        .arg("-r")
        .env("SLURM_CONF", slurm_conf())
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Requests slurmctld served since `reset_requests`, by message type (sdiag's "Remote
/// Procedure Call statistics by message type"), without sdiag's own.
fn requests() -> Vec<(String, u64)> {
    let Ok(output) = Command::new("sdiag")
        .env("SLURM_CONF", slurm_conf())
        .output()
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .skip_while(|l| !l.contains("by message type"))
        .skip(1)
        .take_while(|l| !l.contains("by user"))
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            let count = l.split("count:").nth(1)?.split_whitespace().next()?;
            let count = count.parse().ok()?;
            (name != "REQUEST_STATS_INFO").then(|| (name.to_string(), count))
        })
        .collect()
}

/// Requests per job: all, and without queries (`*_INFO*`: `squeue`, `sinfo`, and `scontrol`
/// looking a job up), which both sides make at rates of their own (the plain runs' wait loop
/// asks `squeue` every 100 ms, suanli every poll), then every type.
fn per_job(label: &str, counts: &[(String, u64)], jobs: usize) -> String {
    let per = |n: u64| n as f64 / jobs.max(1) as f64;
    let all: u64 = counts.iter().map(|(_, n)| n).sum();
    let work: u64 = counts
        .iter()
        .filter(|(name, _)| !name.contains("_INFO"))
        .map(|(_, n)| n)
        .sum();
    let mut sorted = counts.to_vec();
    sorted.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    let each: Vec<String> = sorted
        .iter()
        .map(|(name, n)| format!("{} {:.2}", name.trim_start_matches("REQUEST_"), per(*n)))
        .collect();
    format!(
        "slurmctld requests per job, {label}: {:.2} without queries, {:.2} in all ({})",
        per(work),
        per(all),
        each.join(", ")
    )
}

/// suanli's jobs in `state`, counted up to `up_to`.
async fn count(http: &reqwest::Client, url: &str, token: &str, state: &str, up_to: usize) -> usize {
    list(http, url, token, state, up_to).await.len()
}

/// suanli's jobs in `state`, up to `up_to` (pages of at most 1,000).
async fn list(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    state: &str,
    up_to: usize,
) -> Vec<Value> {
    let mut listed: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    while listed.len() < up_to {
        let limit = (up_to - listed.len()).min(1000);
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
        listed.extend(page.as_array().cloned().unwrap_or_default());
        if after.is_none() {
            break;
        }
    }
    listed
}

/// Where a run's time went, from the files of its run directory: written when suanli placed
/// it (`job.sh`), when `sbatch` answered (`slurm-job-id`) and when its batch script ended
/// (`exit`); and, per GPU set, from one run's end to the next run's placement on it.
fn profile(jobs: &[Value]) -> String {
    let modified = |dir: &str, file: &str| {
        std::fs::metadata(std::path::Path::new(dir).join(file))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
    };
    let mut runs = Vec::new();
    for job in jobs {
        let run = &job["run"];
        let dir = run["run_dir"].as_str().unwrap_or_default();
        if let (Some(placed), Some(submitted), Some(exited)) = (
            modified(dir, "job.sh"),
            modified(dir, "slurm-job-id"),
            modified(dir, "exit"),
        ) {
            let slot = format!("{}{}", run["node"], run["devices"]);
            runs.push((slot, placed, submitted, exited));
        }
    }
    if runs.is_empty() {
        return String::new();
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let submit: Vec<f64> = runs.iter().map(|r| r.2 - r.1).collect();
    let in_slurm: Vec<f64> = runs.iter().map(|r| r.3 - r.2).collect();
    runs.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let gaps: Vec<f64> = runs
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[1].1 - w[0].3)
        .collect();
    let first = runs.iter().map(|r| r.1).fold(f64::MAX, f64::min);
    let last = runs.iter().map(|r| r.3).fold(f64::MIN, f64::max);
    let busy: f64 = runs.iter().map(|r| r.3 - r.1).sum::<f64>() / (last - first);
    format!(
        "per run (mean of {}): placed -> sbatch answered {:.3} s, sbatch -> exit file {:.3} s, \
         exit file -> next run placed on the same GPUs {:.3} s; runs in flight {busy:.1} on average",
        runs.len(),
        mean(&submit),
        mean(&in_slurm),
        mean(&gaps)
    )
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
    while unfinished(|job, _| job == name) > 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    (accepted, jobs as f64 / started.elapsed().as_secs_f64())
}

async fn through_suanli(
    jobs: usize,
    poll_ms: u64,
    warm_spares: usize,
    keep_data: bool,
) -> (f64, f64, String) {
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
    cluster.warm_spares = warm_spares;
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
    let (http, token) = common::admin_with_tenant(&url, &data_dir, "bench").await;
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
    // This server's Slurm jobs are named `suanli-<tag>-...`; its spares' name says the tag.
    let spare_name = std::fs::read_to_string(data_dir.join("slurm-spares/slurm/name")).unwrap();
    let prefix = spare_name.trim().trim_end_matches("spare").to_string();
    loop {
        let waited = prefix.clone();
        let left = tokio::task::spawn_blocking(move || unfinished_prefix(&waited))
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end_to_end = jobs as f64 / started.elapsed().as_secs_f64();
    let done = list(&http, &url, &token, "succeeded", jobs).await;
    let succeeded = done.len();
    let mut profiled = profile(&done);
    let ids: Vec<String> = done
        .iter()
        .filter_map(|job| job["run"]["run_dir"].as_str())
        .filter_map(|dir| {
            std::fs::read_to_string(std::path::Path::new(dir).join("slurm-job-id")).ok()
        })
        .map(|id| id.trim().to_string())
        .collect();
    let spare_name = spare_name.trim().to_string();
    let (warm, spared, sbatch) =
        tokio::task::spawn_blocking(move || how_started(&spare_name, &ids))
            .await
            .unwrap();
    profiled.push_str(&format!(
        "\nruns bound to warm spares {warm}, released from spares {spared}, submitted with sbatch {sbatch}"
    ));
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
    (accepted, end_to_end, profiled)
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
    let warm_spares = flag(&args, "--warm-spares").map_or(
        suanli_server::slurm::SlurmConfig::new("slurm").warm_spares,
        |s| s.parse().expect("--warm-spares N"),
    );
    // `true` alone, and `srun true`: a job step, as every suanli run (and every gang) has.
    // Plain first: suanli then runs beside their 2 x N ended jobs, which Slurm keeps listing
    // for MinJobAge.
    let plain = !args.iter().any(|a| a == "--skip-plain");
    let (mut plain_rows, mut step_jobs, mut request_lines) = (Vec::new(), None, Vec::new());
    let mut cpu_lines = Vec::new();
    let counted = reset_requests();
    if plain {
        for (label, wrap) in [("sbatch true", "true"), ("sbatch srun true", "srun true")] {
            reset_requests();
            let cpu = Cpu::now();
            let (accepted, per_s) = tokio::task::spawn_blocking(move || plain_sbatch(jobs, wrap))
                .await
                .unwrap();
            cpu_lines.push(Cpu::now().since(&cpu, label, jobs));
            request_lines.push(per_job(label, &requests(), jobs));
            plain_rows.push((label, accepted, per_s));
            step_jobs = Some(per_s);
        }
    }
    reset_requests();
    let cpu = Cpu::now();
    let (suanli_accepted, suanli_jobs, profiled) = through_suanli(
        jobs,
        poll_ms,
        warm_spares,
        args.iter().any(|a| a == "--keep-data"),
    )
    .await;
    cpu_lines.push(Cpu::now().since(&cpu, "through suanli", jobs));
    request_lines.push(per_job("through suanli", &requests(), jobs));
    println!("{jobs} jobs (`true`, 1 GPU each) on the 4-node Slurm of .ci/slurm.sh");
    println!("{:<18} {:>12} {:>14}", "", "accepted/s", "end-to-end/s");
    for (label, accepted, per_s) in &plain_rows {
        println!("{label:<18} {accepted:>12.1} {per_s:>14.2}");
    }
    println!(
        "{:<18} {suanli_accepted:>12.1} {suanli_jobs:>14.2}",
        "through suanli"
    );
    println!("{profiled}");
    if counted {
        for line in &request_lines {
            println!("{line}");
        }
    }
    for line in &cpu_lines {
        println!("{line}");
    }
    if let Some(step_jobs) = step_jobs {
        println!(
            "suanli takes {:.2}x the end-to-end time of `sbatch srun true`",
            step_jobs / suanli_jobs
        );
    }
}
