//! `suanli simulate` as a user runs it: a small gavel trace under `--compare`, the `--json`
//! document, the files `--out` writes, and the one-line errors with a non-zero exit.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{assert_one_line_error, json, run, stderr, suanli, success};

/// A 9-job gavel trace shipped with the simulator: replays in well under a second in debug.
const SMALL_GAVEL_TRACE: &str = "crates/sim/data/gavel/seed0/23dbec.trace";

/// `suanli simulate` of the small gavel trace on its 108-accelerator cluster, with `extra`.
fn simulate_small(extra: &[&str]) -> Output {
    let base = [
        "simulate",
        "--cluster",
        "gavel-36-36-36",
        "--trace",
        SMALL_GAVEL_TRACE,
    ];
    suanli(&[&base[..], extra].concat())
}

/// A fresh directory under the system temp dir, unique to this test.
fn scratch_dir(test_name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "suanli-simulate-{test_name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}

#[test]
fn compare_prints_one_column_per_policy_and_every_job_completes() {
    let text = success(&simulate_small(&[
        "--compare",
        "fifo,backfill,sjf,las,fair,gavel",
    ]));
    assert!(
        text.starts_with("9 jobs on gavel-36-36-36 (108 accelerators)"),
        "{text}"
    );
    let header = text
        .lines()
        .find(|line| line.contains("metric"))
        .expect("a header row");
    for policy in ["fifo", "backfill", "sjf", "las", "fair", "gavel"] {
        assert!(header.contains(policy), "no column for {policy}: {header}");
    }
    let completed = text
        .lines()
        .find(|line| line.contains("jobs completed"))
        .expect("a jobs completed row");
    assert_eq!(completed.matches(" 9 ").count(), 6, "{completed}");
}

#[test]
fn json_has_the_cluster_and_one_summary_per_policy() {
    let report = json(&simulate_small(&["--compare", "fifo,gavel", "--json"]));
    assert_eq!(report["cluster"], "gavel-36-36-36");
    assert_eq!(report["accelerators"], 108);
    assert_eq!(report["seed"], 0);
    let runs = report["runs"].as_array().expect("runs is an array");
    let policies: Vec<&str> = runs.iter().map(|r| r["policy"].as_str().unwrap()).collect();
    assert_eq!(policies, ["fifo", "gavel"]);
    for run in runs {
        assert_eq!(run["jobs_completed"], 9);
        assert_eq!(run["jobs_rejected"], 0);
        for distribution in ["jct_s", "queueing_delay_s", "slowdown"] {
            for stat in ["mean", "median", "p95", "p99", "max"] {
                assert!(run[distribution][stat].is_number(), "{distribution}.{stat}");
            }
        }
        for field in [
            "makespan_s",
            "utilisation",
            "goodput",
            "tenant_fairness_jain",
            "preemptions",
            "node_failures",
            "lost_acc_h",
            "events",
        ] {
            assert!(run[field].is_number(), "{field}: {run}");
        }
        let goodput = run["goodput"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&goodput), "goodput {goodput}");
    }
}

#[test]
fn out_writes_summary_a_csv_per_policy_and_two_svg_plots() {
    let dir = scratch_dir("out");
    success(&simulate_small(&[
        "--compare",
        "fifo,las",
        "--out",
        dir.to_str().unwrap(),
    ]));
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let summary: serde_json::Value = serde_json::from_str(&read("summary.json")).unwrap();
    assert_eq!(summary["runs"].as_array().unwrap().len(), 2);
    for policy in ["fifo", "las"] {
        let csv = read(&format!("jobs-{policy}.csv"));
        let mut lines = csv.lines();
        let header = lines.next().expect("a header");
        assert!(
            header.starts_with("id,tenant,gang_size,accelerator,arrival_s"),
            "{header}"
        );
        assert_eq!(lines.count(), 9, "one row per job in jobs-{policy}.csv");
    }
    for plot in ["jct-cdf.svg", "utilisation.svg"] {
        let svg = read(plot);
        assert!(svg.starts_with("<svg"), "{plot} is not SVG");
        assert!(
            svg.contains("fifo") && svg.contains("las"),
            "{plot} lacks a legend"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_trace_line_is_one_error_naming_the_line_and_the_field() {
    let dir = scratch_dir("bad-trace");
    let trace = dir.join("bad.trace");
    std::fs::write(
        &trace,
        "ResNet-18 (batch size 32)\tcmd\t--num_steps\t1\t100\t0.000000\t1\n\
         ResNet-18 (batch size 32)\tcmd\t--num_steps\t1\tabc\t10.000000\t1\n",
    )
    .unwrap();
    let out = suanli(&[
        "simulate",
        "--cluster",
        "gavel-36-36-36",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    let error = assert_one_line_error(&out);
    assert!(error.contains("bad.trace:2:"), "no line number: {error}");
    assert!(error.contains("`total_steps`"), "no field: {error}");
    assert!(error.contains("\"abc\""), "no value: {error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_trace_file_is_one_error() {
    let out = run("simulate --cluster gavel-36-36-36 --trace no/such/file.trace");
    let error = assert_one_line_error(&out);
    assert!(error.contains("no/such/file.trace"), "{error}");
}

#[test]
fn an_unknown_policy_lists_the_valid_ones() {
    for flag in ["--policy", "--compare"] {
        let error = assert_one_line_error(&simulate_small(&[flag, "lottery"]));
        assert!(error.contains("`lottery`"), "{error}");
        assert!(
            error.contains("fifo, backfill, sjf, fair, tiresias-las, gavel-max-min-fairness"),
            "{error}"
        );
    }
}

#[test]
fn an_unknown_cluster_preset_lists_the_presets() {
    let out = run(&format!(
        "simulate --cluster gavel-1-2 --trace {SMALL_GAVEL_TRACE}"
    ));
    let error = assert_one_line_error(&out);
    assert!(error.contains("\"gavel-1-2\""), "{error}");
    for preset in ["gavel-36-36-36", "alibaba-2023", "alibaba-spot-2026"] {
        assert!(error.contains(preset), "{preset} not listed: {error}");
    }
}

#[test]
fn an_unknown_trace_format_lists_the_formats() {
    let error = assert_one_line_error(&simulate_small(&["--trace-format", "slurm"]));
    for format in ["gavel", "tiresias", "alibaba-gpu-2023", "suanli"] {
        assert!(error.contains(format), "{format} not listed: {error}");
    }
}

#[test]
fn a_synthetic_workload_runs_with_failures() {
    let report = json(&run(
        "simulate --synthetic jobs=200,accelerators=64,load=0.9,seed=3 --policy backfill \
         --failures mtbf=500h,repair=1h --checkpoint young-daly --checkpoint-cost 1m --json",
    ));
    assert_eq!(report["accelerators"], 64);
    assert_eq!(report["runs"][0]["jobs_completed"], 200);
    assert!(report["runs"][0]["node_failures"].as_u64().unwrap() > 0);
}

#[test]
fn tenants_from_a_file_get_a_fairness_table_and_json_figures() {
    let tenants = [
        "--tenants",
        "crates/sim/data/tenants/gavel-families.toml",
        "--compare",
        "fifo,backfill,sjf,las,fair,gavel",
    ];
    let text = success(&simulate_small(&tenants));
    // Piped: plain ASCII, and six policies side by side still fit in 100 columns.
    assert!(text.is_ascii(), "{text}");
    let widest = text.lines().map(str::len).max().unwrap_or(0);
    assert!(widest <= 100, "{widest} columns:\n{text}");
    let share = text
        .split("share of allocated accelerator-hours by tenant")
        .nth(1)
        .expect("a share table");
    let row = share
        .lines()
        .find(|line| line.contains("resnet-50"))
        .expect("a resnet-50 row");
    assert!(row.contains("v100=12"), "{row}");

    let report = json(&simulate_small(&[&tenants[..], &["--json"]].concat()));
    assert_eq!(report["tenants"][0]["name"], "resnet-50");
    assert_eq!(report["tenants"][0]["weight"], 2.0);
    assert_eq!(report["tenants"][0]["guaranteed"]["v100"], 12);
    for run in report["runs"].as_array().unwrap() {
        let tenants = run["tenants"].as_array().expect("per-tenant figures");
        let jobs: u64 = tenants
            .iter()
            .map(|t| t["jobs_completed"].as_u64().unwrap())
            .sum();
        assert_eq!(jobs, 9);
        let share: f64 = tenants
            .iter()
            .map(|t| t["allocated_share"].as_f64().unwrap())
            .sum();
        assert!((share - 1.0).abs() < 1e-9, "shares add up to {share}");
    }
}

#[test]
fn a_bad_tenant_file_is_one_error_naming_the_line_and_the_field() {
    let dir = scratch_dir("bad-tenants");
    let cases = [
        (
            "[[tenant]]\nname = \"lm\"\nwieght = 3\n",
            ["tenants.toml:3:", "`wieght`"],
        ),
        (
            "[[tenant]]\nname = \"lm\"\nguaranteed = { v100 = 40 }\n",
            ["add up to 40", "at most 36"],
        ),
        (
            "[[tenant]]\nname = \"lm\"\nguaranteed = { h100 = 8 }\n",
            ["`h100`", "its types are k80, p100, v100"],
        ),
    ];
    for (text, expected) in cases {
        let file = dir.join("tenants.toml");
        std::fs::write(&file, text).unwrap();
        let out = simulate_small(&["--tenants", file.to_str().unwrap()]);
        assert!(!out.status.success());
        let error = stderr(&out);
        let last = error.trim_end().lines().last().unwrap_or_default();
        assert!(last.starts_with("error: "), "{error}");
        assert!(!error.contains("panicked"), "{error}");
        for part in expected {
            assert!(last.contains(part), "{part} missing: {last}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
