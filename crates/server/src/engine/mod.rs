//! The engine drives `suanli-sched` on the wall clock: it admits jobs against quotas, turns the
//! scheduler's decisions into runs on the executor, turns run ends into finishes, restarts and
//! failures, and rebuilds everything from the store after a restart.
//!
//! The scheduler is in memory and knows each run as a dense `sched::JobId`; the store knows jobs
//! by their durable id. Every attempt of a job is one scheduler job, so a restart after a failure
//! is a fresh `submit`. The store is written before the executor acts (a run is recorded as
//! running before its processes start), so a crash in between is found and repaired by
//! `recover`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use suanli_sched::Scheduler;

use crate::devices::DeviceGroup;
use crate::executor::Executor;
use crate::store::{JobRecord, JobSpec, JobState, Store, StoreError};

pub mod admission;
mod batch;
pub mod clock;
pub mod control;
mod external;
pub mod forecast;
pub mod goal;
mod goal_job;
mod limits;
mod nodes;
mod pass;
pub mod progress;
mod recovery;
mod runs;
mod submit;
#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use external::{NodeSlot, local_pools};
pub use runs::describe_exit;

/// Seconds between SIGTERM and SIGKILL when a run is stopped.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What a request to the engine can fail with, by meaning; the API edge picks the HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request can never be met as it stands (a malformed spec, a job bigger than the
    /// cluster or its tenant's quota, a priority out of range, a second tenant on a server that
    /// cannot switch users).
    #[error("{0}")]
    Rejected(String),
    /// The job or pool named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The target exists but its state forbids the change (a job that has already ended).
    #[error("{0}")]
    WrongState(String),
    /// A tenant's cap on queued and running jobs is reached; it may succeed later.
    #[error("{0}")]
    TenantFull(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One accelerator type on this node, with the device indices not in use.
#[derive(Clone, Debug)]
pub struct PoolSlot {
    pub name: String,
    pub node: String,
    pub accelerator: String,
    pub total: u32,
    pub free: BTreeSet<u32>,
    /// False after an admin marked the node failed or drained; nothing is placed on it.
    pub up: bool,
    /// Which executor runs it: `local`, or a Slurm cluster's label.
    pub executor: String,
    /// The nodes of a multi-node pool (a Slurm cluster's), in device order: device `d` is on
    /// node `d / per_node`. Empty for a local pool (one node, `node`).
    pub nodes: Vec<NodeSlot>,
    pub per_node: u32,
    /// The scheduler's id of the pool's first node.
    pub first_node: u32,
}

/// The control loop's state; lives behind one async mutex.
pub struct Engine {
    store: Arc<dyn Store>,
    executor: Arc<dyn Executor>,
    scheduler: Scheduler,
    pub pools: Vec<PoolSlot>,
    runs_dir: PathBuf,
    /// Queued and running jobs, as last written to the store.
    active: BTreeMap<i64, JobRecord>,
    by_sched: HashMap<u32, i64>,
    sched_of: HashMap<i64, u32>,
    /// Jobs waiting for their tenant's quota, outside the scheduler.
    held: BTreeSet<i64>,
    /// Running jobs stopped for their time limit (they fail, and are not restarted).
    timed_out: BTreeSet<i64>,
    quotas: BTreeMap<(String, String), u32>,
    /// Free accelerators per pool at the last full refresh of queued jobs' reasons, and jobs
    /// queued since: reasons depend only on free capacity, so an unchanged cluster means only new
    /// jobs need one (keeps a pass O(new jobs) with a deep queue).
    reasons_free: Vec<usize>,
    reasons_fresh: Vec<i64>,
    /// Set during `recover`, which admits requeued jobs itself once adopted runs are placed.
    recovering: bool,
    /// Which OS user runs each tenant's jobs; `None` only in engines built without one.
    isolation: Option<Arc<crate::isolation::Isolation>>,
    /// Limits on what one tenant may queue (see `admission`).
    pub admission: admission::AdmissionLimits,
    /// On a server that cannot switch users: the one tenant whose jobs it runs.
    sole_tenant: Option<String>,
    pub metrics: crate::metrics::EngineMetrics,
    /// `http://HOST:PORT/api/v1/artifacts`: jobs get `SUANLI_CHECKPOINT_URL` under it (issue 17).
    pub checkpoint_base: Option<String>,
    /// Where the engine reads the time (the wall clock but in tests).
    clock: Arc<dyn Clock>,
    /// Set when the server shuts down: run ends are still recorded, nothing new is started.
    stopping: bool,
    /// While set, job writes wait in `deferred` for one transaction (see `batch`).
    deferring: bool,
    deferred: Vec<JobRecord>,
    /// Transactions that wrote engine job changes (one per write, or one per deferred batch).
    job_commits: u64,
    /// The scheduler's pools, for forecasts on a copy of it (`forecast`).
    pool_configs: Vec<suanli_sched::PoolConfig>,
    /// Models and accelerators goal jobs are planned with (the built-in catalog plus the
    /// server's `SUANLI_CATALOG` files).
    pub catalog: Arc<suanli_catalog::Catalog>,
    /// Where each running goal job writes its progress (`SUANLI_PROGRESS_FILE`).
    progress_files: HashMap<i64, PathBuf>,
}

/// Wall-clock seconds since the Unix epoch.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Engine {
    /// An engine over the local pools; call `recover` before serving.
    pub fn new(
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        devices: &[DeviceGroup],
        node: &str,
        policy: &str,
        data_dir: &std::path::Path,
    ) -> Result<Self, suanli_sched::SchedError> {
        let pools = local_pools(devices, node);
        Self::with_pools(store, executor, pools, policy, data_dir)
    }

    /// An engine over any pools (local and Slurm ones); call `recover` before serving.
    pub fn with_pools(
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        mut pools: Vec<PoolSlot>,
        policy: &str,
        data_dir: &std::path::Path,
    ) -> Result<Self, suanli_sched::SchedError> {
        let configs = external::number_nodes(&mut pools);
        let policy = suanli_sched::policy::by_name(policy)?;
        let scheduler =
            Scheduler::new(&configs, &[], policy, suanli_sched::SchedConfig::default())?;
        Ok(Engine {
            store,
            executor,
            scheduler,
            pools,
            runs_dir: data_dir.join("jobs"),
            active: BTreeMap::new(),
            by_sched: HashMap::new(),
            sched_of: HashMap::new(),
            held: BTreeSet::new(),
            timed_out: BTreeSet::new(),
            quotas: BTreeMap::new(),
            recovering: false,
            isolation: None,
            admission: admission::AdmissionLimits::default(),
            sole_tenant: None,
            reasons_free: Vec::new(),
            reasons_fresh: Vec::new(),
            metrics: Default::default(),
            checkpoint_base: None,
            clock: Arc::new(SystemClock),
            stopping: false,
            deferring: false,
            deferred: Vec::new(),
            job_commits: 0,
            pool_configs: configs,
            catalog: Arc::new(suanli_catalog::Catalog::builtin()),
            progress_files: HashMap::new(),
        })
    }

    /// Reads the time from `clock` from now on (tests move a `ManualClock` by hand).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// From now on, records run ends but starts nothing (the server is shutting down; the next
    /// server places the queued jobs after `recover`).
    pub fn stop_starting(&mut self) {
        self.stopping = true;
    }

    /// The engine's current time, seconds since the Unix epoch.
    fn now_s(&self) -> i64 {
        self.clock.now_s()
    }

    /// The scheduling policy's name.
    pub fn policy_name(&self) -> &'static str {
        self.scheduler.policy_name()
    }

    /// Queued and running jobs.
    pub fn active_jobs(&self) -> impl Iterator<Item = &JobRecord> {
        self.active.values()
    }

    /// The directory of one run of a job.
    pub fn run_dir(&self, job: i64, attempt: u32) -> PathBuf {
        self.runs_dir
            .join(job.to_string())
            .join(format!("attempt-{attempt}"))
    }

    /// Replaces the quota table (after a quota change) and re-admits held jobs.
    pub async fn reload_quotas(&mut self) -> Result<(), EngineError> {
        self.load_quotas().await?;
        self.schedule_pass().await
    }

    /// Reads the quota table from the store.
    async fn load_quotas(&mut self) -> Result<(), EngineError> {
        let quotas = self.store.list_quotas().await?;
        self.quotas = quotas
            .into_iter()
            .map(|q| ((q.tenant, q.accelerator), q.limit))
            .collect();
        Ok(())
    }

    /// Types of the local pools a job may run on.
    pub fn job_types(&self, spec: &JobSpec) -> Vec<String> {
        self.pools
            .iter()
            .filter(|p| {
                spec.run.accelerators.is_empty() || spec.run.accelerators.contains(&p.accelerator)
            })
            .map(|p| p.accelerator.clone())
            .collect()
    }
}
