//! What the CLI test binaries share: running `suanli` as a user would, reading what it printed,
//! and the checks every user error must pass. Each test binary uses only part of it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root: where a user runs `suanli`, so `data/validation/...` resolves.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A command for the `suanli` binary, run from the repository root with no user config, no
/// `SUANLI_CATALOG` and no stdin, so a test sees what a new user sees.
pub fn suanli_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_suanli"));
    command
        .current_dir(repo_root())
        .env("SUANLI_CONFIG_DIR", "/nonexistent-suanli-config")
        .env_remove("SUANLI_CATALOG")
        .stdin(Stdio::null());
    command
}

/// Runs `suanli` with these arguments.
pub fn suanli(args: &[&str]) -> Output {
    suanli_command()
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs a command line as a user types it: `run("plan serve --model llama-3.1-8b ...")`. The
/// words are split on whitespace, with no quoting; pass an argument with a space to `suanli`.
pub fn run(command_line: &str) -> Output {
    suanli(&command_line.split_whitespace().collect::<Vec<_>>())
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that the run's stderr contains `expected` (the whole stderr in the panic if not).
pub fn assert_stderr_contains(output: &Output, expected: &str) {
    let text = stderr(output);
    assert!(text.contains(expected), "no {expected:?} in: {text}");
}

/// The stdout of a run that must have succeeded (its stderr in the panic if not).
pub fn success(output: &Output) -> String {
    assert!(output.status.success(), "{}", stderr(output));
    stdout(output)
}

/// The JSON document a run that must have succeeded printed.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

/// The stderr of a run that must have failed.
pub fn failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure: {}",
        stdout(output)
    );
    stderr(output)
}

/// Asserts a user error: non-zero exit, no panic or backtrace, one line on stderr. Returns it.
pub fn assert_one_line_error(output: &Output) -> String {
    let text = failure(output);
    assert!(!text.contains("panicked"), "panicked: {text}");
    assert!(!text.contains("backtrace"), "backtrace: {text}");
    assert!(!text.contains("RUST_BACKTRACE"), "backtrace hint: {text}");
    assert_eq!(text.trim_end().lines().count(), 1, "not one line: {text}");
    text
}

/// A path under the system temp dir no other test or run uses (not created).
pub fn unique_dir(prefix: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()))
}

/// A port free at the time of the call (another process may take it before the server binds).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits until a server on 127.0.0.1:`port` answers `/healthz`, for at most `timeout`.
pub fn wait_until_healthy(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz")).is_err() {
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `suanli serve --listen 127.0.0.1:PORT --data-dir DATA_DIR` with quiet logs and no stdin;
/// callers add their arguments and environment and start it with [`ServeProcess::spawn`].
pub fn serve_command(port: u16, data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_suanli"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("SUANLI_LOG", "warn")
        .stdin(Stdio::null());
    command
}

/// A real `suanli serve` on 127.0.0.1:`port`, killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub port: u16,
}

impl ServeProcess {
    /// Spawns `command` (from [`serve_command`] on `port`) and waits up to `timeout` for
    /// `/healthz`.
    pub fn spawn(mut command: Command, port: u16, timeout: Duration) -> ServeProcess {
        let child = command.spawn().unwrap();
        // Killed on drop, also when the server never comes up.
        let process = ServeProcess { child, port };
        wait_until_healthy(port, timeout);
        process
    }

    /// Kills the server at once (SIGKILL, no shutdown) and reaps it.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}
