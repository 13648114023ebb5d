//! Reading a stored file: ranged GETs of whole encrypted chunks, several in flight, each
//! decrypted on a blocking thread, delivered in order from any plaintext offset; a read from
//! the start ends in an error if the plaintext's size or SHA-256 differs from the recorded one.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};

use super::ArtifactError;
use super::crypto::{CHUNK_BYTES, ChunkOpener, HEADER_BYTES, SealedLayout, SecretKey};
use super::model::FileEntry;

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

/// The plaintext of `location` (encrypted with `key`, recorded as `entry`) from byte `from` on.
pub(super) async fn read_from(
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
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
    let header = store.get_range(&location, 0..HEADER_BYTES as u64).await?;
    let opener = ChunkOpener::from_header(&key, &header, CHUNK_BYTES)?;
    let layout = SealedLayout {
        plain_bytes: entry.size_bytes,
        chunk_bytes: CHUNK_BYTES as u64,
    };
    let chunks = layout.chunks();
    let first = from / CHUNK_BYTES as u64;
    let runs: Vec<(u64, u64)> = (first..chunks)
        .step_by(CHUNKS_PER_RANGE as usize)
        .map(|a| (a, (a + CHUNKS_PER_RANGE).min(chunks)))
        .collect();
    let pieces = futures::stream::iter(runs)
        .map(move |(a, b)| {
            let (store, location, opener) = (store.clone(), location.clone(), opener.clone());
            async move {
                let sealed = store.get_range(&location, layout.range_of(a, b)).await?;
                let plain =
                    tokio::task::spawn_blocking(move || opener.open_run(a, &sealed, b == chunks))
                        .await
                        .map_err(|e| ArtifactError::Config(format!("decryption task: {e}")))??;
                Ok(Bytes::from(plain))
            }
        })
        .buffered(RANGES_IN_FLIGHT)
        .boxed();
    let state = Checking {
        pieces,
        skip: (from % CHUNK_BYTES as u64) as usize,
        hasher: (from == 0).then(Sha256::new),
        sent_bytes: 0,
        expected_bytes: entry.size_bytes - from,
        entry,
    };
    Ok(futures::stream::try_unfold(state, next_piece).boxed())
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
