//! The generated `/openapi.json` against the real router: every documented operation is served,
//! every other method on a documented path is refused with 405, and every `.route(..)` the
//! router's source registers is documented.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// A concrete URL for a templated path; names that exist nowhere, so changes are refused.
fn concrete(path: &str) -> String {
    path.replace("{id}", "987654")
        .replace("{pool}", "no-such-pool")
        .replace("{tenant}", "no-such-tenant")
        .replace("{name}", "no-such-name")
        .replace("{version}", "1")
}

/// The operations the served `/openapi.json` lists.
async fn documented(server: &TestServer) -> BTreeSet<(String, String)> {
    let document = server
        .ok(Method::GET, "/openapi.json", &server.admin, None)
        .await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    // Refusals are `{"error": "..."}` (`ErrorBody`); typed bodies are described, not bare.
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["Error"]["required"][0], "error",
        "{}",
        schemas["Error"]
    );
    for shared in [
        "NodeRow",
        "NewUser",
        "ManifestView",
        "ArtifactSummary",
        "Submit",
    ] {
        assert!(
            schemas[shared].is_object(),
            "{shared} missing from the document"
        );
    }
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                assert!(
                    operation["summary"].is_string(),
                    "{method} {path}: no summary"
                );
                assert!(operation["responses"]["401"].is_object() || path == "/healthz");
                operations.insert((method.to_string(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_no_other_method_is() {
    let server = TestServer::start("h100:1").await;
    let operations = documented(&server).await;
    assert_eq!(
        operations,
        suanli_server::openapi::routes().into_iter().collect(),
        "served document differs from openapi::routes()"
    );
    assert!(operations.len() >= 38, "{} operations", operations.len());
    let paths: BTreeSet<&String> = operations.iter().map(|(_, path)| path).collect();
    let mut checked = 0;
    for path in paths {
        let url = concrete(path);
        for method in METHODS {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method != "get" && method != "delete").then(|| json!({}));
            let (status, value) = server.call(verb, &url, Some(&server.admin), body).await;
            if operations.contains(&(method.to_string(), path.clone())) {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {url}");
                // A 404 must be a handler's "not found" answer, not the router's empty one.
                if status == StatusCode::NOT_FOUND {
                    assert!(
                        value["error"].is_string(),
                        "{method} {url}: router 404 {value}"
                    );
                }
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {url} is served but not documented: {value}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 25 * METHODS.len());
    // Control: a path the router does not have is the router's empty 404.
    let (status, value) = server
        .call(
            Method::GET,
            "/api/v1/no-such-route",
            Some(&server.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(value, Value::String(String::new()));
}

/// The path of every `.route(` call in a router's source, with `format!` templates expanded.
fn source_routes(source: &str, prefix: &str, base: &str) -> Vec<String> {
    let mut routes = Vec::new();
    for chunk in source.split(".route(").skip(1) {
        let argument = chunk.trim_start();
        let path = if argument.starts_with("base") {
            base.to_string()
        } else {
            let start = argument.find('"').expect("a route path literal") + 1;
            let end = start + argument[start..].find('"').unwrap();
            argument[start..end]
                .replace("{base}", base)
                .replace("{{", "{")
                .replace("}}", "}")
        };
        let outer = ["/healthz", "/metrics", "/openapi.json"].contains(&path.as_str());
        routes.push(if outer {
            path
        } else {
            format!("{prefix}{path}")
        });
    }
    routes
}

#[test]
fn every_route_in_the_router_source_is_documented() {
    let documented: BTreeSet<String> = suanli_server::openapi::routes()
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    let mut routes = source_routes(include_str!("../src/api/mod.rs"), "/api/v1", "");
    routes.extend(source_routes(
        include_str!("../src/artifacts/api.rs"),
        "/api/v1",
        "/artifacts/{tenant}/{name}",
    ));
    assert!(routes.len() >= 25, "{routes:?}");
    let registered: BTreeSet<String> = routes.into_iter().collect();
    assert_eq!(registered, documented);
}

/// Every `$ref` in `value`, recursively.
fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

#[test]
fn every_reference_in_the_document_resolves() {
    let document = serde_json::to_value(suanli_server::openapi::document()).unwrap();
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(found.len() >= 20, "{} references", found.len());
    for target in found {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(
            document.pointer(pointer).is_some(),
            "{target} resolves to nothing"
        );
    }
}
