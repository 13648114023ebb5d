//! The serving planner's SLO deployment search: the cheapest deployment of each chosen
//! accelerator type that meets mean TTFT and TPOT targets at a request rate (`suanli-perf`'s
//! `serve_search`, the same as `suanli plan serve --rate`).

use std::fmt::Write;

use suanli_catalog::{Catalog, Model, Precision};
use suanli_perf::serve::scenario::ChosenEngine;
use suanli_perf::serve_search::{self, Candidate, SearchResult, SearchSpec};

use super::form::FormError;
use super::html::escape;

/// Highest request rate searched, per second.
const MAX_RATE_PER_S: f64 = 1e6;
/// Largest tp x pp of one replica, as the CLI's default.
const MAX_DEVICES_PER_REPLICA: u32 = 16;

/// What the search needs from the form: rate (requests/s) and targets (ms), as text.
pub struct SloForm<'a> {
    pub rate: &'a str,
    pub ttft_ms: &'a str,
    pub tpot_ms: &'a str,
}

fn positive(field: &'static str, text: &str, max: f64) -> Result<f64, FormError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= max => Ok(v),
        _ => Err(FormError::Positive {
            field,
            text: text.trim().to_string(),
            max: max.to_string(),
        }),
    }
}

/// The search spec, or what is wrong; `None` when no rate was given (no search asked for).
pub fn spec(
    catalog: &Catalog,
    form: &SloForm,
    model: &Model,
    accelerators: &[String],
    input_len: u64,
    output_len: u64,
) -> Option<Result<SearchSpec, FormError>> {
    if form.rate.trim().is_empty() {
        return None;
    }
    let build = || -> Result<SearchSpec, FormError> {
        let rate_per_s = positive("rate", form.rate, MAX_RATE_PER_S)?;
        let ttft_slo_s = positive("TTFT target", form.ttft_ms, 1e6)? / 1e3;
        let tpot_slo_s = positive("TPOT target", form.tpot_ms, 1e6)? / 1e3;
        let mut candidates = Vec::new();
        for name in accelerators {
            let accelerator = catalog.accelerator(name.trim())?;
            let price_per_hour = serve_search::default_price(&accelerator.id)
                .ok_or_else(|| FormError::NoPrice(accelerator.id.clone()))?;
            candidates.push(Candidate {
                accelerator: accelerator.clone(),
                price_per_hour,
            });
        }
        Ok(SearchSpec {
            model: model.clone(),
            candidates,
            input_len,
            output_len,
            weight_precision: Precision::Bf16,
            kv_precision: Precision::Bf16,
            rate_per_s,
            ttft_slo_s,
            tpot_slo_s,
            max_devices_per_replica: MAX_DEVICES_PER_REPLICA,
            top: accelerators.len(),
            engine: ChosenEngine::default(),
        })
    };
    Some(build())
}

/// Runs the search (CPU work: call it off the async threads).
pub fn run(spec: &SearchSpec) -> Result<SearchResult, serve_search::SearchError> {
    serve_search::search(spec)
}

/// The deployments, cheapest first, and why the other types have none.
pub fn results_html(spec: &SearchSpec, result: &SearchResult) -> String {
    let mut out = format!(
        "<section id=\"slo-results\"><h2>Cheapest deployments at {} requests/s \
         (TTFT ≤ {:.0} ms, TPOT ≤ {:.0} ms, means under load)</h2><div class=\"scroll\"><table>\
         <thead><tr><th scope=\"col\">Accelerator</th><th scope=\"col\">TP × PP</th>\
         <th scope=\"col\">Replicas</th><th scope=\"col\">Devices</th><th scope=\"col\">TTFT (ms)</th>\
         <th scope=\"col\">TPOT (ms)</th><th scope=\"col\">$/hour</th>\
         <th scope=\"col\">$ per million output tokens</th></tr></thead><tbody>",
        spec.rate_per_s,
        spec.ttft_slo_s * 1e3,
        spec.tpot_slo_s * 1e3
    );
    for d in &result.deployments {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} × {}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.1}</td>\
             <td>{:.2}</td><td>{:.3}</td></tr>",
            escape(&d.accelerator),
            d.tp,
            d.pp,
            d.replicas,
            d.devices,
            d.ttft_s * 1e3,
            d.tpot_s * 1e3,
            d.price_per_hour,
            d.cost_per_million_output_tokens
        );
    }
    for r in &result.rejected {
        let _ = write!(
            out,
            "<tr><td>{}</td><td colspan=\"7\" class=\"error\">{}</td></tr>",
            escape(&r.accelerator),
            escape(&r.reason)
        );
    }
    out.push_str(
        "</tbody></table></div><p class=\"hint\">Prices are the documented on-demand defaults \
         of <code>suanli plan serve --rate</code>.</p></section>",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_and_a_search_meets_them() {
        let model = Catalog::builtin().model("llama-3.1-8b").unwrap().clone();
        let types = ["h100-sxm5-80gb".to_string()];
        let empty = SloForm {
            rate: " ",
            ttft_ms: "",
            tpot_ms: "",
        };
        assert!(spec(&Catalog::builtin(), &empty, &model, &types, 2048, 256).is_none());
        let bad = SloForm {
            rate: "5",
            ttft_ms: "-1",
            tpot_ms: "50",
        };
        let problem = spec(&Catalog::builtin(), &bad, &model, &types, 2048, 256)
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(problem.starts_with("TTFT target:"), "{problem}");
        let good = SloForm {
            rate: "5",
            ttft_ms: "500",
            tpot_ms: "50",
        };
        let spec = spec(&Catalog::builtin(), &good, &model, &types, 2048, 256)
            .unwrap()
            .unwrap();
        let result = run(&spec).unwrap();
        let best = &result.deployments[0];
        assert!(best.ttft_s <= 0.5 && best.tpot_s <= 0.05, "{best:?}");
    }
}
