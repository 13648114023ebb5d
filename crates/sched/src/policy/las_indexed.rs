//! `las` at scale: the same decisions as [`Las`], without re-ranking every running job on every
//! pass.
//!
//! [`Las`] sorts all running and waiting jobs by (queue, submit time, id) on each pass, which is
//! quadratic over a long run: 100,000 jobs on 16,384 accelerators took about 20 s. Here the
//! running jobs live in an index ordered by that key, kept up to date from the state's log of
//! starts and stops, and a job moves to its next queue when a heap of demotion times says it has
//! crossed a threshold. A pass merges the (few) waiting jobs into the index and walks only from
//! the first waiting job to the last: the running jobs ranked ahead of the first all keep their
//! accelerators (they fit together, being all running, and nothing is claimed before them), so
//! they enter the pass as per-pool sums kept by queue. The tail is walked only when a start needs
//! preemption victims. On one pool, a pass whose waiting jobs all fit in the free accelerators
//! starts them in rank order without reading the index (`starts_in_free`), which then catches up
//! from the log at the next pass that needs it. With
//! tenant guarantees it falls back to [`Las`]'s full pass (guarantees change which running jobs
//! count, per pass).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use crate::cluster::PoolId;
use crate::job::JobId;
use crate::policy::las::start_with_victims;
use crate::policy::{Las, Policy};
use crate::state::State;

/// (queue, waiting, entry time, id): the rank, smaller first. Plain LAS ranks by (queue, submit
/// time, id) and files every job with `waiting` false; 2D-LAS puts a queue's running jobs ahead
/// of its waiting ones and counts from the last promotion.
pub(crate) type RankKey = (usize, bool, u64, u32);

/// What a LAS variant tells the index about a running job.
pub(crate) trait Ranking {
    /// The queue thresholds.
    fn queues(&self) -> &Las;
    /// Attained accelerator-seconds not counted towards the queue (service before the last
    /// promotion; 0 for plain LAS).
    fn base_acc_s(&self, id: u32) -> u64;
    /// The time a job is ranked by within its queue (submission, or the last promotion).
    fn entry_s(&self, state: &State, id: u32) -> u64;
}

/// When a running job crosses its next queue threshold (`None`: it is in the last queue, or not
/// running): its service since the ranking's base reaches the threshold.
pub(crate) fn demotion_at_s(
    ranking: &impl Ranking,
    state: &State,
    id: u32,
    now_s: u64,
) -> Option<u64> {
    let job = state.job(JobId(id));
    let run = job.run()?;
    let base_acc_s = ranking.base_acc_s(id);
    let service_acc_s = job.attained_at(now_s).saturating_sub(base_acc_s);
    let threshold = *ranking
        .queues()
        .thresholds_acc_s
        .iter()
        .find(|&&t| t > service_acc_s)?;
    let held_acc_s = job.attained_acc_s.saturating_sub(base_acc_s);
    let gang = u64::from(job.spec.gang_size);
    Some(run.started_s + (threshold - held_acc_s.min(threshold)).div_ceil(gang))
}

/// The earliest demotion over every running job (what the index keeps, computed afresh).
pub(crate) fn next_demotion_s(ranking: &impl Ranking, state: &State, now_s: u64) -> Option<u64> {
    state
        .running
        .iter()
        .filter_map(|&id| demotion_at_s(ranking, state, id, now_s))
        .min()
}

impl Ranking for Las {
    fn queues(&self) -> &Las {
        self
    }

    fn base_acc_s(&self, _id: u32) -> u64 {
        0
    }

    fn entry_s(&self, state: &State, id: u32) -> u64 {
        state.job(JobId(id)).submitted_s
    }
}

/// Tiresias-style discretised LAS with an index of running jobs by rank.
#[derive(Clone, Debug, Default)]
pub struct IndexedLas {
    /// The queue thresholds and the reference pass.
    pub queues: Las,
    index: RunningIndex,
}

impl IndexedLas {
    /// LAS with these queue thresholds.
    pub fn new(queues: Las) -> Self {
        IndexedLas {
            queues,
            index: RunningIndex::default(),
        }
    }
}

/// `RunningIndex::filed` of a job that is not in the index.
const NOT_FILED: (u32, u32) = (u32::MAX, u32::MAX);

/// Running jobs by rank, kept up to date from the state's log of starts and stops and a heap of
/// demotion times.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunningIndex {
    /// Every running job by rank.
    by_rank: BTreeSet<RankKey>,
    /// (queue, pool) each job is filed under, by job id (`NOT_FILED` when not running); its key
    /// is (queue, false, entry time, id).
    filed: Vec<(u32, u32)>,
    /// Accelerators held by the filed jobs, per queue and pool.
    held_by_queue: Vec<Vec<u64>>,
    /// Starts and stops taken from the state's log, reused from pass to pass.
    changed: Vec<u32>,
    /// When each running job reaches its next queue (`u64::MAX`: never), by job id.
    demotion_s: Vec<u64>,
    /// (demotion time, id); an entry is current when it matches `demotion_s`.
    demotions: BinaryHeap<Reverse<(u64, u32)>>,
    /// About how many entries of `demotions` are no longer current (their job stopped or was
    /// filed again); when they are most of the heap, they are dropped in one sweep instead of
    /// each costing a pop at its time.
    stale_demotions: usize,
    /// True once the state logs starts and stops for us.
    synced: bool,
}

impl RunningIndex {
    fn grow(&mut self, queues: &Las, state: &State) {
        let jobs = state.jobs.len();
        if self.filed.len() < jobs {
            self.filed.resize(jobs, NOT_FILED);
            self.demotion_s.resize(jobs, u64::MAX);
        }
        if self.held_by_queue.is_empty() {
            let pools = state.cluster.pools.len();
            self.held_by_queue = vec![vec![0; pools]; queues.thresholds_acc_s.len() + 1];
        }
    }

    fn remove(&mut self, ranking: &impl Ranking, state: &State, id: u32) {
        let (queue, pool) = std::mem::replace(&mut self.filed[id as usize], NOT_FILED);
        if (queue, pool) != NOT_FILED {
            let key = (queue as usize, false, ranking.entry_s(state, id), id);
            let removed = self.by_rank.remove(&key);
            debug_assert!(removed, "a filed job is in the index under its key");
            let gang = u64::from(state.job(JobId(id)).spec.gang_size);
            self.held_by_queue[queue as usize][pool as usize] -= gang;
        }
        if std::mem::replace(&mut self.demotion_s[id as usize], u64::MAX) != u64::MAX {
            self.stale_demotions += 1;
        }
    }

    /// Files a running job under its rank at `now_s` and schedules its next demotion.
    fn insert(&mut self, ranking: &impl Ranking, state: &State, id: u32, now_s: u64) {
        let job = state.job(JobId(id));
        let Some(run) = job.run() else { return };
        let service_acc_s = job
            .attained_at(now_s)
            .saturating_sub(ranking.base_acc_s(id));
        let queue = ranking.queues().queue_of(service_acc_s);
        self.by_rank
            .insert((queue, false, ranking.entry_s(state, id), id));
        self.filed[id as usize] = (queue as u32, run.pool.0);
        self.held_by_queue[queue][run.pool.0 as usize] += u64::from(job.spec.gang_size);
        let at_s = demotion_at_s(ranking, state, id, now_s).unwrap_or(u64::MAX);
        self.demotion_s[id as usize] = at_s;
        if at_s != u64::MAX {
            self.demotions.push(Reverse((at_s, id)));
        }
    }

    /// Brings the index up to date at `now_s`: applies logged starts and stops and due demotions.
    pub(crate) fn sync(&mut self, ranking: &impl Ranking, state: &mut State, now_s: u64) {
        self.grow(ranking.queues(), state);
        let mut changed = std::mem::take(&mut self.changed);
        if self.synced {
            if let Some(log) = state.running_log.as_mut() {
                std::mem::swap(log, &mut changed);
            }
        } else {
            self.synced = true;
            state.running_log = Some(Vec::new());
            changed.extend(state.running.iter().copied());
        }
        for &id in &changed {
            self.remove(ranking, state, id);
            // Files the job again if it is (still) running.
            self.insert(ranking, state, id, now_s);
        }
        changed.clear();
        self.changed = changed;
        if self.stale_demotions > 4096 && self.stale_demotions * 2 > self.demotions.len() {
            // Dropping entries that are not current changes nothing the loop below or
            // `next_demotion_s` sees: both skip them.
            let demotion_s = &self.demotion_s;
            self.demotions
                .retain(|&Reverse((at_s, id))| demotion_s[id as usize] == at_s);
            self.stale_demotions = 0;
        }
        while let Some(&Reverse((at_s, id))) = self.demotions.peek() {
            let current = self.demotion_s[id as usize] == at_s;
            if current && at_s > now_s {
                break;
            }
            self.demotions.pop();
            if current {
                self.remove(ranking, state, id);
                self.insert(ranking, state, id, now_s);
            } else {
                self.stale_demotions = self.stale_demotions.saturating_sub(1);
            }
        }
    }

    /// The next demotion, if the index is current (nothing started or stopped since the last
    /// sync) and it is after `now_s`.
    pub(crate) fn next_demotion_s(&self, state: &State, now_s: u64) -> Option<Option<u64>> {
        let current = self.synced && state.running_log.as_ref().is_some_and(Vec::is_empty);
        if !current {
            return None;
        }
        match self.demotions.peek() {
            None => Some(None),
            Some(&Reverse((at_s, _))) if at_s > now_s => Some(Some(at_s)),
            Some(_) => None,
        }
    }

    /// The preemptive LAS pass without tenant guarantees, walking the index: `waiting` are the
    /// waiting jobs' keys in any order.
    pub(crate) fn pass(&self, state: &mut State, mut waiting: Vec<RankKey>, now_s: u64) {
        if waiting.is_empty() {
            return;
        }
        waiting.sort_unstable();
        let pools = state.cluster.pools.len();
        let mut capacity: Vec<u32> = state.cluster.pools.iter().map(|p| p.up_capacity).collect();
        // The running jobs ranked ahead of the first waiting job all keep their accelerators
        // (they fit together, being all running, and nothing is claimed before them): take them
        // as sums, every queue above its queue, and its own queue but for the jobs from the first
        // waiting job on.
        let first = waiting[0];
        for held in self.held_by_queue.iter().take(first.0 + 1) {
            for (pool, &acc) in held.iter().enumerate() {
                capacity[pool] -= acc as u32;
            }
        }
        for &(_, _, _, id) in self.by_rank.range(first..(first.0 + 1, false, 0, 0)) {
            let job = state.job(JobId(id));
            let pool = job.run().expect("indexed jobs run").pool.0 as usize;
            capacity[pool] += job.spec.gang_size;
        }
        let mut victims: Vec<Vec<JobId>> = vec![Vec::new(); pools];
        let mut to_start: Vec<(JobId, PoolId)> = Vec::new();
        // A running job ranked ahead keeps its accelerators if they are still unclaimed in this
        // pass; otherwise it is a candidate victim, as in the full pass.
        let mut claim = |state: &State, capacity: &mut [u32], id: u32| {
            let job = state.job(JobId(id));
            let run = job.run().expect("indexed jobs run");
            let pool = run.pool.0 as usize;
            if capacity[pool] >= job.spec.gang_size {
                capacity[pool] -= job.spec.gang_size;
            } else {
                victims[pool].push(JobId(id));
            }
        };
        let mut running = self.by_rank.range(first..).peekable();
        for &key in &waiting {
            while let Some(&(_, _, _, id)) = running.next_if(|&&r| r < key) {
                claim(state, &mut capacity, id);
            }
            let id = JobId(key.3);
            if let Some(pool) = crate::policy::las::roomiest_pool(state, id, &capacity) {
                capacity[pool.0 as usize] -= state.job(id).spec.gang_size;
                to_start.push((id, pool));
            }
        }
        let mut needed = vec![0u32; pools];
        for &(id, pool) in &to_start {
            needed[pool.0 as usize] += state.job(id).spec.gang_size;
        }
        let preempts = (0..pools).any(|p| needed[p] > state.cluster.pools[p].free && needed[p] > 0);
        if preempts {
            for &(_, _, _, id) in running {
                claim(state, &mut capacity, id);
            }
        }
        crate::policy::las::start_with_victims(state, to_start, &mut victims, now_s);
    }
}

/// The pass's starts when every waiting job fits in the free accelerators of a one-pool cluster
/// (`waiting`: every pending job's key; sorted here): then the pass starts them all in rank
/// order and preempts nothing, whatever the running jobs' ranks, since each waiting job finds at
/// least the free accelerators not yet claimed by the waiting jobs ahead of it. The index is not
/// read, so it need not be brought up to date. `None` otherwise (the full pass decides).
pub(crate) fn starts_in_free(
    state: &State,
    waiting: &mut [RankKey],
) -> Option<Vec<(JobId, PoolId)>> {
    if state.cluster.pools.len() != 1 || waiting.len() != state.pending_count() {
        return None;
    }
    waiting.sort_unstable();
    let mut free = [state.cluster.pools[0].free];
    let mut to_start = Vec::with_capacity(waiting.len());
    for &(_, _, _, id) in waiting.iter() {
        let id = JobId(id);
        let pool = crate::policy::las::roomiest_pool(state, id, &free)?;
        free[0] -= state.job(id).spec.gang_size;
        to_start.push((id, pool));
    }
    Some(to_start)
}

impl Policy for IndexedLas {
    fn name(&self) -> &'static str {
        "tiresias-las"
    }

    fn queue_key(&self, job: &crate::Job, pools: &[(PoolId, f64)]) -> i64 {
        self.queues.queue_key(job, pools)
    }

    fn schedule(&mut self, state: &mut State, now_s: u64) {
        if state.pending_count() == 0 {
            // Nothing waits, so the pass would change nothing and `next_wakeup_s` asks for no
            // wake-up: leave the index to the next pass that needs it (starts and stops stay in
            // the state's log; a job that started and stopped since costs nothing then).
            return;
        }
        if state.has_quotas() {
            self.index.sync(&self.queues, state, now_s);
            self.queues.schedule(state, now_s);
        } else {
            let mut waiting: Vec<RankKey> = state
                .pending_prefix(state.config.max_scan_jobs)
                .into_iter()
                .map(|id| {
                    let job = state.job(id);
                    let queue = self.queues.queue_of(job.attained_at(now_s));
                    (queue, false, job.submitted_s, id.0)
                })
                .collect();
            if let Some(to_start) = starts_in_free(state, &mut waiting) {
                start_with_victims(state, to_start, &mut [Vec::new()], now_s);
                if state.pending_count() == 0 {
                    // As after an idle pass: the index catches up from the log when needed.
                    return;
                }
            } else {
                self.index.sync(&self.queues, state, now_s);
                self.index.pass(state, waiting, now_s);
            }
        }
        // File this pass's starts and preemptions so `next_wakeup_s` can use the index.
        self.index.sync(&self.queues, state, now_s);
    }

    fn next_wakeup_s(&self, state: &State, now_s: u64) -> Option<u64> {
        if state.pending_count() == 0 {
            return None;
        }
        match self.index.next_demotion_s(state, now_s) {
            Some(next) => next,
            None => self.queues.next_wakeup_s(state, now_s),
        }
    }
}
