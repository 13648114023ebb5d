//! `IndexedLas` (what `las` names) makes exactly the decisions of the reference `Las`, which
//! re-ranks every job on every pass: both are driven through the same busy, failing workload
//! (heterogeneous, or on one pool, where a pass whose waiting jobs all fit in the free
//! accelerators starts them without the index) and every pass's decisions are compared.

mod common;

use std::collections::BTreeMap;

use common::{hetero_job, pool, tenant};
use suanli_sched::policy::{IndexedLas, Las, Policy, TiresiasTwoDLas};
use suanli_sched::{Decision, JobId, NodeId, SchedConfig, Scheduler, TenantConfig};

/// A small deterministic generator (64-bit LCG, Knuth's constants); no `rand` in this crate.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Replays 600 jobs with node failures on two pools (or, with `one_pool`, on ten v100 nodes);
/// returns every pass's decisions, rendered.
fn replay(policy: Box<dyn Policy>, tenants: &[TenantConfig], one_pool: bool) -> Vec<String> {
    let pools = if one_pool {
        vec![pool("a", "v100", 10, 8, 2, 2)]
    } else {
        vec![pool("a", "v100", 6, 4, 2, 2), pool("b", "k80", 4, 8, 2, 1)]
    };
    let mut scheduler = Scheduler::new(&pools, tenants, policy, SchedConfig::default()).unwrap();
    let mut random = Lcg(7);
    let mut arrivals: Vec<(u64, suanli_sched::JobSpec)> = Vec::new();
    let mut clock_s = 0;
    for index in 0..600 {
        // On one pool, arrivals in bursts (a quarter at the same instant as the previous one) and
        // at about the cluster's rate, so that passes alternate between everything fitting in
        // the free accelerators and preempting.
        clock_s += if one_pool {
            random.below(4) * 400
        } else {
            random.below(900)
        };
        let gang = [1, 1, 2, 4, 8, 16][random.below(6) as usize];
        let units = 60.0 + random.below(if one_pool { 15_000 } else { 40_000 }) as f64;
        let mut job = match random.below(3) {
            _ if one_pool => hetero_job(&format!("j{index}"), gang, units, &[("v100", 1.0)]),
            0 => hetero_job(
                &format!("j{index}"),
                gang,
                units,
                &[("v100", 3.0), ("k80", 1.0)],
            ),
            1 => hetero_job(&format!("j{index}"), gang, units, &[("v100", 1.0)]),
            _ => hetero_job(&format!("j{index}"), gang, units, &[("k80", 1.0)]),
        };
        job.tenant = format!("t{}", random.below(3));
        job.checkpoint_interval_s = Some(1_800);
        arrivals.push((clock_s, job));
    }
    let failures: Vec<(u64, u32)> = (0..20)
        .map(|i| (i * 20_000 + random.below(10_000), random.below(10) as u32))
        .collect();
    let mut finishes: BTreeMap<JobId, u64> = BTreeMap::new();
    let mut log = Vec::new();
    let (mut next_arrival, mut next_failure) = (0, 0);
    let mut wakeup: Option<u64> = None;
    let mut down: BTreeMap<u32, u64> = BTreeMap::new();
    loop {
        let candidates = [
            arrivals.get(next_arrival).map(|a| a.0),
            failures.get(next_failure).map(|f| f.0),
            finishes.values().min().copied(),
            down.values().min().copied(),
            wakeup,
        ];
        let Some(now_s) = candidates.into_iter().flatten().min() else {
            break;
        };
        let done: Vec<JobId> = finishes
            .iter()
            .filter(|(_, t)| **t == now_s)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            finishes.remove(&id);
            scheduler.on_finish(id, now_s).unwrap();
        }
        let repaired: Vec<u32> = down
            .iter()
            .filter(|(_, t)| **t == now_s)
            .map(|(n, _)| *n)
            .collect();
        for node in repaired {
            down.remove(&node);
            scheduler.on_node_repair(NodeId(node), now_s).unwrap();
        }
        while failures.get(next_failure).is_some_and(|f| f.0 == now_s) {
            let node = failures[next_failure].1;
            for id in scheduler.on_node_failure(NodeId(node), now_s).unwrap() {
                finishes.remove(&id);
            }
            down.entry(node).or_insert(now_s + 3_600);
            next_failure += 1;
        }
        while arrivals.get(next_arrival).is_some_and(|a| a.0 == now_s) {
            scheduler
                .submit(arrivals[next_arrival].1.clone(), now_s)
                .unwrap();
            next_arrival += 1;
        }
        for decision in scheduler.schedule(now_s) {
            match &decision {
                Decision::Start {
                    job,
                    expected_finish_s,
                    ..
                } => {
                    finishes.insert(*job, *expected_finish_s);
                }
                Decision::Preempt { job, .. } => {
                    finishes.remove(job);
                }
            }
            log.push(format!("{now_s}: {decision}"));
        }
        wakeup = scheduler.next_wakeup_s(now_s);
    }
    log
}

#[test]
fn indexed_las_decides_exactly_as_the_reference_las() {
    let reference = replay(Box::new(Las::default()), &[], false);
    let indexed = replay(Box::new(IndexedLas::default()), &[], false);
    assert!(reference.len() > 1_500, "{} decisions", reference.len());
    assert!(
        reference.iter().any(|d| d.contains("preempt")),
        "the workload must preempt"
    );
    assert_eq!(reference.len(), indexed.len());
    for (a, b) in reference.iter().zip(&indexed) {
        assert_eq!(a, b);
    }
}

#[test]
fn with_guarantees_indexed_las_still_decides_as_the_reference() {
    let tenants = [tenant("t0", &[("v100", 8)]), tenant("t1", &[("k80", 8)])];
    let reference = replay(Box::new(Las::default()), &tenants, false);
    let indexed = replay(Box::new(IndexedLas::default()), &tenants, false);
    assert_eq!(reference, indexed);
}

#[test]
fn on_one_pool_indexed_las_decides_as_the_reference() {
    let reference = replay(Box::new(Las::default()), &[], true);
    let indexed = replay(Box::new(IndexedLas::default()), &[], true);
    assert!(reference.len() > 1_000, "{} decisions", reference.len());
    assert!(
        reference.iter().any(|d| d.contains("preempt")),
        "the workload must preempt"
    );
    assert_eq!(reference, indexed);
}

#[test]
fn on_one_pool_2d_las_decides_as_its_full_pass() {
    // A guarantee held by a tenant without jobs protects no job, but turns on the pass that
    // re-ranks every running and waiting job: the reference for the index and its shortcut.
    let nobody = [tenant("nobody", &[("v100", 1)])];
    let reference = replay(Box::new(TiresiasTwoDLas::default()), &nobody, true);
    let indexed = replay(Box::new(TiresiasTwoDLas::default()), &[], true);
    assert!(reference.len() > 800, "{} decisions", reference.len());
    assert!(
        reference.iter().any(|d| d.contains("preempt")),
        "the workload must preempt"
    );
    assert_eq!(reference, indexed);
}
