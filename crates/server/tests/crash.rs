//! A real server process killed (SIGKILL) while starting a 4-process gang, between rank 0 and
//! rank N: the restarted server must run the job again in full, never count it as succeeded.
//!
//! The crashing server is this test binary run again as a child (`crash_child_server`), with
//! `SUANLI_FAULT_KILL_AFTER_RANK=N`, which makes it SIGKILL itself right after starting rank N.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

const CHILD_DIR: &str = "SUANLI_CRASH_CHILD_DIR";

/// The child server: serves until the fault injection kills it (a no-op in a normal run).
#[test]
fn crash_child_server() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let data_dir = std::path::PathBuf::from(&dir);
        std::fs::create_dir_all(&data_dir).unwrap();
        std::fs::write(format!("{dir}.url"), url).unwrap();
        let config = suanli_server::ServerConfig {
            data_dir,
            devices: Some("h100:4".into()),
            policy: "fifo".into(),
            ..Default::default()
        };
        suanli_server::run(config, listener, std::future::pending())
            .await
            .unwrap();
    });
}

async fn call(url: &str, token: &str, method: Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Starts the child server over `data_dir`, creates a member and submits a 4-process gang; the
/// child kills itself after starting rank `fault_rank`.
async fn crash_while_starting_a_gang(data_dir: &Path, fault_rank: u32) {
    let url_file = format!("{}.url", data_dir.display());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child_server", "--exact", "--nocapture"])
        .env(CHILD_DIR, data_dir)
        .env("SUANLI_FAULT_KILL_AFTER_RANK", fault_rank.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (url, admin) = loop {
        let url = std::fs::read_to_string(&url_file).unwrap_or_default();
        let admin = std::fs::read_to_string(data_dir.join("admin-token")).unwrap_or_default();
        if !url.is_empty() && !admin.is_empty() {
            break (url, admin.trim().to_string());
        }
        assert!(Instant::now() < deadline, "child server never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    call(
        &url,
        &admin,
        Method::POST,
        "/api/v1/tenants",
        json!({ "name": "research" }),
    )
    .await;
    let user = json!({ "name": "alice", "tenant": "research", "role": "member" });
    call(&url, &admin, Method::POST, "/api/v1/users", user).await;
    // The submit request dies with the server: the job is stored, its run never answered.
    let script = "echo rank=$RANK attempt=$SUANLI_ATTEMPT; sleep 1";
    let _ = reqwest::Client::new()
        .post(format!("{url}/api/v1/jobs"))
        .bearer_auth(&admin)
        .json(&json!({ "tenant": "research", "gpus": 4, "processes": 4,
            "command": ["sh", "-c", script] }))
        .send()
        .await;
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "child: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_cut_short_by_a_server_crash_is_run_again_not_succeeded() {
    for fault_rank in 0..3 {
        let data_dir = common::unique_dir(&format!("suanli-crash-{fault_rank}"));
        crash_while_starting_a_gang(&data_dir, fault_rank).await;
        let attempt0 = data_dir.join("jobs/1/attempt-0");
        let started = (0..4)
            .filter(|r| attempt0.join(format!("rank{r}.pid")).exists())
            .count();
        assert_eq!(
            started,
            fault_rank as usize + 1,
            "ranks started before the crash"
        );

        let server = TestServer::restart(&data_dir, "h100:4").await;
        let job = server.wait_state(&server.admin, 1, "succeeded").await;
        assert_eq!(job["attempts"], 2, "not re-run after the crash: {job}");
        assert_eq!(
            job["restarts"], 0,
            "a server crash is not the job's failure: {job}"
        );
        let log = server.logs(&server.admin, 1, 1).await;
        for rank in 0..4 {
            assert!(log.contains(&format!("rank={rank} attempt=1")), "{log}");
        }
        // The ranks of the cut-short attempt were killed, not left running alone.
        let first = server.logs(&server.admin, 1, 0).await;
        assert!(first.lines().count() <= fault_rank as usize + 1, "{first}");
        let audit = server
            .ok(Method::GET, "/api/v1/jobs/1", &server.admin, None)
            .await;
        assert_eq!(audit["exit_code"], 0);
        server.stop().await;
    }
}
