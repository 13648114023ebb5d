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
