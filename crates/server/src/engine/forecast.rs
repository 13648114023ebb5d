//! When would a job start? The live queue run forward on a copy of the engine's scheduler: a
//! fresh `suanli_sched::Scheduler` with the same pools and policy, the running jobs placed on
//! their types with the time they have left, the queued ones submitted in their order, and jobs
//! held for quota admitted as the tenant's usage allows, as the engine does. Each job lasts what
//! the scheduler is told it lasts (`sched_work`): a goal job's planned run time, else the
//! user's expected run time or time limit; a job with none of these has no known end, and a
//! start behind it cannot be predicted.

use std::collections::BTreeMap;

use suanli_sched::{Decision, JobId, PoolConfig, SchedConfig, Scheduler, Work};

use super::Engine;
use crate::store::{JobSpec, JobState};

/// Units of work of a job whose length is unknown: longer than any forecast looks ahead.
pub(super) const UNKNOWN_UNITS: f64 = 1e12;

/// Events a forecast simulates at most (a deep queue of short jobs stops here).
const MAX_EVENTS: usize = 100_000;

/// What the scheduler is told about a job allowed on `types`: its work and run time estimate.
/// A goal's length comes from the performance model; otherwise the expected run time, else the
/// time limit (as Slurm's backfill plans on `--time`), at rate 1 on every type; else unknown.
pub(super) fn sched_work(spec: &JobSpec, types: &[String]) -> (Work, Option<u64>) {
    if let Some(goal) = &spec.goal {
        let rates: BTreeMap<String, f64> = goal
            .tokens_per_s
            .iter()
            .filter(|(t, r)| types.contains(t) && **r > 0.0)
            .map(|(t, r)| (t.clone(), *r))
            .collect();
        if !rates.is_empty() {
            let work = Work {
                total_units: goal.tokens,
                units_per_s: rates.into(),
            };
            let estimate_s = work.ideal_runtime_s().ceil() as u64;
            return (work, Some(estimate_s));
        }
    }
    let every_type = |units: f64| Work {
        total_units: units,
        units_per_s: types.iter().map(|t| (t.clone(), 1.0)).collect(),
    };
    match spec
        .run
        .expected_s
        .or(spec.run.time_limit_s)
        .filter(|&s| s > 0)
    {
        Some(estimate_s) => (every_type(estimate_s as f64), Some(estimate_s)),
        None => (every_type(UNKNOWN_UNITS), None),
    }
}

/// Where a job stands in a forecast.
#[derive(Clone, Debug)]
pub(super) enum Standing {
    /// Running on `accelerator` with `remaining_s` left (`None`: unknown).
    Running {
        accelerator: String,
        remaining_s: Option<u64>,
    },
    /// In the scheduler's queue since `submitted_s`.
    Queued { submitted_s: u64 },
    /// Waiting for its tenant's quota, outside the scheduler.
    Held,
}

/// One job of the live queue, as the forecast sees it.
#[derive(Clone, Debug)]
pub(super) struct ForecastJob {
    pub id: i64,
    pub tenant: String,
    pub gpus: u32,
    pub types: Vec<String>,
    pub work: Work,
    pub estimate_s: Option<u64>,
    pub standing: Standing,
}

/// The engine's queue and cluster at one instant, cheap to run forward off the engine's lock.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(super) now_s: u64,
    pub(super) policy: String,
    pub(super) pools: Vec<PoolConfig>,
    /// Scheduler node ids of pools marked down.
    pub(super) down_nodes: Vec<u32>,
    pub(super) jobs: Vec<ForecastJob>,
    pub(super) quotas: BTreeMap<(String, String), u32>,
}

impl Engine {
    /// The live queue and cluster, for [`Snapshot::start_of`].
    pub fn snapshot(&self) -> Snapshot {
        let now_s = self.now_s() as u64;
        let mut jobs = Vec::new();
        for job in self.active.values() {
            let types = self.job_types(&job.spec);
            let (work, estimate_s) = sched_work(&job.spec, &types);
            let standing = match (&job.state, &job.run) {
                (JobState::Running, Some(run)) => {
                    let ran_s = now_s.saturating_sub(run.started_at_s.max(0) as u64);
                    let (_, run_estimate) =
                        sched_work(&job.spec, std::slice::from_ref(&run.accelerator));
                    Standing::Running {
                        accelerator: run.accelerator.clone(),
                        remaining_s: run_estimate.map(|e| e.saturating_sub(ran_s).max(1)),
                    }
                }
                _ => match self.sched_of.get(&job.id) {
                    Some(&sched_id) => Standing::Queued {
                        submitted_s: self
                            .scheduler
                            .job(JobId(sched_id))
                            .map_or(now_s, |j| j.submitted_s.min(now_s)),
                    },
                    None if self.held.contains(&job.id) => Standing::Held,
                    None => continue,
                },
            };
            jobs.push(ForecastJob {
                id: job.id,
                tenant: job.spec.tenant.clone(),
                gpus: job.spec.gpus,
                types,
                work,
                estimate_s,
                standing,
            });
        }
        let down_nodes = self
            .pools
            .iter()
            .filter(|p| !p.up)
            .flat_map(|p| p.first_node..p.first_node + p.nodes.len().max(1) as u32)
            .collect();
        Snapshot {
            now_s,
            policy: self.scheduler.policy_name().to_string(),
            pools: self.pool_configs.clone(),
            down_nodes,
            jobs,
            quotas: self.quotas.clone(),
        }
    }
}

/// A forecast that cannot give a start.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error(
        "waits behind job {0}, whose run time is unknown (submit it with --expected-time or --time-limit)"
    )]
    UnknownLength(i64),
    #[error("never starts: no pool of its type can hold it")]
    Never,
    #[error("no start within {0} scheduling events")]
    TooFar(usize),
    #[error("the forecast's scheduler: {0}")]
    Scheduler(suanli_sched::SchedError),
}

/// The forecast's scheduler and the engine job behind each of its ids.
struct Replay {
    scheduler: Scheduler,
    engine_id: BTreeMap<u32, i64>,
    /// Held jobs (and the candidate until admitted), in id order.
    held: Vec<ForecastJob>,
    admitted: Vec<ForecastJob>,
}

impl Replay {
    fn submit(&mut self, job: &ForecastJob, now_s: u64) -> Result<u32, ForecastError> {
        let spec = suanli_sched::JobSpec {
            name: format!("job-{}", job.id),
            gang_size: job.gpus,
            tenant: job.tenant.clone(),
            priority: 0,
            work: job.work.clone(),
            runtime_estimate_s: job.estimate_s,
            checkpoint_interval_s: None,
            checkpoint_cost_s: 0,
        };
        let id = self
            .scheduler
            .submit(spec, now_s)
            .map_err(ForecastError::Scheduler)?;
        self.engine_id.insert(id.0, job.id);
        self.admitted.push(job.clone());
        Ok(id.0)
    }

    /// Admits held jobs whose tenant's quota now allows them, as the engine's pass does.
    fn admit_held(
        &mut self,
        quotas: &BTreeMap<(String, String), u32>,
        now_s: u64,
    ) -> Result<Option<u32>, ForecastError> {
        let mut candidate = None;
        let mut index = 0;
        while index < self.held.len() {
            let job = &self.held[index];
            if quota_allows(quotas, &self.admitted, job) {
                let job = self.held.remove(index);
                let id = self.submit(&job, now_s)?;
                if job.id == CANDIDATE {
                    candidate = Some(id);
                }
            } else {
                index += 1;
            }
        }
        Ok(candidate)
    }
}

impl Replay {
    /// Runs the replay from `now` until the scheduler starts job `wanted` (admitted from the
    /// held jobs as quotas free up), at most `MAX_EVENTS` steps; the start time.
    fn run_until_start(
        &mut self,
        mut wanted: Option<u32>,
        unknown: &BTreeMap<u32, i64>,
        quotas: &BTreeMap<(String, String), u32>,
        now: u64,
    ) -> Result<u64, ForecastError> {
        let mut t = now;
        for _ in 0..MAX_EVENTS {
            for decision in self.scheduler.schedule(t) {
                if let Decision::Start { job, .. } = decision
                    && Some(job.0) == wanted
                {
                    return Ok(t);
                }
            }
            // The next run end or policy wake-up.
            let state = self.scheduler.state();
            let next_end = state
                .running_jobs()
                .into_iter()
                .filter_map(|id| state.job(id).run().map(|r| (r.expected_finish_s, id)))
                .min();
            let wake = self.scheduler.next_wakeup_s(t);
            let next = match (next_end, wake) {
                (Some((end, _)), Some(w)) => end.min(w),
                (Some((end, _)), None) => end,
                (None, Some(w)) => w,
                (None, None) => return Err(ForecastError::Never),
            };
            if let Some((end, id)) = next_end
                && end == next
                && let Some(&engine_id) = unknown.get(&id.0)
            {
                return Err(ForecastError::UnknownLength(engine_id));
            }
            t = next.max(t + 1);
            let ended: Vec<JobId> = state
                .running_jobs()
                .into_iter()
                .filter(|&id| {
                    state
                        .job(id)
                        .run()
                        .is_some_and(|r| r.expected_finish_s <= t)
                })
                .collect();
            for id in ended {
                let _ = self.scheduler.on_finish(id, t);
                let engine_id = self.engine_id.get(&id.0).copied();
                self.admitted.retain(|j| Some(j.id) != engine_id);
            }
            if wanted.is_none() {
                wanted = self.admit_held(quotas, t)?;
            } else {
                self.admit_held(quotas, t)?;
            }
        }
        Err(ForecastError::TooFar(MAX_EVENTS))
    }
}

/// The engine id the forecast gives the job it predicts.
pub(super) const CANDIDATE: i64 = -1;

fn quota_allows(
    quotas: &BTreeMap<(String, String), u32>,
    admitted: &[ForecastJob],
    job: &ForecastJob,
) -> bool {
    job.types.iter().all(|t| {
        let Some(&limit) = quotas.get(&(job.tenant.clone(), t.clone())) else {
            return true;
        };
        let used: u32 = admitted
            .iter()
            .filter(|j| j.tenant == job.tenant && j.types.contains(t))
            .map(|j| j.gpus)
            .sum();
        used + job.gpus <= limit
    })
}

impl Snapshot {
    /// When `candidate` (a job not yet submitted; its id is ignored) would start if submitted now,
    /// Unix seconds: the live queue run forward with the engine's policy.
    pub(super) fn start_of(&self, candidate: &ForecastJob) -> Result<u64, ForecastError> {
        let (mut replay, unknown) = self.replay_now()?;
        replay.held = self
            .jobs
            .iter()
            .filter(|j| matches!(j.standing, Standing::Held))
            .cloned()
            .collect();
        let mut candidate = candidate.clone();
        candidate.id = CANDIDATE;
        replay.held.push(candidate);
        let wanted = replay.admit_held(&self.quotas, self.now_s)?;
        replay.run_until_start(wanted, &unknown, &self.quotas, self.now_s)
    }

    /// The cluster as it stands: down nodes, the running jobs on their types, the queued ones
    /// in submission order; and the scheduler ids of jobs whose length nobody knows, with their
    /// engine ids.
    fn replay_now(&self) -> Result<(Replay, BTreeMap<u32, i64>), ForecastError> {
        let policy =
            suanli_sched::policy::by_name(&self.policy).map_err(ForecastError::Scheduler)?;
        let scheduler = Scheduler::new(&self.pools, &[], policy, SchedConfig::default())
            .map_err(ForecastError::Scheduler)?;
        let mut replay = Replay {
            scheduler,
            engine_id: BTreeMap::new(),
            held: Vec::new(),
            admitted: Vec::new(),
        };
        let now = self.now_s;
        for &node in &self.down_nodes {
            let _ = replay
                .scheduler
                .on_node_failure(suanli_sched::NodeId(node), now);
        }
        // Running jobs first, each on its own type, as `recover` places adopted runs.
        let mut unknown: BTreeMap<u32, i64> = BTreeMap::new();
        for job in &self.jobs {
            if let Standing::Running {
                accelerator,
                remaining_s,
            } = &job.standing
            {
                // `types` stays as submitted: the engine counts quota usage on every type a
                // job may use; the work pins the run to its type.
                let mut running = job.clone();
                let length = remaining_s.map_or(UNKNOWN_UNITS, |s| s as f64);
                running.work = Work::duration_on(accelerator, length);
                running.estimate_s = *remaining_s;
                let id = replay.submit(&running, now)?;
                if remaining_s.is_none() {
                    unknown.insert(id, job.id);
                }
            }
        }
        replay.scheduler.schedule(now);
        let mut queued: Vec<(u64, &ForecastJob)> = self
            .jobs
            .iter()
            .filter_map(|j| match j.standing {
                Standing::Queued { submitted_s } => Some((submitted_s, j)),
                _ => None,
            })
            .collect();
        queued.sort_by_key(|(submitted_s, j)| (*submitted_s, j.id));
        for (submitted_s, job) in queued {
            let id = replay.submit(job, submitted_s)?;
            if job.estimate_s.is_none() {
                unknown.insert(id, job.id);
            }
        }
        Ok((replay, unknown))
    }
}

/// The job a goal option would submit: `gpus` of `accelerator` for `run_s` seconds.
pub(super) fn candidate(tenant: &str, accelerator: &str, gpus: u32, run_s: u64) -> ForecastJob {
    ForecastJob {
        id: CANDIDATE,
        tenant: tenant.to_string(),
        gpus,
        types: vec![accelerator.to_string()],
        work: Work::duration_on(accelerator, run_s.max(1) as f64),
        estimate_s: Some(run_s.max(1)),
        standing: Standing::Held,
    }
}
