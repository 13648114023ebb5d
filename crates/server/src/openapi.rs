//! `/openapi.json`: a hand-written OpenAPI 3.1 description of the API (no generator dependency;
//! `tests/api.rs` checks that every route is listed).

use axum::Json;
use serde_json::{Value, json};

/// Every documented route as (method, path, summary).
pub const ROUTES: &[(&str, &str, &str)] = &[
    (
        "get",
        "/healthz",
        "Liveness; the only unauthenticated route",
    ),
    ("get", "/metrics", "Prometheus metrics"),
    ("get", "/openapi.json", "This document"),
    (
        "get",
        "/api/v1/whoami",
        "The caller's user, role and tenant",
    ),
    ("get", "/api/v1/tenants", "Tenants the caller can see"),
    ("post", "/api/v1/tenants", "Create a tenant (admin)"),
    ("get", "/api/v1/users", "Users the caller can see"),
    (
        "delete",
        "/api/v1/tenants/{name}",
        "Delete a tenant without users or active jobs (admin)",
    ),
    (
        "delete",
        "/api/v1/users/{name}",
        "Delete a user and revoke their tokens (admin, or tenant-admin in their tenant)",
    ),
    (
        "post",
        "/api/v1/users",
        "Create a user (admin, or tenant-admin in their tenant)",
    ),
    (
        "get",
        "/api/v1/tokens",
        "Tokens the caller can manage (hashes never shown)",
    ),
    (
        "post",
        "/api/v1/tokens",
        "Create a token; the secret is returned once",
    ),
    ("delete", "/api/v1/tokens/{id}", "Revoke a token"),
    (
        "get",
        "/api/v1/quotas",
        "Quotas of the tenants the caller can see",
    ),
    (
        "put",
        "/api/v1/quotas",
        "Set a tenant's quota for an accelerator type (admin)",
    ),
    ("get", "/api/v1/nodes", "Nodes and their free accelerators"),
    (
        "post",
        "/api/v1/nodes/{pool}/down",
        "Mark a pool's node failed: its jobs are requeued (admin)",
    ),
    (
        "post",
        "/api/v1/nodes/{pool}/up",
        "Return a failed node to service (admin)",
    ),
    (
        "get",
        "/api/v1/jobs",
        "Jobs of the caller's tenant (all for an admin); ?tenant=&state=&after=&limit= (a full page has x-suanli-next-after)",
    ),
    ("post", "/api/v1/jobs", "Submit a job"),
    (
        "get",
        "/api/v1/jobs/{id}",
        "One job, with the reason it waits or how it ended",
    ),
    (
        "post",
        "/api/v1/jobs/{id}/cancel",
        "Cancel a job (kills its process group)",
    ),
    (
        "get",
        "/api/v1/jobs/{id}/logs",
        "A run's output; ?attempt=&offset=",
    ),
    ("get", "/api/v1/audit", "The audit log (admin)"),
    (
        "get",
        "/api/v1/audit/verify",
        "Check the audit hash chain (admin)",
    ),
    // Artefacts (issue 17; docs/artifacts.md).
    ("get", "/api/v1/artifacts", "Artefacts the caller may read"),
    (
        "get",
        "/api/v1/artifacts/{tenant}/{name}",
        "An artefact's versions and files",
    ),
    (
        "delete",
        "/api/v1/artifacts/{tenant}/{name}",
        "Delete an artefact (member of its tenant)",
    ),
    (
        "post",
        "/api/v1/artifacts/{tenant}/{name}/versions",
        "Start a new partial version",
    ),
    (
        "get",
        "/api/v1/artifacts/{tenant}/{name}/versions/{version}",
        "A version's manifest (number, latest or sha256:PREFIX)",
    ),
    (
        "delete",
        "/api/v1/artifacts/{tenant}/{name}/versions/{version}",
        "Delete a version",
    ),
    (
        "get",
        "/api/v1/artifacts/{tenant}/{name}/versions/{version}/files",
        "Stream a file (?path=), decrypted and SHA-256-checked",
    ),
    (
        "put",
        "/api/v1/artifacts/{tenant}/{name}/versions/{version}/files",
        "Stream a file (?path=) into a partial version, encrypted",
    ),
    (
        "post",
        "/api/v1/artifacts/{tenant}/{name}/versions/{version}/commit",
        "Make a version complete",
    ),
    (
        "post",
        "/api/v1/artifacts/{tenant}/{name}/share",
        "Share read-only with a tenant or everyone (tenant-admin)",
    ),
    (
        "post",
        "/api/v1/artifacts/{tenant}/{name}/unshare",
        "Take back a share (tenant-admin)",
    ),
    (
        "post",
        "/api/v1/artifacts/{tenant}/{name}/retain",
        "Keep the newest N versions; delete abandoned partial ones",
    ),
];

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary) in ROUTES {
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path items are objects");
        let mut operation = json!({
            "summary": summary,
            "responses": {
                "200": { "description": "OK (201 Created for creations)" },
                "400": { "description": "Bad request", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                "401": { "description": "Missing, invalid, expired or revoked token" },
                "403": { "description": "The caller's role or tenant does not allow this" },
                "404": { "description": "Not found" }
            }
        });
        let parameters: Vec<Value> = ["id", "pool", "tenant", "name", "version"]
            .iter()
            .filter(|name| path.contains(&format!("{{{name}}}")))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = json!(parameters);
        }
        if *path == "/api/v1/jobs" && *method == "post" {
            operation["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/JobSubmit" } } } });
        }
        if *path == "/healthz" {
            operation["security"] = json!([]);
        }
        entry.insert(method.to_string(), operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "suanli control plane", "version": env!("CARGO_PKG_VERSION") },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "string" } } },
                "JobSubmit": {
                    "type": "object",
                    "required": ["command"],
                    "properties": {
                        "name": { "type": "string" },
                        "tenant": { "type": "string" },
                        "command": { "type": "array", "items": { "type": "string" } },
                        "env": { "type": "object", "additionalProperties": { "type": "string" } },
                        "gpus": { "type": "integer", "minimum": 1, "default": 1 },
                        "processes": { "type": "integer", "minimum": 1, "default": 1 },
                        "accelerators": { "type": "array", "items": { "type": "string" } },
                        "priority": { "type": "integer", "default": 0 },
                        "checkpoint_dir": { "type": "string" },
                        "max_restarts": { "type": "integer", "minimum": 0, "default": 0 },
                        "goal": {
                            "type": "object",
                            "description": "Train `model` on `tokens` tokens: the planner estimates the run time per allowed type, which the scheduler then uses",
                            "required": ["model", "tokens"],
                            "properties": { "model": { "type": "string" }, "tokens": { "type": "number" } }
                        }
                    }
                }
            }
        }
    })
}

/// Serves the document.
pub async fn openapi() -> Json<Value> {
    Json(document())
}
