//! What a new user trips over in the first hour (issue 14): each answer that used to be wrong
//! without a word is now an error naming the fix, a warning, or right.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    assert_stderr_contains, free_port, json, run, stderr, stdout, suanli, wait_until_healthy,
};

const SERVE: [&str; 11] = [
    "plan",
    "serve",
    "--model",
    "llama-3.1-70b",
    "--input-len",
    "2048",
    "--output-len",
    "256",
    "--rate",
    "20",
    "--tpot-slo=50ms",
];

#[test]
fn a_latency_without_a_unit_is_refused_and_the_error_names_the_unit() {
    let out = suanli(&[&SERVE[..], &["--ttft-slo", "500"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let error = stderr(&out);
    assert!(error.contains("500ms") && error.contains("500s"), "{error}");
    for (given, shown) in [
        ("500ms", "TTFT 500.0 ms"),
        ("500MS", "TTFT 500.0 ms"),
        ("2s", "TTFT 2000.0 ms"),
    ] {
        let out = suanli(&[&SERVE[..], &["--ttft-slo", given]].concat());
        assert!(out.status.success(), "{given}: {}", stderr(&out));
        assert!(stdout(&out).contains(shown), "{given}: {}", stdout(&out));
    }
}

fn plan_json(extra: &str) -> serde_json::Value {
    json(&run(&format!(
        "plan train --model llama-3.1-8b --accelerator h100 --count 64 --json {extra}"
    )))
}

#[test]
fn sizes_take_suffixes_and_a_batch_in_tokens_is_caught() {
    let setup = &plan_json("--seq-len 8k --global-batch 512 --tokens 2t")["setup"];
    assert_eq!(setup["seq_len"], 8192);
    assert_eq!(setup["global_batch"], 512);
    assert_eq!(setup["tokens_total"], 2e12);
    let upper = &plan_json("--global-batch 2k --tokens 2T")["setup"];
    assert_eq!(upper["global_batch"], 2000);
    assert_eq!(upper["tokens_total"], 2e12);
    // A million-suffixed batch is tokens: 4M = 4 x 2^20 tokens = 1024 sequences of 4096.
    let tokens = &plan_json("--global-batch 4M")["setup"];
    assert_eq!(tokens["global_batch"], 1024);
    // Four million sequences is caught as surely meant in tokens.
    let out = run(
        "plan train --model llama-3.1-8b --accelerator h100 --count 64 \
         --global-batch-seqs 4000000",
    );
    assert_eq!(out.status.code(), Some(1));
    let error = stderr(&out);
    assert!(
        error.contains("--global-batch 4M") && error.contains("--global-batch-seqs 1024"),
        "{error}"
    );
}

fn plan_warnings(extra: &str) -> String {
    let out = run(&format!(
        "plan train --model llama-3.1-70b --accelerator h100 {extra}"
    ));
    assert!(out.status.success(), "{extra}: {}", stderr(&out));
    stderr(&out)
}

#[test]
fn layouts_and_lengths_a_user_would_not_want_are_named() {
    let uneven = plan_warnings("--count 48 --layout tp=8,pp=3");
    assert!(
        uneven.contains("pp=3 does not divide 80 layers"),
        "{uneven}"
    );
    let wide = plan_warnings("--count 64 --layout tp=64");
    assert!(wide.contains("tp=64 spans 8 nodes of 8"), "{wide}");
    let long = plan_warnings("--count 512 --seq-len 256k --global-batch 64");
    assert!(
        long.contains("beyond Llama 3.1 70B's context of 131072"),
        "{long}"
    );
    let fine = plan_warnings("--count 64 --layout tp=8,pp=4");
    assert!(!fine.contains("warning"), "{fine}");
}

#[test]
fn validate_fails_when_it_evaluated_nothing() {
    let dir = std::env::temp_dir().join(format!("suanli-first-hour-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let out = suanli(&["validate", "train", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "no rows to evaluate");
    let out = suanli(&["validate", "train", "data/validation/inference-runs.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "validate serve");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_simulation_whose_jobs_cannot_run_says_so_and_fails() {
    let out =
        run("simulate --cluster alibaba-spot-2026 --synthetic jobs=200,load=0.9 --policy fair");
    assert_eq!(out.status.code(), Some(1));
    let error = stderr(&out);
    assert!(
        error.contains("none of the 200 jobs can run on alibaba-spot-2026"),
        "{error}"
    );
}

#[test]
fn a_typo_in_serve_devices_stops_the_server_with_suggestions() {
    for devices in ["foo", "h10:8"] {
        let out = run(&format!(
            "serve --devices {devices} --data-dir /nonexistent/x --listen 127.0.0.1:0"
        ));
        assert!(!out.status.success(), "{devices} was accepted");
        let error = stderr(&out);
        assert!(error.contains("unknown accelerator"), "{devices}: {error}");
    }
    let out = run("serve --devices h10:8 --listen 127.0.0.1:0");
    assert_stderr_contains(&out, "did you mean h100-sxm5-80gb");
}

#[test]
fn a_bare_job_command_gets_the_double_dash_hint() {
    let out = run("job submit --tenant research true");
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_contains(&out, "after `--`");
}

struct Server {
    child: Child,
    dir: PathBuf,
    url: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh server on a new data directory, with nothing else set up.
fn fresh_server(name: &str) -> Server {
    fresh_server_with(name, &[])
}

fn fresh_server_with(name: &str, extra: &[&str]) -> Server {
    let dir = std::env::temp_dir().join(format!("suanli-first-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_suanli"))
        .args(["serve", "--devices", "h100:4", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&dir)
        .args(extra)
        .env("SUANLI_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_healthy(port, Duration::from_secs(30));
    let token = std::fs::read_to_string(dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    // Without the scheme, as people type it.
    let url = format!("127.0.0.1:{port}");
    Server {
        child,
        dir,
        url,
        token,
    }
}

/// Runs `suanli` as a client of `server` with the given token.
fn client_as(server: &Server, token: &str, args: &[&str]) -> Output {
    common::suanli_command()
        .args(args)
        .env("SUANLI_URL", &server.url)
        .env("SUANLI_TOKEN", token)
        .output()
        .unwrap()
}

/// Runs `suanli` as the admin's client of `server`.
fn client(server: &Server, args: &[&str]) -> Output {
    client_as(server, &server.token, args)
}

#[test]
fn admins_first_job_runs_with_rank_variables_on_a_fresh_server() {
    let server = fresh_server("rank");
    let script = "echo $RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR ${MASTER_PORT:+port}";
    let out = client(&server, &["job", "submit", "--", "sh", "-c", script]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let out = client(&server, &["job", "wait", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = client(&server, &["job", "logs", &id]);
    assert_eq!(stdout(&out), "0 0 1 127.0.0.1 port\n");
    let out = client(&server, &["job", "show", &id, "--json"]);
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["spec"]["tenant"], "default");

    // A failing job's exit code comes back from `job wait`; --follow says it failed.
    let out = client(
        &server,
        &["job", "submit", "-n", "boom", "--", "sh", "-c", "exit 3"],
    );
    let id = stdout(&out).trim().to_string();
    assert_eq!(
        client(&server, &["job", "wait", &id]).status.code(),
        Some(3)
    );
    assert_eq!(
        client(&server, &["job", "logs", &id, "--follow"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn a_job_past_its_time_limit_is_stopped_and_fails() {
    let server = fresh_server("limit");
    let out = client(
        &server,
        &["job", "submit", "--time-limit", "1s", "--", "sleep", "60"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let started = Instant::now();
    let out = client(&server, &["job", "wait", &id]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not stopped at its limit"
    );
    assert_stderr_contains(&out, "time limit of 1 s reached");
    let out = client(
        &server,
        &["job", "submit", "--time-limit", "1", "--", "true"],
    );
    assert_stderr_contains(&out, "has no unit");
}

#[test]
fn quotas_tokens_and_nodes_read_as_a_person_expects() {
    let server = fresh_server("quota");
    assert!(
        client(&server, &["tenant", "create", "research"])
            .status
            .success()
    );
    let quota_of_two = |accelerator: &str| {
        let args = ["quota", "set", "--tenant", "research", "--limit", "2"];
        client(
            &server,
            &[&args[..], &["--accelerator", accelerator]].concat(),
        )
    };
    assert_stderr_contains(&quota_of_two("h10"), "did you mean h100-sxm5-80gb");
    let out = quota_of_two("h100");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = client(
        &server,
        &["job", "submit", "-t", "research", "-g", "3", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "may hold at most 2");

    let out = client(&server, &["token", "create", "--expires-in", "30d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = client(&server, &["token", "create", "--expires-in", "30"]);
    assert_stderr_contains(&out, "has no unit");
    let list = stdout(&client(&server, &["token", "list"]));
    assert!(list.contains(" UTC"), "{list}");

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = client(&server, &["node", "down", host.trim()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let nodes = stdout(&client(&server, &["node", "list"]));
    let row = nodes.lines().find(|l| l.contains("down")).unwrap();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[5], "0", "{row}");
}

/// What the catalog says of p5.48xlarge: 8 H100 SXM5 per node and, from AWS, 3,200 Gb/s of
/// EFA for 8 GPUs = 50 GB/s per GPU.
fn assert_a_p5_node(setup: &serde_json::Value) {
    assert_eq!(setup["accelerator"]["id"], "h100-sxm5-80gb");
    assert_eq!(setup["per_node"], 8);
    assert_eq!(setup["scaleout_gb_per_s"], 50.0);
}

#[test]
fn plan_serve_takes_a_node_shape_as_plan_train_does() {
    let plan = "plan serve --model llama-3.1-70b --node p5.48xlarge --input-len 2048 \
         --output-len 256";
    assert_a_p5_node(&json(&run(&format!("{plan} --tp 4 --json")))["setup"]);
    let out = run(&format!("{plan} --accelerator mi300x"));
    assert!(!out.status.success());
    assert_stderr_contains(&out, "holds h100-sxm5-80gb, not mi300x");
}

#[test]
fn a_node_shape_from_the_catalog_sets_accelerator_per_node_and_nics() {
    let plan = "plan train --model llama-3.1-8b --node p5.48xlarge --count 64";
    assert_a_p5_node(&json(&run(&format!("{plan} --json")))["setup"]);
    let out = run(&format!("{plan} --accelerator mi300x"));
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "holds h100-sxm5-80gb, not mi300x");
}

#[test]
fn prometheus_scrapes_metrics_without_a_token_on_the_metrics_address() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let server = fresh_server_with("metrics", &["--metrics-listen", &address]);
    let scrape = reqwest::blocking::get(format!("http://{address}/metrics")).unwrap();
    assert_eq!(scrape.status(), 200);
    let text = scrape.text().unwrap();
    assert!(text.contains("# TYPE suanli_"), "{text}");
    // Only /metrics there; the main address still wants a token for it.
    let other = reqwest::blocking::get(format!("http://{address}/api/v1/jobs")).unwrap();
    assert_eq!(other.status(), 404);
    let main = reqwest::blocking::get(format!("http://{}/metrics", server.url)).unwrap();
    assert_eq!(main.status(), 401);
}

#[test]
fn users_and_tenants_can_be_deleted_once_nothing_depends_on_them() {
    let server = fresh_server("delete");
    assert!(
        client(&server, &["tenant", "create", "lab"])
            .status
            .success()
    );
    let out = client(&server, &["user", "create", "carol", "--tenant", "lab"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let carol = stdout(&client(&server, &["token", "create", "--user", "carol"]))
        .trim()
        .to_string();
    let out = client(&server, &["tenant", "delete", "lab"]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "still has users carol");
    let out = client(&server, &["user", "delete", "carol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Her token no longer works.
    let out = client_as(&server, &carol, &["job", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let out = client(&server, &["tenant", "delete", "lab"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&client(&server, &["tenant", "list"])).contains("lab"));
    let out = client(&server, &["user", "delete", "admin"]);
    assert_stderr_contains(&out, "cannot delete yourself");
}

/// The "done when": `suanli serve` then `suanli job submit -- python3 -c ...` on a fresh
/// data directory with no other step (no token to copy, no tenant to create).
#[test]
fn serve_then_submit_needs_no_other_step() {
    let dir = std::env::temp_dir().join(format!("suanli-first-step-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_suanli"))
        .args(["serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(&dir)
        .env("SUANLI_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_healthy(port, Duration::from_secs(30));
    let run = |args: &[&str]| {
        common::suanli_command()
            .args(args)
            .current_dir(&dir)
            .env("SUANLI_URL", format!("127.0.0.1:{port}"))
            .env_remove("SUANLI_TOKEN")
            .output()
            .unwrap()
    };
    // python3 as in the issue where it is installed; the same check in sh where it is not.
    let has_python = Command::new("python3")
        .arg("-c")
        .arg("1")
        .output()
        .is_ok_and(|o| o.status.success());
    let program: Vec<&str> = if has_python {
        vec![
            "python3",
            "-c",
            "import os; print(os.environ['RANK'], os.environ['WORLD_SIZE'])",
        ]
    } else {
        eprintln!("python3 is not installed: checking the variables with sh instead");
        vec!["sh", "-c", "echo $RANK $WORLD_SIZE"]
    };
    let out = run(&[&["job", "submit", "--"][..], &program].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert_eq!(run(&["job", "wait", &id]).status.code(), Some(0));
    assert_eq!(stdout(&run(&["job", "logs", &id])), "0 1\n");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
