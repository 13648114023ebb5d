//! Decisions of the policies that the "done when" scenarios do not cover: sjf, fair, gavel-greedy
//! and Gavel's round-based time slicing.

mod common;

use common::*;

#[test]
fn sjf_starts_the_shortest_job_first_and_skips_what_does_not_fit() {
    let mut s = scheduler("sjf", &[pool("p", "a100", 1, 4, 1, 1)], &[]);
    submit(&mut s, job("long", 2, "a100", 900.0), 0);
    assert!(
        s.submit(job("wide", 8, "a100", 1.0), 0).is_err(),
        "8 accelerators on a 4-accelerator cluster"
    );
    submit(&mut s, job("short", 2, "a100", 100.0), 0);
    submit(&mut s, job("mid", 2, "a100", 500.0), 0);
    insta::assert_debug_snapshot!(pass(&mut s, 0), @r#"
    [
        "start j1 on pool0 [n0x2] until 100s",
        "start j2 on pool0 [n0x2] until 500s",
    ]
    "#);
}

#[test]
fn fair_alternates_between_tenants() {
    let mut s = scheduler("fair", &[pool("p", "a100", 1, 4, 1, 1)], &[]);
    for i in 0..4 {
        let spec = suanli_sched::JobSpec {
            tenant: "alpha".into(),
            ..job(&format!("a{i}"), 1, "a100", 100.0)
        };
        submit(&mut s, spec, 0);
    }
    for i in 0..2 {
        let spec = suanli_sched::JobSpec {
            tenant: "beta".into(),
            ..job(&format!("b{i}"), 1, "a100", 100.0)
        };
        submit(&mut s, spec, 0);
    }
    // Four accelerators: two each, not the first four submitted.
    insta::assert_debug_snapshot!(pass(&mut s, 0), @r#"
    [
        "start j0 on pool0 [n0x1] until 100s",
        "start j4 on pool0 [n0x1] until 100s",
        "start j1 on pool0 [n0x1] until 100s",
        "start j5 on pool0 [n0x1] until 100s",
    ]
    "#);
}

#[test]
fn greedy_gavel_puts_the_job_that_gains_most_on_the_fast_type() {
    // Pool 0 is fast (v100), pool 1 slow (k80), one accelerator each. `picky` runs 10x faster on
    // the v100, `easy` only 2x.
    let pools = [
        pool("fast", "v100", 1, 1, 1, 1),
        pool("slow", "k80", 1, 1, 1, 1),
    ];
    let jobs = || {
        [
            hetero_job("easy", 1, 1_000.0, &[("k80", 1.0), ("v100", 2.0)]),
            hetero_job("picky", 1, 1_000.0, &[("k80", 1.0), ("v100", 10.0)]),
        ]
    };
    let mut fifo = scheduler("fifo", &pools, &[]);
    let mut gavel = scheduler("gavel-greedy", &pools, &[]);
    for spec in jobs() {
        submit(&mut fifo, spec.clone(), 0);
        submit(&mut gavel, spec, 0);
    }
    // FIFO treats the types alike: the first job takes the first pool with most room, the fast one.
    insta::assert_debug_snapshot!(pass(&mut fifo, 0), @r#"
    [
        "start j0 on pool0 [n0x1] until 500s",
        "start j1 on pool1 [n1x1] until 1000s",
    ]
    "#);
    // Gavel gives the v100 to `picky`: 100 s + 1,000 s beats FIFO's 500 s + 1,000 s.
    insta::assert_debug_snapshot!(pass(&mut gavel, 0), @r#"
    [
        "start j0 on pool1 [n1x1] until 1000s",
        "start j1 on pool0 [n0x1] until 100s",
    ]
    "#);
    assert_eq!(gavel.next_wakeup_s(0), Some(360));
}

#[test]
fn gavel_max_min_fairness_time_slices_two_jobs_on_one_gpu_round_by_round() {
    // Two equal single-GPU jobs on one GPU: max-min fairness gives each half the GPU's time
    // (X = 0.5). Rounds are 360 s; priority = X / fraction of time received, so the job that ran
    // last round yields to the other (Gavel section 5), and a job kept on its type is not
    // restarted.
    let pools = [pool("p", "v100", 1, 1, 1, 1)];
    let mut s = scheduler("gavel-max-min-fairness", &pools, &[]);
    submit(&mut s, job("a", 1, "v100", 10_000.0), 0);
    submit(&mut s, job("b", 1, "v100", 10_000.0), 0);
    assert_eq!(pass(&mut s, 0), ["start j0 on pool0 [n0x1] until 10000s"]);
    // Between rounds nothing changes.
    assert!(pass(&mut s, 100).is_empty());
    assert_eq!(s.next_wakeup_s(100), Some(360));
    assert_eq!(
        pass(&mut s, 360),
        [
            "preempt j0 (Policy)",
            "start j1 on pool0 [n0x1] until 10360s"
        ]
    );
    // j0 has had 360 s, j1 none yet since its start: j0 (less received) goes back on; it restarts
    // after the 60 s restart delay with 10,000 - 360 s to go.
    assert_eq!(
        pass(&mut s, 720),
        [
            "preempt j1 (Policy)",
            "start j0 on pool0 [n0x1] until 10420s"
        ]
    );
}

#[test]
fn gavel_recomputes_the_allocation_at_most_every_1920_s_and_fills_idle_accelerators() {
    // Gavel's simulator recomputes the allocation only when the job set changed and at least
    // `minimum_time_between_allocation_resets` (1,920 s) have passed since the last time; a job
    // outside the allocation has priority 0 and only takes accelerators left over.
    let pools = [pool("p", "v100", 1, 2, 1, 1)];
    let mut s = scheduler("gavel-max-min-fairness", &pools, &[]);
    submit(&mut s, job("a", 1, "v100", 100_000.0), 0);
    assert_eq!(pass(&mut s, 0), ["start j0 on pool0 [n0x1] until 100000s"]);
    // b arrives mid-round; at the next round there is no new allocation yet, but a GPU is idle:
    // b takes it at priority 0 (work conservation).
    submit(&mut s, job("b", 1, "v100", 100_000.0), 100);
    assert_eq!(
        pass(&mut s, 360),
        ["start j1 on pool0 [n0x1] until 100360s"]
    );
    // c arrives with both GPUs busy: it waits through the rounds at 720-1800 s (the allocation
    // of 0 s is still current), and the rounds keep a and b running (lease renewal).
    submit(&mut s, job("c", 1, "v100", 100_000.0), 500);
    for round_s in [720, 1080, 1440, 1800] {
        assert!(pass(&mut s, round_s).is_empty(), "round at {round_s} s");
    }
    // At 2,160 s (>= 1,920 s after the last allocation) the allocation is recomputed over a, b
    // and c (2/3 of a GPU each) and everyone's credit restarts at half a round (Gavel's
    // `_reset_time_run_so_far`), so the priorities tie and the older jobs keep their GPUs; a
    // round later a and b have received 360 s more than c, and c takes the younger one's GPU.
    assert!(pass(&mut s, 2160).is_empty());
    assert_eq!(
        pass(&mut s, 2520),
        [
            "preempt j1 (Policy)",
            "start j2 on pool0 [n0x1] until 102520s"
        ]
    );
}
