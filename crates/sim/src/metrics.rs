//! What a run measured: per-job records, the utilisation timeline, and the summary statistics
//! (mean, median, p95, p99 of completion time and queueing delay; makespan; utilisation; goodput;
//! fairness across tenants).

use serde::Serialize;
use suanli_sched::{Job, State, Status};

use crate::label::Label;
use crate::workload::TraceJob;

/// One finished job. Its texts are [`Label`]s: a million records would otherwise hold three
/// million small heap strings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRecord {
    pub id: Label,
    pub tenant: Label,
    pub gang_size: u32,
    /// Accelerator type of the run that completed.
    pub accelerator: Label,
    pub arrival_s: u64,
    pub first_start_s: u64,
    pub finish_s: u64,
    /// First start minus arrival.
    pub queueing_delay_s: u64,
    /// Finish minus arrival (job completion time).
    pub jct_s: u64,
    /// Compute seconds on the job's fastest type: its JCT on an empty cluster without failures.
    pub ideal_runtime_s: f64,
    pub preemptions: u32,
    pub failures: u32,
    /// Accelerator-seconds of compute thrown away.
    pub lost_acc_s: u64,
    /// Accelerator-seconds held.
    pub allocated_acc_s: u64,
    /// Accelerator-seconds of compute kept.
    pub useful_acc_s: u64,
}

impl JobRecord {
    /// The record of a job that has just finished.
    pub fn of(trace_job: &TraceJob, job: &Job, state: &State, accelerator: &str) -> Self {
        let finish_s = match job.status {
            Status::Finished { finished_s } => finished_s,
            _ => panic!("recording a job that has not finished"),
        };
        let first_start_s = job.first_start_s.expect("a finished job started");
        let best_pool = state
            .pools_for(job.id)
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1));
        JobRecord {
            id: Label::from(trace_job.id()),
            tenant: Label::from(trace_job.spec.tenant.as_str()),
            gang_size: job.spec.gang_size,
            accelerator: Label::from(accelerator),
            arrival_s: job.submitted_s,
            first_start_s,
            finish_s,
            queueing_delay_s: first_start_s - job.submitted_s,
            jct_s: finish_s - job.submitted_s,
            ideal_runtime_s: job.spec.work.total_units / best_pool.map_or(1.0, |p| p.1),
            preemptions: job.preemptions,
            failures: job.failures,
            lost_acc_s: job.lost_compute_s * u64::from(job.spec.gang_size),
            allocated_acc_s: job.attained_acc_s,
            useful_acc_s: job.useful_acc_s,
        }
    }
}

/// A change in how many accelerators are busy or up, from `at_s` on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct UtilisationStep {
    pub at_s: u64,
    pub busy: u64,
    pub up: u64,
}

/// Everything one run produced.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub policy: String,
    pub total_accelerators: u64,
    pub jobs: Vec<JobRecord>,
    /// (job id, why) for jobs the scheduler refused.
    pub rejected: Vec<(String, String)>,
    pub timeline: Vec<UtilisationStep>,
    /// Virtual time of the last event handled.
    pub end_s: u64,
    pub events: u64,
    pub node_failures: u64,
    pub jobs_killed: u64,
    /// Real seconds the run took (not deterministic).
    pub wall_s: f64,
}

/// Mean, median and tail of a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Distribution {
    pub mean: f64,
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Distribution {
    /// Nearest-rank percentiles of `values` (all zero when empty).
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Distribution::default();
        }
        // Unstable is enough: values equal under `total_cmp` are the same bits.
        values.sort_unstable_by(f64::total_cmp);
        let rank =
            |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Distribution {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            median: rank(0.5),
            p95: rank(0.95),
            p99: rank(0.99),
            max: values[values.len() - 1],
        }
    }
}

/// The headline numbers of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub policy: String,
    pub jobs_completed: usize,
    pub jobs_rejected: usize,
    pub jct_s: Distribution,
    pub queueing_delay_s: Distribution,
    /// Completion time over ideal run time.
    pub slowdown: Distribution,
    /// First arrival to last completion.
    pub makespan_s: u64,
    /// Busy accelerator-seconds over all accelerator-seconds of the makespan (it falls as a long
    /// last job runs alone or a backlog drains; see `utilisation_arrivals`).
    pub utilisation: f64,
    /// First to last arrival: the window over which the workload offers load.
    pub arrival_window_s: u64,
    /// Accelerator-seconds the completed jobs need on their fastest type, over all
    /// accelerator-seconds of the arrival window (what `--synthetic load=` sets).
    pub offered_load: f64,
    /// Busy accelerator-seconds over all accelerator-seconds of the arrival window: how full the
    /// cluster is while work arrives, comparable with `offered_load` (steady state when the
    /// window is long against the run times).
    pub utilisation_arrivals: f64,
    /// Useful accelerator-seconds over allocated accelerator-seconds.
    pub goodput: f64,
    /// Jain's index over tenants of 1 / mean slowdown (1 = all tenants served alike).
    pub tenant_fairness_jain: f64,
    pub preemptions: u64,
    pub restarts_after_failure: u64,
    pub node_failures: u64,
    pub lost_acc_h: f64,
    pub events: u64,
    pub wall_s: f64,
    pub events_per_s: f64,
    /// Per-tenant figures, in tenant-name order.
    pub tenants: Vec<TenantSummary>,
}

/// One tenant's share of a run: what its jobs waited and what it held.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantSummary {
    pub tenant: String,
    pub jobs_completed: usize,
    pub jct_mean_s: f64,
    pub queueing_delay_mean_s: f64,
    /// Mean of completion time over ideal run time.
    pub slowdown_mean: f64,
    /// Accelerator-hours held by the tenant's jobs.
    pub allocated_acc_h: f64,
    /// The tenant's part of all allocated accelerator-hours (0 to 1).
    pub allocated_share: f64,
    pub preemptions: u64,
}

impl TenantSummary {
    /// The tenants of `jobs`, sorted by name.
    pub fn of_jobs(jobs: &[JobRecord]) -> Vec<TenantSummary> {
        let mut by_tenant: std::collections::BTreeMap<&Label, Vec<&JobRecord>> = Default::default();
        for job in jobs {
            by_tenant.entry(&job.tenant).or_default().push(job);
        }
        let allocated_total: u64 = jobs.iter().map(|j| j.allocated_acc_s).sum();
        by_tenant
            .into_iter()
            .map(|(tenant, jobs)| {
                let count = jobs.len() as f64;
                let mean = |value: &dyn Fn(&JobRecord) -> f64| {
                    jobs.iter().map(|j| value(j)).sum::<f64>() / count
                };
                let allocated_acc_s: u64 = jobs.iter().map(|j| j.allocated_acc_s).sum();
                TenantSummary {
                    tenant: tenant.to_string(),
                    jobs_completed: jobs.len(),
                    jct_mean_s: mean(&|j| j.jct_s as f64),
                    queueing_delay_mean_s: mean(&|j| j.queueing_delay_s as f64),
                    slowdown_mean: mean(&|j| j.jct_s as f64 / j.ideal_runtime_s.max(1.0)),
                    allocated_acc_h: allocated_acc_s as f64 / 3600.0,
                    allocated_share: ratio(allocated_acc_s as f64, allocated_total as f64),
                    preemptions: jobs.iter().map(|j| u64::from(j.preemptions)).sum(),
                }
            })
            .collect()
    }
}

impl Summary {
    /// Summarises a run.
    pub fn of(run: &RunResult) -> Self {
        let jobs = &run.jobs;
        let first_arrival_s = jobs.iter().map(|j| j.arrival_s).min().unwrap_or(0);
        let last_finish_s = jobs.iter().map(|j| j.finish_s).max().unwrap_or(0);
        let makespan_s = last_finish_s.saturating_sub(first_arrival_s);
        let last_arrival_s = jobs.iter().map(|j| j.arrival_s).max().unwrap_or(0);
        let arrival_window_s = last_arrival_s.saturating_sub(first_arrival_s);
        let busy_acc_s = busy_accelerator_seconds(&run.timeline, first_arrival_s, last_finish_s);
        let busy_arrivals_acc_s =
            busy_accelerator_seconds(&run.timeline, first_arrival_s, last_arrival_s);
        let capacity_arrivals_acc_s = run.total_accelerators as f64 * arrival_window_s as f64;
        let needed_acc_s: f64 = jobs
            .iter()
            .map(|j| f64::from(j.gang_size) * j.ideal_runtime_s)
            .sum();
        let allocated: u64 = jobs.iter().map(|j| j.allocated_acc_s).sum();
        let useful: u64 = jobs.iter().map(|j| j.useful_acc_s).sum();
        let slowdown = |j: &JobRecord| j.jct_s as f64 / j.ideal_runtime_s.max(1.0);
        Summary {
            policy: run.policy.clone(),
            jobs_completed: jobs.len(),
            jobs_rejected: run.rejected.len(),
            jct_s: Distribution::of(jobs.iter().map(|j| j.jct_s as f64).collect()),
            queueing_delay_s: Distribution::of(
                jobs.iter().map(|j| j.queueing_delay_s as f64).collect(),
            ),
            slowdown: Distribution::of(jobs.iter().map(slowdown).collect()),
            makespan_s,
            utilisation: ratio(
                busy_acc_s,
                run.total_accelerators as f64 * makespan_s as f64,
            ),
            arrival_window_s,
            offered_load: ratio(needed_acc_s, capacity_arrivals_acc_s),
            utilisation_arrivals: ratio(busy_arrivals_acc_s, capacity_arrivals_acc_s),
            goodput: ratio(useful as f64, allocated as f64),
            tenant_fairness_jain: jain_over_tenants(jobs, slowdown),
            preemptions: jobs.iter().map(|j| u64::from(j.preemptions)).sum(),
            restarts_after_failure: jobs.iter().map(|j| u64::from(j.failures)).sum(),
            node_failures: run.node_failures,
            lost_acc_h: jobs.iter().map(|j| j.lost_acc_s as f64).sum::<f64>() / 3600.0,
            events: run.events,
            wall_s: run.wall_s,
            events_per_s: ratio(run.events as f64, run.wall_s),
            tenants: TenantSummary::of_jobs(jobs),
        }
    }
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

/// Integral of busy accelerators over `[from_s, to_s)`.
pub fn busy_accelerator_seconds(timeline: &[UtilisationStep], from_s: u64, to_s: u64) -> f64 {
    let mut total = 0.0;
    for (i, step) in timeline.iter().enumerate() {
        let end_s = timeline.get(i + 1).map_or(to_s, |next| next.at_s).min(to_s);
        let start_s = step.at_s.max(from_s);
        if end_s > start_s {
            total += step.busy as f64 * (end_s - start_s) as f64;
        }
    }
    total
}

/// Mean busy fraction of all accelerators in each of `bins` equal slices of `[0, end_s)`.
pub fn utilisation_series(
    timeline: &[UtilisationStep],
    total_accelerators: u64,
    end_s: u64,
    bins: usize,
) -> Vec<(f64, f64)> {
    let width_s = (end_s as f64 / bins.max(1) as f64).max(1.0);
    (0..bins)
        .map(|b| {
            let from_s = (b as f64 * width_s) as u64;
            let to_s = (((b + 1) as f64) * width_s) as u64;
            let busy = busy_accelerator_seconds(timeline, from_s, to_s);
            let span = (to_s - from_s).max(1) as f64 * total_accelerators as f64;
            (from_s as f64, busy / span)
        })
        .collect()
}

/// Jain's fairness index (Jain, Chiu and Hawe 1984) of `1 / mean(metric)` per tenant.
fn jain_over_tenants(jobs: &[JobRecord], metric: impl Fn(&JobRecord) -> f64) -> f64 {
    let mut per_tenant: std::collections::BTreeMap<&Label, (f64, u32)> = Default::default();
    for job in jobs {
        let entry = per_tenant.entry(&job.tenant).or_default();
        entry.0 += metric(job);
        entry.1 += 1;
    }
    let values: Vec<f64> = per_tenant
        .values()
        .map(|(sum, n)| f64::from(*n) / sum.max(f64::MIN_POSITIVE))
        .collect();
    let sum: f64 = values.iter().sum();
    let squares: f64 = values.iter().map(|v| v * v).sum();
    ratio(sum * sum, values.len() as f64 * squares)
}
