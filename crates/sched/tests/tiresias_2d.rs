//! `tiresias-2d-las`: the starvation guard promotes a long job that a stream of short jobs would
//! otherwise keep waiting for ever under plain LAS (Gu et al., NSDI'19, section 4.2).

mod common;

use common::{job, pool, submit};
use suanli_sched::policy::{self, Las, TiresiasTwoDLas};
use suanli_sched::{Decision, JobId, Policy, SchedConfig, Scheduler};

/// Replays `arrivals` ((time, duration)) on one accelerator until `end_s`, returning when each
/// job finished (`None` if it had not).
fn replay(policy: &str, arrivals: &[(u64, f64)], end_s: u64) -> Vec<Option<u64>> {
    replay_with(policy::by_name(policy).unwrap(), arrivals, end_s)
}

fn replay_with(policy: Box<dyn Policy>, arrivals: &[(u64, f64)], end_s: u64) -> Vec<Option<u64>> {
    let pools = [pool("p", "a100", 1, 1, 1, 1)];
    let mut s = Scheduler::new(&pools, &[], policy, SchedConfig::default()).unwrap();
    let mut finishes: Vec<(u64, JobId, u32)> = Vec::new();
    let mut runs = vec![0u32; arrivals.len()];
    let mut finished = vec![None; arrivals.len()];
    let mut next = 0usize;
    let mut now_s = 0u64;
    while now_s <= end_s {
        while next < arrivals.len() && arrivals[next].0 == now_s {
            submit(
                &mut s,
                job(&format!("j{next}"), 1, "a100", arrivals[next].1),
                now_s,
            );
            next += 1;
        }
        finishes.retain(|&(at_s, id, run)| {
            let current = at_s == now_s && runs[id.0 as usize] == run;
            if current && s.job(id).unwrap().run().is_some() {
                s.on_finish(id, now_s).unwrap();
                finished[id.0 as usize] = Some(now_s);
            }
            at_s > now_s
        });
        for decision in s.schedule(now_s) {
            if let Decision::Start {
                job,
                expected_finish_s,
                ..
            } = decision
            {
                runs[job.0 as usize] += 1;
                finishes.push((expected_finish_s, job, runs[job.0 as usize]));
            }
        }
        let mut candidates: Vec<u64> = finishes.iter().map(|f| f.0).collect();
        candidates.extend(arrivals.get(next).map(|a| a.0));
        candidates.extend(s.next_wakeup_s(now_s));
        match candidates.into_iter().filter(|&t| t > now_s).min() {
            Some(t) => now_s = t,
            None => break,
        }
    }
    finished
}

/// A 90-minute job at 0; from 30 min on, a 50-minute job every 50 minutes for 20 hours. The long job
/// crosses the 1 acc-h threshold after its first hour; after that every newcomer ranks ahead of it
/// under plain LAS.
fn starving_stream() -> Vec<(u64, f64)> {
    let mut arrivals = vec![(0, 1.5 * 3600.0)];
    arrivals.extend((0..24).map(|k| (1800 + k * 3000, 3000.0)));
    arrivals
}

#[test]
fn the_guard_promotes_a_starving_job_and_plain_las_does_not() {
    let arrivals = starving_stream();
    let las = replay("tiresias-las", &arrivals, 200_000);
    let guarded = replay("tiresias-2d-las", &arrivals, 200_000);
    // Plain LAS: the long job finishes only after the stream ends (last arrival at 70,800 s).
    assert!(las[0].unwrap() > 70_800, "{las:?}");
    // Knob 8: having run 3,600 s, it is promoted once it has waited 8 x 3,600 s, at 32,400 s;
    // it joins the end of the top queue: the short job running then keeps its accelerator
    // until 33,600 s (running jobs lead their queue) and the one that arrived at 31,800 s, ahead
    // of it in the queue, runs until 36,600 s; then the long job runs its last 30 minutes plus
    // the 60 s restart delay: done at 38,460 s.
    assert_eq!(guarded[0], Some(38_460), "{guarded:?}");
    assert!(las.iter().chain(&guarded).all(Option::is_some));
}

#[test]
fn with_the_knob_at_zero_the_long_job_starves_again() {
    let policy = TiresiasTwoDLas::new(Las::default(), 0.0);
    let done = replay_with(Box::new(policy), &starving_stream(), 200_000);
    assert!(done[0].unwrap() > 70_800, "{done:?}");
}
