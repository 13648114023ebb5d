//! `suanli plan train` and `suanli validate train` as a user runs them: output, JSON and the
//! one-line errors with a non-zero exit.

mod common;

use common::{assert_one_line_error, assert_stderr_contains, json, run, stderr, suanli, success};

#[test]
fn search_prints_a_ranked_table_and_the_breakdown() {
    let text = success(&run(
        "plan train --model llama-3.1-8b --accelerator h100 --count 16 --tokens 1T --top 2",
    ));
    assert!(
        text.contains("pipeline bubble") && text.contains("optimizer states"),
        "{text}"
    );
    assert!(
        text.contains("1T tokens:") && text.contains("days"),
        "{text}"
    );
}

#[test]
fn json_holds_the_whole_estimate() {
    let value = json(&run(
        "plan train --model llama-2-7b --accelerator a100-sxm4-80gb --count 8 \
         --global-batch 64 --layout tp=1,pp=1,mb=1,zero=2 --json",
    ));
    let estimate = &value["estimates"][0];
    assert_eq!(estimate["layout"]["dp"], 8);
    assert!(estimate["step_time_s"].as_f64().unwrap() > 0.0);
    assert!(estimate["memory"]["total_bytes"].as_f64().unwrap() > 0.0);
}

#[test]
fn user_errors_are_one_line_and_exit_non_zero() {
    for (flags, expected) in [
        (
            "--model lama-3-70b --accelerator h100 --count 8",
            "did you mean",
        ),
        (
            "--model llama-3.1-70b --accelerator h1000 --count 8",
            "unknown accelerator",
        ),
        (
            "--model llama-3.1-70b --accelerator h100 --count 64 --layout tp=3",
            "does not divide",
        ),
        (
            "--model llama-3.1-405b --accelerator a100-sxm4-40gb --count 8",
            "no layout fits",
        ),
    ] {
        let err = assert_one_line_error(&run(&format!("plan train {flags}")));
        assert!(err.contains(expected), "{flags}: {err}");
    }
}

#[test]
fn validate_train_json_has_the_documented_shape() {
    let out = run("validate train data/validation/training-runs.csv --json");
    // Exit status is 1 while some rows cannot be evaluated; the JSON is printed either way.
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["summary"]["rows"], 70);
    assert!(value["summary"]["evaluated"].as_u64().unwrap() >= 42);
    let row = &value["rows"][0];
    for key in ["id", "metric", "measured", "predicted", "error_pct", "mode"] {
        assert!(row.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn validate_a_missing_file_says_so() {
    let out = run("validate train /no/such/file.csv");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot read /no/such/file.csv"));
}

#[test]
fn every_catalog_accelerator_states_its_band_or_that_it_is_unvalidated() {
    let catalog = suanli_catalog::Catalog::builtin();
    for accelerator in &catalog.accelerators {
        let out = suanli(&[
            "plan",
            "train",
            "--model",
            "llama-3.1-8b",
            "--accelerator",
            &accelerator.id,
            "--count",
            "64",
            "--top",
            "1",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            // A device too small for the model says so in one line (Groq's SRAM, say).
            assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", accelerator.id);
            continue;
        }
        let last = text.trim().lines().last().unwrap_or_default();
        assert!(
            last.starts_with("uncertainty: ±")
                || last.starts_with("unvalidated: no published run on "),
            "{}: {last}",
            accelerator.id
        );
    }
}

#[test]
fn plan_json_carries_the_band_and_the_rows_behind_it() {
    let plan = |accelerator: &str| {
        run(&format!(
            "plan train --model llama-3.1-8b --accelerator {accelerator} --count 16 --top 1 --json"
        ))
    };
    let value = json(&plan("h100"));
    assert!(value["uncertainty_pct"].as_f64().unwrap() > 0.0);
    assert!(value["validated_rows"].as_u64().unwrap() >= 3);
    let out = plan("gaudi3");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["validated_rows"], 0);
}

#[test]
fn lora_plans_train_only_the_adapters() {
    let plan = "plan train --model llama-2-70b --accelerator h100 --count 8";
    let sized = format!("{plan} --seq-len 8192 --global-batch 8 --precision fp8 --top 1 --json");
    let value = json(&run(&format!("{sized} --workload lora --lora-rank 16")));
    let memory = &value["estimates"][0]["memory"];
    // 44.6 M adapter parameters: Adam states of a few hundred MB at most, not 70B x 12 bytes.
    assert!(
        memory["optimizer_bytes"].as_f64().unwrap() < 1e9,
        "{memory}"
    );
    // Full training of 70B on 8 x 80 GB does not fit at all.
    let out = run(&format!("{sized} --workload pretrain"));
    assert!(!out.status.success());
    let out = run(&format!("{plan} --workload lora"));
    assert!(!out.status.success());
    assert_stderr_contains(&out, "lora rank");
}

#[test]
fn an_explicit_layout_that_does_not_fit_is_still_planned_with_its_overflow() {
    let text = success(&run(
        "plan train --model llama-3.1-70b --accelerator h100 --count 8 --layout tp=8,zero=0",
    ));
    assert!(text.contains("step "), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("does not fit"))
        .unwrap_or_else(|| panic!("no overflow line: {text}"));
    assert!(
        line.contains("over the 80.0 GB") && line.contains("try"),
        "{line}"
    );
}
