//! Synthetic workloads at any scale: a homogeneous-node cluster and a seeded, deterministic job
//! stream with Poisson arrivals and gang sizes and run times drawn from a [`Profile`].
//!
//! ```
//! let spec: suanli_sim::synthetic::SyntheticSpec =
//!     "jobs=1000,accelerators=512,per_node=8,load=0.8,seed=7,profile=philly".parse().unwrap();
//! let workload = suanli_sim::synthetic::generate(&spec).unwrap();
//! assert_eq!(workload.jobs.len(), 1000);
//! ```
//!
//! Every rule and fitted parameter is written in docs/traces.md ("synthetic workloads").

mod profile;

pub use profile::{
    CappedLogNormal, Durations, FittedProfile, Profile, SINGLE_GPU_FRACTION, Summary,
    fit_gang_sizes, normal_cdf,
};

use crate::trace::DEFAULT_TENANT;
use crate::workload::{ClusterSpec, JobSpec, PoolSpec, Rates, TraceJob, Work};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Keys `parse` accepts.
pub const KEYS: &str = "jobs, accelerators, per_node, types, load, rate, seed, profile, tenants, \
                        checkpoint_interval_s";

/// How arrivals are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrivals {
    /// Offered load: the jobs' accelerator-seconds over (accelerators × arrival window); the
    /// window is set from the sampled jobs so the load is exact.
    Load(f64),
    /// Jobs per hour.
    RatePerHour(f64),
}

/// A parsed `--synthetic` spec; see [`KEYS`] and the defaults in [`SyntheticSpec::default`].
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// Jobs to generate.
    pub jobs: usize,
    /// Accelerators in the cluster (a multiple of `per_node`).
    pub accelerators: u32,
    /// Accelerators per node.
    pub per_node: u32,
    /// Accelerator type ids; nodes are split evenly over them.
    pub types: Vec<String>,
    /// Load or rate of the Poisson arrivals.
    pub arrivals: Arrivals,
    /// Seed of the random stream; same seed, same jobs.
    pub seed: u64,
    /// Gang-size and run-time distributions.
    pub profile: Profile,
    /// Tenants the jobs are spread over uniformly.
    pub tenants: u32,
    /// Checkpoint interval set on every job.
    pub checkpoint_interval_s: Option<u64>,
}

impl Default for SyntheticSpec {
    /// `jobs=10000,accelerators=1024,per_node=8,types=h100-sxm5-80gb,load=0.8,seed=0,
    /// profile=philly,tenants=1`.
    fn default() -> Self {
        SyntheticSpec {
            jobs: 10_000,
            accelerators: 1024,
            per_node: 8,
            types: vec!["h100-sxm5-80gb".to_string()],
            arrivals: Arrivals::Load(0.8),
            seed: 0,
            profile: Profile::Philly,
            tenants: 1,
            checkpoint_interval_s: None,
        }
    }
}

/// A bad `--synthetic` spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A key outside [`KEYS`].
    #[error("synthetic spec: unknown key {key:?}; known keys: {KEYS}")]
    UnknownKey { key: String },
    /// A value the key does not accept.
    #[error("synthetic spec: `{key}={value}`: expected {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: String,
    },
    /// Keys that do not fit together.
    #[error("synthetic spec: {0}")]
    Inconsistent(String),
}

impl std::str::FromStr for SyntheticSpec {
    type Err = SpecError;

    /// Parses `key=value` pairs separated by commas; unspecified keys keep their defaults.
    fn from_str(text: &str) -> Result<Self, SpecError> {
        let mut spec = SyntheticSpec::default();
        let (mut load, mut rate) = (None, None);
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| SpecError::BadValue {
                key: pair.to_string(),
                value: String::new(),
                expected: "key=value".to_string(),
            })?;
            let (key, value) = (key.trim(), value.trim());
            let bad = |expected: &str| SpecError::BadValue {
                key: key.to_string(),
                value: value.to_string(),
                expected: expected.to_string(),
            };
            let positive_f64 = |expected: &str| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| bad(expected))
            };
            let positive_u32 = || {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| bad("a whole number > 0"))
            };
            match key {
                "jobs" => {
                    spec.jobs = value
                        .parse::<usize>()
                        .ok()
                        .filter(|v| (1..=crate::limits::MAX_JOBS).contains(v))
                        .ok_or_else(|| bad("a whole number of jobs > 0, at most 10000000"))?;
                }
                "accelerators" => {
                    spec.accelerators = positive_u32()?;
                    if u64::from(spec.accelerators) > crate::limits::MAX_ACCELERATORS {
                        return Err(bad("a whole number of accelerators > 0, at most 10000000"));
                    }
                }
                "per_node" => spec.per_node = positive_u32()?,
                "types" => {
                    spec.types = value.split('|').map(|t| t.trim().to_string()).collect();
                    if spec.types.iter().any(String::is_empty) {
                        return Err(bad("type ids separated by |, e.g. h100-sxm5-80gb|mi300x"));
                    }
                }
                "load" => load = Some(positive_f64("an offered load > 0, e.g. 0.8")?),
                "rate" => rate = Some(positive_f64("jobs per hour > 0")?),
                "seed" => spec.seed = value.parse().map_err(|_| bad("a whole number"))?,
                "profile" => {
                    spec.profile = Profile::from_name(value).ok_or_else(|| bad(Profile::NAMES))?;
                }
                "tenants" => spec.tenants = positive_u32()?,
                "checkpoint_interval_s" => {
                    spec.checkpoint_interval_s = Some(u64::from(positive_u32()?));
                }
                _ => {
                    return Err(SpecError::UnknownKey {
                        key: key.to_string(),
                    });
                }
            }
        }
        spec.arrivals = match (load, rate) {
            (Some(_), Some(_)) => {
                return Err(SpecError::Inconsistent(
                    "give load or rate, not both".to_string(),
                ));
            }
            (Some(load), None) => Arrivals::Load(load),
            (None, Some(rate)) => Arrivals::RatePerHour(rate),
            (None, None) => spec.arrivals,
        };
        spec.cluster()?;
        Ok(spec)
    }
}

impl SyntheticSpec {
    /// The cluster: `accelerators / per_node` nodes split evenly over `types` (the first types
    /// take the remainder), one pool per type, default topology.
    pub fn cluster(&self) -> Result<ClusterSpec, SpecError> {
        if !self.accelerators.is_multiple_of(self.per_node) {
            return Err(SpecError::Inconsistent(format!(
                "accelerators={} is not a multiple of per_node={}",
                self.accelerators, self.per_node
            )));
        }
        let nodes = self.accelerators / self.per_node;
        let types = self.types.len() as u32;
        if types == 0 || nodes < types {
            return Err(SpecError::Inconsistent(format!(
                "{nodes} nodes cannot be split over {types} types"
            )));
        }
        let pools = self
            .types
            .iter()
            .enumerate()
            .map(|(index, accelerator)| PoolSpec {
                name: accelerator.clone(),
                accelerator: accelerator.clone(),
                nodes: nodes / types + u32::from((index as u32) < nodes % types),
                accelerators_per_node: self.per_node,
                nodes_per_leaf: crate::presets::DEFAULT_NODES_PER_LEAF,
                leaves_per_pod: crate::presets::DEFAULT_LEAVES_PER_POD,
            })
            .collect();
        Ok(ClusterSpec {
            name: "synthetic".to_string(),
            pools,
        })
    }
}

/// A generated workload.
#[derive(Clone, Debug)]
pub struct SyntheticWorkload {
    /// The cluster of the spec.
    pub cluster: ClusterSpec,
    /// The jobs, in arrival order.
    pub jobs: Vec<TraceJob>,
    /// The distributions used, gang sizes already clipped to the smallest pool.
    pub profile: FittedProfile,
    /// The Poisson arrival rate used, jobs per second (for `load`, jobs over the arrival window).
    pub arrival_rate_per_s: f64,
}

/// Generates the workload of `spec` (deterministic for a given spec, seed included). Gang sizes
/// larger than the smallest pool are clipped to it, so that every job fits every type.
pub fn generate(spec: &SyntheticSpec) -> Result<SyntheticWorkload, SpecError> {
    let cluster = spec.cluster()?;
    let smallest_pool = cluster
        .pools
        .iter()
        .map(|p| p.nodes * p.accelerators_per_node)
        .min()
        .unwrap_or(1);
    let mut profile = spec.profile.fit();
    profile.gang_sizes = clip_gang_sizes(&profile.gang_sizes, smallest_pool);
    let accelerators: f64 = cluster
        .pools
        .iter()
        .map(|p| f64::from(p.nodes * p.accelerators_per_node))
        .sum();
    let cumulative: Vec<(u32, f64)> = profile
        .gang_sizes
        .iter()
        .scan(0.0, |sum, (g, p)| {
            *sum += p;
            Some((*g, *sum))
        })
        .collect();
    let rates: Rates = cluster
        .pools
        .iter()
        .map(|p| (p.accelerator.clone(), 1.0))
        .collect();
    let tenants: Vec<String> = match spec.tenants {
        1 => vec![DEFAULT_TENANT.to_string()],
        n => (0..n).map(|i| format!("tenant-{i}")).collect(),
    };
    let mut rng = StdRng::seed_from_u64(spec.seed);
    // Unit-rate exponential gaps, scaled below once the jobs' work is known.
    let mut gaps = Vec::with_capacity(spec.jobs);
    let mut jobs = Vec::with_capacity(spec.jobs);
    for index in 0..spec.jobs {
        gaps.push(-(1.0 - rng.random::<f64>()).ln());
        let draw: f64 = rng.random();
        let gang_size = cumulative
            .iter()
            .find(|(_, upto)| draw < *upto)
            .or(cumulative.last())
            .map_or(1, |(g, _)| *g);
        let duration_s = sample_duration_s(&profile.durations, &mut rng);
        let tenant = tenants[rng.random_range(0..tenants.len())].clone();
        jobs.push(TraceJob {
            arrival_s: 0,
            spec: JobSpec {
                name: index.to_string(),
                gang_size,
                tenant,
                priority: 0,
                work: Work {
                    total_units: duration_s as f64,
                    units_per_s: rates.clone(),
                },
                runtime_estimate_s: Some(duration_s),
                checkpoint_interval_s: spec.checkpoint_interval_s,
                checkpoint_cost_s: 0,
            },
        });
    }
    let arrival_rate_per_s = place_arrivals(&mut jobs, &gaps, spec.arrivals, accelerators);
    Ok(SyntheticWorkload {
        cluster,
        jobs,
        profile,
        arrival_rate_per_s,
    })
}

/// Parses a spec such as `jobs=100000,accelerators=16384,load=0.9` and generates it.
pub fn from_spec(text: &str) -> Result<SyntheticWorkload, SpecError> {
    generate(&text.parse()?)
}

/// Sets the arrival times of `jobs` from unit-rate exponential `gaps` and returns the arrival rate
/// (jobs per second). With `Arrivals::Load(load)` the first job arrives at 0 and the gaps are
/// scaled so that the arrival window `T` (first to last arrival) carries exactly `load` times the
/// cluster's capacity: `T = sum(gang size x run time) / (load x accelerators)`. Scaling the
/// sampled jobs' own accelerator-seconds, rather than using the distribution's mean, matters for
/// heavy-tailed run times: a sample of 20,000 Philly jobs holds ~15% less work than the mean
/// says, so the offered load would fall short of the one asked for. Conditioned on their
/// number, Poisson arrivals in a window are uniform order statistics, which normalised
/// exponential gaps are (Devroye 1986, "Non-Uniform Random Variate Generation", V.2).
fn place_arrivals(
    jobs: &mut [TraceJob],
    gaps: &[f64],
    arrivals: Arrivals,
    accelerators: f64,
) -> f64 {
    match arrivals {
        Arrivals::Load(load) => {
            let work_acc_s: f64 = jobs
                .iter()
                .map(|j| f64::from(j.spec.gang_size) * j.spec.work.total_units)
                .sum();
            let window_s = work_acc_s / (load * accelerators);
            // Gaps between jobs: the first job's own gap is dropped so it arrives at 0.
            let between: f64 = gaps.iter().skip(1).sum();
            let mut clock = 0.0_f64;
            for (index, (job, gap)) in jobs.iter_mut().zip(gaps).enumerate() {
                if index > 0 {
                    clock += gap;
                }
                let at_s = if between > 0.0 {
                    window_s * clock / between
                } else {
                    0.0
                };
                job.arrival_s = at_s.round() as u64;
            }
            if window_s > 0.0 {
                (jobs.len().saturating_sub(1)) as f64 / window_s
            } else {
                0.0
            }
        }
        Arrivals::RatePerHour(rate) => {
            let per_s = rate / 3600.0;
            let mut clock_s = 0.0_f64;
            for (job, gap) in jobs.iter_mut().zip(gaps) {
                clock_s += gap / per_s;
                job.arrival_s = clock_s as u64;
            }
            per_s
        }
    }
}

/// Moves the probability of sizes above `limit` onto `limit`.
fn clip_gang_sizes(sizes: &[(u32, f64)], limit: u32) -> Vec<(u32, f64)> {
    let mut clipped: Vec<(u32, f64)> = Vec::new();
    for (size, probability) in sizes {
        let size = (*size).min(limit);
        match clipped.last_mut() {
            Some((last, p)) if *last == size => *p += probability,
            _ => clipped.push((size, *probability)),
        }
    }
    clipped
}

/// Whole seconds, at least 1.
fn sample_duration_s(durations: &Durations, rng: &mut StdRng) -> u64 {
    let seconds = match durations {
        Durations::CappedLogNormal(d) => {
            // Box-Muller; 1 - u keeps the logarithm finite.
            let (u, v): (f64, f64) = (rng.random(), rng.random());
            let z = (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            (d.mu + d.sigma * z).exp().min(d.cap_s)
        }
        Durations::GavelPhilly => {
            let (short, u): (f64, f64) = (rng.random(), rng.random());
            let (low, high) = if short < 0.8 { (1.5, 3.0) } else { (3.0, 4.0) };
            60.0 * 10f64.powf(low + (high - low) * u)
        }
    };
    (seconds.round() as u64).max(1)
}
