//! Gavel's measured throughput table (`simulation_throughputs.json`, OSDI'20 artifact) and the
//! documented rule that derives the rate of a (job type, scale factor) it did not measure.
//!
//! The table maps accelerator type → `"('<job type>', <scale factor>)"` → `{"null": steps/s
//! alone, "<other job>": [co-located rates]}`. We read the `null` entry (the job alone) of the
//! consolidated types `k80`, `p100`, `v100`; the `*_unconsolidated` entries (workers spread
//! over servers) are ignored because placement packs a gang onto the fewest nodes.

use super::error::TraceError;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The Gavel table as shipped in `crates/sim/data/gavel/simulation_throughputs.json`.
const EMBEDDED_JSON: &str = include_str!("../../data/gavel/simulation_throughputs.json");

/// The accelerator types of the table that readers use, as type ids.
pub const GAVEL_ACCELERATORS: [&str; 3] = ["k80", "p100", "v100"];

/// Steps per second of each job type at each measured scale factor on each accelerator type.
#[derive(Clone, Debug)]
pub struct Throughputs {
    /// accelerator type → job type → scale factor → steps/s of the whole gang, alone.
    steps_per_s: BTreeMap<String, BTreeMap<String, BTreeMap<u32, f64>>>,
}

/// The rates of one (job type, scale factor) on each accelerator type that can run it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRates {
    /// Steps/s of the whole gang per accelerator type; types measured at 0 (the job does not
    /// fit in that device's memory) are absent.
    pub steps_per_s: BTreeMap<String, f64>,
    /// True when the scale factor was not measured and the rates come from [`derive_rate`].
    pub derived: bool,
}

impl Throughputs {
    /// The embedded Gavel table, parsed once.
    pub fn embedded() -> &'static Throughputs {
        static TABLE: OnceLock<Throughputs> = OnceLock::new();
        TABLE.get_or_init(|| {
            Throughputs::from_json(EMBEDDED_JSON, "simulation_throughputs.json")
                .expect("the embedded Gavel throughput table parses (checked by tests)")
        })
    }

    /// Parses a table in Gavel's layout; `file` names it in errors.
    pub fn from_json(text: &str, file: &str) -> Result<Throughputs, TraceError> {
        let bad = |message: String| TraceError::Throughputs {
            file: file.to_string(),
            message,
        };
        let root: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let root = root
            .as_object()
            .ok_or_else(|| bad("expected an object keyed by accelerator type".into()))?;
        let mut steps_per_s = BTreeMap::new();
        for accelerator in GAVEL_ACCELERATORS {
            let entries = root
                .get(accelerator)
                .and_then(|v| v.as_object())
                .ok_or_else(|| bad(format!("expected an object under key {accelerator:?}")))?;
            let mut by_job_type: BTreeMap<String, BTreeMap<u32, f64>> = BTreeMap::new();
            for (key, entry) in entries {
                let (job_type, scale_factor) = parse_job_key(key).ok_or_else(|| {
                    bad(format!(
                        "{accelerator}: key {key:?} is not of the form \"('<job type>', <scale>)\""
                    ))
                })?;
                let rate = entry
                    .get("null")
                    .and_then(|v| v.as_f64())
                    .filter(|rate| rate.is_finite() && *rate >= 0.0)
                    .ok_or_else(|| {
                        bad(format!(
                            "{accelerator}: {key}: expected a \"null\" entry with steps/s >= 0"
                        ))
                    })?;
                by_job_type
                    .entry(job_type)
                    .or_default()
                    .insert(scale_factor, rate);
            }
            steps_per_s.insert(accelerator.to_string(), by_job_type);
        }
        Ok(Throughputs { steps_per_s })
    }

    /// Job types the table knows (on any accelerator type).
    pub fn job_types(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .steps_per_s
            .values()
            .flat_map(|by_job_type| by_job_type.keys().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The rates of `job_type` on a gang of `scale_factor` devices; `None` when the table does
    /// not know the job type.
    pub fn job_rates(&self, job_type: &str, scale_factor: u32) -> Option<JobRates> {
        let mut rates = JobRates {
            steps_per_s: BTreeMap::new(),
            derived: false,
        };
        let mut known = false;
        for (accelerator, by_job_type) in &self.steps_per_s {
            let Some(measured) = by_job_type.get(job_type) else {
                continue;
            };
            known = true;
            let rate = match measured.get(&scale_factor) {
                Some(rate) => *rate,
                None => {
                    rates.derived = true;
                    derive_rate(measured, scale_factor)
                }
            };
            if rate > 0.0 {
                rates.steps_per_s.insert(accelerator.clone(), rate);
            }
        }
        known.then_some(rates)
    }
}

/// Rate of a gang of `n` devices from the rates measured at other scales (scale → steps/s).
///
/// Rule (docs/traces.md, "derived throughputs"): take the largest measured scale `s <= n`.
/// If `s = 1`, scale linearly: `n * r(1)`. Otherwise the per-device efficiency measured at `s`,
/// `e = min(1, r(s) / (s * r(1)))`, is assumed to hold per doubling, so
/// `r(n) = n * r(1) * e^(log2 n / log2 s)`, never below `r(s)` and never above `n * r(1)`.
/// A zero rate at `1` or `s` (the job does not fit that device) stays zero.
pub fn derive_rate(measured: &BTreeMap<u32, f64>, n: u32) -> f64 {
    let Some(rate_1) = measured.get(&1).copied() else {
        return 0.0;
    };
    let Some((&s, &rate_s)) = measured.range(..=n).next_back() else {
        return 0.0;
    };
    if rate_1 <= 0.0 || rate_s <= 0.0 {
        return 0.0;
    }
    let n_f = f64::from(n);
    let linear = n_f * rate_1;
    if s == 1 {
        return linear;
    }
    let efficiency = (rate_s / (f64::from(s) * rate_1)).min(1.0);
    let exponent = n_f.ln() / f64::from(s).ln();
    let extrapolated = linear * efficiency.powf(exponent);
    extrapolated.max(rate_s).min(linear)
}

/// Splits `('ResNet-18 (batch size 16)', 1)` into the job type and the scale factor.
fn parse_job_key(key: &str) -> Option<(String, u32)> {
    let inner = key.strip_prefix("('")?.strip_suffix(')')?;
    let (job_type, scale) = inner.rsplit_once("',")?;
    Some((job_type.to_string(), scale.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parses() {
        assert_eq!(
            parse_job_key("('ResNet-18 (batch size 16)', 1)"),
            Some(("ResNet-18 (batch size 16)".to_string(), 1))
        );
        assert_eq!(parse_job_key("ResNet-18"), None);
    }

    #[test]
    fn derivation_is_linear_from_scale_one_and_capped() {
        let only_one = BTreeMap::from([(1, 2.0)]);
        assert_eq!(derive_rate(&only_one, 4), 8.0);
        // Efficiency 0.5 at 4 (two doublings) gives 0.5^(log2 16 / log2 4) = 0.25 at 16.
        let sub_linear = BTreeMap::from([(1, 1.0), (4, 2.0)]);
        assert!((derive_rate(&sub_linear, 16) - 4.0).abs() < 1e-12);
        // Super-linear measurements are capped to linear.
        let super_linear = BTreeMap::from([(1, 1.0), (8, 12.0)]);
        assert_eq!(derive_rate(&super_linear, 16), 16.0);
        // A job that does not fit stays at zero.
        let does_not_fit = BTreeMap::from([(1, 1.0), (8, 0.0)]);
        assert_eq!(derive_rate(&does_not_fit, 16), 0.0);
    }
}
