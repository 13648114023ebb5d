//! A long-lived `scontrol` reading commands from its standard input: a new `scontrol` process
//! per command costs ~15 ms of CPU (loading libslurm, `slurm.conf` and the auth plugin), one
//! command in a running one ~2.5 ms (measured on the CI cluster at load 22). Each command is
//! followed by a marker word scontrol does not know; it answers that with
//! `invalid keyword: <marker>` on stderr, so what stderr said before the marker is the
//! command's error, if any. The session is checked with a marker alone when it starts; if that
//! fails (another scontrol that does not echo unknown words), `run` says so and the caller
//! spawns `scontrol` per command instead.
//!
//! A session for queries (`Session::for_queries`, `scontrol -o`: one line per job) also reads
//! standard output. scontrol reads its commands through readline, which echoes each line it
//! reads (`scontrol: <line>`) on standard output after the previous command's output, so the
//! marker's echo ends a command's output there as its error ends it on stderr. A scontrol built
//! without readline echoes nothing: the probe then fails and `query` returns an error (the
//! poller then uses `squeue`).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::Mutex;

use super::{COMMAND_TIMEOUT, SlurmConfig, SlurmError};

/// How long the marker alone may take when a session starts (nothing is sent to slurmctld).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines (commands and markers) after which a session is replaced by a new `scontrol`.
/// scontrol's readline keeps every line in its history and each new line costs time in
/// proportion to it (`_hs_replace_history_data`): 25,000 lines took 2.0 s of CPU, 50,000 7.6 s
/// and 200,000 94 s on the CI host, about 5 ns per line already in the history. A new session
/// costs ~15 ms; 2,500 lines keep the two at about 6 us a line each.
const MAX_LINES: usize = 2500;

struct Process {
    _child: Child,
    stdin: ChildStdin,
    stderr: Lines<BufReader<ChildStderr>>,
    /// Read by sessions for queries only (else `/dev/null`).
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    /// Lines sent so far.
    lines: usize,
}

/// What scontrol said to one command: its output (sessions for queries only; the lines it
/// echoes are left in) and its errors.
#[derive(Debug, Default)]
pub(super) struct Answer {
    pub output: Vec<String>,
    pub errors: Vec<String>,
}

/// A long-lived `scontrol`; commands run one at a time.
pub(super) struct Session {
    config: SlurmConfig,
    process: Mutex<Option<Process>>,
    markers: AtomicU64,
    /// Set when the marker protocol failed: every command is spawned from then on.
    unusable: AtomicBool,
    /// Runs `scontrol -o` and reads its standard output.
    queries: bool,
    /// Lines after which the process is replaced (`MAX_LINES`).
    max_lines: usize,
}

impl Session {
    pub(super) fn new(config: SlurmConfig) -> Session {
        Session {
            config,
            process: Mutex::new(None),
            markers: AtomicU64::new(0),
            unusable: AtomicBool::new(false),
            queries: false,
            max_lines: MAX_LINES,
        }
    }

    /// A session whose commands' output is read (`query`), one line per record (`-o`).
    pub(super) fn for_queries(config: SlurmConfig) -> Session {
        Session {
            queries: true,
            ..Session::new(config)
        }
    }

    /// Runs `commands` (each a line such as `show job 12`) one after the other in the session
    /// and returns what scontrol said to each. Only for sessions `for_queries`; an error when
    /// the session cannot be used (the caller asks otherwise) or scontrol stopped answering.
    pub(super) async fn query(&self, commands: &[String]) -> Result<Vec<Answer>, SlurmError> {
        if !self.queries || self.unusable.load(Ordering::Relaxed) {
            return Err(SlurmError::Failed {
                program: "scontrol session".into(),
                stderr: "cannot be used for queries".into(),
            });
        }
        let mut guard = self.started().await?;
        let process = guard.as_mut().expect("started");
        let answers = self.exchange(process, commands, COMMAND_TIMEOUT).await;
        if answers.is_err() {
            // Broken or stuck: the next command starts a new one.
            *guard = None;
        }
        answers
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
        let mut guard = self.started().await?;
        let process = guard.as_mut().expect("started");
        match self
            .exchange(process, &[words.join(" ")], COMMAND_TIMEOUT)
            .await
        {
            Ok(answers) if answers.iter().all(|a| a.errors.is_empty()) => Ok(Ok(())),
            Ok(answers) => Ok(Err(SlurmError::Failed {
                program: "scontrol".into(),
                stderr: answers[0].errors.join("; ").chars().take(500).collect(),
            })),
            Err(error) => {
                *guard = None;
                Err(error)
            }
        }
    }

    /// The session's process, started and probed if there is none.
    async fn started(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Process>>, SlurmError> {
        let mut guard = self.process.lock().await;
        if guard.as_ref().is_some_and(|p| p.lines >= self.max_lines) {
            // Dropping it kills it (`kill_on_drop`).
            *guard = None;
        }
        if guard.is_none() {
            let mut process = self.spawn()?;
            let probe = self
                .exchange(&mut process, &[String::new()], PROBE_TIMEOUT)
                .await;
            if !matches!(probe, Ok(ref answers) if answers[0].errors.is_empty()) {
                self.unusable.store(true, Ordering::Relaxed);
                return Err(SlurmError::Failed {
                    program: "scontrol".into(),
                    stderr: format!("does not answer unknown words as expected: {probe:?}"),
                });
            }
            *guard = Some(process);
        }
        Ok(guard)
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
            .args(self.queries.then_some("-o"))
            .stdin(std::process::Stdio::piped())
            .stdout(if self.queries {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
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
        let stdout = match self.queries {
            true => Some(BufReader::new(child.stdout.take().ok_or_else(missing)?).lines()),
            false => None,
        };
        Ok(Process {
            _child: child,
            stdin,
            stderr: BufReader::new(stderr).lines(),
            stdout,
            lines: 0,
        })
    }

    /// Sends each command (an empty one sends nothing) followed by a marker; returns, per
    /// command, what stderr (and stdout, for queries) said before its marker.
    async fn exchange(
        &self,
        process: &mut Process,
        commands: &[String],
        timeout: Duration,
    ) -> Result<Vec<Answer>, SlurmError> {
        let first = self
            .markers
            .fetch_add(commands.len() as u64, Ordering::Relaxed);
        // `-end`: no marker is a prefix of another.
        let markers: Vec<String> = (first..first + commands.len() as u64)
            .map(|n| format!("suanli-marker-{n}-end"))
            .collect();
        let broken = |what: String| SlurmError::Failed {
            program: "scontrol session".into(),
            stderr: what,
        };
        let mut input = String::new();
        for (command, marker) in commands.iter().zip(&markers) {
            if !command.is_empty() {
                input.push_str(command);
                input.push('\n');
            }
            input.push_str(marker);
            input.push('\n');
        }
        process.lines += input.lines().count();
        let Process {
            stdin,
            stderr,
            stdout,
            ..
        } = process;
        // Written and read at once: neither side's pipe can fill while the other waits.
        let write = async {
            stdin
                .write_all(input.as_bytes())
                .await
                .map_err(|e| broken(format!("write: {e}")))?;
            stdin
                .flush()
                .await
                .map_err(|e| broken(format!("write: {e}")))
        };
        let errors = until_markers(stderr, &markers, broken);
        let output = async {
            match stdout {
                Some(stdout) => until_markers(stdout, &markers, broken).await,
                None => Ok(vec![Vec::new(); markers.len()]),
            }
        };
        let talk = async { tokio::try_join!(write, errors, output) };
        let ((), errors, output) =
            tokio::time::timeout(timeout, talk)
                .await
                .map_err(|_| SlurmError::TimedOut {
                    program: "scontrol".into(),
                    seconds: timeout.as_secs(),
                })??;
        Ok(errors
            .into_iter()
            .zip(output)
            .map(|(errors, output)| Answer { output, errors })
            .collect())
    }
}

/// Reads `lines` up to the line naming each marker in turn; the lines before each.
async fn until_markers<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
    markers: &[String],
    broken: impl Fn(String) -> SlurmError,
) -> Result<Vec<Vec<String>>, SlurmError> {
    let mut said = Vec::with_capacity(markers.len());
    for marker in markers {
        let mut before = Vec::new();
        loop {
            match lines.next_line().await {
                Ok(Some(text)) if text.contains(marker.as_str()) => break,
                Ok(Some(text)) => before.push(text),
                Ok(None) => return Err(broken("scontrol exited".into())),
                Err(e) => return Err(broken(format!("read: {e}"))),
            }
        }
        said.push(before);
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slurm::parse::{Ending, Phase, parse_show_job};

    #[tokio::test]
    async fn a_session_is_replaced_once_it_has_read_its_share_of_lines() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("suanli-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Answers unknown words on stderr, as scontrol does; logs every start.
        let fake = format!(
            "#!/bin/sh\necho start >> '{}/starts'\n\
             while IFS= read -r line; do echo \"invalid keyword: $line\" >&2; done\n",
            dir.display()
        );
        std::fs::write(dir.join("scontrol"), fake).unwrap();
        std::fs::set_permissions(dir.join("scontrol"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let mut config = SlurmConfig::new("fake");
        config.bin_dir = Some(dir.clone());
        let session = Session {
            max_lines: 5,
            ..Session::new(config)
        };
        // The probe is one line, each command two (itself and its marker): the third command
        // finds 5 lines sent and starts a new process.
        let update = ["update".to_string(), "JobId=1".into()];
        for _ in 0..3 {
            session.run(&update).await.unwrap_err();
        }
        let starts = std::fs::read_to_string(dir.join("starts")).unwrap();
        assert_eq!(starts.lines().count(), 2, "{starts}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Against the CI cluster (`SUANLI_TEST_SLURM=1` after `. .ci/slurm.sh`): one session
    /// answers several `show job`s in order, each with its own output and errors.
    #[tokio::test]
    async fn a_query_session_answers_show_job_per_id_on_the_live_cluster() {
        if std::env::var("SUANLI_TEST_SLURM").as_deref() != Ok("1") {
            eprintln!("skipped: set SUANLI_TEST_SLURM=1 after `. .ci/slurm.sh`");
            return;
        }
        let mut config = SlurmConfig::new("slurm");
        config.slurm_conf = std::env::var("SUANLI_SLURM_CONF").ok().map(Into::into);
        let args = ["--parsable", "--no-requeue", "-t", "1", "-o", "/dev/null"]
            .into_iter()
            .chain(["--gres=gpu:1", "--wrap", "exit 3"])
            .map(String::from)
            .collect::<Vec<_>>();
        let id = crate::slurm::command(&config, "sbatch", &args)
            .await
            .unwrap()
            .trim()
            .to_string();
        let session = Session::for_queries(config);
        let commands = [format!("show job {id}"), "show job 999999999".into()];
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let answers = session.query(&commands).await.unwrap();
            assert_eq!(answers.len(), 2);
            assert!(answers[0].errors.is_empty(), "{answers:?}");
            let lines: Vec<&String> = answers[0]
                .output
                .iter()
                .filter(|l| l.starts_with("JobId="))
                .collect();
            assert_eq!(lines.len(), 1, "{answers:?}");
            let row = parse_show_job(lines[0]).unwrap();
            assert_eq!(row.job_id, id);
            // The unknown id: Slurm's error, and no job line.
            assert!(
                answers[1].errors[0].contains("Invalid job id"),
                "{answers:?}"
            );
            assert!(!answers[1].output.iter().any(|l| l.starts_with("JobId=")));
            if let Phase::Ended(ending) = row.state.phase() {
                assert_eq!(ending, Ending::Failed);
                assert_eq!(ending.exit_code(row.wait_status), 3);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{row:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
