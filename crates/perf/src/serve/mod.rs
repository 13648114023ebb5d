//! Inference (serving) performance: prefill time, decode step time, KV-cache size and capacity,
//! memory per device, and continuous-batching throughput for one model on one tensor- and
//! pipeline-parallel replica.
//!
//! Prefill runs every prompt token through the weights at once and is compute-bound; decode
//! produces one token per sequence per step and reads every weight and the whole KV cache, so it
//! is bound by memory bandwidth until the batch is large (Pope et al. 2022, "Efficiently Scaling
//! Transformer Inference", section 2). Both reuse the training model's kernel roofline
//! ([`crate::kernels::Device::gemm_s`], [`crate::kernels::Device::stream_s`]) and collectives
//! ([`crate::collective::Group`]).
//!
//! ```
//! use suanli_catalog::{Catalog, Precision};
//! use suanli_perf::serve::{self, ServeSetup};
//!
//! let catalog = Catalog::builtin();
//! let model = catalog.model("llama-3.1-8b").unwrap().clone();
//! let h100 = catalog.accelerator("h100-sxm5-80gb").unwrap().clone();
//! let mut setup = ServeSetup::new(model, h100, 1024, 256);
//! setup.weight_precision = Precision::Fp8;
//! let estimate = serve::estimate(&setup).unwrap();
//! assert!(estimate.tpot_s > 0.002 && estimate.tpot_s < 0.2);
//! ```

use serde::Serialize;
use suanli_catalog::{Accelerator, Model, Precision};

pub mod fitted;
pub mod host;
mod memory;
pub mod queue;
pub mod scenario;
pub mod sim;
mod time;

pub use memory::{
    STATIC_ALLOCATION_MEMORY_FRACTION, ServeMemory, USABLE_MEMORY_FRACTION, kv_bytes_per_token,
    kv_bytes_per_token_per_device, memory, weight_bytes_per_device,
};
pub use time::{
    PassTime, decode_step, expected_experts_touched, expert_imbalance, math_precision, prefill,
};

/// How the decode attention kernel reads the KV cache under grouped-query attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecodeAttention {
    /// One pass per KV head serves all its query heads (FlashDecoding, vLLM paged attention v2,
    /// TensorRT-LLM from v0.7 and its XQA kernels, FlashMLA).
    Grouped,
    /// One pass per query head re-reads the KV head it shares (TensorRT-LLM masked multi-head
    /// attention up to v0.6; "MMHA optimization for MQA and GQA" landed in NVIDIA/TensorRT-LLM
    /// PR #524, December 2023, and the XQA kernels later): the KV traffic is heads / kv_heads
    /// times larger.
    PerQueryHead,
}

/// Everything the serving model needs.
#[derive(Clone, Debug, Serialize)]
pub struct ServeSetup {
    pub model: Model,
    pub accelerator: Accelerator,
    /// Tensor-parallel size of one replica.
    pub tp: u32,
    /// Pipeline-parallel size of one replica.
    pub pp: u32,
    /// Expert-parallel size inside the tensor-parallel group (divides tp): each rank holds
    /// experts/ep whole experts split over tp/ep ranks instead of a 1/tp slice of every expert.
    pub ep: u32,
    /// Replicas (data parallel); devices = tp x pp x replicas.
    pub replicas: u32,
    /// Accelerators per node.
    pub per_node: u32,
    /// Scale-out bandwidth per accelerator, one direction, GB/s.
    pub scaleout_gb_per_s: f64,
    pub weight_precision: Precision,
    pub kv_precision: Precision,
    /// Prompt tokens per request.
    pub input_len: u64,
    /// Generated tokens per request.
    pub output_len: u64,
    /// Concurrent sequences per replica; `None` = the largest that fits.
    pub batch: Option<u64>,
    pub decode_attention: DecodeAttention,
    /// Whether sequences start and finish at different times (continuous batching), so each
    /// holds input + output / 2 KV tokens on average, rather than a static batch at full length.
    pub continuous_batching: bool,
    /// Serving GEMM efficiency of the accelerator's family relative to the training model's,
    /// fitted by `suanli validate serve --fit` (`fitted::gemm_scale`); 1 = the training value.
    pub gemm_scale: f64,
    /// Host (CPU) seconds per running sequence per decode step with the GPU idle (engines that
    /// schedule serially with the GPU, [`host::HostCost`]); 0 = overlapped.
    pub host_s_per_sequence: f64,
    /// Fraction of the catalog's device memory the engine may use
    /// ([`USABLE_MEMORY_FRACTION`], or [`STATIC_ALLOCATION_MEMORY_FRACTION`]
    /// for an engine that holds none back).
    pub memory_fraction: f64,
}

impl ServeSetup {
    /// One device, bf16 weights and KV cache, grouped decode attention, largest batch.
    pub fn new(
        model: Model,
        accelerator: Accelerator,
        input_len: u64,
        output_len: u64,
    ) -> ServeSetup {
        ServeSetup {
            gemm_scale: fitted::gemm_scale(&accelerator.id),
            per_node: accelerator.default_per_node.max(1),
            scaleout_gb_per_s: accelerator.scaleout_gb_per_s,
            model,
            accelerator,
            tp: 1,
            pp: 1,
            ep: 1,
            replicas: 1,
            weight_precision: Precision::Bf16,
            kv_precision: Precision::Bf16,
            input_len,
            output_len,
            batch: None,
            decode_attention: DecodeAttention::Grouped,
            continuous_batching: false,
            host_s_per_sequence: 0.0,
            memory_fraction: USABLE_MEMORY_FRACTION,
        }
    }

    /// Devices of one replica.
    pub fn devices_per_replica(&self) -> u64 {
        (self.tp * self.pp) as u64
    }

    /// Transformer layers on the most loaded pipeline stage.
    pub fn layers_per_stage(&self) -> u32 {
        self.model.layers.div_ceil(self.pp.max(1))
    }

    /// KV-cache tokens one sequence holds on average: input + output at the end of a static
    /// batch, input + output / 2 under continuous batching.
    pub fn held_tokens(&self) -> u64 {
        if self.continuous_batching {
            self.input_len + self.output_len.div_ceil(2)
        } else {
            self.input_len + self.output_len
        }
    }
}

/// Why a setup cannot be served.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ServeError {
    #[error("invalid setup: {0}")]
    Invalid(String),
    #[error(
        "{model} does not fit on {accelerator} with tp={tp}, pp={pp}: the weights alone take \
         {weights_gb:.1} GB per device and {usable_gb:.1} GB is usable; use more devices \
         (larger --tp/--pp), a lower --precision, or a larger accelerator"
    )]
    WeightsTooLarge {
        model: String,
        accelerator: String,
        tp: u32,
        pp: u32,
        weights_gb: f64,
        usable_gb: f64,
    },
    #[error(
        "batch {batch} does not fit: it needs {needed_tokens} KV-cache tokens per replica but \
         only {capacity_tokens} fit ({max_batch} sequences of {seq_len} tokens); lower --batch, \
         use --kv-precision fp8, or add devices"
    )]
    BatchTooLarge {
        batch: u64,
        needed_tokens: u64,
        capacity_tokens: u64,
        max_batch: u64,
        seq_len: u64,
    },
}

/// What the serving model predicts for one setup.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServeEstimate {
    /// Concurrent sequences per replica.
    pub batch: u64,
    /// Time to first token of a request arriving alone (prefill of its prompt).
    pub ttft_s: f64,
    /// Time per output token at the batch, mid-sequence context.
    pub tpot_s: f64,
    /// TTFT + (output_len - 1) x TPOT.
    pub e2e_latency_s: f64,
    /// Output tokens per second per replica at the batch, prefills included.
    pub output_tokens_per_s_per_replica: f64,
    /// Output tokens per second over all replicas.
    pub output_tokens_per_s_total: f64,
    pub output_tokens_per_s_per_device: f64,
    /// Prefill of one request, by kind.
    pub prefill: PassTime,
    /// One decode step at the batch and mid-sequence context, by kind.
    pub decode: PassTime,
    pub memory: ServeMemory,
    /// KV-cache bytes per token for the whole model (one replica, unsharded).
    pub kv_bytes_per_token: f64,
    pub devices: u64,
    /// Precision the weight GEMMs run at (16-bit when the device lacks the weights' format).
    pub gemm_precision: Precision,
}

/// Whether the replica shape is one the model can be split into: tp divides the attention heads
/// (Megatron splits whole heads, Shoeybi et al. 2019), ep divides tp and the experts, pp is at
/// most the layers, and the lengths are positive.
pub fn check(setup: &ServeSetup) -> Result<(), ServeError> {
    if setup.tp == 0 || setup.pp == 0 || setup.replicas == 0 {
        return Err(ServeError::Invalid(
            "tp, pp and replicas must be at least 1".into(),
        ));
    }
    if !setup.model.heads.is_multiple_of(setup.tp) {
        return Err(ServeError::Invalid(format!(
            "tp={} must divide the model's {} attention heads",
            setup.tp, setup.model.heads
        )));
    }
    if setup.ep == 0 || !setup.tp.is_multiple_of(setup.ep) {
        return Err(ServeError::Invalid(format!(
            "ep={} must divide tp={}",
            setup.ep, setup.tp
        )));
    }
    match &setup.model.moe {
        Some(moe) if !moe.experts.is_multiple_of(setup.ep) => {
            return Err(ServeError::Invalid(format!(
                "ep={} must divide the model's {} experts",
                setup.ep, moe.experts
            )));
        }
        None if setup.ep > 1 => {
            return Err(ServeError::Invalid(format!(
                "ep={} needs a mixture-of-experts model; {} is dense",
                setup.ep, setup.model.name
            )));
        }
        _ => {}
    }
    if setup.pp > setup.model.layers {
        return Err(ServeError::Invalid(format!(
            "pp={} exceeds the model's {} layers",
            setup.pp, setup.model.layers
        )));
    }
    if setup.input_len == 0 || setup.output_len == 0 {
        return Err(ServeError::Invalid(
            "input and output lengths must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Estimates a setup: the given batch, or the largest that fits.
pub fn estimate(setup: &ServeSetup) -> Result<ServeEstimate, ServeError> {
    check(setup)?;
    let probe = memory(setup, 1)?;
    let batch = match setup.batch {
        Some(batch) => {
            let seq_len = setup.held_tokens();
            if batch * seq_len > probe.kv_capacity_tokens || batch == 0 {
                return Err(ServeError::BatchTooLarge {
                    batch,
                    needed_tokens: batch * seq_len,
                    capacity_tokens: probe.kv_capacity_tokens,
                    max_batch: probe.max_sequences,
                    seq_len,
                });
            }
            batch
        }
        None => probe.max_sequences.max(1),
    };
    if probe.max_sequences == 0 {
        return Err(ServeError::BatchTooLarge {
            batch,
            needed_tokens: setup.input_len + setup.output_len,
            capacity_tokens: probe.kv_capacity_tokens,
            max_batch: 0,
            seq_len: setup.input_len + setup.output_len,
        });
    }
    let memory = memory(setup, batch)?;
    let first = prefill(setup, 1, setup.input_len)?;
    let batch_prefill = prefill(setup, batch, setup.input_len)?;
    // The KV read grows linearly with context, so the mean over the output equals the step at
    // the mean context.
    let context = setup.input_len as f64 + (setup.output_len as f64 + 1.0) / 2.0;
    let step = decode_step(setup, batch, context)?;
    let output = setup.output_len as f64;
    // Continuous batching at a steady concurrency of `batch`: every output_len steps the
    // batch's worth of prompts is prefilled once (Kwon et al. 2023; Yu et al. 2022, Orca),
    // the same work as a static batch of prefill plus output_len decode steps. The prompts
    // stream through the pipeline stages, so they occupy the replica one stage time each.
    let cycle_s = batch_prefill.pipelined_s(setup.pp) + output * step.total_s;
    let per_replica = batch as f64 * output / cycle_s;
    let devices = setup.devices_per_replica() * setup.replicas as u64;
    let total = per_replica * setup.replicas as f64;
    Ok(ServeEstimate {
        batch,
        ttft_s: first.total_s,
        tpot_s: step.total_s,
        e2e_latency_s: first.total_s + (output - 1.0) * step.total_s,
        output_tokens_per_s_per_replica: per_replica,
        output_tokens_per_s_total: total,
        output_tokens_per_s_per_device: total / devices as f64,
        prefill: first,
        decode: step,
        memory,
        kv_bytes_per_token: kv_bytes_per_token(&setup.model, setup.kv_precision),
        devices,
        gemm_precision: math_precision(&setup.accelerator, setup.weight_precision),
    })
}
