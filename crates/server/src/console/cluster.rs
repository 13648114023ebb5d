//! The cluster page: pools by accelerator type and node, utilisation and queue length over time,
//! and each tenant's allocation against its quota and an equal share.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::Console;
use super::html::{self, Series, escape};
use crate::api::AppState;
use crate::api::types::{NodeRow, QuotaUsage};
use crate::store::JobState;

/// Seconds between samples of the cluster's state.
const SAMPLE_EVERY_S: u64 = 5;
/// Samples kept: two hours at one per five seconds.
const MAX_SAMPLES: usize = 1440;

/// One reading of the cluster.
#[derive(Clone, Debug)]
pub struct Sample {
    pub at_s: i64,
    /// Allocated and total accelerators of each type, over pools that are up.
    pub by_type: BTreeMap<String, (u32, u32)>,
    pub queued: u32,
    pub running: u32,
}

/// Recent samples, oldest first.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    fn push(&self, sample: Sample) {
        let mut samples = self.samples.lock().expect("history lock");
        if samples.len() == MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .expect("history lock")
            .iter()
            .cloned()
            .collect()
    }
}

/// Samples the engine now and every `SAMPLE_EVERY_S` seconds while the server runs.
pub fn start_sampler(state: AppState, history: std::sync::Arc<History>) {
    let weak = std::sync::Arc::downgrade(&history);
    drop(history);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(SAMPLE_EVERY_S));
        loop {
            tick.tick().await;
            let Some(history) = weak.upgrade() else { break };
            let engine = state.engine.lock().await;
            let mut by_type: BTreeMap<String, (u32, u32)> = BTreeMap::new();
            for pool in engine.pools.iter().filter(|p| p.up) {
                let entry = by_type.entry(pool.accelerator.clone()).or_default();
                entry.0 += pool.total - pool.free.len() as u32;
                entry.1 += pool.total;
            }
            let count = |s: JobState| engine.active_jobs().filter(|j| j.state == s).count() as u32;
            let sample = Sample {
                at_s: crate::engine::now_s(),
                by_type,
                queued: count(JobState::Queued),
                running: count(JobState::Running),
            };
            drop(engine);
            history.push(sample);
        }
    });
}

/// Totals of one accelerator type: total, allocated, free, down.
#[derive(Default, Debug, PartialEq)]
pub struct TypeTotals {
    pub total: u32,
    pub allocated: u32,
    pub free: u32,
    pub down: u32,
}

/// Sums pools by accelerator type; a down pool's devices count as down, not free.
pub fn totals_by_type(pools: &[NodeRow]) -> BTreeMap<String, TypeTotals> {
    let mut out: BTreeMap<String, TypeTotals> = BTreeMap::new();
    for pool in pools {
        let t = out.entry(pool.accelerator.clone()).or_default();
        t.total += pool.total;
        if pool.state == "up" {
            t.free += pool.free;
            t.allocated += pool.total - pool.free.min(pool.total);
        } else {
            t.down += pool.total;
            t.allocated += pool.total - pool.free.min(pool.total);
        }
    }
    out
}

/// `GET /console/cluster`.
pub async fn page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let caller = match console.caller(&headers).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let pools: Vec<NodeRow> = match console.get(&caller, "/api/v1/nodes").await {
        Ok(pools) => pools,
        Err(page) => return page,
    };
    let quotas: Vec<QuotaUsage> = console.get_or_default(&caller, "/api/v1/quotas").await;
    let totals = totals_by_type(&pools);
    let mut body = String::from(
        "<section><h2>Pools by accelerator type</h2><div class=\"scroll\"><table>\
         <thead><tr><th scope=\"col\">Accelerator</th><th scope=\"col\">Total</th>\
         <th scope=\"col\">Allocated</th><th scope=\"col\">Free</th><th scope=\"col\">Down</th>\
         <th scope=\"col\">Use</th></tr></thead><tbody>",
    );
    for (accelerator, t) in &totals {
        let _ = write!(
            body,
            "<tr><td>{a}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t.total,
            t.allocated,
            t.free,
            t.down,
            html::meter(accelerator, f64::from(t.allocated), f64::from(t.total)),
            a = escape(accelerator),
        );
    }
    body.push_str("</tbody></table></div></section>");
    body.push_str(&nodes_table(&pools));
    body.push_str(&charts(&console.history.snapshot()));
    body.push_str(&quota_table(&quotas, &totals));
    html::page("Cluster", Some(&caller), "cluster", &body).into_response()
}

fn nodes_table(pools: &[NodeRow]) -> String {
    let mut out = String::from(
        "<section><h2>Nodes</h2><div class=\"scroll\"><table><thead><tr>\
         <th scope=\"col\">Node</th><th scope=\"col\">Pool</th><th scope=\"col\">Accelerator</th>\
         <th scope=\"col\">Total</th><th scope=\"col\">Allocated</th><th scope=\"col\">Free</th>\
         <th scope=\"col\">State</th></tr></thead><tbody>",
    );
    for p in pools {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"state-{s}\">{s}</td></tr>",
            escape(&p.node),
            escape(&p.pool),
            escape(&p.accelerator),
            p.total,
            p.total - p.free.min(p.total),
            p.free,
            s = escape(&p.state),
        );
    }
    out.push_str("</tbody></table></div></section>");
    out
}

fn charts(samples: &[Sample]) -> String {
    let Some(first) = samples.first() else {
        return String::from("<p class=\"hint\">The first sample is taken at start.</p>");
    };
    let minutes = |s: &Sample| (s.at_s - first.at_s) as f64 / 60.0;
    let mut types: Vec<&String> = samples.iter().flat_map(|s| s.by_type.keys()).collect();
    types.sort();
    types.dedup();
    let utilisation: Vec<Series> = types
        .iter()
        .map(|t| Series {
            name: t,
            points: samples
                .iter()
                .filter_map(|s| {
                    let (used, total) = s.by_type.get(*t)?;
                    (*total > 0).then(|| (minutes(s), 100.0 * f64::from(*used) / f64::from(*total)))
                })
                .collect(),
        })
        .collect();
    let queue = [
        Series {
            name: "queued",
            points: samples
                .iter()
                .map(|s| (minutes(s), f64::from(s.queued)))
                .collect(),
        },
        Series {
            name: "running",
            points: samples
                .iter()
                .map(|s| (minutes(s), f64::from(s.running)))
                .collect(),
        },
    ];
    format!(
        "<section class=\"charts\"><h2>Over time (since {} UTC, every {SAMPLE_EVERY_S} s)</h2>\
         <div class=\"grid2\">{}{}</div></section>",
        html::time(first.at_s),
        html::line_chart(
            "Utilisation by accelerator type",
            "minutes since the first sample",
            "allocated %",
            &utilisation
        ),
        html::line_chart(
            "Queue length",
            "minutes since the first sample",
            "jobs",
            &queue
        ),
    )
}

fn quota_table(quotas: &[QuotaUsage], totals: &BTreeMap<String, TypeTotals>) -> String {
    let mut out = String::from(
        "<section><h2>Tenants: allocation against quota</h2>\
         <p class=\"hint\">Equal share: the type's accelerators split evenly over the tenants \
         holding a quota of it.</p><div class=\"scroll\"><table><thead><tr>\
         <th scope=\"col\">Tenant</th><th scope=\"col\">Accelerator</th>\
         <th scope=\"col\">Allocated</th><th scope=\"col\">Quota</th>\
         <th scope=\"col\">Equal share</th><th scope=\"col\">Use of quota</th></tr></thead><tbody>",
    );
    if quotas.is_empty() {
        out.push_str("<tr><td colspan=\"6\">No quotas visible to you.</td></tr>");
    }
    for q in quotas {
        let holders = quotas
            .iter()
            .filter(|o| o.accelerator == q.accelerator)
            .count()
            .max(1) as f64;
        let total = totals.get(&q.accelerator).map_or(0, |t| t.total);
        out.push_str(&html::row(&[
            &escape(&q.tenant),
            &escape(&q.accelerator),
            &q.used,
            &q.limit,
            &html::short(f64::from(total) / holders),
            &html::meter(&q.tenant, f64::from(q.used), f64::from(q.limit)),
        ]));
    }
    out.push_str("</tbody></table></div></section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(accelerator: &str, total: u32, free: u32, state: &str) -> NodeRow {
        NodeRow {
            node: "n".into(),
            pool: format!("n/{accelerator}"),
            accelerator: accelerator.into(),
            total,
            free,
            free_devices: (0..free).collect(),
            state: state.into(),
            reason: None,
            executor: "local".into(),
        }
    }

    #[test]
    fn down_pools_count_as_down_not_free() {
        let totals = totals_by_type(&[
            pool("h100", 8, 3, "up"),
            pool("h100", 8, 8, "down"),
            pool("mi300x", 4, 4, "up"),
        ]);
        let h100 = &totals["h100"];
        assert_eq!(
            (h100.total, h100.allocated, h100.free, h100.down),
            (16, 5, 3, 8)
        );
        assert_eq!(totals["mi300x"].free, 4);
    }
}
