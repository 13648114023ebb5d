//! `Work::from_token_goal`: a model-plus-token goal becomes, per accelerator type, exactly the
//! training rate `suanli-perf` predicts, and the scheduler turns it into run times.

mod common;

use common::pool;
use suanli_catalog::Catalog;
use suanli_perf::goal::best_training_tokens_per_s;
use suanli_sched::{Decision, JobSpec, SchedConfig, Scheduler, Work, policy};

const TOKENS: f64 = 2.0e9;

#[test]
fn each_type_gets_the_rate_perf_predicts_and_types_that_cannot_train_are_left_out() {
    let catalog = Catalog::builtin();
    let model = catalog.model("llama-3.1-8b").unwrap();
    let ids = ["h100-sxm5-80gb", "a100-sxm4-80gb", "l40s", "mi300x"];
    let accelerators: Vec<_> = ids
        .iter()
        .map(|id| catalog.accelerator(id).unwrap())
        .collect();
    let gang_size = 8;
    let work = Work::from_token_goal(model, TOKENS, &accelerators, gang_size);

    assert_eq!(work.total_units, TOKENS);
    for accelerator in &accelerators {
        let predicted =
            best_training_tokens_per_s(model, accelerator, gang_size).filter(|rate| *rate > 0.0);
        assert_eq!(
            work.units_per_s.get(&accelerator.id).copied(),
            predicted,
            "{}",
            accelerator.id
        );
    }
    let h100 = work.units_per_s["h100-sxm5-80gb"];
    let a100 = work.units_per_s["a100-sxm4-80gb"];
    assert!(h100 > a100, "H100 {h100} tokens/s should beat A100 {a100}");
    assert_eq!(
        work.best_rate(),
        work.units_per_s.values().copied().fold(0.0, f64::max)
    );
    assert_eq!(work.ideal_runtime_s(), TOKENS / work.best_rate());

    // A model too large for one accelerator's memory: no rate, so the type is left out.
    let huge = catalog.model("llama-3.1-405b").unwrap();
    let one_l40s = [catalog.accelerator("l40s").unwrap()];
    assert_eq!(best_training_tokens_per_s(huge, one_l40s[0], 1), None);
    assert!(
        Work::from_token_goal(huge, TOKENS, &one_l40s, 1)
            .units_per_s
            .is_empty()
    );
}

#[test]
fn the_scheduler_runs_a_token_goal_for_tokens_over_the_predicted_rate() {
    let catalog = Catalog::builtin();
    let model = catalog.model("llama-3.1-8b").unwrap();
    let h100 = catalog.accelerator("h100-sxm5-80gb").unwrap();
    let work = Work::from_token_goal(model, TOKENS, &[h100], 8);
    let rate = best_training_tokens_per_s(model, h100, 8).unwrap();
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
    assert_eq!(*expected_finish_s, (TOKENS / rate - 1e-9).ceil() as u64);
}
