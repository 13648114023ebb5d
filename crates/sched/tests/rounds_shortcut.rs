//! The round-based policies' shortcut (a one-pool round in which every waiting gang fits starts
//! them without ranking jobs by priority) decides exactly what the full hand-out decides: both
//! drive the same random workloads, with completions, cancellations and node failures, through
//! light and overloaded periods, and must make the same decisions at the same instants.

mod common;

use std::collections::BTreeMap;

use common::{job, pool};
use suanli_sched::policy::{Objective, RoundBased};
use suanli_sched::{Decision, JobId, NodeId, SchedConfig, Scheduler};

/// A small deterministic generator (64-bit LCG, Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// Replays `seed`'s workload under `objective` and returns every decision with its instant.
fn decisions(seed: u64, objective: Objective, shortcut: bool) -> Vec<(u64, String)> {
    let mut policy = RoundBased::new("rounds", objective);
    policy.shortcut = shortcut;
    let pools = [pool("a", "x", 4, 4, 2, 2)];
    let mut s = Scheduler::new(&pools, &[], Box::new(policy), SchedConfig::default()).unwrap();
    let mut rng = Lcg(seed);
    // Arrivals: a light first half (gaps of up to 2 h) and a burst (gaps of up to 10 min).
    let mut arrivals = Vec::new();
    let mut at_s = 0;
    for i in 0..80 {
        at_s += if i < 40 {
            rng.next(7200)
        } else {
            rng.next(600)
        };
        let gang = [1, 1, 2, 4, 8][rng.next(5) as usize];
        arrivals.push((at_s, gang, 600.0 + rng.next(20_000) as f64));
    }
    arrivals.reverse();
    let mut running: BTreeMap<u32, u64> = BTreeMap::new();
    let mut log = Vec::new();
    let mut now_s = 0;
    for step in 0..5_000 {
        while arrivals.last().is_some_and(|a| a.0 <= now_s) {
            let (_, gang, duration_s) = arrivals.pop().unwrap();
            s.submit(job(&format!("j{step}"), gang, "x", duration_s), now_s)
                .unwrap();
        }
        let due: Vec<u32> = running
            .iter()
            .filter(|&(_, &end_s)| end_s <= now_s)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            running.remove(&id);
            s.on_finish(JobId(id), now_s).unwrap();
        }
        match rng.next(40) {
            0 => {
                for id in s
                    .on_node_failure(NodeId(rng.next(4) as u32), now_s)
                    .unwrap()
                {
                    running.remove(&id.0);
                }
            }
            1 => s.on_node_repair(NodeId(rng.next(4) as u32), now_s).unwrap(),
            2 if !running.is_empty() => {
                let id = *running.keys().next().unwrap();
                running.remove(&id);
                s.cancel(JobId(id), now_s).unwrap();
            }
            _ => {}
        }
        for decision in s.schedule(now_s) {
            match &decision {
                Decision::Start {
                    job,
                    expected_finish_s,
                    ..
                } => running.insert(job.0, *expected_finish_s),
                Decision::Preempt { job, .. } => running.remove(&job.0),
            };
            log.push((now_s, decision.to_string()));
        }
        let next_s = [
            arrivals.last().map(|a| a.0),
            running.values().min().copied(),
            s.next_wakeup_s(now_s),
        ]
        .into_iter()
        .flatten()
        .min();
        match next_s {
            Some(next_s) => now_s = next_s.max(now_s + 1),
            None => break,
        }
    }
    log
}

#[test]
fn the_one_pool_shortcut_decides_as_the_full_hand_out() {
    for objective in [
        Objective::MaxMinFairness,
        Objective::MaxMinFairnessHetero,
        Objective::FinishTimeFairness,
        Objective::Makespan,
    ] {
        let mut preempted = 0;
        for seed in 0..6 {
            let full = decisions(seed, objective, false);
            let shortcut = decisions(seed, objective, true);
            let first_difference = full.iter().zip(&shortcut).position(|(a, b)| a != b);
            assert!(
                first_difference.is_none() && full.len() == shortcut.len(),
                "{objective:?}, seed {seed}: first difference at decision {first_difference:?}: \
                 {:?} vs {:?}",
                first_difference.map(|i| &full[i]),
                first_difference.map(|i| &shortcut[i]),
            );
            preempted += full.iter().filter(|(_, d)| d.contains("preempt")).count();
        }
        // The workloads also overload the pool, so the full hand-out is exercised.
        assert!(preempted > 0, "{objective:?}: no round was oversubscribed");
    }
}
