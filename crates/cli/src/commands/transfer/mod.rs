//! Streaming upload and download of artefact versions with progress bars: files are read and
//! written in pieces (never whole in memory), and every download is checked against the
//! SHA-256 the server recorded at upload.

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use suanli_server::api::types::ErrorBody;
use suanli_server::artifacts::types::{ArtifactView, ManifestView, NewVersion, UploadProgress};

use super::client::Client;

mod download;

/// A connection for large transfers: no overall timeout, only one for connecting.
pub struct Transfer {
    http: reqwest::blocking::Client,
    url: String,
    token: String,
    /// Show progress bars (on a terminal, without --json).
    pub progress: bool,
}

impl Transfer {
    /// To the server and token of `SUANLI_URL`/`SUANLI_TOKEN` or `suanli login`.
    pub fn from_env() -> Result<Self> {
        let client = Client::from_env()?;
        Self::new(client.base_url(), client.token())
    }

    /// To `url` with `token`.
    pub fn new(url: &str, token: Option<&str>) -> Result<Self> {
        let token = token
            .context("no token: set SUANLI_TOKEN or run `suanli login`")?
            .to_string();
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(None)
            .build()
            .context("building the HTTP client")?;
        Ok(Transfer {
            http,
            url: url.trim_end_matches('/').to_string(),
            token,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        })
    }

    fn send(
        &self,
        request: reqwest::blocking::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::blocking::Response> {
        let response = request.bearer_auth(&self.token).send().map_err(|e| {
            anyhow!(
                "{what}: cannot reach the server at {}: {}",
                self.url,
                e.without_url()
            )
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(failure(response, what))
    }

    /// A JSON request to `/api/v1/artifacts{path}` with `query`, its answer decoded as a type
    /// shared with the server (`suanli_server::artifacts::types`).
    pub fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<T> {
        let mut request = self
            .http
            .request(
                method.clone(),
                format!("{}/api/v1/artifacts{path}", self.url),
            )
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let what = format!("{method} {path}");
        self.send(request, &what)?
            .json()
            .with_context(|| format!("{what}: the server's answer is not what this client expects"))
    }

    /// `/api/v1/artifacts{route}?path=PATH[&offset=N]`, the file path encoded by `url` (so
    /// `#`, `&`, `+`, `%` and spaces in a file name stay in it).
    fn file_url(&self, route: &str, path: &str, offset: Option<u64>) -> Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/artifacts{route}", self.url))
            .with_context(|| format!("the server URL `{}`", self.url))?;
        url.query_pairs_mut().append_pair("path", path);
        if let Some(offset) = offset {
            url.query_pairs_mut()
                .append_pair("offset", &offset.to_string());
        }
        Ok(url)
    }

    /// A GET of `/api/v1/artifacts{path}` with a typed answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<T, ()>(reqwest::Method::GET, path, &[], None)
    }

    /// A DELETE under `/api/v1/artifacts` (answered with no body).
    pub fn delete(&self, path: &str) -> Result<()> {
        let url = format!("{}/api/v1/artifacts{path}", self.url);
        self.send(self.http.delete(url), &format!("DELETE {path}"))?;
        Ok(())
    }

    fn bar(&self, total: u64, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("valid template"),
        );
        bar.set_message(what.to_string());
        bar
    }

    /// Uploads `source` (a file, or a directory such as a Hugging Face model as is) as a new
    /// committed version of `tenant/name`; returns the manifest. With `resume`, completes the
    /// newest partial version instead: files already stored are skipped and a file whose
    /// upload broke off continues from the bytes the server holds (when they match).
    pub fn upload(
        &self,
        tenant: &str,
        name: &str,
        kind: &str,
        source: &Path,
        resume: bool,
    ) -> Result<ManifestView> {
        let files = list_files(source)?;
        let total: u64 = files.iter().map(|(_, _, size)| size).sum();
        let base = format!("/{tenant}/{name}");
        let number = match resume
            .then(|| self.newest_partial(&base))
            .transpose()?
            .flatten()
        {
            Some(number) => number,
            None => {
                let kind = NewVersion { kind: kind.into() };
                let path = format!("{base}/versions");
                let created: ManifestView =
                    self.call(reqwest::Method::POST, &path, &[], Some(&kind))?;
                created.version
            }
        };
        let bar = self.bar(total, &format!("put {tenant}/{name}@{number}"));
        let mut done = 0;
        for (relative, full, size) in &files {
            let at = format!("{base}/versions/{number}");
            let offset = if resume {
                self.resume_point(&at, relative, full, *size)?
            } else {
                None
            };
            if let Some(n) = offset.filter(|n| *n < *size) {
                bar.suspend(|| eprintln!("{relative}: resuming at byte {n} of {size}"));
            }
            if offset != Some(*size) {
                self.upload_file(&at, relative, full, *size, offset.unwrap_or(0), &bar, done)?;
            }
            done += size;
            bar.set_position(done);
        }
        bar.finish_and_clear();
        self.call::<_, ()>(
            reqwest::Method::POST,
            &format!("{base}/versions/{number}/commit"),
            &[],
            None,
        )
    }

    /// The newest version of `base` that is still partial (an interrupted put).
    fn newest_partial(&self, base: &str) -> Result<Option<u64>> {
        let url = format!("{}/api/v1/artifacts{base}", self.url);
        let response = self.http.get(url).bearer_auth(&self.token).send()?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(failure(response, "finding the upload to resume"));
        }
        let shown: ArtifactView = response.json()?;
        Ok(shown
            .versions
            .iter()
            .filter(|v| !v.complete)
            .map(|v| v.version)
            .max())
    }

    /// Where to resume `relative`: `Some(n)` when the server holds the file's first `n` bytes
    /// (checked by SHA-256 against the local file), `None` to start over.
    fn resume_point(
        &self,
        at: &str,
        relative: &str,
        full: &Path,
        size: u64,
    ) -> Result<Option<u64>> {
        let url = self.file_url(&format!("{at}/uploads"), relative, None)?;
        let response = self.http.get(url).bearer_auth(&self.token).send()?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let progress: UploadProgress = response.json()?;
        let stored = progress.size_bytes;
        if stored > size || (stored == size && progress.interrupted) {
            return Ok(None);
        }
        let mut hasher = Sha256::new();
        let file =
            std::fs::File::open(full).with_context(|| format!("reading {}", full.display()))?;
        std::io::copy(&mut file.take(stored), &mut HashWriter(&mut hasher))?;
        let same = hex::encode(hasher.finalize()) == progress.sha256;
        Ok(same.then_some(stored))
    }

    /// PUTs `full` from byte `offset` on; when the connection breaks, asks the server how
    /// much arrived and continues from there (a few times).
    #[allow(clippy::too_many_arguments)]
    fn upload_file(
        &self,
        at: &str,
        relative: &str,
        full: &Path,
        size: u64,
        mut offset: u64,
        bar: &ProgressBar,
        done: u64,
    ) -> Result<()> {
        let what = format!("uploading {relative}");
        for attempt in 1..=4 {
            bar.set_position(done + offset);
            let mut file =
                std::fs::File::open(full).with_context(|| format!("reading {}", full.display()))?;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset))?;
            let body = reqwest::blocking::Body::sized(
                bar.wrap_read(file.take(size - offset)),
                size - offset,
            );
            let url = self.file_url(&format!("{at}/files"), relative, Some(offset))?;
            match self
                .http
                .put(url)
                .bearer_auth(&self.token)
                .body(body)
                .send()
            {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => return Err(failure(response, &what)),
                Err(error) if attempt == 4 => {
                    bail!(
                        "{what}: the connection broke off again ({}); run the same `put` with --resume to continue",
                        error.without_url()
                    )
                }
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_secs(attempt));
                    offset = self.resume_point(at, relative, full, size)?.unwrap_or(0);
                }
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// The error for a non-success answer: status and the server's message.
fn failure(response: reqwest::blocking::Response, what: &str) -> anyhow::Error {
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|body| body.error)
        .unwrap_or(text);
    anyhow!("{what}: {status} ({message})")
}

/// Feeds what is written into a hasher.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.update(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every regular file under `source` (or `source` itself) with its `/`-separated relative path
/// and size, sorted; `.git` directories are skipped.
pub fn list_files(source: &Path) -> Result<Vec<(String, PathBuf, u64)>> {
    let meta = std::fs::metadata(source).with_context(|| format!("{}", source.display()))?;
    if meta.is_file() {
        let name = source
            .file_name()
            .and_then(|n| n.to_str())
            .context("the file name is not UTF-8")?;
        return Ok(vec![(name.to_string(), source.to_path_buf(), meta.len())]);
    }
    let mut out = Vec::new();
    let mut stack = vec![source.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(path);
                }
            } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
                let relative = path
                    .strip_prefix(source)
                    .expect("under source")
                    .to_str()
                    .with_context(|| format!("{}: the path is not UTF-8", path.display()))?
                    .to_string();
                let size = std::fs::metadata(&path)?.len();
                out.push((relative, path, size));
            }
        }
    }
    if out.is_empty() {
        bail!("{}: no files to upload", source.display());
    }
    out.sort();
    Ok(out)
}
