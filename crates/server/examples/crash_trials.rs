//! kill -9 trials under load: a real server process is killed (SIGKILL) again and again while
//! it runs 4-process gangs, and restarted over the same data directory; at the end every job
//! must have ended `succeeded` with exactly one complete run of all four ranks (none lost,
//! none duplicated, none succeeded without running).
//!
//! ```text
//! cargo run -p suanli-server --example crash_trials -- 20
//! ```
//!
//! Odd trials kill the server at a random moment; even trials make it kill itself between
//! starting rank N and rank N+1 of a gang (`SUANLI_FAULT_KILL_AFTER_RANK`), the window where a
//! gang is partly started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const JOBS_PER_TRIAL: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(PathBuf::from(&args[2]));
    }
    let trials: u32 = args.get(1).and_then(|t| t.parse().ok()).unwrap_or(20);
    let root = std::env::temp_dir().join(format!("suanli-crash-trials-{}", std::process::id()));
    let data_dir = root.join("data");
    let ledger_dir = root.join("ledger");
    std::fs::create_dir_all(&ledger_dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ledger_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let ledger = ledger_dir.join("ranks");
    std::fs::write(&ledger, "").unwrap();
    std::fs::set_permissions(&ledger, std::fs::Permissions::from_mode(0o666)).unwrap();

    let mut seed = (std::process::id() as u64).wrapping_mul(6364136223846793005);
    let mut random = move |below: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % below
    };
    let started = Instant::now();
    let mut submitted = 0;
    let mut accepted = Vec::new();
    for trial in 0..trials {
        let fault = (trial % 2 == 0).then_some((trial / 2) % 3);
        let (mut child, serving) = start_child(&data_dir, fault);
        let Some((url, admin)) = serving else {
            eprintln!("trial {trial}: server died while recovering");
            continue;
        };
        if trial == 0 {
            call(
                &url,
                &admin,
                "POST",
                "/api/v1/tenants",
                json!({ "name": "load" }),
            );
        }
        for _ in 0..JOBS_PER_TRIAL {
            let script = format!(
                "echo \"$SUANLI_JOB_ID $SUANLI_ATTEMPT $RANK start\" >> {l}; sleep 0.3; \
                 echo \"$SUANLI_JOB_ID $SUANLI_ATTEMPT $RANK done\" >> {l}",
                l = ledger.display()
            );
            let body = json!({ "tenant": "load", "gpus": 4, "processes": 4,
                "command": ["sh", "-c", script] });
            // A server killing itself mid-submit drops the answer (the job may still be
            // stored); an answered submit is a job the server accepted and must not lose.
            if let Some(job) = try_call(&url, &admin, "POST", "/api/v1/jobs", body) {
                accepted.push(job["id"].as_i64().expect("a job id"));
            }
            submitted += 1;
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }
        if fault.is_none() {
            std::thread::sleep(Duration::from_millis(100 + random(900)));
            // SAFETY: SIGKILL to the server process this program started.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        }
        let status = child.wait().unwrap();
        eprintln!(
            "trial {trial}: server killed ({status:?}), {} jobs answered",
            accepted.len()
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "trial {trial}: {status:?}"
        );
    }
    // The last server runs everything to the end.
    let (mut child, serving) = start_child(&data_dir, None);
    let (url, admin) = serving.expect("the last server serves");
    let jobs = loop {
        let jobs = call(&url, &admin, "GET", "/api/v1/jobs?limit=1000", Value::Null);
        let jobs = jobs.as_array().unwrap().clone();
        if jobs
            .iter()
            .all(|j| !matches!(j["state"].as_str(), Some("queued" | "running")))
        {
            break jobs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().ok();
    child.wait().ok();
    report(
        trials,
        submitted,
        &accepted,
        &jobs,
        &ledger,
        started.elapsed(),
    );
}

/// Counts complete runs (all four ranks `done` in one attempt) per job from the ledger.
fn report(
    trials: u32,
    submitted: usize,
    accepted: &[i64],
    jobs: &[Value],
    ledger: &Path,
    took: Duration,
) {
    let text = std::fs::read_to_string(ledger).unwrap();
    let mut done: BTreeMap<(i64, u32), u32> = BTreeMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [job, attempt, _rank, "done"] = parts[..] {
            *done
                .entry((job.parse().unwrap(), attempt.parse().unwrap()))
                .or_default() += 1;
        }
    }
    let complete_runs = |id: i64| {
        done.iter()
            .filter(|((j, _), n)| *j == id && **n == 4)
            .count()
    };
    let succeeded = jobs.iter().filter(|j| j["state"] == "succeeded").count();
    let wrongly_succeeded = jobs
        .iter()
        .filter(|j| j["state"] == "succeeded" && complete_runs(j["id"].as_i64().unwrap()) == 0)
        .count();
    let duplicated = jobs
        .iter()
        .filter(|j| complete_runs(j["id"].as_i64().unwrap()) > 1)
        .count();
    let by_id: BTreeMap<i64, &Value> = jobs
        .iter()
        .map(|j| (j["id"].as_i64().unwrap(), j))
        .collect();
    let lost = accepted
        .iter()
        .filter(|id| by_id.get(id).is_none_or(|j| j["state"] != "succeeded"))
        .count()
        + (jobs.len() - succeeded);
    let reruns: u64 = jobs
        .iter()
        .map(|j| j["attempts"].as_u64().unwrap_or(1).saturating_sub(1))
        .sum();
    println!(
        "{trials} kill -9 trials, {submitted} submits ({} answered), {} jobs stored, {succeeded} succeeded; \
         lost {lost}, duplicated {duplicated}, wrongly succeeded {wrongly_succeeded}; \
         {reruns} attempts re-run after a crash; {:.0} s",
        accepted.len(),
        jobs.len(),
        took.as_secs_f64()
    );
    if lost + duplicated + wrongly_succeeded > 0 {
        std::process::exit(1);
    }
}

/// Starts a server over `data_dir`; its URL and the admin token once it serves, or `None` if
/// it died first (a fault-injected server may die while recovery restarts a gang).
fn start_child(data_dir: &Path, fault_rank: Option<u32>) -> (Child, Option<(String, String)>) {
    let url_file = data_dir.with_extension("url");
    let _ = std::fs::remove_file(&url_file);
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.arg("child").arg(data_dir);
    if let Some(rank) = fault_rank {
        command.env("SUANLI_FAULT_KILL_AFTER_RANK", rank.to_string());
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = std::fs::read_to_string(&url_file).unwrap_or_default();
        let admin = std::fs::read_to_string(data_dir.join("admin-token")).unwrap_or_default();
        if !url.is_empty() && !admin.is_empty() {
            return (child, Some((url, admin.trim().to_string())));
        }
        if child.try_wait().unwrap().is_some() {
            return (child, None);
        }
        assert!(Instant::now() < deadline, "server never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn child(data_dir: PathBuf) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = suanli_server::ServerConfig {
            data_dir: data_dir.clone(),
            devices: Some("h100:8".into()),
            policy: "fifo".into(),
            ..Default::default()
        };
        // The URL appears once the server is about to serve (after recovery).
        let url_file = data_dir.with_extension("url");
        tokio::spawn(async move {
            loop {
                if reqwest::get(format!("{url}/healthz")).await.is_ok() {
                    std::fs::write(url_file, url).unwrap();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        suanli_server::run(config, listener, std::future::pending())
            .await
            .unwrap();
    });
}

fn try_call(url: &str, token: &str, method: &str, path: &str, body: Value) -> Option<Value> {
    let client = reqwest::blocking::Client::new();
    let request = match method {
        "POST" => client.post(format!("{url}{path}")).json(&body),
        _ => client.get(format!("{url}{path}")),
    };
    let response = request.bearer_auth(token).send().ok()?;
    response.json().ok()
}

fn call(url: &str, token: &str, method: &str, path: &str, body: Value) -> Value {
    try_call(url, token, method, path, body).expect("server answered")
}
