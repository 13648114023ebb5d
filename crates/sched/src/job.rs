//! Jobs: what is submitted (`JobSpec`, `Work`), and the scheduler's record of each job, with the
//! progress and checkpoint arithmetic of a run.
//!
//! Time is whole seconds. A run holds its gang from `started_s`; after a restart it first spends
//! `restart_delay_s` getting going, then computes. With a checkpoint interval `I` and checkpoint
//! cost `C`, a run alternates `I` seconds of compute with `C` seconds of writing a checkpoint
//! (no checkpoint after the last stretch). When a run is cut short by a failure, compute since
//! the last completed checkpoint is lost; a preemption checkpoints first when
//! `SchedConfig::checkpoint_on_preempt` is set (as Tiresias and Gavel assume), so loses nothing.

use crate::cluster::{NodeId, PoolId};
use crate::rates::Rates;
use serde::{Deserialize, Serialize};

/// Dense job handle returned by `Scheduler::submit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub u32);

/// How much work a job has and how fast each accelerator type does it on the whole gang.
///
/// The job finishes after `total_units / units_per_s[type]` seconds of compute on its gang of that
/// type; a type that is absent (or has a non-positive rate) cannot run the job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub total_units: f64,
    /// Emptied in the scheduler's record once the job finishes (its rates stay available per
    /// pool through `State::pools_for`).
    pub units_per_s: Rates,
}

impl Work {
    /// Work given as a duration on one reference type: `duration_s` units at rate 1 there.
    pub fn duration_on(accelerator: &str, duration_s: f64) -> Self {
        Work {
            total_units: duration_s,
            units_per_s: Rates::from([(accelerator.to_string(), 1.0)]),
        }
    }

    /// The fastest rate over the types that can run the job, units/s.
    pub fn best_rate(&self) -> f64 {
        self.units_per_s.values().copied().fold(0.0, f64::max)
    }

    /// Compute seconds on the fastest type (the job's ideal run time).
    pub fn ideal_runtime_s(&self) -> f64 {
        self.total_units / self.best_rate()
    }
}

/// What is submitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Emptied in the scheduler's record once the job finishes, like `tenant` and the work's
    /// rates (a long replay would otherwise keep a million copies the driver already has).
    pub name: String,
    /// Accelerators needed at once, all of one type.
    pub gang_size: u32,
    pub tenant: String,
    /// Higher first, where a policy uses priority (fifo, backfill, sjf).
    pub priority: i32,
    pub work: Work,
    /// What the user said about run time, seconds (backfill plans on it).
    pub runtime_estimate_s: Option<u64>,
    /// Seconds of compute between checkpoints; `None` means no checkpoints.
    pub checkpoint_interval_s: Option<u64>,
    /// Seconds one checkpoint takes to write.
    pub checkpoint_cost_s: u64,
}

/// A job's current run.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub pool: PoolId,
    pub allocation: Vec<(NodeId, u32)>,
    pub started_s: u64,
    /// When compute begins (after any restart delay).
    pub compute_start_s: u64,
    /// Units/s on this pool's type.
    pub units_per_s: f64,
    pub expected_finish_s: u64,
    /// When backfill expects the run to end, from the runtime estimate (`u64::MAX`: unknown).
    pub estimated_end_s: u64,
}

/// Where a job is.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Pending,
    /// Boxed so that the many finished and waiting jobs of a long replay do not each carry the
    /// space of a run.
    Running(Box<Run>),
    Finished {
        finished_s: u64,
    },
    /// Cancelled by the driver (`Scheduler::cancel`), while pending or running; never runs again.
    Cancelled {
        cancelled_s: u64,
    },
}

/// The scheduler's record of a job.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: JobId,
    pub spec: JobSpec,
    pub tenant: usize,
    pub submitted_s: u64,
    pub status: Status,
    /// Units of work safely done (checkpointed or completed).
    pub done_units: f64,
    /// Accelerator-seconds held so far over finished runs (LAS's attained service).
    pub attained_acc_s: u64,
    /// Useful accelerator-seconds (compute kept) over finished runs.
    pub useful_acc_s: u64,
    /// Compute seconds thrown away by failures (and by preemption without checkpoint).
    pub lost_compute_s: u64,
    pub lost_units: f64,
    pub preemptions: u32,
    pub failures: u32,
    pub first_start_s: Option<u64>,
    /// When the job last became pending (submit or interruption).
    pub pending_since_s: u64,
}

impl Job {
    /// Runs begun so far beyond the first.
    pub fn restarts(&self) -> u32 {
        self.preemptions + self.failures
    }

    /// The current run, if running.
    pub fn run(&self) -> Option<&Run> {
        match &self.status {
            Status::Running(run) => Some(run.as_ref()),
            _ => None,
        }
    }

    /// Attained service including the current run up to `now_s`, accelerator-seconds.
    pub fn attained_at(&self, now_s: u64) -> u64 {
        let current = self.run().map_or(0, |r| now_s.saturating_sub(r.started_s));
        self.attained_acc_s + current * u64::from(self.spec.gang_size)
    }

    /// Compute seconds still needed at `units_per_s`.
    pub fn remaining_compute_s(&self, units_per_s: f64) -> u64 {
        let remaining = (self.spec.work.total_units - self.done_units).max(0.0);
        // The 1e-9 keeps float noise from adding a whole second.
        (remaining / units_per_s - 1e-9).ceil().max(0.0) as u64
    }

    /// Wall seconds a run needs for `compute_s` of compute, checkpoints included.
    pub fn wall_for_compute_s(&self, compute_s: u64) -> u64 {
        match self.spec.checkpoint_interval_s {
            Some(interval) if interval > 0 && compute_s > 0 => {
                compute_s + (compute_s.div_ceil(interval) - 1) * self.spec.checkpoint_cost_s
            }
            _ => compute_s,
        }
    }

    /// (compute seconds done, compute seconds covered by a completed checkpoint) after `wall_s`
    /// seconds of a run's compute phase.
    pub fn compute_after_wall_s(&self, wall_s: u64) -> (u64, u64) {
        match self.spec.checkpoint_interval_s {
            Some(interval) if interval > 0 => {
                let cycle = interval + self.spec.checkpoint_cost_s;
                let cycles = wall_s / cycle;
                let rest = wall_s % cycle;
                (cycles * interval + rest.min(interval), cycles * interval)
            }
            _ => (wall_s, 0),
        }
    }
}
