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

    /// Downloads version `version` (a number, `latest` or `sha256:...`) of `tenant/name` into
    /// the directory `dest`, checking every file's SHA-256; returns the manifest.
    pub fn download(
        &self,
        tenant: &str,
        name: &str,
        version: &str,
        dest: &Path,
    ) -> Result<ManifestView> {
        let base = format!("/{tenant}/{name}");
        let manifest: ManifestView = self.get(&format!("{base}/versions/{version}"))?;
        let number = manifest.version;
        let bar = self.bar(
            manifest.size_bytes,
            &format!("get {tenant}/{name}@{number}"),
        );
        for file in &manifest.files {
            let path = file.path.as_str();
            let expected = file.sha256.as_str();
            if path
                .split('/')
                .any(|p| p.is_empty() || p == ".." || p == ".")
            {
                bail!("the server sent an unsafe path `{path}`");
            }
            let target = dest.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let route = format!("{base}/versions/{number}/files");
            let url = self.file_url(&route, path, None)?;
            self.download_file(url.as_str(), path, &target, file.size_bytes, expected, &bar)?;
        }
        bar.finish_and_clear();
        Ok(manifest)
    }
}

impl Transfer {
    /// Downloads one file into `target` through `.NAME.SHA.suanli-part` beside it: a part left
    /// by an interrupted download of the same content is resumed with `Range: bytes=N-`; the
    /// whole file's SHA-256 is checked before the rename.
    fn download_file(
        &self,
        url: &str,
        path: &str,
        target: &Path,
        size: u64,
        expected: &str,
        bar: &ProgressBar,
    ) -> Result<()> {
        let partial = part_path(target, expected);
        let mut hasher = Sha256::new();
        let mut have = resume_part(&partial, size, &mut hasher)?;
        bar.inc(have);
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&partial)
            .with_context(|| format!("writing {}", partial.display()))?;
        if have < size || size == 0 {
            let mut request = self.http.get(url);
            if have > 0 {
                request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
            }
            let mut response = self.send(request, &format!("downloading {path}"))?;
            if have > 0 && response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
                // The server sent the whole file: start over.
                out.set_len(0)?;
                bar.set_position(bar.position() - have);
                have = 0;
                hasher = Sha256::new();
            }
            let what = format!("downloading {path}");
            (hasher, out) = receive(&mut response, hasher, out, (&what, &partial), have, bar)?;
        }
        out.sync_all()?;
        let got = hex::encode(hasher.finalize());
        if got != expected {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "{path}: SHA-256 {got} differs from the recorded {expected}; nothing was written"
            );
        }
        std::fs::rename(&partial, target)
            .with_context(|| format!("writing {}", target.display()))?;
        Ok(())
    }
}

/// Bytes per buffer between the receiving and the hashing/writing thread.
const RECEIVE_BUFFER_BYTES: usize = 4 << 20;
/// Buffers in circulation: a download holds at most this many times `RECEIVE_BUFFER_BYTES`.
const RECEIVE_BUFFERS: usize = 4;

/// Reads `response` to its end into `out` (a file positioned at byte `have`), feeding
/// `hasher`: this thread receives into large buffers while another hashes and writes the
/// previous ones, so the SHA-256 and the disk writes overlap the transfer. Returns the hasher,
/// and the file. A transfer that breaks off leaves everything received written (for a later
/// resume) and fails naming `what` and the bytes held; a failed write names `partial`.
fn receive(
    response: &mut impl Read,
    mut hasher: Sha256,
    mut out: std::fs::File,
    (what, partial): (&str, &Path),
    have: u64,
    bar: &ProgressBar,
) -> Result<(Sha256, std::fs::File)> {
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(RECEIVE_BUFFERS);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    for _ in 0..RECEIVE_BUFFERS {
        empty_tx
            .send(vec![0u8; RECEIVE_BUFFER_BYTES])
            .expect("receiver alive");
    }
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || -> std::io::Result<(Sha256, std::fs::File)> {
            for (buffer, n) in full_rx {
                hasher.update(&buffer[..n]);
                out.write_all(&buffer[..n])?;
                let _ = empty_tx.send(buffer);
            }
            Ok((hasher, out))
        });
        let mut received = 0u64;
        let mut broken = None;
        'receiving: while let Ok(mut buffer) = empty_rx.recv() {
            let mut n = 0;
            while n < buffer.len() {
                match response.read(&mut buffer[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
            }
            received += n as u64;
            bar.inc(n as u64);
            let ended = n < buffer.len();
            if (n > 0 && full_tx.send((buffer, n)).is_err()) || ended {
                break 'receiving;
            }
        }
        drop(full_tx);
        let (hasher, out) = worker
            .join()
            .expect("the writing thread does not panic")
            .with_context(|| format!("writing {}", partial.display()))?;
        if let Some(e) = broken {
            bail!(
                "{what}: the transfer broke off after {} bytes ({e}: the server found the stored bytes damaged, or the connection failed); run the same command again to resume",
                have + received
            );
        }
        Ok((hasher, out))
    })
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

/// `DIR/.NAME.SHA16.suanli-part` for `DIR/NAME`: one part per content, never another file's.
fn part_path(target: &Path, sha256: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tag: String = sha256
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(16)
        .collect();
    target.with_file_name(format!(".{name}.{tag}.suanli-part"))
}

/// Feeds an existing part into `hasher` and returns its length; a part longer than the file
/// is discarded.
fn resume_part(partial: &Path, size: u64, hasher: &mut Sha256) -> Result<u64> {
    let Ok(mut file) = std::fs::File::open(partial) else {
        return Ok(0);
    };
    let length = file.metadata()?.len();
    if length > size {
        drop(file);
        std::fs::remove_file(partial)?;
        return Ok(0);
    }
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(length);
        }
        hasher.update(&buffer[..n]);
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
