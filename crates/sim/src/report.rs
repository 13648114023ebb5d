//! Reports of one or more runs: a side-by-side table, JSON, a CSV of jobs, and SVG plots
//! (`plot.rs`).

use comfy_table::{Cell, CellAlignment, Table};
use serde::Serialize;
use std::collections::BTreeSet;
use suanli_sched::TenantConfig;

use crate::metrics::{RunResult, Summary, TenantSummary};

/// Renders one metric of a summary.
type MetricCell = Box<dyn Fn(&Summary) -> String>;

/// One column per policy, one row per metric. Tables come without a style: the binary sets one
/// (Unicode on a terminal, ASCII when piped).
pub fn summary_table(summaries: &[Summary]) -> Table {
    let mut table = Table::new();
    let mut header = vec![Cell::new("metric")];
    header.extend(summaries.iter().map(|s| Cell::new(&s.policy)));
    table.set_header(header);
    let hours = |s: f64| format!("{} h", short_hours(s / 3600.0));
    let rows: Vec<(&str, MetricCell)> = vec![
        ("jobs completed", Box::new(|s| s.jobs_completed.to_string())),
        ("jobs rejected", Box::new(|s| s.jobs_rejected.to_string())),
        ("JCT mean", Box::new(move |s| hours(s.jct_s.mean))),
        ("JCT median", Box::new(move |s| hours(s.jct_s.median))),
        ("JCT p95", Box::new(move |s| hours(s.jct_s.p95))),
        ("JCT p99", Box::new(move |s| hours(s.jct_s.p99))),
        (
            "queueing mean",
            Box::new(move |s| hours(s.queueing_delay_s.mean)),
        ),
        (
            "queueing median",
            Box::new(move |s| hours(s.queueing_delay_s.median)),
        ),
        (
            "queueing p95",
            Box::new(move |s| hours(s.queueing_delay_s.p95)),
        ),
        (
            "queueing p99",
            Box::new(move |s| hours(s.queueing_delay_s.p99)),
        ),
        (
            "slowdown mean",
            Box::new(|s| format!("{:.2}", s.slowdown.mean)),
        ),
        ("makespan", Box::new(move |s| hours(s.makespan_s as f64))),
        (
            "arrival window",
            Box::new(move |s| hours(s.arrival_window_s as f64)),
        ),
        (
            "offered load",
            Box::new(|s| format!("{:.3}", s.offered_load)),
        ),
        (
            "util. over arrivals",
            Box::new(|s| format!("{:.1}%", s.utilisation_arrivals * 100.0)),
        ),
        (
            "util. over makespan",
            Box::new(|s| format!("{:.1}%", s.utilisation * 100.0)),
        ),
        (
            "goodput",
            Box::new(|s| format!("{:.1}%", s.goodput * 100.0)),
        ),
        (
            "fairness (Jain)",
            Box::new(|s| format!("{:.3}", s.tenant_fairness_jain)),
        ),
        ("preemptions", Box::new(|s| s.preemptions.to_string())),
        ("node failures", Box::new(|s| s.node_failures.to_string())),
        (
            "restarts (failures)",
            Box::new(|s| s.restarts_after_failure.to_string()),
        ),
        (
            "lost work",
            Box::new(|s| format!("{:.1} acc-h", s.lost_acc_h)),
        ),
        ("events", Box::new(|s| s.events.to_string())),
        ("wall time", Box::new(|s| format!("{:.2} s", s.wall_s))),
        ("events/s", Box::new(|s| format!("{:.0}", s.events_per_s))),
    ];
    for (name, value) in rows {
        let mut row = vec![Cell::new(name)];
        row.extend(
            summaries
                .iter()
                .map(|s| Cell::new(value(s)).set_alignment(CellAlignment::Right)),
        );
        table.add_row(row);
    }
    table
}

/// Hours with five significant digits at most, so that six policies fit in 100 columns.
fn short_hours(hours: f64) -> String {
    if hours >= 1000.0 {
        format!("{hours:.0}")
    } else if hours >= 100.0 {
        format!("{hours:.1}")
    } else {
        format!("{hours:.2}")
    }
}

/// One per-tenant figure: its heading and how a tenant's summary shows it.
type TenantMetric = (&'static str, fn(&TenantSummary) -> String);

/// Per-tenant fairness as three narrow tables (mean JCT, mean slowdown, share of allocated
/// accelerator-hours), one row per tenant and one column per policy, so that six policies fit
/// in 100 columns. The share table also lists each tenant's weight and guarantee from `configs`
/// (weight 1 and no guarantee for tenants it does not name).
pub fn tenant_tables(
    summaries: &[Summary],
    configs: &[TenantConfig],
) -> Vec<(&'static str, Table)> {
    let metrics: [TenantMetric; 3] = [
        ("mean JCT by tenant (hours)", |t| {
            short_hours(t.jct_mean_s / 3600.0)
        }),
        ("mean slowdown by tenant", |t| {
            format!("{:.2}", t.slowdown_mean)
        }),
        ("share of allocated accelerator-hours by tenant", |t| {
            format!("{:.1}%", t.allocated_share * 100.0)
        }),
    ];
    let names: BTreeSet<&str> = summaries
        .iter()
        .flat_map(|s| s.tenants.iter().map(|t| t.tenant.as_str()))
        .collect();
    let with_terms = metrics.len() - 1;
    metrics
        .iter()
        .enumerate()
        .map(|(index, (heading, show))| {
            let terms = index == with_terms;
            let mut table = Table::new();
            let mut header = vec![Cell::new("tenant")];
            if terms {
                header.extend([Cell::new("weight"), Cell::new("guaranteed")]);
            }
            header.extend(summaries.iter().map(|s| Cell::new(&s.policy)));
            table.set_header(header);
            for name in &names {
                let mut row = vec![Cell::new(name)];
                if terms {
                    row.extend(tenant_terms(name, configs));
                }
                for summary in summaries {
                    let cell = summary
                        .tenants
                        .iter()
                        .find(|t| t.tenant == *name)
                        .map_or("-".to_string(), show);
                    row.push(Cell::new(cell).set_alignment(CellAlignment::Right));
                }
                table.add_row(row);
            }
            (*heading, table)
        })
        .collect()
}

/// The weight and guarantee cells of tenant `name`.
fn tenant_terms(name: &str, configs: &[TenantConfig]) -> [Cell; 2] {
    let config = configs.iter().find(|c| c.name == name);
    let guaranteed = config.map_or(String::new(), |c| {
        c.guaranteed
            .iter()
            .map(|(accelerator, count)| format!("{accelerator}={count}"))
            .collect::<Vec<_>>()
            .join(" ")
    });
    [
        Cell::new(format!("{}", config.map_or(1.0, |c| c.weight)))
            .set_alignment(CellAlignment::Right),
        Cell::new(guaranteed),
    ]
}

/// The JSON document `--json` prints.
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub cluster: &'a str,
    pub accelerators: u64,
    pub seed: u64,
    /// Tenants as configured by `--tenants` (empty without it).
    pub tenants: &'a [TenantConfig],
    pub runs: &'a [Summary],
}

/// The jobs of one run as CSV, one row per job with a header.
pub fn jobs_csv(run: &RunResult) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for job in &run.jobs {
        writer.serialize(job)?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("csv writes UTF-8"))
}
