//! Downloads: each file streamed into a part beside its target (resumed after a break), hashed
//! while it is written, and renamed into place only when its SHA-256 matches the manifest.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use suanli_server::artifacts::types::ManifestView;

use indicatif::ProgressBar;

use super::Transfer;

impl Transfer {
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
