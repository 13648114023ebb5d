//! The state policies act on: jobs, the pending and running indexes, tenants' usage, and the
//! primitives to start, interrupt and finish a run. Every change goes through here so the indexes
//! and the decision log stay consistent.

use std::collections::BTreeSet;
use std::fmt;

use crate::cluster::{Cluster, PoolId};
use crate::job::{Job, JobId, Run, Status};
use crate::tenant::Tenant;

/// A pending job's place in the queue: (policy key, submit time, id).
pub type PendingKey = (i64, u64, u32);

/// Knobs of the scheduling core that are not policy-specific.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedConfig {
    /// Seconds a restarted job spends before computing again (reload checkpoint, rebuild
    /// communicators).
    pub restart_delay_s: u64,
    /// A preempted job writes a checkpoint before it stops, so loses no work (Tiresias and Gavel
    /// assume this); otherwise it loses work since its last periodic checkpoint, like a failure.
    pub checkpoint_on_preempt: bool,
    /// Pending jobs a policy looks at per scheduling pass, like Slurm's `bf_max_job_test`; keeps
    /// a pass bounded when the queue holds tens of thousands of jobs.
    pub max_scan_jobs: usize,
}

impl Default for SchedConfig {
    fn default() -> Self {
        SchedConfig {
            restart_delay_s: 60,
            checkpoint_on_preempt: true,
            max_scan_jobs: 1000,
        }
    }
}

/// Why a run was stopped by the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreemptReason {
    /// The policy wanted the accelerators for another job.
    Policy,
    /// The job's tenant was borrowing beyond its guarantee and the owner needs the capacity.
    QuotaReclaim,
}

/// What the scheduler tells its driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Start (or restart) a job on these accelerators.
    Start {
        job: JobId,
        pool: PoolId,
        allocation: Vec<(crate::NodeId, u32)>,
        expected_finish_s: u64,
    },
    /// Stop a running job; it goes back to the queue.
    Preempt { job: JobId, reason: PreemptReason },
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Start {
                job,
                pool,
                allocation,
                expected_finish_s,
            } => {
                let nodes: Vec<String> = allocation
                    .iter()
                    .map(|(n, c)| format!("n{}x{c}", n.0))
                    .collect();
                write!(
                    f,
                    "start j{} on pool{} [{}] until {expected_finish_s}s",
                    job.0,
                    pool.0,
                    nodes.join(" ")
                )
            }
            Decision::Preempt { job, reason } => write!(f, "preempt j{} ({reason:?})", job.0),
        }
    }
}

/// How a run ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interruption {
    Preempted(PreemptReason),
    Failed,
}

/// Jobs, indexes and tenants.
#[derive(Debug)]
pub struct State {
    pub cluster: Cluster,
    pub jobs: Vec<Job>,
    pub tenants: Vec<Tenant>,
    pub config: SchedConfig,
    /// Pools that can run each job, with its rate there: job `i`'s are
    /// `pool_rates[pool_rates_start[i]..pool_rates_start[i + 1]]`. One flat vector instead of a
    /// vector per job: a million jobs would otherwise hold a million small allocations.
    pool_rates: Vec<(PoolId, f64)>,
    pool_rates_start: Vec<u32>,
    /// (policy key, submit time, id), smallest first.
    pub(crate) pending: BTreeSet<(i64, u64, u32)>,
    pub(crate) pending_keys: Vec<i64>,
    /// Per tenant: (submit time, id) of its pending jobs. Kept only once something asks for
    /// them (`keep_tenant_queues`: the fair policy, tenant guarantees); empty until then, which
    /// spares the other policies two B-tree updates per start.
    pub(crate) pending_by_tenant: Vec<BTreeSet<(u64, u32)>>,
    pub(crate) tenant_queues_kept: bool,
    pub(crate) running: BTreeSet<u32>,
    /// Per pool: (estimated end, id) of running jobs, for backfill reservations.
    pub(crate) running_by_end: Vec<BTreeSet<(u64, u32)>>,
    /// True once `running_by_end` is kept (`keep_running_ends`: backfill asks for it); until
    /// then it is empty and `running_by_estimated_end` sorts a pool's running jobs on demand.
    pub(crate) running_ends_kept: bool,
    pub(crate) decisions: Vec<Decision>,
    /// Ids of jobs that started or stopped running since a policy last drained it; kept only
    /// once a policy with its own index of running jobs asks for it (`None` until then).
    pub(crate) running_log: Option<Vec<u32>>,
}

impl State {
    pub(crate) fn new(cluster: Cluster, tenants: Vec<Tenant>, config: SchedConfig) -> Self {
        let pools = cluster.pools.len();
        let tenant_count = tenants.len();
        State {
            cluster,
            jobs: Vec::new(),
            tenants,
            config,
            pool_rates: Vec::new(),
            pool_rates_start: vec![0],
            pending: BTreeSet::new(),
            pending_keys: Vec::new(),
            pending_by_tenant: vec![BTreeSet::new(); tenant_count],
            tenant_queues_kept: false,
            running: BTreeSet::new(),
            running_by_end: vec![BTreeSet::new(); pools],
            running_ends_kept: false,
            decisions: Vec::new(),
            running_log: None,
        }
    }

    /// The job record.
    pub fn job(&self, id: JobId) -> &Job {
        &self.jobs[id.0 as usize]
    }

    /// Pools that can run the job, with its units/s there.
    pub fn pools_for(&self, id: JobId) -> &[(PoolId, f64)] {
        let index = id.0 as usize;
        &self.pool_rates
            [self.pool_rates_start[index] as usize..self.pool_rates_start[index + 1] as usize]
    }

    /// Up to `limit` pending jobs in queue order.
    pub fn pending_prefix(&self, limit: usize) -> Vec<JobId> {
        self.pending
            .iter()
            .take(limit)
            .map(|&(_, _, id)| JobId(id))
            .collect()
    }

    /// The first pending entry after `after` in queue order (all of them from the start when
    /// `None`); a cursor that survives starting jobs in between.
    pub fn next_pending(&self, after: Option<PendingKey>) -> Option<PendingKey> {
        match after {
            None => self.pending.first().copied(),
            Some(key) => self
                .pending
                .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
                .next()
                .copied(),
        }
    }

    /// Offers up to `max_scan_jobs` pending jobs to `visit`, in queue order, while some up
    /// accelerator is free; a job `visit` starts leaves the queue without moving the cursor past
    /// the next one (the scan of policies that skip what does not fit: sjf, backfill).
    pub fn scan_pending(&mut self, mut visit: impl FnMut(&mut State, JobId)) {
        let mut cursor = None;
        for _ in 0..self.config.max_scan_jobs {
            if self.cluster_full() {
                break;
            }
            let Some(key) = self.next_pending(cursor) else {
                break;
            };
            cursor = Some(key);
            visit(self, JobId(key.2));
        }
    }

    /// All pending jobs in queue order.
    pub fn pending_jobs(&self) -> Vec<JobId> {
        self.pending.iter().map(|&(_, _, id)| JobId(id)).collect()
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Running jobs in id order.
    pub fn running_jobs(&self) -> Vec<JobId> {
        self.running.iter().map(|&id| JobId(id)).collect()
    }

    pub fn running_count(&self) -> usize {
        self.running.len()
    }

    /// Running jobs on a pool by estimated end (earliest first), then id. From the kept index
    /// once backfill keeps one (`keep_running_ends`), else sorted from the running jobs here.
    pub fn running_by_estimated_end(
        &self,
        pool: PoolId,
    ) -> impl Iterator<Item = (u64, JobId)> + '_ {
        let kept = self.running_ends_kept.then(|| {
            self.running_by_end[pool.0 as usize]
                .iter()
                .map(|&(end, id)| (end, JobId(id)))
        });
        let sorted = (!self.running_ends_kept).then(|| {
            let mut ends: Vec<(u64, JobId)> = self
                .running
                .iter()
                .filter_map(|&id| {
                    let run = self.job(JobId(id)).run()?;
                    (run.pool == pool).then_some((run.estimated_end_s, JobId(id)))
                })
                .collect();
            ends.sort_unstable();
            ends.into_iter()
        });
        kept.into_iter()
            .flatten()
            .chain(sorted.into_iter().flatten())
    }

    /// Keeps `running_by_end` from now on, filling it from the running jobs the first time.
    pub(crate) fn keep_running_ends(&mut self) {
        if self.running_ends_kept {
            return;
        }
        for &id in &self.running {
            let run = self.jobs[id as usize]
                .run()
                .expect("running jobs have a run");
            self.running_by_end[run.pool.0 as usize].insert((run.estimated_end_s, id));
        }
        self.running_ends_kept = true;
    }

    /// True when no up node has a free accelerator.
    pub fn cluster_full(&self) -> bool {
        self.cluster.pools.iter().all(|p| p.free == 0)
    }

    /// The job's pools ordered by free accelerators (most first), as a scheduler that treats all
    /// accelerators alike would spread load; ties keep configuration order.
    pub fn pools_by_free(&self, id: JobId) -> Vec<(PoolId, f64)> {
        let mut pools = self.pools_for(id).to_vec();
        pools.sort_by_key(|(p, _)| std::cmp::Reverse(self.cluster.pools[p.0 as usize].free));
        pools
    }

    /// Starts the job on the first pool in `pools_by_free` where it can be placed.
    pub fn start_anywhere(&mut self, id: JobId, now_s: u64) -> bool {
        let gang = self.job(id).spec.gang_size;
        if let &[(pool, _)] = self.pools_for(id) {
            // One pool (most jobs on a one-type cluster): nothing to order, nothing to allocate.
            return self.cluster.pools[pool.0 as usize].free >= gang && self.start(id, pool, now_s);
        }
        for (pool, _) in self.pools_by_free(id) {
            if self.cluster.pools[pool.0 as usize].free < gang {
                break;
            }
            if self.start(id, pool, now_s) {
                return true;
            }
        }
        false
    }

    /// Starts a pending job on `pool` if the gang can be placed there now.
    pub fn start(&mut self, id: JobId, pool: PoolId, now_s: u64) -> bool {
        let index = id.0 as usize;
        debug_assert!(
            matches!(self.jobs[index].status, Status::Pending),
            "starting a job that is not pending"
        );
        let Some(&(_, units_per_s)) = self.pools_for(id).iter().find(|(p, _)| *p == pool) else {
            return false;
        };
        let gang = self.jobs[index].spec.gang_size;
        let Some(allocation) = self.cluster.place(pool, gang) else {
            return false;
        };
        for &(node, count) in &allocation {
            self.cluster.allocate(node, count);
        }
        let job = &mut self.jobs[index];
        let delay_s = if job.first_start_s.is_some() {
            self.config.restart_delay_s
        } else {
            0
        };
        let compute_start_s = now_s + delay_s;
        let compute_s = job.remaining_compute_s(units_per_s);
        let expected_finish_s = compute_start_s + job.wall_for_compute_s(compute_s).max(1);
        let estimated_end_s = match job.spec.runtime_estimate_s {
            Some(estimate_s) => {
                let left = 1.0 - job.done_units / job.spec.work.total_units;
                compute_start_s + (estimate_s as f64 * left.clamp(0.0, 1.0)).ceil() as u64
            }
            None => u64::MAX,
        };
        job.first_start_s.get_or_insert(now_s);
        job.status = Status::Running(Box::new(Run {
            pool,
            allocation: allocation.clone(),
            started_s: now_s,
            compute_start_s,
            units_per_s,
            expected_finish_s,
            estimated_end_s,
        }));
        let tenant = job.tenant;
        let key = (self.pending_keys[index], job.submitted_s, id.0);
        let submitted_s = job.submitted_s;
        self.pending.remove(&key);
        if self.tenant_queues_kept {
            self.pending_by_tenant[tenant].remove(&(submitted_s, id.0));
        }
        self.running.insert(id.0);
        if let Some(log) = &mut self.running_log {
            log.push(id.0);
        }
        if self.running_ends_kept {
            self.running_by_end[pool.0 as usize].insert((estimated_end_s, id.0));
        }
        self.tenants[tenant].add_usage(&self.cluster.pools[pool.0 as usize].accelerator, gang);
        self.decisions.push(Decision::Start {
            job: id,
            pool,
            allocation,
            expected_finish_s,
        });
        true
    }

    /// Takes a running job off its accelerators and returns the run.
    fn take_run(&mut self, id: JobId) -> Run {
        let index = id.0 as usize;
        let Status::Running(run) = std::mem::replace(&mut self.jobs[index].status, Status::Pending)
        else {
            panic!("job {} is not running", id.0);
        };
        for &(node, count) in &run.allocation {
            self.cluster.release(node, count);
        }
        self.running.remove(&id.0);
        if let Some(log) = &mut self.running_log {
            log.push(id.0);
        }
        if self.running_ends_kept {
            self.running_by_end[run.pool.0 as usize].remove(&(run.estimated_end_s, id.0));
        }
        let tenant = self.jobs[index].tenant;
        self.tenants[tenant].remove_usage(
            &self.cluster.pools[run.pool.0 as usize].accelerator,
            self.jobs[index].spec.gang_size,
        );
        *run
    }

    /// Ends a run early; the job goes back to the queue with the work it keeps.
    pub(crate) fn interrupt(&mut self, id: JobId, now_s: u64, why: Interruption) {
        let run = self.take_run(id);
        let checkpoint_on_preempt = self.config.checkpoint_on_preempt;
        let job = &mut self.jobs[id.0 as usize];
        let gang = u64::from(job.spec.gang_size);
        let needed_s = job.remaining_compute_s(run.units_per_s);
        let (computed_s, checkpointed_s) =
            job.compute_after_wall_s(now_s.saturating_sub(run.compute_start_s));
        let computed_s = computed_s.min(needed_s);
        let kept_s = match why {
            Interruption::Preempted(_) if checkpoint_on_preempt => computed_s,
            _ => checkpointed_s.min(computed_s),
        };
        let lost_s = computed_s - kept_s;
        job.done_units =
            (job.done_units + kept_s as f64 * run.units_per_s).min(job.spec.work.total_units);
        job.lost_units += lost_s as f64 * run.units_per_s;
        job.lost_compute_s += lost_s;
        job.useful_acc_s += kept_s * gang;
        job.attained_acc_s += now_s.saturating_sub(run.started_s) * gang;
        match why {
            Interruption::Preempted(reason) => {
                job.preemptions += 1;
                self.decisions.push(Decision::Preempt { job: id, reason });
            }
            Interruption::Failed => job.failures += 1,
        }
        job.pending_since_s = now_s;
        let (tenant, submitted_s) = (job.tenant, job.submitted_s);
        self.pending
            .insert((self.pending_keys[id.0 as usize], submitted_s, id.0));
        if self.tenant_queues_kept {
            self.pending_by_tenant[tenant].insert((submitted_s, id.0));
        }
    }

    /// Preempts a running job for the policy.
    pub fn preempt(&mut self, id: JobId, now_s: u64) {
        self.interrupt(id, now_s, Interruption::Preempted(PreemptReason::Policy));
    }

    /// Completes a running job.
    pub(crate) fn finish(&mut self, id: JobId, now_s: u64) {
        let run = self.take_run(id);
        let job = &mut self.jobs[id.0 as usize];
        let gang = u64::from(job.spec.gang_size);
        job.useful_acc_s += job.remaining_compute_s(run.units_per_s) * gang;
        job.attained_acc_s += now_s.saturating_sub(run.started_s) * gang;
        job.done_units = job.spec.work.total_units;
        job.status = Status::Finished { finished_s: now_s };
        // The per-type rate map is read only at submit (rates live in `pool_rates` from then on);
        // dropping it with the run keeps a replay of a million jobs from holding a million maps.
        job.spec.work.units_per_s = crate::Rates::new();
        // Likewise the name and tenant strings: the driver has the name, and the tenant stays
        // known by index (`Job::tenant`, `State::tenants`).
        job.spec.name = String::new();
        job.spec.tenant = String::new();
    }

    /// Takes a pending job out of the queue for good. `pending` and `pending_by_tenant` are the
    /// only structures that hold pending jobs (policies keep no queue of their own; the indexed
    /// LAS indexes running jobs only), so nothing else can start it later.
    pub(crate) fn cancel_pending(&mut self, id: JobId, now_s: u64) {
        let index = id.0 as usize;
        debug_assert!(matches!(self.jobs[index].status, Status::Pending));
        let job = &mut self.jobs[index];
        let removed = self
            .pending
            .remove(&(self.pending_keys[index], job.submitted_s, id.0));
        let removed_by_tenant = !self.tenant_queues_kept
            || self.pending_by_tenant[job.tenant].remove(&(job.submitted_s, id.0));
        debug_assert!(
            removed && removed_by_tenant,
            "a pending job is in both queues"
        );
        job.status = Status::Cancelled { cancelled_s: now_s };
    }

    /// Stops a running job for good: its accelerators and tenant usage are released (as on
    /// finish, and logged for policies that index running jobs); it keeps only the work it had
    /// checkpointed, as after a failure.
    pub(crate) fn cancel_running(&mut self, id: JobId, now_s: u64) {
        let run = self.take_run(id);
        let job = &mut self.jobs[id.0 as usize];
        let gang = u64::from(job.spec.gang_size);
        let needed_s = job.remaining_compute_s(run.units_per_s);
        let (computed_s, checkpointed_s) =
            job.compute_after_wall_s(now_s.saturating_sub(run.compute_start_s));
        let kept_s = checkpointed_s.min(computed_s.min(needed_s));
        job.done_units =
            (job.done_units + kept_s as f64 * run.units_per_s).min(job.spec.work.total_units);
        job.useful_acc_s += kept_s * gang;
        job.attained_acc_s += now_s.saturating_sub(run.started_s) * gang;
        job.status = Status::Cancelled { cancelled_s: now_s };
    }

    /// Keeps `pending_by_tenant` from now on, filling it from the queue the first time (the same
    /// content as if it had been kept all along: it depends only on which jobs are pending).
    pub(crate) fn keep_tenant_queues(&mut self) {
        if self.tenant_queues_kept {
            return;
        }
        for &(_, submitted_s, id) in &self.pending {
            let tenant = self.jobs[id as usize].tenant;
            self.pending_by_tenant[tenant].insert((submitted_s, id));
        }
        self.tenant_queues_kept = true;
    }

    /// Room for `additional` more jobs in the per-job vectors.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.jobs.reserve(additional);
        self.pending_keys.reserve(additional);
        self.pool_rates_start.reserve(additional);
        self.pool_rates.reserve(additional);
    }

    /// Adds a submitted job to the queue.
    pub(crate) fn enqueue(&mut self, job: Job, pools: &[(PoolId, f64)], key: i64) {
        let id = job.id.0;
        self.pending.insert((key, job.submitted_s, id));
        if self.tenant_queues_kept {
            self.pending_by_tenant[job.tenant].insert((job.submitted_s, id));
        }
        self.pending_keys.push(key);
        self.pool_rates.extend_from_slice(pools);
        self.pool_rates_start.push(self.pool_rates.len() as u32);
        self.jobs.push(job);
    }
}
