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
use std::time::{Duration, Instant};

use suanli_sched::{Decision, JobId, Scheduler, Work};

use crate::devices::DeviceGroup;
use crate::executor::{Executor, ExitEvent, Launch};
use crate::store::{
    Change, Changed, JobRecord, JobSpec, JobState, NewAuditEvent, RunRecord, Store, StoreError,
};

pub mod admission;
mod external;
mod limits;
mod nodes;
mod recovery;

pub use external::{NodeSlot, local_pools, node_rows};

/// Seconds between SIGTERM and SIGKILL when a run is stopped.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What a request to the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A tenant's cap on queued jobs is reached.
    #[error("{0}")]
    TooMany(String),
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

/// Counters for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub scheduling_passes: u64,
    pub scheduling_seconds_sum: f64,
    pub last_pass_seconds: f64,
    pub jobs_submitted: u64,
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
    pub metrics: Metrics,
    /// `http://HOST:PORT/api/v1/artifacts`: jobs get `SUANLI_CHECKPOINT_URL` under it (issue 17).
    pub checkpoint_base: Option<String>,
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
    ) -> Result<Self, String> {
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
    ) -> Result<Self, String> {
        let configs = external::number_nodes(&mut pools);
        let policy = suanli_sched::policy::by_name(policy).map_err(|e| e.to_string())?;
        let scheduler = Scheduler::new(&configs, &[], policy, suanli_sched::SchedConfig::default())
            .map_err(|e| e.to_string())?;
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
            metrics: Metrics::default(),
            checkpoint_base: None,
        })
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
        self.quotas = self
            .store
            .list_quotas()
            .await?
            .into_iter()
            .map(|q| ((q.tenant, q.accelerator), q.limit))
            .collect();
        self.schedule_pass().await
    }

    /// Types of the local pools a job may run on.
    pub fn job_types(&self, spec: &JobSpec) -> Vec<String> {
        self.pools
            .iter()
            .filter(|p| spec.accelerators.is_empty() || spec.accelerators.contains(&p.accelerator))
            .map(|p| p.accelerator.clone())
            .collect()
    }

    /// Checks a spec can ever run here; the message says what would be right.
    fn validate(&self, spec: &JobSpec) -> Result<(), EngineError> {
        if spec.command.is_empty() {
            return Err(EngineError::BadRequest("the command is empty".into()));
        }
        if spec.gpus == 0 || spec.processes == 0 || !spec.gpus.is_multiple_of(spec.processes) {
            return Err(EngineError::BadRequest(format!(
                "gpus ({}) must be at least 1 and a multiple of processes ({})",
                spec.gpus, spec.processes
            )));
        }
        let offered: Vec<String> = self
            .pools
            .iter()
            .map(|p| format!("{}:{}", p.accelerator, p.total))
            .collect();
        let fits = self.pools.iter().any(|p| {
            (spec.accelerators.is_empty() || spec.accelerators.contains(&p.accelerator))
                && p.total >= spec.gpus
        });
        if !fits {
            return Err(EngineError::BadRequest(format!(
                "job can never run: it needs {} accelerators of {}; this cluster has {}",
                spec.gpus,
                if spec.accelerators.is_empty() {
                    "any type".to_string()
                } else {
                    spec.accelerators.join(" or ")
                },
                offered.join(", ")
            )));
        }
        // A job bigger than its tenant's quota would be held forever: refuse it now.
        for accelerator in self.job_types(spec) {
            let key = (spec.tenant.clone(), accelerator.clone());
            if let Some(&limit) = self.quotas.get(&key).filter(|&&limit| limit < spec.gpus) {
                return Err(EngineError::BadRequest(format!(
                    "job can never run: it needs {} {accelerator} and tenant `{}` may hold at most {limit}; ask an admin to raise the quota (suanli quota set) or ask for fewer",
                    spec.gpus, spec.tenant
                )));
            }
        }
        Ok(())
    }

    /// Accepts a job: stores it with the request's audit entry `audit` (one transaction), admits
    /// it and runs a scheduling pass.
    pub async fn submit(
        &mut self,
        spec: JobSpec,
        audit: &NewAuditEvent,
    ) -> Result<JobRecord, EngineError> {
        self.validate(&spec)?;
        self.admission_problem(&spec).await?;
        let change = Change::InsertJob {
            spec: &spec,
            now_s: now_s(),
        };
        let record = match self.store.change_audited(change, audit).await? {
            (Changed::Job(record), _) => *record,
            (other, _) => unreachable!("inserting a job returned {other:?}"),
        };
        let id = record.id;
        self.metrics.jobs_submitted += 1;
        self.active.insert(id, record);
        self.admit_or_hold(id).await?;
        self.schedule_pass().await?;
        match self.active.get(&id) {
            Some(job) => Ok(job.clone()),
            // Already ended within this pass (a start failure).
            None => self
                .store
                .get_job(id)
                .await?
                .ok_or_else(|| EngineError::NotFound(format!("job {id}"))),
        }
    }

    /// Accelerators of `accelerator` that `tenant`'s admitted jobs ask for.
    pub fn admitted_usage(&self, tenant: &str, accelerator: &str) -> u32 {
        self.sched_of
            .keys()
            .filter_map(|id| self.active.get(id))
            .filter(|job| job.spec.tenant == tenant)
            .filter(|job| self.job_types(&job.spec).iter().any(|t| t == accelerator))
            .map(|job| job.spec.gpus)
            .sum()
    }

    /// Why the tenant's quota keeps a job out, if it does.
    fn quota_problem(&self, spec: &JobSpec) -> Option<String> {
        for accelerator in self.job_types(spec) {
            let key = (spec.tenant.clone(), accelerator.clone());
            if let Some(&limit) = self.quotas.get(&key) {
                let used = self.admitted_usage(&spec.tenant, &accelerator);
                if used + spec.gpus > limit {
                    return Some(format!(
                        "quota: tenant `{}` has {used} of its {limit} {accelerator} in admitted jobs; this job needs {}",
                        spec.tenant, spec.gpus
                    ));
                }
            }
        }
        None
    }

    /// Submits a job to the scheduler, or holds it for quota.
    async fn admit_or_hold(&mut self, id: i64) -> Result<(), EngineError> {
        let Some(job) = self.active.get(&id) else {
            return Ok(());
        };
        if let Some(problem) = self.quota_problem(&job.spec) {
            self.held.insert(id);
            return self.set_reason(id, problem).await;
        }
        self.held.remove(&id);
        self.reasons_fresh.push(id);
        let types = self.job_types(&job.spec);
        self.submit_to_scheduler(id, &types)
    }

    fn submit_to_scheduler(&mut self, id: i64, types: &[String]) -> Result<(), EngineError> {
        let job = &self.active[&id];
        let goal_rates: std::collections::BTreeMap<String, f64> = job
            .spec
            .goal
            .as_ref()
            .map(|g| {
                g.tokens_per_s
                    .iter()
                    .filter(|(t, _)| types.contains(t))
                    .map(|(t, r)| (t.clone(), *r))
                    .collect()
            })
            .unwrap_or_default();
        let (work, estimate_s) = match &job.spec.goal {
            // A goal's length is known from the performance model.
            Some(goal) if !goal_rates.is_empty() => {
                let work = Work {
                    total_units: goal.tokens,
                    units_per_s: goal_rates,
                };
                let estimate_s = work.ideal_runtime_s().ceil() as u64;
                (work, Some(estimate_s))
            }
            // A command's length is unknown: a long nominal run at rate 1 on every allowed type.
            _ => (
                Work {
                    total_units: 1e12,
                    units_per_s: types.iter().map(|t| (t.clone(), 1.0)).collect(),
                },
                None,
            ),
        };
        let spec = suanli_sched::JobSpec {
            name: format!("job-{id}"),
            gang_size: job.spec.gpus,
            tenant: job.spec.tenant.clone(),
            // A job's priority orders its own tenant's jobs only (`priority_swap`); across
            // tenants the policy (submission order, fair share) decides, so no tenant can jump
            // the others.
            priority: 0,
            work: work.clone(),
            runtime_estimate_s: estimate_s,
            checkpoint_interval_s: None,
            checkpoint_cost_s: 0,
        };
        let sched_id = self
            .scheduler
            .submit(spec, now_s() as u64)
            .map_err(|e| EngineError::BadRequest(e.to_string()))?;
        self.by_sched.insert(sched_id.0, id);
        self.sched_of.insert(id, sched_id.0);
        Ok(())
    }

    async fn set_reason(&mut self, id: i64, reason: String) -> Result<(), EngineError> {
        if let Some(job) = self.active.get_mut(&id)
            && job.reason != reason
        {
            job.reason = reason;
            let job = job.clone();
            self.store.update_job(&job).await?;
        }
        Ok(())
    }

    /// Writes a job and drops it from the active set once terminal.
    async fn save(&mut self, job: JobRecord) -> Result<(), EngineError> {
        self.save_audited(job, None).await
    }

    /// `save`, appending `audit` in the same transaction when given.
    async fn save_audited(
        &mut self,
        job: JobRecord,
        audit: Option<&NewAuditEvent>,
    ) -> Result<(), EngineError> {
        match audit {
            Some(audit) => {
                self.store
                    .change_audited(Change::UpdateJob(&job), audit)
                    .await?;
            }
            None => self.store.update_job(&job).await?,
        }
        if job.state.is_terminal() {
            self.active.remove(&job.id);
            self.held.remove(&job.id);
        } else {
            self.active.insert(job.id, job);
        }
        Ok(())
    }

    /// Runs the scheduler and carries out its decisions, then re-admits held jobs and refreshes
    /// the reasons queued jobs wait.
    pub async fn schedule_pass(&mut self) -> Result<(), EngineError> {
        for _ in 0..16 {
            let started = Instant::now();
            let decisions = self.scheduler.schedule(now_s() as u64);
            let elapsed = started.elapsed().as_secs_f64();
            self.metrics.scheduling_passes += 1;
            self.metrics.scheduling_seconds_sum += elapsed;
            self.metrics.last_pass_seconds = elapsed;
            let mut again = false;
            for decision in decisions {
                match decision {
                    Decision::Start {
                        job,
                        pool,
                        allocation,
                        ..
                    } => {
                        let Some(&id) = self.by_sched.get(&job.0) else {
                            continue;
                        };
                        let id = self.priority_swap(id);
                        self.start_run(id, pool.0 as usize, &allocation).await?;
                    }
                    Decision::Preempt { job, reason } => {
                        if let Some(&id) = self.by_sched.get(&job.0) {
                            self.preempt_run(id, format!("{reason:?}")).await?;
                        }
                    }
                }
            }
            // Held jobs whose quota now allows them.
            let held: Vec<i64> = self.held.iter().copied().collect();
            for id in held {
                let problem = self
                    .active
                    .get(&id)
                    .and_then(|j| self.quota_problem(&j.spec));
                if problem.is_none() {
                    self.admit_or_hold(id).await?;
                    again = true;
                }
            }
            if !again {
                break;
            }
        }
        self.refresh_reasons().await
    }

    async fn refresh_reasons(&mut self) -> Result<(), EngineError> {
        let free: Vec<usize> = self
            .pools
            .iter()
            .map(|p| if p.up { p.free.len() } else { 0 })
            .collect();
        let fresh = std::mem::take(&mut self.reasons_fresh);
        let candidates: Vec<i64> = if free != self.reasons_free {
            self.reasons_free = free;
            self.active.keys().copied().collect()
        } else {
            fresh
        };
        let queued: Vec<i64> = candidates
            .into_iter()
            .filter(|id| {
                self.sched_of.contains_key(id)
                    && self
                        .active
                        .get(id)
                        .is_some_and(|j| j.state == JobState::Queued)
            })
            .collect();
        for id in &queued {
            let job = &self.active[id];
            let types = self.job_types(&job.spec);
            let free = self
                .pools
                .iter()
                .filter(|p| types.contains(&p.accelerator))
                .map(|p| if p.up { p.free.len() as u32 } else { 0 })
                .max()
                .unwrap_or(0);
            let reason = if free >= job.spec.gpus {
                format!(
                    "priority: waiting behind earlier or higher-priority jobs ({} policy)",
                    self.scheduler.policy_name()
                )
            } else {
                format!(
                    "capacity: needs {} of {}; {free} free",
                    job.spec.gpus,
                    types.join(" or ")
                )
            };
            self.set_reason(*id, reason).await?;
        }
        Ok(())
    }

    async fn start_run(
        &mut self,
        id: i64,
        pool: usize,
        allocation: &[(suanli_sched::NodeId, u32)],
    ) -> Result<(), EngineError> {
        let slot = &mut self.pools[pool];
        let devices = external::pick_devices(slot, allocation);
        for device in &devices {
            slot.free.remove(device);
        }
        let (accelerator, pool_name, node) = (
            slot.accelerator.clone(),
            slot.name.clone(),
            external::node_names(slot, &devices),
        );
        let Some(mut job) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        let attempt = job.attempts;
        let run_dir = self.run_dir(id, attempt);
        let now = now_s();
        job.state = JobState::Running;
        job.reason = format!("running on {node} {accelerator} [{}]", join(&devices));
        job.attempts += 1;
        job.started_at_s.get_or_insert(now);
        job.run = Some(RunRecord {
            attempt,
            pool: pool_name,
            accelerator: accelerator.clone(),
            node,
            devices: devices.clone(),
            run_dir: run_dir.display().to_string(),
            started_at_s: now,
            cancel_requested: false,
        });
        // Recorded before the processes start, so a crash in between is seen by `recover`.
        self.save(job.clone()).await?;
        let mut env = job.spec.env.clone();
        env.insert("SUANLI_JOB_ID".into(), id.to_string());
        env.insert("SUANLI_ATTEMPT".into(), attempt.to_string());
        if let Some(base) = &self.checkpoint_base {
            // The same artefact on every attempt, wherever it runs: `suanli ckpt` uses it.
            let url = format!("{base}/{}/ckpt-job-{id}", job.spec.tenant);
            env.entry("SUANLI_CHECKPOINT_URL".into()).or_insert(url);
        }
        if let Some(dir) = &job.spec.checkpoint_dir {
            env.insert("SUANLI_CHECKPOINT_DIR".into(), dir.clone());
            if attempt > 0 {
                env.insert("SUANLI_RESUME_FROM".into(), dir.clone());
            }
        }
        let (run_as, work_dir) = match self.job_identity(&job.spec.tenant, id, attempt) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(job = id, %error, "cannot prepare the job's user");
                let note = format!("failed to start: {error}");
                return self.finish_run(id, attempt, 127, Some(note)).await;
            }
        };
        let launch = Launch {
            job_id: id,
            attempt,
            command: job.spec.command.clone(),
            env,
            accelerator,
            devices,
            processes: job.spec.processes,
            work_dir: work_dir.unwrap_or_else(|| run_dir.clone()),
            run_dir,
            run_as,
            pool: job.run.as_ref().map(|r| r.pool.clone()).unwrap_or_default(),
            priority: job.spec.priority,
        };
        if let Err(error) = self.executor.start(&launch).await {
            tracing::warn!(job = id, %error, "failed to start run");
            self.finish_run(id, attempt, 127, Some(format!("failed to start: {error}")))
                .await?;
        }
        Ok(())
    }

    async fn preempt_run(&mut self, id: i64, why: String) -> Result<(), EngineError> {
        let Some(mut job) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        if let Some(run) = job.run.take() {
            self.release(&run);
            self.executor
                .stop(std::path::Path::new(&run.run_dir), STOP_GRACE)
                .await;
        }
        job.state = JobState::Queued;
        job.reason = format!("preempted by the scheduler ({why})");
        self.save(job).await
    }

    fn release(&mut self, run: &RunRecord) {
        if let Some(slot) = self.pools.iter_mut().find(|p| p.name == run.pool) {
            slot.free.extend(run.devices.iter().copied());
        }
    }

    /// A run ended (reported by the executor).
    pub async fn on_exit(&mut self, event: ExitEvent) -> Result<(), EngineError> {
        self.finish_run(event.job_id, event.attempt, event.exit_code, None)
            .await?;
        self.schedule_pass().await
    }

    /// Ends attempt `attempt` of a running job with `exit_code`: succeeded, cancelled, restarted
    /// or failed. Stale events (an older attempt, a job no longer running) are ignored.
    async fn finish_run(
        &mut self,
        id: i64,
        attempt: u32,
        exit_code: i32,
        note: Option<String>,
    ) -> Result<(), EngineError> {
        let Some(mut job) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        let Some(run) = job.run.clone() else {
            return Ok(());
        };
        if job.state != JobState::Running || run.attempt != attempt {
            return Ok(());
        }
        if let Some(sched_id) = self.sched_of.remove(&id) {
            self.by_sched.remove(&sched_id);
            let _ = self.scheduler.on_finish(JobId(sched_id), now_s() as u64);
        }
        self.release(&run);
        let now = now_s();
        job.exit_code = Some(exit_code);
        let described = note.unwrap_or_else(|| describe_exit(exit_code));
        if let Some(limit_s) = job.spec.time_limit_s.filter(|_| self.timed_out.remove(&id)) {
            job.state = JobState::Failed;
            job.reason = format!("time limit of {limit_s} s reached; stopped ({described})");
            job.finished_at_s = Some(now);
        } else if run.cancel_requested {
            job.state = JobState::Cancelled;
            job.reason = "cancelled".into();
            job.finished_at_s = Some(now);
        } else if exit_code == 0 {
            job.state = JobState::Succeeded;
            job.reason = "exited 0".into();
            job.finished_at_s = Some(now);
        } else if job.restarts < job.spec.max_restarts {
            job.restarts += 1;
            job.state = JobState::Queued;
            job.run = None;
            job.reason = format!(
                "restarting: {described} (restart {} of {})",
                job.restarts, job.spec.max_restarts
            );
            self.save(job).await?;
            if self.recovering {
                return Ok(());
            }
            return self.admit_or_hold(id).await;
        } else {
            job.state = JobState::Failed;
            job.reason = format!(
                "{described}; no restarts left ({} of {} used)",
                job.restarts, job.spec.max_restarts
            );
            job.finished_at_s = Some(now);
        }
        self.save(job).await
    }

    /// Cancels a job: a queued one at once, a running one by stopping its process group (it
    /// becomes `cancelled` when its processes are gone). The change is stored with the request's
    /// audit entry `audit`; the flag is false when nothing changed (a cancel already under way)
    /// and so nothing was appended.
    pub async fn cancel(
        &mut self,
        id: i64,
        audit: &NewAuditEvent,
    ) -> Result<(JobRecord, bool), EngineError> {
        let Some(mut job) = self.active.get(&id).cloned() else {
            return match self.store.get_job(id).await? {
                Some(job) => Err(EngineError::Conflict(format!(
                    "job {id} has already ended ({})",
                    job.state.as_str()
                ))),
                None => Err(EngineError::NotFound(format!("job {id}"))),
            };
        };
        match job.state {
            JobState::Running => {
                let run = job.run.as_mut().expect("a running job has a run");
                if run.cancel_requested {
                    return Ok((job, false));
                }
                run.cancel_requested = true;
                job.reason = "cancelling: stopping its processes".into();
                let run_dir = PathBuf::from(&run.run_dir);
                self.save_audited(job.clone(), Some(audit)).await?;
                self.executor.stop(&run_dir, STOP_GRACE).await;
            }
            _ => {
                job.state = JobState::Cancelled;
                job.reason = "cancelled while queued".into();
                job.finished_at_s = Some(now_s());
                // Stored first: if that fails, the job is still queued everywhere.
                self.save_audited(job.clone(), Some(audit)).await?;
                // Out of the scheduler's queue for good, so it never starts; a job held for
                // quota was never submitted to it.
                if let Some(sched_id) = self.sched_of.remove(&id) {
                    self.by_sched.remove(&sched_id);
                    // Only a job that has already ended can be refused, and an ended job is
                    // not active; nothing to undo if that ever happens.
                    if let Err(error) = self.scheduler.cancel(JobId(sched_id), now_s() as u64) {
                        debug_assert!(
                            false,
                            "queued job {id} not pending in the scheduler: {error}"
                        );
                        tracing::warn!(job = id, %error, "scheduler refused to cancel a queued job");
                    }
                }
                self.schedule_pass().await?;
            }
        }
        Ok((job, true))
    }
}

fn join(devices: &[u32]) -> String {
    devices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `exit code 3`, or `killed by signal 9` for codes above 128.
pub fn describe_exit(code: i32) -> String {
    if code > 128 && code < 160 {
        format!("killed by signal {} (exit code {code})", code - 128)
    } else {
        format!("exit code {code}")
    }
}
