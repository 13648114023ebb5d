//! `suanli plan train`: expected vs ideal time to train, with failures, checkpoints and evaluation.

use super::format;
use anyhow::bail;
use clap::Args;
use suanli_perf::reliability::{self, ReliabilityInputs, TimeToTrain};
use suanli_perf::train::{TrainEstimate, TrainSetup};

/// Flags for the expected (failure-aware) time to train.
#[derive(Args, Clone, Debug)]
pub struct TimeArgs {
    /// Aggregate checkpoint write bandwidth of the job, GB/s [default: Llama 3's 2 TB/s for
    /// 16,384 GPUs, scaled to --count].
    #[arg(long)]
    checkpoint_gb_per_s: Option<f64>,
    /// Minutes from a failure until training runs again (detect, reschedule, reload).
    #[arg(long, default_value_t = reliability::DEFAULT_RESTART_S / 60.0)]
    restart_min: f64,
    /// Evaluate every this many training tokens, e.g. 50B.
    #[arg(long, value_parser = crate::units::parse_count)]
    eval_every: Option<f64>,
    /// Tokens per evaluation, e.g. 100M (with --eval-every).
    #[arg(long, value_parser = crate::units::parse_count, requires = "eval_every")]
    eval_tokens: Option<f64>,
}

/// Expected vs ideal time to the token budget of `estimate`, if the plan has one.
pub fn time_to_train(
    args: &TimeArgs,
    setup: &TrainSetup,
    estimate: &TrainEstimate,
) -> anyhow::Result<Option<TimeToTrain>> {
    let Some(budget) = &estimate.budget else {
        return Ok(None);
    };
    if !(args.restart_min.is_finite() && (0.0..=7.0 * 24.0 * 60.0).contains(&args.restart_min)) {
        bail!("--restart-min must be between 0 and 10080 (a week)");
    }
    if args.eval_every.is_some() && args.eval_tokens.is_none() {
        bail!("--eval-every needs --eval-tokens, the tokens per evaluation (like 100M)");
    }
    let accelerators = setup.count as f64;
    let checkpoint_gb_per_s = args
        .checkpoint_gb_per_s
        .unwrap_or(reliability::LLAMA3_STORAGE_GB_PER_S * accelerators / reliability::LLAMA3_GPUS);
    if !(checkpoint_gb_per_s.is_finite() && checkpoint_gb_per_s > 0.0) {
        bail!("--checkpoint-gb-per-s must be a number above 0, like 200");
    }
    let inputs = ReliabilityInputs {
        accelerators,
        rate: reliability::failure_rate(&setup.accelerator.id),
        restart_s: args.restart_min * 60.0,
        checkpoint_bytes: setup.model.total_params() as f64
            * reliability::CHECKPOINT_BYTES_PER_PARAM,
        checkpoint_gb_per_s,
        eval_s: reliability::eval_seconds(
            budget.tokens,
            estimate.tokens_per_s,
            args.eval_every,
            args.eval_tokens.unwrap_or(0.0),
        ),
    };
    Ok(Some(reliability::time_to_train(
        budget.days * 86_400.0,
        &inputs,
    )?))
}

/// The lines printed under a plan.
pub fn describe(time: &TimeToTrain, rate_measured: bool) -> String {
    let minutes = |s: f64| format!("{:.1} min", s / 60.0);
    let mut text = format!(
        "ideal {:.1} days, {} accelerator-hours; expected {:.1} days, {} accelerator-hours \
         (goodput {:.1}%)\n",
        time.ideal_days,
        format::si(time.ideal_accelerator_hours),
        time.expected_days,
        format::si(time.expected_accelerator_hours),
        time.goodput_fraction * 100.0
    );
    text.push_str(&format!(
        "  failures {:.2e} per accelerator-hour: job MTBF {:.1} h, ~{:.0} failures, restart {}; \
         checkpoint {:.1} s every {} (Young); evaluation {}\n",
        time.failures_per_accelerator_hour,
        time.job_mtbf_h,
        time.expected_failures,
        minutes(time.restart_s),
        time.checkpoint_s,
        minutes(time.checkpoint_interval_s),
        minutes(time.eval_s)
    ));
    text.push_str(&format!("  failure rate: {}", time.failure_source));
    if !rate_measured {
        text.push_str(" (no published rate for this accelerator family; H100's used)");
    }
    text
}
