//! `backfill`: FIFO with EASY backfilling (Lifka 1995; Mu'alem and Feitelson, IEEE TPDS 2001).
//!
//! Jobs start in queue order while they fit. The first job that does not fit gets a reservation:
//! on each of its pools, walk the running jobs by estimated end (from their runtime estimates)
//! until enough accelerators would be free; the earliest such time is the *shadow time* and the
//! accelerators left over then are the *extra*. A later job may start now only if it cannot delay
//! that reservation: it runs on another pool, or its estimated end is before the shadow time, or
//! it fits in the extra (which it then uses up). A job without an estimate can only use the extra.
//! Reservations count accelerators, not nodes, as EASY does; a running job past its estimate is
//! taken to end now.

use crate::cluster::PoolId;
use crate::job::JobId;
use crate::policy::Policy;
use crate::state::State;

/// FIFO with EASY backfill.
#[derive(Clone, Debug, Default)]
pub struct Backfill;

/// The head job's reservation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Reservation {
    pub pool: PoolId,
    pub shadow_s: u64,
    pub extra: u32,
}

impl Policy for Backfill {
    fn name(&self) -> &'static str {
        "backfill"
    }

    fn schedule(&mut self, state: &mut State, now_s: u64) {
        state.keep_running_ends();
        let mut reservation: Option<Reservation> = None;
        state.scan_pending(|state, id| match reservation.as_mut() {
            None => {
                // With no pool able to hold the head right now (nodes down) there is nothing to
                // protect: the reservation stays `None` and the next job is a head in turn.
                if !state.start_anywhere(id, now_s) {
                    reservation = reserve(state, id, now_s);
                }
            }
            Some(reservation) => backfill_one(state, id, now_s, reservation),
        });
    }
}

/// Starts `id` now if that cannot delay the reservation.
fn backfill_one(state: &mut State, id: JobId, now_s: u64, reservation: &mut Reservation) {
    let gang = state.job(id).spec.gang_size;
    let end_s = estimated_end_if_started(state, id, now_s);
    for (pool, _) in state.pools_by_free(id) {
        if state.cluster.pools[pool.0 as usize].free < gang {
            break;
        }
        if pool != reservation.pool || end_s <= reservation.shadow_s && end_s != u64::MAX {
            if state.start(id, pool, now_s) {
                return;
            }
        } else if gang <= reservation.extra && state.start(id, pool, now_s) {
            reservation.extra -= gang;
            return;
        }
    }
}

/// When the job would end by its estimate if started now (`u64::MAX` without an estimate).
fn estimated_end_if_started(state: &State, id: JobId, now_s: u64) -> u64 {
    let job = state.job(id);
    let Some(estimate_s) = job.spec.runtime_estimate_s else {
        return u64::MAX;
    };
    let delay_s = if job.first_start_s.is_some() {
        state.config.restart_delay_s
    } else {
        0
    };
    let left = (1.0 - job.done_units / job.spec.work.total_units).clamp(0.0, 1.0);
    now_s + delay_s + (estimate_s as f64 * left).ceil() as u64
}

/// The earliest reservation for the blocked head job over its pools.
pub(crate) fn reserve(state: &State, head: JobId, now_s: u64) -> Option<Reservation> {
    let gang = state.job(head).spec.gang_size;
    let mut best: Option<Reservation> = None;
    for &(pool, _) in state.pools_for(head) {
        let p = &state.cluster.pools[pool.0 as usize];
        if p.up_capacity < gang {
            continue;
        }
        let mut available = p.free;
        let mut found = None;
        for (end_s, id) in state.running_by_estimated_end(pool) {
            available += state.job(id).spec.gang_size;
            if available >= gang {
                found = Some(Reservation {
                    pool,
                    shadow_s: end_s.max(now_s),
                    extra: available - gang,
                });
                break;
            }
        }
        if let Some(candidate) = found
            && best.is_none_or(|b| candidate.shadow_s < b.shadow_s)
        {
            best = Some(candidate);
        }
    }
    best
}
