//! A long-lived `scontrol` reading commands from its standard input, for the one command a
//! run's start needs (releasing a spare): a new `scontrol` process per command costs ~15 ms of
//! CPU (loading libslurm, `slurm.conf` and the auth plugin), one command in a running one
//! ~2.5 ms (measured on the CI cluster at load 22). Each command is followed by a marker word
//! scontrol does not know; it answers that with `invalid keyword: <marker>` on stderr, so what
//! stderr said before the marker is the command's error, if any. The session is checked with a
//! marker alone when it starts; if that fails (another scontrol that does not echo unknown
//! words), `run` says so and the caller spawns `scontrol` per command instead.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdin};
use tokio::sync::Mutex;

use super::{COMMAND_TIMEOUT, SlurmConfig, SlurmError};

/// How long the marker alone may take when a session starts (nothing is sent to slurmctld).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

struct Process {
    _child: Child,
    stdin: ChildStdin,
    stderr: Lines<BufReader<ChildStderr>>,
}

/// A long-lived `scontrol`; commands run one at a time.
pub(super) struct Session {
    config: SlurmConfig,
    process: Mutex<Option<Process>>,
    markers: AtomicU64,
    /// Set when the marker protocol failed: every command is spawned from then on.
    unusable: AtomicBool,
}

impl Session {
    pub(super) fn new(config: SlurmConfig) -> Session {
        Session {
            config,
            process: Mutex::new(None),
            markers: AtomicU64::new(0),
            unusable: AtomicBool::new(false),
        }
    }

    /// No command under way (a hint: another may start at once).
    pub(super) fn is_idle(&self) -> bool {
        self.process.try_lock().is_ok()
    }

    /// Runs `scontrol <words>`: in the session, or as its own process when the session cannot
    /// be used.
    pub(super) async fn run(&self, words: &[String]) -> Result<(), SlurmError> {
        if !self.unusable.load(Ordering::Relaxed) {
            match self.in_session(words).await {
                Ok(answer) => return answer,
                Err(error) => {
                    tracing::warn!(cluster = %self.config.label, %error, "scontrol session failed; spawning instead");
                }
            }
        }
        super::command(&self.config, "scontrol", words)
            .await
            .map(|_| ())
    }

    /// The command's answer, or an error of the session itself (`Err`).
    async fn in_session(&self, words: &[String]) -> Result<Result<(), SlurmError>, SlurmError> {
        let mut guard = self.process.lock().await;
        if guard.is_none() {
            let mut process = self.spawn()?;
            let probe = self.exchange(&mut process, "", PROBE_TIMEOUT).await;
            if !matches!(probe, Ok(ref errors) if errors.is_empty()) {
                self.unusable.store(true, Ordering::Relaxed);
                return Err(SlurmError::Failed {
                    program: "scontrol".into(),
                    stderr: format!("does not answer unknown words as expected: {probe:?}"),
                });
            }
            *guard = Some(process);
        }
        let process = guard.as_mut().expect("started above");
        match self
            .exchange(process, &words.join(" "), COMMAND_TIMEOUT)
            .await
        {
            Ok(errors) if errors.is_empty() => Ok(Ok(())),
            Ok(errors) => Ok(Err(SlurmError::Failed {
                program: "scontrol".into(),
                stderr: errors.join("; ").chars().take(500).collect(),
            })),
            Err(error) => {
                // Broken or stuck: the next command starts a new one.
                *guard = None;
                Err(error)
            }
        }
    }

    fn spawn(&self) -> Result<Process, SlurmError> {
        let mut command = match &self.config.bin_dir {
            Some(dir) => tokio::process::Command::new(dir.join("scontrol")),
            None => tokio::process::Command::new("scontrol"),
        };
        command
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(conf) = &self.config.slurm_conf {
            command.env("SLURM_CONF", conf);
        }
        let spawn_error = |source| SlurmError::Spawn {
            program: "scontrol".into(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let missing = || spawn_error(std::io::Error::other("no pipe"));
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().ok_or_else(missing)?;
        Ok(Process {
            _child: child,
            stdin,
            stderr: BufReader::new(stderr).lines(),
        })
    }

    /// Sends `line` (if any) and a marker; returns what stderr said before the marker.
    async fn exchange(
        &self,
        process: &mut Process,
        line: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, SlurmError> {
        let marker = format!(
            "suanli-marker-{}",
            self.markers.fetch_add(1, Ordering::Relaxed)
        );
        let broken = |what: String| SlurmError::Failed {
            program: "scontrol session".into(),
            stderr: what,
        };
        let mut input = String::new();
        if !line.is_empty() {
            input.push_str(line);
            input.push('\n');
        }
        input.push_str(&marker);
        input.push('\n');
        let talk = async {
            process
                .stdin
                .write_all(input.as_bytes())
                .await
                .map_err(|e| broken(format!("write: {e}")))?;
            process
                .stdin
                .flush()
                .await
                .map_err(|e| broken(format!("write: {e}")))?;
            let mut errors = Vec::new();
            loop {
                match process.stderr.next_line().await {
                    Ok(Some(text)) if text.contains(&marker) => return Ok(errors),
                    Ok(Some(text)) => errors.push(text),
                    Ok(None) => return Err(broken("scontrol exited".into())),
                    Err(e) => return Err(broken(format!("read: {e}"))),
                }
            }
        };
        tokio::time::timeout(timeout, talk)
            .await
            .map_err(|_| SlurmError::TimedOut {
                program: "scontrol".into(),
                seconds: timeout.as_secs(),
            })?
    }
}
