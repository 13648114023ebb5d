//! A token goal (work in tokens at a rate per type; the rates come from `suanli_perf::goal::
//! token_goal_rates`, tested there): the scheduler turns it into run times.

mod common;

use common::pool;
use suanli_sched::{Decision, JobSpec, SchedConfig, Scheduler, Work, policy};

const TOKENS: f64 = 2.0e9;

#[test]
fn the_scheduler_runs_a_token_goal_for_tokens_over_the_predicted_rate() {
    // 8 H100s train Llama 3.1 8B at roughly 70k tokens/s; any rate will do for the scheduler.
    let rate = 70_000.0;
    let work = Work {
        total_units: TOKENS,
        units_per_s: [("h100-sxm5-80gb".to_string(), rate)].into(),
    };
    let pools = [pool("h", "h100-sxm5-80gb", 1, 8, 1, 1)];
    let mut scheduler = Scheduler::new(
        &pools,
        &[],
        policy::by_name("fifo").unwrap(),
        SchedConfig::default(),
    )
    .unwrap();
    scheduler
        .submit(
            JobSpec {
                name: "pretrain".into(),
                gang_size: 8,
                tenant: "t".into(),
                priority: 0,
                work,
                runtime_estimate_s: None,
                checkpoint_interval_s: None,
                checkpoint_cost_s: 0,
            },
            0,
        )
        .unwrap();
    let decisions = scheduler.schedule(0);
    let Some(Decision::Start {
        expected_finish_s, ..
    }) = decisions.first()
    else {
        panic!("the job starts: {decisions:?}");
    };
    // 2e9 tokens at 70,000 tokens/s: 28,571.4 s, rounded up to whole seconds.
    assert_eq!(*expected_finish_s, 28_572);
}
