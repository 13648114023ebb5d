//! The console's planners use the server's catalog (`suanli serve` with `SUANLI_CATALOG`), not
//! only the built-in one: a user's model is offered on both planner pages and can be planned.

mod common;

use common::{TestServer, unique_dir};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};

/// A user's model, the shape of GPT-2 XL (Radford et al. 2019, Table 2: 48 layers, d_model 1600,
/// 25 heads, 50,257-token vocabulary).
const MINE: &str = r#"
[[model]]
id = "my-gpt2-xl"
name = "My GPT-2 XL"
params_b_reported = 1.5
layers = 48
hidden = 1600
heads = 25
kv_heads = 25
ffn = 6400
vocab = 50257
mlp = "gelu"
tied_embeddings = true
learned_positions = true
max_seq_len = 1024
source = "Radford et al. 2019, Table 2"
"#;

/// The value of cookie `name` among the response's `Set-Cookie` headers.
fn set_cookie(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
        .to_string()
}

/// Signs in through the console's form and returns the session cookie header.
async fn sign_in(server: &TestServer, token: &str) -> String {
    let page = server
        .http
        .get(format!("{}/console/login", server.url))
        .send()
        .await
        .unwrap();
    let csrf = set_cookie(page.headers(), "suanli_login");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = client
        .post(format!("{}/console/login", server.url))
        .header(COOKIE, format!("suanli_login={csrf}"))
        .form(&[("csrf", csrf.as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    assert!(
        signed_in.status().is_redirection(),
        "{}",
        signed_in.status()
    );
    format!(
        "suanli_session={}",
        set_cookie(signed_in.headers(), "suanli_session")
    )
}

async fn page(server: &TestServer, session: &str, path: &str) -> (StatusCode, String) {
    let response = server
        .http
        .get(format!("{}{path}", server.url))
        .header(COOKIE, session)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_planners_offer_and_plan_the_servers_own_models() {
    let mut catalog = suanli_catalog::Catalog::builtin();
    catalog.merge_toml(MINE, "mine.toml").unwrap();
    let server = TestServer::start_config(suanli_server::ServerConfig {
        data_dir: unique_dir("suanli-console-catalog"),
        devices: Some("h100-sxm5-80gb:8".into()),
        policy: "fifo".into(),
        catalog: Some(catalog),
        ..Default::default()
    })
    .await;
    let member = server.user("lab", "ada", "member").await;
    let session = sign_in(&server, &member).await;

    for path in ["/console/planner", "/console/planner/serving"] {
        let (status, body) = page(&server, &session, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(
            body.contains("value=\"my-gpt2-xl\""),
            "{path} does not offer the server's model"
        );
    }
    // Planned, not just listed: 1.5B parameters on one H100 (a model the built-in catalog lacks).
    let (status, body) = page(
        &server,
        &session,
        "/console/planner/serving?model=my-gpt2-xl&accelerator=h100-sxm5-80gb&input_len=512&output_len=128",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("serve-results"),
        "no serving plan in the page"
    );
    assert!(!body.contains("unknown model"), "the model was not found");
    server.stop().await;
}
