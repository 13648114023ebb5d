//! Writing a file: plaintext streamed through the cipher into multipart uploads in bounded
//! memory. An upload that breaks off keeps what arrived as a segment and is resumed from there
//! (`offset=N`), continuing the file's SHA-256; a version with a broken-off file cannot commit.

use bytes::Bytes;
use futures::stream::{Stream, StreamExt};
use object_store::WriteMultipart;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};

use super::ArtifactError;
use super::crypto::{CHUNK_BYTES, Sealer, SecretKey};
use super::model::{self, FileEntry, Segment};
use super::reading::read_from;
use super::repo::Repository;

/// Multipart part size: S3 needs at least 5 MiB per part but the last.
const PART_BYTES: usize = 8 << 20;
/// Parts in flight per upload; with `PART_BYTES` this bounds an upload's buffers to ~32 MiB.
const PARTS_IN_FLIGHT: usize = 4;
/// Uploads in progress whose hash state a server keeps (beyond, a resume re-reads the prefix).
const MAX_HASH_STATES: usize = 1024;

/// What one request stored.
struct Written {
    plain_bytes: u64,
    nonce_prefix: [u8; 7],
    hasher: Sha256,
    /// Why the body ended early, if it did.
    broken: Option<String>,
}

impl Repository {
    /// Encrypts `body` into the object store as file `path` of a partial version: from
    /// scratch at `offset` 0, else appended to an interrupted upload that holds exactly
    /// `offset` bytes. Returns the file's record (size and SHA-256 of everything stored).
    pub async fn put_file<E: std::fmt::Display>(
        &self,
        tenant: &str,
        name: &str,
        version: u64,
        path: &str,
        offset: u64,
        body: impl Stream<Item = Result<Bytes, E>> + Unpin + Send,
    ) -> Result<FileEntry, ArtifactError> {
        model::check_path(path)?;
        self.partial(tenant, name, version).await?;
        let tenant_key = self.tenant_key(tenant).await?;
        let stem = model::file_stem(tenant, name, version, path);
        let record = format!("{stem}.json");
        let (mut entry, data_key, hasher) = if offset == 0 {
            self.delete_segments(&stem).await?;
            let data_key = SecretKey::generate();
            let entry = FileEntry {
                path: path.to_string(),
                size_bytes: 0,
                sha256: String::new(),
                wrapped_key: tenant_key.wrap(&data_key, &format!("{stem}.data")),
                tenant_key_id: tenant_key.id(),
                segments: Vec::new(),
                interrupted: false,
            };
            (entry, data_key, Sha256::new())
        } else {
            let entry = self.upload_progress(tenant, name, version, path).await?;
            let entry = entry.ok_or_else(|| {
                ArtifactError::Conflict(format!(
                    "no upload of `{}` to resume; start at offset=0",
                    model::printable(path)
                ))
            })?;
            if entry.size_bytes != offset {
                return Err(ArtifactError::Conflict(format!(
                    "`{}` has {} bytes stored; resume with offset={}",
                    model::printable(path),
                    entry.size_bytes,
                    entry.size_bytes
                )));
            }
            let data_key = tenant_key.unwrap_key(&entry.wrapped_key, &format!("{stem}.data"))?;
            let hasher = self.prefix_hasher(&stem, &entry, &data_key).await?;
            (entry, data_key, hasher)
        };
        let index = entry.segments.len();
        let key = ObjectPath::from(model::segment_key(&stem, index));
        let written = self.write_segment(&key, &data_key, hasher, body).await?;
        if written.plain_bytes > 0 || written.broken.is_none() {
            entry.segments.push(Segment {
                plain_bytes: written.plain_bytes,
                nonce_prefix: hex::encode(written.nonce_prefix),
            });
            entry.size_bytes += written.plain_bytes;
        }
        entry.sha256 = hex::encode(written.hasher.clone().finalize());
        entry.interrupted = written.broken.is_some();
        self.write_json(&record, &entry).await?;
        {
            let mut states = self.upload_hashes.lock().expect("not poisoned");
            if states.len() >= MAX_HASH_STATES {
                states.clear();
            }
            states.insert(stem.clone(), (entry.size_bytes, written.hasher));
        }
        match written.broken {
            Some(problem) => Err(ArtifactError::BadRequest(format!(
                "upload interrupted after {} bytes ({problem}); resume with offset={}",
                entry.size_bytes, entry.size_bytes
            ))),
            None => Ok(entry),
        }
    }

    /// The record of file `path` of a partial version as uploaded so far, if any.
    pub async fn upload_progress(
        &self,
        tenant: &str,
        name: &str,
        version: u64,
        path: &str,
    ) -> Result<Option<FileEntry>, ArtifactError> {
        model::check_path(path)?;
        let stem = model::file_stem(tenant, name, version, path);
        self.read_json(&format!("{stem}.json")).await
    }

    /// Streams `body` through a fresh sealer into the multipart upload of `key`; a body that
    /// breaks off still completes the object with what arrived (its last chunk marked last).
    async fn write_segment<E: std::fmt::Display>(
        &self,
        key: &ObjectPath,
        data_key: &SecretKey,
        mut hasher: Sha256,
        mut body: impl Stream<Item = Result<Bytes, E>> + Unpin + Send,
    ) -> Result<Written, ArtifactError> {
        let upload = self.store.put_multipart(key).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut sealer = Sealer::new(data_key, CHUNK_BYTES);
        let nonce_prefix = sealer.nonce_prefix();
        let mut plain_bytes = 0u64;
        let mut broken = None;
        let outcome: Result<(), ArtifactError> = async {
            while let Some(piece) = body.next().await {
                let piece = match piece {
                    Ok(piece) => piece,
                    Err(e) => {
                        broken = Some(model::printable(&e.to_string()));
                        break;
                    }
                };
                hasher.update(&piece);
                plain_bytes += piece.len() as u64;
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.write(&sealer.push(&piece)?);
            }
            Ok(())
        }
        .await;
        if outcome.is_err() || (broken.is_some() && plain_bytes == 0) {
            let _ = writer.abort().await;
            outcome?;
        } else {
            writer.write(&sealer.finish()?);
            writer.finish().await?;
        }
        Ok(Written {
            plain_bytes,
            nonce_prefix,
            hasher,
            broken,
        })
    }

    /// The SHA-256 state after the `entry.size_bytes` bytes already stored: kept from the
    /// interrupted request, or (after a server restart) recomputed by reading them back.
    async fn prefix_hasher(
        &self,
        stem: &str,
        entry: &FileEntry,
        data_key: &SecretKey,
    ) -> Result<Sha256, ArtifactError> {
        let kept = self
            .upload_hashes
            .lock()
            .expect("not poisoned")
            .get(stem)
            .filter(|(bytes, _)| *bytes == entry.size_bytes)
            .map(|(_, hasher)| hasher.clone());
        if let Some(hasher) = kept {
            return Ok(hasher);
        }
        let mut hasher = Sha256::new();
        let mut stored = read_from(self.store.clone(), stem, data_key.clone(), entry.clone(), 0)?;
        while let Some(piece) = stored.next().await {
            hasher.update(&piece?);
        }
        Ok(hasher)
    }

    /// Deletes the segments of an earlier attempt at the file stored under `stem`.
    async fn delete_segments(&self, stem: &str) -> Result<(), ArtifactError> {
        let Some((dir, _)) = stem.rsplit_once('/') else {
            return Ok(());
        };
        let mut listing = self.store.list(Some(&ObjectPath::from(dir)));
        let mut doomed = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if meta.location.as_ref().starts_with(&format!("{stem}.")) {
                doomed.push(meta.location);
            }
        }
        drop(listing);
        for location in doomed {
            match self.store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
