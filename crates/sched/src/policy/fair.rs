//! `fair`: weighted fair share across tenants. On each pass the tenant holding the fewest
//! accelerators per unit of weight goes next with its oldest waiting job, which starts if it fits
//! anywhere; a tenant whose next job does not fit has its later jobs tried (up to the scan limit).
//! Guarantees and reclaim come from the scheduling core (see `tenant.rs`), so `fair` with quotas
//! is quota fair share: guaranteed capacity first, idle capacity shared by weight. It does not
//! preempt for fairness alone.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::job::JobId;
use crate::policy::Policy;
use crate::state::State;

/// (share key, tenant, cursor into the tenant's queue) for the next-tenant heap.
type TenantTurn = (u64, usize, Option<(u64, u32)>);

/// Weighted fair share.
#[derive(Clone, Debug, Default)]
pub struct Fair;

impl Policy for Fair {
    fn name(&self) -> &'static str {
        "fair"
    }

    fn schedule(&mut self, state: &mut State, now_s: u64) {
        state.keep_tenant_queues();
        let share = |state: &State, tenant: usize| {
            let t = &state.tenants[tenant];
            // Integer key so the heap order is total and deterministic.
            (f64::from(t.used_total) / t.weight * 1_000.0) as u64
        };
        let mut heap: BinaryHeap<Reverse<TenantTurn>> = (0..state.tenants.len())
            .filter(|&t| !state.pending_by_tenant[t].is_empty())
            .map(|t| Reverse((share(state, t), t, None)))
            .collect();
        let mut budget = state.config.max_scan_jobs;
        while let Some(Reverse((_, tenant, cursor))) = heap.pop() {
            if budget == 0 || state.cluster_full() {
                break;
            }
            budget -= 1;
            let queue = &state.pending_by_tenant[tenant];
            let next = match cursor {
                None => queue.first().copied(),
                Some(c) => queue
                    .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                    .next()
                    .copied(),
            };
            let Some(entry) = next else { continue };
            // On success the job leaves the queue and the cursor stays; on failure it moves past.
            let next_cursor = if state.start_anywhere(JobId(entry.1), now_s) {
                cursor
            } else {
                Some(entry)
            };
            heap.push(Reverse((share(state, tenant), tenant, next_cursor)));
        }
    }
}
