//! The HTTP client the server commands share: where the server is (`SUANLI_URL`, else the URL
//! saved by `suanli login`, else http://127.0.0.1:8080) and who the caller is (`SUANLI_TOKEN`,
//! else the saved token, else for a server on this machine ./suanli-data/admin-token). Every
//! error is one line.

use anyhow::{Context, Result, anyhow, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use suanli_server::api::types::ErrorBody;

/// What `suanli login` saves.
#[derive(Serialize, Deserialize, Default)]
pub struct Credentials {
    pub url: Option<String>,
    pub token: Option<String>,
}

/// `$SUANLI_CONFIG_DIR`, `$XDG_CONFIG_HOME/suanli` or `~/.config/suanli`, with `credentials`.
pub fn credentials_path() -> Result<PathBuf> {
    let dir = if let Some(dir) = std::env::var_os("SUANLI_CONFIG_DIR") {
        PathBuf::from(dir)
    } else if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        PathBuf::from(dir).join("suanli")
    } else {
        let home = std::env::var_os("HOME").context("HOME is not set; set SUANLI_CONFIG_DIR")?;
        PathBuf::from(home).join(".config").join("suanli")
    };
    Ok(dir.join("credentials"))
}

fn saved() -> Credentials {
    credentials_path()
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// A connection to the control plane.
pub struct Client {
    url: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

/// A log chunk and where the next read starts.
pub struct LogChunk {
    pub text: String,
    pub next_offset: u64,
    pub job_state: String,
    /// The run the chunk comes from.
    pub attempt: u32,
}

impl Client {
    /// From the environment and the saved credentials.
    pub fn from_env() -> Result<Self> {
        let saved = saved();
        let url = std::env::var("SUANLI_URL")
            .ok()
            .or(saved.url)
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let token = std::env::var("SUANLI_TOKEN").ok().or(saved.token);
        // `127.0.0.1:8080` is what people type; reqwest needs the scheme.
        let url = if url.contains("://") {
            url
        } else {
            format!("http://{url}")
        };
        if !url.starts_with("http://") && !url.starts_with("https://") {
            bail!("SUANLI_URL `{url}`: use http://HOST:PORT or https://HOST:PORT");
        }
        let token = token.or_else(|| local_admin_token(&url));
        Ok(Client::new(&url, token))
    }

    /// To `url` with `token`.
    pub fn new(url: &str, token: Option<String>) -> Self {
        Client {
            url: url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .expect("an HTTP client without TLS always builds"),
        }
    }

    /// The server's URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// The caller's token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Sends a request to `path` with `query` (encoded by reqwest, so `&`, `=` and spaces in a
    /// value stay inside it).
    fn send<B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<reqwest::blocking::Response> {
        let Some(token) = &self.token else {
            bail!(
                "no token: set SUANLI_TOKEN or run `suanli login` (the first admin token is in DATA_DIR/admin-token)"
            );
        };
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .query(query)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().map_err(|e| {
            anyhow!(
                "cannot reach the server at {}: {}; is `suanli serve` running and SUANLI_URL right?",
                self.url,
                e.without_url()
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().unwrap_or_default();
        bail!(
            "{}",
            describe_failure(status.as_u16(), &text, &method, path)
        )
    }

    /// `method` on `path` with `query` and an optional JSON `body`, decoding the answer as a
    /// type shared with the server (`suanli_server::api::types`, `suanli_server::store`), so a
    /// change on either side is a compile error rather than a silently missing field.
    pub fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T> {
        self.send(method.clone(), path, query, body)?
            .json()
            .with_context(|| {
                format!("the server's answer to {method} {path} is not what this client expects")
            })
    }

    /// GET of a typed answer.
    pub fn get_as<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T> {
        self.call::<T, ()>(reqwest::Method::GET, path, query, None)
    }

    /// GET with a typed answer for a command's `--json` switch: with `json` the answer is printed
    /// as JSON and `None` returned, else the answer, for the command to show as text.
    pub fn get_or_print<T: DeserializeOwned + Serialize>(
        &self,
        path: &str,
        query: &[(&str, String)],
        json: bool,
    ) -> Result<Option<T>> {
        let answer: T = self.get_as(path, query)?;
        if json {
            print_json(&answer);
            return Ok(None);
        }
        Ok(Some(answer))
    }

    /// POST of `body` with a typed answer.
    pub fn post_as<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.call(reqwest::Method::POST, path, &[], Some(body))
    }

    /// POST with no body (an action such as cancel) and a typed answer.
    pub fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<T, ()>(reqwest::Method::POST, path, &[], None)
    }

    /// DELETE with a typed answer.
    pub fn delete_as<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<T, ()>(reqwest::Method::DELETE, path, &[], None)
    }

    /// `method` with the JSON `body` and a typed answer.
    pub fn send_as<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        self.call(method, path, &[], Some(body))
    }

    /// A job's log from `offset`.
    pub fn logs(&self, id: i64, attempt: Option<u32>, offset: u64) -> Result<LogChunk> {
        let path = format!("/api/v1/jobs/{id}/logs");
        let mut query = vec![("offset", offset.to_string())];
        if let Some(attempt) = attempt {
            query.push(("attempt", attempt.to_string()));
        }
        let response = self.send::<()>(reqwest::Method::GET, &path, &query, None)?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let next_offset = header("x-suanli-next-offset").parse().unwrap_or(offset);
        let job_state = header("x-suanli-job-state");
        let attempt = header("x-suanli-attempt").parse().unwrap_or(0);
        let text = response.text().context("reading the log")?;
        Ok(LogChunk {
            text,
            next_offset,
            job_state,
            attempt,
        })
    }
}

/// With no token configured and a server on this machine: the admin token `suanli serve` wrote
/// to ./suanli-data (its default data directory), so `suanli serve` then `suanli job submit`
/// works with no other step. The file is mode 0600, so only the server's own user reads it.
fn local_admin_token(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    if !matches!(host, "127.0.0.1" | "localhost") {
        return None;
    }
    let token = std::fs::read_to_string("suanli-data/admin-token").ok()?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Prints `value` as pretty JSON with its keys sorted (as the server's answers always were).
pub fn print_json(value: &impl Serialize) {
    let sorted = serde_json::to_value(value).unwrap_or_default();
    println!(
        "{}",
        serde_json::to_string_pretty(&sorted).unwrap_or_default()
    );
}

/// `text` with every control character (escape sequences, carriage returns, C1 codes) shown as
/// `?`, so names, commands and reasons other users chose cannot drive the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A refused request as one line for a person: the server's reason without HTTP or JSON-parser
/// internals, and what to do for the statuses that have an obvious next step.
pub fn describe_failure(status: u16, body: &str, method: &reqwest::Method, path: &str) -> String {
    let message = serde_json::from_str::<ErrorBody>(body)
        .map(|b| printable(&b.error))
        .unwrap_or_else(|_| printable(body.trim()));
    // axum's JSON rejections: "Failed to deserialize the JSON body into the target type: role:
    // unknown variant `owner`, expected one of ... at line 1 column 40".
    let message = message
        .split_once("into the target type: ")
        .map_or(message.as_str(), |(_, rest)| rest)
        .to_string();
    let message = match message.rfind(" at line ") {
        Some(at) if message[at..].contains(" column ") => message[..at].to_string(),
        _ => message,
    };
    match status {
        401 => format!("not signed in: {message}; set SUANLI_TOKEN or run `suanli login`"),
        400 | 403 | 404 | 409 | 413 | 422 => message,
        429 => format!("{message} (too many requests; try again shortly)"),
        _ => format!("the server failed on {method} {path} (HTTP {status}): {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_failure;

    #[test]
    fn failures_read_without_http_or_parser_internals() {
        let body = r#"{"error":"Failed to deserialize the JSON body into the target type: role: unknown variant `owner`, expected one of `admin`, `member` at line 1 column 40"}"#;
        let line = describe_failure(422, body, &reqwest::Method::POST, "/api/v1/users");
        assert_eq!(
            line,
            "role: unknown variant `owner`, expected one of `admin`, `member`"
        );
        let line = describe_failure(
            401,
            "{\"error\":\"bad token\"}",
            &reqwest::Method::GET,
            "/x",
        );
        assert!(line.contains("SUANLI_TOKEN"), "{line}");
        let line = describe_failure(500, "boom", &reqwest::Method::GET, "/api/v1/jobs");
        assert!(line.contains("HTTP 500") && line.contains("boom"), "{line}");
    }

    #[test]
    fn terminal_text_has_no_control_characters() {
        let shown = super::printable("job\u{1b}]0;owned\u{7}\r\u{9b}31m");
        assert_eq!(shown, "job?]0;owned???31m");
        assert!(!shown.chars().any(char::is_control));
    }
}
