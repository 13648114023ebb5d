//! The serving model against the repository's copy of the published inference runs.

use suanli_catalog::Catalog;
use suanli_perf::validate_serve::{read_inference_runs, validate_serving};

#[test]
fn every_inference_row_is_evaluated_within_the_targets() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/validation/inference-runs.csv"
    );
    let text = std::fs::read_to_string(path).expect("the repo's copy of inference-runs.csv");
    let rows = read_inference_runs(&text).expect("the table parses");
    let report = validate_serving(&Catalog::builtin(), &rows);
    for row in &report.rows {
        println!(
            "{:45} {:>10.1} {:>10.1} {:>+7.1}% {} {}",
            row.id,
            row.measured.unwrap_or(f64::NAN),
            row.predicted.unwrap_or(f64::NAN),
            row.error_pct.unwrap_or(f64::NAN),
            row.layout.clone().unwrap_or_default(),
            row.reason.clone().unwrap_or_default()
        );
    }
    println!("{:?}", report.summary);
    assert_eq!(report.summary.rows, 11);
    assert_eq!(report.summary.evaluated, 11);
    assert!(report.summary.median_abs_error_pct.unwrap() <= 15.0);
    assert!(report.summary.max_abs_error_pct.unwrap() <= 35.0);
}

#[test]
fn the_engine_version_decides_how_decode_reads_grouped_kv_heads() {
    use suanli_perf::serve::DecodeAttention;
    use suanli_perf::validate_serve::decode_attention_of;
    let old = "NVIDIA TensorRT-LLM v0.6.1 performance overview";
    assert_eq!(
        decode_attention_of("TensorRT-LLM", old),
        DecodeAttention::PerQueryHead
    );
    assert_eq!(
        decode_attention_of("TensorRT-LLM", "TensorRT-LLM v0.12 performance overview"),
        DecodeAttention::Grouped
    );
    assert_eq!(decode_attention_of("vLLM", old), DecodeAttention::Grouped);
    assert_eq!(
        decode_attention_of("TensorRT-LLM", "NVIDIA blog, 2024"),
        DecodeAttention::Grouped
    );
}

#[test]
fn a_bad_cell_names_its_column() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/validation/inference-runs.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let broken = text.replacen(",768,128,128,", ",many,128,128,", 1);
    let error = read_inference_runs(&broken).unwrap_err();
    assert!(
        error.starts_with("line ") && error.contains("column `batch`"),
        "{error}"
    );
}
