//! Validation of the serving model against published inference runs: reads `inference-runs.csv`
//! (schema in shared/validation/README.md) as it is, evaluates each row with its stated
//! accelerator, parallelism, precisions, batch and lengths, and reports the error in the same
//! shape as training validation.

use crate::serve::scenario::{
    Engine, Scenario, VLLM_MULTI_STEP_ENGINE, VLLM_V1_SYNC_ENGINE, engine_of, sequences_that_fit,
    server_rate,
};
use crate::serve::{self, DecodeAttention, ServeEstimate, ServeSetup};
use crate::validate::{Report, RowError, RowResult, TrainingRun, need, row_model, summarise};
use serde::Deserialize;
use suanli_catalog::{Catalog, Precision};

/// One row of inference-runs.csv; empty cells are `None`.
#[derive(Clone, Debug, Deserialize)]
pub struct InferenceRun {
    pub id: String,
    #[serde(default)]
    pub source: String,
    pub model: String,
    /// The model columns (`params_b` to `moe_shared_experts`), which are training-runs.csv's:
    /// read from the same record by that table's reader.
    #[serde(skip)]
    pub shape: TrainingRun,
    pub accelerator: String,
    pub num_accelerators: Option<u64>,
    pub tp: Option<u32>,
    pub pp: Option<u32>,
    pub weight_precision: Option<String>,
    pub kv_precision: Option<String>,
    pub batch: Option<u64>,
    /// Mean prompt tokens per request (fractional for measured means; empty = the dataset's).
    pub input_len: Option<f64>,
    /// Mean generated tokens per request (fractional for measured means).
    pub output_len: Option<f64>,
    pub metric: String,
    pub measured: Option<f64>,
    #[serde(default)]
    pub engine: String,
    /// `offline`, `server`, `interactive`, `single-stream`, or empty (a fixed batch).
    #[serde(default)]
    pub scenario: Option<String>,
    /// Limit on the 99th-percentile time to first token, ms (server and interactive rows).
    #[serde(default)]
    pub ttft_slo_ms: Option<f64>,
    /// Limit on the 99th-percentile time per output token, ms.
    #[serde(default)]
    pub tpot_slo_ms: Option<f64>,
    /// The engine's version as the source states it (`0.4.3+rocm614`); empty = not stated.
    #[serde(default)]
    pub engine_version: Option<String>,
}

/// Reads rows from CSV text; the error names the line and the field.
pub fn read_inference_runs(
    csv_text: &str,
) -> Result<Vec<InferenceRun>, crate::validate::TableError> {
    let rows = crate::validate::read_row_pairs::<InferenceRun, TrainingRun>(csv_text)?;
    Ok(rows
        .into_iter()
        .map(|(mut run, shape)| {
            run.shape = shape;
            run
        })
        .collect())
}

/// The decode attention kernel an engine used: TensorRT-LLM up to v0.6 ran masked multi-head
/// attention, one pass per query head; "MMHA optimization for MQA and GQA" arrived with the
/// December 2023 update (NVIDIA/TensorRT-LLM PR #524, released as v0.7), XQA kernels after.
/// Other engines and later versions read each KV head once. The version is the first
/// `vMAJOR.MINOR` in the `source` citation; an engine property, not a per-row constant.
pub fn decode_attention_of(engine: &str, source: &str) -> DecodeAttention {
    if !engine.to_ascii_lowercase().contains("tensorrt") {
        return DecodeAttention::Grouped;
    }
    let version = source.split_whitespace().find_map(|word| {
        let rest = word.strip_prefix('v')?;
        let mut parts = rest.split('.');
        let major = parts.next()?.parse::<u32>().ok()?;
        let minor = parts.next()?.parse::<u32>().ok()?;
        Some((major, minor))
    });
    match version {
        Some(version) if version < (0, 7) => DecodeAttention::PerQueryHead,
        _ => DecodeAttention::Grouped,
    }
}

/// A mean length in whole tokens: the model's setup counts whole tokens, and rounding a mean of
/// a few hundred moves a prediction by under 0.2%.
fn mean_tokens(mean: f64, field: &str) -> Result<u64, RowError> {
    if !(mean.is_finite() && (0.5..=1e7).contains(&mean)) {
        return Err(RowError::TokenCount {
            column: field.into(),
            mean,
        });
    }
    Ok(mean.round() as u64)
}

/// An MLPerf Inference dataset and the mean prompt length of its samples, which the rows leave
/// empty (prompts vary in length; the logs give only generated tokens). Rows that use it say so.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlperfDataset {
    /// The benchmark name as it appears in the `model` column, e.g. `MLPerf llama2-70b`.
    pub benchmark: &'static str,
    /// Prompt-length cap of the preprocessing.
    pub prompt_cap: u64,
    /// Samples in the dataset.
    pub samples: u64,
    /// Mean of the dataset's tokenised prompt lengths (`tok_input_length` or `tok_input_len` of
    /// MLCommons' preprocessed set), tokens.
    pub mean_input_len: f64,
    /// Where the cap and the mean come from.
    pub source: &'static str,
}

/// Where the mean prompt lengths come from: per-sample token lengths that
/// openshift-psap/performance-dashboard extracted from MLCommons' preprocessed datasets
/// (`open_orca_gpt4_tokenized_llama.sampled_24576.pkl`, `09292024_mixtral_15k_mintoken2_v1.pkl`,
/// `mlperf_llama3.1_405b_dataset_8313_processed_fp16_eval.pkl`) into `mlperf-data/summaries/*.csv`
/// with `mlperf-data/original/generate_dataset_summaries.py` (commit 7100702). Checks that share
/// no figure with the means: the sample counts are MLCommons' (24,576, 15,000, 8,313), the
/// longest llama2-70b prompt is 1,021 tokens (the cap is 1,024), and the 405B file's mean
/// reference output, 684.685 tokens, is the 684.68 of mlcommons/inference
/// language/llama3.1-405b/README.md.
pub const MLPERF_LENGTHS_SOURCE: &str =
    "openshift-psap/performance-dashboard mlperf-data/summaries (MLCommons tokenised prompts)";

/// The MLPerf datasets of the validation table.
pub const MLPERF_DATASETS: &[MlperfDataset] = &[
    MlperfDataset {
        benchmark: "MLPerf llama2-70b",
        prompt_cap: 1024,
        samples: 24_576,
        mean_input_len: 222.33,
        source: "llama2-70b-99.csv; cap: mlcommons/inference language/llama2-70b/processorca.py",
    },
    MlperfDataset {
        benchmark: "MLPerf mixtral-8x7b",
        prompt_cap: 2048,
        samples: 15_000,
        mean_input_len: 427.39,
        source: "mixtral-8x7b.csv; cap: mlcommons/inference language/mixtral-8x7b",
    },
    MlperfDataset {
        benchmark: "MLPerf llama3.1-405b",
        prompt_cap: 20000,
        samples: 8_313,
        mean_input_len: 9428.64,
        source: "llama3-1-405b.csv; cap: NVIDIA MLPerf v5.1 llama3_1-405b max_input_len",
    },
];

/// The MLPerf dataset a `model` cell names, if any.
pub fn dataset_of(model: &str) -> Option<&'static MlperfDataset> {
    MLPERF_DATASETS.iter().find(|d| model.contains(d.benchmark))
}

/// The serving setup a row describes.
pub fn row_setup(catalog: &Catalog, row: &InferenceRun) -> Result<ServeSetup, RowError> {
    let model = row_model(&row.shape)?;
    let accelerator = catalog.accelerator(&row.accelerator)?.clone();
    let input_len = match row.input_len {
        Some(mean) => mean,
        None => {
            dataset_of(&row.model)
                .ok_or(RowError::NoInputLen)?
                .mean_input_len
        }
    };
    let mut setup = ServeSetup::new(
        model,
        accelerator,
        mean_tokens(input_len, "input_len")?,
        mean_tokens(need(row.output_len, "output_len")?, "output_len")?,
    );
    let devices = row.num_accelerators.unwrap_or(1);
    setup.tp = row.tp.or(implied_tp(row)).unwrap_or(1);
    setup.pp = row.pp.unwrap_or(1);
    let per_replica = setup.devices_per_replica().max(1);
    if !devices.is_multiple_of(per_replica) {
        return Err(RowError::DevicesPerReplica {
            devices,
            per_replica,
        });
    }
    setup.replicas = (devices / per_replica).max(1) as u32;
    let precision = |text: &Option<String>| -> Result<Precision, RowError> {
        match text.as_deref() {
            Some(text) => Ok(text.parse::<Precision>()?),
            None => Ok(Precision::Fp16),
        }
    };
    setup.weight_precision = precision(&row.weight_precision)?;
    setup.kv_precision = match row.kv_precision {
        Some(_) => precision(&row.kv_precision)?,
        None => default_kv_precision(&row.engine, setup.weight_precision),
    };
    setup.batch = row.batch;
    if is_optimum_habana(&row.engine) {
        setup.memory_fraction = crate::serve::STATIC_ALLOCATION_MEMORY_FRACTION;
    }
    setup.decode_attention = decode_attention_of(&row.engine, &row.source);
    if let Some(profile) = row_engine(row).host {
        setup.host_s_per_sequence = profile.host_s_per_sequence(catalog)?;
    }
    Ok(setup)
}

/// The engine of a row: its name and version ([`engine_of`]), except that MLPerf Inference
/// harnesses drive vLLM their own way. AMD's (`harness_llm`; mlcommons/inference_results_v5.1,
/// closed/AMD/code/llama2-70b-99/harness_llm/models/llama2-70b/offline_mi325x.yaml) sets
/// `num_scheduler_steps: 7`, and vLLM runs multi-step scheduling on its V0 engine only (the V1
/// oracle in vllm/engine/arg_utils.py falls back to V0 for `--num-scheduler-steps`), so a
/// 0.8-0.13 version there is [`VLLM_MULTI_STEP_ENGINE`], not the synchronous V1 one.
fn row_engine(row: &InferenceRun) -> Engine {
    let engine = engine_of(&row.engine, row.engine_version.as_deref());
    if engine == VLLM_V1_SYNC_ENGINE && row.source.starts_with("MLPerf Inference") {
        VLLM_MULTI_STEP_ENGINE
    } else {
        engine
    }
}

/// The KV-cache precision of a row that does not state it: the engine's default.
/// TensorRT-LLM (and NVIDIA NIM, built on it) runs NVIDIA's ModelOpt checkpoints, whose
/// quantiser stores the KV cache in fp8 unless told otherwise (`hf_ptq.py --kv_cache_qformat`,
/// default `fp8`, recorded as `kv_cache_quant_algo` in the checkpoint's `hf_quant_config.json`),
/// and its `KvCacheConfig(dtype="auto")` takes the checkpoint's format (TensorRT-LLM docs,
/// "Quantization": FP8 KV cache "inherited from the checkpoint with dtype=auto"). vLLM's
/// `--kv-cache-dtype auto` keeps the model's 16-bit type, and so do the other engines here,
/// except Intel's Gaudi tables ([`is_optimum_habana`]): their fp8 runs quantise with Intel
/// Neural Compressor (`QUANT_CONFIG=maxabs_quant.json`), whose `PatchedKVCache` replaces the
/// model's KV-cache allocation with an fp8 one (neural_compressor `fp8_quant` helper modules:
/// "overwrite allocate function of original module to force allocation in fp8").
fn default_kv_precision(engine: &str, weights: Precision) -> Precision {
    let tensorrt = engine.to_ascii_lowercase().contains("tensorrt");
    match weights {
        Precision::Fp8 | Precision::Fp4 if tensorrt => Precision::Fp8,
        Precision::Fp8 if is_optimum_habana(engine) => Precision::Fp8,
        _ => Precision::Fp16,
    }
}

/// The tensor-parallel size a row's engine fixes when the row does not state one: every card
/// for Intel's Gaudi tables ([`is_optimum_habana`]).
fn implied_tp(row: &InferenceRun) -> Option<u32> {
    is_optimum_habana(&row.engine)
        .then(|| u32::try_from(row.num_accelerators.unwrap_or(1)).unwrap_or(u32::MAX))
}

/// Whether a row comes from Intel's Gaudi model-performance tables ("Intel Gaudi software"):
/// they are produced by optimum-habana's `run_generation.py`, launched by `gaudi_spawn.py
/// --use_deepspeed --world_size N` on the table's N cards (Intel's page "Replicating Large
/// Language Model Inference Performance on the Intel Gaudi AI Accelerators" gives each row's
/// command), so every card belongs to one DeepSpeed tensor-parallel replica, and the static
/// batch's KV cache is allocated exactly, with no memory fraction held back.
fn is_optimum_habana(engine: &str) -> bool {
    engine.contains("Intel Gaudi software")
}

/// The value of `metric` an estimate predicts.
pub fn predicted_metric(metric: &str, estimate: &ServeEstimate) -> Result<f64, RowError> {
    Ok(match metric {
        "output_tokens_per_s_per_gpu" => estimate.output_tokens_per_s_per_device,
        "output_tokens_per_s_total" => estimate.output_tokens_per_s_total,
        "ttft_ms" => estimate.ttft_s * 1e3,
        "tpot_ms" => estimate.tpot_s * 1e3,
        "e2e_latency_s" => estimate.e2e_latency_s,
        other => {
            return Err(RowError::UnknownServingMetric {
                metric: other.into(),
            });
        }
    })
}

/// Evaluates one row with the repository's fitted constants.
pub fn evaluate_row(catalog: &Catalog, row: &InferenceRun) -> RowResult {
    evaluate_row_with(catalog, row, None)
}

/// Evaluates one row; `gemm_scale` overrides the family's fitted constant (for fitting).
pub fn evaluate_row_with(
    catalog: &Catalog,
    row: &InferenceRun,
    gemm_scale: Option<f64>,
) -> RowResult {
    let mut result = RowResult {
        id: row.id.clone(),
        metric: row.metric.clone(),
        measured: row.measured,
        predicted: None,
        error_pct: None,
        mode: match (row.tp, implied_tp(row)) {
            (Some(_), _) => "given",
            (None, Some(_)) => "implied",
            (None, None) => "searched",
        },
        layout: None,
        reason: None,
    };
    let outcome = row_setup(catalog, row).and_then(|setup| {
        let tps = match row.tp.or(implied_tp(row)) {
            Some(_) => vec![setup.tp],
            None => candidate_tps(&setup, row.num_accelerators.unwrap_or(1)),
        };
        let mut best: Option<(String, f64)> = None;
        let mut last_error = RowError::NoTensorParallel;
        for tp in tps {
            let mut setup = setup.clone();
            setup.tp = tp;
            if let Some(scale) = gemm_scale {
                setup.gemm_scale = scale;
            }
            setup.replicas =
                (row.num_accelerators.unwrap_or(1) / (tp * setup.pp) as u64).max(1) as u32;
            match predict_row(row, &setup) {
                // An unstated tp is the submitter's best: the highest throughput.
                Ok(found) if best.as_ref().is_none_or(|b| found.1 > b.1) => best = Some(found),
                Ok(_) => {}
                Err(e) => last_error = e,
            }
        }
        let (mut layout, value) = best.ok_or(last_error)?;
        if row.input_len.is_none() {
            layout.push_str(", input_len dataset mean");
        }
        Ok((layout, value))
    });
    result.record(outcome);
    result
}

/// Tensor-parallel sizes to try for a row that does not state one: powers of two dividing the
/// devices and the attention heads.
fn candidate_tps(setup: &ServeSetup, devices: u64) -> Vec<u32> {
    (0..8)
        .map(|k| 1u32 << k)
        .filter(|&tp| {
            devices.is_multiple_of((tp * setup.pp) as u64) && setup.model.heads.is_multiple_of(tp)
        })
        .collect()
}

/// The row's metric predicted for one setup, under the row's scenario, and the layout text.
fn predict_row(row: &InferenceRun, setup: &ServeSetup) -> Result<(String, f64), RowError> {
    let scenario: Scenario = row.scenario.as_deref().unwrap_or("").parse::<Scenario>()?;
    let engine = row_engine(row);
    let continuous = !matches!(scenario, Scenario::Batch);
    let fits = sequences_that_fit(setup, &engine, continuous)?;
    // Rows whose engine schedules while the GPU waits say so, with the time charged.
    let host = match setup.host_s_per_sequence {
        0.0 => String::new(),
        s => format!(", {} host {:.1} us/seq", engine.name, s * 1e6),
    };
    let layout = |batch: String| {
        format!(
            "{},tp={},pp={},batch={batch},{}/{}{host}",
            scenario_name(scenario),
            setup.tp,
            setup.pp,
            setup.weight_precision,
            setup.kv_precision
        )
    };
    match scenario {
        Scenario::Batch | Scenario::Offline | Scenario::SingleStream => {
            let mut setup = setup.clone();
            setup.continuous_batching = continuous;
            setup.batch = match scenario {
                Scenario::SingleStream => Some(1),
                Scenario::Offline => Some(row.batch.unwrap_or(fits).min(fits).max(1)),
                _ => row.batch.or(Some(fits.max(1))),
            };
            let estimate = serve::estimate(&setup)?;
            let value = predicted_metric(&row.metric, &estimate)?;
            Ok((layout(estimate.batch.to_string()), value))
        }
        Scenario::Server | Scenario::Interactive => {
            let ttft = need(row.ttft_slo_ms, "ttft_slo_ms")? / 1e3;
            let tpot = need(row.tpot_slo_ms, "tpot_slo_ms")? / 1e3;
            let cap = row.batch.unwrap_or(fits).min(fits).max(1);
            let mut setup = setup.clone();
            setup.continuous_batching = true;
            let setup = &setup;
            let load =
                server_rate(setup, &engine, cap, ttft, tpot)?.ok_or(RowError::NoRequestRate {
                    ttft_ms: ttft * 1e3,
                    tpot_ms: tpot * 1e3,
                })?;
            let total = load.rate_per_s * setup.output_len as f64 * setup.replicas as f64;
            let devices = (setup.devices_per_replica() * setup.replicas as u64) as f64;
            let value = match row.metric.as_str() {
                "output_tokens_per_s_total" => total,
                "output_tokens_per_s_per_gpu" => total / devices,
                "ttft_ms" => load.ttft_mean_s * 1e3,
                "tpot_ms" => load.tpot_mean_s * 1e3,
                other => {
                    return Err(RowError::NoServerPrediction {
                        metric: other.into(),
                    });
                }
            };
            let batch = format!("{:.0}/{cap}", load.mean_batch);
            Ok((layout(batch), value))
        }
    }
}

fn scenario_name(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Batch => "batch",
        Scenario::Offline => "offline",
        Scenario::Server => "server",
        Scenario::Interactive => "interactive",
        Scenario::SingleStream => "single-stream",
    }
}

/// Evaluates every row and summarises; rows without a prediction count as failures.
pub fn validate_serving(catalog: &Catalog, rows: &[InferenceRun]) -> Report {
    let results: Vec<RowResult> = rows.iter().map(|row| evaluate_row(catalog, row)).collect();
    summarise(results)
}
