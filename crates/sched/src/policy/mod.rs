//! Scheduling policies behind one trait, named on the command line as given: `fifo`, `backfill`,
//! `sjf`, `las`, `fair`, `gavel`.

mod backfill;
mod fair;
mod fifo;
mod gavel;
mod las;
mod las_indexed;

pub use backfill::Backfill;
pub use fair::Fair;
pub use fifo::{Fifo, Sjf};
pub use gavel::Gavel;
pub use las::Las;
pub use las_indexed::IndexedLas;

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
}

/// Policy names, in the order the command line lists them.
pub const NAMES: [&str; 6] = ["fifo", "backfill", "sjf", "las", "fair", "gavel"];

/// The policy with default settings for a command-line name.
pub fn by_name(name: &str) -> Result<Box<dyn Policy>, SchedError> {
    Ok(match name {
        "fifo" => Box::new(Fifo),
        "backfill" => Box::new(Backfill),
        "sjf" => Box::new(Sjf),
        "las" => Box::new(IndexedLas::default()),
        "fair" => Box::new(Fair),
        "gavel" => Box::new(Gavel::default()),
        _ => {
            return Err(SchedError::UnknownPolicy {
                given: name.to_string(),
                known: NAMES.join(", "),
            });
        }
    })
}
