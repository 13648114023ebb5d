//! The serving planner: one model served on several accelerator types side by side with
//! `suanli-perf` (smallest tensor-parallel degree that fits, TTFT, TPOT, throughput, memory).

use std::fmt::Write;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use suanli_perf::serve::{self, ServeEstimate, ServeSetup};

use super::form::{self, FormError};
use super::html::{self, escape};
use super::planner::{MAX_TYPES, PLANNING, accelerator_checks, model_options, picked};
use super::planner_slo::{self, SloForm};
use suanli_catalog::Catalog;

/// The form as submitted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServeForm {
    pub model: String,
    #[serde(rename = "accelerator", deserialize_with = "form::all")]
    pub accelerators: Vec<String>,
    pub input_len: String,
    pub output_len: String,
    pub batch: String,
    pub rate: String,
    pub ttft_ms: String,
    pub tpot_ms: String,
}

/// One setup per accelerator type, or what is wrong with the form.
pub fn setups(catalog: &Catalog, form: &ServeForm) -> Result<Vec<ServeSetup>, FormError> {
    let model = catalog.model(form.model.trim())?;
    let accelerators = picked(catalog, &form.accelerators)?;
    let input = html::whole_field("input tokens", &form.input_len, 1 << 20)?.unwrap_or(2048);
    let output = html::whole_field("output tokens", &form.output_len, 1 << 20)?.unwrap_or(256);
    let batch = html::whole_field("batch", &form.batch, 1 << 16)?;
    Ok(accelerators
        .into_iter()
        .map(|accelerator| {
            let mut setup = ServeSetup::new(model.clone(), accelerator.clone(), input, output);
            setup.batch = batch;
            setup
        })
        .collect())
}

/// The smallest power-of-two tensor-parallel degree (within the scale-up domain) that fits.
fn smallest_fitting(setup: &mut ServeSetup) -> Result<ServeEstimate, NoDegreeFits> {
    let limit = setup
        .accelerator
        .scaleup
        .domain_size
        .max(setup.per_node)
        .max(1);
    let mut tp = 1;
    loop {
        setup.tp = tp;
        match serve::estimate(setup) {
            Ok(estimate) => return Ok(estimate),
            Err(last) if tp * 2 > limit => return Err(NoDegreeFits { last, max_tp: tp }),
            Err(_) => tp *= 2,
        }
    }
}

/// Why no tensor-parallel degree serves a setup: the error at the largest degree tried.
#[derive(Debug, thiserror::Error)]
#[error("{last} (tried tp=1 to {max_tp})")]
struct NoDegreeFits {
    last: serve::ServeError,
    max_tp: u32,
}

fn results_html(rows: &[(ServeSetup, Result<ServeEstimate, NoDegreeFits>)]) -> String {
    let mut out = String::from(
        "<section id=\"serve-results\"><h2>Side by side</h2><div class=\"scroll\"><table><thead><tr>\
         <th scope=\"col\">Accelerator</th><th scope=\"col\">TP</th><th scope=\"col\">Batch</th>\
         <th scope=\"col\">TTFT (ms)</th><th scope=\"col\">TPOT (ms)</th>\
         <th scope=\"col\">Output tokens/s per device</th><th scope=\"col\">KV cache (tokens)</th>\
         </tr></thead><tbody>",
    );
    let mut memory = Vec::new();
    for (setup, estimate) in rows {
        let name = escape(&setup.accelerator.name);
        match estimate {
            Err(why) => {
                let _ = write!(
                    out,
                    "<tr><td>{name}</td><td colspan=\"6\" class=\"error\">{}</td></tr>",
                    escape(&why.to_string())
                );
            }
            Ok(e) => {
                let _ = write!(
                    out,
                    "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
                    setup.tp,
                    e.batch,
                    e.ttft_s * 1e3,
                    e.tpot_s * 1e3,
                    html::short(e.output_tokens_per_s_per_device),
                    html::short(e.memory.kv_capacity_tokens as f64),
                );
                let m = &e.memory;
                memory.push(html::gigabytes(
                    &setup.accelerator.id,
                    &[
                        ("weights", m.weights_bytes),
                        ("KV cache", m.kv_cache_bytes),
                        ("activations", m.activations_bytes),
                        ("reserve", m.reserve_bytes),
                    ],
                ));
            }
        }
    }
    out.push_str(
        "</tbody></table></div><p class=\"hint\">One replica at the batch the memory allows \
         (or the one given); bf16 weights and KV cache. The model's measured error is in \
         docs/validation-serving.md.</p>",
    );
    out.push_str(&html::stacked_bars("Memory per device", "GB", &memory));
    out.push_str("</section>");
    out
}

/// `GET /console/planner/serving`.
pub async fn page(page: form::FormPage<ServeForm>) -> Response {
    let form::FormPage {
        caller,
        form,
        submitted,
        catalog,
    } = page;
    let value = |v: &str, d: &str| escape(if v.is_empty() { d } else { v });
    let mut body = format!(
        "<p><a href=\"/console/planner\">Training</a> · <strong>Serving</strong></p>\
         <form method=\"get\" action=\"/console/planner/serving\" class=\"card\" id=\"serve-plan\">\
         <label for=\"model\">Model</label><select id=\"model\" name=\"model\">{}</select>\
         <fieldset class=\"checks\"><legend>Accelerator types (up to {MAX_TYPES})</legend>{}</fieldset>\
         <label for=\"input_len\">Input tokens</label><input id=\"input_len\" name=\"input_len\" inputmode=\"numeric\" value=\"{}\">\
         <label for=\"output_len\">Output tokens</label><input id=\"output_len\" name=\"output_len\" inputmode=\"numeric\" value=\"{}\">\
         <label for=\"batch\">Batch (optional)</label><input id=\"batch\" name=\"batch\" inputmode=\"numeric\" value=\"{}\">\
         <fieldset class=\"checks slo\"><legend>Deployment search (optional): cheapest way to meet targets</legend>\
         <label for=\"rate\">Requests per second</label><input id=\"rate\" name=\"rate\" inputmode=\"decimal\" value=\"{}\">\
         <label for=\"ttft_ms\">TTFT target (ms)</label><input id=\"ttft_ms\" name=\"ttft_ms\" inputmode=\"decimal\" value=\"{}\">\
         <label for=\"tpot_ms\">TPOT target (ms)</label><input id=\"tpot_ms\" name=\"tpot_ms\" inputmode=\"decimal\" value=\"{}\">\
         </fieldset><button type=\"submit\">Plan serving</button></form>",
        model_options(&catalog, &form.model),
        accelerator_checks(&catalog, &form.accelerators),
        value(&form.input_len, "2048"),
        value(&form.output_len, "256"),
        escape(&form.batch),
        escape(&form.rate),
        value(&form.ttft_ms, "500"),
        value(&form.tpot_ms, "50"),
    );
    let mut status = StatusCode::OK;
    if submitted {
        match setups(&catalog, &form) {
            Err(problem) => {
                status = StatusCode::BAD_REQUEST;
                body.push_str(&html::alert(&problem));
            }
            Ok(setups) => {
                let slo = SloForm {
                    rate: &form.rate,
                    ttft_ms: &form.ttft_ms,
                    tpot_ms: &form.tpot_ms,
                };
                let first = &setups[0];
                let search = planner_slo::spec(
                    &catalog,
                    &slo,
                    &first.model,
                    &form.accelerators,
                    first.input_len,
                    first.output_len,
                );
                let _permit = PLANNING.acquire().await.expect("never closed");
                let (rows, searched) = tokio::task::spawn_blocking(move || {
                    let rows: Vec<_> = setups
                        .into_iter()
                        .map(|mut s| {
                            let e = smallest_fitting(&mut s);
                            (s, e)
                        })
                        .collect();
                    let searched = search.map(|spec| {
                        let spec = spec?;
                        let result = planner_slo::run(&spec)?;
                        Ok::<_, FormError>(planner_slo::results_html(&spec, &result))
                    });
                    (rows, searched)
                })
                .await
                .expect("the planner does not panic");
                body.push_str(&results_html(&rows));
                match searched {
                    Some(Ok(html)) => body.push_str(&html),
                    Some(Err(problem)) => {
                        status = StatusCode::BAD_REQUEST;
                        body.push_str(&html::alert(&problem));
                    }
                    None => {}
                }
            }
        }
    }
    (
        status,
        html::page("Serving planner", Some(&caller), "planner", &body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_70b_model_needs_more_h100s_than_mi300xs() {
        let form = ServeForm {
            model: "llama-3.1-70b".into(),
            accelerators: vec!["h100-sxm5-80gb".into(), "mi300x".into()],
            ..ServeForm::default()
        };
        let mut setups = setups(&Catalog::builtin(), &form).unwrap();
        let h100 = smallest_fitting(&mut setups[0]).unwrap();
        let mi300x = smallest_fitting(&mut setups[1]).unwrap();
        // 70.6e9 bf16 parameters are 141 GB: two 80 GB H100s at least, one 192 GB MI300X.
        assert!(setups[0].tp >= 2, "h100 tp {}", setups[0].tp);
        assert_eq!(setups[1].tp, 1);
        assert!(h100.ttft_s > 0.0 && mi300x.tpot_s > 0.0);
    }

    #[test]
    fn bad_lengths_are_refused() {
        let form = ServeForm {
            model: "llama-3.1-8b".into(),
            accelerators: vec!["h100-sxm5-80gb".into()],
            input_len: "0".into(),
            ..ServeForm::default()
        };
        assert!(
            setups(&Catalog::builtin(), &form)
                .unwrap_err()
                .to_string()
                .starts_with("input tokens:")
        );
    }
}
