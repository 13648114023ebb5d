//! The lines under the simulation table that say how to read its utilisation: the share busy
//! while some job was queued (how well a policy packs the cluster when there is demand), and a
//! warning when no job ever waited (every policy then gives the same result) or when the arrivals
//! are too short against the run times for the cluster to reach the offered load.

use suanli_sim::metrics::{RunResult, Summary, busy_accelerator_seconds};

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
                let digits = usize::from(hours < 10.0);
                format!(
                    "{} {:.1}% over {hours:.digits$} h",
                    run.policy,
                    share * 100.0
                )
            })
        })
        .collect();
    (!parts.is_empty()).then(|| wrap("utilisation while jobs waited:", &parts))
}

/// `head` and the comma-separated `parts`, broken between parts to stay within 100 columns.
fn wrap(head: &str, parts: &[String]) -> String {
    let mut text = head.to_string();
    let mut line_len = text.len();
    for (index, part) in parts.iter().enumerate() {
        let piece = if index + 1 < parts.len() {
            format!("{part},")
        } else {
            part.clone()
        };
        if line_len + 1 + piece.len() > 100 {
            text.push_str("\n ");
            line_len = 1;
        }
        text.push(' ');
        text.push_str(&piece);
        line_len += 1 + piece.len();
    }
    text
}

/// One line when no job ever waited and none was preempted under any policy: the policies had
/// nothing to decide, so their figures are the same.
pub fn no_contention(summaries: &[Summary], cluster: &str) -> Option<String> {
    let idle = summaries
        .iter()
        .all(|s| s.queueing_delay_s.max == 0.0 && s.preemptions == 0);
    let first = summaries.first()?;
    idle.then(|| {
        format!(
            "no contention: no job waited (offered load {} over {:.0} h of arrivals), so every \
             policy gives the same result on {cluster}; compare policies on a smaller --cluster or \
             a --synthetic workload with load=0.9 or more",
            load(first.offered_load),
            first.arrival_window_s as f64 / 3600.0,
        )
    })
}

/// One line when the cluster stayed well below the offered load while jobs arrived and nothing
/// queued: the run times are long against the arrival window, so there is no steady state.
pub fn short_arrivals(summaries: &[Summary]) -> Option<String> {
    let s = summaries.first()?;
    let expected = s.offered_load.min(1.0);
    let below = s.utilisation_arrivals < 0.75 * expected;
    let waited = summaries.iter().any(|s| s.queueing_delay_s.p95 > 0.0);
    (below && !waited && s.offered_load >= 0.05).then(|| {
        format!(
            "no steady state: the {:.1} h of arrivals are short against the run times (JCT p99 \
             {:.1} h, longest {:.0} h), so the cluster is {:.1}% busy while jobs arrive against an \
             offered load of {}; give more jobs or fewer accelerators",
            s.arrival_window_s as f64 / 3600.0,
            s.jct_s.p99 / 3600.0,
            s.jct_s.max / 3600.0,
            s.utilisation_arrivals * 100.0,
            load(s.offered_load),
        )
    })
}

/// An offered load as the table shows it.
fn load(value: f64) -> String {
    format!("{value:.3}")
}
