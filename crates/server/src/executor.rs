//! Executors start, watch and stop a job's processes. `LocalExecutor` runs them on this machine;
//! Slurm and Kubernetes executors will implement the same trait.
//!
//! A local run lives in its own directory: `log` (stdout and stderr of every rank), and per rank
//! `rankN.pid` and `rankN.exit`, written by a small `sh` wrapper around the command. Because the
//! exit code lands in a file rather than only in the server's `wait`, a restarted server can
//! re-attach to runs that outlived the previous server process, or learn how they ended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::sync::mpsc;

/// Everything needed to start one run of a job.
#[derive(Clone, Debug)]
pub struct Launch {
    pub job_id: i64,
    pub attempt: u32,
    pub command: Vec<String>,
    /// The job's environment plus the `SUANLI_*` variables the server adds.
    pub env: BTreeMap<String, String>,
    pub accelerator: String,
    /// Device indices on the node, split evenly across processes.
    pub devices: Vec<u32>,
    pub processes: u32,
    pub run_dir: PathBuf,
}

/// A run ended: every rank exited, or one failed and the rest were killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitEvent {
    pub job_id: i64,
    pub attempt: u32,
    /// 0 on success, else the first failing rank's code (128 + signal when killed).
    pub exit_code: i32,
}

/// What re-attaching to a run found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adopted {
    /// Processes are alive and watched; their end will be reported as an `ExitEvent`.
    Alive,
    /// Every process had ended; this is how.
    Exited(i32),
    /// No process was ever started (the server died before spawning).
    NeverStarted,
}

/// What an executor can fail at.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("run directory {path}: {source}")]
    RunDir {
        path: String,
        source: std::io::Error,
    },
}

/// Starts, re-attaches to and stops runs; reports each run's end once on its event channel.
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// The executor's name (`local`, later `slurm`, `kubernetes`).
    fn name(&self) -> &'static str;
    /// Starts a run.
    async fn start(&self, launch: &Launch) -> Result<(), ExecError>;
    /// Re-attaches to a run started by an earlier server process.
    async fn adopt(&self, job_id: i64, attempt: u32, run_dir: &Path) -> Adopted;
    /// Stops a run: SIGTERM to its processes, SIGKILL after `grace`.
    async fn stop(&self, run_dir: &Path, grace: Duration);
}

/// Runs processes on this machine, each run in its own process group.
#[derive(Debug)]
pub struct LocalExecutor {
    events: mpsc::UnboundedSender<ExitEvent>,
}

impl LocalExecutor {
    /// An executor reporting run ends on `events`.
    pub fn new(events: mpsc::UnboundedSender<ExitEvent>) -> Self {
        LocalExecutor { events }
    }
}

/// The wrapper: record the pid, run the command, record its exit code atomically.
const WRAPPER: &str = r#"echo $$ > "$SUANLI_PID_FILE"; "$@"; code=$?; echo $code > "$SUANLI_EXIT_FILE.tmp"; mv "$SUANLI_EXIT_FILE.tmp" "$SUANLI_EXIT_FILE"; exit $code"#;

/// A gang's ranks share one log: each line gets `[rank N] ` in front (sed -u keeps it live), and
/// the exit code is taken inside the pipe so the prefixer does not hide it.
const GANG_WRAPPER: &str = r#"echo $$ > "$SUANLI_PID_FILE"; { "$@" 2>&1; echo $? > "$SUANLI_EXIT_FILE.tmp"; } | sed -u "s/^/[rank $RANK] /"; code=$(cat "$SUANLI_EXIT_FILE.tmp" 2>/dev/null || echo 1); mv "$SUANLI_EXIT_FILE.tmp" "$SUANLI_EXIT_FILE"; exit $code"#;

fn pid_file(run_dir: &Path, rank: u32) -> PathBuf {
    run_dir.join(format!("rank{rank}.pid"))
}

fn exit_file(run_dir: &Path, rank: u32) -> PathBuf {
    run_dir.join(format!("rank{rank}.exit"))
}

fn read_number(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Alive and not a zombie.
fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => true,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(29500)
}

/// Collects rank results; on the first failure kills the group; reports the run's end once.
fn watch_run(
    events: mpsc::UnboundedSender<ExitEvent>,
    job_id: i64,
    attempt: u32,
    pgid: i32,
    mut results: mpsc::UnboundedReceiver<i32>,
    ranks: usize,
) {
    tokio::spawn(async move {
        let mut first_failure = None;
        for _ in 0..ranks {
            let Some(code) = results.recv().await else {
                break;
            };
            if code != 0 && first_failure.is_none() {
                first_failure = Some(code);
                // SAFETY: killpg on the run's own process group.
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
            }
        }
        let _ = events.send(ExitEvent {
            job_id,
            attempt,
            exit_code: first_failure.unwrap_or(0),
        });
    });
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn start(&self, launch: &Launch) -> Result<(), ExecError> {
        let run_dir = &launch.run_dir;
        let dir_error = |source| ExecError::RunDir {
            path: run_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(run_dir).map_err(dir_error)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run_dir.join("log"))
            .map_err(dir_error)?;
        let processes = launch.processes.max(1);
        let per_rank = (launch.devices.len() as u32 / processes).max(1) as usize;
        let variable = crate::devices::visible_devices_variable(&launch.accelerator);
        let master_port = free_port();
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let mut pgid = 0;
        for rank in 0..processes {
            let devices: Vec<String> = launch
                .devices
                .iter()
                .skip(rank as usize * per_rank)
                .take(per_rank)
                .map(u32::to_string)
                .collect();
            let mut command = tokio::process::Command::new("sh");
            command
                .arg("-c")
                .arg(if processes > 1 { GANG_WRAPPER } else { WRAPPER })
                .arg("suanli-job")
                .args(&launch.command)
                .envs(&launch.env)
                .env("SUANLI_PID_FILE", pid_file(run_dir, rank))
                .env("SUANLI_EXIT_FILE", exit_file(run_dir, rank))
                .env("SUANLI_DEVICES", devices.join(","))
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(dir_error)?)
                .stderr(log.try_clone().map_err(dir_error)?)
                .process_group(pgid);
            if let Some(variable) = variable {
                command.env(variable, devices.join(","));
            }
            // Every run gets the torch.distributed `env://` variables, a single process too
            // (rank 0 of 1), so `torchrun`-style start-up code works unchanged.
            command
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", processes.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", master_port.to_string());
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(source) => {
                    if pgid != 0 {
                        // SAFETY: killpg on the ranks already started for this run.
                        unsafe { libc::killpg(pgid, libc::SIGKILL) };
                    }
                    return Err(ExecError::Spawn {
                        program: launch.command.first().cloned().unwrap_or_default(),
                        source,
                    });
                }
            };
            if rank == 0 {
                pgid = child.id().map_or(0, |id| id as i32);
                std::fs::write(run_dir.join("pgid"), pgid.to_string()).map_err(dir_error)?;
            }
            let exit_path = exit_file(run_dir, rank);
            let results = results_tx.clone();
            tokio::spawn(async move {
                let status = child.wait().await;
                let code = read_number(&exit_path)
                    .map(|c| c as i32)
                    .unwrap_or_else(|| {
                        use std::os::unix::process::ExitStatusExt;
                        match status {
                            Ok(status) => status
                                .code()
                                .unwrap_or_else(|| 128 + status.signal().unwrap_or(9)),
                            Err(_) => 137,
                        }
                    });
                let _ = results.send(code);
            });
        }
        watch_run(
            self.events.clone(),
            launch.job_id,
            launch.attempt,
            pgid,
            results_rx,
            processes as usize,
        );
        Ok(())
    }

    async fn adopt(&self, job_id: i64, attempt: u32, run_dir: &Path) -> Adopted {
        let mut ranks = Vec::new();
        for rank in 0.. {
            let pid = read_number(&pid_file(run_dir, rank));
            let exit = read_number(&exit_file(run_dir, rank));
            if pid.is_none() && exit.is_none() {
                break;
            }
            ranks.push((rank, pid.unwrap_or(0) as i32, exit.map(|c| c as i32)));
        }
        if ranks.is_empty() {
            return Adopted::NeverStarted;
        }
        let alive = ranks
            .iter()
            .any(|&(_, pid, exit)| exit.is_none() && pid_alive(pid));
        if !alive {
            let code = ranks
                .iter()
                // A rank that died without writing its exit file was killed.
                .map(|&(_, _, exit)| exit.unwrap_or(137))
                .find(|&code| code != 0)
                .unwrap_or(0);
            return Adopted::Exited(code);
        }
        let pgid = read_number(&run_dir.join("pgid")).unwrap_or(0) as i32;
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        for &(rank, pid, _) in &ranks {
            let results = results_tx.clone();
            let exit_path = exit_file(run_dir, rank);
            tokio::spawn(async move {
                // Not our child: poll until it is gone, then read how it ended.
                while pid_alive(pid) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let _ = results.send(read_number(&exit_path).map_or(137, |c| c as i32));
            });
        }
        watch_run(
            self.events.clone(),
            job_id,
            attempt,
            pgid,
            results_rx,
            ranks.len(),
        );
        Adopted::Alive
    }

    async fn stop(&self, run_dir: &Path, grace: Duration) {
        let Some(pgid) = read_number(&run_dir.join("pgid")).map(|p| p as i32) else {
            return;
        };
        if pgid <= 1 {
            return;
        }
        // SAFETY: signals to the run's own process group.
        unsafe { libc::killpg(pgid, libc::SIGTERM) };
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // SAFETY: as above; harmless if the group is already gone.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        });
    }
}
