//! Host (CPU) time a serving engine spends between GPU steps, with the GPU idle: scheduling the
//! next step, preparing its inputs and gathering the last step's outputs. An engine property
//! that depends on its version, taken from a published measurement, never fitted per row.
//!
//! vLLM before v0.6 ran these serially with the GPU. The vLLM team's profile (vLLM blog, "vLLM
//! v0.6.0: 2.7x Throughput Improvement and 5x Latency Reduction", 2024-09-05, section
//! "Performance Diagnosis"): for Llama 3 8B on one H100 under v0.5.3, the HTTP API server took
//! 33% of the execution time, scheduling (gathering the last step's results, scheduling and
//! preparing the next step's inputs) 29%, and GPU execution only 38%. v0.6 overlaps the
//! scheduling with the GPU (multi-step scheduling, asynchronous output processing) and moves the
//! API server to its own process.
//!
//! The V1 engine (the default from v0.8) runs its scheduler in the engine-core loop, serially
//! with the GPU step, until asynchronous scheduling became the default in v0.14.0 (vLLM PR
//! #27614, "Enable async scheduling by default"; v0.14.0 release notes, "Breaking Changes").
//! Its cost per sequence comes from a published A/B of the same run with and without
//! `--async-scheduling` ([`VLLM_V1_SYNC_SCHEDULER`]).
//!
//! The host work is a Python loop over the running sequences (block tables, positions, sampled
//! tokens), so the model charges a fixed host time per sequence per decode step. From the
//! v0.5.3 profile: host share / GPU share x the serving model's GPU step of the profiled setup,
//! divided by its batch. The blog's own second figure checks the form: with the API server the
//! host takes (33 + 29) / 38 = 1.6 GPU steps for Llama 3 8B on one H100 and, at the same host
//! time per sequence, about 0.8 for Llama 3 70B on four H100s, whose GPU step is about twice as
//! long; the blog measures v0.6.0 1.8x faster there (tests/serve_host.rs checks this).

use super::{ServeError, ServeSetup, decode_step};
use serde::Serialize;
use suanli_catalog::{Catalog, Precision};

/// A published profile of an engine step: the shares of wall time of the host and of the GPU,
/// and the setup they were measured on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HostProfile {
    pub source: &'static str,
    /// Catalog id of the profiled model.
    pub model: &'static str,
    /// Catalog id of the profiled accelerator.
    pub accelerator: &'static str,
    /// Concurrent sequences of the profiled run.
    pub batch: u64,
    /// Prompt and generated tokens of the profiled requests.
    pub input_len: u64,
    pub output_len: u64,
    /// Share of wall time the GPU executes the model.
    pub gpu_share: f64,
    /// Share of wall time the host schedules, prepares inputs and gathers outputs, GPU idle.
    pub host_share: f64,
}

/// vLLM before v0.6 (v0.5.3 profiled), without the HTTP API server: MLPerf harnesses and
/// offline benchmarks call the engine in-process and take token ids back. Batch 256 is vLLM's
/// default `max_num_seqs`, which the blog's 500-prompt ShareGPT throughput run fills; the
/// ShareGPT requests are taken as 256 + 256 tokens (the blog does not state their means; the
/// vLLM benchmark keeps prompts under 1,024 and prompt plus output under 2,048 tokens).
pub const VLLM_BEFORE_0_6: HostProfile = HostProfile {
    source: "vLLM blog 2024-09-05, vLLM v0.6.0 performance update: Llama 3 8B, 1 H100, v0.5.3",
    model: "llama-3.1-8b",
    accelerator: "h100-sxm5-80gb",
    batch: 256,
    input_len: 256,
    output_len: 256,
    gpu_share: 0.38,
    host_share: 0.29,
};

impl HostProfile {
    /// Host seconds per running sequence per decode step: the profiled GPU step (the serving
    /// model's, bf16 as the blog ran it) times host share / GPU share, over the profiled batch.
    pub fn host_s_per_sequence(&self, catalog: &Catalog) -> Result<f64, ServeError> {
        let step = self.gpu_step_s(catalog)?;
        Ok(step * self.host_share / self.gpu_share / self.batch as f64)
    }

    /// The serving model's decode step of the profiled setup, GPU only.
    pub fn gpu_step_s(&self, catalog: &Catalog) -> Result<f64, ServeError> {
        let setup = self.setup(catalog)?;
        let context = self.input_len as f64 + (self.output_len as f64 + 1.0) / 2.0;
        Ok(decode_step(&setup, self.batch, context)?.total_s)
    }

    /// The profiled setup in the serving model's terms.
    pub fn setup(&self, catalog: &Catalog) -> Result<ServeSetup, ServeError> {
        let missing = |e: suanli_catalog::CatalogError| ServeError::Invalid(e.to_string());
        let model = catalog.model(self.model).map_err(missing)?.clone();
        let accelerator = catalog
            .accelerator(self.accelerator)
            .map_err(missing)?
            .clone();
        let mut setup = ServeSetup::new(model, accelerator, self.input_len, self.output_len);
        setup.weight_precision = Precision::Bf16;
        setup.kv_precision = Precision::Bf16;
        setup.continuous_batching = true;
        Ok(setup)
    }
}

/// Throughput of one run with synchronous and with asynchronous scheduling at one batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AsyncAbPoint {
    /// Sequences decoding together.
    pub batch: u64,
    pub sync_tokens_per_s: f64,
    pub async_tokens_per_s: f64,
}

/// A published A/B of an engine with and without asynchronous scheduling. Each sequence
/// produces one token per step, so a step takes batch / throughput, and the host time the
/// asynchronous run hides is batch x (1 / sync - 1 / async) per step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AsyncAb {
    pub source: &'static str,
    pub points: &'static [AsyncAbPoint],
}

/// vLLM V1 with synchronous scheduling, from vLLM PR #23914 ("[Performance] implement
/// async_scheduling in single process mode", 2025-08-29; vLLM main between v0.10.1 and v0.10.2):
/// an A100 pair (TP 2), `max_num_seqs` 512, 512 generated tokens per prompt (prm800k prompts),
/// throughput with synchronous and asynchronous scheduling at four batches. Its asynchronous arm
/// hides the scheduler only (input preparation and the sampler's copy back stay serial), so this
/// is the lower bound of V1's serial host time; the PR does not name the model, which the
/// derivation does not need.
pub const VLLM_V1_SYNC_SCHEDULER: AsyncAb = AsyncAb {
    source: "vLLM PR #23914 (2025-08-29): sync vs async scheduling, A100 TP 2, V1 engine",
    points: &[
        AsyncAbPoint {
            batch: 32,
            sync_tokens_per_s: 1014.0,
            async_tokens_per_s: 1025.0,
        },
        AsyncAbPoint {
            batch: 64,
            sync_tokens_per_s: 1853.0,
            async_tokens_per_s: 1896.0,
        },
        AsyncAbPoint {
            batch: 128,
            sync_tokens_per_s: 3048.0,
            async_tokens_per_s: 3177.0,
        },
        AsyncAbPoint {
            batch: 256,
            sync_tokens_per_s: 4039.0,
            async_tokens_per_s: 4258.0,
        },
    ],
};

impl AsyncAb {
    /// Host seconds per running sequence per step: the least-squares slope, through the origin,
    /// of the hidden host time per step against the batch.
    pub fn host_s_per_sequence(&self) -> f64 {
        let (moment, square) = self.points.iter().fold((0.0, 0.0), |(m, q), p| {
            let batch = p.batch as f64;
            let hidden_s = batch / p.sync_tokens_per_s - batch / p.async_tokens_per_s;
            (m + batch * hidden_s, q + batch * batch)
        });
        if square > 0.0 { moment / square } else { 0.0 }
    }
}

/// Where an engine's serial host time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostCost {
    /// Shares of a profiled step ([`VLLM_BEFORE_0_6`]).
    Profiled(HostProfile),
    /// A with/without asynchronous scheduling A/B ([`VLLM_V1_SYNC_SCHEDULER`]).
    AsyncAb(AsyncAb),
}

impl HostCost {
    /// The publication the figure comes from.
    pub fn source(&self) -> &'static str {
        match self {
            HostCost::Profiled(profile) => profile.source,
            HostCost::AsyncAb(ab) => ab.source,
        }
    }

    /// Host seconds per running sequence per decode step.
    pub fn host_s_per_sequence(&self, catalog: &Catalog) -> Result<f64, ServeError> {
        match self {
            HostCost::Profiled(profile) => profile.host_s_per_sequence(catalog),
            HostCost::AsyncAb(ab) => Ok(ab.host_s_per_sequence()),
        }
    }
}

/// The major and minor numbers a version string (`0.4.3+rocm614`, `v0.10.2`) starts with;
/// `None` when it does not start with two numbers.
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version
        .trim()
        .trim_start_matches('v')
        .split(['.', '+', '-']);
    let major = parts.next()?.parse::<u32>().ok()?;
    let minor = parts.next()?.parse::<u32>().ok()?;
    Some((major, minor))
}

/// Whether a version string is before `major.minor`; `None` when it does not start with two
/// numbers ([`major_minor`]).
pub fn version_before(version: &str, major: u32, minor: u32) -> Option<bool> {
    Some(major_minor(version)? < (major, minor))
}
