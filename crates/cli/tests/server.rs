//! `kill -9` of the real `suanli serve` with jobs queued and running, then a restart: no job is
//! lost or duplicated, a run that survived is re-attached (not run twice), runs that ended while
//! the server was down are settled by their restart policy. Then `suanli audit verify
//! --data-dir` catches an edited row.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ServeProcess, free_port, serve_command, unique_dir};
use serde_json::{Value, json};

fn start(data_dir: &Path, port: u16) -> ServeProcess {
    let mut command = serve_command(port, data_dir);
    command.args(["--devices", "h100:4"]);
    ServeProcess::spawn(command, port, Duration::from_secs(20))
}

fn call(port: u16, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let client = reqwest::blocking::Client::new();
    let mut request = client
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().unwrap()
}

fn jobs(port: u16, token: &str) -> Vec<Value> {
    call(port, token, reqwest::Method::GET, "/api/v1/jobs", None)
        .as_array()
        .unwrap()
        .clone()
}

fn marks(dir: &Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join(name)).map_or(0, |text| text.lines().count())
}

#[test]
fn kill_9_of_the_server_loses_and_duplicates_nothing() {
    let root = unique_dir("suanli-crash");
    let data_dir = root.join("data");
    let marks_dir = root.join("marks");
    std::fs::create_dir_all(&marks_dir).unwrap();
    // Jobs run as unprivileged per-tenant users when the test runs as root: like /tmp.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&marks_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let port = free_port();
    let server = start(&data_dir, port);
    let admin = std::fs::read_to_string(data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    call(
        port,
        &admin,
        reqwest::Method::POST,
        "/api/v1/tenants",
        Some(json!({ "name": "research" })),
    );
    let submit = |name: &str, gpus: u32, script: &str, extra: Value| {
        let mut body = json!({ "tenant": "research", "name": name, "gpus": gpus,
            "command": ["sh", "-c", format!("echo start >> {}/{name}; {script}", marks_dir.display())] });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        call(
            port,
            &admin,
            reqwest::Method::POST,
            "/api/v1/jobs",
            Some(body),
        )["id"]
            .as_i64()
            .unwrap()
    };
    // Ends while the server is down: settled as succeeded from its exit file.
    let quick = submit("quick", 1, "sleep 1", json!({}));
    // Outlives the server: re-attached, never started twice.
    let long = submit("long", 1, "sleep 5", json!({}));
    // Fails while the server is down: restarted from its checkpoint after recovery.
    let checkpoint = root.join("ckpt");
    let flaky = submit(
        "flaky",
        1,
        "if [ -n \"$SUANLI_RESUME_FROM\" ]; then exit 0; fi; sleep 1; exit 1",
        json!({ "max_restarts": 1, "checkpoint_dir": checkpoint.display().to_string() }),
    );
    // Queued behind the others.
    let queued_a = submit("queued_a", 2, "true", json!({}));
    let queued_b = submit("queued_b", 2, "true", json!({}));
    let before = jobs(port, &admin);
    let states: Vec<&str> = before
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["running", "running", "running", "queued", "queued"]
    );

    // kill -9 the server.
    let mut server = server;
    server.kill_9();
    drop(server);
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(marks(&marks_dir, "long"), 1);

    let _server = start(&data_dir, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let after = jobs(port, &admin);
        if after.iter().all(|j| j["state"] == "succeeded") {
            break after;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not all finish: {after:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let ids: Vec<i64> = after.iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        [quick, long, flaky, queued_a, queued_b],
        "no job lost or added"
    );
    let attempts: Vec<i64> = after
        .iter()
        .map(|j| j["attempts"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 1, 2, 1, 1]);
    assert_eq!(after[2]["restarts"], 1);
    for (name, runs) in [
        ("quick", 1),
        ("long", 1),
        ("flaky", 2),
        ("queued_a", 1),
        ("queued_b", 1),
    ] {
        assert_eq!(
            marks(&marks_dir, name),
            runs,
            "{name} ran {} times",
            marks(&marks_dir, name)
        );
    }
    drop(_server);

    // The audit log verifies offline, and an edited row is named.
    let verify = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_suanli"))
            .args(["audit", "verify", "--data-dir"])
            .arg(dir)
            .output()
            .unwrap()
    };
    let ok = verify(&data_dir);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("audit log intact: 8 entries"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            data_dir.join("suanli.db").display()
        ))
        .await
        .unwrap();
        sqlx::query("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let bad = verify(&data_dir);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("audit log broken at entry 3"), "{stderr}");
    std::fs::remove_dir_all(&root).ok();
}

fn suanli(url: &str, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_suanli"))
        .args(args)
        .env("SUANLI_URL", url)
        .env("SUANLI_TOKEN", token)
        .env("SUANLI_CONFIG_DIR", "/nonexistent-suanli-config")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn cli_client_submits_follows_and_fails_cleanly() {
    let data_dir = unique_dir("suanli-cli");
    let port = free_port();
    let _server = start(&data_dir, port);
    let url = format!("http://127.0.0.1:{port}");
    let admin = std::fs::read_to_string(data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let ok = |args: &[&str]| {
        let out = suanli(&url, &admin, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["tenant", "create", "research"]);
    ok(&[
        "user", "create", "alice", "--tenant", "research", "--role", "member",
    ]);
    let alice = ok(&["token", "create", "--user", "alice"])
        .trim()
        .to_string();
    assert!(alice.starts_with("suanli_"));
    let out = suanli(
        &url,
        &alice,
        &[
            "job",
            "submit",
            "--gpus",
            "2",
            "--name",
            "hi",
            "--env",
            "WHO=world",
            "--",
            "sh",
            "-c",
            "sleep 0.3; echo hello $WHO $CUDA_VISIBLE_DEVICES",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id, "1");
    let out = suanli(&url, &alice, &["job", "logs", &id, "--follow"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world 0,1\n");
    let out = suanli(&url, &alice, &["job", "show", &id, "--json"]);
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["state"], "succeeded");
    let list = ok(&["job", "list"]);
    assert!(list.contains("succeeded") && list.contains("hi"), "{list}");
    // Filters go through an encoded query string: a value with `&` matches nothing rather than
    // smuggling in a second parameter.
    assert!(ok(&["job", "list", "--state", "succeeded"]).contains("hi"));
    let smuggled = ok(&[
        "job",
        "list",
        "--tenant",
        "research&state=succeeded",
        "--json",
    ]);
    assert_eq!(smuggled.trim(), "[]", "{smuggled}");
    assert!(ok(&["node", "list"]).contains("h100-sxm5-80gb"));

    // Errors: one line, non-zero exit, no panic.
    for (token, args, expected) in [
        (
            alice.as_str(),
            vec!["tenant", "create", "x"],
            "forbidden: only an admin creates tenants",
        ),
        (
            "bad",
            vec!["job", "list"],
            "invalid token; set SUANLI_TOKEN",
        ),
        (
            alice.as_str(),
            vec!["job", "show", "99"],
            "job 99 not found",
        ),
        (
            alice.as_str(),
            vec!["job", "submit", "--gpus", "9", "--", "true"],
            "job can never run",
        ),
    ] {
        let out = suanli(&url, token, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let out = suanli("http://127.0.0.1:1", &admin, &["job", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the server"));
    std::fs::remove_dir_all(&data_dir).ok();
}
