//! Decisions of the policies that the "done when" scenarios do not cover: sjf, fair, gavel.

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
fn gavel_puts_the_job_that_gains_most_on_the_fast_type() {
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
    let mut gavel = scheduler("gavel", &pools, &[]);
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
