//! The round's hand-out: (job, type) pairs ranked by Gavel's priority, accelerators handed out
//! in that order; and the shortcut when every waiting job fits.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::RoundBased;
use crate::job::JobId;
use crate::state::State;

impl RoundBased {
    /// Which pool each job runs on this round: (job, pool) in job order. `active` holds the jobs
    /// that are running or waiting now (the allocation may be older).
    pub(super) fn plan(&mut self, state: &State, active: &[u32], now_s: u64) -> Vec<(u32, usize)> {
        let elapsed_s = (now_s.saturating_sub(self.reset_s) as f64).max(self.round_s as f64);
        let elapsed_ln = elapsed_s.ln();
        // (priority class, -ln priority, job, pool), packed into one integer in that order:
        // class 0 are the (job, type) pairs the allocation gives time, by priority; class 1 the
        // pairs at priority 0, oldest job first. Priorities within 1e-5 of each other (solver
        // noise) tie, and ties go to the older job (`active` is in id order, so its index orders
        // jobs as their ids do).
        let mut keys = std::mem::take(&mut self.scratch_keys);
        keys.clear();
        let mut min_gang = u32::MAX;
        let mut job_pools = std::mem::take(&mut self.job_pools);
        let mut gangs = Vec::with_capacity(active.len());
        let mut usable: Vec<usize> = Vec::new();
        // `active` and `self.active` are both ascending: walk them together for the rows.
        let mut cursor = 0;
        for (index, &id) in active.iter().enumerate() {
            while cursor < self.active.len() && self.active[cursor] < id {
                cursor += 1;
            }
            let row = self
                .active
                .get(cursor)
                .is_some_and(|&a| a == id)
                .then_some(cursor);
            let gang = pools_of(&mut job_pools, state, id, &mut usable);
            gangs.push(gang);
            min_gang = min_gang.min(gang);
            for &w in &usable {
                let x = row.map_or(0.0, |r| self.share[r * self.pools + w]);
                let key = match row {
                    Some(r) if x > 1e-9 => {
                        // ln(x / (received / elapsed)); received >= half a round, so the
                        // fraction is positive.
                        let i = r * self.pools + w;
                        let ln_priority = self.share_ln[i] - self.received.ln[i] + elapsed_ln;
                        pack(0, -(ln_priority * 1e5).round() as i64, index, w)
                    }
                    _ => pack(1, 0, index, w),
                };
                keys.push(key);
            }
        }
        // Only the head of the order is handed accelerators: heapify (linear) and pop until every
        // job is placed or no type has room for the smallest gang, instead of sorting every pair.
        let mut order: BinaryHeap<Reverse<u128>> =
            std::mem::take(&mut keys).into_iter().map(Reverse).collect();
        let mut room: Vec<u32> = state.cluster.pools.iter().map(|p| p.up_capacity).collect();
        let mut placed = vec![false; active.len()];
        let mut plan = Vec::new();
        while let Some(Reverse(key)) = order.pop() {
            let (index, w) = unpack(key);
            let id = active[index];
            let gang = gangs[index];
            if placed[index] || room[w] < gang {
                continue;
            }
            room[w] -= gang;
            placed[index] = true;
            plan.push((id, w));
            if plan.len() == active.len() || room.iter().all(|&r| r < min_gang) {
                break;
            }
        }
        self.scratch_keys = order.into_vec().into_iter().map(|Reverse(k)| k).collect();
        self.job_pools = job_pools;
        plan.sort_unstable();
        plan
    }
}

/// Job `id`'s gang, with the pools it can run on (rate > 0) in `usable`, from the dense cache
/// where the cluster has at most 32 pools (a job's gang and rates do not change).
fn pools_of(cache: &mut Vec<u64>, state: &State, id: u32, usable: &mut Vec<usize>) -> u32 {
    usable.clear();
    let lookup = |usable: &mut Vec<usize>| {
        usable.extend(
            state
                .pools_for(JobId(id))
                .iter()
                .filter(|&&(_, rate)| rate > 0.0)
                .map(|&(pool, _)| pool.0 as usize),
        );
        state.job(JobId(id)).spec.gang_size
    };
    if state.cluster.pools.len() > 32 {
        return lookup(usable);
    }
    let slot = id as usize;
    if cache.len() <= slot {
        cache.resize(slot + 1, 0);
    }
    if cache[slot] == 0 {
        let gang = lookup(usable);
        let mask = usable.iter().fold(0u64, |m, &w| m | 1 << w);
        cache[slot] = u64::from(gang) << 32 | mask;
        return gang;
    }
    let (gang, mask) = ((cache[slot] >> 32) as u32, cache[slot] & 0xffff_ffff);
    // The set bits, lowest first.
    let mut rest = mask;
    while rest != 0 {
        usable.push(rest.trailing_zeros() as usize);
        rest &= rest - 1;
    }
    gang
}

/// A (class, priority key, job index, pool) candidate as one integer with the same order.
fn pack(class: u8, priority_key: i64, index: usize, pool: usize) -> u128 {
    (u128::from(class) << 112)
        | (u128::from((priority_key as u64) ^ (1 << 63)) << 48)
        | ((index as u128) << 16)
        | pool as u128
}

/// The job index and pool of a packed candidate.
fn unpack(key: u128) -> (usize, usize) {
    (
        ((key >> 16) & 0xffff_ffff) as usize,
        (key & 0xffff) as usize,
    )
}

/// The jobs running or waiting now (up to `max_scan_jobs` of the queue), ascending.
pub(super) fn fill_active(state: &State, active: &mut Vec<u32>) {
    active.clear();
    active.extend(state.running.iter().copied());
    active.extend(
        state
            .pending
            .iter()
            .take(state.config.max_scan_jobs)
            .map(|&(_, _, id)| id),
    );
    let running = state.running.len();
    active[running..].sort_unstable();
    // Two ascending runs (ids are unique): the run-detecting stable sort merges them in linear
    // time where a quicksort would start over.
    active.sort();
}

/// Whether the full hand-out would place every job running or waiting now where it is or on its
/// only type: true on a one-pool cluster whose free accelerators can hold every waiting gang (in
/// accelerators, as the hand-out counts them). Every running job then keeps its place (no
/// pair outranks a job on the only type, and the room left always holds the rest), so the
/// priorities need not be computed.
pub(super) fn everything_fits(state: &State) -> bool {
    let [pool] = state.cluster.pools.as_slice() else {
        return false;
    };
    let mut demand: u64 = 0;
    for &(_, _, id) in state.pending.iter().take(state.config.max_scan_jobs) {
        if !state.pools_for(JobId(id)).is_empty() {
            demand += u64::from(state.job(JobId(id)).spec.gang_size);
        }
    }
    debug_assert_eq!(
        state
            .running
            .iter()
            .map(|&id| u64::from(state.job(JobId(id)).spec.gang_size))
            .sum::<u64>(),
        u64::from(pool.up_capacity - pool.free),
        "running gangs and the pool's free accelerators disagree"
    );
    demand <= u64::from(pool.free)
}
