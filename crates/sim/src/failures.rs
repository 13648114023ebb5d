//! Node failure models and checkpoint-interval choices for a simulation.
//!
//! Failures are per accelerator: each accelerator fails at exponentially distributed times with
//! mean `mtbf_per_accelerator_h`, so a node of `n` accelerators fails at rate `n / mtbf`. A failed
//! node kills every job on it and comes back after `repair_s`.
//!
//! Default (`llama3`): Llama 3 405B pre-training saw 419 unplanned interruptions in 54 days on
//! 16,384 H100 GPUs (Dubey et al. 2024, "The Llama 3 Herd of Models", section 3.3.4). One
//! interruption per 54 × 24 / 419 = 3.09 hours over 16,384 GPUs gives a per-GPU MTBF of
//! 16,384 × 54 × 24 / 419 ≈ 50,677 hours. The rate comes from `suanli_perf::reliability`, the
//! same one `suanli plan train` uses for its expected time. All 419 are treated as node failures,
//! although 41% were not GPU hardware, so this errs towards more failures. The paper gives no
//! repair times; we assume 4 hours for a node to be swapped or repaired.

use serde::Serialize;
use suanli_catalog::units::UnitError;
use suanli_perf::reliability;

/// Why a `--failures` or `--checkpoint` spec cannot be read; the message says what is allowed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error(
        "failure model `{text}`: `{part}` is not understood; use `none`, `llama3` or \
         `mtbf=50700h,repair=4h`"
    )]
    NotUnderstood { text: String, part: String },
    #[error("failure model `{text}`: {error}")]
    Duration { text: String, error: UnitError },
    #[error(
        "failure model `{text}`: unknown key `{key}` (or mtbf of 0); keys are \
         `mtbf` (per accelerator, > 0) and `repair`"
    )]
    UnknownKey { text: String, key: String },
    #[error("checkpoint `{text}`: use `trace`, `young-daly` or an interval like `30m`")]
    Checkpoint { text: String },
}

/// Per-accelerator MTBF, hours, from the planner's failure rate for H100 (Llama 3's 419
/// unplanned interruptions in 54 days on 16,384 GPUs).
pub fn llama3_mtbf_per_accelerator_h() -> f64 {
    reliability::failure_rate("h100").mtbf_per_accelerator_h()
}
/// Assumed repair time of a failed node, seconds.
pub const DEFAULT_REPAIR_S: u64 = 4 * 3600;

/// How nodes fail.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureModel {
    /// Mean time between failures of one accelerator, hours; `None` turns failures off.
    pub mtbf_per_accelerator_h: Option<f64>,
    /// Seconds from a node's failure until it is back.
    pub repair_s: u64,
}

impl FailureModel {
    /// No failures.
    pub fn none() -> Self {
        FailureModel {
            mtbf_per_accelerator_h: None,
            repair_s: DEFAULT_REPAIR_S,
        }
    }

    /// The Llama 3 rate.
    pub fn llama3() -> Self {
        FailureModel {
            mtbf_per_accelerator_h: Some(llama3_mtbf_per_accelerator_h()),
            repair_s: DEFAULT_REPAIR_S,
        }
    }

    /// Parses `none`, `llama3`, or `mtbf=<duration>[,repair=<duration>]` where a duration is a
    /// number with a unit `s`, `m`, `h` or `d` (`mtbf=50000h,repair=2h`); `llama3,repair=1h`
    /// changes the repair time only.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let mut model = FailureModel::llama3();
        for (index, part) in text.split(',').map(str::trim).enumerate() {
            match part {
                "none" | "off" if index == 0 => return Ok(FailureModel::none()),
                "llama3" if index == 0 => {}
                _ => {
                    let Some((key, value)) = part.split_once('=') else {
                        return Err(SpecError::NotUnderstood {
                            text: text.into(),
                            part: part.into(),
                        });
                    };
                    let seconds = parse_duration_s(value).map_err(|error| SpecError::Duration {
                        text: text.into(),
                        error,
                    })?;
                    match key.trim() {
                        "mtbf" if seconds > 0 => {
                            model.mtbf_per_accelerator_h = Some(seconds as f64 / 3600.0)
                        }
                        "repair" => model.repair_s = seconds,
                        other => {
                            return Err(SpecError::UnknownKey {
                                text: text.into(),
                                key: other.into(),
                            });
                        }
                    }
                }
            }
        }
        Ok(model)
    }

    /// Mean seconds until a node of `accelerators` fails, if failures are on.
    pub fn node_mtbf_s(&self, accelerators: u32) -> Option<f64> {
        self.mtbf_per_accelerator_h
            .map(|h| h * 3600.0 / f64::from(accelerators.max(1)))
    }
}

/// Whole seconds of a duration with its unit (`90s`, `15m`, `4h`, `2d`), by the one parser of
/// durations ([`suanli_catalog::units`]): a bare number is an error naming the unit to add.
pub fn parse_duration_s(text: &str) -> Result<u64, UnitError> {
    suanli_catalog::units::parse_duration_s(text).map(|seconds| seconds.round() as u64)
}

/// How each job's checkpoint interval is chosen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum CheckpointPolicy {
    /// Whatever the trace says (no checkpoints when it says nothing).
    AsTrace,
    /// The same interval for every job, seconds.
    Every { interval_s: u64 },
    /// Young/Daly optimum per job from its gang's MTBF under the failure model.
    YoungDaly,
}

impl CheckpointPolicy {
    /// Parses `trace`, `young-daly` or a duration like `30m`.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        match text.trim() {
            "trace" => Ok(CheckpointPolicy::AsTrace),
            "young-daly" | "daly" | "young" => Ok(CheckpointPolicy::YoungDaly),
            other => parse_duration_s(other)
                .ok()
                .filter(|&s| s > 0)
                .map(|interval_s| CheckpointPolicy::Every { interval_s })
                .ok_or_else(|| SpecError::Checkpoint { text: other.into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_mtbf_follows_from_the_published_counts() {
        let derived_h = 16_384.0 * 54.0 * 24.0 / 419.0;
        assert!(
            (derived_h - llama3_mtbf_per_accelerator_h()).abs() / derived_h < 1e-9,
            "{derived_h}"
        );
        // An 8-GPU node then fails about every 6,335 hours.
        let node_h = FailureModel::llama3().node_mtbf_s(8).unwrap() / 3600.0;
        assert!((node_h - 6_334.6).abs() < 0.1, "{node_h}");
    }

    #[test]
    fn simulator_injects_the_rate_the_planner_plans_with() {
        // One source of truth: the failures per accelerator-hour `suanli plan train` uses for an
        // H100 run are exactly the ones `suanli simulate` injects by default.
        let planner = reliability::failure_rate("h100-sxm5-80gb").failures_per_accelerator_hour;
        let simulator = 1.0 / FailureModel::llama3().mtbf_per_accelerator_h.unwrap();
        assert!(
            (planner - simulator).abs() / planner < 1e-12,
            "{planner} {simulator}"
        );
        assert!((planner - 419.0 / (16_384.0 * 54.0 * 24.0)).abs() < 1e-12);
    }

    #[test]
    fn failure_models_parse_and_errors_say_what_is_allowed() {
        assert_eq!(FailureModel::parse("none").unwrap(), FailureModel::none());
        let custom = FailureModel::parse("mtbf=1000h,repair=30m").unwrap();
        assert_eq!(
            (custom.mtbf_per_accelerator_h, custom.repair_s),
            (Some(1000.0), 1800)
        );
        assert_eq!(
            FailureModel::parse("llama3,repair=1h").unwrap().repair_s,
            3600
        );
        let error = FailureModel::parse("mtbf=soon").unwrap_err().to_string();
        assert!(error.contains("write a number and a unit"), "{error}");
        // One duration parser: a bare number names the unit to add instead of meaning seconds.
        let error = FailureModel::parse("mtbf=50000").unwrap_err();
        assert!(matches!(&error, SpecError::Duration { text, .. } if text == "mtbf=50000"));
        assert!(error.to_string().contains("has no unit"), "{error}");
        let error = FailureModel::parse("sometimes").unwrap_err();
        assert_eq!(
            error,
            SpecError::NotUnderstood {
                text: "sometimes".into(),
                part: "sometimes".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "failure model `sometimes`: `sometimes` is not understood; use `none`, `llama3` or \
             `mtbf=50700h,repair=4h`"
        );
        assert_eq!(
            CheckpointPolicy::parse("30m").unwrap(),
            CheckpointPolicy::Every { interval_s: 1800 }
        );
        assert_eq!(
            CheckpointPolicy::parse(" 0s").unwrap_err(),
            SpecError::Checkpoint { text: "0s".into() }
        );
    }
}
