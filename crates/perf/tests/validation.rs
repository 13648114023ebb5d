//! The training model against the published runs in data/validation/training-runs.csv: the
//! accuracy the issue asks for, checked on the repository's own copy of the table.

use suanli_catalog::Catalog;
use suanli_perf::validate;

fn report() -> validate::Report {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/validation/training-runs.csv"
    );
    let text = std::fs::read_to_string(path).expect("validation table is in the repository");
    let rows = validate::read_training_runs(&text).expect("table parses");
    validate::validate_training(&Catalog::builtin(), &rows)
}

#[test]
fn the_shared_rows_are_evaluated_within_the_error_budget() {
    let report = report();
    assert_eq!(report.summary.rows, 70);
    // Every row evaluates: each published layout fits the memory model
    // (tests/published_layouts_fit.rs), and the two rows whose setup rests partly on stated
    // assumptions (frontier, yuan1, confidence low) have architecture columns.
    assert_eq!(report.summary.evaluated, 70);
    let median = report.summary.median_abs_error_pct.unwrap();
    let max = report.summary.max_abs_error_pct.unwrap();
    assert!(median <= 8.0, "median |error| {median:.1}% > 8%");
    assert!(max <= 30.0, "max |error| {max:.1}% > 30%");
}

#[test]
fn every_vendor_with_three_rows_has_a_median_error_within_15_percent() {
    let report = report();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/validation/training-runs.csv"
    ))
    .unwrap();
    let rows = validate::read_training_runs(&text).unwrap();
    let vendor = |accelerator: &str| match accelerator {
        a if a.starts_with("tpu") => "google",
        a if a.starts_with("gaudi") => "intel",
        a if a.starts_with("mi") => "amd",
        _ => "nvidia",
    };
    for wanted in ["nvidia", "google", "intel", "amd"] {
        let mut errors: Vec<f64> = rows
            .iter()
            .zip(&report.rows)
            .filter(|(row, _)| vendor(&row.accelerator) == wanted)
            .filter_map(|(_, result)| result.error_pct.map(f64::abs))
            .collect();
        if errors.len() < 2 {
            continue;
        }
        let median = validate::median(&mut errors).unwrap();
        let budget = 15.0;
        assert!(median <= budget, "{wanted}: median |error| {median:.1}%");
    }
}

#[test]
fn leave_one_source_out_median_is_within_12_percent() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/validation/training-runs.csv"
    ))
    .unwrap();
    let rows = validate::read_training_runs(&text).unwrap();
    let outcome = suanli_perf::fit::fit(&Catalog::builtin(), &rows);
    // Held out by source, the TPU rows (four generations, five sources).
    let mut tpu: Vec<f64> = rows
        .iter()
        .zip(&outcome.cross_validated)
        .filter(|(row, _)| row.accelerator.starts_with("tpu"))
        .filter_map(|(_, result)| result.error_pct.map(f64::abs))
        .collect();
    assert!(tpu.len() >= 9, "{} TPU rows evaluated", tpu.len());
    let tpu_median = validate::median(&mut tpu).unwrap();
    // 18.4% since MaxText 32B on v5p-64 fits the memory model and is evaluated (-16.7% held
    // out) and the v5p constant is fitted on five rows; the 15% per vendor is in sample.
    assert!(
        tpu_median <= 20.0,
        "TPU cross-validated median {tpu_median:.1}%"
    );
    let cv = validate::summarise_rows(outcome.cross_validated);
    let median = cv.summary.median_abs_error_pct.unwrap();
    assert!(median <= 12.0, "cross-validated median {median:.1}%");
    // The embedded constants are the ones this data produces (rerun --fit after a change).
    assert_eq!(&outcome.fitted, suanli_perf::fit::Fitted::builtin());
}

#[test]
fn rows_with_a_full_layout_are_evaluated_as_given() {
    let report = report();
    let row = report
        .rows
        .iter()
        .find(|r| r.id == "korthikanti22-175B-selective")
        .unwrap();
    assert_eq!(row.mode, "given");
    let layout = row.layout.as_deref().unwrap();
    assert!(layout.starts_with("tp=8,pp=8,dp=1,"), "{layout}");
    assert!(layout.contains("vpp=3") && layout.contains("recompute=selective"));
}

#[test]
fn an_unevaluable_row_has_no_prediction_and_a_reason() {
    let header = "id,source,model,params_b,layers,hidden,heads,kv_heads,head_dim,ffn,vocab,seq_len,mlp,moe_experts,moe_top_k,moe_expert_ffn,moe_shared_experts,moe_dense_layers,accelerator,num_accelerators,accelerators_per_node,scaleout_gbps_per_accelerator,precision,tp,pp,dp,cp,ep,sequence_parallel,zero,micro_batch,global_batch,virtual_stages,recompute,metric,measured,tokens_total,confidence,notes";
    let row = "x,src,GPT,1,24,2048,16,16,,8192,51200,2048,gelu,,,,,,no-such-gpu,8,8,,bf16,1,1,8,1,1,false,1,1,64,1,none,mfu,0.4,,high,";
    let rows = validate::read_training_runs(&format!("{header}\n{row}\n")).unwrap();
    let report = validate::validate_training(&Catalog::builtin(), &rows);
    assert_eq!(report.summary.evaluated, 0);
    assert!(report.rows[0].predicted.is_none());
    assert!(
        report.rows[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("no-such-gpu")
    );
}

#[test]
fn a_malformed_cell_names_its_line_and_field() {
    let text = "id,model,accelerator,metric,layers\nx,GPT,a100-sxm4-80gb,mfu,many\n";
    let error = validate::read_training_runs(text).unwrap_err();
    assert!(
        matches!(&error, validate::TableError::Cell { line: 2, column, .. } if column == "layers"),
        "{error}"
    );
    let error = error.to_string();
    assert!(
        error.contains("line 2") && error.contains("column `layers`"),
        "{error}"
    );
}

#[test]
fn mlperf_rows_count_the_evaluations_in_their_timed_region() {
    let share = validate::training_share_of_timed_region;
    let logged = "includes periodic evaluation in the timed region (eval_start..eval_stop \
                  intervals take 8.0% of it in the counted run logs)";
    assert!((share(logged) - 0.92).abs() < 1e-12);
    let unlogged = "includes periodic evaluation in the timed region (eval intervals not logged)";
    assert!((share(unlogged) - 0.90).abs() < 1e-12);
    assert_eq!(share("Table row: steady state"), 1.0);
    // Nonsense shares fall back to the README's middle figure instead of a negative rate.
    let nonsense = "includes periodic evaluation in the timed region (take 250% of it)";
    assert!((share(nonsense) - 0.90).abs() < 1e-12);
}

#[test]
fn lora_gpu_and_tpu_rows_evaluate() {
    let report = report();
    for id in [
        "mlperf41-llama2-70b-lora-h100-8",
        "mlperf51-llama2-70b-lora-mi350x-8",
        "nemo2511-llama3-70b-gb200-64",
        "mlperf40-gpt3-tpu-v5p-512",
        "palm-540b-tpu-v4-6144",
    ] {
        let row = report.rows.iter().find(|r| r.id == id).unwrap();
        let error = row
            .error_pct
            .unwrap_or_else(|| panic!("{id}: {:?}", row.reason));
        assert!(error.abs() < 30.0, "{id}: {error:+.1}%");
    }
}
