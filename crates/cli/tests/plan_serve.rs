//! `suanli plan serve` and `suanli validate serve` as a user runs them: output, JSON and the
//! one-line errors with a non-zero exit.

mod common;

use common::{assert_one_line_error, assert_stderr_contains, json, run, suanli, success};

#[test]
fn a_plan_prints_latency_throughput_kv_capacity_and_memory() {
    let text = success(&run(
        "plan serve --model llama-3.1-70b --accelerator h100 --tp 4 \
         --input-len 2048 --output-len 256 --precision fp8",
    ));
    for expected in [
        "TTFT",
        "TPOT",
        "end-to-end",
        "per device",
        "KV cache",
        "weights",
    ] {
        assert!(text.contains(expected), "missing {expected}: {text}");
    }
}

#[test]
fn without_tp_the_smallest_fitting_one_is_chosen_and_json_has_the_estimate() {
    let value = json(&run("plan serve --model llama-3.1-70b --accelerator h100 \
         --input-len 1024 --output-len 128 --batch 4 --json"));
    assert_eq!(value["setup"]["tp"], 2);
    assert_eq!(value["estimate"]["batch"], 4);
    assert!(value["estimate"]["ttft_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_model_too_large_for_the_devices_is_a_clear_error() {
    let message = assert_one_line_error(&run("plan serve --model llama-3.1-405b \
         --accelerator l40s --count 2 --input-len 1024 --output-len 128"));
    assert!(message.contains("does not fit"), "{message}");
}

#[test]
fn an_unknown_accelerator_and_a_too_large_batch_are_clear_errors() {
    for (command_line, expected) in [
        (
            "plan serve --model llama-3.1-8b --accelerator h1000 --input-len 16 --output-len 16",
            "unknown accelerator",
        ),
        (
            "plan serve --model llama-3.1-8b --accelerator h100 --input-len 4096 \
             --output-len 4096 --batch 100000",
            "does not fit",
        ),
    ] {
        let message = assert_one_line_error(&run(command_line));
        assert!(message.contains(expected), "{command_line}: {message}");
    }
}

#[test]
fn validate_serve_evaluates_the_repo_table() {
    let out = run("validate serve data/validation/inference-runs.csv --json");
    // Every row is evaluated, so the command exits 0.
    assert!(out.status.success());
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(value["summary"]["rows"], 39);
    assert_eq!(value["summary"]["evaluated"], 39);
    // A row the model cannot hold in memory says why and makes the command exit 1.
    let table =
        std::fs::read_to_string(common::repo_root().join("data/validation/inference-runs.csv"))
            .unwrap();
    let broken = table.replacen(",2,,,fp8,,512,128,2048,", ",2,,,fp8,,51200,128,2048,", 1);
    assert_ne!(broken, table, "the Gaudi 3 TP2 row is in the table");
    let path = std::env::temp_dir().join(format!("suanli-runs-{}.csv", std::process::id()));
    std::fs::write(&path, broken).unwrap();
    let out = suanli(&["validate", "serve", path.to_str().unwrap(), "--json"]);
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(value["summary"]["evaluated"], 38);
}

#[test]
fn validate_serve_fits_and_cross_validates() {
    let path = "data/validation/inference-runs.csv";
    let fitted = std::env::temp_dir().join(format!("suanli-fit-{}.csv", std::process::id()));
    success(&suanli(&[
        "validate",
        "serve",
        path,
        "--fit",
        "--fit-out",
        fitted.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&fitted).unwrap();
    assert!(text.starts_with(
        "family,gemm_scale,rows,median_abs_error_pct,held_out_median_abs_error_pct,shrinkage"
    ));
    // One shrinkage for every family, from the grid cross-validation chooses it from.
    let weights: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next())
        .collect();
    assert!(weights.windows(2).all(|w| w[0] == w[1]), "{text}");
    let weight: f64 = weights[0].parse().unwrap();
    assert!(suanli_perf::validate_serve_fit::SHRINKAGE_GRID.contains(&weight));
    assert!(text.contains("nvidia-hopper,"), "{text}");
    // The repository's table is what that command writes.
    let repo = common::repo_root().join("crates/perf/data/serving-fit.csv");
    assert_eq!(text, std::fs::read_to_string(repo).unwrap());
    let _ = std::fs::remove_file(&fitted);
    let value = json(&suanli(&["validate", "serve", path, "--cv", "--json"]));
    assert!(value["sources"].as_array().unwrap().len() >= 5);
    // Each fold chose its own shrinkage on the other sources.
    assert!(value["sources"][0]["shrinkage"].as_f64().unwrap() >= 0.0);
    assert!(
        value["report"]["summary"]["median_abs_error_pct"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let out = suanli(&["validate", "train", path, "--cv"]);
    assert!(!out.status.success());
}

#[test]
fn plan_serve_server_scenario_takes_p99_targets() {
    let text = success(&run("plan serve --model llama-3.1-70b \
         --accelerator h200-sxm-141gb --tp 1 --count 8 --input-len 512 --output-len 290 \
         --precision fp8 --scenario server --ttft-p99 2s --tpot-p99 200ms"));
    assert!(
        text.contains("highest Poisson rate within p99 TTFT"),
        "{text}"
    );
    assert!(text.contains("validated: nvidia-hopper family"), "{text}");
    let out = run(
        "plan serve --model llama-3.1-70b --accelerator h200-sxm-141gb \
         --input-len 512 --output-len 290 --scenario server",
    );
    assert!(!out.status.success());
    assert_stderr_contains(&out, "--ttft-p99");
    let text = success(&run(
        "plan serve --model llama-3.1-8b --accelerator tpu-v5e --tp 2 \
         --input-len 512 --output-len 128 --scenario offline",
    ));
    assert!(text.contains("unvalidated"));
}

#[test]
fn a_deployment_search_lists_the_cheapest_and_the_rejected() {
    let text = success(&run("plan serve --model llama-3.1-70b --input-len 2048 \
         --output-len 256 --precision fp8 --rate 20 --ttft-slo 500ms --tpot-slo 50ms \
         --accelerators h100-sxm5-80gb,l40s --price h100=2"));
    assert!(
        text.contains("h100-sxm5-80gb") && text.contains("USD/M output tokens"),
        "{text}"
    );
    assert!(text.contains("rejected l40s: TPOT"), "{text}");
}

#[test]
fn targets_impossible_at_any_size_are_a_clear_error() {
    let message = assert_one_line_error(&run("plan serve --model llama-3.1-70b \
         --input-len 2048 --output-len 256 --rate 1 --ttft-slo 5ms --tpot-slo 50ms \
         --accelerators h100"));
    assert!(
        message.contains("no deployment") && message.contains("TTFT"),
        "{message}"
    );
    let out = run(
        "plan serve --model llama-3.1-8b --input-len 16 --output-len 16 \
         --rate 1 --ttft-slo fast --tpot-slo 50ms",
    );
    assert!(!out.status.success());
    assert_stderr_contains(&out, "not a duration");
}

#[test]
fn help_shows_examples_and_weight_only_precision_is_said() {
    let text = success(&run("plan serve --help"));
    assert!(
        text.contains("Examples:") && text.contains("--tpot-slo 50ms"),
        "{text}"
    );
    let text = success(&run("plan serve --model llama-3.1-8b \
         --accelerator a100-sxm4-80gb --precision int4 --input-len 512 --output-len 128"));
    assert!(text.contains("dequantised into bf16"), "{text}");
}

#[test]
fn a_disaggregated_deployment_is_listed_with_its_pools_and_kv_traffic_when_it_wins() {
    // 8k-token prompts under a 30 ms p99 TPOT: every prompt chunk would lengthen the decode
    // iterations of a colocated replica, so separate prefill and decode pools are cheaper.
    let command_line = "plan serve --model llama-3.1-70b --input-len 8192 --output-len 256 \
         --precision fp8 --rate 20 --ttft-p99 2s --tpot-p99 30ms --accelerators b200-sxm-180gb";
    let text = success(&run(command_line));
    assert!(text.contains("#1 is disaggregated: prefill pool"), "{text}");
    assert!(
        text.contains("decode pool") && text.contains("MB per request over"),
        "{text}"
    );
    assert!(text.contains("GB/s between the pools"), "{text}");
    let json = json(&run(&format!("{command_line} --json")));
    let pools = &json["deployments"][0]["pools"];
    assert!(pools["prefill_replicas"].as_u64() >= Some(1), "{json}");
    assert!(pools["decode_replicas"].as_u64() >= Some(1), "{json}");
    assert!(pools["kv_bytes_per_s"].as_f64() > Some(0.0), "{json}");
}

/// AMD's ROCm performance page (vLLM 0.10.2, the validation table's row
/// amd-rocm70-vllm0102-llama31-70b-mi300x-tp8-128-2048): Llama 3.1 70B fp8 on 8 MI300X, TP8,
/// 3,200 prompts of 128 + 2,048 tokens, 13,212.5 output tokens/s. Naming the engine and its
/// version charges V1's synchronous scheduling; without it the plan is TensorRT-LLM's.
#[test]
fn the_engine_and_its_version_bring_the_plan_near_the_published_vllm_run() {
    let command = "plan serve --model llama-3.1-70b --accelerator mi300x --tp 8 \
         --input-len 128 --output-len 2048 --precision fp8 --kv-precision fp8 --batch 3200 \
         --scenario offline --json";
    let tokens_per_s = |extra: &str| {
        let value = json(&run(&format!("{command} {extra}")));
        value["estimate"]["output_tokens_per_s_total"]
            .as_f64()
            .unwrap()
    };
    let published = 13_212.5;
    let vllm = tokens_per_s("--engine vllm --engine-version 0.10.2");
    let default = tokens_per_s("");
    assert!((vllm / published - 1.0).abs() < 0.25, "{vllm}");
    assert!(default / published - 1.0 > 0.4, "{default}");
    // vLLM from 0.14 schedules asynchronously: no host time, the default's throughput.
    let current = tokens_per_s("--engine vllm");
    assert!(
        (current / default - 1.0).abs() < 1e-9,
        "{current} vs {default}"
    );
    let text = success(&run(&format!(
        "{} --engine vllm --engine-version 0.9.2",
        command.replace(" --json", "")
    )));
    assert!(
        text.contains("host scheduling 12.8 us per sequence"),
        "{text}"
    );
}

#[test]
fn an_engine_version_must_be_a_vllm_version() {
    let base = "plan serve --model llama-3.1-8b --accelerator h100 --input-len 16 --output-len 16";
    for (extra, expected) in [
        ("--engine tgi --engine-version 0.10.2", "--engine vllm"),
        ("--engine vllm --engine-version latest", "e.g. 0.10.2"),
        ("--engine lmdeploy", "lmdeploy"),
    ] {
        let message = assert_one_line_error(&run(&format!("{base} {extra}")));
        assert!(message.contains(expected), "{extra}: {message}");
    }
    let escape = suanli(&[
        "plan",
        "serve",
        "--model",
        "llama-3.1-8b",
        "--accelerator",
        "h100",
        "--input-len",
        "16",
        "--output-len",
        "16",
        "--engine",
        "vllm",
        "--engine-version",
        "0.\u{1b}[31m1",
    ]);
    let message = assert_one_line_error(&escape);
    assert!(!message.contains('\u{1b}'), "{message}");
}
