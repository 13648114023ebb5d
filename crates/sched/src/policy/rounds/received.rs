//! The time each job of the allocation has received on each type since the allocation was
//! computed, kept incrementally: a running job's time is added only when a round needs the
//! priorities (or the run ends), not every round, so a round that hands out nothing by priority
//! costs nothing per running job.
//!
//! The figures are those of Gavel's per-round accounting (`_update_priorities` adds each running
//! job's round to its time on its type): a run counts from the later of its start and the last
//! reset, up to the last round at which it was still running. A run the simulation ends between
//! two rounds (completion, failure, cancellation) therefore counts up to the round before its
//! end, as when every round added its running jobs' time.

use crate::job::JobId;
use crate::state::State;

/// `since_s` of a row whose job is not running.
const IDLE: u64 = u64::MAX;

/// Seconds received per (row, pool), with the uncounted part of each running row's current run.
#[derive(Clone, Debug, Default)]
pub(super) struct Received {
    pools: usize,
    /// Seconds per (row, pool), row-major, counted up to each running row's `since_s`.
    pub(super) seconds: Vec<f64>,
    /// `ln` of `seconds`, recomputed only where `seconds` changed.
    pub(super) ln: Vec<f64>,
    /// Per row: from when the running job's time on `pool[row]` is not yet counted (`IDLE` when
    /// it is not running).
    since_s: Vec<u64>,
    pool: Vec<u32>,
    /// Rows whose job is running.
    running_rows: usize,
}

impl Received {
    /// Gavel's `_reset_time_run_so_far`: every job of `rows` starts at `start_s` on each type,
    /// and the running ones count from `now_s`.
    pub(super) fn reset(
        &mut self,
        state: &State,
        rows: &[u32],
        pools: usize,
        start_s: f64,
        now_s: u64,
    ) {
        self.pools = pools;
        let cells = rows.len() * pools;
        self.seconds.clear();
        self.seconds.resize(cells, start_s);
        self.ln.clear();
        self.ln.resize(cells, start_s.ln());
        self.since_s.clear();
        self.since_s.resize(rows.len(), IDLE);
        self.pool.clear();
        self.pool.resize(rows.len(), 0);
        self.running_rows = 0;
        for (row, &id) in rows.iter().enumerate() {
            if let Some(run) = state.job(JobId(id)).run() {
                self.started(row, run.pool.0, now_s);
            }
        }
    }

    /// Rows whose job is running.
    pub(super) fn running_rows(&self) -> usize {
        self.running_rows
    }

    pub(super) fn is_running(&self, row: usize) -> bool {
        self.since_s[row] != IDLE
    }

    /// Row `row`'s job started on `pool` at `now_s`.
    pub(super) fn started(&mut self, row: usize, pool: u32, now_s: u64) {
        debug_assert!(!self.is_running(row), "row {row} started twice");
        self.since_s[row] = now_s;
        self.pool[row] = pool;
        self.running_rows += 1;
    }

    /// Row `row`'s run ended; it counts up to `until_s`.
    pub(super) fn stopped(&mut self, row: usize, until_s: u64) {
        if !self.is_running(row) {
            return;
        }
        self.count(row, until_s);
        self.since_s[row] = IDLE;
        self.running_rows -= 1;
    }

    /// Counts every running row's time up to `now_s`.
    pub(super) fn catch_up(&mut self, now_s: u64) {
        for row in 0..self.since_s.len() {
            if self.is_running(row) {
                self.count(row, now_s);
                self.since_s[row] = now_s;
            }
        }
    }

    /// Adds row `row`'s uncounted time up to `until_s` (its ln only where it changes).
    fn count(&mut self, row: usize, until_s: u64) {
        let i = row * self.pools + self.pool[row] as usize;
        let held_s = until_s.saturating_sub(self.since_s[row]);
        if held_s > 0 {
            self.seconds[i] += held_s as f64;
            self.ln[i] = self.seconds[i].ln();
        }
    }
}
