//! A real server on 127.0.0.1:0 in a fresh data directory, and small helpers to call it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct TestServer {
    pub url: String,
    pub admin: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), suanli_server::ServerError>>>,
}

/// A fresh directory every job user may write to (mode 1777, like /tmp): jobs run as
/// unprivileged users, not as the test.
pub fn shared_dir(prefix: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = unique_dir(prefix);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// A name no other test or run uses: `prefix`, the process id and the time in nanoseconds.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A path under the system temp dir no other test uses (not created).
pub fn unique_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(unique(prefix))
}

/// `len` incompressible bytes (xorshift64 from `seed`): test weights that span several cipher
/// chunks and upload parts and that no compression or deduplication can shrink.
pub fn weights(len: usize, seed: u64) -> Vec<u8> {
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

/// Asserts that a job's `reason` starts with `prefix` (the job in the panic if not).
pub fn assert_reason_starts_with(job: &Value, prefix: &str) {
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with(prefix), "{job}");
}

impl TestServer {
    pub async fn start(devices: &str) -> TestServer {
        Self::start_with(devices, None).await
    }

    /// A server on the given database URL (SQLite in the data directory when `None`).
    /// A server on `devices` and the token of alice, a member of tenant `research`: the setting
    /// of most tests.
    pub async fn with_alice(devices: &str) -> (TestServer, String) {
        let server = Self::start(devices).await;
        let alice = server.user("research", "alice", "member").await;
        (server, alice)
    }

    pub async fn start_with(devices: &str, database: Option<String>) -> TestServer {
        Self::start_in(unique_dir("suanli-server-test"), devices, database).await
    }

    /// A new server process over an existing data directory.
    pub async fn restart(data_dir: &std::path::Path, devices: &str) -> TestServer {
        Self::start_in(data_dir.to_path_buf(), devices, None).await
    }

    async fn start_in(data_dir: PathBuf, devices: &str, database: Option<String>) -> TestServer {
        let config = suanli_server::ServerConfig {
            data_dir,
            database,
            devices: Some(devices.into()),
            policy: "fifo".into(),
            ..Default::default()
        };
        Self::start_config(config).await
    }

    /// A server with a configuration of the test's own (the artefact store from the
    /// environment, as `suanli_server::run` takes it).
    pub async fn start_config(config: suanli_server::ServerConfig) -> TestServer {
        let artifacts = suanli_server::artifacts::ArtifactConfig::from_env();
        Self::try_start_with_artifacts(config, artifacts)
            .await
            .unwrap_or_else(|error| panic!("the server did not start: {error}"))
    }

    /// A server over the given artefact store; `Err` with the server's error if it stops
    /// before it answers `/healthz`.
    pub async fn try_start_with_artifacts(
        config: suanli_server::ServerConfig,
        artifacts: suanli_server::artifacts::ArtifactConfig,
    ) -> Result<TestServer, String> {
        let data_dir = config.data_dir.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(suanli_server::run_with(
            config,
            artifacts,
            listener,
            async {
                let _ = rx.await;
            },
        ));
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if task.is_finished() {
                return Err(match task.await.unwrap() {
                    Err(error) => error.to_string(),
                    Ok(()) => "it stopped without an error".into(),
                });
            }
            if let Ok(response) = http.get(format!("{url}/healthz")).send().await
                && response.status() == StatusCode::OK
            {
                break;
            }
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let admin = std::fs::read_to_string(data_dir.join("admin-token"))
            .unwrap()
            .trim()
            .to_string();
        Ok(TestServer {
            url,
            admin,
            data_dir,
            http,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Calls the API; returns the status and the JSON body (or the text as a JSON string).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn ok(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method.clone(), path, Some(token), body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    /// Creates a tenant (if needed) and a user with a token; returns the token.
    pub async fn user(&self, tenant: &str, name: &str, role: &str) -> String {
        let _ = self
            .call(
                Method::POST,
                "/api/v1/tenants",
                Some(&self.admin),
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

    pub async fn submit(&self, token: &str, body: Value) -> i64 {
        let job = self
            .ok(Method::POST, "/api/v1/jobs", token, Some(body))
            .await;
        job["id"].as_i64().unwrap()
    }

    /// Submits a job the server should refuse: the status and the answer.
    pub async fn submit_refused(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/api/v1/jobs", Some(token), Some(body))
            .await
    }

    /// Submits a job and waits until it runs; returns its id.
    pub async fn submit_running(&self, token: &str, body: Value) -> i64 {
        let id = self.submit(token, body).await;
        self.wait_state(token, id, "running").await;
        id
    }

    /// The job as `GET /api/v1/jobs/{id}` shows it to `token`.
    pub async fn job(&self, token: &str, id: i64) -> Value {
        self.ok(Method::GET, &format!("/api/v1/jobs/{id}"), token, None)
            .await
    }

    /// Cancels a job (queued or running) as `token`; the call must succeed.
    pub async fn cancel(&self, token: &str, id: i64) -> Value {
        self.ok(
            Method::POST,
            &format!("/api/v1/jobs/{id}/cancel"),
            token,
            None,
        )
        .await
    }

    /// Sets `tenant`'s quota of `accelerator` to `limit` devices, as the admin.
    pub async fn set_quota(&self, tenant: &str, accelerator: &str, limit: u32) {
        let body = json!({ "tenant": tenant, "accelerator": accelerator, "limit": limit });
        self.ok(Method::PUT, "/api/v1/quotas", &self.admin, Some(body))
            .await;
    }

    /// The audit log as the admin reads it, one `actor action target outcome` line an entry,
    /// oldest first.
    pub async fn audit_lines(&self) -> Vec<String> {
        let entries = self
            .ok(Method::GET, "/api/v1/audit", &self.admin, None)
            .await;
        let field = |e: &Value, key: &str| e[key].as_str().unwrap().to_string();
        entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let [actor, action, target, outcome] =
                    ["actor", "action", "target", "outcome"].map(|k| field(e, k));
                format!("{actor} {action} {target} {outcome}")
            })
            .collect()
    }

    /// The verdict of `GET /api/v1/audit/verify`, asked as the admin.
    pub async fn verify_audit(&self) -> Value {
        self.ok(Method::GET, "/api/v1/audit/verify", &self.admin, None)
            .await
    }

    /// Polls a job until `done(job)` or the timeout.
    pub async fn wait_job(
        &self,
        token: &str,
        id: i64,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let job = self.job(token, id).await;
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never became {what}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_state(&self, token: &str, id: i64, state: &str) -> Value {
        self.wait_job(token, id, state, |job| job["state"] == state)
            .await
    }

    pub async fn logs(&self, token: &str, id: i64, attempt: u32) -> String {
        let (status, value) = self
            .call(
                Method::GET,
                &format!("/api/v1/jobs/{id}/logs?attempt={attempt}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        match value {
            Value::String(text) => text,
            other => other.to_string(),
        }
    }
}

impl TestServer {
    /// Stops the server and waits until it has let go of its store.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
