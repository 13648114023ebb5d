//! Shared by the examples that drive a real server over HTTP (`load`, `slurm_bench`).

use std::path::Path;
use std::time::Duration;

use serde_json::json;

/// Waits for the server at `url` to answer `/healthz`, reads the admin token from its data
/// directory and creates `tenant`; returns the client and the token.
pub async fn admin_with_tenant(
    url: &str,
    data_dir: &Path,
    tenant: &str,
) -> (reqwest::Client, String) {
    let http = reqwest::Client::new();
    while http.get(format!("{url}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = std::fs::read_to_string(data_dir.join("admin-token"))
        .expect("the server writes its admin token")
        .trim()
        .to_string();
    http.post(format!("{url}/api/v1/tenants"))
        .bearer_auth(&token)
        .json(&json!({ "name": tenant }))
        .send()
        .await
        .expect("the tenant is created");
    (http, token)
}
