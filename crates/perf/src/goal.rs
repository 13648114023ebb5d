//! Turning a training goal (model, tokens) into a rate per accelerator type, for the scheduler.

use crate::search::{self, Constraints};
use crate::train::TrainSetup;
use suanli_catalog::{Accelerator, Model};

/// A model-plus-token goal as the scheduler's rates: for a gang of `gang_size` accelerators of
/// each type, the training tokens per second of [`best_training_tokens_per_s`], keyed by type id;
/// types the model cannot train on are left out. The scheduler's `Work` is then
/// `{ total_units: tokens, units_per_s: token_goal_rates(..) }` (this adapter lives here so that
/// `suanli-sched` depends on nothing but itself).
pub fn token_goal_rates(
    model: &Model,
    accelerators: &[&Accelerator],
    gang_size: u32,
) -> std::collections::BTreeMap<String, f64> {
    accelerators
        .iter()
        .filter_map(|a| {
            best_training_tokens_per_s(model, a, gang_size).map(|rate| (a.id.clone(), rate))
        })
        .filter(|(_, rate)| *rate > 0.0)
        .collect()
}

/// Training tokens per second that `count` accelerators of one type reach on `model` with the
/// best layout the planner finds (bf16, 4096-token sequences, the largest global batch of at
/// most 1024 sequences that the count divides); `None` when the model cannot be trained on them.
pub fn best_training_tokens_per_s(
    model: &Model,
    accelerator: &Accelerator,
    count: u32,
) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let mut setup = TrainSetup::new(model.clone(), accelerator.clone(), count as u64);
    setup.per_node = setup.per_node.min(count);
    setup.global_batch = (1024 / count as u64).max(1) * count as u64;
    let found = search::search(&setup, &Constraints::default(), 1).ok()?;
    found.top.first().map(|best| best.tokens_per_s)
}
