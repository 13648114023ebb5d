//! Authentication and authorization over every endpoint (as listed by the OpenAPI document) and
//! the audit chain (`auth/audit.rs`, part of this test binary).

#[path = "auth/audit.rs"]
mod audit;
mod common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn method(name: &str) -> Method {
    Method::from_bytes(name.to_uppercase().as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_needs_a_valid_token() {
    let (server, alice) = TestServer::with_alice("h100:2").await;
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
    let (server, alice) = TestServer::with_alice("h100:2").await;
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
