//! What `simulate` says about utilisation (issue 14): the figure over the arrival window agrees
//! with the plot and with the jobs' own start and finish times, `load=` is the offered load, and
//! a workload without contention says so instead of printing the same numbers for every policy.

mod common;

use common::{run, suanli, success};

/// The gavel trace the utilisation figures below are of.
const GAVEL_TRACE: &str = "crates/sim/data/gavel/seed0/ee9e8c.trace";

/// The cells of the table row whose first cell is `name` (any border style).
fn row(text: &str, name: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|l| l.trim_start_matches(['|', '│', ' ']).starts_with(name))
        .unwrap_or_else(|| panic!("no row {name:?} in\n{text}"));
    line.split(['|', '│', '┆'])
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .skip(1)
        .collect()
}

fn percent(cell: &str) -> f64 {
    cell.trim_end_matches('%').parse().unwrap()
}

#[test]
fn ee9e8c_fifo_utilisation_agrees_with_its_plot_and_its_jobs() {
    let dir = std::env::temp_dir().join(format!("suanli-util-{}", std::process::id()));
    let dir_text = dir.display().to_string();
    let text = success(&suanli(&[
        "simulate",
        "--cluster",
        "gavel-36-36-36",
        "--trace",
        GAVEL_TRACE,
        "--policy",
        "fifo",
        "--out",
        &dir_text,
    ]));
    let table = percent(&row(&text, "util. over arrivals")[0]);
    assert_eq!(row(&text, "util. over makespan")[0], "20.0%");

    // The plot's legend states the same figure, and the title names what was run.
    let svg = std::fs::read_to_string(dir.join("utilisation.svg")).unwrap();
    assert!(svg.contains(&format!("fifo {table:.1}%")), "{table}");
    assert!(svg.contains("ee9e8c.trace on gavel-36-36-36"));

    // Independently, from the jobs' CSV: FIFO without failures never preempts, so each job holds
    // its gang from first start to finish.
    let csv = std::fs::read_to_string(dir.join("jobs-fifo.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (gang, arrival, start, finish) = (
        column("gang_size"),
        column("arrival_s"),
        column("first_start_s"),
        column("finish_s"),
    );
    let jobs: Vec<[f64; 4]> = lines
        .map(|line| {
            let fields: Vec<f64> = line.split(',').map(|f| f.parse().unwrap_or(0.0)).collect();
            [fields[gang], fields[arrival], fields[start], fields[finish]]
        })
        .collect();
    let first = jobs.iter().map(|j| j[1]).fold(f64::MAX, f64::min);
    let last = jobs.iter().map(|j| j[1]).fold(0.0, f64::max);
    let busy: f64 = jobs
        .iter()
        .map(|j| j[0] * (j[3].min(last) - j[2].max(first)).max(0.0))
        .sum();
    let from_jobs = 100.0 * busy / (108.0 * (last - first));
    assert!((from_jobs - table).abs() < 0.1, "{from_jobs} vs {table}");
    // The plot: the cluster is ~90% busy once the queue builds, for the ~1,250 h of arrivals.
    assert!((70.0..=95.0).contains(&table), "{table}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn load_is_the_offered_load_and_short_arrivals_are_named() {
    let text = success(&run(
        "simulate --synthetic jobs=20000,accelerators=16384,load=0.9",
    ));
    assert_eq!(row(&text, "offered load")[0], "0.900");
    // Philly's run times (up to 1,178 h) dwarf the ~11 h of arrivals: the run says so.
    assert!(text.contains("no steady state"), "{text}");

    let text = success(&run(
        "simulate --synthetic jobs=20000,accelerators=256,load=0.9,profile=gavel",
    ));
    let busy = percent(&row(&text, "util. over arrivals")[0]);
    assert!((84.0..=93.0).contains(&busy), "{text}");
    assert!(!text.contains("no steady state"), "{text}");

    let text = success(&run(
        "simulate --synthetic jobs=3000,accelerators=256,load=5,profile=gavel",
    ));
    let queued_h: f64 = row(&text, "queueing median")[0]
        .trim_end_matches(" h")
        .parse()
        .unwrap();
    assert!(queued_h > 1.0, "{text}");
}

#[test]
fn a_trace_without_contention_says_every_policy_is_the_same() {
    let text = success(&run("simulate --cluster alibaba-2023 \
         --trace crates/sim/data/alibaba-gpu-2023/openb_pod_list_default.csv --compare fifo,sjf"));
    let line = text
        .lines()
        .find(|l| l.starts_with("no contention"))
        .unwrap_or_else(|| panic!("no contention line in\n{text}"));
    assert!(
        line.contains("every policy gives the same result on alibaba-2023"),
        "{line}"
    );
    // A trace with contention does not get the line.
    let text = success(&run(&format!(
        "simulate --cluster gavel-36-36-36 --trace {GAVEL_TRACE}"
    )));
    assert!(!text.contains("no contention"), "{text}");
}
