//! Scheduling policies behind one trait, named on the command line as given (`NAMES`; older names
//! in `ALIASES`).

mod backfill;
mod fair;
mod fifo;
mod gavel;
mod las;
mod las_indexed;
mod lp;
mod rounds;
mod tiresias_2d;

pub use backfill::Backfill;
pub use fair::Fair;
pub use fifo::{Fifo, Sjf};
pub use gavel::Gavel;
pub use las::Las;
pub use las_indexed::IndexedLas;
pub use lp::{Allocation, FinishTimeProblem, MaxMinProblem, proportional_throughputs};
pub use rounds::{Objective, RoundBased};
pub use tiresias_2d::TiresiasTwoDLas;

use crate::SchedError;
use crate::cluster::PoolId;
use crate::job::Job;
use crate::state::State;

/// A scheduling policy: orders the queue and decides what starts and what is preempted.
pub trait Policy: Send {
    /// The name used on the command line.
    fn name(&self) -> &'static str;

    /// Where a newly submitted job sits in the pending queue (smaller first; ties by submit time,
    /// then id). The default orders by priority, higher first.
    fn queue_key(&self, job: &Job, _pools: &[(PoolId, f64)]) -> i64 {
        -i64::from(job.spec.priority)
    }

    /// Starts and preempts jobs through `state`; the decisions are recorded there.
    fn schedule(&mut self, state: &mut State, now_s: u64);

    /// When the policy wants another pass even if no event happens.
    fn next_wakeup_s(&self, _state: &State, _now_s: u64) -> Option<u64> {
        None
    }

    /// True when a pass at an instant other than the policy's own wake-ups changes nothing (a
    /// round-based policy acts only at round boundaries). A driver may then skip instants that
    /// carry no change of state, such as a preempted run's leftover completion.
    fn acts_only_at_wakeups(&self) -> bool {
        false
    }
}

/// Policy names, in the order the command line lists them. The `gavel-*` policies are Gavel's
/// round-based LP policies (`rounds.rs`); `tiresias-las` is Tiresias's discretised 2D-LAS
/// (`las_indexed.rs`) and `tiresias-2d-las` the same with Tiresias's starvation guard
/// (`tiresias_2d.rs`); `gavel-greedy` is the earlier greedy approximation of Gavel's
/// heterogeneity-aware LAS (`gavel.rs`), kept for clusters too large for a per-job LP.
pub const NAMES: [&str; 12] = [
    "fifo",
    "backfill",
    "sjf",
    "fair",
    "tiresias-las",
    "gavel-max-min-fairness",
    "gavel-max-min-fairness-hetero",
    "gavel-finish-time-fairness",
    "gavel-finish-time-fairness-hetero",
    "gavel-makespan",
    "gavel-greedy",
    "tiresias-2d-las",
];

/// Older names and what they now mean: `las` stays Tiresias's LAS (its behaviour is unchanged)
/// and `gavel` is Gavel's heterogeneity-aware max-min fairness ("LAS w/ Gavel" in the paper).
pub const ALIASES: [(&str, &str); 2] = [
    ("las", "tiresias-las"),
    ("gavel", "gavel-max-min-fairness-hetero"),
];

/// The policy with default settings for a command-line name (or alias).
pub fn by_name(name: &str) -> Result<Box<dyn Policy>, SchedError> {
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, to)| *to);
    let round = |name, objective| -> Box<dyn Policy> { Box::new(RoundBased::new(name, objective)) };
    Ok(match canonical {
        "fifo" => Box::new(Fifo),
        "backfill" => Box::new(Backfill),
        "sjf" => Box::new(Sjf),
        "tiresias-las" => Box::new(IndexedLas::default()),
        "tiresias-2d-las" => Box::new(TiresiasTwoDLas::default()),
        "fair" => Box::new(Fair),
        "gavel-greedy" => Box::new(Gavel::default()),
        "gavel-max-min-fairness" => round("gavel-max-min-fairness", Objective::MaxMinFairness),
        "gavel-max-min-fairness-hetero" => round(
            "gavel-max-min-fairness-hetero",
            Objective::MaxMinFairnessHetero,
        ),
        "gavel-finish-time-fairness" => {
            round("gavel-finish-time-fairness", Objective::FinishTimeFairness)
        }
        "gavel-finish-time-fairness-hetero" => round(
            "gavel-finish-time-fairness-hetero",
            Objective::FinishTimeFairnessHetero,
        ),
        "gavel-makespan" => round("gavel-makespan", Objective::Makespan),
        _ => {
            return Err(SchedError::UnknownPolicy {
                given: name.to_string(),
                known: format!(
                    "{}, gavel (= gavel-max-min-fairness-hetero)",
                    NAMES.join(", ")
                ),
            });
        }
    })
}
