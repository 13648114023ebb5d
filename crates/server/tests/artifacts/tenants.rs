//! Tenant isolation and sharing: what a tenant cannot see of another's artefacts, what a
//! share opens, and that every change is in the audit chain.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::rig::{Backend, Server};

pub async fn tenants_cannot_see_each_others_artifacts(backend: Backend) {
    let server = Server::start_on(&backend).await;
    let alice = server.user("acme", "alice", "member").await;
    let viewer = server.user("acme", "vera", "viewer").await;
    let boss = server.user("acme", "ann", "tenant-admin").await;
    let bob = server.user("rival", "bob", "tenant-admin").await;
    let carol = server.user("third", "carol", "member").await;
    server
        .put(
            &alice,
            "acme",
            "secret-model",
            "model",
            &[("config.json", b"{}".to_vec())],
        )
        .await;
    let base = "/api/v1/artifacts/acme/secret-model";
    let missing = "/api/v1/artifacts/acme/no-such-model";
    // Bob sees exactly what he would see for an artefact that does not exist.
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::GET, "/versions/1", None),
        (Method::GET, "/versions/latest/files?path=config.json", None),
        (Method::POST, "/versions", Some(json!({ "kind": "model" }))),
        (Method::POST, "/share", Some(json!({ "tenant": "rival" }))),
        (Method::DELETE, "", None),
    ] {
        let real = server
            .call(
                method.clone(),
                &format!("{base}{suffix}"),
                Some(&bob),
                body.clone(),
            )
            .await;
        let fake = server
            .call(
                method.clone(),
                &format!("{missing}{suffix}"),
                Some(&bob),
                body,
            )
            .await;
        assert_eq!(
            real.0,
            StatusCode::NOT_FOUND,
            "{method} {suffix}: {:?}",
            real.1
        );
        assert_eq!(fake.0, StatusCode::NOT_FOUND);
        assert_eq!(
            real.1["error"]
                .as_str()
                .unwrap()
                .replace("secret-model", "X"),
            fake.1["error"]
                .as_str()
                .unwrap()
                .replace("no-such-model", "X")
        );
    }
    let listed = server
        .ok(Method::GET, "/api/v1/artifacts", &bob, None)
        .await;
    assert_eq!(listed, json!([]));
    // Roles inside the tenant: a viewer reads but does not write; a member does not share.
    assert_eq!(
        server
            .get(&viewer, "acme", "secret-model", "1", "config.json", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .call(
                Method::POST,
                &format!("{base}/versions"),
                Some(&viewer),
                Some(json!({ "kind": "model" }))
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .call(
                Method::POST,
                &format!("{base}/share"),
                Some(&alice),
                Some(json!({ "tenant": "rival" }))
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // Shared read-only with rival.
    server
        .ok(
            Method::POST,
            &format!("{base}/share"),
            &boss,
            Some(json!({ "tenant": "rival" })),
        )
        .await;
    let (status, body) = server
        .get(&bob, "acme", "secret-model", "latest", "config.json", None)
        .await;
    assert_eq!((status, body.unwrap()), (StatusCode::OK, b"{}".to_vec()));
    assert_eq!(
        server
            .ok(Method::GET, "/api/v1/artifacts", &bob, None)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server
            .call(
                Method::POST,
                &format!("{base}/versions"),
                Some(&bob),
                Some(json!({ "kind": "model" }))
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.call(Method::DELETE, base, Some(&bob), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .get(&carol, "acme", "secret-model", "1", "config.json", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Public within the cluster, then private again.
    server
        .ok(
            Method::POST,
            &format!("{base}/share"),
            &boss,
            Some(json!({ "public": true })),
        )
        .await;
    assert_eq!(
        server
            .get(&carol, "acme", "secret-model", "1", "config.json", None)
            .await
            .0,
        StatusCode::OK
    );
    server
        .ok(
            Method::POST,
            &format!("{base}/unshare"),
            &boss,
            Some(json!({ "public": true })),
        )
        .await;
    server
        .ok(
            Method::POST,
            &format!("{base}/unshare"),
            &boss,
            Some(json!({ "tenant": "rival" })),
        )
        .await;
    assert_eq!(
        server
            .get(&bob, "acme", "secret-model", "1", "config.json", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Every access, allowed or denied, is in the audit log, and the chain still verifies.
    let entries = server.audit_lines().await;
    // The last needle is the outcome, which ends the line.
    let has = |needle: &[&str]| {
        let (outcome, rest) = needle.split_last().unwrap();
        let ending = format!(" {outcome}");
        entries
            .iter()
            .any(|e| e.ends_with(&ending) && rest.iter().all(|n| e.contains(n)))
    };
    assert!(
        has(&["ann", "/share", "shared with tenant rival", "200"]),
        "{entries:#?}"
    );
    assert!(has(&[
        "bob",
        "GET /api/v1/artifacts/acme/secret-model/versions/latest/files",
        "200"
    ]));
    assert!(has(&[
        "bob",
        "GET /api/v1/artifacts/acme/secret-model/versions/1/files",
        "404"
    ]));
    assert!(has(&[
        "bob",
        "POST /api/v1/artifacts/acme/secret-model/versions",
        "403"
    ]));
    assert!(has(&["vera", "GET", "200"]));
    let verified = server.verify_audit().await;
    assert_eq!(verified["ok"], true, "{verified}");
    server.stop().await;
}
