//! A small W3C WebDriver client for Debian's chromedriver driving headless Chromium, enough for
//! the console's browser tests: navigate, find, type, click, run a script, take screenshots.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the browser and driver are, from the environment; `None` means skip the tests.
pub fn configured() -> Option<(String, String)> {
    let chromium = std::env::var("SUANLI_TEST_CHROMIUM").ok()?;
    let driver = std::env::var("SUANLI_TEST_CHROMEDRIVER")
        .unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    Some((chromium, driver))
}

/// A running chromedriver, killed on drop.
pub struct Driver {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl Driver {
    pub async fn start(driver: &str) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("SUANLI_TEST_CHROMIUM is set but {driver} won't start: {e}")
            });
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { child, url, http }
    }

    /// A new headless browser with a 390x844 viewport if `phone`, otherwise 1280x800.
    pub async fn browser(&self, chromium: &str, phone: bool) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "suanli-chromium-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut options = json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        // The viewport itself, not the window: 390x844 (a phone) or 1280x800.
        let (width, height, mobile) = if phone {
            (390, 844, true)
        } else {
            (1280, 800, false)
        };
        options["mobileEmulation"] = json!({ "deviceMetrics": {
            "width": width, "height": height, "pixelRatio": 1.0, "mobile": mobile, "touch": mobile,
        }});
        let body = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options,
        }}});
        let answer: Value = self
            .http
            .post(format!("{}/session", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start: {answer}"))
            .to_string();
        Browser {
            base: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
            profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    profile: PathBuf,
}

/// Where screenshots go: `target/console-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap();
        assert!(
            status.is_success(),
            "webdriver {method} {path}: {status} {value}"
        );
        value["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.send(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.send(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn title(&self) -> String {
        self.send(reqwest::Method::GET, "/title", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        self.send(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// The elements matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .send(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        assert!(
            !all.is_empty(),
            "no element `{css}` on {}: {}",
            self.url().await,
            self.text("body").await
        );
        all[0].clone()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.send(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.send(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Chooses `path` in a file input.
    pub async fn send_file(&self, css: &str, path: &std::path::Path) {
        let id = self.find(css).await;
        self.send(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": path.display().to_string() })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.send(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// The visible text of the first element matching `css` ("" when none).
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : '';",
            json!(css)
        );
        self.script(&script)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until `script` returns true.
    pub async fn wait_for(&self, what: &str, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.script(script).await == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} on {}: {}",
                self.url().await,
                self.text("main").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of the first element matching `css` contains `needle` (a page
    /// that a click navigates to may not have loaded when the click returns).
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) {
        let script = format!(
            "const e = document.querySelector({}); return !!e && e.innerText.includes({});",
            json!(css),
            json!(needle)
        );
        self.wait_for(&format!("`{needle}` in {css}"), &script, timeout)
            .await;
    }

    /// Saves a PNG of the viewport as `target/console-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.send(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Lighthouse-style basics of the current page: a title, and a label for every form field.
    pub async fn check_basics(&self) {
        let title = self.title().await;
        assert!(
            title.contains("suanli") && title.len() > "suanli".len() + 3,
            "page {} has no real title: `{title}`",
            self.url().await
        );
        let unlabelled = self
            .script(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
                 .filter(e => e.labels.length === 0).map(e => e.name || e.id);",
            )
            .await;
        assert_eq!(
            unlabelled,
            json!([]),
            "fields without a label on {}",
            self.url().await
        );
        let lang = self.script("return document.documentElement.lang;").await;
        assert_eq!(lang, json!("en"));
    }

    /// Whether the page fits its viewport's width (no sideways scrolling of the whole page).
    pub async fn fits_width(&self) -> bool {
        self.script("return document.documentElement.scrollWidth <= window.innerWidth + 1;")
            .await
            == Value::Bool(true)
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
