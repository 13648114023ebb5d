//! The artefact repository's conformance suite, run on the local back end and, when
//! `SUANLI_TEST_S3_URL` is set (see `.ci/s3.sh`), on a real S3 server: round trips of a Hugging
//! Face layout, no plaintext in the raw objects, tenant isolation and sharing with audit, wrong
//! master keys, tampering, rotation, and checkpoints found from another server.

mod common;
#[path = "artifacts/rig.rs"]
mod rig;
#[path = "artifacts/tenants.rs"]
mod tenants;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::weights;
use rig::{Backend, Server, all_objects};
use tenants::tenants_cannot_see_each_others_artifacts;

async fn model_round_trip_leaves_no_plaintext(backend: Backend) {
    let server = Server::start_on(&backend).await;
    let alice = server.user("acme", "alice", "member").await;
    let config = br#"{"architectures":["LlamaForCausalLM"],"hidden_size":4096,"secret_marker":"zebra-quartz-7731"}"#.to_vec();
    let tokenizer = b"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"zebra-quartz-7731\":0}}}".to_vec();
    let blob = weights(9 << 20, 7); // > one 8 MiB upload part, nine cipher chunks
    let manifest = server
        .put(
            &alice,
            "acme",
            "llama-tiny",
            "model",
            &[
                ("config.json", config.clone()),
                ("tokenizer.json", tokenizer.clone()),
                ("original/model.safetensors", blob.clone()),
            ],
        )
        .await;
    assert_eq!(manifest["complete"], true);
    assert_eq!(
        manifest["size_bytes"],
        (config.len() + tokenizer.len() + blob.len()) as u64
    );
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    // SHA-256 of the weights computed here, independently of the server.
    use sha2::Digest;
    let expected = hex::encode(sha2::Sha256::digest(&blob));
    assert!(files.iter().any(|f| f["sha256"] == expected.as_str()));
    for (path, bytes) in [
        ("config.json", &config),
        ("original/model.safetensors", &blob),
    ] {
        for version in ["1", "latest", &manifest["digest"].as_str().unwrap()[..20]] {
            let (status, body) = server
                .get(&alice, "acme", "llama-tiny", version, path, None)
                .await;
            assert_eq!(status, StatusCode::OK, "{version} {path}");
            assert!(body.as_ref() == Some(bytes), "{path} at {version} differs");
        }
    }
    // Resuming a download: `Range: bytes=N-` from inside a chunk gives exactly the rest.
    for from in [1usize, (1 << 20) + 5, 8 << 20, blob.len() - 1] {
        let (status, body) = server
            .get(
                &alice,
                "acme",
                "llama-tiny",
                "1",
                "original/model.safetensors",
                Some(from),
            )
            .await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "from {from}");
        assert!(
            body.as_deref() == Some(&blob[from..]),
            "rest from {from} differs"
        );
    }
    let (status, _) = server
        .get(
            &alice,
            "acme",
            "llama-tiny",
            "1",
            "config.json",
            Some(config.len()),
        )
        .await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    let objects = all_objects(&backend.objects()).await;
    assert!(objects.len() >= 8, "{} objects", objects.len());
    // Manifests, file records and sharing records are encrypted too: no file name, digest,
    // architecture or user name appears in any object.
    let digest = manifest["digest"].as_str().unwrap()["sha256:".len()..].to_string();
    let clear: [&[u8]; 6] = [
        b"model.safetensors",
        b"tokenizer.json",
        expected.as_bytes(),
        digest.as_bytes(),
        b"LlamaForCausalLM",
        b"alice",
    ];
    for (key, bytes) in &objects {
        for word in clear {
            assert!(
                !bytes.windows(word.len()).any(|w| w == word),
                "`{}` in {key}",
                String::from_utf8_lossy(word)
            );
        }
        assert!(
            !bytes.windows(17).any(|w| w == b"zebra-quartz-7731"),
            "plaintext in {key}"
        );
        assert!(
            !bytes.windows(64).any(|w| w == &blob[4096..4160]),
            "weights in {key}"
        );
        assert!(
            !bytes.windows(32).any(|w| w == &blob[..32]),
            "weights in {key}"
        );
    }
    server.stop().await;
}

async fn wrong_master_key_fails_clearly_and_rotation_rewraps(backend: Backend) {
    let server = Server::start_on(&backend).await;
    let alice = server.user("acme", "alice", "member").await;
    let blob = weights(3 << 20, 11);
    server
        .put(&alice, "acme", "m", "model", &[("w.bin", blob.clone())])
        .await;
    server.stop().await;
    let before = all_objects(&backend.objects()).await;
    // A server with another master key refuses to start, saying why.
    let wrong = Backend::with(backend.store.clone());
    let error = Server::try_start_on(wrong.config())
        .await
        .err()
        .expect("must not start");
    assert!(error.contains("wrong master key"), "{error}");
    // Rotation re-wraps the tenant keys only; the data objects are byte-identical.
    let old = suanli_server::artifacts::keys::read_key_file(&backend.key_file).unwrap();
    let new = suanli_server::artifacts::keys::read_key_file(&wrong.key_file).unwrap();
    let repo = suanli_server::artifacts::Repository::new(backend.objects(), old);
    assert_eq!(repo.rotate_master_key(&new).await.unwrap(), 1);
    let after = all_objects(&backend.objects()).await;
    for (key, bytes) in &before {
        let now = &after.iter().find(|(k, _)| k == key).unwrap().1;
        assert_eq!(key.starts_with("keys/"), now != bytes, "{key}");
    }
    let server = Server::start_on(&wrong).await;
    let alice = server.user("acme", "alice", "member").await;
    let (status, body) = server.get(&alice, "acme", "m", "1", "w.bin", None).await;
    assert_eq!(
        (status, body.as_ref() == Some(&blob)),
        (StatusCode::OK, true)
    );
    server.stop().await;
    // ... and the old key no longer opens the store.
    let error = Server::try_start_on(backend.config())
        .await
        .err()
        .expect("old key must fail");
    assert!(error.contains("wrong master key"), "{error}");
}

/// The server checks integrity through the AEAD chain alone (no SHA-256 on reads): a flipped
/// bit anywhere, swapped chunks, a cut-off object and another file's object in its place must
/// each break off the response before the file is delivered whole.
async fn tampered_objects_are_never_served(backend: Backend) {
    let server = Server::start_on(&backend).await;
    let alice = server.user("acme", "alice", "member").await;
    // 2.5 chunks each, so the last chunk carries plaintext; the same size, so they can swap.
    let blobs = [weights(5 << 19, 3), weights(5 << 19, 4)];
    let files = [("a.bin", blobs[0].clone()), ("b.bin", blobs[1].clone())];
    server.put(&alice, "acme", "m", "model", &files).await;
    let objects = backend.objects();
    let data: Vec<_> = all_objects(&objects)
        .await
        .into_iter()
        .filter(|(key, _)| key.ends_with(".data"))
        .collect();
    assert_eq!(data.len(), 2, "one segment object per file");
    let (key, original) = (ObjectPath::from(data[0].0.as_str()), data[0].1.clone());
    let step = (1 << 20) + 16;
    let (header, len) = (15, original.len());
    let flip = |at: usize| {
        let mut b = original.clone();
        b[at] ^= 0x40;
        b
    };
    let mut swapped = original.clone();
    swapped[header..header + 2 * step].rotate_left(step);
    let damaged: [(&str, Vec<u8>); 6] = [
        ("a bit flipped in the middle", flip(len / 2)),
        ("a bit flipped in the last chunk", flip(len - 20)),
        ("chunks 0 and 1 swapped", swapped),
        (
            "the last chunk cut off",
            original[..header + 2 * step].to_vec(),
        ),
        ("cut inside the last chunk", original[..len - 100].to_vec()),
        ("the other file's object in its place", data[1].1.clone()),
    ];
    for (what, bytes) in damaged {
        objects.put(&key, bytes.into()).await.unwrap();
        let mut broken = 0;
        for (path, blob) in &files {
            let url = format!(
                "{}/api/v1/artifacts/acme/m/versions/1/files?path={path}",
                server.url
            );
            // Damage in the first chunk is found before the headers leave (the connection
            // closes with no answer); later damage breaks off the body.
            let Ok(response) = server.http.get(url).bearer_auth(&alice).send().await else {
                broken += 1;
                continue;
            };
            assert_eq!(response.status(), StatusCode::OK, "{what}");
            match response.bytes().await {
                Ok(body) => assert!(body == *blob, "{what}: wrong bytes"),
                Err(_) => broken += 1,
            }
        }
        assert_eq!(broken, 1, "{what}: the damaged file was served whole");
    }
    objects.put(&key, original.into()).await.unwrap();
    for (path, blob) in &files {
        let (status, body) = server.get(&alice, "acme", "m", "1", path, None).await;
        assert_eq!(
            (status, body.as_ref() == Some(blob)),
            (StatusCode::OK, true)
        );
    }
    server.stop().await;
}

async fn checkpoints_resume_from_another_server(backend: Backend) {
    // Two servers (two nodes) with their own databases share the store and the master key.
    let node_a = Server::start_on(&backend).await;
    let node_b = Server::start_on(&backend).await;
    let token_a = node_a.user("acme", "alice", "member").await;
    let token_b = node_b.user("acme", "alice", "member").await;
    for step in 1..=3u8 {
        node_a
            .put(
                &token_a,
                "acme",
                "ckpt-job-7",
                "checkpoint",
                &[("state.pt", vec![step; 1000])],
            )
            .await;
    }
    // A fourth save dies mid-upload: a partial version, never the latest.
    node_a
        .ok(
            Method::POST,
            "/api/v1/artifacts/acme/ckpt-job-7/versions",
            &token_a,
            Some(json!({ "kind": "checkpoint" })),
        )
        .await;
    node_a.stop().await;
    let latest = node_b
        .ok(
            Method::GET,
            "/api/v1/artifacts/acme/ckpt-job-7/versions/latest",
            &token_b,
            None,
        )
        .await;
    assert_eq!(latest["version"], 3);
    let (status, body) = node_b
        .get(&token_b, "acme", "ckpt-job-7", "latest", "state.pt", None)
        .await;
    assert_eq!((status, body.unwrap()), (StatusCode::OK, vec![3u8; 1000]));
    let swept = node_b
        .ok(
            Method::POST,
            "/api/v1/artifacts/acme/ckpt-job-7/retain",
            &token_b,
            Some(json!({ "keep_last": 2, "partial_age_s": 0 })),
        )
        .await;
    assert_eq!(swept["deleted_versions"], json!([1, 4]));
    let shown = node_b
        .ok(
            Method::GET,
            "/api/v1/artifacts/acme/ckpt-job-7",
            &token_b,
            None,
        )
        .await;
    let versions: Vec<u64> = shown["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 3]);
    node_b.stop().await;
}

/// Sends the first `sent` bytes of a `total`-byte upload and drops the connection.
async fn broken_upload(url: &str, path_and_query: &str, token: &str, body: &[u8], total: usize) {
    use tokio::io::AsyncWriteExt;
    let address = url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "PUT {path_and_query} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Length: {total}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    socket.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(socket);
}

async fn interrupted_uploads_resume_where_they_broke_off(backend: Backend) {
    use sha2::Digest;
    let server = Server::start_on(&backend).await;
    let alice = server.user("acme", "alice", "member").await;
    let blob = weights(11 << 20, 5);
    let base = "/api/v1/artifacts/acme/big";
    server
        .ok(
            Method::POST,
            &format!("{base}/versions"),
            &alice,
            Some(json!({ "kind": "model" })),
        )
        .await;
    let files = format!("{base}/versions/1/files?path=w.bin");
    broken_upload(
        &server.url,
        &files,
        &alice,
        &blob[..(5 << 20) + 77],
        blob.len(),
    )
    .await;
    // The server keeps what arrived and says where to resume.
    let progress_path = format!("{base}/versions/1/uploads?path=w.bin");
    let mut progress = Value::Null;
    for _ in 0..100 {
        let (status, value) = server
            .call(Method::GET, &progress_path, Some(&alice), None)
            .await;
        if status == StatusCode::OK {
            progress = value;
            if progress["interrupted"] == true {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(progress["interrupted"], true, "{progress}");
    let stored = progress["size_bytes"].as_u64().unwrap() as usize;
    assert!(stored > 0 && stored <= (5 << 20) + 77, "{stored}");
    assert_eq!(
        progress["sha256"],
        hex::encode(sha2::Sha256::digest(&blob[..stored]))
    );
    let commit = format!("{base}/versions/1/commit");
    let (status, value) = server.call(Method::POST, &commit, Some(&alice), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{value}");
    assert!(
        value.to_string().contains(&format!("offset={stored}")),
        "{value}"
    );
    // Resuming from anywhere but the stored end is refused with the right offset.
    let put = |offset: usize, body: Vec<u8>| {
        server
            .http
            .put(format!("{}{files}&offset={offset}", server.url))
            .bearer_auth(&alice)
            .body(body)
            .send()
    };
    let response = put(stored + 1, blob[stored + 1..].to_vec()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    // Resumed through another server (node), which has no hash state of the upload and
    // re-reads the stored prefix to continue the file's SHA-256.
    let other = Server::start_on(&backend).await;
    let alice_b = other.user("acme", "alice", "member").await;
    let response = other
        .http
        .put(format!("{}{files}&offset={stored}", other.url))
        .bearer_auth(&alice_b)
        .body(blob[stored..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    other.stop().await;
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["sha256"], hex::encode(sha2::Sha256::digest(&blob)));
    assert_eq!(answer["size_bytes"], blob.len() as u64);
    let (status, _) = server.call(Method::POST, &commit, Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.get(&alice, "acme", "big", "1", "w.bin", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_deref() == Some(&blob[..]),
        "the resumed file differs"
    );
    for from in [stored - 3, stored, stored + 1] {
        let (status, body) = server
            .get(&alice, "acme", "big", "1", "w.bin", Some(from))
            .await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert!(
            body.as_deref() == Some(&blob[from..]),
            "from {from} across segments"
        );
    }
    server.stop().await;
}

macro_rules! conformance {
    ($($name:ident),*) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::local()).await; })*
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(backend) = super::Backend::s3() else {
                    eprintln!("SUANLI_TEST_S3_URL is not set; source .ci/s3.sh to run this on a real S3 server");
                    return;
                };
                super::$name(backend).await;
            })*
        }
    };
}

conformance!(
    model_round_trip_leaves_no_plaintext,
    interrupted_uploads_resume_where_they_broke_off,
    tenants_cannot_see_each_others_artifacts,
    wrong_master_key_fails_clearly_and_rotation_rewraps,
    tampered_objects_are_never_served,
    checkpoints_resume_from_another_server
);
