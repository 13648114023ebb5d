//! Jobs end to end on a real server and real processes: lifecycle, queue reasons, cancel,
//! gangs, quotas and goal estimates; restarts and recovery are in `jobs/recovery.rs` (part of
//! this test binary).

mod common;
#[path = "jobs/recovery.rs"]
mod recovery;

use common::{TestServer, assert_reason_starts_with};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_its_devices_and_its_output_lands_in_its_log() {
    let (server, alice) = TestServer::with_alice("h100-sxm5-80gb:4").await;
    let id = server
        .submit(&alice, json!({ "name": "hello", "gpus": 2,
            "command": ["sh", "-c", "echo hello devices=$CUDA_VISIBLE_DEVICES job=$SUANLI_JOB_ID; echo oops >&2"] }))
        .await;
    let job = server.wait_state(&alice, id, "succeeded").await;
    assert_eq!(job["exit_code"], 0);
    assert_eq!(job["spec"]["user"], "alice");
    assert_eq!(job["spec"]["tenant"], "research");
    let log = server.logs(&alice, id, 0).await;
    assert!(
        log.contains(&format!("hello devices=0,1 job={id}")),
        "{log}"
    );
    assert!(log.contains("oops"), "{log}");
    let (_, tail) = server
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{id}/logs?attempt=0&offset=6"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(tail.as_str().unwrap(), &log[6..]);
}

/// A job holding all devices makes the next one wait, with the reason; cancelling the running
/// job kills its process group and lets the waiting one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_lifecycle_queue_reason_and_cancel() {
    let (server, alice) = TestServer::with_alice("h100-sxm5-80gb:4").await;
    let long = server
        .submit_running(&alice, json!({ "gpus": 4, "command": ["sleep", "30"] }))
        .await;
    let waiting = server
        .submit(&alice, json!({ "gpus": 2, "command": ["true"] }))
        .await;
    let job = server.job(&alice, waiting).await;
    assert_eq!(job["state"], "queued");
    assert_reason_starts_with(&job, "capacity: needs 2 of h100-sxm5-80gb; 0 free");
    let nodes = server.ok(Method::GET, "/api/v1/nodes", &alice, None).await;
    assert_eq!(nodes[0]["free"], 0);
    let metrics = server
        .call(Method::GET, "/metrics", Some(&alice), None)
        .await
        .1;
    let metrics = metrics.as_str().unwrap();
    assert!(metrics.contains("suanli_queue_length 1"), "{metrics}");
    assert!(metrics.contains("suanli_running_jobs 1"), "{metrics}");
    assert!(
        metrics.contains("suanli_accelerators_allocated{accelerator=\"h100-sxm5-80gb\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("suanli_scheduling_pass_seconds_count"),
        "{metrics}"
    );

    server.cancel(&alice, long).await;
    let job = server.wait_state(&alice, long, "cancelled").await;
    assert_eq!(job["reason"], "cancelled");
    server.wait_state(&alice, waiting, "succeeded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_can_be_cancelled_too_and_an_ended_one_cannot() {
    let (server, alice) = TestServer::with_alice("h100-sxm5-80gb:4").await;
    let blocker = server
        .submit_running(&alice, json!({ "gpus": 4, "command": ["sleep", "30"] }))
        .await;
    let queued = server
        .submit(&alice, json!({ "gpus": 4, "command": ["true"] }))
        .await;
    let next = server
        .submit(
            &alice,
            json!({ "gpus": 4, "command": ["sh", "-c", "echo devices=$CUDA_VISIBLE_DEVICES"] }),
        )
        .await;
    server.cancel(&alice, queued).await;
    let job = server.wait_state(&alice, queued, "cancelled").await;
    assert_eq!(job["reason"], "cancelled while queued");
    server.cancel(&alice, blocker).await;
    server.wait_state(&alice, blocker, "cancelled").await;
    // The blocker's devices go straight to the next job; the cancelled one never starts.
    server.wait_state(&alice, next, "succeeded").await;
    assert!(
        server
            .logs(&alice, next, 0)
            .await
            .contains("devices=0,1,2,3")
    );
    let job = server.job(&alice, queued).await;
    assert_eq!(job["state"], "cancelled");
    assert!(job["run"].is_null(), "{job}");
    assert_eq!(job["attempts"], 0, "{job}");
    assert!(job["started_at_s"].is_null(), "{job}");
    assert!(
        !server
            .data_dir
            .join("jobs")
            .join(queued.to_string())
            .exists(),
        "the cancelled queued job got a run directory"
    );
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{queued}/cancel"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 409);
    // The cancelled queued job never ran, and the devices are all free again.
    let nodes = server.ok(Method::GET, "/api/v1/nodes", &alice, None).await;
    assert_eq!(nodes[0]["free"], 4);
    // All three are listed, the cancelled one too.
    let jobs = server.ok(Method::GET, "/api/v1/jobs", &alice, None).await;
    assert_eq!(jobs.as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_can_never_fit_is_refused_with_the_reason() {
    let (server, alice) = TestServer::with_alice("h100-sxm5-80gb:4").await;
    let (status, body) = server
        .submit_refused(&alice, json!({ "gpus": 8, "command": ["true"] }))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("can never run"),
        "{body}"
    );
    // Refused, it is not a job.
    let jobs = server.ok(Method::GET, "/api/v1/jobs", &alice, None).await;
    assert_eq!(jobs.as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gang_processes_get_ranks() {
    let server = TestServer::start("mi300x:4").await;
    let bob = server.user("infra", "bob", "member").await;
    let id = server
        .submit(&bob, json!({ "gpus": 4, "processes": 2,
            "command": ["sh", "-c", "echo rank=$RANK local=$LOCAL_RANK world=$WORLD_SIZE addr=$MASTER_ADDR port=$MASTER_PORT hip=$HIP_VISIBLE_DEVICES"] }))
        .await;
    server.wait_state(&bob, id, "succeeded").await;
    let log = server.logs(&bob, id, 0).await;
    assert!(
        log.contains("rank=0 local=0 world=2 addr=127.0.0.1"),
        "{log}"
    );
    assert!(log.contains("[rank 1] rank=1 local=1 world=2"), "{log}");
    assert!(log.lines().all(|l| l.starts_with("[rank ")), "{log}");
    assert!(log.contains("hip=0,1") && log.contains("hip=2,3"), "{log}");
    // One failing rank fails the gang.
    let id = server
        .submit(
            &bob,
            json!({ "gpus": 2, "processes": 2,
            "command": ["sh", "-c", "if [ $RANK = 1 ]; then exit 3; fi; sleep 30"] }),
        )
        .await;
    let job = server.wait_state(&bob, id, "failed").await;
    assert_eq!(job["exit_code"], 3);
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_holds_jobs_until_usage_drops() {
    let (server, alice) = TestServer::with_alice("h100:8").await;
    server.set_quota("research", "h100", 2).await;
    let first = server
        .submit_running(&alice, json!({ "gpus": 2, "command": ["sleep", "30"] }))
        .await;
    let second = server
        .submit(&alice, json!({ "gpus": 2, "command": ["true"] }))
        .await;
    let job = server.job(&alice, second).await;
    assert_eq!(job["state"], "queued");
    assert_reason_starts_with(
        &job,
        "quota: tenant `research` has 2 of its 2 h100-sxm5-80gb",
    );
    server.cancel(&alice, first).await;
    server.wait_state(&alice, second, "succeeded").await;
    let quotas = server.ok(Method::GET, "/api/v1/quotas", &alice, None).await;
    assert_eq!(quotas[0]["limit"], 2);
    assert_eq!(quotas[0]["used"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goal_jobs_get_an_estimate_from_the_planner() {
    let (server, alice) = TestServer::with_alice("h100:8,mi300x:8").await;
    let job = server
        .ok(
            Method::POST,
            "/api/v1/jobs",
            &alice,
            Some(json!({ "gpus": 8, "command": ["true"],
            "goal": { "model": "llama-2-7b", "tokens": 1e9 } })),
        )
        .await;
    let goal = &job["spec"]["goal"];
    assert_eq!(goal["model"], "llama-2-7b");
    for accelerator in ["h100-sxm5-80gb", "mi300x"] {
        let rate = goal["tokens_per_s"][accelerator].as_f64().unwrap();
        let hours = goal["estimated_hours"][accelerator].as_f64().unwrap();
        assert!(rate > 1e4, "{goal}");
        assert!((hours - 1e9 / rate / 3600.0).abs() < 1e-9);
    }
    server
        .wait_state(&alice, job["id"].as_i64().unwrap(), "succeeded")
        .await;
    let (status, body) = server
        .submit_refused(
            &alice,
            json!({ "command": ["true"],
            "goal": { "model": "no-such-model", "tokens": 1e9 } }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_whole_process_group() {
    let (server, alice) = TestServer::with_alice("h100:1").await;
    let dir = common::shared_dir("suanli-pgroup");
    let pid_file = dir.join("grandchild");
    // The job starts a background grandchild and waits on it.
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let id = server
        .submit(&alice, json!({ "command": ["sh", "-c", script] }))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let pid: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job never started its grandchild"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    server.cancel(&alice, id).await;
    server.wait_state(&alice, id, "cancelled").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // SAFETY: signal 0 only checks whether the grandchild still exists.
    while unsafe { libc::kill(pid, 0) } == 0 && !is_zombie(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "grandchild {pid} survived the cancel"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
