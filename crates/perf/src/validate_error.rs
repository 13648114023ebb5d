//! Why a validation row has no prediction: one variant per reason, each the one-line text the
//! report's `reason` column shows.

use crate::layout::LayoutError;
use crate::lora::WorkloadError;
use crate::reliability::ReliabilityError;
use crate::search::SearchError;
use crate::serve::ServeError;
use crate::serve::scenario::UnknownScenario;
use suanli_catalog::{CatalogError, ModelError, UnknownPrecision};

/// Why a validation table cannot be read; the message names the line and the column.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read the header line: {0}")]
    Header(csv::Error),
    #[error("line {line}: column `{column}`: {kind}")]
    Cell {
        line: u64,
        column: String,
        kind: csv::DeserializeErrorKind,
    },
    #[error(transparent)]
    Csv(csv::Error),
    #[error("row `{id}`: column `{column}` must be a positive number")]
    NotPositive { id: String, column: &'static str },
}

/// Why one row of training-runs.csv or inference-runs.csv cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("column `{column}` is empty")]
    EmptyColumn { column: String },
    #[error("column `mlp` is {found:?}; expected gelu or swiglu")]
    Mlp { found: Option<String> },
    #[error("column `slices` is {slices}; expected a whole divisor of num_accelerators ({count})")]
    Slices { slices: u32, count: u64 },
    #[error("column `slices`: slices of {devices} devices are too large")]
    SliceTooLarge { devices: u64 },
    #[error("metric `{metric}` needs tokens_total")]
    NeedsTokensTotal { metric: String },
    #[error(
        "unknown metric `{metric}`; expected tflops_per_gpu_hw, tflops_per_gpu_model, mfu, \
         step_time_s, tokens_per_s_per_gpu, gpu_hours or days"
    )]
    UnknownTrainingMetric { metric: String },
    #[error("column `{column}` = {mean} is not a token count between 1 and 10 million")]
    TokenCount { column: String, mean: f64 },
    #[error("column `input_len` is empty and the model names no MLPerf dataset")]
    NoInputLen,
    #[error("num_accelerators {devices} is not a multiple of tp x pp = {per_replica}")]
    DevicesPerReplica { devices: u64, per_replica: u64 },
    #[error(
        "unknown metric `{metric}`; expected output_tokens_per_s_per_gpu, \
         output_tokens_per_s_total, ttft_ms, tpot_ms or e2e_latency_s"
    )]
    UnknownServingMetric { metric: String },
    #[error("no request rate meets p99 TTFT {ttft_ms} ms and TPOT {tpot_ms} ms")]
    NoRequestRate { ttft_ms: f64, tpot_ms: f64 },
    #[error("metric `{metric}` has no server-scenario prediction")]
    NoServerPrediction { metric: String },
    #[error("no tensor-parallel size divides the devices")]
    NoTensorParallel,
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Precision(#[from] UnknownPrecision),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Reliability(#[from] ReliabilityError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Scenario(#[from] UnknownScenario),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

#[cfg(test)]
mod tests {
    use super::RowError;
    use crate::validate::{TrainingRun, need, row_model};

    #[test]
    fn row_reasons_are_variants_with_the_report_text() {
        let error = need(None::<u32>, "layers").unwrap_err();
        assert!(matches!(&error, RowError::EmptyColumn { column } if column == "layers"));
        assert_eq!(error.to_string(), "column `layers` is empty");
        let row = TrainingRun {
            mlp: Some("relu".into()),
            ..TrainingRun::default()
        };
        let error = row_model(&row).unwrap_err();
        assert!(matches!(&error, RowError::Mlp { found: Some(found) } if found == "relu"));
        assert_eq!(
            error.to_string(),
            "column `mlp` is Some(\"relu\"); expected gelu or swiglu"
        );
        let error = row_model(&TrainingRun::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "column `mlp` is None; expected gelu or swiglu"
        );
    }
}
