//! Validation of the training model against published runs: reads the schema of
//! shared/validation/README.md (`training-runs.csv`) as the files are, evaluates each row with
//! its stated layout (searching only what the row leaves unstated) and reports the error.

use crate::kernels::AttentionImpl;
use crate::layout::Recompute;
use crate::search::{self, Constraints};
use crate::train::{TrainEstimate, TrainSetup};
use serde::{Deserialize, Serialize};
use suanli_catalog::{Catalog, Mla, Mlp, Model, Moe, Precision};

pub use crate::validate_error::{RowError, TableError};

/// One row of training-runs.csv; empty cells are `None`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TrainingRun {
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
    pub seq_len: Option<u64>,
    pub mlp: Option<String>,
    pub moe_experts: Option<u32>,
    pub moe_top_k: Option<u32>,
    pub moe_expert_ffn: Option<u64>,
    pub moe_shared_experts: Option<u32>,
    pub moe_dense_layers: Option<u32>,
    pub accelerator: String,
    pub num_accelerators: Option<u64>,
    pub accelerators_per_node: Option<u32>,
    pub scaleout_gbps_per_accelerator: Option<f64>,
    pub precision: Option<String>,
    pub tp: Option<u32>,
    pub pp: Option<u32>,
    pub dp: Option<u32>,
    pub cp: Option<u32>,
    pub ep: Option<u32>,
    pub sequence_parallel: Option<String>,
    pub zero: Option<u8>,
    pub micro_batch: Option<u32>,
    pub global_batch: Option<u64>,
    pub virtual_stages: Option<u32>,
    pub recompute: Option<String>,
    pub metric: String,
    pub measured: Option<f64>,
    pub tokens_total: Option<f64>,
    /// Optional extension column: `flash` or `unfused`.
    #[serde(default)]
    pub attention: Option<String>,
    /// Optional extension column: ICI slices a TPU job spans (joined by the DCN).
    #[serde(default)]
    pub slices: Option<u32>,
    /// Optional extension column: with `recompute = full`, the layers per device that
    /// recompute (Megatron/NeMo block method); empty = every layer.
    #[serde(default)]
    pub recompute_layers: Option<u32>,
    /// `pretrain` (or empty) or `lora`.
    #[serde(default)]
    pub workload: Option<String>,
    /// LoRA adapter rank, for `workload = lora`.
    #[serde(default)]
    pub lora_rank: Option<u32>,
    /// `high`, `medium` or `low`; `low` rows rest on assumptions the source does not state.
    #[serde(default)]
    pub confidence: String,
    #[serde(default)]
    pub notes: String,
}

/// The result for one row.
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    pub id: String,
    pub metric: String,
    pub measured: Option<f64>,
    pub predicted: Option<f64>,
    pub error_pct: Option<f64>,
    /// "given" when the row states tp, pp and dp; "implied" when its engine fixes them (Intel's
    /// Gaudi tables: one replica over every card); "searched" otherwise.
    pub mode: &'static str,
    /// The layout evaluated.
    pub layout: Option<String>,
    /// Why the row could not be evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RowResult {
    /// Fills in the prediction (the evaluated layout and the value) or the reason there is none.
    pub(crate) fn record(&mut self, outcome: Result<(String, f64), RowError>) {
        match outcome {
            Ok((layout, predicted)) => {
                self.layout = Some(layout);
                self.predicted = Some(predicted);
                self.error_pct = self
                    .measured
                    .map(|measured| (predicted - measured) / measured * 100.0);
                if self.measured.is_none() {
                    self.reason = Some("column `measured` is empty".into());
                }
            }
            Err(reason) => self.reason = Some(reason.to_string()),
        }
    }
}

/// Aggregate errors.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub rows: usize,
    pub evaluated: usize,
    pub median_abs_error_pct: Option<f64>,
    pub max_abs_error_pct: Option<f64>,
}

/// The whole report, in the JSON shape `suanli validate --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub rows: Vec<RowResult>,
    pub summary: Summary,
}

/// Reads rows from CSV text; the error names the line and the field.
pub fn read_training_runs(csv_text: &str) -> Result<Vec<TrainingRun>, TableError> {
    let rows: Vec<TrainingRun> = read_rows(csv_text)?;
    for row in &rows {
        // Zero, negative or NaN here gave an infinite or NaN error and ranked NaN layouts first.
        for (column, value) in [
            ("measured", row.measured),
            (
                "scaleout_gbps_per_accelerator",
                row.scaleout_gbps_per_accelerator,
            ),
        ] {
            if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return Err(TableError::NotPositive {
                    id: row.id.clone(),
                    column,
                });
            }
        }
    }
    Ok(rows)
}

/// Reads CSV text with a header into rows of `T`; the error names the line and the column.
pub(crate) fn read_rows<T: serde::de::DeserializeOwned>(
    csv_text: &str,
) -> Result<Vec<T>, TableError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let headers = reader.headers().map_err(TableError::Header)?.clone();
    let mut rows = Vec::new();
    for record in reader.deserialize::<T>() {
        rows.push(record.map_err(|e| describe_csv_error(e, &headers))?);
    }
    Ok(rows)
}

/// Reads CSV text with a header into pairs of `A` and `B`, both read from each record (two
/// tables that share columns: inference-runs.csv carries training-runs.csv's model columns);
/// the error names the line and the column.
pub(crate) fn read_row_pairs<A, B>(csv_text: &str) -> Result<Vec<(A, B)>, TableError>
where
    A: serde::de::DeserializeOwned,
    B: serde::de::DeserializeOwned,
{
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let headers = reader.headers().map_err(TableError::Header)?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| describe_csv_error(e, &headers))?;
        let first = record.deserialize(Some(&headers));
        let first = first.map_err(|e| describe_csv_error(e, &headers))?;
        let second = record.deserialize(Some(&headers));
        rows.push((first, second.map_err(|e| describe_csv_error(e, &headers))?));
    }
    Ok(rows)
}

/// One line naming the CSV line, the column and what was wrong.
fn describe_csv_error(error: csv::Error, headers: &csv::StringRecord) -> TableError {
    match error.kind() {
        csv::ErrorKind::Deserialize { pos, err } => TableError::Cell {
            line: pos.as_ref().map_or(0, |p| p.line()),
            column: err
                .field()
                .and_then(|index| headers.get(index as usize))
                .unwrap_or("?")
                .to_string(),
            kind: err.kind().clone(),
        },
        _ => TableError::Csv(error),
    }
}

/// The value of a column the row must fill; the error names it.
pub(crate) fn need<T: Copy>(value: Option<T>, field: &str) -> Result<T, RowError> {
    value.ok_or_else(|| RowError::EmptyColumn {
        column: field.into(),
    })
}

/// The model a row describes, built from its shape columns.
pub fn row_model(row: &TrainingRun) -> Result<Model, RowError> {
    let mlp = match row.mlp.as_deref() {
        Some("gelu") => Mlp::Gelu,
        Some("swiglu") => Mlp::Swiglu,
        other => {
            return Err(RowError::Mlp {
                found: other.map(str::to_string),
            });
        }
    };
    let moe = match row.moe_experts {
        Some(experts) if experts > 1 => Some(Moe {
            experts,
            top_k: need(row.moe_top_k, "moe_top_k")?,
            expert_ffn: need(row.moe_expert_ffn, "moe_expert_ffn")?,
            shared_experts: row.moe_shared_experts.unwrap_or(0),
            dense_layers: row.moe_dense_layers.unwrap_or(0),
        }),
        _ => None,
    };
    let heads = need(row.heads, "heads")?;
    let mut model = Model {
        id: row.id.clone(),
        aliases: vec![],
        name: row.model.clone(),
        params_b_reported: row.params_b,
        layers: need(row.layers, "layers")?,
        hidden: need(row.hidden, "hidden")?,
        heads,
        kv_heads: row.kv_heads.unwrap_or(heads),
        head_dim: row.head_dim,
        ffn: need(row.ffn, "ffn")?,
        vocab: need(row.vocab, "vocab")?,
        mlp,
        tied_embeddings: false,
        learned_positions: false,
        max_seq_len: row.seq_len,
        moe,
        mla: None::<Mla>,
        source: row.source.clone(),
    };
    model.validate()?;
    // The schema has no column for tied embeddings or learned positions; take the combination
    // whose parameter count is closest to the reported `params_b` (the schema's cross-check),
    // and GPT-style defaults (tied, learned positions for GeLU models) when it is empty.
    let candidates = [(true, true), (true, false), (false, true), (false, false)];
    let (tied, learned) = match row.params_b {
        Some(params_b) => candidates
            .into_iter()
            .min_by(|a, b| {
                let error = |(tied, learned): (bool, bool)| {
                    let mut m = model.clone();
                    m.tied_embeddings = tied;
                    m.learned_positions = learned;
                    (m.total_params() as f64 / 1e9 - params_b).abs()
                };
                error(*a).total_cmp(&error(*b))
            })
            .expect("four candidates"),
        None => (mlp == Mlp::Gelu, mlp == Mlp::Gelu),
    };
    model.tied_embeddings = tied;
    model.learned_positions = learned;
    Ok(model)
}

/// The setup and layout constraints of a row.
pub fn row_setup(
    catalog: &Catalog,
    row: &TrainingRun,
) -> Result<(TrainSetup, Constraints), RowError> {
    let model = row_model(row)?;
    let accelerator = catalog.accelerator(&row.accelerator)?.clone();
    let count = need(row.num_accelerators, "num_accelerators")?;
    let mut setup = TrainSetup::new(model, accelerator, count);
    if let Some(per_node) = row.accelerators_per_node {
        setup.per_node = per_node;
    }
    if let Some(gb_per_s) = row.scaleout_gbps_per_accelerator {
        setup.scaleout_gb_per_s = gb_per_s;
    }
    setup.precision = match row.precision.as_deref() {
        Some(text) => text.parse::<Precision>()?,
        None => Precision::Bf16,
    };
    if let Some(slices) = row.slices {
        if slices == 0 || count % slices as u64 != 0 {
            return Err(RowError::Slices { slices, count });
        }
        let slice_size =
            u32::try_from(count / slices as u64).map_err(|_| RowError::SliceTooLarge {
                devices: count / slices as u64,
            })?;
        setup.slice_size = Some(slice_size);
    }
    setup.workload = crate::lora::Workload::parse(row.workload.as_deref(), row.lora_rank)?;
    setup.seq_len = need(row.seq_len, "seq_len")?;
    setup.global_batch = need(row.global_batch, "global_batch")?;
    setup.tokens_total = row.tokens_total;
    setup.attention = attention_of(row);
    // Pre-FlashAttention stacks also predate overlapped tensor-parallel communication.
    setup.tp_overlap = setup.attention == AttentionImpl::Flash;
    let recompute = match row.recompute.as_deref() {
        Some(text) => Some(text.parse::<Recompute>()?),
        None => None,
    };
    let sequence_parallel = match row.sequence_parallel.as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let constraints = Constraints {
        tp: row.tp,
        pp: row.pp,
        dp: row.dp,
        cp: row.cp,
        ep: row.ep,
        zero: row.zero,
        micro_batch: row.micro_batch,
        vpp: row.virtual_stages,
        recompute,
        recompute_layers: row.recompute_layers,
        sequence_parallel,
        // Published runs used their framework's rank order: Megatron-Core's tp-cp-dp-pp (the
        // rows with pp > 1 are all Megatron, NeMo or Megatron-DeepSpeed).
        pp_inner: Some(false),
    };
    Ok((setup, constraints))
}

/// The attention implementation a run used: the row's `attention` column when present,
/// otherwise unfused for runs published before FlashAttention reached the frameworks (Dao et
/// al., May 2022; in Megatron-LM from 2023) and flash after. The year is the first 19xx/20xx
/// number in the `source` citation; a source without a year is taken as current.
pub fn attention_of(row: &TrainingRun) -> AttentionImpl {
    match row.attention.as_deref() {
        Some("flash") => return AttentionImpl::Flash,
        Some("unfused") => return AttentionImpl::Unfused,
        _ => {}
    }
    let year = row
        .source
        .split(|c: char| !c.is_ascii_digit())
        .filter(|word| word.len() == 4)
        .filter_map(|word| word.parse::<u32>().ok())
        .find(|year| (1990..2100).contains(year));
    match year {
        Some(year) if year < 2023 => AttentionImpl::Unfused,
        _ => AttentionImpl::Flash,
    }
}

/// The value of `metric` an estimate predicts.
pub fn predicted_metric(
    metric: &str,
    estimate: &TrainEstimate,
    setup: &TrainSetup,
) -> Result<f64, RowError> {
    let tokens_per_s = estimate.tokens_per_s;
    let budget = || {
        setup
            .tokens_total
            .ok_or_else(|| RowError::NeedsTokensTotal {
                metric: metric.into(),
            })
    };
    let expected = |tokens: f64| {
        crate::reliability::expected_with_defaults(setup, tokens, tokens_per_s)
            .map_err(RowError::from)
    };
    Ok(match metric {
        "tflops_per_gpu_hw" => estimate.tflops_per_device_hardware,
        "tflops_per_gpu_model" => estimate.tflops_per_device_model,
        "mfu" => estimate.mfu,
        "step_time_s" => estimate.step_time_s,
        "tokens_per_s_per_gpu" => estimate.tokens_per_s_per_device,
        // Whole-run figures include failures, restarts and checkpoints: the expected time.
        "gpu_hours" => expected(budget()?)?.expected_accelerator_hours,
        "days" => expected(budget()?)?.expected_days,
        other => {
            return Err(RowError::UnknownTrainingMetric {
                metric: other.into(),
            });
        }
    })
}

/// Evaluates one row.
pub fn evaluate_row(catalog: &Catalog, row: &TrainingRun) -> RowResult {
    let mut result = blank_result(row);
    let outcome = row_setup(catalog, row)
        .and_then(|(setup, constraints)| predict_row(row, &setup, &constraints));
    result.record(outcome);
    result
}

/// A row's result before prediction.
pub fn blank_result(row: &TrainingRun) -> RowResult {
    let given = row.tp.is_some() && row.pp.is_some() && row.dp.is_some();
    RowResult {
        id: row.id.clone(),
        metric: row.metric.clone(),
        measured: row.measured,
        predicted: None,
        error_pct: None,
        mode: if given { "given" } else { "searched" },
        layout: None,
        reason: None,
    }
}

/// The best layout under the row's constraints and the row's metric predicted for it.
pub fn predict_row(
    row: &TrainingRun,
    setup: &TrainSetup,
    constraints: &Constraints,
) -> Result<(String, f64), RowError> {
    let found = search::search(setup, constraints, 1)?;
    let best = &found.top[0];
    let mut value = predicted_metric(&row.metric, best, setup)?;
    if row.metric == "tokens_per_s_per_gpu" {
        value *= training_share_of_timed_region(&row.notes);
    }
    Ok((best.layout.to_string(), value))
}

/// Share of an MLPerf timed region spent training. MLPerf-derived rows divide the tokens
/// trained by the whole timed region, which includes the periodic evaluations
/// (shared/validation/README.md): where the row's notes give the logged share ("intervals take
/// 8.0% of it") it is used, otherwise the README's 7-12% range is taken at its middle, 10%.
/// Rows without that note measured steady-state training: 1.
pub fn training_share_of_timed_region(notes: &str) -> f64 {
    if !notes.contains("includes periodic evaluation in the timed region") {
        return 1.0;
    }
    let logged = notes.split("take ").skip(1).find_map(|rest| {
        let number = rest.split('%').next()?;
        number.trim().parse::<f64>().ok()
    });
    match logged {
        Some(pct) if (0.0..50.0).contains(&pct) => 1.0 - pct / 100.0,
        _ => 0.90,
    }
}

/// Median of `values` (sorted in place); None when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// Evaluates every row and summarises; rows without a prediction count as failures.
pub fn validate_training(catalog: &Catalog, rows: &[TrainingRun]) -> Report {
    let results: Vec<RowResult> = rows.iter().map(|row| evaluate_row(catalog, row)).collect();
    summarise(results)
}

/// The report of already evaluated rows.
pub fn summarise_rows(rows: Vec<RowResult>) -> Report {
    summarise(rows)
}

pub(crate) fn summarise(rows: Vec<RowResult>) -> Report {
    let mut errors: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.error_pct.map(f64::abs))
        .collect();
    let median = median(&mut errors);
    Report {
        summary: Summary {
            rows: rows.len(),
            evaluated: errors.len(),
            median_abs_error_pct: median,
            max_abs_error_pct: errors.last().copied(),
        },
        rows,
    }
}
