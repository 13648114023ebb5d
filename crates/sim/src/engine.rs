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

use std::time::Instant;

use suanli_sched::{PoolId, SchedConfig, SchedError, State, Status, TenantConfig};

use crate::failures::{CheckpointPolicy, FailureModel};
use crate::metrics::{JobRecord, RunResult};
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

mod replay;

use replay::Replay;

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
    let mut replay = Replay::new(cluster, jobs, config)?;
    while let Some(((at_s, _), _)) = replay.head() {
        if replay.arrivals_left == 0 && replay.unfinished == 0 {
            break;
        }
        replay.now_s = at_s;
        replay.handle_events_now(&mut progress)?;
        replay.pass();
        replay.record_utilisation();
        replay.check_not_stalled()?;
    }
    if let Some(report) = progress.as_mut() {
        report(jobs.len() as u64, jobs.len() as u64);
    }
    Ok(RunResult {
        policy: config.policy.clone(),
        total_accelerators: replay.total_accelerators,
        jobs: records(
            jobs,
            &replay.job_of_trace,
            &replay.last_pool,
            replay.scheduler.state(),
        ),
        rejected: replay.rejected,
        timeline: replay.timeline,
        end_s: replay.now_s,
        events: replay.events,
        node_failures: replay.node_failures,
        jobs_killed: replay.jobs_killed,
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
