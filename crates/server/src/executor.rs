//! Executors start, watch and stop a job's processes. `LocalExecutor` runs them on this machine;
//! `slurm::SlurmExecutor` runs them through Slurm (and a Kubernetes one would implement the same
//! trait).
//!
//! A local run lives in its own directory under the server's data directory: `log` (stdout and
//! stderr of every rank), `processes` (the declared gang size), and per rank `rankN.pid` and
//! `rankN.exit`, which the server opens and a small `sh` wrapper around the command fills in
//! through inherited descriptors. Because the exit code lands in a file rather than only in the
//! server's `wait`, a restarted server can re-attach to runs that outlived the previous server
//! process, or learn how they ended. The processes run as the job's unprivileged user (see
//! `isolation`) in their own working directory; they cannot open anything in the run directory.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
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
    /// Log, pid and exit files: in the server's data directory, out of the job's reach.
    pub run_dir: PathBuf,
    /// The job's working directory (and `HOME`), owned by the user it runs as.
    pub work_dir: PathBuf,
    /// The unprivileged user the processes run as; `None` runs them as the server's user.
    pub run_as: Option<crate::isolation::Identity>,
    /// The pool the run was placed in (routes it to that pool's executor).
    pub pool: String,
    /// The job's priority (a hint for executors whose engine schedules, e.g. Slurm).
    pub priority: i32,
    /// Jobs still queued after the pass that placed this run (a hint: the Slurm executor keeps
    /// warm spares while more starts are coming).
    pub queued_jobs: usize,
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
    /// The server died while starting the gang: fewer ranks started than the job declared. The
    /// ranks that did start have been killed; the run must be run again, not counted.
    Incomplete { started: u32, declared: u32 },
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

impl ExecError {
    /// Turns an I/O error on run directory `path` (or a file in it) into `RunDir`.
    pub fn run_dir(path: &Path) -> impl Fn(std::io::Error) -> ExecError + '_ {
        move |source| ExecError::RunDir {
            path: path.display().to_string(),
            source,
        }
    }
}

impl Launch {
    /// Creates the run's directory (every executor's first step).
    pub fn create_run_dir(&self) -> Result<(), ExecError> {
        std::fs::create_dir_all(&self.run_dir).map_err(ExecError::run_dir(&self.run_dir))
    }
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
    /// The server is stopping: gives back what the executor holds beyond runs (Slurm: its
    /// spares). Runs keep running.
    async fn shutdown(&self) {}
    /// No job is queued after a scheduling pass: gives back what the executor holds for starts
    /// to come (Slurm: its warm spares).
    fn nothing_queued(&self) {}
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

/// The wrapper: record the pid on fd 3, run the command without fds 3 and 4, record its exit
/// code on fd 4. The server opens both files (the job's user cannot reach the run directory),
/// and one short `write` makes the exit code appear whole.
const WRAPPER: &str = r#"echo $$ >&3; exec 3>&-; "$@" 4>&-; code=$?; echo $code >&4; exit $code"#;

/// The file naming how many ranks the run declares, written before the first rank starts.
fn declared_file(run_dir: &Path) -> PathBuf {
    run_dir.join("processes")
}

/// Variables a job inherits from the server; everything else (credentials, database URLs) is
/// left out.
const INHERITED_ENV: &[&str] = &["PATH", "LANG", "LC_ALL", "TZ"];

/// A gang's ranks share one log: each line gets `[rank N] ` in front (sed -u keeps it live). The
/// command's exit code comes back through fd 5 into `$(...)` so the prefixer does not hide it;
/// fd 6 keeps the log for sed while the substitution captures fd 1.
const GANG_WRAPPER: &str = r#"echo $$ >&3; exec 3>&- 6>&1; code=$( { { "$@" 4>&- 5>&- 6>&- 2>&1; echo $? >&5; } | sed -u "s/^/[rank $RANK] /" >&6; } 5>&1 ); exec 6>&-; echo $code >&4; exit $code"#;

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

/// The command of one rank: the wrapper under the job's user, in its working directory, with a
/// clean environment, its devices and rank variables, and the pid and exit files on fds 3 and 4.
fn rank_command(
    launch: &Launch,
    rank: u32,
    master_port: u16,
    pgid: i32,
    log: &std::fs::File,
) -> std::io::Result<tokio::process::Command> {
    let processes = launch.processes.max(1);
    let per_rank = (launch.devices.len() as u32 / processes).max(1) as usize;
    let devices: Vec<String> = launch
        .devices
        .iter()
        .skip(rank as usize * per_rank)
        .take(per_rank)
        .map(u32::to_string)
        .collect();
    let open = |path: PathBuf| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    };
    let pid_out = open(pid_file(&launch.run_dir, rank))?;
    let exit_out = open(exit_file(&launch.run_dir, rank))?;
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(if processes > 1 { GANG_WRAPPER } else { WRAPPER })
        .arg("suanli-job")
        .args(&launch.command)
        .env_clear()
        .envs(
            INHERITED_ENV
                .iter()
                .filter_map(|name| Some((name, std::env::var_os(name)?))),
        )
        .env("HOME", &launch.work_dir)
        .env("SUANLI_WORK_DIR", &launch.work_dir)
        .envs(&launch.env)
        .env("SUANLI_DEVICES", devices.join(","))
        .current_dir(&launch.work_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(pgid);
    if let Some(user) = &launch.run_as {
        // std drops supplementary groups, then sets the gid, then the uid, in the child.
        command
            .uid(user.uid)
            .gid(user.gid)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
    }
    if let Some(variable) = crate::devices::visible_devices_variable(&launch.accelerator) {
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
    let (pid_fd, exit_fd) = (pid_out.as_raw_fd(), exit_out.as_raw_fd());
    // SAFETY: the closure only calls async-signal-safe functions (fcntl, dup2, close) on file
    // descriptors that stay open until `spawn` returns (the files live in the closure).
    unsafe {
        command.pre_exec(move || {
            let _keep = (&pid_out, &exit_out);
            // Copies above 9 first, so moving them to 3 and 4 cannot clobber each other.
            let high_pid = libc::fcntl(pid_fd, libc::F_DUPFD, 10);
            let high_exit = libc::fcntl(exit_fd, libc::F_DUPFD, 10);
            if high_pid < 0
                || high_exit < 0
                || libc::dup2(high_pid, 3) < 0
                || libc::dup2(high_exit, 4) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(high_pid);
            libc::close(high_exit);
            Ok(())
        });
    }
    Ok(command)
}

/// Fault injection for the crash tests: `SUANLI_FAULT_KILL_AFTER_RANK=N` makes the server kill
/// itself (SIGKILL) right after starting rank N of a gang, as a crash would.
fn fault_point(rank: u32) {
    if std::env::var("SUANLI_FAULT_KILL_AFTER_RANK").is_ok_and(|r| r == rank.to_string()) {
        // SAFETY: raising SIGKILL on ourselves.
        unsafe { libc::raise(libc::SIGKILL) };
    }
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
        let dir_error = ExecError::run_dir(run_dir);
        launch.create_run_dir()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run_dir.join("log"))
            .map_err(&dir_error)?;
        let processes = launch.processes.max(1);
        // Declared before any rank starts, so recovery can tell a gang cut short by a crash.
        std::fs::write(declared_file(run_dir), processes.to_string()).map_err(&dir_error)?;
        let master_port = free_port();
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let mut pgid = 0;
        for rank in 0..processes {
            let spawned = rank_command(launch, rank, master_port, pgid, &log)
                .map_err(&dir_error)
                .and_then(|mut command| {
                    command.spawn().map_err(|source| ExecError::Spawn {
                        program: launch.command.first().cloned().unwrap_or_default(),
                        source,
                    })
                });
            let mut child = match spawned {
                Ok(child) => child,
                Err(error) => {
                    if pgid != 0 {
                        // SAFETY: killpg on the ranks already started for this run.
                        unsafe { libc::killpg(pgid, libc::SIGKILL) };
                    }
                    return Err(error);
                }
            };
            if rank == 0 {
                pgid = child.id().map_or(0, |id| id as i32);
                std::fs::write(run_dir.join("pgid"), pgid.to_string()).map_err(&dir_error)?;
            }
            fault_point(rank);
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
        let pgid = read_number(&run_dir.join("pgid")).unwrap_or(0) as i32;
        // Runs of servers before the declared count existed: trust the files found.
        let declared =
            read_number(&declared_file(run_dir)).map_or(ranks.len() as u32, |n| n as u32);
        if ranks.is_empty() {
            if pgid > 1 {
                // SAFETY: killpg on the run's own process group (started, pid not yet written).
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
            }
            return Adopted::NeverStarted;
        }
        if (ranks.len() as u32) < declared {
            // Part of the gang never started: whatever did start must not run on alone.
            if pgid > 1 {
                // SAFETY: killpg on the run's own process group.
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
            }
            return Adopted::Incomplete {
                started: ranks.len() as u32,
                declared,
            };
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
