//! The state of one replay between events: the scheduler, the event heap, the arrivals still to
//! come and what the run has counted so far. [`super::simulate`] drives it one instant at a time.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use suanli_sched::{Decision, JobId, NodeId, PoolId, Scheduler, Status, policy};

use super::{Event, NOT_SUBMITTED, Progress, Queued, SimConfig, SimError};
use crate::convert::{pools, unnamed_job_spec};
use crate::metrics::UtilisationStep;
use crate::workload::{ClusterSpec, TraceJob};

pub(super) struct Replay<'a> {
    cluster: &'a ClusterSpec,
    jobs: &'a [TraceJob],
    config: &'a SimConfig,
    pub scheduler: Scheduler,
    pub total_accelerators: u64,
    rng: StdRng,
    heap: BinaryHeap<Reverse<Queued>>,
    /// Trace positions by arrival (time, then position). Arrivals are not queued in the heap:
    /// they are read from here and merged with the heap's head, which keeps the heap as small as
    /// the jobs in flight instead of the whole trace.
    order: Vec<u32>,
    next_arrival: usize,
    pub arrivals_left: usize,
    pub unfinished: usize,
    /// The scheduler's id of each trace job (`NOT_SUBMITTED` until it arrives, or if rejected).
    pub job_of_trace: Vec<u32>,
    submitted: usize,
    /// Runs started so far, per scheduler job: a completion event names its run.
    runs: Vec<u32>,
    pub last_pool: Vec<PoolId>,
    pub rejected: Vec<(String, String)>,
    wakeups: BTreeSet<u64>,
    pub timeline: Vec<UtilisationStep>,
    pub events: u64,
    pub node_failures: u64,
    pub jobs_killed: u64,
    pub now_s: u64,
    idle_passes: u32,
    decisions: Vec<Decision>,
    /// Completion events of runs that were since preempted or killed. Each still costs a heap
    /// operation and a (no-op) scheduling pass; a policy that acts only at its own wake-ups lets
    /// the engine drop them once they are half the heap.
    stale: usize,
}

impl<'a> Replay<'a> {
    /// The scheduler for `config` on `cluster`, every job still to arrive, and each node's first
    /// failure drawn.
    pub fn new(
        cluster: &'a ClusterSpec,
        jobs: &'a [TraceJob],
        config: &'a SimConfig,
    ) -> Result<Self, SimError> {
        let policy = policy::by_name(&config.policy)?;
        let mut scheduler = Scheduler::new(
            &pools(cluster),
            &config.tenants,
            policy,
            config.sched.clone(),
        )?;
        scheduler.reserve(jobs.len());
        let total_accelerators = scheduler.state().cluster.total_accelerators();
        let mut order: Vec<u32> = (0..jobs.len() as u32).collect();
        // Generated workloads (and most traces) come in arrival order already: one sequential
        // check instead of a sort that reads the jobs in random order.
        if !jobs.is_sorted_by_key(|job| job.arrival_s) {
            order.sort_unstable_by_key(|&i| (jobs[i as usize].arrival_s, i));
        }
        let mut replay = Replay {
            cluster,
            jobs,
            config,
            scheduler,
            total_accelerators,
            rng: StdRng::seed_from_u64(config.seed),
            heap: BinaryHeap::new(),
            order,
            next_arrival: 0,
            arrivals_left: jobs.len(),
            unfinished: 0,
            job_of_trace: vec![NOT_SUBMITTED; jobs.len()],
            submitted: 0,
            runs: Vec::with_capacity(jobs.len()),
            last_pool: Vec::with_capacity(jobs.len()),
            rejected: Vec::new(),
            wakeups: BTreeSet::new(),
            timeline: vec![UtilisationStep {
                at_s: 0,
                busy: 0,
                up: total_accelerators,
            }],
            events: 0,
            node_failures: 0,
            jobs_killed: 0,
            now_s: 0,
            idle_passes: 0,
            decisions: Vec::new(),
            stale: 0,
        };
        for node in 0..replay.scheduler.state().cluster.nodes.len() {
            let capacity = replay.scheduler.state().cluster.nodes[node].capacity;
            if let Some(mtbf_s) = config.failures.node_mtbf_s(capacity) {
                let at_s = exponential_s(&mut replay.rng, mtbf_s);
                replay.push(at_s, Event::Failure { node: node as u32 });
            }
        }
        Ok(replay)
    }

    fn push(&mut self, at_s: u64, event: Event) {
        self.heap.push(Reverse(Queued::new(at_s, event)));
    }

    /// The earlier of the heap's head and the next arrival, in (time, kind) order, and whether
    /// it is the heap's.
    pub fn head(&self) -> Option<((u64, Event), bool)> {
        let queued = self.heap.peek().map(|&Reverse(q)| (q.at_s(), q.event()));
        let arrival = self.order.get(self.next_arrival).map(|&index| {
            let at_s = self.jobs[index as usize].arrival_s;
            (at_s, Event::Arrival { index })
        });
        match (queued, arrival) {
            (Some(q), Some(a)) => Some((q.min(a), q <= a)),
            (Some(q), None) => Some((q, true)),
            (None, Some(a)) => Some((a, false)),
            (None, None) => None,
        }
    }

    /// Takes and handles every event at `now_s`, reporting progress every 4,096 events.
    pub fn handle_events_now(
        &mut self,
        progress: &mut Option<Progress<'_>>,
    ) -> Result<(), SimError> {
        while let Some(((at_s, event), from_heap)) = self.head() {
            if at_s != self.now_s {
                break;
            }
            if from_heap {
                self.heap.pop();
            } else {
                self.next_arrival += 1;
            }
            self.events += 1;
            self.handle(event)?;
            if let Some(report) = progress.as_mut()
                && self.events.is_multiple_of(4096)
            {
                let done = self.jobs.len() - self.arrivals_left - self.unfinished;
                report(done as u64, self.jobs.len() as u64);
            }
        }
        Ok(())
    }

    fn handle(&mut self, event: Event) -> Result<(), SimError> {
        let now_s = self.now_s;
        match event {
            Event::Arrival { index } => self.arrive(index),
            Event::Finish { job, run } => {
                let id = JobId(job);
                let running = matches!(self.scheduler.job(id)?.status, Status::Running(_));
                if running && self.runs[job as usize] == run {
                    self.scheduler.on_finish(id, now_s)?;
                    self.unfinished -= 1;
                }
            }
            Event::Failure { node } => {
                self.node_failures += 1;
                let killed = self.scheduler.on_node_failure(NodeId(node), now_s)?.len();
                self.jobs_killed += killed as u64;
                self.stale += killed;
                let repair_s = self.config.failures.repair_s.max(1);
                self.push(now_s + repair_s, Event::Repair { node });
            }
            Event::Repair { node } => {
                self.scheduler.on_node_repair(NodeId(node), now_s)?;
                let capacity = self.scheduler.state().cluster.nodes[node as usize].capacity;
                if let Some(mtbf_s) = self.config.failures.node_mtbf_s(capacity) {
                    let after_s = exponential_s(&mut self.rng, mtbf_s);
                    self.push(now_s + after_s, Event::Failure { node });
                }
            }
            Event::Wakeup => {
                self.wakeups.remove(&now_s);
            }
        }
        Ok(())
    }

    /// Submits trace job `index` with the run's checkpoint choices, or records why the scheduler
    /// refused it.
    fn arrive(&mut self, index: u32) {
        self.arrivals_left -= 1;
        let trace_job = &self.jobs[index as usize];
        let config = self.config;
        let spec = unnamed_job_spec(
            trace_job,
            self.cluster,
            &config.checkpoint,
            config.checkpoint_cost_s,
            &config.failures,
        );
        let tenant = &trace_job.spec.tenant;
        match (self.scheduler).submit_borrowed(spec, trace_job.id(), tenant, self.now_s) {
            Ok(id) => {
                debug_assert_eq!(id.0 as usize, self.submitted);
                self.submitted += 1;
                self.job_of_trace[index as usize] = id.0;
                self.runs.push(0);
                self.last_pool.push(PoolId(0));
                self.unfinished += 1;
            }
            Err(error) => (self.rejected).push((trace_job.id().to_string(), error.to_string())),
        }
    }

    /// One scheduling pass: queues the completions of the runs it starts, drops stale
    /// completions in bulk where the policy allows, and queues the policy's next wake-up.
    pub fn pass(&mut self) {
        let mut decisions = std::mem::take(&mut self.decisions);
        self.scheduler.schedule_into(self.now_s, &mut decisions);
        for decision in decisions.drain(..) {
            match decision {
                Decision::Start {
                    job,
                    expected_finish_s,
                    pool,
                    ..
                } => {
                    let run = &mut self.runs[job.0 as usize];
                    *run += 1;
                    let run = *run;
                    self.last_pool[job.0 as usize] = pool;
                    self.push(expected_finish_s, Event::Finish { job: job.0, run });
                }
                Decision::Preempt { .. } => self.stale += 1,
            }
        }
        self.decisions = decisions;
        if self.stale > 4096
            && self.stale * 2 > self.heap.len()
            && self.scheduler.passes_only_at_wakeups()
        {
            let (state, runs) = (self.scheduler.state(), &self.runs);
            self.heap.retain(|Reverse(queued)| match queued.event() {
                Event::Finish { job, run } => {
                    runs[job as usize] == run && state.jobs[job as usize].run().is_some()
                }
                _ => true,
            });
            self.stale = 0;
        }
        if let Some(wake_s) = self.scheduler.next_wakeup_s(self.now_s)
            && self.wakeups.insert(wake_s)
        {
            self.push(wake_s, Event::Wakeup);
        }
    }

    /// A new step of the utilisation timeline where busy or up accelerators changed.
    pub fn record_utilisation(&mut self) {
        let cluster = &self.scheduler.state().cluster;
        let up = cluster.up_accelerators();
        let busy = up - cluster.free_accelerators();
        let last = self.timeline.last().expect("timeline starts with one step");
        if (last.busy, last.up) != (busy, up) {
            let at_s = self.now_s;
            self.timeline.push(UtilisationStep { at_s, busy, up });
        }
    }

    /// An idle, healthy cluster with jobs waiting and nothing left to arrive: gives the policy a
    /// few passes (a round-based one may be waiting for its round), then reports it.
    pub fn check_not_stalled(&mut self) -> Result<(), SimError> {
        let state = self.scheduler.state();
        if self.arrivals_left == 0
            && state.running_count() == 0
            && state.pending_count() > 0
            && state.cluster.up_accelerators() == self.total_accelerators
        {
            self.idle_passes += 1;
            if self.idle_passes > 3 || self.wakeups.is_empty() {
                return Err(SimError::Stalled {
                    policy: self.config.policy.clone(),
                    waiting: state.pending_count(),
                    at_s: self.now_s,
                });
            }
        } else {
            self.idle_passes = 0;
        }
        Ok(())
    }
}

/// An exponential draw with mean `mean_s`, at least one second.
fn exponential_s(rng: &mut StdRng, mean_s: f64) -> u64 {
    let uniform: f64 = rng.random();
    (-mean_s * (1.0 - uniform).ln()).round().max(1.0) as u64
}
