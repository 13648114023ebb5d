//! The planner page: one training plan searched on several accelerator types side by side with
//! `suanli-perf` (step time, MFU, memory, days, energy, cost), with the breakdowns as charts.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use suanli_catalog::{Accelerator, Catalog};
use suanli_perf::search::{self, Constraints, SearchError};
use suanli_perf::train::{TrainEstimate, TrainSetup};

use super::form::{self, FormError};
use super::html::{self, escape};
use super::{Caller, Console};

/// Most accelerator types compared at once.
pub const MAX_TYPES: usize = 6;
/// Longest Hugging Face config accepted.
const MAX_CONFIG_BYTES: usize = 64 << 10;
/// Largest accelerator count planned.
const MAX_COUNT: u64 = 65_536;
/// One plan computes at a time, so the planner cannot starve the API of CPU.
pub static PLANNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The planner form as submitted (all text: checked here, with one-line errors).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PlanForm {
    pub model: String,
    #[serde(rename = "accelerator", deserialize_with = "form::all")]
    pub accelerators: Vec<String>,
    pub count: String,
    pub seq_len: String,
    pub global_batch: String,
    pub tokens: String,
    pub price_per_hour: String,
    /// A Hugging Face `config.json`, pasted or read from a file; used instead of `model`.
    pub hf_config: String,
}

fn optional_positive(field: &'static str, text: &str, max: f64) -> Result<Option<f64>, FormError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= max => Ok(Some(v)),
        _ => Err(FormError::Positive {
            field,
            text: text.to_string(),
            max: format!("{max:e}"),
        }),
    }
}

/// The setups the form asks for, one per accelerator type, or what is wrong with it.
pub fn setups(catalog: &Catalog, form: &PlanForm) -> Result<Vec<TrainSetup>, FormError> {
    let model = if form.hf_config.trim().is_empty() {
        catalog.model(form.model.trim())?.clone()
    } else if form.hf_config.len() > MAX_CONFIG_BYTES {
        return Err(FormError::ConfigTooLarge {
            bytes: form.hf_config.len(),
            max_bytes: MAX_CONFIG_BYTES,
        });
    } else {
        suanli_catalog::model_from_hf_config(&form.hf_config, "your-config.json")?
    };
    let accelerators = picked(catalog, &form.accelerators)?;
    let count = html::whole_field("accelerators", &form.count, MAX_COUNT)?.unwrap_or(64);
    let seq_len = html::whole_field("sequence length", &form.seq_len, 1 << 20)?.unwrap_or(4096);
    // Empty: the planner's one default (`suanli plan train` uses the same), moved below to the
    // nearest size some layout divides.
    let given_batch = html::whole_field("global batch", &form.global_batch, 1 << 20)?;
    let global_batch = given_batch.unwrap_or_else(|| {
        suanli_perf::goal::default_global_batch(&model, count, seq_len).sequences
    });
    let tokens = optional_positive("tokens", &form.tokens, 1e16)?;
    let price = optional_positive("price per hour", &form.price_per_hour, 1e4)?;
    Ok(accelerators
        .into_iter()
        .map(|accelerator| {
            let mut setup = TrainSetup::new(model.clone(), accelerator.clone(), count);
            setup.seq_len = seq_len;
            setup.global_batch = global_batch;
            setup.tokens_total = tokens;
            setup.price_per_hour = price;
            let free = Constraints::default();
            if given_batch.is_none()
                && search::candidates(&setup, &free).is_empty()
                && let Some(nearest) = search::nearest_valid_global_batch(&setup, &free)
            {
                setup.global_batch = nearest;
            }
            setup
        })
        .collect())
}

/// The accelerator types a planner form picked (1 to `MAX_TYPES`), from the catalog.
pub fn picked<'c>(
    catalog: &'c Catalog,
    names: &[String],
) -> Result<Vec<&'c Accelerator>, FormError> {
    if names.is_empty() || names.len() > MAX_TYPES {
        return Err(FormError::AcceleratorTypes { max: MAX_TYPES });
    }
    names
        .iter()
        .map(|name| Ok(catalog.accelerator(name.trim())?))
        .collect()
}

/// The fastest layout of each setup, or why none fits.
fn plan(setups: &[TrainSetup]) -> Vec<Result<TrainEstimate, SearchError>> {
    setups
        .iter()
        .map(|setup| {
            let found = search::search(setup, &Constraints::default(), 1)?;
            found
                .top
                .into_iter()
                .next()
                .ok_or_else(|| SearchError::NothingFits("the search kept none".into()))
        })
        .collect()
}

/// The `<select>` options of the catalog's models, `current` (or Llama 3.1 8B) selected.
pub fn model_options(catalog: &Catalog, current: &str) -> String {
    let chosen = if current.is_empty() {
        "llama-3.1-8b"
    } else {
        current
    };
    let mut models = String::new();
    for m in &catalog.models {
        let selected = if m.id == chosen { " selected" } else { "" };
        let _ = write!(
            models,
            "<option value=\"{id}\"{selected}>{}</option>",
            escape(&m.name),
            id = escape(&m.id)
        );
    }
    models
}

/// A checkbox per catalog accelerator; H100 and MI300X when none was chosen.
pub fn accelerator_checks(catalog: &Catalog, chosen: &[String]) -> String {
    let defaults = ["h100-sxm5-80gb", "mi300x"];
    let mut out = String::new();
    for (i, a) in catalog.accelerators.iter().enumerate() {
        let checked = if chosen.is_empty() {
            defaults.contains(&a.id.as_str())
        } else {
            chosen.contains(&a.id)
        };
        let _ = write!(
            out,
            "<label class=\"check\"><input type=\"checkbox\" name=\"accelerator\" id=\"acc-{i}\" \
             value=\"{id}\"{}> {}</label>",
            if checked { " checked" } else { "" },
            escape(&a.name),
            id = escape(&a.id)
        );
    }
    out
}

fn form_html(catalog: &Catalog, form: &PlanForm, csrf: &str) -> String {
    let models = model_options(catalog, &form.model);
    let accelerators = accelerator_checks(catalog, &form.accelerators);
    let value = |v: &str, d: &str| escape(if v.is_empty() { d } else { v });
    format!(
        "<p><strong>Training</strong> · <a href=\"/console/planner/serving\">Serving</a></p>\
         <form method=\"post\" action=\"/console/planner\" class=\"card\" id=\"train-plan\">{csrf}\
         <label for=\"model\">Model</label><select id=\"model\" name=\"model\">{models}</select>\
         <label for=\"hf_file\">Or a Hugging Face config.json</label>\
         <input type=\"file\" id=\"hf_file\" accept=\".json,application/json\">\
         <label for=\"hf_config\">config.json text (used instead of the model when given)</label>\
         <textarea id=\"hf_config\" name=\"hf_config\" rows=\"3\" maxlength=\"65536\">{}</textarea>\
         <fieldset class=\"checks\"><legend>Accelerator types (up to {MAX_TYPES})</legend>{accelerators}</fieldset>\
         <label for=\"count\">Accelerators</label><input id=\"count\" name=\"count\" inputmode=\"numeric\" value=\"{}\">\
         <label for=\"seq_len\">Sequence length (tokens)</label><input id=\"seq_len\" name=\"seq_len\" inputmode=\"numeric\" value=\"{}\">\
         <label for=\"global_batch\">Global batch (sequences; empty = the published batch for the model's size)</label><input id=\"global_batch\" name=\"global_batch\" inputmode=\"numeric\" value=\"{}\">\
         <label for=\"tokens\">Training tokens (optional, e.g. 1e12)</label><input id=\"tokens\" name=\"tokens\" value=\"{}\">\
         <label for=\"price_per_hour\">Price per accelerator-hour (optional)</label><input id=\"price_per_hour\" name=\"price_per_hour\" value=\"{}\">\
         <button type=\"submit\">Plan training</button></form>",
        escape(&form.hf_config),
        value(&form.count, "64"),
        value(&form.seq_len, "4096"),
        escape(&form.global_batch),
        value(&form.tokens, "1e12"),
        escape(&form.price_per_hour),
    )
}

fn results_html(setups: &[TrainSetup], estimates: &[Result<TrainEstimate, SearchError>]) -> String {
    let model = setups.first().map_or("", |s| s.model.name.as_str());
    let mut out = format!(
        "<section id=\"plan-results\"><h2>Side by side</h2><p id=\"plan-model\">Model: {}</p>\
         <p id=\"plan-batch\">Global batch: {} sequences of {} tokens</p>\
         <div class=\"scroll\"><table><thead><tr>\
         <th scope=\"col\">Accelerator</th><th scope=\"col\">Layout</th><th scope=\"col\">Step (s)</th>\
         <th scope=\"col\">MFU</th><th scope=\"col\">Tokens/s</th><th scope=\"col\">Memory/device (GB)</th>\
         <th scope=\"col\">Days</th><th scope=\"col\">Accelerator-hours</th><th scope=\"col\">Energy (MWh)</th>\
         <th scope=\"col\">Cost</th></tr></thead><tbody>",
        escape(model),
        setups.first().map_or(0, |s| s.global_batch),
        setups.first().map_or(0, |s| s.seq_len),
    );
    let mut time_rows = Vec::new();
    let mut memory_rows = Vec::new();
    for (setup, estimate) in setups.iter().zip(estimates) {
        let name = escape(&setup.accelerator.name);
        let e = match estimate {
            Ok(e) => e,
            Err(why) => {
                let _ = write!(
                    out,
                    "<tr><td>{name}</td><td colspan=\"9\" class=\"error\">{}</td></tr>",
                    escape(&why.to_string())
                );
                continue;
            }
        };
        let budget = e.budget.as_ref();
        let opt = |v: Option<f64>| v.map_or("—".to_string(), html::short);
        let _ = write!(
            out,
            "<tr><td>{name}</td><td><code>{}</code></td><td>{:.3}</td><td>{:.1}%</td><td>{}</td>\
             <td>{:.1} of {:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.layout.to_string()),
            e.step_time_s,
            e.mfu * 100.0,
            html::short(e.tokens_per_s),
            e.memory.total_bytes / 1e9,
            e.memory.capacity_bytes / 1e9,
            opt(budget.map(|b| b.days)),
            opt(budget.map(|b| b.accelerator_hours)),
            opt(budget.and_then(|b| b.energy_kwh).map(|k| k / 1000.0)),
            opt(budget.and_then(|b| b.cost)),
        );
        let t = &e.time;
        time_rows.push((
            setup.accelerator.id.clone(),
            vec![
                ("compute", t.compute_s),
                ("recompute", t.recompute_s),
                (
                    "tensor/context/expert comm",
                    t.tp_comm_s + t.cp_comm_s + t.ep_comm_s,
                ),
                ("pipeline send + bubble", t.pp_p2p_s + t.pp_bubble_s),
                ("data-parallel comm (exposed)", t.dp_comm_exposed_s),
                ("optimizer", t.optimizer_s),
            ],
        ));
        let m = &e.memory;
        memory_rows.push(html::gigabytes(
            &setup.accelerator.id,
            &[
                ("weights", m.weights_bytes),
                ("gradients", m.gradients_bytes),
                ("optimizer", m.optimizer_bytes),
                ("activations", m.activations_bytes),
                ("buffers", m.buffers_bytes),
            ],
        ));
    }
    out.push_str(
        "</tbody></table></div><p class=\"hint\">Energy counts accelerators at TDP only. The \
         model's measured error per vendor is in docs/validation-training.md.</p>",
    );
    out.push_str(&html::stacked_bars("Step time breakdown", "s", &time_rows));
    out.push_str(&html::stacked_bars("Memory per device", "GB", &memory_rows));
    out.push_str("</section>");
    out
}

/// `GET /console/planner`: the form, and the plan when the query has one.
pub async fn page(page: form::FormPage<PlanForm>) -> Response {
    render(&page.catalog, &page.caller, page.submitted, page.form).await
}

/// `POST /console/planner`: the same, from the form (which may carry a config.json).
pub async fn post(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let given = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map_or("", |(_, v)| v.as_str());
    let caller = match console.form_caller(&headers, given).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let catalog = console.catalog.clone();
    render(
        &catalog,
        &caller,
        form::submitted(&pairs),
        form::read(pairs),
    )
    .await
}

async fn render(catalog: &Catalog, caller: &Caller, submitted: bool, form: PlanForm) -> Response {
    let mut body = form_html(catalog, &form, &html::csrf_field(caller));
    let mut status = StatusCode::OK;
    if submitted {
        match setups(catalog, &form) {
            Err(problem) => {
                status = StatusCode::BAD_REQUEST;
                body.push_str(&html::alert(&problem));
            }
            Ok(setups) => {
                let _permit = PLANNING.acquire().await.expect("never closed");
                let (setups, estimates) = tokio::task::spawn_blocking(move || {
                    let estimates = plan(&setups);
                    (setups, estimates)
                })
                .await
                .expect("the planner does not panic");
                body.push_str(&results_html(&setups, &estimates));
            }
        }
    }
    (
        status,
        html::page("Planner", Some(caller), "planner", &body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(count: &str) -> PlanForm {
        PlanForm {
            model: "llama-3.1-8b".into(),
            accelerators: vec!["h100-sxm5-80gb".into(), "mi300x".into()],
            count: count.into(),
            ..PlanForm::default()
        }
    }

    #[test]
    fn a_pasted_config_replaces_the_model() {
        // Llama 3.1 8B's config.json as published on Hugging Face (meta-llama/Llama-3.1-8B).
        let mut f = form("8");
        f.hf_config = r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
            "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 128256,
            "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
            "tie_word_embeddings": false}"#
            .into();
        let from_config = setups(&Catalog::builtin(), &f).unwrap();
        let from_catalog = setups(&Catalog::builtin(), &form("8")).unwrap();
        let shape = |s: &TrainSetup| (s.model.layers, s.model.hidden);
        assert_eq!(shape(&from_config[0]), shape(&from_catalog[0]));
        f.hf_config = "{\"model_type\": \"llama\"}".into();
        assert!(
            setups(&Catalog::builtin(), &f)
                .unwrap_err()
                .to_string()
                .starts_with("config.json:")
        );
        f.hf_config = "x".repeat(MAX_CONFIG_BYTES + 1);
        assert!(
            setups(&Catalog::builtin(), &f)
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
    }

    #[test]
    fn an_empty_batch_takes_the_planners_default_like_plan_train() {
        // Llama 3.1 8B at 4096 tokens: next to GPT-3 6.7B's published 2M-token batch (Brown et
        // al. 2020, Table 2.1), 512 sequences, which 64 accelerators divide; not the old 1024.
        let chosen = setups(&Catalog::builtin(), &form("64")).unwrap();
        let catalog = Catalog::builtin();
        let model = catalog.model("llama-3.1-8b").unwrap();
        let default = suanli_perf::goal::default_global_batch(model, 64, 4096).sequences;
        assert_eq!(default, 512);
        assert!(chosen.iter().all(|s| s.global_batch == default));
        let mut given = form("64");
        given.global_batch = "1024".into();
        assert!(
            setups(&Catalog::builtin(), &given)
                .unwrap()
                .iter()
                .all(|s| s.global_batch == 1024)
        );
    }

    #[test]
    fn bad_input_is_refused_in_one_line() {
        assert!(
            setups(&Catalog::builtin(), &form("0"))
                .unwrap_err()
                .to_string()
                .contains("from 1 to")
        );
        assert!(setups(&Catalog::builtin(), &form("1e9")).is_err());
        let mut f = form("8");
        f.tokens = "NaN".into();
        assert!(
            setups(&Catalog::builtin(), &f)
                .unwrap_err()
                .to_string()
                .starts_with("tokens:")
        );
        f.tokens.clear();
        f.model = "no-such-model".into();
        assert!(setups(&Catalog::builtin(), &f).is_err());
    }

    #[test]
    fn capacities_are_the_published_memory_and_the_plan_fits() {
        let estimates = plan(&setups(&Catalog::builtin(), &form("8")).unwrap());
        let h100 = estimates[0].as_ref().unwrap();
        let mi300x = estimates[1].as_ref().unwrap();
        // Capacities as published: H100 SXM5 80 GB, MI300X 192 GB.
        assert!((h100.memory.capacity_bytes / 1e9 - 80.0).abs() < 2.0);
        assert!((mi300x.memory.capacity_bytes / 1e9 - 192.0).abs() < 2.0);
        assert!(h100.memory.total_bytes <= h100.memory.capacity_bytes);
    }
}
