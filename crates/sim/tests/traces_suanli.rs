//! The suanli CSV format: every shipped trace and a synthetic workload survive a write and a
//! read unchanged; the writer refuses what it could not read back; hand-written files in the
//! duration form parse; bad rows are named.

use std::path::PathBuf;
use suanli_sim::trace::{TraceFormat, parse_trace, read_trace, suanli_csv};
use suanli_sim::workload::TraceJob;

fn data(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(relative)
}

fn round_trip(jobs: &[TraceJob]) -> Vec<TraceJob> {
    let text = suanli_csv::to_csv_string(jobs).unwrap();
    assert_eq!(
        suanli_sim::trace::detect_format("w.csv", &text).unwrap(),
        TraceFormat::Suanli
    );
    parse_trace(&text, "written.csv", TraceFormat::Suanli)
        .unwrap()
        .jobs
}

#[test]
fn shipped_traces_round_trip_exactly() {
    for relative in [
        "gavel/seed0/ee9e8c.trace",
        "tiresias/60_job.csv",
        "alibaba-gpu-2023/openb_pod_list_gpuspec33.csv",
    ] {
        let jobs = read_trace(&data(relative), None).unwrap().jobs;
        assert_eq!(round_trip(&jobs), jobs, "{relative}");
    }
}

#[test]
fn synthetic_workloads_round_trip_exactly() {
    let workload = suanli_sim::synthetic::from_spec(
        "jobs=500,accelerators=64,per_node=8,types=h100-sxm5-80gb|mi300x,tenants=3,\
         checkpoint_interval_s=1800,seed=3",
    )
    .unwrap();
    assert_eq!(round_trip(&workload.jobs), workload.jobs);
}

#[test]
fn the_writer_refuses_what_it_could_not_read_back() {
    let jobs = read_trace(&data("tiresias/60_job.csv"), None).unwrap().jobs;
    let mut with_cost = jobs[..2].to_vec();
    with_cost[1].spec.checkpoint_cost_s = 120;
    let message = suanli_csv::to_csv_string(&with_cost)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("job 1: a checkpoint cost (120 s)"),
        "{message}"
    );
    let mut bad_type = jobs[..1].to_vec();
    bad_type[0].spec.work.units_per_s = [("v100|p100".to_string(), 1.0)].into();
    let message = suanli_csv::to_csv_string(&bad_type)
        .unwrap_err()
        .to_string();
    assert!(message.contains("cannot be written"), "{message}");
}

#[test]
fn the_duration_form_reads_hand_written_files() {
    let text = "# two jobs written by hand\n\
                id,arrival_s,gang_size,tenant,duration_s,allowed_types,checkpoint_interval_s\n\
                a,0,8,team-a,3600,h100-sxm5-80gb|a100-sxm4-80gb,600\n\
                b,60,1,,120,,\n";
    let jobs = parse_trace(text, "hand.csv", TraceFormat::Suanli)
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), 2);
    let (a, b) = (&jobs[0].spec, &jobs[1].spec);
    assert_eq!(a.work.units_per_s.len(), 2);
    assert_eq!(a.checkpoint_interval_s, Some(600));
    assert_eq!(b.tenant, "default");
    assert_eq!(b.work.units_per_s["*"], 1.0);
    assert_eq!((b.priority, b.runtime_estimate_s), (0, None));
    assert_eq!((a.checkpoint_cost_s, b.checkpoint_cost_s), (0, 0));
}

#[test]
fn bad_suanli_rows_name_the_line_and_the_field() {
    let header = suanli_csv::HEADER.join(",");
    let cases = [
        ("a,0,8,t,0,100,v100=2|p100,,", "units_per_s"),
        ("a,0,8,t,0,100,v100=-2,,", "units_per_s"),
        ("a,0,0,t,0,100,v100=2,,", "gang_size"),
        ("a,soon,8,t,0,100,v100=2,,", "arrival_s"),
        ("a,0,8,t,0,100,v100=2,,0", "checkpoint_interval_s"),
        ("a,0,8,t,high,100,v100=2,,", "priority"),
    ];
    for (row, field) in cases {
        let text = format!("{header}\nok,0,1,t,0,1,*=1,,\n{row}\n");
        let error = parse_trace(&text, "w.csv", TraceFormat::Suanli).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("w.csv:3: field `{field}`")),
            "{message} should name line 3 and {field}"
        );
    }
    let duplicate = format!("{header}\nok,0,1,t,0,1,*=1,,\nok,0,1,t,0,1,*=1,,\n");
    let message = parse_trace(&duplicate, "w.csv", TraceFormat::Suanli)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("an id not used by an earlier row"),
        "{message}"
    );
    let unknown = "id,arrival_s,gang_size,duration_s,gpus\na,0,1,5,1\n";
    let message = parse_trace(unknown, "w.csv", TraceFormat::Suanli)
        .unwrap_err()
        .to_string();
    assert!(message.contains("unknown column \"gpus\""), "{message}");
    let both = "id,arrival_s,gang_size,duration_s,total_units,units_per_s\na,0,1,5,5,*=1\n";
    let message = parse_trace(both, "w.csv", TraceFormat::Suanli)
        .unwrap_err()
        .to_string();
    assert!(message.contains("either as total_units"), "{message}");
}
