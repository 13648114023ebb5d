//! `fifo`: strict first come, first served (by priority, then submit time); the head of the queue
//! blocks everything behind it. `sjf`: shortest job first on the true run time (an oracle
//! reference no real scheduler has), greedy: a job that does not fit is skipped. Neither preempts.

use crate::cluster::PoolId;
use crate::job::{Job, JobId};
use crate::policy::Policy;
use crate::state::State;

/// Strict FIFO.
#[derive(Clone, Debug, Default)]
pub struct Fifo;

impl Policy for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }

    fn schedule(&mut self, state: &mut State, now_s: u64) {
        while let Some((_, _, id)) = state.next_pending(None) {
            if !state.start_anywhere(JobId(id), now_s) {
                break;
            }
        }
    }
}

/// Shortest job first on the ideal run time (compute seconds on the job's fastest type).
#[derive(Clone, Debug, Default)]
pub struct Sjf;

impl Policy for Sjf {
    fn name(&self) -> &'static str {
        "sjf"
    }

    fn queue_key(&self, job: &Job, pools: &[(PoolId, f64)]) -> i64 {
        let best_rate = pools.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        (job.spec.work.total_units / best_rate)
            .ceil()
            .min(i64::MAX as f64) as i64
    }

    fn schedule(&mut self, state: &mut State, now_s: u64) {
        state.scan_pending(|state, id| {
            state.start_anywhere(id, now_s);
        });
    }
}
