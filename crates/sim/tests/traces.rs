//! The trace readers on the shipped copies of the public traces (crates/sim/data), and on bad
//! lines, whose errors must name the line and the field.

use std::path::PathBuf;
use suanli_sim::trace::{
    self, ANY_ACCELERATOR, TraceError, TraceFormat, alibaba, fit_to_cluster, gavel, read_trace,
};

fn data(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(relative)
}

/// (trace, lines = jobs, jobs with a derived throughput).
const GAVEL_SEED0: [(&str, usize, usize); 15] = [
    ("0e4a51", 1181, 197),
    ("103959", 986, 125),
    ("11cb48", 2000, 181),
    ("23dbec", 9, 1),
    ("2869ce", 533, 179),
    ("51b7ef", 18, 1),
    ("6214e9", 2000, 15),
    ("6c71a0", 2000, 63),
    ("795a4c", 3, 0),
    ("7f04ca", 972, 183),
    ("925e2b", 4, 1),
    ("b436b2", 2000, 126),
    ("e13805", 607, 103),
    ("ed69ec", 951, 0),
    ("ee9e8c", 2000, 373),
];

#[test]
fn every_gavel_seed0_trace_parses_with_the_expected_counts() {
    for (name, lines, derived) in GAVEL_SEED0 {
        let path = data(&format!("gavel/seed0/{name}.trace"));
        let trace = read_trace(&path, None).unwrap();
        assert_eq!(trace.format, TraceFormat::Gavel);
        assert_eq!(trace.report.data_rows, lines, "{name}");
        assert_eq!(trace.jobs.len(), lines, "{name}: every job is runnable");
        assert_eq!(
            trace.report.derived_throughput_job_ids.len(),
            derived,
            "{name}"
        );
        for job in &trace.jobs {
            assert!(job.spec.work.total_units > 0.0);
            assert!(!job.spec.work.units_per_s.is_empty());
            assert!(job.spec.work.units_per_s.values().all(|rate| *rate > 0.0));
        }
    }
}

#[test]
fn gavel_jobs_carry_measured_rates_and_a_family_tenant() {
    let trace = read_trace(&data("gavel/seed0/ee9e8c.trace"), None).unwrap();
    // Line 1: Transformer (batch size 128), 15,486,530 steps, arrival 0, 1 GPU.
    let first = &trace.jobs[0];
    assert_eq!(first.id(), "0");
    assert_eq!((first.arrival_s, first.spec.gang_size), (0, 1));
    assert_eq!(first.spec.tenant, "transformer");
    assert_eq!(first.spec.work.total_units, 15_486_530.0);
    let v100 = first.spec.work.units_per_s["v100"];
    assert!(
        (v100 - 5.446).abs() < 1e-3,
        "measured V100 rate, got {v100}"
    );
    let estimate = first.spec.runtime_estimate_s.unwrap();
    assert_eq!(estimate, (15_486_530.0 / v100).ceil() as u64);
    // Line 2: Recommendation (batch size 8192) on 8 GPUs is measured at scale 1 only.
    let second = &trace.jobs[1];
    assert_eq!((second.arrival_s, second.spec.gang_size), (336_541, 8));
    assert!(
        trace
            .report
            .derived_throughput_job_ids
            .contains(&second.spec.name)
    );
    let k80_one = 2.699;
    assert!((second.spec.work.units_per_s["k80"] - 8.0 * k80_one).abs() < 0.01);
}

#[test]
fn gavel_jobs_that_do_not_fit_a_k80_omit_it() {
    // ResNet-50 (batch size 128) is measured at 0 steps/s on 2, 4 and 8 K80s.
    let line = "ResNet-50 (batch size 128)\tcd %s && python3 main.py\t--num_steps\t1\t1000\t5.0\t4";
    let parsed = trace::parse_trace(line, "inline.trace", TraceFormat::Gavel).unwrap();
    let rates = &parsed.jobs[0].spec.work.units_per_s;
    assert!(!rates.contains_key("k80"));
    assert!(rates.contains_key("v100") && rates.contains_key("p100"));
}

#[test]
fn bad_gavel_lines_name_the_line_and_the_field() {
    let fields = [
        "A3C",
        "cd %s && python3 main.py",
        "--max-steps",
        "0",
        "100",
        "0.0",
        "1",
    ];
    let good = fields.join("\t");
    let with = |position: usize, value: &str| {
        let mut changed = fields;
        changed[position] = value;
        (changed.join("\t"), gavel::FIELD_NAMES[position])
    };
    let cases = [
        with(0, "GPT-5"),
        with(3, "2"),
        with(4, "many"),
        with(5, "-3"),
        with(6, "0"),
    ];
    for (bad_line, field) in cases {
        let text = format!("{good}\n{bad_line}\n");
        let error = trace::parse_trace(&text, "bad.trace", TraceFormat::Gavel).unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("bad.trace:2: field `"), "{message}");
        assert!(message.contains(field), "{message} should name {field}");
        assert!(message.contains("expected"), "{message}");
    }
    let short = trace::parse_trace("A3C\tcmd\t1", "short.trace", TraceFormat::Gavel).unwrap_err();
    assert!(matches!(
        short,
        TraceError::FieldCount {
            line: 1,
            found: 3,
            ..
        }
    ));
}

#[test]
fn tiresias_60_job_and_yarn_durations_parse() {
    let sample = read_trace(&data("tiresias/60_job.csv"), None).unwrap();
    assert_eq!(sample.format, TraceFormat::Tiresias);
    assert_eq!(sample.jobs.len(), 60);
    let first = &sample.jobs[0];
    assert_eq!(
        (first.id(), first.spec.gang_size, first.arrival_s),
        ("0", 1, 0)
    );
    assert_eq!(first.spec.work.total_units, 164.0);
    assert_eq!(first.spec.work.units_per_s[ANY_ACCELERATOR], 1.0);
    let total_s: f64 = sample.jobs.iter().map(|j| j.spec.work.total_units).sum();
    assert_eq!(total_s, 10_705.0);

    let yarn = read_trace(&data("tiresias/yarn-gput1000.csv"), None).unwrap();
    assert_eq!(yarn.jobs.len(), 1001);
    assert!(
        yarn.jobs
            .iter()
            .all(|j| j.spec.gang_size == 1 && j.arrival_s == 0)
    );
    assert_eq!(yarn.jobs[0].spec.work.total_units, 121.0);
}

#[test]
fn alibaba_default_parses_with_documented_skips() {
    let trace = read_trace(&data("alibaba-gpu-2023/openb_pod_list_default.csv"), None).unwrap();
    assert_eq!(trace.format, TraceFormat::AlibabaGpu2023);
    let report = &trace.report;
    assert_eq!(report.data_rows, 8152);
    assert_eq!(report.skipped_by(alibaba::SKIP_CPU_ONLY), 1088);
    assert_eq!(report.skipped_by(alibaba::SKIP_NEVER_SCHEDULED), 861);
    assert_eq!(report.skipped_rows(), 1088 + 861);
    assert_eq!(report.adjusted_by(alibaba::ADJUST_FRACTIONAL_GPU), 2573);
    assert_eq!(trace.jobs.len(), 6203);
    let first = &trace.jobs[0];
    assert_eq!(first.id(), "openb-pod-0000");
    assert_eq!(first.spec.work.total_units, 12_537_496.0);
    assert_eq!(first.spec.priority, 1, "LS pods have priority 1");
    assert!(
        trace
            .jobs
            .iter()
            .all(|j| j.spec.work.units_per_s.contains_key("*"))
    );
}

#[test]
fn alibaba_gpu_spec_constrains_types() {
    let trace = read_trace(&data("alibaba-gpu-2023/openb_pod_list_gpuspec33.csv"), None).unwrap();
    assert_eq!(trace.jobs.len(), 6203);
    let constrained: Vec<_> = trace
        .jobs
        .iter()
        .filter(|j| !j.spec.work.units_per_s.contains_key(ANY_ACCELERATOR))
        .collect();
    assert_eq!(constrained.len(), 2092);
    let cluster = suanli_sim::presets::preset("alibaba-2023").unwrap();
    let (jobs, fit) = fit_to_cluster(trace.jobs, &cluster);
    assert_eq!(jobs.len(), 6203, "{fit}");
    assert_eq!(
        fit.types_removed, 0,
        "every gpu_spec model is in the node list"
    );
}

#[test]
fn bad_csv_rows_name_the_line_and_the_field() {
    let header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,\
                  creation_time,deletion_time,scheduled_time";
    let good = "p0,1000,1024,1,500,,LS,Running,0,100,10";
    let text = format!("{header}\n{good}\n{}\n", good.replace(",500,", ",1500,"));
    let error = trace::parse_trace(&text, "pods.csv", TraceFormat::AlibabaGpu2023).unwrap_err();
    assert_eq!(
        error.to_string(),
        "pods.csv:3: field `gpu_milli` is \"1500\", expected thousandths of a GPU, 0 to 1000"
    );
    let text = format!("{header}\n{}\n", good.replace(",LS,", ",VIP,"));
    let error = trace::parse_trace(&text, "pods.csv", TraceFormat::AlibabaGpu2023).unwrap_err();
    assert!(
        error.to_string().starts_with("pods.csv:2: field `qos`"),
        "{error}"
    );

    let tiresias = "job_id,num_gpu,submit_time,iterations,model_name,duration,interval\n\
                    0,1,0,606,vgg19,164,30\n1,two,30,133,vgg11,147,23\n";
    let error = trace::parse_trace(tiresias, "t.csv", TraceFormat::Tiresias).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("t.csv:3: field `num_gpu` is \"two\""),
        "{error}"
    );

    let missing = "job_id,num_gpu\n0,1\n";
    let error = trace::parse_trace(missing, "m.csv", TraceFormat::Tiresias).unwrap_err();
    assert!(
        error.to_string().contains("lacks column \"duration\""),
        "{error}"
    );
}

#[test]
fn format_names_and_detection() {
    assert_eq!(
        "alibaba-gpu-2023".parse::<TraceFormat>().unwrap(),
        TraceFormat::AlibabaGpu2023
    );
    let error = "philly".parse::<TraceFormat>().unwrap_err().to_string();
    assert!(
        error.contains("gavel, tiresias, alibaba-gpu-2023, suanli"),
        "{error}"
    );
    let error = trace::detect_format("x.csv", "a,b,c\n1,2,3\n").unwrap_err();
    assert!(
        error.to_string().contains("cannot tell the trace format"),
        "{error}"
    );
    assert_eq!(gavel::FIELDS, 7);
}
