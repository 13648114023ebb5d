//! `suanli plan train` and `suanli validate train` as a user runs them: output, JSON and the
//! one-line errors with a non-zero exit.

use std::process::{Command, Output};

fn suanli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_suanli"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn search_prints_a_ranked_table_and_the_breakdown() {
    let out = suanli(&[
        "plan",
        "train",
        "--model",
        "llama-3.1-8b",
        "--accelerator",
        "h100",
        "--count",
        "16",
        "--tokens",
        "1T",
        "--top",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
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
    let out = suanli(&[
        "plan",
        "train",
        "--model",
        "llama-2-7b",
        "--accelerator",
        "a100-sxm4-80gb",
        "--count",
        "8",
        "--global-batch",
        "64",
        "--layout",
        "tp=1,pp=1,mb=1,zero=2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let estimate = &value["estimates"][0];
    assert_eq!(estimate["layout"]["dp"], 8);
    assert!(estimate["step_time_s"].as_f64().unwrap() > 0.0);
    assert!(estimate["memory"]["total_bytes"].as_f64().unwrap() > 0.0);
}

#[test]
fn user_errors_are_one_line_and_exit_non_zero() {
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--model",
                "lama-3-70b",
                "--accelerator",
                "h100",
                "--count",
                "8",
            ],
            "did you mean",
        ),
        (
            &[
                "--model",
                "llama-3.1-70b",
                "--accelerator",
                "h1000",
                "--count",
                "8",
            ],
            "unknown accelerator",
        ),
        (
            &[
                "--model",
                "llama-3.1-70b",
                "--accelerator",
                "h100",
                "--count",
                "64",
                "--layout",
                "tp=3",
            ],
            "does not divide",
        ),
        (
            &[
                "--model",
                "llama-3.1-405b",
                "--accelerator",
                "a100-sxm4-40gb",
                "--count",
                "8",
            ],
            "no layout fits",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["plan", "train"];
        all.extend_from_slice(args);
        let out = suanli(&all);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn validate_train_json_has_the_documented_shape() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/validation/training-runs.csv"
    );
    let out = suanli(&["validate", "train", path, "--json"]);
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
    let out = suanli(&["validate", "train", "/no/such/file.csv"]);
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
    let out = suanli(&[
        "plan",
        "train",
        "--model",
        "llama-3.1-8b",
        "--accelerator",
        "h100",
        "--count",
        "16",
        "--top",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(value["uncertainty_pct"].as_f64().unwrap() > 0.0);
    assert!(value["validated_rows"].as_u64().unwrap() >= 3);
    let out = suanli(&[
        "plan",
        "train",
        "--model",
        "llama-3.1-8b",
        "--accelerator",
        "gaudi3",
        "--count",
        "16",
        "--top",
        "1",
        "--json",
    ]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["validated_rows"], 0);
}

#[test]
fn lora_plans_train_only_the_adapters() {
    let args = |workload: &'static str| {
        let mut a = vec![
            "plan",
            "train",
            "--model",
            "llama-2-70b",
            "--accelerator",
            "h100",
            "--count",
            "8",
            "--seq-len",
            "8192",
            "--global-batch",
            "8",
            "--precision",
            "fp8",
            "--top",
            "1",
            "--json",
            "--workload",
            workload,
        ];
        if workload == "lora" {
            a.extend(["--lora-rank", "16"]);
        }
        a
    };
    let out = suanli(&args("lora"));
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let memory = &value["estimates"][0]["memory"];
    // 44.6 M adapter parameters: Adam states of a few hundred MB at most, not 70B x 12 bytes.
    assert!(
        memory["optimizer_bytes"].as_f64().unwrap() < 1e9,
        "{memory}"
    );
    // Full training of 70B on 8 x 80 GB does not fit at all.
    let out = suanli(&args("pretrain"));
    assert!(!out.status.success());
    let out = suanli(&[
        "plan",
        "train",
        "--model",
        "llama-2-70b",
        "--accelerator",
        "h100",
        "--count",
        "8",
        "--workload",
        "lora",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("lora rank"), "{}", stderr(&out));
}

#[test]
fn an_explicit_layout_that_does_not_fit_is_still_planned_with_its_overflow() {
    let out = suanli(&[
        "plan",
        "train",
        "--model",
        "llama-3.1-70b",
        "--accelerator",
        "h100",
        "--count",
        "8",
        "--layout",
        "tp=8,zero=0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
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
