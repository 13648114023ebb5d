//! The audit chain over the API: it records changes and catches an edited row, and every change
//! and every request that changes nothing gets exactly one entry.

use reqwest::Method;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_records_changes_and_catches_an_edited_row() {
    let (server, alice) = TestServer::with_alice("h100:2").await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/tenants",
            Some(&alice),
            Some(json!({ "name": "nope" })),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/tenants",
            None,
            Some(json!({ "name": "x" })),
        )
        .await;
    assert_eq!(status, 401);
    let id = server.submit(&alice, json!({ "command": ["true"] })).await;

    let events = server
        .ok(Method::GET, "/api/v1/audit", &server.admin, None)
        .await;
    let events = events.as_array().unwrap();
    let summary: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "server bootstrap created",
            "server bootstrap created",
            "admin POST /api/v1/tenants 201",
            "admin POST /api/v1/users 201",
            "admin POST /api/v1/tokens 201",
            "alice POST /api/v1/tenants 403",
            "anonymous POST /api/v1/tenants 401",
            "alice POST /api/v1/jobs 201",
        ]
    );
    assert_eq!(events[7]["target"], format!("/api/v1/jobs job {id}"));
    let verdict = server.verify_audit().await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["entries"], 8);

    // Someone with database access rewrites history.
    let db = server.data_dir.join("suanli.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE audit SET outcome = '200' WHERE seq = 6")
        .execute(&pool)
        .await
        .unwrap();
    let verdict = server.verify_audit().await;
    assert_eq!(verdict["ok"], false);
    assert_eq!(verdict["first_bad_seq"], 6, "{verdict}");

    // Deleting a row is caught at the gap.
    sqlx::query("UPDATE audit SET outcome = '403' WHERE seq = 6")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    let verdict = server.verify_audit().await;
    assert_eq!(verdict["first_bad_seq"], 3, "{verdict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_and_every_request_that_changes_nothing_gets_one_entry() {
    let (server, alice) = TestServer::with_alice("h100:1").await;
    let before = server
        .ok(Method::GET, "/api/v1/audit", &server.admin, None)
        .await
        .as_array()
        .unwrap()
        .len();

    // Changes: each entry is written in the change's own transaction.
    let token = server
        .ok(
            Method::POST,
            "/api/v1/tokens",
            &server.admin,
            Some(json!({ "user": "alice" })),
        )
        .await;
    let token_path = format!("/api/v1/tokens/{}", token["id"].as_str().unwrap());
    server
        .ok(Method::DELETE, &token_path, &server.admin, None)
        .await;
    let running = server
        .submit_running(&alice, json!({ "command": ["sleep", "30"] }))
        .await;
    let queued = server.submit(&alice, json!({ "command": ["true"] })).await;
    let cancel_path = format!("/api/v1/jobs/{queued}/cancel");
    server.ok(Method::POST, &cancel_path, &alice, None).await;
    // Requests that change nothing: the middleware appends their entries.
    let revoked_again = server
        .ok(Method::DELETE, &token_path, &server.admin, None)
        .await;
    assert_eq!(revoked_again["revoked"], false);
    let (status, _) = server
        .call(Method::POST, &cancel_path, Some(&alice), None)
        .await;
    assert_eq!(status, 409);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/tenants",
            Some(&server.admin),
            Some(json!({ "name": "research" })),
        )
        .await;
    assert_eq!(status, 409);

    let summary = server.audit_lines().await[before..].to_vec();
    let token_id = token["id"].as_str().unwrap();
    assert_eq!(
        summary,
        [
            format!("admin POST /api/v1/tokens /api/v1/tokens {token_id} 201"),
            format!("admin DELETE {token_path} {token_path} 200"),
            format!("alice POST /api/v1/jobs /api/v1/jobs job {running} 201"),
            format!("alice POST /api/v1/jobs /api/v1/jobs job {queued} 201"),
            format!("alice POST {cancel_path} {cancel_path} 200"),
            format!("admin DELETE {token_path} {token_path} 200"),
            format!("alice POST {cancel_path} {cancel_path} 409"),
            "admin POST /api/v1/tenants /api/v1/tenants 409".to_string(),
        ]
    );
    let verdict = server.verify_audit().await;
    assert_eq!(verdict["ok"], true, "{verdict}");
}
