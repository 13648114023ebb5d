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
