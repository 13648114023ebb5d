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
fn the_first_42_nvidia_rows_are_evaluated_within_the_error_budget() {
    // The table grew from 42 NVIDIA/Megatron rows to 69 with other vendors; the budget below
    // holds for the first 42 until the vendor topologies land (issue 8).
    let report = report();
    assert_eq!(report.summary.rows, 69);
    let first: Vec<f64> = report.rows[..42]
        .iter()
        .map(|r| r.error_pct.expect("the first 42 rows evaluate").abs())
        .collect();
    let mut sorted = first.clone();
    sorted.sort_by(f64::total_cmp);
    let median = (sorted[20] + sorted[21]) / 2.0;
    let max = sorted[41];
    assert!(median <= 8.0, "median |error| {median:.1}% > 8%");
    assert!(max <= 25.0, "max |error| {max:.1}% > 25%");
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
        error.contains("line 2") && error.contains("column `layers`"),
        "{error}"
    );
}
