//! Reading a stored file: ranged GETs of whole encrypted chunks of its segment objects, several
//! in flight, each decrypted on a blocking thread, delivered in order from any plaintext
//! offset; a read from the start ends in an error if the plaintext's size or SHA-256 differs
//! from the recorded one.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};

use super::ArtifactError;
use super::crypto::{CHUNK_BYTES, ChunkOpener, SealedLayout, SecretKey};
use super::model::{self, FileEntry};

/// Encrypted chunks (of `CHUNK_BYTES` plaintext) fetched by one ranged GET.
const CHUNKS_PER_RANGE: u64 = 8;
/// Ranged GETs in flight per download: with `CHUNKS_PER_RANGE` this bounds a download's buffers
/// to about 2 x 3 x 8 MiB (ciphertext and plaintext).
const RANGES_IN_FLIGHT: usize = 3;

/// What the ordered stream carries between pieces.
struct Checking {
    pieces: BoxStream<'static, Result<Bytes, ArtifactError>>,
    /// Plaintext bytes to drop from the first piece (the offset inside its first chunk).
    skip: usize,
    /// `Some` when reading from offset 0: the whole file's SHA-256 is checked at the end.
    hasher: Option<Sha256>,
    sent_bytes: u64,
    expected_bytes: u64,
    entry: FileEntry,
}

impl Checking {
    fn integrity(&self, problem: &str) -> ArtifactError {
        ArtifactError::Integrity {
            path: self.entry.path.clone(),
            problem: problem.to_string(),
        }
    }
}

/// One ranged GET: chunks `first..last` of segment object `key`.
struct Run {
    key: ObjectPath,
    opener: ChunkOpener,
    layout: SealedLayout,
    first: u64,
    last: u64,
}

/// The ranged GETs that deliver `entry`'s plaintext from byte `from` on.
fn plan_runs(
    stem: &str,
    key: &SecretKey,
    entry: &FileEntry,
    from: u64,
) -> Result<Vec<Run>, ArtifactError> {
    let chunk_bytes = CHUNK_BYTES as u64;
    let mut runs = Vec::new();
    let mut segment_start = 0u64;
    for (index, segment) in entry.segments.iter().enumerate() {
        let segment_end = segment_start + segment.plain_bytes;
        if segment.plain_bytes == 0 || segment_end <= from {
            segment_start = segment_end;
            continue;
        }
        let prefix: [u8; 7] = hex::decode(&segment.nonce_prefix)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ArtifactError::Integrity {
                path: entry.path.clone(),
                problem: format!("segment {index} has no valid nonce prefix"),
            })?;
        let opener = ChunkOpener::new(key, prefix, CHUNK_BYTES);
        let layout = SealedLayout {
            plain_bytes: segment.plain_bytes,
            chunk_bytes,
        };
        let first = from.saturating_sub(segment_start) / chunk_bytes;
        let mut a = first;
        while a < layout.chunks() {
            let b = (a + CHUNKS_PER_RANGE).min(layout.chunks());
            runs.push(Run {
                key: ObjectPath::from(model::segment_key(stem, index)),
                opener: opener.clone(),
                layout,
                first: a,
                last: b,
            });
            a = b;
        }
        segment_start = segment_end;
    }
    if segment_start != entry.size_bytes {
        return Err(ArtifactError::Integrity {
            path: entry.path.clone(),
            problem: "its segments do not add up to its size".into(),
        });
    }
    Ok(runs)
}

/// The plaintext of the file stored under `stem` (data key `key`, recorded as `entry`) from
/// byte `from` on.
pub(super) fn read_from(
    store: Arc<dyn ObjectStore>,
    stem: &str,
    key: SecretKey,
    entry: FileEntry,
    from: u64,
) -> Result<BoxStream<'static, Result<Bytes, ArtifactError>>, ArtifactError> {
    if from > entry.size_bytes {
        return Err(ArtifactError::BadRequest(format!(
            "range starts at byte {from} but the file has {} bytes",
            entry.size_bytes
        )));
    }
    let runs = plan_runs(stem, &key, &entry, from)?;
    let pieces = futures::stream::iter(runs)
        .map(move |run| {
            let store = store.clone();
            async move {
                let range = run.layout.range_of(run.first, run.last);
                let sealed = store.get_range(&run.key, range).await?;
                let ends = run.last == run.layout.chunks();
                let plain = tokio::task::spawn_blocking(move || {
                    run.opener.open_run(run.first, &sealed, ends)
                })
                .await
                .map_err(|e| ArtifactError::Config(format!("decryption task: {e}")))??;
                Ok(Bytes::from(plain))
            }
        })
        .buffered(RANGES_IN_FLIGHT)
        .boxed();
    let state = Checking {
        pieces,
        skip: skip_in_first_chunk(&entry, from),
        hasher: (from == 0).then(Sha256::new),
        sent_bytes: 0,
        expected_bytes: entry.size_bytes - from,
        entry,
    };
    Ok(futures::stream::try_unfold(state, next_piece).boxed())
}

/// How far into its chunk byte `from` lies (chunks restart at every segment).
fn skip_in_first_chunk(entry: &FileEntry, from: u64) -> usize {
    let mut segment_start = 0;
    for segment in &entry.segments {
        if from < segment_start + segment.plain_bytes {
            return ((from - segment_start) % CHUNK_BYTES as u64) as usize;
        }
        segment_start += segment.plain_bytes;
    }
    0
}

async fn next_piece(mut state: Checking) -> Result<Option<(Bytes, Checking)>, ArtifactError> {
    loop {
        let Some(piece) = state.pieces.next().await else {
            if state.sent_bytes != state.expected_bytes {
                return Err(state.integrity("shorter than recorded"));
            }
            if let Some(hasher) = state.hasher.take()
                && hex::encode(hasher.finalize()) != state.entry.sha256
            {
                return Err(state.integrity("SHA-256 differs from the recorded one"));
            }
            return Ok(None);
        };
        let mut piece = piece?;
        if state.skip > 0 {
            let skip = state.skip.min(piece.len());
            piece = piece.slice(skip..);
            state.skip -= skip;
        }
        state.sent_bytes += piece.len() as u64;
        if state.sent_bytes > state.expected_bytes {
            return Err(state.integrity("longer than recorded"));
        }
        if let Some(hasher) = state.hasher.as_mut() {
            hasher.update(&piece);
        }
        // Checked before the last byte leaves, so a damaged file is never delivered whole.
        if state.sent_bytes == state.expected_bytes
            && let Some(hasher) = state.hasher.take()
            && hex::encode(hasher.finalize()) != state.entry.sha256
        {
            return Err(state.integrity("SHA-256 differs from the recorded one"));
        }
        if !piece.is_empty() {
            return Ok(Some((piece, state)));
        }
    }
}
