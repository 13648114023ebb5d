//! The planner and simulation forms read from their (name, value) pairs by serde, so each form
//! is its struct and nothing more: a field keeps its value (the last, if named twice), a group
//! of checkboxes sharing one name is a `Vec<String>` marked `deserialize_with = "form::all"`,
//! names the struct does not have (the CSRF token) are ignored and missing ones are empty.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::{Map, Value};

use super::{Caller, Console};

/// A page with a GET form (the planners, the simulations): the signed-in caller, the form from
/// the query string, and whether it was submitted. Without a session: a redirect to sign in.
pub struct FormPage<T> {
    pub caller: Caller,
    pub form: T,
    pub submitted: bool,
    /// The server's catalog (the planners offer its models and accelerators).
    pub catalog: std::sync::Arc<suanli_catalog::Catalog>,
}

impl<T: DeserializeOwned + Default + Send> FromRequestParts<Console> for FormPage<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let caller = console.caller(&parts.headers).await?;
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, console)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(FormPage {
            caller,
            catalog: console.catalog.clone(),
            submitted: submitted(&pairs),
            form: read(pairs),
        })
    }
}

/// Whether the pairs are a submitted form, not just the page asked for.
pub fn submitted(pairs: &[(String, String)]) -> bool {
    pairs.iter().any(|(name, _)| name != "csrf")
}

/// The form `T` from its pairs.
pub fn read<T: DeserializeOwned + Default>(pairs: Vec<(String, String)>) -> T {
    let mut fields: Map<String, Value> = Map::new();
    for (name, value) in pairs {
        let value = Value::String(value);
        match fields.get_mut(&name) {
            None => {
                fields.insert(name, value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    serde_json::from_value(Value::Object(fields.clone())).unwrap_or_else(|_| {
        // A text field named twice (only a hand-made URL does that): its last value.
        for value in fields.values_mut() {
            if let Value::Array(values) = value {
                *value = values.pop().unwrap_or_default();
            }
        }
        serde_json::from_value(Value::Object(fields)).unwrap_or_default()
    })
}

/// Every value of a field that may repeat (checkboxes), in order.
pub fn all<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(value) => vec![value],
        OneOrMany::Many(values) => values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Form {
        model: String,
        #[serde(rename = "accelerator", deserialize_with = "all")]
        accelerators: Vec<String>,
        count: String,
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fields_checkbox_groups_and_strangers() {
        let form: Form = read(pairs(&[
            ("model", "llama-3.1-8b"),
            ("accelerator", "h100"),
            ("csrf", "x"),
            ("accelerator", "mi300x"),
        ]));
        assert_eq!(
            form,
            Form {
                model: "llama-3.1-8b".into(),
                accelerators: vec!["h100".into(), "mi300x".into()],
                count: String::new(),
            }
        );
        let one: Form = read(pairs(&[("accelerator", "h100")]));
        assert_eq!(one.accelerators, vec!["h100".to_string()]);
        let twice: Form = read(pairs(&[("count", "8"), ("count", "16"), ("model", "m")]));
        assert_eq!((twice.count.as_str(), twice.model.as_str()), ("16", "m"));
    }
}

/// What is wrong with a console form, shown above it; the planners and simulations also pass on
/// the model, planner and simulator errors behind a field.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// A whole-number field out of 1..=max or not a number.
    #[error("{field}: `{text}` must be a whole number from 1 to {max}")]
    WholeNumber {
        field: &'static str,
        text: String,
        max: u64,
    },
    /// A whole-number field its type cannot hold.
    #[error("{field}: `{text}` is not a whole number in range")]
    NotInRange { field: &'static str, text: String },
    /// A positive real field out of (0, max]; `max` as the form prints it.
    #[error("{field}: `{text}` must be a number above 0 and at most {max}")]
    Positive {
        field: &'static str,
        text: String,
        max: String,
    },
    /// A command line ending in `\`.
    #[error("the command ends with a lone backslash")]
    LoneBackslash,
    /// A command line with a quote left open.
    #[error("the command has an unclosed quote")]
    UnclosedQuote,
    /// An empty command line.
    #[error("give a command to run")]
    NoCommand,
    /// A pasted `config.json` over the size limit.
    #[error("config.json: {bytes} bytes; at most {max_bytes}")]
    ConfigTooLarge { bytes: usize, max_bytes: usize },
    /// A pasted `config.json` that is not a usable model.
    #[error("config.json: {0}")]
    HfConfig(#[from] suanli_catalog::HfConfigError),
    /// An unknown model or accelerator.
    #[error(transparent)]
    Catalog(#[from] suanli_catalog::CatalogError),
    /// Too few or too many accelerator types ticked.
    #[error("pick 1 to {max} accelerator types")]
    AcceleratorTypes { max: usize },
    /// An accelerator the serving search cannot price.
    #[error("{0} has no documented price; the search needs one (CLI: --price)")]
    NoPrice(String),
    /// A simulation seed that is not a whole number.
    #[error("seed: a whole number")]
    Seed,
    /// No scheduling policy ticked.
    #[error("pick at least one policy")]
    NoPolicy,
    /// A policy the scheduler does not know.
    #[error("unknown policy `{given}`; choose from {names}")]
    UnknownPolicy { given: String, names: String },
    /// A cluster preset the page does not offer.
    #[error("unknown cluster `{given}`; choose from {names}")]
    UnknownCluster { given: String, names: String },
    /// A workload kind the page does not offer.
    #[error("unknown workload `{0}`")]
    UnknownWorkload(String),
    /// The serving search's own error.
    #[error(transparent)]
    ServeSearch(#[from] suanli_perf::serve_search::SearchError),
    /// A cluster preset that does not load.
    #[error(transparent)]
    Cluster(#[from] suanli_sim::presets::ClusterError),
    /// The built-in trace that does not parse.
    #[error(transparent)]
    Trace(#[from] suanli_sim::trace::TraceError),
    /// A simulation setting that does not parse.
    #[error(transparent)]
    Setting(#[from] suanli_sim::SpecError),
    /// A synthetic workload that does not parse.
    #[error(transparent)]
    Synthetic(#[from] suanli_sim::synthetic::SpecError),
    /// A simulation that panicked or was cancelled.
    #[error("the simulation failed: {0}")]
    Crashed(tokio::task::JoinError),
    /// A simulation that fails, with the policy it ran.
    #[error("{policy}: {error}")]
    Simulation {
        policy: String,
        error: suanli_sim::SimError,
    },
}
