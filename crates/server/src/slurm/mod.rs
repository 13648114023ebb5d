//! The Slurm executor: runs each job's gang as one Slurm batch job through `sbatch`/`srun`,
//! follows it with `squeue`, stops it with `scancel`, and reads pools and node health from
//! `sinfo`. See docs/slurm.md for why the command-line tools rather than slurmrestd.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

pub mod nodes;
pub mod parse;
mod poll;
mod run;
pub mod script;
mod session;
mod spares;
mod submit;

pub use nodes::{Health, SlurmNode, SlurmPool};

/// Who decides where and when a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// suanli's policy chooses the time and the nodes (`--nodelist`); Slurm executes.
    #[default]
    Suanli,
    /// suanli admits (quota, capacity) and submits with hints (`--qos`, `--nice`); Slurm picks
    /// nodes and order, and suanli reports what it decided.
    Slurm,
}

/// A scheduling mode that is neither `suanli` nor `slurm`.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a scheduling mode; use `suanli` (suanli picks nodes) or `slurm` (Slurm does)"
)]
pub struct UnknownMode(pub String);

impl std::str::FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(text: &str) -> Result<Mode, UnknownMode> {
        match text {
            "suanli" => Ok(Mode::Suanli),
            "slurm" => Ok(Mode::Slurm),
            other => Err(UnknownMode(other.into())),
        }
    }
}

/// One Slurm cluster.
#[derive(Clone, Debug)]
pub struct SlurmConfig {
    /// Name of the cluster in suanli (pool names start with it): `slurm`, `site-b`.
    pub label: String,
    /// `slurm.conf` of the cluster (`SLURM_CONF` for the commands); `None` uses Slurm's default.
    pub slurm_conf: Option<PathBuf>,
    /// Where `sbatch`, `squeue`, `scancel` and `sinfo` are (e.g. `/opt/slurm/bin`); `None`
    /// finds them on `PATH`.
    pub bin_dir: Option<PathBuf>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub mode: Mode,
    /// `--time` of every run, minutes.
    pub time_limit_min: u32,
    /// How often `squeue` and `sinfo` are read.
    pub poll_interval: Duration,
    /// How often the exit files of running runs are looked at (a `stat` per run): a run ends
    /// as soon as its batch script has recorded its exit code, without waiting for `squeue`.
    pub exit_check_interval: Duration,
    /// `sbatch` processes run at once (submissions run off the engine's lock).
    pub max_parallel_submits: usize,
    /// Spares kept per allocation shape (Slurm jobs submitted ahead of placement and released
    /// on it, see `spares`); 0 submits every run with its own `sbatch` at placement.
    pub spares: usize,
    /// Warm spares kept per node set and allocation shape while jobs are queued (spares
    /// released onto the nodes of a run before the next run is placed there, see
    /// `spares/warm.rs`); 0 turns them off.
    pub warm_spares: usize,
}

impl SlurmConfig {
    /// A cluster with the defaults: suanli schedules, one day per run, polled every second.
    pub fn new(label: &str) -> SlurmConfig {
        SlurmConfig {
            label: label.to_string(),
            slurm_conf: None,
            bin_dir: None,
            partition: None,
            account: None,
            qos: None,
            mode: Mode::Suanli,
            time_limit_min: 24 * 60,
            poll_interval: Duration::from_secs(1),
            exit_check_interval: Duration::from_millis(50),
            max_parallel_submits: 8,
            spares: 32,
            warm_spares: 2,
        }
    }
}

/// What the Slurm executor tells the engine.
#[derive(Clone, Debug, PartialEq)]
pub enum SlurmEvent {
    /// Slurm's view of a run changed (pending reason, nodes it chose).
    Note {
        job_id: i64,
        attempt: u32,
        text: String,
        nodes: Option<String>,
    },
    /// A run ended, with Slurm's account of how.
    Ended {
        job_id: i64,
        attempt: u32,
        exit_code: i32,
        note: String,
    },
    /// A node's health changed.
    Node {
        pool: String,
        node: usize,
        health: Health,
        state: String,
        reason: String,
    },
}

/// What talking to Slurm can fail at.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("cannot run `{program}`: {source}; is Slurm installed and on PATH?")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{program}` failed: {stderr}")]
    Failed { program: String, stderr: String },
    #[error("`{program}` did not answer within {seconds} s")]
    TimedOut { program: String, seconds: u64 },
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error("cluster `{0}` offers no GPUs (no `gpu` GRES in sinfo)")]
    NoGpus(String),
    #[error("cannot prepare {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
}

/// One run Slurm is executing for suanli.
#[derive(Clone, Debug)]
struct Tracked {
    job_id: i64,
    attempt: u32,
    run_dir: PathBuf,
    /// Last note sent, to send only changes.
    last_note: String,
    /// What the previous poll saw: a note goes out once two polls in a row agree, so a run
    /// that starts and ends between polls costs the engine no write.
    seen: String,
    /// Consecutive polls that did not list the job.
    missing: u32,
}

/// Runs in Slurm this executor follows, by Slurm job id (`12`, or `12_3` for a task of a job
/// array: a run released from a spare, see `spares`).
type TrackedRuns = Arc<Mutex<HashMap<String, Tracked>>>;

impl Tracked {
    fn new(job_id: i64, attempt: u32, run_dir: &Path) -> Tracked {
        Tracked {
            job_id,
            attempt,
            run_dir: run_dir.to_path_buf(),
            last_note: String::new(),
            seen: String::new(),
            missing: 0,
        }
    }
}

/// A Slurm cluster behind the `Executor` trait.
pub struct SlurmExecutor {
    config: SlurmConfig,
    /// suanli pool name -> the Slurm pool.
    pools: Vec<(String, SlurmPool)>,
    /// Distinguishes this server's jobs from other users' and other servers' (job names).
    tag: String,
    tracked: TrackedRuns,
    /// Runs whose `sbatch` is queued or under way.
    pending: submit::Pending,
    /// Slurm jobs submitted ahead of placement.
    spares: Arc<spares::Spares>,
    submissions: mpsc::UnboundedSender<submit::Submission>,
    events: mpsc::UnboundedSender<SlurmEvent>,
    /// The poller's own long-lived `scontrol -o` (`show job <id>` per tracked run).
    queries: session::Session,
}

/// Slurm commands answer within this, or count as failed (slurmctld down or restarting).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a Slurm command with a clean environment (only `PATH` and `SLURM_CONF`).
async fn command(
    config: &SlurmConfig,
    program: &str,
    args: &[String],
) -> Result<String, SlurmError> {
    let mut command = match &config.bin_dir {
        Some(dir) => tokio::process::Command::new(dir.join(program)),
        None => tokio::process::Command::new(program),
    };
    command
        .args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(conf) = &config.slurm_conf {
        command.env("SLURM_CONF", conf);
    }
    let output = tokio::time::timeout(COMMAND_TIMEOUT, command.output())
        .await
        .map_err(|_| SlurmError::TimedOut {
            program: program.into(),
            seconds: COMMAND_TIMEOUT.as_secs(),
        })?
        .map_err(|source| SlurmError::Spawn {
            program: program.into(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(SlurmError::Failed {
            program: program.into(),
            stderr: stderr.trim().chars().take(500).collect(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Reads the cluster's nodes (`sinfo -N`).
pub async fn read_nodes(config: &SlurmConfig) -> Result<Vec<SlurmNode>, SlurmError> {
    let args = ["-h", "-N", "-O", parse::SINFO_FORMAT].map(String::from);
    Ok(nodes::parse_sinfo(&command(config, "sinfo", &args).await?)?)
}

impl SlurmExecutor {
    /// Connects to a cluster: reads its nodes into pools and starts following its jobs.
    /// `data_dir` makes job names unique to this server.
    pub async fn connect(
        config: SlurmConfig,
        data_dir: &Path,
        events: mpsc::UnboundedSender<SlurmEvent>,
    ) -> Result<(Arc<SlurmExecutor>, Vec<SlurmNode>), SlurmError> {
        let nodes = read_nodes(&config).await?;
        let pools: Vec<(String, SlurmPool)> = nodes::pools(&nodes, config.partition.as_deref())
            .into_iter()
            .map(|pool| (format!("{}-{}", config.label, pool.gres_type), pool))
            .collect();
        if pools.is_empty() {
            return Err(SlurmError::NoGpus(config.label.clone()));
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(data_dir.display().to_string().as_bytes());
        let tag = hex::encode(&digest[..4]);
        let tracked = Arc::new(Mutex::new(HashMap::new()));
        let pending = submit::Pending::default();
        let spares_dir = data_dir.join("slurm-spares").join(&config.label);
        let spares = spares::Spares::new(
            config.clone(),
            spares_dir.clone(),
            format!("suanli-{tag}-spare"),
        )
        .map_err(|source| SlurmError::Dir {
            path: spares_dir.display().to_string(),
            source,
        })?;
        let spares = Arc::new(spares);
        spares.cancel_all().await;
        let (submissions, queue) = mpsc::unbounded_channel();
        let submitter = submit::Submitter {
            config: config.clone(),
            tracked: tracked.clone(),
            pending: pending.clone(),
            spares: spares.clone(),
            events: events.clone(),
        };
        submit::spawn(submitter, queue);
        let executor = Arc::new(SlurmExecutor {
            config: config.clone(),
            pools,
            tag,
            tracked,
            pending,
            spares,
            submissions,
            events,
            queries: session::Session::for_queries(config.clone()),
        });
        poll::spawn(executor.clone(), &nodes);
        Ok((executor, nodes))
    }

    /// The cluster's pools: suanli name and Slurm pool.
    pub fn pools(&self) -> &[(String, SlurmPool)] {
        &self.pools
    }

    /// The cluster's label.
    pub fn label(&self) -> &str {
        &self.config.label
    }

    /// The Slurm job name of one run.
    fn job_name(&self, job_id: i64, attempt: u32) -> String {
        format!("suanli-{}-{job_id}-a{attempt}", self.tag)
    }
}

#[cfg(test)]
mod tests;
