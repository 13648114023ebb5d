//! Bounded inputs and connections: idle connections cannot lock out `/healthz`, every field and
//! list is bounded, overflows answer 400, other tenants' jobs are 404, and priority never lets
//! one tenant jump another. Each case is a reproducer from issue 9.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(max_connections: usize, request_timeout: Duration) -> suanli_server::ServerConfig {
    suanli_server::ServerConfig {
        data_dir: common::unique_dir("suanli-limits"),
        devices: Some("h100:1".into()),
        policy: "fifo".into(),
        limits: suanli_server::conn::ConnLimits {
            max_connections,
            request_timeout,
        },
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_stop_healthz_or_job_starts() {
    // A lowered cap (32) stands in for the descriptor limit; 20x as many clients hold
    // connections with half-sent headers and never finish them.
    let server = TestServer::start_config(config(32, Duration::from_secs(300))).await;
    let alice = server.user("research", "alice", "member").await;
    let address = server.url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..640 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        idle.push(stream);
    }
    let started = Instant::now();
    let (status, body) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let id = server
        .submit(&alice, json!({ "command": ["sh", "-c", "echo started"] }))
        .await;
    server.wait_state(&alice, id, "succeeded").await;
    // The server closed all but (about) the cap of the idle connections.
    let mut closed = 0;
    for stream in &mut idle {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(5), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 640 - 32,
        "only {closed} of 640 idle connections closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let server = TestServer::start_config(config(1024, Duration::from_secs(1))).await;
    let address = server.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "still open after 10 s");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Keep-alive connections with nothing to say are closed after the same time.
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "idle keep-alive connection still open after 10 s"
    );
    assert!(String::from_utf8_lossy(&answer).contains("200 OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_fields_are_refused_with_400() {
    let (server, alice) = TestServer::with_alice("h100:1").await;
    let submit = |body: serde_json::Value| {
        let server = &server;
        let alice = alice.clone();
        async move {
            server
                .call(Method::POST, "/api/v1/jobs", Some(&alice), Some(body))
                .await
        }
    };
    let cases = [
        json!({ "name": "n".repeat(1_900_000), "command": ["true"] }),
        json!({ "name": "n".repeat(257), "command": ["true"] }),
        json!({ "name": "\u{1b}]0;owned\u{7}", "command": ["true"] }),
        json!({ "command": ["sh", "-c", "echo a\u{0}b"] }),
        json!({ "command": ["sh", "-c", "x".repeat(128 * 1024)] }),
        json!({ "command": [] }),
        json!({ "command": ["true"], "env": (0..257).map(|i| (format!("V{i}"), json!("1"))).collect::<serde_json::Map<_, _>>() }),
        json!({ "command": ["true"], "env": { "A=B": "1" } }),
        json!({ "command": ["true"], "priority": 2147483647 }),
        json!({ "command": ["true"], "gpus": 4294967295u32 }),
        json!({ "command": ["true"], "checkpoint_dir": "relative/dir" }),
        json!({ "command": ["true"], "accelerators": ["../../etc"] }),
    ];
    for (i, body) in cases.into_iter().enumerate() {
        let (status, answer) = submit(body).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
            "case {i}: {status} {answer}"
        );
        let text = answer.to_string();
        assert!(text.len() < 1000, "case {i}: echoes the input back");
        assert!(
            !text.contains('\u{1b}'),
            "case {i}: control characters in the answer"
        );
    }

    // Token lifetimes that would overflow, and log offsets beyond any file.
    for seconds in [i64::MAX, i64::MAX - 10, 0, -5] {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/v1/tokens",
                Some(&alice),
                Some(json!({ "expires_in_s": seconds })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{seconds}: {body}");
    }
    let id = server
        .submit(&alice, json!({ "command": ["echo", "hi"] }))
        .await;
    server.wait_state(&alice, id, "succeeded").await;
    for (offset, expected) in [
        ("4611686018427387904", StatusCode::OK),
        ("9223372036854775808", StatusCode::BAD_REQUEST),
        ("18446744073709551616", StatusCode::BAD_REQUEST),
    ] {
        let path = format!("/api/v1/jobs/{id}/logs?offset={offset}");
        let (status, body) = server.call(Method::GET, &path, Some(&alice), None).await;
        assert_eq!(status, expected, "offset {offset}: {body}");
    }

    // Quota types and names that are paths, options or empty.
    for (tenant, accelerator) in [
        ("research", ""),
        ("research", "../../etc"),
        ("-rf", "h100"),
        ("..", "h100"),
    ] {
        let (status, body) = server
            .call(
                Method::PUT,
                "/api/v1/quotas",
                Some(&server.admin),
                Some(json!({ "tenant": tenant, "accelerator": accelerator, "limit": 1 })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{tenant} {accelerator}: {body}"
        );
    }
    for name in [".", "..", "-rf"] {
        let (status, _) = server
            .call(
                Method::POST,
                "/api/v1/tenants",
                Some(&server.admin),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_paged_and_filtered_and_other_tenants_jobs_are_404() {
    let mut config = config(1024, Duration::from_secs(30));
    config.admission.max_active_jobs_per_tenant = 4;
    let server = TestServer::start_config(config).await;
    let alice = server.user("research", "alice", "member").await;
    let boss = server.user("research", "boss", "tenant-admin").await;
    let bob = server.user("infra", "bob", "member").await;
    let blocker = server
        .submit_running(&alice, json!({ "command": ["sleep", "30"] }))
        .await;
    let mut ids = vec![blocker];
    for _ in 0..3 {
        ids.push(server.submit(&alice, json!({ "command": ["true"] })).await);
    }
    // The tenant's cap on queued and running jobs.
    let (status, body) = server
        .submit_refused(&alice, json!({ "command": ["true"] }))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    let page = server
        .ok(Method::GET, "/api/v1/jobs?limit=2", &alice, None)
        .await;
    let page: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page, ids[..2]);
    let rest = server
        .ok(
            Method::GET,
            &format!("/api/v1/jobs?limit=2&after={}", ids[1]),
            &alice,
            None,
        )
        .await;
    assert_eq!(rest.as_array().unwrap().len(), 2);
    let queued = server
        .ok(Method::GET, "/api/v1/jobs?state=queued", &alice, None)
        .await;
    assert_eq!(queued.as_array().unwrap().len(), 3);
    let (status, _) = server
        .call(Method::GET, "/api/v1/jobs?limit=100000", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Bob of another tenant sees alice's job exactly like a job that does not exist.
    let (status, mine) = server
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{blocker}"),
            Some(&bob),
            None,
        )
        .await;
    let (_, missing) = server
        .call(Method::GET, "/api/v1/jobs/999999", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        mine["error"]
            .as_str()
            .unwrap()
            .replace(&blocker.to_string(), "N"),
        missing["error"].as_str().unwrap().replace("999999", "N")
    );
    for path in ["cancel", "logs"] {
        let method = if path == "cancel" {
            Method::POST
        } else {
            Method::GET
        };
        let (status, _) = server
            .call(
                method,
                &format!("/api/v1/jobs/{blocker}/{path}"),
                Some(&bob),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // A tenant-admin creating a name taken in another tenant learns nothing about it.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&boss),
            Some(json!({ "name": "bob", "tenant": "research", "role": "member" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(!body.to_string().contains("infra"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_does_not_jump_other_tenants() {
    let (server, alice) = TestServer::with_alice("h100:1").await;
    let bob = server.user("infra", "bob", "member").await;
    let blocker = server
        .submit_running(&bob, json!({ "command": ["sleep", "30"] }))
        .await;
    let earlier = server
        .submit(&bob, json!({ "command": ["sleep", "30"] }))
        .await;
    let pushy = server
        .submit(&alice, json!({ "command": ["true"], "priority": 100 }))
        .await;
    server.cancel(&bob, blocker).await;
    server.wait_state(&bob, earlier, "running").await;
    let job = server.job(&alice, pushy).await;
    assert_eq!(job["state"], "queued", "{job}");

    // Within alice's own queue, her higher-priority job goes first.
    let low = server
        .submit(&alice, json!({ "command": ["true"], "priority": -5 }))
        .await;
    let high = server
        .submit(
            &alice,
            json!({ "command": ["sleep", "30"], "priority": 50 }),
        )
        .await;
    server.cancel(&bob, earlier).await;
    // `pushy` (100) was first in alice's queue and highest; then `high` before `low`.
    server.wait_state(&alice, pushy, "succeeded").await;
    server.wait_state(&alice, high, "running").await;
    let job = server.job(&alice, low).await;
    assert_eq!(job["state"], "queued", "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_keeps_sending_outlives_the_request_timeout() {
    // A 1 s request timeout and a 6 MiB upload streamed over about 3 s (2 MiB/s): the body's
    // progress keeps the connection, and the file arrives whole.
    let server = TestServer::start_config(config(1024, Duration::from_secs(1))).await;
    let alice = server.user("research", "alice", "member").await;
    let created = server
        .ok(
            Method::POST,
            "/api/v1/artifacts/research/slow/versions",
            &alice,
            Some(json!({ "kind": "checkpoint" })),
        )
        .await;
    let version = created["version"].as_u64().unwrap();
    let (piece_bytes, pieces) = (512usize << 10, 12usize);
    let address = server.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "PUT /api/v1/artifacts/research/slow/versions/{version}/files?path=ckpt.bin HTTP/1.1\r\n\
         Host: x\r\nAuthorization: Bearer {alice}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        piece_bytes * pieces
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    for i in 0..pieces {
        stream.write_all(&vec![i as u8; piece_bytes]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(started.elapsed() > Duration::from_secs(2));
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(
        answer.contains(&format!("\"size_bytes\":{}", piece_bytes * pieces)),
        "{answer}"
    );
}
