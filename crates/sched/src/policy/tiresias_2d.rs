//! `tiresias-2d-las`: Tiresias's discretised 2D-LAS with its starvation guard (Gu et al.,
//! NSDI'19, section 4.2; the authors' simulator `SymbioticLab/Tiresias`, `simulator/run_sim.py`,
//! `dlas_sim_jobs(gputime=True, solve_starvation=PROMOTEKNOB)`).
//!
//! Jobs are ranked as in [`Las`] by queue (attained accelerator-seconds, "2D" = time x GPUs), but
//! the service that decides the queue is counted from the job's last promotion, and within a
//! queue running jobs come before waiting ones, as in the authors' simulator.
//! The guard: a waiting job that has run since its last promotion and sits below the top queue is
//! promoted back to the top queue once the time it has waited since then reaches `promote_knob`
//! times the time it has run since then (`last_pending_time >= executed_time * solve_starvation`
//! in `run_sim.py`); promotion resets both counters. Without the guard (knob 0) this is
//! `tiresias-las`. Promotions are checked on every pass and the policy asks to be woken at the
//! next one, as the authors' simulator does with its `next_job_jump` event.
//!
//! Running jobs are kept in the index of [`crate::policy::IndexedLas`] (their rank changes only
//! when they cross a threshold: promotions touch waiting jobs only), so a pass costs the waiting
//! jobs and the running jobs ranked among them, not every running job. With tenant guarantees
//! the pass re-ranks everything ([`preemptive_pass`]).

use crate::cluster::PoolId;
use crate::job::JobId;
use crate::policy::las::{preemptive_pass, roomiest_pool, start_with_victims};
use crate::policy::las_indexed::{RankKey, Ranking, RunningIndex, starts_in_free};
use crate::policy::{Las, Policy};
use crate::state::State;

/// One job's promotion bookkeeping.
#[derive(Clone, Copy, Debug, Default)]
struct Promotion {
    /// Attained accelerator-seconds at the last promotion (0: never promoted).
    base_acc_s: u64,
    /// When the last promotion happened (`None`: never; the count starts at submission).
    promoted_s: Option<u64>,
    /// Seconds waited since the last promotion, in waiting spells that ended.
    waited_s: u64,
}

/// Promotion bookkeeping of the jobs that have any (promoted, or restarted after a wait), by job
/// id; the others count from submission with nothing waited. Kept sparse: in a long replay few
/// jobs are ever preempted.
#[derive(Clone, Debug, Default)]
struct Promotions(std::collections::HashMap<u32, Promotion>);

/// Tiresias 2D-LAS with promotion of starving jobs.
#[derive(Clone, Debug)]
pub struct TiresiasTwoDLas {
    /// Queue thresholds (accelerator-seconds of service since the last promotion).
    pub queues: Las,
    /// A waiting job is promoted when it has waited this many times as long as it ran since its
    /// last promotion. The authors sweep 1 to 1000 (`dlas-gpu-<knob>` in `run_sim.py`); 0 turns
    /// the guard off.
    pub promote_knob: f64,
    promotions: Promotions,
    index: RunningIndex,
}

/// The 2D-LAS rank of running jobs, for the index: service since the last promotion, ranked by
/// the time of that promotion (or submission).
struct TwoDRanking<'a> {
    queues: &'a Las,
    promotions: &'a Promotions,
}

impl Ranking for TwoDRanking<'_> {
    fn queues(&self) -> &Las {
        self.queues
    }

    fn base_acc_s(&self, id: u32) -> u64 {
        self.promotions.base_acc_s(JobId(id))
    }

    fn entry_s(&self, state: &State, id: u32) -> u64 {
        self.promotions.since_s(state, JobId(id))
    }
}

impl Default for TiresiasTwoDLas {
    fn default() -> Self {
        TiresiasTwoDLas::new(Las::default(), 8.0)
    }
}

impl Promotions {
    fn of(&self, id: JobId) -> Promotion {
        self.0.get(&id.0).copied().unwrap_or_default()
    }

    fn base_acc_s(&self, id: JobId) -> u64 {
        self.of(id).base_acc_s
    }

    /// When the current count started: the last promotion, or submission.
    fn since_s(&self, state: &State, id: JobId) -> u64 {
        self.of(id)
            .promoted_s
            .unwrap_or_else(|| state.job(id).submitted_s)
    }

    fn waited_s(&self, id: JobId) -> u64 {
        self.of(id).waited_s
    }
}

impl TiresiasTwoDLas {
    /// 2D-LAS with these queues and promotion knob (0: no starvation guard).
    pub fn new(queues: Las, promote_knob: f64) -> Self {
        TiresiasTwoDLas {
            queues,
            promote_knob,
            promotions: Promotions::default(),
            index: RunningIndex::default(),
        }
    }

    /// The reference pass: re-ranks every running and waiting job (used with tenant guarantees,
    /// which decide per pass which running jobs count).
    fn full_pass(&self, state: &mut State, now_s: u64) {
        let order = |state: &State, id: JobId| {
            let queue = self.queues.queue_of(self.service_acc_s(state, id, now_s));
            let waiting = state.job(id).run().is_none();
            (queue, waiting, self.promotions.since_s(state, id), id.0)
        };
        preemptive_pass(state, now_s, order, roomiest_pool);
    }

    /// Brings the index of running jobs up to date.
    fn sync(&mut self, state: &mut State, now_s: u64) {
        let ranking = TwoDRanking {
            queues: &self.queues,
            promotions: &self.promotions,
        };
        self.index.sync(&ranking, state, now_s);
    }

    /// Service since the last promotion, accelerator-seconds.
    fn service_acc_s(&self, state: &State, id: JobId, now_s: u64) -> u64 {
        let base = self.promotions.base_acc_s(id);
        state.job(id).attained_at(now_s).saturating_sub(base)
    }

    /// Seconds a waiting job has waited since its last promotion while it had service (the
    /// current spell included), and the wall seconds it ran since then.
    fn starvation(&self, state: &State, id: JobId, now_s: u64) -> Option<(u64, u64)> {
        if state.job(id).run().is_some() {
            return None;
        }
        self.wait_and_run_s(state, id, now_s)
    }

    /// The count behind [`Self::starvation`] for a job whose waiting spell ends at `now_s`
    /// (still waiting, or started in this pass): `None` if it has not run since its last
    /// promotion.
    fn wait_and_run_s(&self, state: &State, id: JobId, now_s: u64) -> Option<(u64, u64)> {
        let job = state.job(id);
        let ran_acc_s = job
            .attained_acc_s
            .saturating_sub(self.promotions.base_acc_s(id));
        if ran_acc_s == 0 {
            return None;
        }
        let spell_start_s = job.pending_since_s.max(self.promotions.since_s(state, id));
        let waited_s = self.promotions.waited_s(id) + now_s.saturating_sub(spell_start_s);
        Some((waited_s, ran_acc_s / u64::from(job.spec.gang_size)))
    }

    /// When a waiting job will be promoted, if it can be.
    fn promotion_at_s(&self, state: &State, id: JobId, now_s: u64) -> Option<u64> {
        if self.promote_knob <= 0.0
            || self.queues.queue_of(self.service_acc_s(state, id, now_s)) == 0
        {
            return None;
        }
        let (waited_s, run_s) = self.starvation(state, id, now_s)?;
        let limit_s = (run_s as f64 * self.promote_knob).ceil() as u64;
        Some(now_s + limit_s.saturating_sub(waited_s))
    }

    /// The waiting jobs of `waiting` whose wait has reached its limit.
    fn starving(&self, state: &State, waiting: &[JobId], now_s: u64) -> Vec<JobId> {
        waiting
            .iter()
            .copied()
            .filter(|&id| {
                self.promotion_at_s(state, id, now_s)
                    .is_some_and(|at| at <= now_s)
            })
            .collect()
    }

    /// Promotes `starving` (from [`Self::starving`]) at `now_s`.
    fn promote(&mut self, state: &State, starving: &[JobId], now_s: u64) {
        for &id in starving {
            let promotion = Promotion {
                base_acc_s: state.job(id).attained_acc_s,
                promoted_s: Some(now_s),
                waited_s: 0,
            };
            self.promotions.0.insert(id.0, promotion);
        }
    }

    /// The waiting jobs' ranks: within a queue Tiresias keeps running jobs ahead of waiting ones
    /// (it moves waiting jobs to the end of their queue after each pass), so a waiting job never
    /// preempts a running job of its own queue; then by when the job entered the count
    /// (submission or last promotion: a promoted job is appended to the top queue).
    fn waiting_keys(&self, state: &State, waiting: &[JobId], now_s: u64) -> Vec<RankKey> {
        waiting
            .iter()
            .map(|&id| {
                let queue = self.queues.queue_of(self.service_acc_s(state, id, now_s));
                (queue, true, self.promotions.since_s(state, id), id.0)
            })
            .collect()
    }
}

impl Policy for TiresiasTwoDLas {
    fn name(&self) -> &'static str {
        "tiresias-2d-las"
    }

    fn queue_key(&self, _job: &crate::Job, _pools: &[(PoolId, f64)]) -> i64 {
        0
    }

    fn schedule(&mut self, state: &mut State, now_s: u64) {
        if state.pending_count() == 0 {
            // Nothing waits: no promotion, no start, no wake-up; the index catches up on the
            // state's log at the next pass that needs it (as in `IndexedLas`).
            return;
        }
        let waiting_before: Vec<JobId> = state.pending_prefix(state.config.max_scan_jobs);
        // Which jobs to promote depends on the state and the promotions, not on the index; the
        // index is synced before any promotion (it finds a filed job by its promotion time).
        let starving = self.starving(state, &waiting_before, now_s);
        let mut shortcut = None;
        if !state.has_quotas() && starving.is_empty() {
            let mut waiting = self.waiting_keys(state, &waiting_before, now_s);
            shortcut = starts_in_free(state, &mut waiting);
        }
        if let Some(to_start) = shortcut {
            // Every waiting job fits in the free accelerators of the one pool: the pass would
            // start them in rank order and preempt nothing, so the index is not read.
            start_with_victims(state, to_start, &mut [Vec::new()], now_s);
        } else {
            self.sync(state, now_s);
            self.promote(state, &starving, now_s);
            if state.has_quotas() {
                self.full_pass(state, now_s);
            } else {
                let waiting = self.waiting_keys(state, &waiting_before, now_s);
                self.index.pass(state, waiting, now_s);
            }
        }
        // File this pass's starts and preemptions so `next_wakeup_s` can use the index (unless
        // nothing waits: then the index catches up from the log at the next pass that needs it).
        if state.pending_count() > 0 {
            self.sync(state, now_s);
        }
        // Close the waiting spells of the jobs that started in this pass.
        for id in waiting_before {
            if state.job(id).run().is_some()
                && let Some((waited_s, _)) = self.wait_and_run_s(state, id, now_s)
            {
                self.promotions.0.entry(id.0).or_default().waited_s = waited_s;
            }
        }
    }

    fn next_wakeup_s(&self, state: &State, now_s: u64) -> Option<u64> {
        if state.pending_count() == 0 {
            return None;
        }
        let demotion = match self.index.next_demotion_s(state, now_s) {
            Some(next) => next,
            None => {
                let ranking = TwoDRanking {
                    queues: &self.queues,
                    promotions: &self.promotions,
                };
                crate::policy::las_indexed::next_demotion_s(&ranking, state, now_s)
            }
        };
        let promotion = state
            .pending_prefix(state.config.max_scan_jobs)
            .into_iter()
            .filter_map(|id| self.promotion_at_s(state, id, now_s))
            .min();
        demotion.into_iter().chain(promotion).min()
    }
}
