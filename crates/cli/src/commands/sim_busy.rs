//! Utilisation while jobs waited: the share of accelerators busy during the hours some job was
//! queued, which says how well a policy packs the cluster when there is demand. Utilisation over
//! the makespan also counts the hours a long last job runs alone (on Gavel's ee9e8c trace FIFO is
//! 20% over 11,084 h, while the cluster is ~95% busy for the 1,918 h that jobs wait).

use suanli_sim::metrics::{RunResult, busy_accelerator_seconds};

/// Merged `[arrival, first start)` intervals of the jobs that waited, sorted. A preempted job's
/// later waits are not in the records, so this is the first wait of each job.
pub fn waiting_intervals(run: &RunResult) -> Vec<(u64, u64)> {
    let mut waits: Vec<(u64, u64)> = run
        .jobs
        .iter()
        .filter(|j| j.first_start_s > j.arrival_s)
        .map(|j| (j.arrival_s, j.first_start_s))
        .collect();
    waits.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (start, end) in waits {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Busy share of the up accelerators while some job waited, and those hours; None when no job
/// waited.
pub fn utilisation_while_waiting(run: &RunResult) -> Option<(f64, f64)> {
    let intervals = waiting_intervals(run);
    let waited_s: u64 = intervals.iter().map(|(s, e)| e - s).sum();
    if waited_s == 0 || run.total_accelerators == 0 {
        return None;
    }
    let busy: f64 = intervals
        .iter()
        .map(|&(s, e)| busy_accelerator_seconds(&run.timeline, s, e))
        .sum();
    Some((
        busy / (run.total_accelerators as f64 * waited_s as f64),
        waited_s as f64 / 3600.0,
    ))
}

/// One line per policy for the text report.
pub fn describe(runs: &[RunResult]) -> Option<String> {
    let parts: Vec<String> = runs
        .iter()
        .filter_map(|run| {
            utilisation_while_waiting(run).map(|(share, hours)| {
                format!("{} {:.1}% over {hours:.0} h", run.policy, share * 100.0)
            })
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "utilisation while jobs waited (the table's is over the whole makespan): {}",
            parts.join(", ")
        )
    })
}
