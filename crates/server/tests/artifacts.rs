//! The artefact repository's conformance suite, run on the local back end and, when
//! `SUANLI_TEST_S3_URL` is set (see `.ci/s3.sh`), on a real S3 server: round trips of a Hugging
//! Face layout, no plaintext in the raw objects, tenant isolation and sharing with audit, wrong
//! master keys, tampering, rotation, and checkpoints found from another server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use suanli_server::artifacts::{ArtifactConfig, SecretKey, backend};

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A back end to run the suite on: a store URL (None = local) shared by the servers of a test.
#[derive(Clone)]
struct Backend {
    store: Option<String>,
    key_file: PathBuf,
}

impl Backend {
    fn local() -> Backend {
        let dir = std::env::temp_dir().join(unique("suanli-objects"));
        Backend::with(Some(format!("file://{}", dir.display())))
    }

    /// The S3 back end, or `None` when `SUANLI_TEST_S3_URL` is unset. Each test gets its own
    /// key prefix in the bucket.
    fn s3() -> Option<Backend> {
        let url = std::env::var("SUANLI_TEST_S3_URL").ok()?;
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(Backend::with(Some(format!(
            "{url}{sep}prefix={}",
            unique("t")
        ))))
    }

    fn with(store: Option<String>) -> Backend {
        let key_file = std::env::temp_dir().join(unique("suanli-master-key"));
        std::fs::write(&key_file, SecretKey::generate().to_hex()).unwrap();
        Backend { store, key_file }
    }

    fn config(&self) -> ArtifactConfig {
        ArtifactConfig {
            store: self.store.clone(),
            master_key_file: Some(self.key_file.clone()),
            public_url: None,
        }
    }

    fn objects(&self) -> Arc<dyn ObjectStore> {
        backend::open(self.store.as_deref(), Path::new("/nonexistent")).unwrap()
    }
}

struct Server {
    url: String,
    admin: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), suanli_server::ServerError>>,
}

impl Server {
    /// A server in a fresh data directory over `config`'s store; `Err` if it does not start.
    async fn try_start(config: ArtifactConfig) -> Result<Server, String> {
        let data_dir = std::env::temp_dir().join(unique("suanli-artifacts-test"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server_config = suanli_server::ServerConfig {
            data_dir: data_dir.clone(),
            database: None,
            devices: Some("cpu:2".into()),
            policy: "fifo".into(),
            ..Default::default()
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(suanli_server::run_with(
            server_config,
            config,
            listener,
            async {
                let _ = rx.await;
            },
        ));
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if task.is_finished() {
                return Err(task.await.unwrap().unwrap_err().to_string());
            }
            if let Ok(r) = http.get(format!("{url}/healthz")).send().await
                && r.status() == StatusCode::OK
            {
                break;
            }
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let admin = std::fs::read_to_string(data_dir.join("admin-token")).unwrap();
        Ok(Server {
            url,
            admin: admin.trim().to_string(),
            http,
            stop: Some(tx),
            task,
        })
    }

    async fn start(backend: &Backend) -> Server {
        Server::try_start(backend.config()).await.unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = (&mut self.task).await;
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method.clone(), path, token, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    async fn user(&self, tenant: &str, name: &str, role: &str) -> String {
        let _ = self
            .call(
                Method::POST,
                "/api/v1/tenants",
                &self.admin,
                Some(json!({ "name": tenant })),
            )
            .await;
        self.ok(
            Method::POST,
            "/api/v1/users",
            &self.admin,
            Some(json!({ "name": name, "tenant": tenant, "role": role })),
        )
        .await;
        let token = self
            .ok(
                Method::POST,
                "/api/v1/tokens",
                &self.admin,
                Some(json!({ "user": name })),
            )
            .await;
        token["token"].as_str().unwrap().to_string()
    }

    /// Uploads `files` as a new committed version; returns the manifest.
    async fn put(
        &self,
        token: &str,
        tenant: &str,
        name: &str,
        kind: &str,
        files: &[(&str, Vec<u8>)],
    ) -> Value {
        let base = format!("/api/v1/artifacts/{tenant}/{name}");
        let version = self
            .ok(
                Method::POST,
                &format!("{base}/versions"),
                token,
                Some(json!({ "kind": kind })),
            )
            .await;
        let version = version["version"].as_u64().unwrap();
        for (path, bytes) in files {
            let response = self
                .http
                .put(format!(
                    "{}{base}/versions/{version}/files?path={path}",
                    self.url
                ))
                .bearer_auth(token)
                .body(bytes.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::CREATED,
                "{}",
                response.text().await.unwrap()
            );
        }
        self.ok(
            Method::POST,
            &format!("{base}/versions/{version}/commit"),
            token,
            None,
        )
        .await
    }

    /// Downloads a file from byte `from` on (`Range: bytes=FROM-`).
    async fn get_from(
        &self,
        token: &str,
        tenant: &str,
        name: &str,
        version: &str,
        path: &str,
        from: usize,
    ) -> (StatusCode, Option<Vec<u8>>) {
        let url = format!(
            "{}/api/v1/artifacts/{tenant}/{name}/versions/{version}/files?path={path}",
            self.url
        );
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .header("range", format!("bytes={from}-"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.bytes().await.ok().map(|b| b.to_vec()))
    }

    /// Downloads a file; the status, and the bytes or `None` if the transfer broke off.
    async fn get(
        &self,
        token: &str,
        tenant: &str,
        name: &str,
        version: &str,
        path: &str,
    ) -> (StatusCode, Option<Vec<u8>>) {
        let url = format!(
            "{}/api/v1/artifacts/{tenant}/{name}/versions/{version}/files?path={path}",
            self.url
        );
        let response = self.http.get(url).bearer_auth(token).send().await.unwrap();
        let status = response.status();
        (status, response.bytes().await.ok().map(|b| b.to_vec()))
    }
}

fn weights(len: usize, seed: u64) -> Vec<u8> {
    // xorshift64: incompressible bytes spanning several cipher chunks and upload parts
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn all_objects(objects: &Arc<dyn ObjectStore>) -> Vec<(String, Vec<u8>)> {
    let metas: Vec<_> = objects.list(None).try_collect().await.unwrap();
    let mut out = Vec::new();
    for meta in metas {
        let bytes = objects
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        out.push((meta.location.to_string(), bytes.to_vec()));
    }
    out
}

async fn model_round_trip_leaves_no_plaintext(backend: Backend) {
    let server = Server::start(&backend).await;
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
                .get(&alice, "acme", "llama-tiny", version, path)
                .await;
            assert_eq!(status, StatusCode::OK, "{version} {path}");
            assert!(body.as_ref() == Some(bytes), "{path} at {version} differs");
        }
    }
    // Resuming a download: `Range: bytes=N-` from inside a chunk gives exactly the rest.
    for from in [1usize, (1 << 20) + 5, 8 << 20, blob.len() - 1] {
        let (status, body) = server
            .get_from(
                &alice,
                "acme",
                "llama-tiny",
                "1",
                "original/model.safetensors",
                from,
            )
            .await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "from {from}");
        assert!(
            body.as_deref() == Some(&blob[from..]),
            "rest from {from} differs"
        );
    }
    let (status, _) = server
        .get_from(
            &alice,
            "acme",
            "llama-tiny",
            "1",
            "config.json",
            config.len(),
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

async fn tenants_cannot_see_each_others_artifacts(backend: Backend) {
    let server = Server::start(&backend).await;
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
                &bob,
                body.clone(),
            )
            .await;
        let fake = server
            .call(method.clone(), &format!("{missing}{suffix}"), &bob, body)
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
            .get(&viewer, "acme", "secret-model", "1", "config.json")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .call(
                Method::POST,
                &format!("{base}/versions"),
                &viewer,
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
                &alice,
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
        .get(&bob, "acme", "secret-model", "latest", "config.json")
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
                &bob,
                Some(json!({ "kind": "model" }))
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.call(Method::DELETE, base, &bob, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .get(&carol, "acme", "secret-model", "1", "config.json")
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
            .get(&carol, "acme", "secret-model", "1", "config.json")
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
            .get(&bob, "acme", "secret-model", "1", "config.json")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Every access, allowed or denied, is in the audit log, and the chain still verifies.
    let audit = server
        .ok(Method::GET, "/api/v1/audit", &server.admin, None)
        .await;
    let entries: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["outcome"]
            )
        })
        .collect();
    let has = |needle: &[&str]| entries.iter().any(|e| needle.iter().all(|n| e.contains(n)));
    assert!(
        has(&["ann", "/share", "shared with tenant rival", "200"]),
        "{entries:#?}"
    );
    assert!(has(&[
        "bob",
        "GET /api/v1/artifacts/acme/secret-model/versions/latest/files",
        "\"200\""
    ]));
    assert!(has(&[
        "bob",
        "GET /api/v1/artifacts/acme/secret-model/versions/1/files",
        "\"404\""
    ]));
    assert!(has(&[
        "bob",
        "POST /api/v1/artifacts/acme/secret-model/versions",
        "\"403\""
    ]));
    assert!(has(&["vera", "GET", "\"200\""]));
    let verified = server
        .ok(Method::GET, "/api/v1/audit/verify", &server.admin, None)
        .await;
    assert_eq!(verified["ok"], true, "{verified}");
    server.stop().await;
}

async fn wrong_master_key_fails_clearly_and_rotation_rewraps(backend: Backend) {
    let server = Server::start(&backend).await;
    let alice = server.user("acme", "alice", "member").await;
    let blob = weights(3 << 20, 11);
    server
        .put(&alice, "acme", "m", "model", &[("w.bin", blob.clone())])
        .await;
    server.stop().await;
    let before = all_objects(&backend.objects()).await;
    // A server with another master key refuses to start, saying why.
    let wrong = Backend::with(backend.store.clone());
    let error = Server::try_start(wrong.config())
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
    let server = Server::start(&wrong).await;
    let alice = server.user("acme", "alice", "member").await;
    let (status, body) = server.get(&alice, "acme", "m", "1", "w.bin").await;
    assert_eq!(
        (status, body.as_ref() == Some(&blob)),
        (StatusCode::OK, true)
    );
    server.stop().await;
    // ... and the old key no longer opens the store.
    let error = Server::try_start(backend.config())
        .await
        .err()
        .expect("old key must fail");
    assert!(error.contains("wrong master key"), "{error}");
}

/// The server checks integrity through the AEAD chain alone (no SHA-256 on reads): a flipped
/// bit anywhere, swapped chunks, a cut-off object and another file's object in its place must
/// each break off the response before the file is delivered whole.
async fn tampered_objects_are_never_served(backend: Backend) {
    let server = Server::start(&backend).await;
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
        let (status, body) = server.get(&alice, "acme", "m", "1", path).await;
        assert_eq!(
            (status, body.as_ref() == Some(blob)),
            (StatusCode::OK, true)
        );
    }
    server.stop().await;
}

async fn checkpoints_resume_from_another_server(backend: Backend) {
    // Two servers (two nodes) with their own databases share the store and the master key.
    let node_a = Server::start(&backend).await;
    let node_b = Server::start(&backend).await;
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
        .get(&token_b, "acme", "ckpt-job-7", "latest", "state.pt")
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
    let server = Server::start(&backend).await;
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
        let (status, value) = server.call(Method::GET, &progress_path, &alice, None).await;
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
    let (status, value) = server.call(Method::POST, &commit, &alice, None).await;
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
    let other = Server::start(&backend).await;
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
    let (status, _) = server.call(Method::POST, &commit, &alice, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.get(&alice, "acme", "big", "1", "w.bin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_deref() == Some(&blob[..]),
        "the resumed file differs"
    );
    for from in [stored - 3, stored, stored + 1] {
        let (status, body) = server
            .get_from(&alice, "acme", "big", "1", "w.bin", from)
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
