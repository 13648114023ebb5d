//! Goal jobs on a real server: the server chooses the pool, gang size and layout; `job plan`
//! predicts the start behind a busy queue; progress reports move the predicted finish; roles and
//! tenants are enforced on the new routes.

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Indicative prices the server plans with (suanli-perf's table, from the providers' public
/// price pages): US dollars per accelerator-hour.
fn price(accelerator: &str) -> f64 {
    match accelerator {
        "h100-sxm5-80gb" => 2.5,
        "a100-sxm4-80gb" => 1.5,
        other => panic!("no price for {other}"),
    }
}

async fn plan(server: &TestServer, token: &str, goal: Value) -> Value {
    server
        .ok(
            Method::POST,
            "/api/v1/jobs/plan",
            token,
            Some(json!({ "goal": goal })),
        )
        .await
}

/// Every option the plan lists, the chosen one first.
fn options(plan: &Value) -> Vec<Value> {
    let mut all: Vec<Value> = plan["chosen"]
        .as_object()
        .map(|_| plan["chosen"].clone())
        .into_iter()
        .collect();
    all.extend(plan["options"].as_array().unwrap().iter().cloned());
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goal_job_takes_the_cheapest_pool_that_meets_its_deadline() {
    let (server, alice) = TestServer::with_alice("h100-sxm5-80gb:8,a100-sxm4-80gb:8").await;
    // At these prices the H100 is the cheaper per token (about 3x the A100's rate at 1.7x its
    // price), so it is the cheap pool; a day-long job holds it, which is what makes it slow.
    let blocker = day_long_h100_job(&server, &alice).await;
    server.wait_state(&alice, blocker, "running").await;
    let tokens = 2e9;
    let loose = plan(
        &server,
        &alice,
        json!({ "model": "llama-3.1-8b", "tokens": tokens, "deadline_s": now_s() + 30 * 86_400 }),
    )
    .await;
    let all = options(&loose);
    // Eight options: 1, 2, 4 and 8 of each type; a gang too small for the model's weights,
    // gradients and optimizer states (16 bytes a parameter in mixed precision, 128 GB for 8B)
    // says so; each other's cost is gang x price x run time.
    assert_eq!(all.len(), 8, "{loose}");
    let (fitting, too_small): (Vec<Value>, Vec<Value>) =
        all.into_iter().partition(|o| o["plan"].is_object());
    assert!(too_small.iter().any(|o| o["count"] == 1), "{loose}");
    for option in &too_small {
        assert!(
            option["lost"].as_str().unwrap().starts_with("memory:"),
            "{option}"
        );
    }
    let all = fitting;
    for option in &all {
        let rate = option["plan"]["tokens_per_s"].as_f64().unwrap();
        let count = option["count"].as_f64().unwrap();
        let run_s = (tokens / rate).ceil();
        let cost = count * price(option["accelerator"].as_str().unwrap()) * run_s / 3600.0;
        assert!(
            (option["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-6 * cost,
            "{option}"
        );
        let start = option["predicted_start_s"].as_i64().unwrap();
        assert_eq!(
            option["predicted_finish_s"].as_i64().unwrap(),
            start + run_s as i64
        );
    }
    let chosen = &loose["chosen"];
    assert_eq!(chosen["accelerator"], "h100-sxm5-80gb", "{loose}");
    // It waits for the blocker: a day of the forecast's clock.
    assert!(
        chosen["predicted_start_s"].as_i64().unwrap() - loose["now_s"].as_i64().unwrap() >= 86_390
    );
    let cheapest = all
        .iter()
        .map(|o| o["cost_usd"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(chosen["cost_usd"].as_f64().unwrap(), cheapest, "{loose}");
    let cheap_type = chosen["accelerator"].as_str().unwrap().to_string();

    // A deadline the cheap type's fastest gang misses but the other type's meets.
    let fastest_on = |accelerator: &str| {
        all.iter()
            .filter(|o| o["accelerator"] == accelerator)
            .map(|o| o["predicted_finish_s"].as_i64().unwrap())
            .min()
            .unwrap()
    };
    let other_type = if cheap_type == "h100-sxm5-80gb" {
        "a100-sxm4-80gb"
    } else {
        "h100-sxm5-80gb"
    };
    let (cheap_best, other_best) = (fastest_on(&cheap_type), fastest_on(other_type));
    assert!(
        other_best < cheap_best,
        "the other type must be faster for this test: {loose}"
    );
    let tight = (cheap_best + other_best) / 2;
    let tight_plan = plan(
        &server,
        &alice,
        json!({ "model": "llama-3.1-8b", "tokens": tokens, "deadline_s": tight }),
    )
    .await;
    assert_eq!(
        tight_plan["chosen"]["accelerator"], other_type,
        "{tight_plan}"
    );
    let lost: Vec<&str> = tight_plan["options"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["accelerator"] == cheap_type.as_str())
        .map(|o| o["lost"].as_str().unwrap())
        .collect();
    assert!(
        lost.iter()
            .all(|l| l.starts_with("deadline:") || l.starts_with("memory:"))
            && lost.iter().filter(|l| l.starts_with("deadline:")).count() == 3,
        "{lost:?}"
    );

    // Submitted without --gpus, the job gets the tight plan's type, gang and layout.
    let job = server
        .ok(
            Method::POST,
            "/api/v1/jobs",
            &alice,
            Some(json!({ "command": ["sh", "-c", "echo tp=$SUANLI_TP pp=$SUANLI_PP gb=$SUANLI_GLOBAL_BATCH; echo \"$SUANLI_LAUNCH_ARGS\""],
                "goal": { "model": "llama-3.1-8b", "tokens": tokens, "deadline_s": tight, "framework": "megatron" } })),
        )
        .await;
    let id = job["id"].as_i64().unwrap();
    let choice = &job["spec"]["goal"]["choice"];
    assert_eq!(job["spec"]["accelerators"], json!([other_type]));
    assert_eq!(job["spec"]["gpus"], choice["count"]);
    server.wait_state(&alice, id, "succeeded").await;
    let log = server.logs(&alice, id, 0).await;
    let layout = &choice["plan"]["layout"];
    let first = format!(
        "tp={} pp={} gb={}",
        layout["tp"], layout["pp"], choice["plan"]["global_batch"]
    );
    assert!(log.starts_with(&first), "{log}");
    assert!(
        log.contains(&format!("--tensor-model-parallel-size {}", layout["tp"])),
        "{log}"
    );

    // A deadline nothing meets: one line naming the fastest option's finish.
    let (status, body) = server
        .submit_refused(&alice, json!({ "command": ["true"],
                "goal": { "model": "llama-3.1-8b", "tokens": tokens, "deadline_s": now_s() + 60 } }))
        .await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("no option finishes by the deadline, ")
            && error.contains(&format!("the fastest, 8 x {other_type}, would finish"))
            && !error.contains('\n'),
        "{error}"
    );
    server.cancel(&alice, blocker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planned_start_behind_a_busy_queue_is_the_real_start_within_ten_percent() {
    let (server, alice) = TestServer::with_alice("h100-sxm5-80gb:8").await;
    // Two whole-pool jobs that say how long they run: 10 s each.
    let mut busy = Vec::new();
    for _ in 0..2 {
        busy.push(
            server
                .submit(
                    &alice,
                    json!({ "gpus": 8, "command": ["sleep", "10"], "expected_s": 10 }),
                )
                .await,
        );
    }
    server.wait_state(&alice, busy[0], "running").await;
    let goal = json!({ "model": "llama-3.1-8b", "tokens": 1e6, "deadline_s": now_s() + 86_400 });
    let planned = plan(&server, &alice, goal.clone()).await;
    let planned_at = planned["now_s"].as_i64().unwrap();
    let predicted = planned["chosen"]["predicted_start_s"].as_i64().unwrap();
    let job = server
        .ok(
            Method::POST,
            "/api/v1/jobs",
            &alice,
            Some(json!({ "command": ["true"], "goal": goal })),
        )
        .await;
    let id = job["id"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let started = loop {
        let job = server.job(&alice, id).await;
        if let Some(started) = job["started_at_s"].as_i64() {
            break started;
        }
        assert!(std::time::Instant::now() < deadline, "never started: {job}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let wait_predicted = (predicted - planned_at) as f64;
    let wait_real = (started - planned_at) as f64;
    assert!(wait_predicted >= 15.0, "{planned}");
    let error = (wait_real - wait_predicted).abs() / wait_predicted;
    eprintln!(
        "predicted wait {wait_predicted} s, real {wait_real} s, error {:.1}%",
        error * 100.0
    );
    assert!(
        error <= 0.10,
        "predicted wait {wait_predicted} s, real {wait_real} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_moves_the_predicted_finish_and_roles_hold_on_the_new_routes() {
    let (server, alice) = TestServer::with_alice("h100-sxm5-80gb:8").await;
    let viewer = server.user("research", "vera", "viewer").await;
    let mallory = server.user("other", "mallory", "member").await;
    server.set_quota("research", "h100-sxm5-80gb", 4).await;
    let goal = json!({ "model": "llama-3.1-8b", "tokens": 1e12 });
    let planned = plan(&server, &alice, goal.clone()).await;
    // The quota rules out the whole pool.
    let eight = options(&planned)
        .into_iter()
        .find(|o| o["count"] == 8)
        .unwrap();
    assert_eq!(
        eight["lost"],
        "quota: tenant `research` may hold at most 4 h100-sxm5-80gb"
    );
    for (token, tenant, status) in [(&viewer, None, 403), (&mallory, Some("research"), 403)] {
        let (got, body) = server
            .call(
                Method::POST,
                "/api/v1/jobs/plan",
                Some(token),
                Some(json!({ "tenant": tenant, "goal": goal })),
            )
            .await;
        assert_eq!(got, status, "{body}");
    }
    // The job writes its progress file twice, 3 s apart.
    let script = r#"echo 1000000 > "$SUANLI_PROGRESS_FILE"; sleep 3; echo 4000000 > "$SUANLI_PROGRESS_FILE"; exec sleep 60"#;
    let id = server
        .submit(
            &alice,
            json!({ "command": ["sh", "-c", script], "goal": goal }),
        )
        .await;
    let job = server
        .wait_job(&alice, id, "reported twice", |j| {
            j["spec"]["goal"]["progress"]["tokens"] == 4e6
        })
        .await;
    let progress = &job["spec"]["goal"]["progress"];
    let (first_at, at) = (
        progress["first_at_s"].as_i64().unwrap(),
        progress["at_s"].as_i64().unwrap(),
    );
    assert!(at > first_at, "{progress}");
    let rate = 3e6 / (at - first_at) as f64;
    assert_eq!(progress["tokens_per_s"].as_f64().unwrap(), rate);
    let finish = at + ((1e12 - 4e6) / rate).ceil() as i64;
    assert_eq!(progress["predicted_finish_s"].as_i64().unwrap(), finish);
    // Through the API: a member may report, a viewer may not, another tenant sees no job.
    let path = format!("/api/v1/jobs/{id}/progress");
    for (who, refused) in [(&viewer, 403), (&mallory, 404)] {
        let body = Some(json!({ "tokens": 5e6 }));
        let (status, _) = server.call(Method::POST, &path, Some(who), body).await;
        assert_eq!(status, refused);
    }
    let reported = server
        .ok(Method::POST, &path, &alice, Some(json!({ "tokens": 5e6 })))
        .await;
    assert_eq!(reported["spec"]["goal"]["progress"]["tokens"], 5e6);
    let audit = server
        .ok(Method::GET, "/api/v1/audit", &server.admin, None)
        .await;
    let entries: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap_or("").to_string(),
                e["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for (target, outcome) in [
        ("/api/v1/jobs/plan", "403"),
        ("/api/v1/jobs/plan", "200"),
        (path.as_str(), "403"),
        (path.as_str(), "200"),
    ] {
        assert!(
            entries.iter().any(|(t, o)| t == target && o == outcome),
            "no audit entry {target} {outcome}: {entries:?}"
        );
    }
    server.cancel(&alice, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_goal_job_is_replanned_onto_the_pool_that_still_meets_its_deadline() {
    let (server, alice) = TestServer::with_alice("h100-sxm5-80gb:8,a100-sxm4-80gb:8").await;
    let checkpoint = common::shared_dir("suanli-elastic-ckpt");
    // 2B tokens of an 8B model: 7.5 h on 8 H100 (the cheapest), 18 h on 8 A100; due in 20 h.
    let script = r#"if [ -z "$SUANLI_RESUME_FROM" ]; then sleep 2; exit 3; fi; echo resumed tp=$SUANLI_TP dp=$SUANLI_DP"#;
    let goal = json!({ "model": "llama-3.1-8b", "tokens": 2e9, "deadline_s": now_s() + 20 * 3600 });
    let job = server
        .ok(
            Method::POST,
            "/api/v1/jobs",
            &alice,
            Some(
                json!({ "command": ["sh", "-c", script], "goal": goal, "max_restarts": 1,
                "checkpoint_dir": checkpoint.display().to_string() }),
            ),
        )
        .await;
    let id = job["id"].as_i64().unwrap();
    assert_eq!(
        job["spec"]["accelerators"],
        json!(["h100-sxm5-80gb"]),
        "{job}"
    );
    server.wait_state(&alice, id, "running").await;
    // While it runs, a day-long job queues for the H100s: it goes first when they free up.
    let blocker = day_long_h100_job(&server, &alice).await;
    let done = server.wait_state(&alice, id, "succeeded").await;
    assert_eq!(done["restarts"], 1, "{done}");
    assert_eq!(done["run"]["accelerator"], "a100-sxm4-80gb", "{done}");
    assert_eq!(done["spec"]["gpus"], 8);
    let log = server.logs(&alice, id, 1).await;
    assert!(log.starts_with("resumed tp="), "{log}");
    server.cancel(&alice, blocker).await;
}

/// A whole-pool job on the eight H100s that says it runs a day (it sleeps 10 minutes).
async fn day_long_h100_job(server: &TestServer, token: &str) -> i64 {
    let body = json!({ "gpus": 8, "accelerators": ["h100-sxm5-80gb"], "command": ["sleep", "600"],
        "expected_s": 86_400 });
    server.submit(token, body).await
}
