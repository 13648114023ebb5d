//! The simulations page: a preset workload (the Gavel trace or a synthetic profile fitted to a
//! published trace) on a cluster, several policies compared with `suanli-sim`: the summary, the
//! completion-time CDF and utilisation charts, and the per-tenant fairness table.

use std::fmt::Write;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use suanli_sim::metrics::{RunResult, Summary};
use suanli_sim::trace::{TraceFormat, fit_to_cluster, parse_trace};
use suanli_sim::workload::{ClusterSpec, TraceJob};
use suanli_sim::{SimConfig, plot, presets, synthetic};

use super::form::{self, FormError};
use super::html::{self, escape};

/// The first trace of Gavel's artifact (Narayanan et al., OSDI 2020; MIT licence, see
/// crates/sim/data/gavel/LICENSE).
const GAVEL_TRACE: &str = include_str!("../../../sim/data/gavel/seed0/0e4a51.trace");
/// Most jobs a console simulation replays.
const MAX_JOBS: usize = 2000;
/// Largest synthetic cluster.
const MAX_ACCELERATORS: u32 = 4096;
/// One simulation runs at a time.
static SIMULATING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

const WORKLOADS: [(&str, &str); 4] = [
    ("gavel-trace", "Gavel trace 0e4a51 (1,181 jobs)"),
    ("philly", "Synthetic, Philly profile"),
    ("acme", "Synthetic, Acme (Kalos) profile"),
    ("gavel", "Synthetic, Gavel profile"),
];
const CLUSTERS: [&str; 3] = ["gavel-36-36-36", "gavel-300-300-300", "gavel-500-0-0"];

/// The form as submitted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SimForm {
    pub workload: String,
    pub cluster: String,
    pub jobs: String,
    pub accelerators: String,
    #[serde(rename = "policy", deserialize_with = "form::all")]
    pub policies: Vec<String>,
    pub seed: String,
}

/// The cluster, jobs and policies the form asks for, or what is wrong with it.
pub fn workload(form: &SimForm) -> Result<(ClusterSpec, Vec<TraceJob>, Vec<String>), FormError> {
    let jobs = html::whole_field("jobs", &form.jobs, MAX_JOBS as u64)?.unwrap_or(300) as usize;
    let seed = if form.seed.trim().is_empty() {
        0
    } else {
        form.seed
            .trim()
            .parse::<u64>()
            .map_err(|_| FormError::Seed)?
    };
    if form.policies.is_empty() {
        return Err(FormError::NoPolicy);
    }
    for p in &form.policies {
        if suanli_sched::policy::by_name(p).is_err() {
            return Err(FormError::UnknownPolicy {
                given: p.clone(),
                names: suanli_sched::policy::NAMES.join(", "),
            });
        }
    }
    let (cluster, all) = match form.workload.as_str() {
        "gavel-trace" | "" => {
            let name = if form.cluster.is_empty() {
                CLUSTERS[0]
            } else {
                form.cluster.as_str()
            };
            if !CLUSTERS.contains(&name) {
                return Err(FormError::UnknownCluster {
                    given: name.to_string(),
                    names: CLUSTERS.join(", "),
                });
            }
            let cluster = presets::preset(name)?;
            let trace = parse_trace(GAVEL_TRACE, "0e4a51.trace", TraceFormat::Gavel)?;
            (cluster, trace.jobs)
        }
        profile @ ("philly" | "acme" | "gavel") => {
            let accelerators =
                html::whole_field("accelerators", &form.accelerators, MAX_ACCELERATORS.into())?
                    .unwrap_or(256);
            let spec = format!(
                "jobs={jobs},accelerators={accelerators},load=0.9,profile={profile},tenants=4,seed={seed}"
            );
            let w = synthetic::from_spec(&spec)?;
            (w.cluster, w.jobs)
        }
        other => return Err(FormError::UnknownWorkload(other.to_string())),
    };
    let (mut fitted, _) = fit_to_cluster(all, &cluster);
    fitted.truncate(jobs);
    Ok((cluster, fitted, form.policies.clone()))
}

fn run(
    cluster: &ClusterSpec,
    jobs: &[TraceJob],
    policies: &[String],
) -> Result<Vec<RunResult>, FormError> {
    policies
        .iter()
        .map(|policy| {
            let config = SimConfig {
                policy: policy.clone(),
                failures: suanli_sim::FailureModel::parse("none")?,
                checkpoint: suanli_sim::CheckpointPolicy::parse("trace")?,
                checkpoint_cost_s: 0,
                seed: 0,
                sched: suanli_sched::SchedConfig::default(),
                tenants: Vec::new(),
            };
            suanli_sim::simulate(cluster, jobs, &config, None).map_err(|error| {
                FormError::Simulation {
                    policy: policy.clone(),
                    error,
                }
            })
        })
        .collect()
}

fn form_html(form: &SimForm) -> String {
    let option = |value: &str, label: &str, current: &str, default: bool| {
        let selected = if value == current || (current.is_empty() && default) {
            " selected"
        } else {
            ""
        };
        format!(
            "<option value=\"{}\"{selected}>{}</option>",
            escape(value),
            escape(label)
        )
    };
    let workloads: String = WORKLOADS
        .iter()
        .enumerate()
        .map(|(i, (v, l))| option(v, l, &form.workload, i == 0))
        .collect();
    let clusters: String = CLUSTERS
        .iter()
        .enumerate()
        .map(|(i, c)| option(c, c, &form.cluster, i == 0))
        .collect();
    let mut policies = String::new();
    for (i, p) in suanli_sched::policy::NAMES.iter().enumerate() {
        let checked = if form.policies.is_empty() {
            ["fifo", "backfill", "tiresias-las"].contains(p)
        } else {
            form.policies.iter().any(|x| x == p)
        };
        let _ = write!(
            policies,
            "<label class=\"check\"><input type=\"checkbox\" name=\"policy\" id=\"policy-{i}\" value=\"{p}\"{}> {p}</label>",
            if checked { " checked" } else { "" }
        );
    }
    let value = |v: &str, d: &str| escape(if v.is_empty() { d } else { v });
    format!(
        "<form method=\"get\" action=\"/console/simulations\" class=\"card\" id=\"sim-form\">\
         <label for=\"workload\">Workload</label><select id=\"workload\" name=\"workload\">{workloads}</select>\
         <label for=\"cluster\">Cluster (for the trace)</label><select id=\"cluster\" name=\"cluster\">{clusters}</select>\
         <label for=\"accelerators\">Accelerators (synthetic cluster)</label><input id=\"accelerators\" name=\"accelerators\" inputmode=\"numeric\" value=\"{}\">\
         <label for=\"jobs\">Jobs (at most {MAX_JOBS})</label><input id=\"jobs\" name=\"jobs\" inputmode=\"numeric\" value=\"{}\">\
         <fieldset class=\"checks\"><legend>Policies</legend>{policies}</fieldset>\
         <label for=\"seed\">Seed</label><input id=\"seed\" name=\"seed\" inputmode=\"numeric\" value=\"{}\">\
         <button type=\"submit\">Simulate</button></form>",
        value(&form.accelerators, "256"),
        value(&form.jobs, "300"),
        value(&form.seed, "0"),
    )
}

fn svg_image(svg: &str, alt: &str) -> String {
    format!(
        "<figure><img class=\"chart\" alt=\"{}\" src=\"data:image/svg+xml;base64,{}\"></figure>",
        escape(alt),
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

fn results_html(cluster: &ClusterSpec, jobs: usize, runs: &[RunResult]) -> String {
    let summaries: Vec<Summary> = runs.iter().map(Summary::of).collect();
    let mut out = format!(
        "<section id=\"sim-results\"><h2>{jobs} jobs on {} ({} accelerators)</h2><div class=\"scroll\"><table>\
         <thead><tr><th scope=\"col\">Policy</th><th scope=\"col\">Completed</th><th scope=\"col\">Mean JCT (h)</th>\
         <th scope=\"col\">p95 JCT (h)</th><th scope=\"col\">Mean queueing (h)</th><th scope=\"col\">Makespan (h)</th>\
         <th scope=\"col\">Utilisation</th><th scope=\"col\">Fairness (Jain)</th></tr></thead><tbody>",
        escape(&cluster.name),
        presets::total_accelerators(cluster)
    );
    for s in &summaries {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}</td><td>{:.1}%</td><td>{:.3}</td></tr>",
            escape(&s.policy),
            s.jobs_completed,
            s.jct_s.mean / 3600.0,
            s.jct_s.p95 / 3600.0,
            s.queueing_delay_s.mean / 3600.0,
            s.makespan_s as f64 / 3600.0,
            s.utilisation * 100.0,
            s.tenant_fairness_jain
        );
    }
    out.push_str("</tbody></table></div><div class=\"grid2\">");
    match plot::jct_cdf_svg(runs, "") {
        Ok(svg) => out.push_str(&svg_image(&svg, "Job completion time CDF by policy")),
        Err(e) => {
            let _ = write!(out, "<p class=\"hint\">{}</p>", escape(&e.to_string()));
        }
    }
    match plot::utilisation_svg(runs, "") {
        Ok(svg) => out.push_str(&svg_image(&svg, "Cluster utilisation over time by policy")),
        Err(e) => {
            let _ = write!(out, "<p class=\"hint\">{}</p>", escape(&e.to_string()));
        }
    }
    out.push_str(
        "</div><h2>Tenants</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Policy</th>\
         <th scope=\"col\">Tenant</th><th scope=\"col\">Jobs</th><th scope=\"col\">Mean JCT (h)</th>\
         <th scope=\"col\">Mean slowdown</th><th scope=\"col\">Share of accelerator-hours</th></tr></thead><tbody>",
    );
    for s in &summaries {
        for t in s.tenants.iter().take(20) {
            out.push_str(&html::row(&[
                &escape(&s.policy),
                &escape(&t.tenant),
                &t.jobs_completed,
                &format!("{:.2}", t.jct_mean_s / 3600.0),
                &format!("{:.2}", t.slowdown_mean),
                &format!("{:.1}%", t.allocated_share * 100.0),
            ]));
        }
    }
    out.push_str("</tbody></table></div></section>");
    out
}

/// `GET /console/simulations`.
pub async fn page(page: form::FormPage<SimForm>) -> Response {
    let form::FormPage {
        caller,
        form,
        submitted,
        ..
    } = page;
    let mut body = form_html(&form);
    let mut status = StatusCode::OK;
    if submitted {
        let _permit = SIMULATING.acquire().await.expect("never closed");
        let outcome = tokio::task::spawn_blocking(move || {
            let (cluster, jobs, policies) = workload(&form)?;
            let runs = run(&cluster, &jobs, &policies)?;
            Ok::<_, FormError>(results_html(&cluster, jobs.len(), &runs))
        })
        .await
        .unwrap_or_else(|e| Err(FormError::Crashed(e)));
        match outcome {
            Ok(results) => body.push_str(&results),
            Err(problem) => {
                status = StatusCode::BAD_REQUEST;
                body.push_str(&html::alert(&problem));
            }
        }
    }
    (
        status,
        html::page("Simulations", Some(&caller), "simulations", &body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(policies: &[&str]) -> SimForm {
        SimForm {
            jobs: "120".into(),
            policies: policies.iter().map(|p| p.to_string()).collect(),
            ..SimForm::default()
        }
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(workload(&form(&[])).is_err());
        assert!(
            workload(&form(&["lottery"]))
                .unwrap_err()
                .to_string()
                .contains("unknown policy")
        );
        let mut f = form(&["fifo"]);
        f.jobs = "999999".into();
        assert!(workload(&f).is_err());
        f.jobs = "10".into();
        f.cluster = "../etc/passwd".into();
        assert!(workload(&f).is_err());
    }

    #[test]
    fn every_trace_job_completes_under_each_policy() {
        let (cluster, jobs, policies) = workload(&form(&["fifo", "las"])).unwrap();
        assert_eq!(jobs.len(), 120);
        let runs = run(&cluster, &jobs, &policies).unwrap();
        for r in &runs {
            assert_eq!(Summary::of(r).jobs_completed, 120, "{}", r.policy);
        }
        // The page escapes and charts what it ran.
        let html = results_html(&cluster, jobs.len(), &runs);
        assert!(html.contains("gavel-36-36-36") && html.contains("data:image/svg+xml;base64,"));
    }
}
