//! The serving model against the repository's copy of the published inference runs.

use suanli_catalog::Catalog;
use suanli_perf::validate::RowResult;
use suanli_perf::validate_serve::{InferenceRun, read_inference_runs, validate_serving};

/// The repository's copy of the published inference runs, as text.
fn table_text() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/validation/inference-runs.csv"
    );
    std::fs::read_to_string(path).expect("the repo's copy of inference-runs.csv")
}

/// The repository's table, parsed.
fn table_rows() -> Vec<InferenceRun> {
    read_inference_runs(&table_text()).expect("the table parses")
}

/// The row `id` of the repository's table, and its evaluation with the fitted constants.
fn evaluated(id: &str) -> (InferenceRun, RowResult) {
    let row = table_rows()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{id} is in the table"));
    let result = suanli_perf::validate_serve::evaluate_row(&Catalog::builtin(), &row);
    (row, result)
}

#[test]
fn the_inference_table_is_evaluated_with_the_measured_error() {
    let rows = table_rows();
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
    // The figures measured with the fitted constants (docs/validation-serving.md), against
    // the targets: at least 36 of 39 rows, median |error| 10%, max 35%.
    assert_eq!(report.summary.rows, 39);
    assert_eq!(report.summary.evaluated, 39);
    // 6.6% while MI300X and MI325X shared one guessed GEMM share; 4.0% with AMD's measured
    // Max-Achievable FLOPs for each (efficiency::MAX_ACHIEVABLE); 6.4% once the fit's pull
    // toward the training efficiency moved the Ada constant from 0.84 to 1.00.
    assert!(report.summary.median_abs_error_pct.unwrap() <= 7.0);
    // 103.3% while the MLPerf rows assumed half the prompt cap, 60.0% (the ROCm MI300X TP8 row)
    // with the datasets' measured prompt lengths; 52.5% (the L40S 7B TTFT row) with the
    // measured MI300X/MI325X GEMM rates; 33.5% (the same row) with the shrinkage.
    assert!(report.summary.max_abs_error_pct.unwrap() <= 35.0);
    // The MLPerf v4.1 MI300X rows ran vLLM 0.4.3, whose host scheduling the model charges
    // (serve::host): +15.3% and +13.2% with one GEMM share for MI300X and MI325X, +0.3% and
    // -1.3% with the measured ones.
    for row in report
        .rows
        .iter()
        .filter(|r| r.id.contains("inf41-llama2-70b-mi300x"))
    {
        assert!(row.error_pct.unwrap().abs() <= 5.0, "{}", row.id);
    }
    // MLPerf L40S TP4 over PCIe: -24% with the assumed prompts, within 3% with the measured,
    // +7.2% and +6.4% with the Ada constant the shrinkage leaves at 1.00.
    for row in report.rows.iter().filter(|r| r.id.contains("l40s-x8")) {
        assert!(row.error_pct.unwrap().abs() <= 8.0, "{}", row.id);
    }
    // AMD's vLLM 0.10.2 TP8 run with 3,200 sequences: +49.3% while V1's synchronous host work
    // was not charged, +20.3% with the published A/B's 12.8 us per sequence per step.
    let rocm = report
        .rows
        .iter()
        .find(|r| r.id == "amd-rocm70-vllm0102-llama31-70b-mi300x-tp8-128-2048")
        .expect("the ROCm TP8 row");
    assert!(
        rocm.error_pct.unwrap().abs() <= 25.0,
        "{:?}",
        rocm.error_pct
    );
}

/// vLLM 0.10.2 on AMD's ROCm page runs the V1 engine, which schedules serially with the GPU;
/// AMD's MLPerf harness runs vLLM 0.9 with multi-step scheduling (V0), which does not.
#[test]
fn the_mlperf_harness_runs_vllm_without_serial_host_time() {
    use suanli_perf::validate_serve::row_setup;
    let rows = table_rows();
    let catalog = Catalog::builtin();
    let host_us = |id: &str| {
        let row = rows.iter().find(|r| r.id == id).expect(id);
        row_setup(&catalog, row).unwrap().host_s_per_sequence * 1e6
    };
    let rocm = host_us("amd-rocm70-vllm0102-llama31-70b-mi300x-tp8-128-2048");
    assert!((12.0..13.5).contains(&rocm), "{rocm}");
    assert_eq!(host_us("mlperf-inf51-llama2-70b-mi325x-x8-offline"), 0.0);
    assert_eq!(host_us("mlperf-inf60-llama2-70b-mi355x-x8-server"), 0.0);
    assert!(host_us("mlperf-inf41-llama2-70b-mi300x-x8-offline") > 30.0);
    assert_eq!(host_us("trt10-llama33-70b-b200-fp4"), 0.0);
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
    let text = table_text();
    let broken = text.replacen(",768,128,128,", ",many,128,128,", 1);
    let error = read_inference_runs(&broken).unwrap_err().to_string();
    assert!(
        error.starts_with("line ") && error.contains("column `batch`"),
        "{error}"
    );
}

#[test]
fn mlperf_rows_without_input_len_use_the_dataset_mean_and_say_so() {
    let (row, result) = evaluated("mlperf-inf41-llama2-70b-h200-x8-server");
    assert_eq!(row.input_len, None);
    assert_eq!(row.output_len, Some(291.3));
    assert_eq!(row.scenario.as_deref(), Some("server"));
    assert_eq!(
        (row.ttft_slo_ms, row.tpot_slo_ms),
        (Some(2000.0), Some(200.0))
    );
    let layout = result.layout.unwrap();
    assert!(
        layout.starts_with("server,") && layout.ends_with("input_len dataset mean"),
        "{layout}"
    );
    let dataset = suanli_perf::validate_serve::dataset_of(&row.model).unwrap();
    assert_eq!(dataset.prompt_cap, 1024);
    // MLCommons' 24,576 OpenOrca samples average 222.3 prompt tokens (the source is named in
    // validate_serve::MLPERF_LENGTHS_SOURCE), well under half the 1,024 cap.
    assert_eq!(dataset.samples, 24_576);
    assert!((dataset.mean_input_len - 222.33).abs() < 0.01);
}

#[test]
fn nonsense_lengths_are_rejected_with_one_line() {
    let rows = table_rows();
    let mut row = rows[0].clone();
    for bad in [f64::NAN, -3.0, 0.0, 1e12] {
        row.output_len = Some(bad);
        let result = suanli_perf::validate_serve::evaluate_row(&Catalog::builtin(), &row);
        let reason = result.reason.unwrap();
        assert!(
            reason.contains("output_len") && !reason.contains('\n'),
            "{reason}"
        );
    }
}

/// The per-family target: every family with three or more rows within 15% median
/// |error| in sample.
#[test]
fn every_family_with_three_rows_is_within_fifteen_percent() {
    use suanli_perf::validate_serve_fit::family_errors;
    let rows = table_rows();
    let report = validate_serving(&Catalog::builtin(), &rows);
    let families = family_errors(&rows, &report);
    for family in families.iter().filter(|f| f.rows >= 2) {
        println!(
            "{} {} {:?}",
            family.family, family.rows, family.median_abs_error_pct
        );
    }
    for family in families.iter().filter(|f| f.rows >= 3) {
        let median = family.median_abs_error_pct.unwrap();
        assert!(median <= 15.0, "{}: {median}", family.family);
    }
}

/// Intel's Gaudi tables ran optimum-habana over DeepSpeed on every card, with Intel Neural
/// Compressor's fp8 KV cache: one replica, tp = cards, fp8 KV.
#[test]
fn intel_gaudi_table_rows_run_one_replica_with_an_fp8_cache() {
    let (row, result) = evaluated("intel-gaudi3-sw118-llama31-70b-x8-fp8-128-2048");
    assert_eq!(row.tp, None);
    assert_eq!(result.mode, "implied");
    let layout = result.layout.unwrap();
    assert!(
        layout.contains("tp=8,") && layout.contains("fp8/fp8"),
        "{layout}"
    );
    // The MLPerf Gaudi 2 row (TGI-Gaudi) is not from these tables: its tp is still searched.
    let (_, result) = evaluated("mlperf-inf40-llama2-70b-gaudi2-x8-offline");
    assert_eq!(result.mode, "searched");
}

/// Intel's Gaudi 3 TP2 row holds 512 sequences of 128 + 2048 tokens in an fp8 cache: 512 x 2176
/// x 2 x 80 layers x 8 KV heads x 128 x 1 byte = 182.5 GB, next to 69 GB of fp8 weights. That
/// is more than 0.95 of 2 x 128 GB (243 GB, the fraction vLLM and TensorRT-LLM leave) and less
/// than the 2 x 130400 MiB hl-smi shows free (273 GB), which optimum-habana's static
/// allocation uses whole.
#[test]
fn the_gaudi_3_static_batch_fits_in_the_memory_hl_smi_reports() {
    let kv_bytes = 512.0 * 2176.0 * 2.0 * 80.0 * 8.0 * 128.0;
    let weights = 68.98e9;
    assert!(kv_bytes + weights > 0.95 * 2.0 * 128e9);
    assert!(kv_bytes + weights < 2.0 * 130400.0 * 1048576.0);
    let (_, result) = evaluated("intel-gaudi3-sw118-llama2-70b-x2-fp8-128-2048");
    let layout = result.layout.expect("the row is evaluated");
    assert!(
        layout.contains("tp=2,") && layout.contains("batch=512,"),
        "{layout}"
    );
}
