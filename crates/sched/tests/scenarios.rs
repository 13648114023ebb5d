//! The "done when" scenarios of issue 3, each pinned by an inline snapshot of the decisions.

mod common;

use common::*;
use suanli_sched::{NodeId, Status};

#[test]
fn a_gang_that_fits_starts_and_one_that_does_not_waits() {
    let mut s = scheduler("fifo", &[pool("p", "a100", 2, 4, 2, 1)], &[]);
    let big = submit(&mut s, job("six", 6, "a100", 100.0), 0);
    submit(&mut s, job("four", 4, "a100", 100.0), 0);
    submit(&mut s, job("two", 2, "a100", 100.0), 0);
    // FIFO is strict: `two` would fit beside `six` but waits behind `four`.
    insta::assert_debug_snapshot!(pass(&mut s, 0), @r#"
    [
        "start j0 on pool0 [n0x4 n1x2] until 100s",
    ]
    "#);
    s.on_finish(big, 100).unwrap();
    insta::assert_debug_snapshot!(pass(&mut s, 100), @r#"
    [
        "start j1 on pool0 [n0x4] until 200s",
        "start j2 on pool0 [n1x2] until 200s",
    ]
    "#);
    let error = s.submit(job("nine", 9, "a100", 1.0), 100).unwrap_err();
    insta::assert_snapshot!(error, @"job can never run: job `nine` needs 9 accelerators of [a100]; the cluster has a100 (8 accelerators)");
}

#[test]
fn backfill_never_delays_the_head_reservation() {
    let mut s = scheduler("backfill", &[pool("p", "a100", 2, 4, 2, 1)], &[]);
    submit(&mut s, job("running", 4, "a100", 100.0), 0);
    let head = submit(&mut s, job("head", 8, "a100", 100.0), 0);
    submit(&mut s, job("long", 4, "a100", 200.0), 0);
    submit(&mut s, job("short", 4, "a100", 50.0), 0);
    // The head needs both nodes at 100 s (its shadow time): `long` would hold one until 200 s so
    // it waits; `short` ends by 50 s so it backfills.
    insta::assert_debug_snapshot!(pass(&mut s, 0), @r#"
    [
        "start j0 on pool0 [n0x4] until 100s",
        "start j3 on pool0 [n1x4] until 50s",
    ]
    "#);
    s.on_finish(suanli_sched::JobId(3), 50).unwrap();
    insta::assert_debug_snapshot!(pass(&mut s, 50), @"[]");
    s.on_finish(suanli_sched::JobId(0), 100).unwrap();
    insta::assert_debug_snapshot!(pass(&mut s, 100), @r#"
    [
        "start j1 on pool0 [n0x4 n1x4] until 200s",
    ]
    "#);
    assert_eq!(s.job(head).unwrap().first_start_s, Some(100));
}

#[test]
fn las_preempts_a_long_running_job_for_a_new_one() {
    let mut s = scheduler("las", &[pool("p", "a100", 1, 4, 1, 1)], &[]);
    let long = submit(&mut s, job("long", 4, "a100", 10_000.0), 0);
    insta::assert_debug_snapshot!(pass(&mut s, 0), @r#"
    [
        "start j0 on pool0 [n0x4] until 10000s",
    ]
    "#);
    // After 1,000 s on 4 accelerators `long` has 4,000 accelerator-seconds: queue 1. A new job
    // is in queue 0 and takes its place.
    let short = submit(&mut s, job("short", 4, "a100", 500.0), 1_000);
    insta::assert_debug_snapshot!(pass(&mut s, 1_000), @r#"
    [
        "preempt j0 (Policy)",
        "start j1 on pool0 [n0x4] until 1500s",
    ]
    "#);
    s.on_finish(short, 1_500).unwrap();
    // `long` resumes from its preemption checkpoint after the 60 s restart delay.
    insta::assert_debug_snapshot!(pass(&mut s, 1_500), @r#"
    [
        "start j0 on pool0 [n0x4] until 10560s",
    ]
    "#);
    let record = s.job(long).unwrap();
    assert_eq!((record.preemptions, record.lost_compute_s), (1, 0));
}

#[test]
fn a_tenant_borrows_idle_quota_and_has_it_reclaimed() {
    let tenants = [
        tenant("alpha", &[("a100", 4)]),
        tenant("beta", &[("a100", 4)]),
    ];
    let mut s = scheduler("fifo", &[pool("p", "a100", 2, 4, 2, 1)], &tenants);
    let beta_job = |name: &str| suanli_sched::JobSpec {
        tenant: "beta".into(),
        ..job(name, 4, "a100", 1_000.0)
    };
    submit(&mut s, beta_job("beta-own"), 0);
    submit(&mut s, beta_job("beta-borrowed"), 0);
    // alpha is idle, so beta runs on all 8 accelerators, 4 of them borrowed.
    insta::assert_debug_snapshot!(pass(&mut s, 0), @r#"
    [
        "start j0 on pool0 [n0x4] until 1000s",
        "start j1 on pool0 [n1x4] until 1000s",
    ]
    "#);
    let alpha = suanli_sched::JobSpec {
        tenant: "alpha".into(),
        ..job("alpha", 4, "a100", 300.0)
    };
    submit(&mut s, alpha, 100);
    insta::assert_debug_snapshot!(pass(&mut s, 100), @r#"
    [
        "preempt j1 (QuotaReclaim)",
        "start j2 on pool0 [n1x4] until 400s",
    ]
    "#);
    assert_eq!(s.state().tenants[1].used_of("a100"), 4);
}

#[test]
fn topology_packing_takes_fewest_nodes_then_fewest_leaves() {
    // 16 nodes of 8, 4 nodes per leaf, 2 leaves per pod.
    let mut s = scheduler("fifo", &[pool("p", "h100", 16, 8, 4, 2)], &[]);
    for (name, gang) in [
        ("a", 4),
        ("b", 4),
        ("c", 16),
        ("d", 24),
        ("e", 40),
        ("f", 6),
    ] {
        submit(&mut s, job(name, gang, "h100", 100.0), 0);
    }
    // a and b share n0; c fills two nodes of leaf 0; d three of leaf 1; e needs five nodes, more
    // than a leaf, so it takes pod 1 (leaves 2 and 3); f takes the emptiest-fitting single node.
    insta::assert_debug_snapshot!(pass(&mut s, 0), @r#"
    [
        "start j0 on pool0 [n0x4] until 100s",
        "start j1 on pool0 [n0x4] until 100s",
        "start j2 on pool0 [n1x8 n2x8] until 100s",
        "start j3 on pool0 [n4x8 n5x8 n6x8] until 100s",
        "start j4 on pool0 [n8x8 n9x8 n10x8 n11x8 n12x8] until 100s",
        "start j5 on pool0 [n3x6] until 100s",
    ]
    "#);
}

#[test]
fn a_failure_restarts_the_job_from_its_checkpoint_with_the_expected_lost_work() {
    let mut s = scheduler("fifo", &[pool("p", "a100", 2, 4, 2, 1)], &[]);
    let spec = suanli_sched::JobSpec {
        checkpoint_interval_s: Some(100),
        checkpoint_cost_s: 10,
        ..job("ckpt", 4, "a100", 1_000.0)
    };
    let id = submit(&mut s, spec, 0);
    // 1,000 s of compute with 9 checkpoints of 10 s in between.
    insta::assert_debug_snapshot!(pass(&mut s, 0), @r#"
    [
        "start j0 on pool0 [n0x4] until 1090s",
    ]
    "#);
    // At 345 s: three 110 s cycles (300 s checkpointed) and 15 s more, which is lost.
    assert_eq!(s.on_node_failure(NodeId(0), 345).unwrap(), vec![id]);
    let record = s.job(id).unwrap();
    assert_eq!(
        (record.done_units, record.lost_compute_s, record.failures),
        (300.0, 15, 1)
    );
    // It restarts on the other node after the 60 s restart delay: 700 s of compute and 6
    // checkpoints from 405 s.
    insta::assert_debug_snapshot!(pass(&mut s, 345), @r#"
    [
        "start j0 on pool0 [n1x4] until 1165s",
    ]
    "#);
    s.on_finish(id, 1_165).unwrap();
    let record = s.job(id).unwrap();
    assert_eq!(record.status, Status::Finished { finished_s: 1_165 });
    // Useful work is the job's 1,000 s on 4 accelerators; the lost 15 s are not counted.
    assert_eq!(record.useful_acc_s, 4_000);
}

#[test]
fn a_cancelled_queued_job_never_starts_and_the_next_job_takes_its_place() {
    // Every policy, and once with a tenant guarantee so quota reclaim (which walks each
    // tenant's own queue) runs too.
    let cases = ["fifo", "backfill", "sjf", "las", "fair", "gavel"]
        .into_iter()
        .map(|name| (name.to_string(), vec![]))
        .chain([("fifo+quota".to_string(), vec![tenant("t", &[("a100", 4)])])]);
    let mut decisions_by_policy = Vec::new();
    for (label, tenants) in cases {
        let policy_name = label.trim_end_matches("+quota");
        let mut s = scheduler(policy_name, &[pool("p", "a100", 1, 4, 1, 1)], &tenants);
        let first = submit(&mut s, job("first", 4, "a100", 100.0), 0);
        let cancelled = submit(&mut s, job("cancelled", 4, "a100", 100.0), 0);
        submit(&mut s, job("next", 4, "a100", 100.0), 0);
        let mut decisions = pass(&mut s, 0);
        s.cancel(cancelled, 10).unwrap();
        assert_eq!(
            s.job(cancelled).unwrap().status,
            Status::Cancelled { cancelled_s: 10 }
        );
        assert_eq!(s.state().pending_count(), 1, "{label}");
        s.on_finish(first, 100).unwrap();
        decisions.extend(pass(&mut s, 100));
        decisions.extend(pass(&mut s, 400));
        decisions_by_policy.push(format!("{label}: {}", decisions.join("; ")));
        assert_eq!(
            s.cancel(cancelled, 100).unwrap_err().to_string(),
            "job 1 has already ended (finished or cancelled); only a pending or running job can \
             be cancelled"
        );
    }
    insta::assert_debug_snapshot!(decisions_by_policy, @r#"
    [
        "fifo: start j0 on pool0 [n0x4] until 100s; start j2 on pool0 [n0x4] until 200s",
        "backfill: start j0 on pool0 [n0x4] until 100s; start j2 on pool0 [n0x4] until 200s",
        "sjf: start j0 on pool0 [n0x4] until 100s; start j2 on pool0 [n0x4] until 200s",
        "las: start j0 on pool0 [n0x4] until 100s; start j2 on pool0 [n0x4] until 200s",
        "fair: start j0 on pool0 [n0x4] until 100s; start j2 on pool0 [n0x4] until 200s",
        "gavel: start j0 on pool0 [n0x4] until 100s; start j2 on pool0 [n0x4] until 500s",
        "fifo+quota: start j0 on pool0 [n0x4] until 100s; start j2 on pool0 [n0x4] until 200s",
    ]
    "#);
}
