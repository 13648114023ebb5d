//! Authentication and authorization over every endpoint (as listed by the OpenAPI document) and
//! the audit chain.

mod common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn method(name: &str) -> Method {
    Method::from_bytes(name.to_uppercase().as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_needs_a_valid_token() {
    let server = TestServer::start("h100:2").await;
    let alice = server.user("research", "alice", "member").await;
    let token = server
        .ok(Method::POST, "/api/v1/tokens", &alice, Some(json!({})))
        .await;
    let revoked = token["token"].as_str().unwrap().to_string();
    server
        .ok(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", token["id"].as_str().unwrap()),
            &alice,
            None,
        )
        .await;
    let expiring = server
        .ok(
            Method::POST,
            "/api/v1/tokens",
            &alice,
            Some(json!({ "expires_in_s": 2 })),
        )
        .await;
    let expiring = expiring["token"].as_str().unwrap().to_string();
    let (status, _) = server
        .call(Method::GET, "/api/v1/whoami", Some(&expiring), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let bad_tokens: [(&str, Option<&str>); 5] = [
        ("missing", None),
        ("garbage", Some("not-a-token")),
        (
            "unknown",
            Some("suanli_0000000000000000000000000000000000000000000000000000000000000000"),
        ),
        ("revoked", Some(&revoked)),
        ("expired", Some(&expiring)),
    ];
    let mut checked = 0;
    for (verb, path) in suanli_server::openapi::routes() {
        if path == "/healthz" {
            continue;
        }
        let path = path
            .replace("{id}", "1")
            .replace("{pool}", "local-h100-sxm5-80gb");
        for (why, token) in &bad_tokens {
            let body = (verb != "get" && verb != "delete").then(|| json!({}));
            let (status, value) = server.call(method(&verb), &path, *token, body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{verb} {path} with a {why} token: {value}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20 * 5);
    let (status, _) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_tenants_are_enforced_on_every_endpoint() {
    let server = TestServer::start("h100:2").await;
    let alice = server.user("research", "alice", "member").await;
    let carol = server.user("research", "carol", "member").await;
    let victor = server.user("research", "victor", "viewer").await;
    let rita = server.user("research", "rita", "tenant-admin").await;
    let mallory = server.user("other", "mallory", "member").await;
    let olga = server.user("other", "olga", "tenant-admin").await;
    let job = server
        .submit(&alice, json!({ "command": ["sleep", "30"] }))
        .await;
    let alice_token = server.ok(Method::GET, "/api/v1/tokens", &alice, None).await;
    let alice_token_id = alice_token[0]["id"].as_str().unwrap().to_string();
    let job_path = format!("/api/v1/jobs/{job}");

    // (who, method, path, body, expected status)
    type Case = (
        &'static str,
        &'static str,
        Method,
        String,
        Option<serde_json::Value>,
        u16,
    );
    let cases: Vec<Case> = vec![
        (
            "member creates a tenant",
            "alice",
            Method::POST,
            "/api/v1/tenants".into(),
            Some(json!({ "name": "x" })),
            403,
        ),
        (
            "tenant-admin creates a tenant",
            "rita",
            Method::POST,
            "/api/v1/tenants".into(),
            Some(json!({ "name": "x" })),
            403,
        ),
        (
            "member creates a user",
            "alice",
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({ "name": "u1", "tenant": "research", "role": "member" })),
            403,
        ),
        (
            "tenant-admin creates a user elsewhere",
            "rita",
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({ "name": "u2", "tenant": "other", "role": "member" })),
            403,
        ),
        (
            "tenant-admin creates an admin",
            "rita",
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({ "name": "u3", "role": "admin" })),
            403,
        ),
        (
            "tenant-admin creates a user at home",
            "rita",
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({ "name": "u4", "tenant": "research", "role": "viewer" })),
            201,
        ),
        (
            "member creates a token for another",
            "carol",
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({ "user": "alice" })),
            403,
        ),
        (
            "other tenant-admin creates a token for alice",
            "olga",
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({ "user": "alice" })),
            403,
        ),
        (
            "member revokes another's token",
            "mallory",
            Method::DELETE,
            format!("/api/v1/tokens/{alice_token_id}"),
            None,
            403,
        ),
        (
            "member sets a quota",
            "alice",
            Method::PUT,
            "/api/v1/quotas".into(),
            Some(json!({ "tenant": "research", "accelerator": "h100", "limit": 1 })),
            403,
        ),
        (
            "tenant-admin sets a quota",
            "rita",
            Method::PUT,
            "/api/v1/quotas".into(),
            Some(json!({ "tenant": "research", "accelerator": "h100", "limit": 1 })),
            403,
        ),
        (
            "viewer submits",
            "victor",
            Method::POST,
            "/api/v1/jobs".into(),
            Some(json!({ "command": ["true"] })),
            403,
        ),
        (
            "member submits elsewhere",
            "alice",
            Method::POST,
            "/api/v1/jobs".into(),
            Some(json!({ "tenant": "other", "command": ["true"] })),
            403,
        ),
        (
            "other tenant reads the job (404: ids reveal nothing)",
            "mallory",
            Method::GET,
            job_path.clone(),
            None,
            404,
        ),
        (
            "other tenant reads its logs",
            "mallory",
            Method::GET,
            format!("{job_path}/logs"),
            None,
            404,
        ),
        (
            "other tenant lists its tenant",
            "mallory",
            Method::GET,
            "/api/v1/jobs?tenant=research".into(),
            None,
            403,
        ),
        (
            "other tenant cancels",
            "mallory",
            Method::POST,
            format!("{job_path}/cancel"),
            None,
            404,
        ),
        (
            "other tenant-admin cancels",
            "olga",
            Method::POST,
            format!("{job_path}/cancel"),
            None,
            404,
        ),
        (
            "viewer cancels",
            "victor",
            Method::POST,
            format!("{job_path}/cancel"),
            None,
            403,
        ),
        (
            "another member cancels",
            "carol",
            Method::POST,
            format!("{job_path}/cancel"),
            None,
            403,
        ),
        (
            "member reads the audit log",
            "alice",
            Method::GET,
            "/api/v1/audit".into(),
            None,
            403,
        ),
        (
            "tenant-admin verifies the audit log",
            "rita",
            Method::GET,
            "/api/v1/audit/verify".into(),
            None,
            403,
        ),
        (
            "viewer reads the job",
            "victor",
            Method::GET,
            job_path.clone(),
            None,
            200,
        ),
        (
            "viewer lists nodes",
            "victor",
            Method::GET,
            "/api/v1/nodes".into(),
            None,
            200,
        ),
        (
            "viewer reads metrics",
            "victor",
            Method::GET,
            "/metrics".into(),
            None,
            200,
        ),
        (
            "tenant-admin cancels in its tenant",
            "rita",
            Method::POST,
            format!("{job_path}/cancel"),
            None,
            200,
        ),
    ];
    let tokens = std::collections::HashMap::from([
        ("alice", &alice),
        ("carol", &carol),
        ("victor", &victor),
        ("rita", &rita),
        ("mallory", &mallory),
        ("olga", &olga),
    ]);
    for (what, who, method, path, body, expected) in cases {
        let (status, value) = server
            .call(method.clone(), &path, Some(tokens[who]), body)
            .await;
        assert_eq!(
            status.as_u16(),
            expected,
            "{what}: {method} {path} -> {value}"
        );
    }
    // Lists are filtered by tenant.
    let tenants = server
        .ok(Method::GET, "/api/v1/tenants", &mallory, None)
        .await;
    assert_eq!(
        tenants,
        json!([{ "name": "other", "created_at_s": tenants[0]["created_at_s"] }])
    );
    let jobs = server.ok(Method::GET, "/api/v1/jobs", &mallory, None).await;
    assert_eq!(jobs, json!([]));
    let users = server.ok(Method::GET, "/api/v1/users", &olga, None).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mallory", "olga"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_records_changes_and_catches_an_edited_row() {
    let server = TestServer::start("h100:2").await;
    let alice = server.user("research", "alice", "member").await;
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
    let verdict = server
        .ok(Method::GET, "/api/v1/audit/verify", &server.admin, None)
        .await;
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
    let verdict = server
        .ok(Method::GET, "/api/v1/audit/verify", &server.admin, None)
        .await;
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
    let verdict = server
        .ok(Method::GET, "/api/v1/audit/verify", &server.admin, None)
        .await;
    assert_eq!(verdict["first_bad_seq"], 3, "{verdict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_and_every_request_that_changes_nothing_gets_one_entry() {
    let server = TestServer::start("h100:1").await;
    let alice = server.user("research", "alice", "member").await;
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
        .submit(&alice, json!({ "command": ["sleep", "30"] }))
        .await;
    server.wait_state(&alice, running, "running").await;
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

    let events = server
        .ok(Method::GET, "/api/v1/audit", &server.admin, None)
        .await;
    let summary: Vec<String> = events.as_array().unwrap()[before..]
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
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
    let verdict = server
        .ok(Method::GET, "/api/v1/audit/verify", &server.admin, None)
        .await;
    assert_eq!(verdict["ok"], true, "{verdict}");
}
