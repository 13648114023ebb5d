//! The discrete-event engine: replays jobs on a cluster under a policy, with injected failures,
//! driving `suanli-sched` through the calls the server makes (`submit`, `on_finish`,
//! `on_node_failure`, `on_node_repair`, `schedule`, `next_wakeup_s`).
//!
//! Virtual time is whole seconds (`u64`). Events are handled in (time, kind, fields) order: at
//! one instant, completions come first (by job, then run number), then repairs and failures (by
//! node), arrivals (by time, then trace position) and policy wake-ups, and the scheduler runs
//! once after all of them. Arrivals come from the trace sorted once by time; the other events sit in a binary heap that
//! holds only what is in flight. Failure times come from a seeded `StdRng`, one exponential draw
//! per node per failure, so a seed fixes the whole run. A completion event carries the run's
//! number; one left over from a run that was since preempted or killed is ignored (and dropped
//! from the heap in bulk when the policy acts only at its own wake-ups).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use suanli_sched::{
    Decision, JobId, NodeId, PoolId, SchedConfig, SchedError, Scheduler, State, Status,
    TenantConfig, policy,
};

use crate::convert::{pools, unnamed_job_spec};
use crate::failures::{CheckpointPolicy, FailureModel};
use crate::metrics::{JobRecord, RunResult, UtilisationStep};
use crate::workload::{ClusterSpec, TraceJob};

/// Everything a run needs besides the cluster and the jobs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub policy: String,
    pub failures: FailureModel,
    pub checkpoint: CheckpointPolicy,
    /// Seconds to write one checkpoint (used with any checkpoint interval).
    pub checkpoint_cost_s: u64,
    pub seed: u64,
    pub sched: SchedConfig,
    pub tenants: Vec<TenantConfig>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            policy: "fifo".into(),
            failures: FailureModel::none(),
            checkpoint: CheckpointPolicy::AsTrace,
            checkpoint_cost_s: 0,
            seed: 0,
            sched: SchedConfig::default(),
            tenants: Vec::new(),
        }
    }
}

/// Why a run could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Sched(#[from] SchedError),
    #[error(
        "policy `{policy}` left {waiting} jobs waiting at {at_s} s on an idle, healthy cluster with no \
         more arrivals; this is a policy bug, please report it"
    )]
    Stalled {
        policy: String,
        waiting: usize,
        at_s: u64,
    },
}

/// Event kinds in the order they are handled at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Finish { job: u32, run: u32 },
    Repair { node: u32 },
    Failure { node: u32 },
    Arrival { index: u32 },
    Wakeup,
}

/// An event in the heap as one integer that sorts in handling order: time (64 bits), kind (3
/// bits), then the kind's fields (job and run number, or node). Comparing one `u128` is what
/// made the heap cheap; two equal keys are the same event, so no sequence number is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Queued(u128);

/// Bits of a run number in a [`Queued`] key.
const RUN_BITS: u32 = 29;

impl Queued {
    fn new(at_s: u64, event: Event) -> Self {
        let (kind, a, b) = match event {
            Event::Finish { job, run } => (0u128, job, run),
            Event::Repair { node } => (1, node, 0),
            Event::Failure { node } => (2, node, 0),
            Event::Arrival { index } => (3, index, 0),
            Event::Wakeup => (4, 0, 0),
        };
        debug_assert!(b < 1 << RUN_BITS, "a job restarted 2^29 times");
        Queued(
            (u128::from(at_s) << 64)
                | (kind << 61)
                | (u128::from(a) << RUN_BITS)
                | u128::from(b & ((1 << RUN_BITS) - 1)),
        )
    }

    fn at_s(self) -> u64 {
        (self.0 >> 64) as u64
    }

    fn event(self) -> Event {
        // The low 32 bits after the shift are the first field.
        let a = (self.0 >> RUN_BITS) as u32;
        let b = (self.0 & ((1 << RUN_BITS) - 1)) as u32;
        match (self.0 >> 61) & 0b111 {
            0 => Event::Finish { job: a, run: b },
            1 => Event::Repair { node: a },
            2 => Event::Failure { node: a },
            3 => Event::Arrival { index: a },
            _ => Event::Wakeup,
        }
    }
}

/// Receives progress as (jobs done, jobs total) every few thousand events.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Replays `jobs` on `cluster` and returns per-job records and the utilisation timeline.
pub fn simulate(
    cluster: &ClusterSpec,
    jobs: &[TraceJob],
    config: &SimConfig,
    mut progress: Option<Progress<'_>>,
) -> Result<RunResult, SimError> {
    let started = Instant::now();
    let policy = policy::by_name(&config.policy)?;
    let pool_configs = pools(cluster);
    let mut scheduler =
        Scheduler::new(&pool_configs, &config.tenants, policy, config.sched.clone())?;
    scheduler.reserve(jobs.len());
    let total_accelerators = scheduler.state().cluster.total_accelerators();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut heap: BinaryHeap<Reverse<Queued>> = BinaryHeap::new();
    let push = |heap: &mut BinaryHeap<Reverse<Queued>>, at_s: u64, event: Event| {
        heap.push(Reverse(Queued::new(at_s, event)));
    };

    let mut order: Vec<u32> = (0..jobs.len() as u32).collect();
    // Generated workloads (and most traces) come in arrival order already: one sequential check
    // instead of a sort that reads the jobs in random order.
    if !jobs.is_sorted_by_key(|job| job.arrival_s) {
        order.sort_unstable_by_key(|&i| (jobs[i as usize].arrival_s, i));
    }
    // Arrivals are not queued in the heap: they are read from `order` (by time, then trace
    // position) and merged with the heap's head, which keeps the heap as small as the jobs in
    // flight instead of the whole trace.
    let mut next_arrival = 0usize;
    let arrival_at = |next: usize| -> Option<(u64, Event)> {
        order
            .get(next)
            .map(|&index| (jobs[index as usize].arrival_s, Event::Arrival { index }))
    };
    let node_count = scheduler.state().cluster.nodes.len();
    for node in 0..node_count {
        let capacity = scheduler.state().cluster.nodes[node].capacity;
        if let Some(mtbf_s) = config.failures.node_mtbf_s(capacity) {
            push(
                &mut heap,
                exponential_s(&mut rng, mtbf_s),
                Event::Failure { node: node as u32 },
            );
        }
    }

    // The scheduler's id of each trace job (`NOT_SUBMITTED` until it arrives, or if rejected).
    let mut job_of_trace: Vec<u32> = vec![NOT_SUBMITTED; jobs.len()];
    let mut submitted = 0usize;
    let mut runs: Vec<u32> = Vec::with_capacity(jobs.len());
    let mut last_pool: Vec<PoolId> = Vec::with_capacity(jobs.len());
    let mut rejected: Vec<(String, String)> = Vec::new();
    let mut arrivals_left = jobs.len();
    let mut unfinished = 0usize;
    let mut wakeups: BTreeSet<u64> = BTreeSet::new();
    let mut timeline: Vec<UtilisationStep> = vec![UtilisationStep {
        at_s: 0,
        busy: 0,
        up: total_accelerators,
    }];
    let (mut events, mut node_failures, mut jobs_killed) = (0u64, 0u64, 0u64);
    let mut now_s = 0;
    let mut idle_passes = 0u32;
    let mut decisions = Vec::new();
    // Completion events of runs that were since preempted or killed. Each still costs a heap
    // operation and a (no-op) scheduling pass; a policy that acts only at its own wake-ups lets
    // the engine drop them once they are half the heap.
    let mut stale = 0usize;

    // The earlier of the heap's head and the next arrival, in (time, kind) order; taken off
    // its queue by `take`.
    let head = |heap: &BinaryHeap<Reverse<Queued>>, next: usize| {
        let queued = heap.peek().map(|&Reverse(q)| (q.at_s(), q.event()));
        match (queued, arrival_at(next)) {
            (Some(q), Some(a)) => Some((q.min(a), q <= a)),
            (Some(q), None) => Some((q, true)),
            (None, Some(a)) => Some((a, false)),
            (None, None) => None,
        }
    };
    while let Some(((at_s, _), _)) = head(&heap, next_arrival) {
        if arrivals_left == 0 && unfinished == 0 {
            break;
        }
        now_s = at_s;
        while let Some(((t, event), from_heap)) = head(&heap, next_arrival) {
            if t != now_s {
                break;
            }
            if from_heap {
                heap.pop();
            } else {
                next_arrival += 1;
            }
            events += 1;
            match event {
                Event::Arrival { index } => {
                    arrivals_left -= 1;
                    let trace_job = &jobs[index as usize];
                    let spec = unnamed_job_spec(
                        trace_job,
                        cluster,
                        &config.checkpoint,
                        config.checkpoint_cost_s,
                        &config.failures,
                    );
                    match scheduler.submit_borrowed(
                        spec,
                        trace_job.id(),
                        &trace_job.spec.tenant,
                        now_s,
                    ) {
                        Ok(id) => {
                            debug_assert_eq!(id.0 as usize, submitted);
                            submitted += 1;
                            job_of_trace[index as usize] = id.0;
                            runs.push(0);
                            last_pool.push(PoolId(0));
                            unfinished += 1;
                        }
                        Err(error) => {
                            rejected.push((trace_job.id().to_string(), error.to_string()))
                        }
                    }
                }
                Event::Finish { job, run } => {
                    let id = JobId(job);
                    let running = matches!(scheduler.job(id)?.status, Status::Running(_));
                    if running && runs[job as usize] == run {
                        scheduler.on_finish(id, now_s)?;
                        unfinished -= 1;
                    }
                }
                Event::Failure { node } => {
                    node_failures += 1;
                    let killed = scheduler.on_node_failure(NodeId(node), now_s)?.len();
                    jobs_killed += killed as u64;
                    stale += killed;
                    push(
                        &mut heap,
                        now_s + config.failures.repair_s.max(1),
                        Event::Repair { node },
                    );
                }
                Event::Repair { node } => {
                    scheduler.on_node_repair(NodeId(node), now_s)?;
                    let capacity = scheduler.state().cluster.nodes[node as usize].capacity;
                    if let Some(mtbf_s) = config.failures.node_mtbf_s(capacity) {
                        push(
                            &mut heap,
                            now_s + exponential_s(&mut rng, mtbf_s),
                            Event::Failure { node },
                        );
                    }
                }
                Event::Wakeup => {
                    wakeups.remove(&now_s);
                }
            }
            if let Some(report) = progress.as_mut()
                && events % 4096 == 0
            {
                report(
                    (jobs.len() - arrivals_left - unfinished) as u64,
                    jobs.len() as u64,
                );
            }
        }
        scheduler.schedule_into(now_s, &mut decisions);
        for decision in decisions.drain(..) {
            match decision {
                Decision::Start {
                    job,
                    expected_finish_s,
                    pool,
                    ..
                } => {
                    runs[job.0 as usize] += 1;
                    last_pool[job.0 as usize] = pool;
                    push(
                        &mut heap,
                        expected_finish_s,
                        Event::Finish {
                            job: job.0,
                            run: runs[job.0 as usize],
                        },
                    );
                }
                Decision::Preempt { .. } => stale += 1,
            }
        }
        if stale > 4096 && stale * 2 > heap.len() && scheduler.passes_only_at_wakeups() {
            let state = scheduler.state();
            heap.retain(|Reverse(queued)| match queued.event() {
                Event::Finish { job, run } => {
                    runs[job as usize] == run && state.jobs[job as usize].run().is_some()
                }
                _ => true,
            });
            stale = 0;
        }
        if let Some(wake_s) = scheduler.next_wakeup_s(now_s)
            && wakeups.insert(wake_s)
        {
            push(&mut heap, wake_s, Event::Wakeup);
        }
        let state = scheduler.state();
        let up = state.cluster.up_accelerators();
        let busy = up - state.cluster.free_accelerators();
        let last = timeline.last().expect("timeline starts with one step");
        if (last.busy, last.up) != (busy, up) {
            timeline.push(UtilisationStep {
                at_s: now_s,
                busy,
                up,
            });
        }
        // An idle, healthy cluster with jobs waiting and nothing left to arrive: give the policy
        // a few passes (a round-based one may be waiting for its round), then report it.
        if arrivals_left == 0
            && state.running_count() == 0
            && state.pending_count() > 0
            && up == total_accelerators
        {
            idle_passes += 1;
            if idle_passes > 3 || wakeups.is_empty() {
                return Err(SimError::Stalled {
                    policy: config.policy.clone(),
                    waiting: state.pending_count(),
                    at_s: now_s,
                });
            }
        } else {
            idle_passes = 0;
        }
    }
    if let Some(report) = progress.as_mut() {
        report(jobs.len() as u64, jobs.len() as u64);
    }
    Ok(RunResult {
        policy: config.policy.clone(),
        total_accelerators,
        jobs: records(jobs, &job_of_trace, &last_pool, scheduler.state()),
        rejected,
        timeline,
        end_s: now_s,
        events,
        node_failures,
        jobs_killed,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// `job_of_trace` of a trace job the scheduler has not taken.
const NOT_SUBMITTED: u32 = u32::MAX;

/// The records of the finished jobs, in trace order. Built once the run is over, from the
/// scheduler's final records (a finished job's record no longer changes), in one sequential sweep
/// rather than one scattered write per completion.
fn records(
    jobs: &[TraceJob],
    job_of_trace: &[u32],
    last_pool: &[PoolId],
    state: &State,
) -> Vec<JobRecord> {
    let finished = |id: u32| {
        let job = &state.jobs[id as usize];
        matches!(job.status, Status::Finished { .. }).then_some(job)
    };
    let count = job_of_trace
        .iter()
        .filter(|&&id| id != NOT_SUBMITTED && finished(id).is_some())
        .count();
    let mut records = Vec::with_capacity(count);
    for (trace_job, &id) in jobs.iter().zip(job_of_trace) {
        if id == NOT_SUBMITTED {
            continue;
        }
        if let Some(job) = finished(id) {
            let pool = &state.cluster.pools[last_pool[id as usize].0 as usize];
            records.push(JobRecord::of(trace_job, job, state, &pool.accelerator));
        }
    }
    records
}

/// An exponential draw with mean `mean_s`, at least one second.
fn exponential_s(rng: &mut StdRng, mean_s: f64) -> u64 {
    let uniform: f64 = rng.random();
    (-mean_s * (1.0 - uniform).ln()).round().max(1.0) as u64
}
