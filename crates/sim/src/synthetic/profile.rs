//! Workload profiles: gang-size and duration distributions fitted to published summaries.
//!
//! `philly`, `acme-seren` and `acme-kalos` (alias `acme`) are fitted to the rows of
//! `data/acme/cluster_summary.csv` (Hu et al., NSDI'24, which also summarises Jeon et al.'s
//! Philly trace, ATC'19): gang sizes are 1 with probability [`SINGLE_GPU_FRACTION`] and else a
//! power of two up to the published maximum, geometric in the exponent with a ratio solved so the
//! mean gang size matches; durations are log-normal with the published median, capped at the
//! published maximum, with σ solved so the capped mean matches. `gavel` is Gavel's own
//! Philly-derived generator (OSDI'20 artifact, `scheduler/utils.py`).

use std::collections::HashMap;

const ACME_SUMMARY: &str = include_str!("../../data/acme/cluster_summary.csv");

/// Probability of a 1-GPU job in the fitted profiles: Gavel's Philly generator uses 0.7; the
/// summaries give median gang size 1, which only bounds it from below by 0.5.
pub const SINGLE_GPU_FRACTION: f64 = 0.7;

/// A named workload shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Fitted to the Philly row (Jeon et al., ATC'19).
    Philly,
    /// Gavel's own Philly-derived generator.
    Gavel,
    /// Fitted to Acme's Seren cluster.
    AcmeSeren,
    /// Fitted to Acme's Kalos cluster (`acme`).
    AcmeKalos,
}

impl Profile {
    /// Names accepted by `profile=`.
    pub const NAMES: &str = "philly, gavel, acme (= acme-kalos), acme-seren, acme-kalos";

    /// Parses a profile name.
    pub fn from_name(name: &str) -> Option<Profile> {
        match name {
            "philly" => Some(Profile::Philly),
            "gavel" => Some(Profile::Gavel),
            "acme" | "acme-kalos" => Some(Profile::AcmeKalos),
            "acme-seren" => Some(Profile::AcmeSeren),
            _ => None,
        }
    }

    /// The row of `cluster_summary.csv` a fitted profile reproduces; `None` for `gavel`.
    pub fn summary_row(self) -> Option<&'static str> {
        match self {
            Profile::Philly => Some("Philly"),
            Profile::AcmeSeren => Some("Seren"),
            Profile::AcmeKalos => Some("Kalos"),
            Profile::Gavel => None,
        }
    }

    /// The distributions, fitted.
    pub fn fit(self) -> FittedProfile {
        let Some(row) = self.summary_row() else {
            return FittedProfile::gavel();
        };
        let summary = Summary::of(row);
        FittedProfile {
            gang_sizes: fit_gang_sizes(summary.mean_gpus, summary.max_gpus),
            durations: Durations::CappedLogNormal(CappedLogNormal::fit(
                summary.median_run_s,
                summary.mean_run_s,
                summary.max_run_s,
            )),
        }
    }
}

/// The published figures a profile is fitted to (GPU jobs only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// `avg_gpu_num`.
    pub mean_gpus: f64,
    /// `max_gpu`.
    pub max_gpus: u32,
    /// `avg_run_time_gpu`, seconds.
    pub mean_run_s: f64,
    /// `med_run_time_gpu`, seconds.
    pub median_run_s: f64,
    /// `max_run_time_gpu`, seconds.
    pub max_run_s: f64,
}

impl Summary {
    /// The figures of one row (`Philly`, `Seren`, `Kalos`, ...) of the embedded summary.
    pub fn of(row: &str) -> Summary {
        let mut lines = ACME_SUMMARY.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let values: Vec<&str> = lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&row))
            .unwrap_or_default();
        let by_name: HashMap<&str, f64> = header
            .iter()
            .zip(values.iter())
            .filter_map(|(name, value)| Some((*name, value.parse::<f64>().ok()?)))
            .collect();
        let get = |name: &str| by_name.get(name).copied().unwrap_or(f64::NAN);
        Summary {
            mean_gpus: get("avg_gpu_num"),
            max_gpus: get("max_gpu") as u32,
            mean_run_s: get("avg_run_time_gpu"),
            median_run_s: get("med_run_time_gpu"),
            max_run_s: get("max_run_time_gpu"),
        }
    }
}

/// Gang sizes and durations of a profile.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedProfile {
    /// (gang size, probability), sizes increasing, probabilities summing to 1.
    pub gang_sizes: Vec<(u32, f64)>,
    pub durations: Durations,
}

impl FittedProfile {
    fn gavel() -> FittedProfile {
        FittedProfile {
            gang_sizes: vec![(1, 0.7), (2, 0.1), (4, 0.15), (8, 0.05)],
            durations: Durations::GavelPhilly,
        }
    }
}

/// How a profile draws run times, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub enum Durations {
    /// `min(cap_s, exp(mu + sigma * Z))`, Z standard normal.
    CappedLogNormal(CappedLogNormal),
    /// Gavel: with probability 0.8, `60 * 10^U(1.5, 3)`, else `60 * 10^U(3, 4)` seconds.
    GavelPhilly,
}

impl Durations {
    /// The mean run time, seconds.
    pub fn mean_s(&self) -> f64 {
        match self {
            Durations::CappedLogNormal(d) => d.mean_s(),
            Durations::GavelPhilly => {
                // E[10^U(a, b)] = (10^b - 10^a) / ((b - a) ln 10).
                let mean_pow = |a: f64, b: f64| {
                    (10f64.powf(b) - 10f64.powf(a)) / ((b - a) * std::f64::consts::LN_10)
                };
                60.0 * (0.8 * mean_pow(1.5, 3.0) + 0.2 * mean_pow(3.0, 4.0))
            }
        }
    }
}

/// A log-normal run time capped at a maximum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CappedLogNormal {
    /// Mean of `ln X` (the log of the median), ln-seconds.
    pub mu: f64,
    /// Standard deviation of `ln X`.
    pub sigma: f64,
    /// Largest run time, seconds.
    pub cap_s: f64,
}

impl CappedLogNormal {
    /// The distribution with median `median_s` (so `mu = ln median_s`) whose mean after capping
    /// at `cap_s` is `mean_s`, σ found by bisection.
    pub fn fit(median_s: f64, mean_s: f64, cap_s: f64) -> CappedLogNormal {
        let mu = median_s.ln();
        let (mut low, mut high) = (1e-9_f64, 20.0_f64);
        for _ in 0..200 {
            let sigma = 0.5 * (low + high);
            let candidate = CappedLogNormal { mu, sigma, cap_s };
            if candidate.mean_s() < mean_s {
                low = sigma;
            } else {
                high = sigma;
            }
        }
        CappedLogNormal {
            mu,
            sigma: 0.5 * (low + high),
            cap_s,
        }
    }

    /// `E[min(X, c)] = e^(mu + sigma²/2) Φ((ln c - mu - sigma²)/sigma) + c (1 - Φ((ln c - mu)/sigma))`.
    pub fn mean_s(&self) -> f64 {
        let (mu, sigma, log_cap) = (self.mu, self.sigma, self.cap_s.ln());
        let below =
            (mu + 0.5 * sigma * sigma).exp() * normal_cdf((log_cap - mu - sigma * sigma) / sigma);
        below + self.cap_s * (1.0 - normal_cdf((log_cap - mu) / sigma))
    }
}

/// Gang sizes `1` (probability [`SINGLE_GPU_FRACTION`]) and `2^k`, `k = 1..=log2(max)`, with
/// weight `ratio^(k-1)`; `ratio` solved by bisection (in log space) so the mean is `mean_gpus`.
pub fn fit_gang_sizes(mean_gpus: f64, max_gpus: u32) -> Vec<(u32, f64)> {
    let top_exponent = 31 - max_gpus.max(2).leading_zeros(); // floor(log2(max))
    let sizes = |log_ratio: f64| {
        let weights: Vec<f64> = (1..=top_exponent)
            .map(|k| (log_ratio * f64::from(k - 1)).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        let mut sizes = vec![(1, SINGLE_GPU_FRACTION)];
        for (k, weight) in (1..=top_exponent).zip(weights) {
            sizes.push((1u32 << k, (1.0 - SINGLE_GPU_FRACTION) * weight / total));
        }
        sizes
    };
    let mean = |sizes: &[(u32, f64)]| sizes.iter().map(|(g, p)| f64::from(*g) * p).sum::<f64>();
    let (mut low, mut high) = (-20.0_f64, 20.0_f64);
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if mean(&sizes(middle)) < mean_gpus {
            low = middle;
        } else {
            high = middle;
        }
    }
    sizes(0.5 * (low + high))
}

/// Standard normal CDF, `Φ(x) = erfc(-x/√2)/2`, with the Numerical Recipes `erfcc` Chebyshev
/// fit (fractional error below 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 { value } else { 2.0 - value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_tables() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }

    #[test]
    fn fits_hit_their_targets() {
        for profile in [Profile::Philly, Profile::AcmeSeren, Profile::AcmeKalos] {
            let summary = Summary::of(profile.summary_row().unwrap());
            let fitted = profile.fit();
            let mean_gpus: f64 = fitted
                .gang_sizes
                .iter()
                .map(|(g, p)| f64::from(*g) * p)
                .sum();
            assert!((mean_gpus - summary.mean_gpus).abs() < 1e-6, "{profile:?}");
            assert!((fitted.durations.mean_s() / summary.mean_run_s - 1.0).abs() < 1e-6);
        }
    }
}
