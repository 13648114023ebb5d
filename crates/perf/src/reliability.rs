//! Time to train with failures, restarts, checkpoints and evaluation: expected vs ideal wall-clock.
//!
//! The failure rate per accelerator-hour is the one `suanli simulate` injects too (its default
//! failure model reads [`failure_rate`]), so planner and simulator agree by construction.
//!
//! Model (first order, failures as a Poisson process of rate `λ` per wall-clock second for the
//! whole job, each failure costing a restart `R` plus the work since the last checkpoint, on
//! average half an interval `τ` plus half a save `δ`; Young 1974, Daly 2006 §3):
//!
//! `expected_s = useful_s × (1 + δ/τ) / (1 − λ × (R + (τ + δ)/2))`
//!
//! with `useful_s` the ideal training time plus periodic evaluation, and `τ` Young's optimum
//! `sqrt(2 δ M)` for the job MTBF `M = 1/λ`.

use serde::Serialize;
use thiserror::Error;

/// Llama 3 405B pre-training: 419 unexpected interruptions in a 54-day snapshot on 16,384 H100
/// GPUs, effective training time above 90% (Dubey et al. 2024, "The Llama 3 Herd of Models",
/// arXiv:2407.21783, §3.3.4 and Table 5).
pub const LLAMA3_INTERRUPTIONS: f64 = 419.0;
/// Days in Llama 3's reported snapshot.
pub const LLAMA3_DAYS: f64 = 54.0;
/// GPUs in Llama 3's 405B run.
pub const LLAMA3_GPUS: f64 = 16_384.0;
/// Aggregate sustained write bandwidth of Llama 3's Tectonic storage, GB/s (same paper, §3.3.1:
/// 2 TB/s sustained, 7 TB/s peak).
pub const LLAMA3_STORAGE_GB_PER_S: f64 = 2_000.0;

/// Bytes a checkpoint keeps per parameter with mixed-precision Adam: bf16 weights (2) plus fp32
/// master weights and the two fp32 Adam moments (12); gradients are not saved (Rajbhandari et
/// al. 2020, ZeRO §3.1: 16 bytes of model state per parameter, 2 of which are gradients).
pub const CHECKPOINT_BYTES_PER_PARAM: f64 = 14.0;
/// Assumed time from a failure until training runs again (detect, drain, reschedule, load the
/// checkpoint, warm up), seconds. No paper we could confirm publishes a per-restart figure;
/// `--restart-min` changes it.
pub const DEFAULT_RESTART_S: f64 = 600.0;
/// Forward-only evaluation costs a third of a training step's 6N FLOPs per token (2N of 6N;
/// Kaplan et al. 2020, §2.1).
pub const EVAL_COST_PER_TRAIN_TOKEN: f64 = 1.0 / 3.0;

/// A failure rate and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureRate {
    /// Accelerator family the rate was measured on.
    pub family: &'static str,
    /// Unplanned job interruptions per accelerator-hour.
    pub failures_per_accelerator_hour: f64,
    /// Citation.
    pub source: &'static str,
    /// False when the family has no published figure and another family's rate stands in.
    pub measured_on_family: bool,
}

impl FailureRate {
    /// Mean hours between failures of one accelerator.
    pub fn mtbf_per_accelerator_h(&self) -> f64 {
        1.0 / self.failures_per_accelerator_hour
    }
}

/// Llama 3's interruptions per GPU-hour: 419 / (16,384 × 54 × 24) ≈ 1.97e-5.
pub fn llama3_failures_per_accelerator_hour() -> f64 {
    LLAMA3_INTERRUPTIONS / (LLAMA3_GPUS * LLAMA3_DAYS * 24.0)
}

const LLAMA3_SOURCE: &str = "Llama 3 405B: 419 unexpected interruptions in 54 days on 16,384 \
                             H100 (Dubey et al. 2024, arXiv:2407.21783, §3.3.4)";

/// The failure rate for an accelerator catalog id (`h100-sxm5-80gb`). Hopper GPUs use Llama 3's
/// published rate; other families have no published per-accelerator rate we could confirm, so
/// they use the same rate and say so (`measured_on_family: false`).
pub fn failure_rate(accelerator_id: &str) -> FailureRate {
    let id = accelerator_id.to_ascii_lowercase();
    let hopper = ["h100", "h800", "h200", "h20", "gh200"]
        .iter()
        .any(|prefix| id.starts_with(prefix));
    FailureRate {
        family: if hopper { "nvidia-hopper" } else { "other" },
        failures_per_accelerator_hour: llama3_failures_per_accelerator_hour(),
        source: LLAMA3_SOURCE,
        measured_on_family: hopper,
    }
}

/// Young's optimal checkpoint interval, seconds of work between saves: `sqrt(2 δ M)` (J. W.
/// Young, "A first order approximation to the optimum checkpoint interval", CACM 1974; Daly,
/// FGCS 2006, eq. 37 has the same first-order term). `mtbf_s` is the whole job's MTBF.
pub fn young_daly_interval_s(checkpoint_s: f64, mtbf_s: f64) -> f64 {
    (2.0 * checkpoint_s * mtbf_s).sqrt()
}

/// Why a time to train cannot be computed.
#[derive(Debug, Error, PartialEq)]
pub enum ReliabilityError {
    #[error("{0} must be a finite number >= 0 (got {1})")]
    BadInput(&'static str, f64),
    #[error(
        "the job fails every {mtbf_h:.2} h but each failure costs {lost_h:.2} h (restart and \
         lost work): it would never finish; use fewer accelerators or faster restarts"
    )]
    NeverFinishes { mtbf_h: f64, lost_h: f64 },
}

/// What the expected time is computed from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReliabilityInputs {
    /// Accelerators in the job.
    pub accelerators: f64,
    pub rate: FailureRate,
    /// Seconds from a failure until training runs again.
    pub restart_s: f64,
    /// Bytes written per checkpoint (whole job).
    pub checkpoint_bytes: f64,
    /// Aggregate write bandwidth to checkpoint storage, GB/s.
    pub checkpoint_gb_per_s: f64,
    /// Seconds of evaluation over the whole run.
    pub eval_s: f64,
}

/// Ideal and expected time and accelerator-hours to a token budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeToTrain {
    pub ideal_s: f64,
    pub expected_s: f64,
    pub ideal_days: f64,
    pub expected_days: f64,
    pub ideal_accelerator_hours: f64,
    pub expected_accelerator_hours: f64,
    /// Ideal time over expected time.
    pub goodput_fraction: f64,
    pub job_mtbf_h: f64,
    pub expected_failures: f64,
    pub checkpoint_s: f64,
    pub checkpoint_interval_s: f64,
    pub restart_s: f64,
    pub eval_s: f64,
    pub failures_per_accelerator_hour: f64,
    pub failure_source: &'static str,
}

/// Seconds of evaluation: `evals × eval_tokens / (tokens_per_s / EVAL_COST_PER_TRAIN_TOKEN)`,
/// one evaluation every `eval_every_tokens` training tokens.
pub fn eval_seconds(
    train_tokens: f64,
    tokens_per_s: f64,
    eval_every_tokens: Option<f64>,
    eval_tokens: f64,
) -> f64 {
    match eval_every_tokens {
        Some(every) if every > 0.0 && tokens_per_s > 0.0 => {
            (train_tokens / every).floor() * eval_tokens * EVAL_COST_PER_TRAIN_TOKEN / tokens_per_s
        }
        _ => 0.0,
    }
}

/// Expected time to `tokens` at `tokens_per_s` on `setup` with the defaults `suanli plan train`
/// uses (the family's failure rate, a 10-minute restart, Llama 3's checkpoint bandwidth scaled
/// to the job, no evaluation): what a whole-run figure such as a published GPU-hour total is
/// compared with.
pub fn expected_with_defaults(
    setup: &crate::train::TrainSetup,
    tokens: f64,
    tokens_per_s: f64,
) -> Result<TimeToTrain, ReliabilityError> {
    let accelerators = setup.count as f64;
    let inputs = ReliabilityInputs {
        accelerators,
        rate: failure_rate(&setup.accelerator.id),
        restart_s: DEFAULT_RESTART_S,
        checkpoint_bytes: setup.model.total_params() as f64 * CHECKPOINT_BYTES_PER_PARAM,
        checkpoint_gb_per_s: LLAMA3_STORAGE_GB_PER_S * accelerators / LLAMA3_GPUS,
        eval_s: 0.0,
    };
    time_to_train(tokens / tokens_per_s, &inputs)
}

/// Expected wall-clock time from the ideal (failure-free, checkpoint-free) time.
pub fn time_to_train(
    ideal_s: f64,
    inputs: &ReliabilityInputs,
) -> Result<TimeToTrain, ReliabilityError> {
    for (name, value) in [
        ("ideal time", ideal_s),
        ("accelerators", inputs.accelerators),
        ("restart time", inputs.restart_s),
        ("checkpoint size", inputs.checkpoint_bytes),
        ("evaluation time", inputs.eval_s),
    ] {
        if !value.is_finite() || value < 0.0 {
            return Err(ReliabilityError::BadInput(name, value));
        }
    }
    let bandwidth = inputs.checkpoint_gb_per_s;
    if !bandwidth.is_finite() || bandwidth <= 0.0 {
        return Err(ReliabilityError::BadInput(
            "checkpoint bandwidth",
            bandwidth,
        ));
    }
    let rate_per_h = inputs.rate.failures_per_accelerator_hour * inputs.accelerators.max(1.0);
    let mtbf_s = 3600.0 / rate_per_h;
    let checkpoint_s = inputs.checkpoint_bytes / (bandwidth * 1e9);
    let interval_s = young_daly_interval_s(checkpoint_s, mtbf_s).max(f64::MIN_POSITIVE);
    let lost_per_failure_s = inputs.restart_s + (interval_s + checkpoint_s) / 2.0;
    let lost_fraction = lost_per_failure_s / mtbf_s;
    if lost_fraction >= 1.0 {
        return Err(ReliabilityError::NeverFinishes {
            mtbf_h: mtbf_s / 3600.0,
            lost_h: lost_per_failure_s / 3600.0,
        });
    }
    let useful_s = ideal_s + inputs.eval_s;
    let save_overhead = if checkpoint_s > 0.0 {
        checkpoint_s / interval_s
    } else {
        0.0
    };
    let expected_s = useful_s * (1.0 + save_overhead) / (1.0 - lost_fraction);
    let hours = |s: f64| s / 3600.0 * inputs.accelerators;
    Ok(TimeToTrain {
        ideal_s,
        expected_s,
        ideal_days: ideal_s / 86_400.0,
        expected_days: expected_s / 86_400.0,
        ideal_accelerator_hours: hours(ideal_s),
        expected_accelerator_hours: hours(expected_s),
        goodput_fraction: if expected_s > 0.0 {
            ideal_s / expected_s
        } else {
            1.0
        },
        job_mtbf_h: mtbf_s / 3600.0,
        expected_failures: expected_s / mtbf_s,
        checkpoint_s,
        checkpoint_interval_s: interval_s,
        restart_s: inputs.restart_s,
        eval_s: inputs.eval_s,
        failures_per_accelerator_hour: inputs.rate.failures_per_accelerator_hour,
        failure_source: inputs.rate.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llama3_inputs(restart_s: f64) -> ReliabilityInputs {
        ReliabilityInputs {
            accelerators: LLAMA3_GPUS,
            rate: failure_rate("h100-sxm5-80gb"),
            restart_s,
            // 405B parameters at 14 bytes: about 5.7 TB per checkpoint.
            checkpoint_bytes: 405e9 * CHECKPOINT_BYTES_PER_PARAM,
            checkpoint_gb_per_s: LLAMA3_STORAGE_GB_PER_S,
            eval_s: 0.0,
        }
    }

    #[test]
    fn llama3_rate_is_one_failure_every_three_hours_on_16k_gpus() {
        // The paper's headline: about one interruption every 3 hours (54 × 24 / 419 = 3.09 h).
        let job_mtbf_h = 1.0 / (llama3_failures_per_accelerator_hour() * LLAMA3_GPUS);
        assert!((job_mtbf_h - 3.093).abs() < 0.01, "{job_mtbf_h}");
        assert!(failure_rate("H100-SXM5-80GB").measured_on_family);
        assert!(!failure_rate("mi300x").measured_on_family);
    }

    #[test]
    fn llama3_run_keeps_about_ninety_percent_effective_training_time() {
        // Llama 3 reports "higher than 90%" effective training time over the 54 days. With its
        // failure rate, its storage bandwidth and a 10-minute restart the model must land there.
        let time = time_to_train(54.0 * 86_400.0 * 0.9, &llama3_inputs(DEFAULT_RESTART_S)).unwrap();
        assert!(
            (0.88..=0.96).contains(&time.goodput_fraction),
            "{}",
            time.goodput_fraction
        );
        // About 419 failures over the ~54 days the paper counted them in.
        assert!(
            (350.0..=470.0).contains(&time.expected_failures),
            "{}",
            time.expected_failures
        );
    }

    #[test]
    fn young_interval_matches_a_hand_computed_figure() {
        // δ = 60 s, M = 24 h: sqrt(2 × 60 × 86,400) = 3,219.9 s.
        assert!((young_daly_interval_s(60.0, 86_400.0) - 3_219.94).abs() < 0.1);
    }

    #[test]
    fn slower_restarts_and_storage_cost_time_and_never_finishing_is_an_error() {
        let fast = time_to_train(1e6, &llama3_inputs(60.0)).unwrap();
        let slow = time_to_train(1e6, &llama3_inputs(3_600.0)).unwrap();
        assert!(slow.expected_s > fast.expected_s && fast.expected_s > 1e6);
        let mut hopeless = llama3_inputs(4.0 * 3600.0);
        hopeless.accelerators = 100_000.0;
        assert!(matches!(
            time_to_train(1e6, &hopeless),
            Err(ReliabilityError::NeverFinishes { .. })
        ));
        let mut bad = llama3_inputs(60.0);
        bad.checkpoint_gb_per_s = 0.0;
        assert!(time_to_train(1e6, &bad).is_err());
        assert!(time_to_train(f64::NAN, &llama3_inputs(60.0)).is_err());
    }

    #[test]
    fn evaluation_time_is_a_third_of_training_per_token() {
        // 1T tokens, eval every 10B tokens with 100M tokens: 100 evals × 1e8 / 3 / 1e6 tok/s.
        let s = eval_seconds(1e12, 1e6, Some(1e10), 1e8);
        assert!((s - 100.0 * 1e8 / 3.0 / 1e6).abs() < 1e-6, "{s}");
        assert_eq!(eval_seconds(1e12, 1e6, None, 1e8), 0.0);
    }
}
