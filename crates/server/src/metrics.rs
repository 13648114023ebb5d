//! `/metrics` in the Prometheus text format: queue length, running jobs, allocated
//! accelerators by type and scheduling pass time.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::api::AppState;
use crate::store::JobState;

/// Renders the metrics.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let engine = state.engine.lock().await;
    let queued = engine
        .active_jobs()
        .filter(|j| j.state == JobState::Queued)
        .count();
    let running = engine
        .active_jobs()
        .filter(|j| j.state == JobState::Running)
        .count();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, lines: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    gauge(
        "suanli_queue_length",
        "Jobs queued (waiting for quota or capacity).",
        "gauge",
        vec![(String::new(), queued.to_string())],
    );
    gauge(
        "suanli_running_jobs",
        "Jobs running.",
        "gauge",
        vec![(String::new(), running.to_string())],
    );
    let by_type = |f: &dyn Fn(&crate::engine::PoolSlot) -> u32| -> Vec<(String, String)> {
        engine
            .pools
            .iter()
            .map(|p| {
                (
                    format!("{{accelerator=\"{}\",node=\"{}\"}}", p.accelerator, p.node),
                    f(p).to_string(),
                )
            })
            .collect()
    };
    gauge(
        "suanli_accelerators_allocated",
        "Accelerators held by running jobs, by type.",
        "gauge",
        by_type(&|p| p.total - p.free.len() as u32),
    );
    gauge(
        "suanli_accelerators_total",
        "Accelerators in the cluster, by type.",
        "gauge",
        by_type(&|p| p.total),
    );
    let m = &engine.metrics;
    gauge(
        "suanli_scheduling_pass_seconds",
        "Time spent in scheduling passes.",
        "summary",
        vec![
            ("_sum".to_string(), m.scheduling_seconds_sum.to_string()),
            ("_count".to_string(), m.scheduling_passes.to_string()),
        ],
    );
    gauge(
        "suanli_last_scheduling_pass_seconds",
        "Duration of the latest scheduling pass.",
        "gauge",
        vec![(String::new(), m.last_pass_seconds.to_string())],
    );
    gauge(
        "suanli_jobs_submitted_total",
        "Jobs accepted since the server started.",
        "counter",
        vec![(String::new(), m.jobs_submitted.to_string())],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
