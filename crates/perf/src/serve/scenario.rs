//! How requests reach a replica (MLPerf Inference scenarios) and the serving engine's scheduler
//! properties, and what each scenario predicts: throughput at the largest batch (offline), the
//! highest Poisson rate within p99 limits (server, interactive), one request in flight
//! (single-stream).

use super::host::{HostCost, VLLM_BEFORE_0_6, VLLM_V1_SYNC_SCHEDULER, major_minor};
use super::queue::{self, IterationCost, Latencies};
use super::{ServeError, ServeSetup, decode_step, memory, prefill};
use serde::Serialize;
use suanli_catalog::Catalog;

/// How requests reach the engine (MLPerf Inference rules, section "Scenarios").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A fixed batch run together (vendor throughput tables).
    Batch,
    /// Every request queued at once; the engine batches up to its cap.
    Offline,
    /// Poisson arrivals at the highest rate whose p99 TTFT and TPOT meet the limits.
    Server,
    /// `Server` under tighter limits.
    Interactive,
    /// One request in flight at a time.
    SingleStream,
}

/// A scenario name that is none of the known ones.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "unknown scenario `{0}`; expected offline, server, interactive, single-stream or empty (a fixed batch)"
)]
pub struct UnknownScenario(pub String);

impl std::str::FromStr for Scenario {
    type Err = UnknownScenario;
    fn from_str(text: &str) -> Result<Scenario, UnknownScenario> {
        Ok(match text {
            "" | "batch" => Scenario::Batch,
            "offline" => Scenario::Offline,
            "server" => Scenario::Server,
            "interactive" => Scenario::Interactive,
            "single-stream" => Scenario::SingleStream,
            other => return Err(UnknownScenario(other.to_string())),
        })
    }
}

/// Scheduler properties of a serving engine, with their sources; named per engine, never per
/// measurement. The model uses `token_budget` (the queueing model's iteration budget),
/// `kv_block_tokens` (KV capacity) and `host` (serial host scheduling, through
/// `ServeSetup::host_s_per_sequence`); `cuda_graphs` and `chunked_prefill` are recorded but not
/// yet used (every engine here chunks prompts or batches them under the same budget, and the
/// kernel launch cost is the training model's).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Engine {
    pub name: &'static str,
    /// Tokens one iteration may hold, decode tokens included.
    pub token_budget: u64,
    /// Tokens per paged KV-cache block; a sequence wastes half a block on average.
    pub kv_block_tokens: u64,
    /// Whether decode steps replay CUDA/HIP graphs (one launch per step, not per kernel).
    pub cuda_graphs: bool,
    /// Whether prompts are chunked into decode iterations (else they run alone, first).
    pub chunked_prefill: bool,
    /// Host scheduling that runs serially with the GPU, from a published measurement; `None`
    /// where the engine overlaps it with the GPU step.
    pub host: Option<HostCost>,
}

/// TensorRT-LLM: `max_num_tokens` 8192 and `tokens_per_block` 64 (trtllm-build defaults,
/// docs "Useful build-time flags"); in-flight batching with chunked context; CUDA graphs in the
/// PyTorch backend and the MLPerf harness.
pub const TENSORRT_LLM: Engine = Engine {
    name: "TensorRT-LLM",
    token_budget: 8192,
    kv_block_tokens: 64,
    cuda_graphs: true,
    chunked_prefill: true,
    host: None,
};

/// vLLM (V1 engine): `max_num_batched_tokens` 8192 for offline use, chunked prefill on, block
/// size 16, CUDA graphs captured up to batch 512 (vLLM docs, "Optimization and Tuning");
/// asynchronous scheduling, the default from v0.14.0 (vLLM PR #27614), hides the host's work.
pub const VLLM: Engine = Engine {
    name: "vLLM",
    token_budget: 8192,
    kv_block_tokens: 16,
    cuda_graphs: true,
    chunked_prefill: true,
    host: None,
};

/// SGLang: `chunked_prefill_size` 8192 on 80 GB-class GPUs, token-granular KV pages
/// (`page_size` 1), CUDA graphs (SGLang server arguments docs).
pub const SGLANG: Engine = Engine {
    name: "SGLang",
    token_budget: 8192,
    kv_block_tokens: 1,
    cuda_graphs: true,
    chunked_prefill: true,
    host: None,
};

/// Text Generation Inference: `max_batch_prefill_tokens` 4096, prefill batches run ahead of
/// decode rather than chunked into it, paged attention blocks of 16 (TGI launcher docs); TGI on
/// Gaudi (Optimum Habana) uses HPU graphs.
pub const TGI: Engine = Engine {
    name: "TGI",
    token_budget: 4096,
    kv_block_tokens: 16,
    cuda_graphs: true,
    chunked_prefill: false,
    host: None,
};

/// vLLM before v0.6 (v0.5.3 and earlier): the V0 engine scheduled each step, prepared its
/// inputs and processed its outputs while the GPU waited (vLLM blog, 2024-09-05); chunked
/// prefill was off by default (prompts ran as whole prefill steps ahead of decode).
pub const VLLM_BEFORE_0_6_ENGINE: Engine = Engine {
    name: "vLLM < 0.6",
    chunked_prefill: false,
    host: Some(HostCost::Profiled(VLLM_BEFORE_0_6)),
    ..VLLM
};

/// vLLM v0.8 to v0.13: the V1 engine (the default from v0.8) schedules each step serially with
/// the GPU unless `--async-scheduling` is given, which became the default in v0.14.0 (vLLM PR
/// #27614; v0.14.0 release notes).
pub const VLLM_V1_SYNC_ENGINE: Engine = Engine {
    name: "vLLM 0.8-0.13",
    host: Some(HostCost::AsyncAb(VLLM_V1_SYNC_SCHEDULER)),
    ..VLLM
};

/// vLLM's V0 engine with multi-step scheduling (`--num-scheduler-steps`, v0.6 to v0.9): one
/// scheduling pass for several decode steps, with the outputs processed asynchronously, so no
/// host time is serial per step (vLLM blog, 2024-09-05). MLPerf harnesses run it this way.
pub const VLLM_MULTI_STEP_ENGINE: Engine = Engine {
    name: "vLLM multi-step",
    ..VLLM
};

/// The engine a name and version refer to: [`engine_named`], and for vLLM [`vllm_of`] its
/// version.
pub fn engine_of(name: &str, version: Option<&str>) -> Engine {
    let engine = engine_named(name);
    if engine.name == VLLM.name {
        vllm_of(version)
    } else {
        engine
    }
}

/// vLLM by version: before 0.6 [`VLLM_BEFORE_0_6_ENGINE`], 0.8 to 0.13
/// [`VLLM_V1_SYNC_ENGINE`], otherwise (and for an empty or unreadable version) the current
/// engine.
pub fn vllm_of(version: Option<&str>) -> Engine {
    match version.and_then(major_minor) {
        Some(found) if found < (0, 6) => VLLM_BEFORE_0_6_ENGINE,
        Some(found) if ((0, 8)..(0, 14)).contains(&found) => VLLM_V1_SYNC_ENGINE,
        _ => VLLM,
    }
}

/// An engine as a plan uses it: its scheduler properties and the host time per running
/// sequence per decode step its published measurement gives (0 where the host's work overlaps
/// the GPU).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ChosenEngine {
    pub engine: Engine,
    pub host_s_per_sequence: f64,
}

impl ChosenEngine {
    /// `engine` with its host time resolved (a profile's needs the catalog's model and device).
    pub fn resolve(engine: Engine, catalog: &Catalog) -> Result<ChosenEngine, ServeError> {
        let host_s_per_sequence = match engine.host {
            Some(host) => host.host_s_per_sequence(catalog)?,
            None => 0.0,
        };
        Ok(ChosenEngine {
            engine,
            host_s_per_sequence,
        })
    }

    /// Charges the engine's host time to a setup.
    pub fn apply(&self, setup: &mut ServeSetup) {
        setup.host_s_per_sequence = self.host_s_per_sequence;
    }
}

impl Default for ChosenEngine {
    /// TensorRT-LLM, whose host work overlaps the GPU.
    fn default() -> ChosenEngine {
        ChosenEngine {
            engine: TENSORRT_LLM,
            host_s_per_sequence: 0.0,
        }
    }
}

/// The engine a free-text name refers to; TensorRT-LLM (and NVIDIA NIM, built on it) when the
/// name is not recognised.
pub fn engine_named(name: &str) -> Engine {
    let lower = name.to_ascii_lowercase();
    if lower.contains("vllm") {
        VLLM
    } else if lower.contains("sglang") {
        SGLANG
    } else if lower.contains("tgi") || lower.contains("text generation inference") {
        TGI
    } else {
        TENSORRT_LLM
    }
}

/// Sequences of the setup's lengths that fit in a replica's KV cache with `engine`'s blocks.
///
/// A static batch holds every sequence at full length at the end. Under continuous batching the
/// sequences are spread evenly over their lives, so one holds input + output / 2 tokens on
/// average, and paged engines allocate blocks as tokens come (Kwon et al. 2023, vLLM, section
/// 4.2; TensorRT-LLM's `MAX_UTILIZATION` capacity scheduler); each sequence wastes half a block.
pub fn sequences_that_fit(
    setup: &ServeSetup,
    engine: &Engine,
    continuous: bool,
) -> Result<u64, ServeError> {
    let probe = memory(setup, 1)?;
    let block = engine.kv_block_tokens.max(1) as f64;
    let held = if continuous {
        setup.input_len as f64 + setup.output_len as f64 / 2.0
    } else {
        (setup.input_len + setup.output_len) as f64
    };
    let per_sequence = held + block / 2.0;
    Ok((probe.kv_capacity_tokens as f64 / per_sequence) as u64)
}

/// The cost of an iteration of `setup` under `engine` with at most `max_batch` sequences.
pub fn iteration_cost(
    setup: &ServeSetup,
    engine: &Engine,
    max_batch: u64,
) -> Result<IterationCost, ServeError> {
    let context = setup.input_len as f64 + (setup.output_len as f64 + 1.0) / 2.0;
    let max_batch = max_batch.max(1);
    // Geometric grid of batch sizes, interpolated linearly in between.
    let mut points = Vec::new();
    let mut n = 1u64;
    while n < max_batch {
        points.push((n as f64, decode_step(setup, n, context)?.total_s));
        n = (n + 1).max((n as f64 * 1.25) as u64);
    }
    points.push((
        max_batch as f64,
        decode_step(setup, max_batch, context)?.total_s,
    ));
    // A full budget of whole prompts, per token: compute-bound prefill.
    let input = setup.input_len.max(1);
    let prompts = (engine.token_budget / input).max(1);
    // Prompt chunks of successive iterations stream through the pipeline stages.
    let prefill_token_s =
        prefill(setup, prompts, input)?.pipelined_s(setup.pp) / (prompts * input) as f64;
    Ok(IterationCost {
        decode_s: points,
        prefill_token_s,
        token_budget: engine.token_budget,
        max_batch,
    })
}

/// The highest request rate of one replica whose p99 TTFT and TPOT meet the limits.
pub fn server_rate(
    setup: &ServeSetup,
    engine: &Engine,
    max_batch: u64,
    ttft_p99_s: f64,
    tpot_p99_s: f64,
) -> Result<Option<Latencies>, ServeError> {
    let cost = iteration_cost(setup, engine, max_batch)?;
    Ok(queue::max_rate(
        &cost,
        setup.input_len as f64,
        setup.output_len as f64,
        ttft_p99_s,
        tpot_p99_s,
    ))
}
