//! The Slurm tests' rig: the shared cluster (one test at a time), `suanli serve` on it, and its
//! jobs as Slurm sees them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{ServeProcess, free_port, serve_command, unique_dir};

static CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster, or `None` (with a message) when the tests are not asked for.
pub fn cluster() -> Option<std::sync::MutexGuard<'static, ()>> {
    if std::env::var("SUANLI_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!("skipped: set SUANLI_TEST_SLURM=1 after `. .ci/slurm.sh` to run the Slurm tests");
        return None;
    }
    let guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let out = slurm("sinfo", &["-h", "-N", "-o", "%N %T"]);
    let idle = out
        .lines()
        .filter(|l| !l.contains("drain") && !l.contains("down"))
        .count();
    assert!(idle >= 4, "SUANLI_TEST_SLURM=1 but not 4 nodes up:\n{out}");
    Some(guard)
}

pub fn slurm_conf() -> String {
    std::env::var("SUANLI_SLURM_CONF")
        .unwrap_or_else(|_| "/var/tmp/suanli-slurm/etc/slurm.conf".into())
}

pub fn slurm(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .env("SLURM_CONF", slurm_conf())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub struct Server {
    pub process: ServeProcess,
    pub token: String,
    pub data_dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.process.kill_9();
        // Killed, the server leaves its spares pending in Slurm (a graceful stop cancels them).
        let name = self.data_dir.join("slurm-spares/slurm/name");
        if let Ok(name) = std::fs::read_to_string(name) {
            let _ = Command::new("scancel")
                .args([format!("--name={}", name.trim()), "--state=PENDING".into()])
                .env("SLURM_CONF", slurm_conf())
                .status();
        }
    }
}

/// `suanli serve` with the given extra arguments on a data directory.
pub fn serve(data_dir: &Path, port: u16, extra: &[&str]) -> Server {
    let mut command = serve_command(port, data_dir);
    command.args(extra).env("SLURM_CONF", slurm_conf());
    let process = ServeProcess::spawn(command, port, Duration::from_secs(60));
    let token = std::fs::read_to_string(data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    Server {
        process,
        token,
        data_dir: data_dir.to_path_buf(),
    }
}

/// `suanli serve --executor slurm` with `extra` arguments in a fresh data directory, with a
/// tenant `lab`.
pub fn slurm_server(extra: &[&str]) -> Server {
    let mut args = vec!["--executor", "slurm"];
    args.extend_from_slice(extra);
    let server = serve(&unique_dir("suanli-slurm"), free_port(), &args);
    server.call(
        Method::POST,
        "/api/v1/tenants",
        Some(json!({ "name": "lab" })),
    );
    server
}

impl Server {
    pub fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let client = reqwest::blocking::Client::new();
        let mut request = client
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.process.port),
            )
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub fn submit(&self, body: Value) -> i64 {
        let mut body = body;
        body["tenant"] = json!("lab");
        self.call(Method::POST, "/api/v1/jobs", Some(body))["id"]
            .as_i64()
            .unwrap()
    }

    pub fn job(&self, id: i64) -> Value {
        self.call(Method::GET, &format!("/api/v1/jobs/{id}"), None)
    }

    pub fn wait(&self, id: i64, what: &str, seconds: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let job = self.job(id);
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} never {what}: {job}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn logs(&self, id: i64, attempt: u32) -> String {
        match self.call(
            Method::GET,
            &format!("/api/v1/jobs/{id}/logs?attempt={attempt}"),
            None,
        ) {
            Value::String(text) => text,
            other => other.to_string(),
        }
    }

    /// Slurm jobs this server submitted for suanli job `id` (any attempt).
    pub fn slurm_jobs(&self, id: i64) -> Vec<(String, String)> {
        let name = std::fs::read_to_string(
            self.data_dir
                .join(format!("jobs/{id}/attempt-0/slurm-job-name")),
        )
        .unwrap();
        let prefix = name.trim().trim_end_matches("-a0").to_string();
        slurm("squeue", &["-h", "-a", "-t", "all", "-o", "%i %j %T"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 3 && f[1].starts_with(&format!("{prefix}-a")))
                    .then(|| (f[0].to_string(), f[2].to_string()))
            })
            .collect()
    }
}

/// `scontrol show job` of the Slurm job behind a suanli job's current run, one line.
pub fn slurm_job(job: &Value) -> String {
    let run_dir = job["run"]["run_dir"].as_str().unwrap();
    let id = std::fs::read_to_string(Path::new(run_dir).join("slurm-job-id")).unwrap();
    slurm("scontrol", &["show", "job", "-o", id.trim()])
}

pub fn is_running_in_slurm(job: &Value) -> bool {
    let reason = job["reason"].as_str().unwrap_or("");
    job["state"] == "running" && reason.starts_with("slurm job") && reason.contains("running on")
}
