//! Through the real `suanli serve` and `suanli` binaries: a job cancelled on one node resumes
//! from its latest complete checkpoint on another node that shares only the artefact store
//! and the master key (local directory, and S3 when `SUANLI_TEST_S3_URL` is set); and
//! `suanli artifact put/get` round-trips a Hugging Face directory byte for byte.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ServeProcess, free_port, serve_command, unique_dir};
use serde_json::{Value, json};

struct Server {
    process: ServeProcess,
    admin: String,
}

/// Held by each test: `free_port` releases the port before the server binds it, so tests that
/// ran at once could hand two servers the same port.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A node: its own data directory and database, the shared store and key.
fn start(store: &str, key_file: &Path) -> Server {
    let data_dir = unique_dir("suanli-ckpt-node");
    let port = free_port();
    let mut command = serve_command(port, &data_dir);
    command
        .args(["--devices", "h100:2", "--store", store, "--master-key-file"])
        .arg(key_file);
    let process = ServeProcess::spawn(command, port, Duration::from_secs(30));
    let admin = std::fs::read_to_string(data_dir.join("admin-token")).unwrap();
    Server {
        process,
        admin: admin.trim().to_string(),
    }
}

impl Server {
    fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let client = reqwest::blocking::Client::new();
        let mut request = client
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.process.port),
            )
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }

    fn ok(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, text) = self.call(token, method, path, body);
        assert!((200..300).contains(&status), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    fn member(&self, tenant: &str, user: &str) -> String {
        let post = reqwest::Method::POST;
        self.ok(
            &self.admin,
            post.clone(),
            "/api/v1/tenants",
            Some(json!({ "name": tenant })),
        );
        self.ok(
            &self.admin,
            post.clone(),
            "/api/v1/users",
            Some(json!({ "name": user, "tenant": tenant, "role": "member" })),
        );
        let token = self.ok(
            &self.admin,
            post,
            "/api/v1/tokens",
            Some(json!({ "user": user })),
        );
        token["token"].as_str().unwrap().to_string()
    }

    fn wait(&self, token: &str, what: &str, done: impl Fn(&Server) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = token;
    }
}

fn key_file() -> PathBuf {
    let path = unique_dir("suanli-ckpt-key");
    let key: String = (0..32)
        .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
        .collect();
    std::fs::write(&path, key).unwrap();
    path
}

fn local_store() -> String {
    format!("file://{}", unique_dir("suanli-ckpt-objects").display())
}

fn s3_store() -> Option<String> {
    let url = std::env::var("SUANLI_TEST_S3_URL").ok()?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let prefix = unique_dir("ckpt")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    Some(format!("{url}{sep}prefix={prefix}"))
}

const JOB: &str = r#"set -e
mkdir -p "$WORKDIR" && cd "$WORKDIR" && mkdir -p ckpt
if "$SUANLI" ckpt restore ckpt >/dev/null; then step=$(cat ckpt/step); echo "resumed at step $step"; else step=0; echo "fresh start"; fi
while [ "$step" -lt 8 ]; do
  step=$((step + 1)); echo "$step" > ckpt/step; head -c 300000 /dev/urandom > ckpt/weights.bin
  "$SUANLI" ckpt save ckpt --keep-last 2 >/dev/null; echo "saved step $step"; sleep 0.3
done
echo finished"#;

fn submit(node: &Server, token: &str) -> i64 {
    let url = format!(
        "http://127.0.0.1:{}/api/v1/artifacts/acme/run-7",
        node.process.port
    );
    let env = json!({
        "SUANLI": env!("CARGO_BIN_EXE_suanli"), "SUANLI_TOKEN": token,
        "SUANLI_CHECKPOINT_URL": url, "SUANLI_CONFIG_DIR": unique_dir("suanli-ckpt-config"),
        "WORKDIR": unique_dir("suanli-ckpt-job"),
    });
    let job = node.ok(
        token,
        reqwest::Method::POST,
        "/api/v1/jobs",
        Some(json!({ "command": ["bash", "-c", JOB], "env": env, "gpus": 1 })),
    );
    job["id"].as_i64().unwrap()
}

fn latest(node: &Server, token: &str) -> Option<u64> {
    let (status, text) = node.call(
        token,
        reqwest::Method::GET,
        "/api/v1/artifacts/acme/run-7/versions/latest",
        None,
    );
    (status == 200).then(|| {
        serde_json::from_str::<Value>(&text).unwrap()["version"]
            .as_u64()
            .unwrap()
    })
}

fn state(node: &Server, token: &str, id: i64) -> String {
    node.ok(
        token,
        reqwest::Method::GET,
        &format!("/api/v1/jobs/{id}"),
        None,
    )["state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn resume_on_another_node(store: String) {
    let _serial = serial();
    let key = key_file();
    let node_a = start(&store, &key);
    let token_a = node_a.member("acme", "alice");
    let first = submit(&node_a, &token_a);
    node_a.wait(&token_a, "three checkpoints", |n| {
        latest(n, &token_a).is_some_and(|v| v >= 3)
    });
    node_a.ok(
        &token_a,
        reqwest::Method::POST,
        &format!("/api/v1/jobs/{first}/cancel"),
        None,
    );
    node_a.wait(&token_a, "the cancel", |n| {
        state(n, &token_a, first) == "cancelled"
    });
    let saved_on_a = latest(&node_a, &token_a).unwrap();
    drop(node_a); // the node is gone; only the store remains

    let node_b = start(&store, &key);
    let token_b = node_b.member("acme", "alice");
    let second = submit(&node_b, &token_b);
    node_b.wait(&token_b, "the job to finish", |n| {
        matches!(state(n, &token_b, second).as_str(), "succeeded" | "failed")
    });
    let (_, log) = node_b.call(
        &token_b,
        reqwest::Method::GET,
        &format!("/api/v1/jobs/{second}/logs?attempt=0"),
        None,
    );
    assert_eq!(state(&node_b, &token_b, second), "succeeded", "{log}");
    let resumed: u64 = log
        .lines()
        .find_map(|l| l.strip_prefix("resumed at step "))
        .unwrap_or_else(|| panic!("did not resume: {log}"))
        .trim()
        .parse()
        .unwrap();
    // Each version holds one step; the newest complete one on A was step `saved_on_a` or later.
    assert!(
        resumed >= saved_on_a && resumed < 8,
        "resumed at {resumed}, A had saved {saved_on_a}"
    );
    assert!(
        log.contains("saved step 8") && log.contains("finished"),
        "{log}"
    );
    assert!(
        !log.contains(&format!("saved step {resumed}\n")),
        "step {resumed} redone: {log}"
    );
    // --keep-last 2 left two complete versions.
    let shown = node_b.ok(
        &token_b,
        reqwest::Method::GET,
        "/api/v1/artifacts/acme/run-7",
        None,
    );
    let complete = shown["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["complete"] == true)
        .count();
    assert_eq!(complete, 2, "{shown}");
}

#[test]
fn a_cancelled_job_resumes_on_another_node_local_store() {
    resume_on_another_node(local_store());
}

#[test]
fn a_cancelled_job_resumes_on_another_node_s3_store() {
    let Some(store) = s3_store() else {
        eprintln!(
            "SUANLI_TEST_S3_URL is not set; source .ci/s3.sh to run this on a real S3 server"
        );
        return;
    };
    resume_on_another_node(store);
}

#[test]
fn artifact_put_and_get_round_trip_a_hugging_face_directory() {
    let _serial = serial();
    let node = start(&local_store(), &key_file());
    let token = node.member("acme", "alice");
    let model = unique_dir("suanli-hf-model");
    std::fs::create_dir_all(model.join("original")).unwrap();
    std::fs::write(
        model.join("config.json"),
        br#"{"model_type":"llama","hidden_size":64}"#,
    )
    .unwrap();
    std::fs::write(model.join("tokenizer.json"), br#"{"version":"1.0"}"#).unwrap();
    // `+` and `=` are allowed in file names and mean something in a query string.
    std::fs::write(model.join("lora+r=8.json"), b"{}").unwrap();
    let weights: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(model.join("original/consolidated.00.pth"), &weights).unwrap();
    let suanli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_suanli"))
            .args(args)
            .env(
                "SUANLI_URL",
                format!("http://127.0.0.1:{}", node.process.port),
            )
            .env("SUANLI_TOKEN", &token)
            .env("SUANLI_CONFIG_DIR", unique_dir("suanli-cfg"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stdout, stderr) =
        suanli(&["artifact", "put", "tiny-llama", model.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("stored acme/tiny-llama@1 (4 files"),
        "{stdout}"
    );
    let out = unique_dir("suanli-hf-out");
    let (code, _, stderr) = suanli(&[
        "artifact",
        "get",
        "acme/tiny-llama@latest",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    for file in [
        "config.json",
        "tokenizer.json",
        "lora+r=8.json",
        "original/consolidated.00.pth",
    ] {
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            std::fs::read(model.join(file)).unwrap(),
            "{file}"
        );
    }
    // An interrupted download resumes: a part holding the first bytes is completed with a
    // ranged request; a part holding wrong bytes is caught by the SHA-256 check and removed.
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&weights));
    let resumed = unique_dir("suanli-hf-resume");
    std::fs::create_dir_all(resumed.join("original")).unwrap();
    let part = resumed.join(format!(
        "original/.consolidated.00.pth.{}.suanli-part",
        &sha[..16]
    ));
    let get = |dir: &Path| {
        suanli(&[
            "artifact",
            "get",
            "acme/tiny-llama@1",
            dir.to_str().unwrap(),
        ])
    };
    std::fs::write(&part, &weights[..1_234_567]).unwrap();
    let (code, _, stderr) = get(&resumed);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(std::fs::read(resumed.join("original/consolidated.00.pth")).unwrap() == weights);
    assert!(!part.exists());
    std::fs::remove_file(resumed.join("original/consolidated.00.pth")).unwrap();
    std::fs::write(&part, vec![0u8; 2_000_000]).unwrap();
    let (code, _, stderr) = get(&resumed);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("differs from the recorded"), "{stderr}");
    assert!(!part.exists() && !resumed.join("original/consolidated.00.pth").exists());
    let (code, _, stderr) = get(&resumed);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(std::fs::read(resumed.join("original/consolidated.00.pth")).unwrap() == weights);
    // An upload that broke off half-way is completed by `put --resume` into the same version.
    let (code, _, _) = suanli(&["artifact", "put", "big", model.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    node.ok(
        &token,
        reqwest::Method::POST,
        "/api/v1/artifacts/acme/big/versions",
        Some(json!({ "kind": "model" })),
    );
    {
        use std::io::Write;
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", node.process.port)).unwrap();
        write!(
            socket,
            "PUT /api/v1/artifacts/acme/big/versions/2/files?path=original/consolidated.00.pth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
            weights.len()
        )
        .unwrap();
        socket.write_all(&weights[..1_500_000]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = suanli(&[
        "artifact",
        "put",
        "big",
        model.to_str().unwrap(),
        "--resume",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("stored acme/big@2 (4 files"), "{stdout}");
    assert!(
        stderr.contains("original/consolidated.00.pth: resuming at byte"),
        "{stderr}"
    );
    let big = unique_dir("suanli-hf-big");
    let (code, _, stderr) = suanli(&["artifact", "get", "acme/big@2", big.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(std::fs::read(big.join("original/consolidated.00.pth")).unwrap() == weights);
    let (_, listed, _) = suanli(&["artifact", "ls", "--json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[1]["name"], "tiny-llama");
    let total: u64 = [
        "config.json",
        "tokenizer.json",
        "lora+r=8.json",
        "original/consolidated.00.pth",
    ]
    .iter()
    .map(|f| std::fs::metadata(model.join(f)).unwrap().len())
    .sum();
    assert_eq!(listed[1]["size_bytes"], total);
    let (code, _, stderr) = suanli(&["artifact", "get", "acme/other@1", out.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("404") && stderr.contains("not found"),
        "{stderr}"
    );
    let (code, _, stderr) = suanli(&[
        "ckpt",
        "latest",
        "--to",
        &format!(
            "http://127.0.0.1:{}/api/v1/artifacts/acme/none",
            node.process.port
        ),
    ]);
    assert_eq!(code, Some(3), "{stderr}");
}
