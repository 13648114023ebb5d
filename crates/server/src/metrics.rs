//! `/metrics` in the OpenMetrics text format through `prometheus-client` (which escapes label
//! values): queue length, running jobs, allocated accelerators by type and scheduling pass time.

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::AppState;
use crate::engine::Engine;
use crate::store::JobState;

/// The engine's own counters, kept between scrapes (handles share their value when cloned).
#[derive(Clone, Debug)]
pub struct EngineMetrics {
    /// Duration of every scheduling pass, seconds.
    pub scheduling_pass_seconds: Histogram,
    /// Duration of the latest scheduling pass, seconds.
    pub last_pass_seconds: Gauge<f64, AtomicU64>,
    /// Jobs accepted since the server started.
    pub jobs_submitted: Counter,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        EngineMetrics {
            // 10 µs to about 2.6 s by factors of 4: a pass over a small queue takes microseconds,
            // one over 100,000 jobs a good part of a second.
            scheduling_pass_seconds: Histogram::new(exponential_buckets(1e-5, 4.0, 10)),
            last_pass_seconds: Gauge::default(),
            jobs_submitted: Counter::default(),
        }
    }
}

impl EngineMetrics {
    /// Records one scheduling pass of `seconds`.
    pub fn observe_pass(&self, seconds: f64) {
        self.scheduling_pass_seconds.observe(seconds);
        self.last_pass_seconds.set(seconds);
    }
}

/// Labels of a per-pool gauge.
type PoolLabels = Vec<(&'static str, String)>;

/// Every metric of `engine`, read now.
pub fn registry(engine: &Engine) -> Registry {
    let mut registry = Registry::default();
    let count = |state: JobState| engine.active_jobs().filter(|j| j.state == state).count();
    let queued = Gauge::<i64>::default();
    queued.set(count(JobState::Queued) as i64);
    registry.register(
        "suanli_queue_length",
        "Jobs queued (waiting for quota or capacity)",
        queued,
    );
    let running = Gauge::<i64>::default();
    running.set(count(JobState::Running) as i64);
    registry.register("suanli_running_jobs", "Jobs running", running);
    let allocated = Family::<PoolLabels, Gauge>::default();
    let total = Family::<PoolLabels, Gauge>::default();
    for pool in &engine.pools {
        let labels = vec![
            ("accelerator", pool.accelerator.clone()),
            ("node", pool.node.clone()),
        ];
        let held = pool.total.saturating_sub(pool.free.len() as u32);
        allocated.get_or_create(&labels).set(i64::from(held));
        total.get_or_create(&labels).set(i64::from(pool.total));
    }
    registry.register(
        "suanli_accelerators_allocated",
        "Accelerators held by running jobs, by type",
        allocated,
    );
    registry.register(
        "suanli_accelerators_total",
        "Accelerators in the cluster, by type",
        total,
    );
    let metrics = &engine.metrics;
    registry.register(
        "suanli_scheduling_pass_seconds",
        "Time spent in scheduling passes",
        metrics.scheduling_pass_seconds.clone(),
    );
    registry.register(
        "suanli_last_scheduling_pass_seconds",
        "Duration of the latest scheduling pass",
        metrics.last_pass_seconds.clone(),
    );
    registry.register(
        "suanli_jobs_submitted",
        "Jobs accepted since the server started",
        metrics.jobs_submitted.clone(),
    );
    registry
}

/// Renders the metrics.
#[utoipa::path(get, path = "/metrics", summary = "Prometheus metrics", responses((status = 200, description = "OK")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let registry = registry(&*state.engine.lock().await);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &registry);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
}
