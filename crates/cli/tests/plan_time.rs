//! `suanli plan train` prints and returns both the ideal and the expected time to train.

mod common;

use std::process::Output;

use common::{json, suanli, success};

/// `suanli plan train` of Llama 3.1 8B on 16 H100 for 1T tokens, best layout only, with `extra`.
fn plan(extra: &[&str]) -> Output {
    let base = [
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
        "1",
    ];
    suanli(&[&base[..], extra].concat())
}

fn json_time(extra: &[&str]) -> serde_json::Value {
    json(&plan(&[&["--json"][..], extra].concat()))["time_to_train"][0].clone()
}

#[test]
fn table_shows_ideal_and_expected_time_with_the_source() {
    let text = success(&plan(&[]));
    assert!(
        text.contains("ideal") && text.contains("expected") && text.contains("goodput"),
        "{text}"
    );
    assert!(text.contains("419 unexpected interruptions"), "{text}");
}

#[test]
fn json_carries_both_times_and_evaluation_and_restarts_cost_time() {
    let base = json_time(&[]);
    let ideal = base["ideal_days"].as_f64().unwrap();
    let expected = base["expected_days"].as_f64().unwrap();
    let goodput = base["goodput_fraction"].as_f64().unwrap();
    assert!(expected > ideal && ideal > 0.0, "{base}");
    assert!(
        (goodput - ideal / expected).abs() < 1e-9 && goodput > 0.9,
        "{base}"
    );
    // Evaluating 1B tokens every 10B costs about 100 × 1B / 3 tokens of training time: +3.3%.
    let with_eval = json_time(&["--eval-every", "10B", "--eval-tokens", "1B"]);
    let ratio = with_eval["expected_days"].as_f64().unwrap() / expected;
    assert!((ratio - (1.0 + 1.0 / 30.0)).abs() < 0.002, "{ratio}");
    let slow = json_time(&["--restart-min", "600", "--checkpoint-gb-per-s", "0.5"]);
    assert!(slow["expected_days"].as_f64().unwrap() > expected, "{slow}");
}

#[test]
fn bad_time_flags_are_refused_with_one_line() {
    let out = plan(&["--checkpoint-gb-per-s", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--checkpoint-gb-per-s must be"), "{err}");
}
