//! The web console in a real headless Chromium (Debian's, through chromedriver) against a real
//! server: sign in, submit a job and watch it finish with its logs, cancel another, a viewer
//! refused, at 1280x800 and at a 390-pixel-wide phone viewport. Screenshots go to
//! `target/console-screenshots/`. Skips with a message unless SUANLI_TEST_CHROMIUM is set
//! (`.ci/chromium.sh` sets it); when set, any failure fails.

mod browser;
mod common;

use std::time::Duration;

use browser::{Browser, Driver};
use common::TestServer;
use reqwest::Method;
use serde_json::json;

const DEVICES: &str = "h100:4,mi300x:4";

fn configured(test: &str) -> Option<(String, String)> {
    let found = browser::configured();
    if found.is_none() {
        eprintln!("skipping {test}: SUANLI_TEST_CHROMIUM is not set (source .ci/chromium.sh)");
    }
    found
}

async fn sign_in(browser: &Browser, url: &str, token: &str) {
    browser.goto(&format!("{url}/")).await;
    assert!(
        browser.url().await.ends_with("/console/login"),
        "an anonymous visitor is sent to sign in"
    );
    browser.type_into("#token", token).await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for(
            "the cluster page",
            "return location.pathname === '/console/cluster';",
            Duration::from_secs(10),
        )
        .await;
}

/// A tenant `ml` with a member, a viewer and quotas; returns (member, viewer) tokens.
async fn tenant(server: &TestServer) -> (String, String) {
    let member = server.user("ml", "alice", "member").await;
    let viewer = server.user("ml", "victor", "viewer").await;
    for (accelerator, limit) in [("h100", 4), ("mi300x", 2)] {
        server.set_quota("ml", accelerator, limit).await;
    }
    (member, viewer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_submits_watches_logs_and_cancels() {
    let Some((chromium, driver)) = configured("member_submits_watches_logs_and_cancels") else {
        return;
    };
    let server = TestServer::start(DEVICES).await;
    let (member, _) = tenant(&server).await;
    let driver = Driver::start(&driver).await;
    let browser = driver.browser(&chromium, false).await;

    browser.goto(&format!("{}/console/login", server.url)).await;
    browser.check_basics().await;
    browser.screenshot("desktop-01-sign-in").await;
    // A wrong token is refused with a message, not a session.
    browser.type_into("#token", "suanli_not-a-token").await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for_text("main", "That token was refused", Duration::from_secs(20))
        .await;
    sign_in(&browser, &server.url, &member).await;
    assert_eq!(
        browser
            .script("return [window.innerWidth, window.innerHeight];")
            .await,
        json!([1280, 800])
    );

    // Submit a job through the form and watch it finish with its log streamed in.
    browser.click("a[href='/console/jobs']").await;
    browser.click("a[href='/console/jobs/new']").await;
    browser.check_basics().await;
    browser.type_into("#name", "count-<b>3</b>").await;
    browser
        .type_into(
            "#command",
            "sh -c 'for i in 1 2 3; do echo step $i; sleep 1; done; echo done'",
        )
        .await;
    browser.type_into("#gpus", "2").await;
    browser.type_into("#accelerator", "h100").await;
    browser.screenshot("desktop-02-submit").await;
    browser.click("form.card button[type=submit]").await;
    browser
        .wait_for(
            "the job page",
            "return /^\\/console\\/jobs\\/\\d+$/.test(location.pathname);",
            Duration::from_secs(10),
        )
        .await;
    browser.check_basics().await;
    // The name is shown as text, never as markup.
    assert!(browser.title().await.contains("count-<b>3</b>"));
    assert_eq!(browser.find_all("main b").await.len(), 0);
    browser
        .wait_for(
            "the log to stream until the job ends",
            "const l = document.getElementById('log');\
             return !!l && l.dataset.ended === 'succeeded' && l.dataset.state === 'succeeded';",
            Duration::from_secs(30),
        )
        .await;
    let log = browser.text("#log").await;
    assert!(log.contains("step 1\nstep 2\nstep 3\ndone"), "log: {log:?}");
    assert_eq!(browser.text("#job-state").await, "succeeded");
    let main = browser.text("main").await;
    assert!(main.contains("h100-sxm5-80gb), devices"), "{main}");
    browser.screenshot("desktop-03-job-succeeded").await;

    // Cancel a long job from its page.
    let long = server
        .submit(
            &member,
            json!({ "name": "long", "command": ["sleep", "600"] }),
        )
        .await;
    server.wait_state(&member, long, "running").await;
    browser
        .goto(&format!("{}/console/jobs/{long}", server.url))
        .await;
    browser.click("#cancel").await;
    server.wait_state(&member, long, "cancelled").await;
    browser
        .goto(&format!("{}/console/jobs/{long}", server.url))
        .await;
    assert_eq!(browser.text("#job-state").await, "cancelled");
    assert!(browser.find_all("#cancel").await.is_empty());
    browser.screenshot("desktop-04-job-cancelled").await;

    // The list, filtered by state, and the cluster page with its charts.
    browser
        .goto(&format!("{}/console/jobs?state=succeeded", server.url))
        .await;
    browser.check_basics().await;
    let rows = browser.text("#jobs tbody").await;
    assert!(
        rows.contains("count-<b>3</b>") && !rows.contains("long"),
        "{rows}"
    );
    browser.screenshot("desktop-05-jobs").await;
    browser
        .goto(&format!("{}/console/cluster", server.url))
        .await;
    browser.check_basics().await;
    let main = browser.text("main").await;
    assert!(main.contains("h100") && main.contains("mi300x") && main.contains("Queue length"));
    browser.screenshot("desktop-06-cluster").await;
    for page in ["tenants", "nodes"] {
        browser
            .goto(&format!("{}/console/{page}", server.url))
            .await;
        browser.check_basics().await;
    }
    // A member has no audit page: the API refuses it.
    browser.goto(&format!("{}/console/audit", server.url)).await;
    assert!(browser.text("main").await.contains("forbidden"));
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_sees_no_cancel_and_a_forged_cancel_is_refused() {
    let Some((chromium, driver)) =
        configured("viewer_sees_no_cancel_and_a_forged_cancel_is_refused")
    else {
        return;
    };
    let server = TestServer::start(DEVICES).await;
    let (member, viewer) = tenant(&server).await;
    let job = server
        .submit(
            &member,
            json!({ "name": "keep", "command": ["sleep", "600"] }),
        )
        .await;
    server.wait_state(&member, job, "running").await;
    let driver = Driver::start(&driver).await;
    let browser = driver.browser(&chromium, false).await;
    sign_in(&browser, &server.url, &viewer).await;
    browser
        .goto(&format!("{}/console/jobs/{job}", server.url))
        .await;
    assert_eq!(browser.text("#job-state").await, "running");
    assert!(
        browser.find_all("#cancel").await.is_empty(),
        "a viewer has no cancel button"
    );
    // Post the cancel form anyway, with the session's own CSRF token: the API refuses.
    browser
        .script(&format!(
            "const f = document.createElement('form'); f.method = 'post';\
             f.action = '/console/jobs/{job}/cancel';\
             const c = document.querySelector('input[name=csrf]').cloneNode();\
             f.append(c); document.body.append(f); f.submit(); return true;"
        ))
        .await;
    browser
        .wait_for(
            "the refusal",
            "return document.title.startsWith('Refused');",
            Duration::from_secs(10),
        )
        .await;
    let main = browser.text("main").await;
    assert!(main.contains("forbidden") && main.contains("403"), "{main}");
    browser.screenshot("desktop-07-viewer-refused").await;
    assert_eq!(server.job(&member, job).await["state"], "running");
    // A form without the CSRF token is refused before the API is asked.
    let status = browser
        .script(&format!(
            "const r = new XMLHttpRequest(); r.open('POST', '/console/jobs/{job}/cancel', false);\
             r.setRequestHeader('content-type', 'application/x-www-form-urlencoded');\
             r.send('csrf=forged'); return r.status;"
        ))
        .await;
    assert_eq!(status, json!(403));
    // The admin sees the attempt in a verified audit chain.
    browser.close().await;
    let browser = driver.browser(&chromium, false).await;
    sign_in(&browser, &server.url, &server.admin).await;
    browser.goto(&format!("{}/console/audit", server.url)).await;
    browser.check_basics().await;
    assert!(browser.text("#chain").await.starts_with("Chain verified"));
    let main = browser.text("main").await;
    assert!(main.contains("victor") && main.contains(&format!("/api/v1/jobs/{job}/cancel")));
    browser.screenshot("desktop-08-audit").await;
    // The admin marks a node down and up again from the nodes page.
    browser.goto(&format!("{}/console/nodes", server.url)).await;
    browser.check_basics().await;
    browser.click("form[action$='/down'] button").await;
    browser
        .wait_for(
            "the pool to be down",
            "return document.body.innerText.includes('Mark up');",
            Duration::from_secs(10),
        )
        .await;
    let nodes = server
        .ok(Method::GET, "/api/v1/nodes", &server.admin, None)
        .await;
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["state"] == "down"),
        "{nodes}"
    );
    browser.screenshot("desktop-09-node-down").await;
    browser.click("form[action$='/up'] button").await;
    browser
        .wait_for(
            "the pool to be up",
            "return !document.body.innerText.includes('Mark up');",
            Duration::from_secs(10),
        )
        .await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_fits_a_phone() {
    let Some((chromium, driver)) = configured("console_fits_a_phone") else {
        return;
    };
    let server = TestServer::start(DEVICES).await;
    let (member, _) = tenant(&server).await;
    let job = server
        .submit(
            &member,
            json!({ "name": "hello", "command": ["echo", "hello from rank 0"] }),
        )
        .await;
    server.wait_state(&member, job, "succeeded").await;
    let driver = Driver::start(&driver).await;
    let browser = driver.browser(&chromium, true).await;
    sign_in(&browser, &server.url, &member).await;
    assert_eq!(
        browser.script("return window.innerWidth;").await,
        json!(390)
    );
    let pages = [
        ("cluster", "/console/cluster".to_string()),
        ("jobs", "/console/jobs".to_string()),
        ("job", format!("/console/jobs/{job}")),
        ("submit", "/console/jobs/new".to_string()),
        ("tenants", "/console/tenants".to_string()),
        (
            "planner",
            "/console/planner?model=llama-3.1-8b&accelerator=h100-sxm5-80gb&count=8".to_string(),
        ),
        (
            "simulations",
            "/console/simulations?workload=gavel-trace&jobs=50&policy=fifo".to_string(),
        ),
    ];
    for (name, path) in pages {
        browser.goto(&format!("{}{path}", server.url)).await;
        browser.check_basics().await;
        assert!(browser.fits_width().await, "{path} is wider than the phone");
        if name == "job" {
            assert!(browser.text("#log").await.contains("hello from rank 0"));
        }
        browser.screenshot(&format!("phone-{name}")).await;
    }
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_simulation_in_the_browser() {
    let Some((chromium, driver)) = configured("plan_and_simulation_in_the_browser") else {
        return;
    };
    let server = TestServer::start(DEVICES).await;
    let (member, _) = tenant(&server).await;
    let driver = Driver::start(&driver).await;
    let browser = driver.browser(&chromium, false).await;
    sign_in(&browser, &server.url, &member).await;

    // The same training plan on H100 and MI300X, side by side.
    browser.click("a[href='/console/planner']").await;
    browser.check_basics().await;
    browser.type_into("#count", "64").await;
    browser.type_into("#tokens", "1e12").await;
    browser.type_into("#price_per_hour", "2.5").await;
    browser.click("#train-plan button[type=submit]").await;
    browser
        .wait_for(
            "the plan",
            "return !!document.getElementById('plan-results');",
            Duration::from_secs(60),
        )
        .await;
    browser.check_basics().await;
    let rows = browser
        .script("return [...document.querySelectorAll('#plan-results tbody tr')].map(r => r.innerText);")
        .await;
    let rows: Vec<String> = serde_json::from_value(rows).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("H100") && rows[1].contains("MI300X"),
        "{rows:?}"
    );
    // Both fit and both have a step time, days and a cost.
    for row in &rows {
        assert!(row.contains("tp=") && !row.contains('—'), "{row}");
    }
    assert_eq!(browser.find_all("#plan-results svg.chart").await.len(), 2);
    browser.screenshot("desktop-10-planner").await;
    // Nonsense is refused with one line.
    browser.type_into("#count", "-3").await;
    browser.click("#train-plan button[type=submit]").await;
    browser
        .wait_for(
            "the refusal",
            "return !!document.querySelector('p.error');",
            Duration::from_secs(10),
        )
        .await;
    assert!(
        browser
            .text("p.error")
            .await
            .starts_with("accelerators: `-3`")
    );
    // A Hugging Face config.json chosen with the file input replaces the catalog model.
    let config = common::unique_dir("suanli-config").with_extension("json");
    std::fs::write(
        &config,
        r#"{"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
            "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
            "vocab_size": 128256, "max_position_embeddings": 131072, "tie_word_embeddings": true}"#,
    )
    .unwrap();
    browser.type_into("#count", "8").await;
    browser.send_file("#hf_file", &config).await;
    browser
        .wait_for(
            "the file to be read",
            "return document.getElementById('hf_config').value.includes('num_hidden_layers');",
            Duration::from_secs(10),
        )
        .await;
    browser.click("#train-plan button[type=submit]").await;
    browser
        .wait_for(
            "the plan of the uploaded model",
            "return !!document.getElementById('plan-results');",
            Duration::from_secs(60),
        )
        .await;
    let first = browser.text("#plan-results tbody tr").await;
    assert!(first.contains("tp=") && first.contains("H100"), "{first}");
    assert_eq!(browser.text("#plan-model").await, "Model: your-config.json");
    let _ = std::fs::remove_file(&config);

    // The same model served on both types.
    browser.click("a[href='/console/planner/serving']").await;
    browser.check_basics().await;
    browser.type_into("#rate", "10").await;
    browser.click("#serve-plan button[type=submit]").await;
    browser
        .wait_for(
            "the serving plan",
            "return !!document.getElementById('serve-results');",
            Duration::from_secs(60),
        )
        .await;
    let rows = browser
        .script("return [...document.querySelectorAll('#serve-results tbody tr')].map(r => r.cells.length);")
        .await;
    assert_eq!(
        rows,
        json!([7, 7]),
        "both types fit: {}",
        browser.text("#serve-results").await
    );
    // The deployment search: each type's cheapest deployment meets both targets.
    let deployments = browser
        .script(
            "return [...document.querySelectorAll('#slo-results tbody tr')]\
             .map(r => [...r.cells].map(c => c.innerText));",
        )
        .await;
    let deployments: Vec<Vec<String>> = serde_json::from_value(deployments).unwrap();
    assert!(!deployments.is_empty());
    for row in deployments.iter().filter(|r| r.len() == 8) {
        let ttft_ms: f64 = row[4].parse().unwrap();
        let tpot_ms: f64 = row[5].parse().unwrap();
        assert!(ttft_ms <= 500.0 && tpot_ms <= 50.0, "{row:?}");
    }
    browser.screenshot("desktop-11-serving-planner").await;

    // Three policies on the Gavel trace.
    browser.click("a[href='/console/simulations']").await;
    browser.check_basics().await;
    browser.type_into("#jobs", "200").await;
    browser.click("#sim-form button[type=submit]").await;
    browser
        .wait_for(
            "the simulation",
            "return !!document.getElementById('sim-results');",
            Duration::from_secs(120),
        )
        .await;
    browser.check_basics().await;
    let summary = browser.text("#sim-results table").await;
    for policy in ["fifo", "backfill", "las"] {
        assert!(summary.contains(policy), "{summary}");
    }
    // The two charts are real images the browser decoded.
    let decoded = browser
        .script("return [...document.querySelectorAll('#sim-results img')].map(i => i.complete && i.naturalWidth > 0);")
        .await;
    assert_eq!(decoded, json!([true, true]));
    browser.screenshot("desktop-12-simulations").await;
    browser.close().await;
    server.stop().await;
}
