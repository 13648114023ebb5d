//! Restarts and recovery: a killed job resumes from its checkpoint, a failed node's jobs resume
//! elsewhere, a server restarted on PostgreSQL keeps everything, and one restarted with fewer
//! devices fails the jobs that can no longer run.

use reqwest::Method;
use serde_json::json;

use crate::common::{self, TestServer, assert_reason_starts_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_job_restarts_from_its_checkpoint() {
    let (server, alice) = TestServer::with_alice("h100:2").await;
    let checkpoint = common::shared_dir("suanli-ckpt");
    let script = r#"
        if [ -n "$SUANLI_RESUME_FROM" ]; then
            echo "resumed from $SUANLI_RESUME_FROM step $(cat $SUANLI_RESUME_FROM/step)"; exit 0
        fi
        echo 42 > $SUANLI_CHECKPOINT_DIR/step
        echo $$ > $SUANLI_CHECKPOINT_DIR/pid
        exec sleep 30
    "#;
    let id = server
        .submit(
            &alice,
            json!({ "gpus": 1, "max_restarts": 2, "command": ["sh", "-c", script],
            "checkpoint_dir": checkpoint.display().to_string() }),
        )
        .await;
    server.wait_state(&alice, id, "running").await;
    let pid_file = checkpoint.join("pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pid_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "job never wrote its pid"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: killing the job's own process, which the test started through the server.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let job = server.wait_state(&alice, id, "succeeded").await;
    assert_eq!(job["restarts"], 1);
    assert_eq!(job["attempts"], 2);
    let first = server.logs(&alice, id, 0).await;
    assert!(!first.contains("resumed"), "{first}");
    let second = server.logs(&alice, id, 1).await;
    assert!(
        second.contains(&format!("resumed from {} step 42", checkpoint.display())),
        "{second}"
    );

    // With no restarts left the job fails and says why.
    let id = server
        .submit(
            &alice,
            json!({ "gpus": 1, "max_restarts": 1, "command": ["sh", "-c", "exit 7"] }),
        )
        .await;
    let job = server.wait_state(&alice, id, "failed").await;
    assert_eq!(job["restarts"], 1);
    assert_eq!(job["reason"], "exit code 7; no restarts left (1 of 1 used)");
    std::fs::remove_dir_all(&checkpoint).ok();
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_node_requeues_its_jobs_which_resume_elsewhere() {
    let (server, alice) = TestServer::with_alice("h100:2,mi300x:2").await;
    let checkpoint = common::unique_dir("suanli-node-ckpt");
    let script = r#"if [ -n "$SUANLI_RESUME_FROM" ]; then echo resumed on $SUANLI_DEVICES; exit 0; fi; exec sleep 30"#;
    let id = server
        .submit(
            &alice,
            json!({ "gpus": 2, "command": ["sh", "-c", script],
            "checkpoint_dir": checkpoint.display().to_string() }),
        )
        .await;
    let job = server.wait_state(&alice, id, "running").await;
    let first_pool = job["run"]["pool"].as_str().unwrap().to_string();
    let answer = server
        .ok(
            Method::POST,
            &format!("/api/v1/nodes/{first_pool}/down"),
            &server.admin,
            None,
        )
        .await;
    assert_eq!(answer["requeued_jobs"], json!([id]));
    let job = server.wait_state(&alice, id, "succeeded").await;
    assert_ne!(job["run"]["pool"], first_pool.as_str(), "{job}");
    assert_eq!(
        job["restarts"], 0,
        "a node failure is not the job's failure"
    );
    assert_eq!(job["attempts"], 2);
    assert!(
        server
            .logs(&alice, id, 1)
            .await
            .starts_with("resumed on 0,1")
    );
    let nodes = server.ok(Method::GET, "/api/v1/nodes", &alice, None).await;
    let down: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] == "down")
        .map(|n| n["pool"].as_str().unwrap())
        .collect();
    assert_eq!(down, [first_pool.as_str()]);
    server
        .ok(
            Method::POST,
            &format!("/api/v1/nodes/{first_pool}/up"),
            &server.admin,
            None,
        )
        .await;
    let nodes = server.ok(Method::GET, "/api/v1/nodes", &alice, None).await;
    assert!(nodes.as_array().unwrap().iter().all(|n| n["state"] == "up"));
}

/// The same server on PostgreSQL: a fresh database (the CI role may create databases), a job
/// submitted, run and read back, a restart that keeps everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_runs_on_postgres() {
    let Ok(url) = std::env::var("SUANLI_TEST_DATABASE_URL") else {
        println!(
            "skipped: set SUANLI_TEST_DATABASE_URL=postgres://... to run the server on PostgreSQL"
        );
        return;
    };
    let name = format!(
        "suanli_e2e_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    );
    let admin_pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin_pool)
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let database = format!("{base}/{name}");
    {
        let server = TestServer::start_with("h100:2", Some(database.clone())).await;
        let alice = server.user("research", "alice", "member").await;
        let id = server
            .submit(
                &alice,
                json!({ "gpus": 2, "command": ["sh", "-c", "echo on postgres"] }),
            )
            .await;
        server.wait_state(&alice, id, "succeeded").await;
        assert_eq!(server.logs(&alice, id, 0).await, "on postgres\n");
        let verdict = server.verify_audit().await;
        assert_eq!(verdict["ok"], true);
    }
    // Let the first server's pool close before the database is dropped.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin_pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_fewer_devices_fails_jobs_that_can_no_longer_run() {
    let first = TestServer::start("h100:4").await;
    let alice = first.user("research", "alice", "member").await;
    // The blocker is still running when the server stops (a cancel here would race the
    // shutdown: its end, if reported before, lets the next server-side pass start `big`).
    let blocker = first
        .submit_running(&alice, json!({ "gpus": 4, "command": ["sleep", "30"] }))
        .await;
    let big = first
        .submit(&alice, json!({ "gpus": 4, "command": ["true"] }))
        .await;
    let small = first
        .submit(&alice, json!({ "gpus": 1, "command": ["true"] }))
        .await;
    let data_dir = first.data_dir.clone();
    first.stop().await;
    // Same data directory, now with two devices: the 4-device job is failed with the reason.
    let second = TestServer::restart(&data_dir, "h100:2").await;
    let job = second.wait_state(&alice, big, "failed").await;
    assert_reason_starts_with(&job, "can no longer run on this cluster");
    second.wait_state(&alice, small, "succeeded").await;
    // The surviving run's devices are gone: it is stopped, and fails for the same reason.
    let job = second.wait_state(&alice, blocker, "failed").await;
    assert_reason_starts_with(&job, "can no longer run on this cluster");
}
