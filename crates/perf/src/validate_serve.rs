//! Validation of the serving model against published inference runs: reads `inference-runs.csv`
//! (schema in shared/validation/README.md) as it is, evaluates each row with its stated
//! accelerator, parallelism, precisions, batch and lengths, and reports the error in the same
//! shape as training validation.

use crate::serve::{self, DecodeAttention, ServeEstimate, ServeSetup};
use crate::validate::{Report, RowResult, TrainingRun, row_model, summarise};
use serde::Deserialize;
use suanli_catalog::{Catalog, Precision};

/// One row of inference-runs.csv; empty cells are `None`.
#[derive(Clone, Debug, Deserialize)]
pub struct InferenceRun {
    pub id: String,
    #[serde(default)]
    pub source: String,
    pub model: String,
    pub params_b: Option<f64>,
    pub layers: Option<u32>,
    pub hidden: Option<u64>,
    pub heads: Option<u32>,
    pub kv_heads: Option<u32>,
    pub head_dim: Option<u64>,
    pub ffn: Option<u64>,
    pub vocab: Option<u64>,
    pub mlp: Option<String>,
    pub moe_experts: Option<u32>,
    pub moe_top_k: Option<u32>,
    pub moe_expert_ffn: Option<u64>,
    pub moe_shared_experts: Option<u32>,
    #[serde(default)]
    pub moe_dense_layers: Option<u32>,
    pub accelerator: String,
    pub num_accelerators: Option<u64>,
    pub tp: Option<u32>,
    pub pp: Option<u32>,
    pub weight_precision: Option<String>,
    pub kv_precision: Option<String>,
    pub batch: Option<u64>,
    pub input_len: Option<u64>,
    pub output_len: Option<u64>,
    pub metric: String,
    pub measured: Option<f64>,
    #[serde(default)]
    pub engine: String,
}

/// Reads rows from CSV text; the error names the line and the field.
pub fn read_inference_runs(csv_text: &str) -> Result<Vec<InferenceRun>, String> {
    crate::validate::read_rows(csv_text)
}

fn need<T: Copy>(value: Option<T>, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("column `{field}` is empty"))
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

/// The serving setup a row describes.
pub fn row_setup(catalog: &Catalog, row: &InferenceRun) -> Result<ServeSetup, String> {
    // The model columns are those of training-runs.csv: reuse its reader.
    let shape = TrainingRun {
        id: row.id.clone(),
        source: row.source.clone(),
        model: row.model.clone(),
        params_b: row.params_b,
        layers: row.layers,
        hidden: row.hidden,
        heads: row.heads,
        kv_heads: row.kv_heads,
        head_dim: row.head_dim,
        ffn: row.ffn,
        vocab: row.vocab,
        seq_len: None,
        mlp: row.mlp.clone(),
        moe_experts: row.moe_experts,
        moe_top_k: row.moe_top_k,
        moe_expert_ffn: row.moe_expert_ffn,
        moe_shared_experts: row.moe_shared_experts,
        moe_dense_layers: row.moe_dense_layers,
        accelerator: row.accelerator.clone(),
        num_accelerators: row.num_accelerators,
        accelerators_per_node: None,
        scaleout_gbps_per_accelerator: None,
        precision: None,
        tp: row.tp,
        pp: row.pp,
        dp: None,
        cp: None,
        ep: None,
        sequence_parallel: None,
        zero: None,
        micro_batch: None,
        global_batch: None,
        virtual_stages: None,
        recompute: None,
        metric: row.metric.clone(),
        measured: row.measured,
        tokens_total: None,
        attention: None,
        workload: None,
        lora_rank: None,
        notes: String::new(),
    };
    let model = row_model(&shape)?;
    let accelerator = catalog
        .accelerator(&row.accelerator)
        .map_err(|e| e.to_string())?
        .clone();
    let mut setup = ServeSetup::new(
        model,
        accelerator,
        need(row.input_len, "input_len")?,
        need(row.output_len, "output_len")?,
    );
    let devices = row.num_accelerators.unwrap_or(1);
    setup.tp = row.tp.unwrap_or(1);
    setup.pp = row.pp.unwrap_or(1);
    let per_replica = setup.devices_per_replica().max(1);
    if !devices.is_multiple_of(per_replica) {
        return Err(format!(
            "num_accelerators {devices} is not a multiple of tp x pp = {per_replica}"
        ));
    }
    setup.replicas = (devices / per_replica).max(1) as u32;
    let precision = |text: &Option<String>| -> Result<Precision, String> {
        match text.as_deref() {
            Some(text) => text.parse::<Precision>().map_err(|e| e.to_string()),
            None => Ok(Precision::Fp16),
        }
    };
    setup.weight_precision = precision(&row.weight_precision)?;
    setup.kv_precision = precision(&row.kv_precision)?;
    setup.batch = row.batch;
    setup.decode_attention = decode_attention_of(&row.engine, &row.source);
    Ok(setup)
}

/// The value of `metric` an estimate predicts.
pub fn predicted_metric(metric: &str, estimate: &ServeEstimate) -> Result<f64, String> {
    Ok(match metric {
        "output_tokens_per_s_per_gpu" => estimate.output_tokens_per_s_per_device,
        "output_tokens_per_s_total" => estimate.output_tokens_per_s_total,
        "ttft_ms" => estimate.ttft_s * 1e3,
        "tpot_ms" => estimate.tpot_s * 1e3,
        "e2e_latency_s" => estimate.e2e_latency_s,
        other => {
            return Err(format!(
                "unknown metric `{other}`; expected output_tokens_per_s_per_gpu, \
                 output_tokens_per_s_total, ttft_ms, tpot_ms or e2e_latency_s"
            ));
        }
    })
}

/// Evaluates one row.
pub fn evaluate_row(catalog: &Catalog, row: &InferenceRun) -> RowResult {
    let mut result = RowResult {
        id: row.id.clone(),
        metric: row.metric.clone(),
        measured: row.measured,
        predicted: None,
        error_pct: None,
        mode: "given",
        layout: None,
        reason: None,
    };
    let outcome = row_setup(catalog, row).and_then(|setup| {
        let estimate = serve::estimate(&setup).map_err(|e| e.to_string())?;
        let value = predicted_metric(&row.metric, &estimate)?;
        let layout = format!(
            "tp={},pp={},batch={},{}/{}",
            setup.tp, setup.pp, estimate.batch, setup.weight_precision, setup.kv_precision
        );
        Ok((layout, value))
    });
    result.record(outcome);
    result
}

/// Evaluates every row and summarises; rows without a prediction count as failures.
pub fn validate_serving(catalog: &Catalog, rows: &[InferenceRun]) -> Report {
    let results: Vec<RowResult> = rows.iter().map(|row| evaluate_row(catalog, row)).collect();
    summarise(results)
}
