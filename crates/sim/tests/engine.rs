//! The engine end to end on small hand-made workloads: determinism, failures with checkpoints,
//! every policy completing, and the report formats.

use suanli_sim::workload::{ClusterSpec, JobSpec, PoolSpec, TraceJob, Work};
use suanli_sim::{CheckpointPolicy, FailureModel, SimConfig, Summary, simulate};

fn cluster() -> ClusterSpec {
    let pool = |name: &str, accelerator: &str| PoolSpec {
        name: name.into(),
        accelerator: accelerator.into(),
        nodes: 4,
        accelerators_per_node: 4,
        nodes_per_leaf: 2,
        leaves_per_pod: 2,
    };
    ClusterSpec {
        name: "two-types".into(),
        pools: vec![pool("fast", "v100"), pool("slow", "k80")],
    }
}

/// 60 jobs arriving every 5 minutes, gangs of 1 to 8, some 5x faster on v100, some 1.2x.
fn workload() -> Vec<TraceJob> {
    (0..60u64)
        .map(|i| {
            let speedup = if i % 3 == 0 { 5.0 } else { 1.2 };
            TraceJob {
                arrival_s: i * 300,
                spec: JobSpec {
                    name: format!("job{i}"),
                    gang_size: [1, 2, 4, 8][(i % 4) as usize],
                    tenant: format!("tenant{}", i % 3),
                    priority: 0,
                    work: Work {
                        total_units: 1_800.0 + (i % 7) as f64 * 3_600.0,
                        units_per_s: [("k80".into(), 1.0), ("v100".into(), speedup)].into(),
                    },
                    runtime_estimate_s: Some(4 * 3_600 + (i % 7) * 3_600),
                    checkpoint_interval_s: Some(1_800),
                    checkpoint_cost_s: 0,
                },
            }
        })
        .collect()
}

fn config(policy: &str) -> SimConfig {
    SimConfig {
        policy: policy.into(),
        ..SimConfig::default()
    }
}

#[test]
fn every_policy_completes_every_job() {
    let jobs = workload();
    for policy in suanli_sched::policy::NAMES {
        let run = simulate(&cluster(), &jobs, &config(policy), None).unwrap();
        assert_eq!(run.jobs.len(), 60, "{policy}");
        let summary = Summary::of(&run);
        assert!(
            summary.utilisation > 0.0 && summary.utilisation <= 1.0,
            "{policy}: {summary:?}"
        );
        // Without failures no compute is lost (preemption checkpoints first); only restart delays
        // after preemptions hold accelerators without progress.
        assert_eq!(summary.lost_acc_h, 0.0, "{policy}");
        if summary.preemptions == 0 {
            assert!(
                (summary.goodput - 1.0).abs() < 1e-9,
                "{policy}: {}",
                summary.goodput
            );
        } else {
            assert!(summary.goodput < 1.0, "{policy}: {}", summary.goodput);
        }
        for job in &run.jobs {
            assert!(
                job.jct_s as f64 >= job.ideal_runtime_s.floor(),
                "{policy}: {job:?}"
            );
        }
    }
}

#[test]
fn heterogeneity_aware_gavel_beats_fifo_on_mean_jct() {
    let jobs = workload();
    let mean = |policy: &str| {
        Summary::of(&simulate(&cluster(), &jobs, &config(policy), None).unwrap())
            .jct_s
            .mean
    };
    let (gavel, fifo) = (mean("gavel"), mean("fifo"));
    assert!(gavel < fifo, "gavel {gavel} vs fifo {fifo}");
}

#[test]
fn a_seed_fixes_the_run_and_failures_cost_work() {
    let jobs = workload();
    let failing = SimConfig {
        failures: FailureModel::parse("mtbf=200h,repair=1h").unwrap(),
        seed: 7,
        ..config("backfill")
    };
    let first = simulate(&cluster(), &jobs, &failing, None).unwrap();
    let second = simulate(&cluster(), &jobs, &failing, None).unwrap();
    assert_eq!(first.jobs, second.jobs);
    assert_eq!(first.timeline, second.timeline);
    let summary = Summary::of(&first);
    assert!(
        summary.node_failures > 0 && summary.restarts_after_failure > 0,
        "{summary:?}"
    );
    // Checkpoints every 30 min bound each failure's loss to 30 min of compute per accelerator.
    for job in &first.jobs {
        assert!(
            job.lost_acc_s <= u64::from(job.failures) * 1_800 * u64::from(job.gang_size),
            "{job:?}"
        );
    }
    assert!(
        summary.goodput < 1.0 && summary.lost_acc_h > 0.0,
        "{summary:?}"
    );
    let other_seed = simulate(&cluster(), &jobs, &SimConfig { seed: 8, ..failing }, None).unwrap();
    assert_ne!(first.jobs, other_seed.jobs);
}

#[test]
fn young_daly_sets_checkpoints_only_when_failures_are_on() {
    let job = &workload()[3]; // gang of 8
    let failures = FailureModel::llama3();
    let spec = suanli_sim::convert::unnamed_job_spec(
        job,
        &cluster(),
        &CheckpointPolicy::YoungDaly,
        120,
        &failures,
    );
    // Per-GPU MTBF 16,384 × 54 × 24 / 419 = 50,677 h (Llama 3):
    // sqrt(2 * 120 s * 50,677 h * 3600 / 8) = 73,980.5 s.
    assert_eq!(spec.checkpoint_interval_s, Some(73_981));
    let off = suanli_sim::convert::unnamed_job_spec(
        job,
        &cluster(),
        &CheckpointPolicy::YoungDaly,
        120,
        &FailureModel::none(),
    );
    assert_eq!(off.checkpoint_interval_s, None);
}

#[test]
fn reports_render_as_table_csv_and_svg() {
    let run = simulate(&cluster(), &workload(), &config("las"), None).unwrap();
    let summary = Summary::of(&run);
    let table = suanli_sim::report::summary_table(std::slice::from_ref(&summary)).to_string();
    assert!(
        table.contains("JCT p99") && table.contains("las"),
        "{table}"
    );
    let csv = suanli_sim::report::jobs_csv(&run).unwrap();
    assert!(
        csv.starts_with("id,tenant,gang_size,accelerator,arrival_s,first_start_s,finish_s"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 61);
    let cdf = suanli_sim::plot::jct_cdf_svg(std::slice::from_ref(&run), "test").unwrap();
    assert!(
        cdf.starts_with("<svg") && cdf.contains("las"),
        "{}",
        &cdf[..200.min(cdf.len())]
    );
    let utilisation = suanli_sim::plot::utilisation_svg(&[run], "test").unwrap();
    assert!(utilisation.contains("<polyline") || utilisation.contains("<path"));
}

/// `load=` is what the cluster sees: with run times short against the arrival window (Gavel's
/// profile, 20,000 jobs on 256 accelerators span ~2,800 h) the busy share while jobs arrive is
/// the offered 0.9 less the warm-up and the jobs left running at the last arrival; an overload
/// fills the cluster and makes jobs queue.
#[test]
fn synthetic_load_is_the_utilisation_while_jobs_arrive() {
    let steady = suanli_sim::synthetic::from_spec(
        "jobs=20000,accelerators=256,load=0.9,profile=gavel,seed=3",
    )
    .unwrap();
    let run = simulate(&steady.cluster, &steady.jobs, &config("fifo"), None).unwrap();
    let summary = Summary::of(&run);
    assert!((summary.offered_load - 0.9).abs() < 0.01, "{summary:?}");
    assert!(
        (0.84..=0.92).contains(&summary.utilisation_arrivals),
        "utilisation over the arrivals {}",
        summary.utilisation_arrivals
    );

    let overload =
        suanli_sim::synthetic::from_spec("jobs=3000,accelerators=256,load=5,profile=gavel")
            .unwrap();
    let run = simulate(&overload.cluster, &overload.jobs, &config("fifo"), None).unwrap();
    let summary = Summary::of(&run);
    assert!(summary.utilisation_arrivals > 0.95, "{summary:?}");
    assert!(
        summary.queueing_delay_s.median > 3600.0,
        "{:?}",
        summary.queueing_delay_s
    );
}
