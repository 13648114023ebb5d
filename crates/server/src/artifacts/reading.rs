//! Reading a stored file: one GET per segment object from the chunk holding the first wanted
//! byte, decrypted in batches on a blocking thread by a task that runs ahead of the response;
//! integrity is the AEAD chain's (every chunk authenticated with its segment's nonce prefix from
//! the sealed manifest, its index and its last-chunk flag) plus the recorded size, so tampered,
//! swapped, reordered or truncated objects end the read in an error. The whole file's SHA-256
//! is not recomputed here: the client checks it end to end against the recorded one.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectStore};

use super::ArtifactError;
use super::crypto::{CHUNK_BYTES, ChunkOpener, CryptoError, SealedLayout, SecretKey, TAG_BYTES};
use super::model::{self, FileEntry};

/// Encrypted chunks (of `CHUNK_BYTES` plaintext) decrypted at a time.
const CHUNKS_PER_BATCH: u64 = 8;
/// Decrypted batches a download holds ready ahead of the response (as chunk-sized slices of
/// the batch, decrypted in place): with `CHUNKS_PER_BATCH` about (4 + 2) x 8 MiB per download.
const BATCHES_AHEAD: usize = 4;

/// What the ordered stream carries between pieces.
struct Checking {
    pieces: BoxStream<'static, Result<Bytes, ArtifactError>>,
    /// Plaintext bytes to drop from the first piece (the offset inside its first chunk).
    skip: usize,
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

/// One segment to read: its object, from chunk `first` to its end.
struct SegmentRead {
    key: ObjectPath,
    opener: ChunkOpener,
    layout: SealedLayout,
    first: u64,
}

/// The segments that deliver `entry`'s plaintext from byte `from` on.
fn plan_reads(
    stem: &str,
    key: &SecretKey,
    entry: &FileEntry,
    from: u64,
) -> Result<Vec<SegmentRead>, ArtifactError> {
    let chunk_bytes = CHUNK_BYTES as u64;
    let mut reads = Vec::new();
    let mut segment_start = 0u64;
    for (index, segment) in entry.segments.iter().enumerate() {
        let segment_end = segment_start + segment.plain_bytes;
        if segment.plain_bytes > 0 && segment_end > from {
            let prefix: [u8; 7] = hex::decode(&segment.nonce_prefix)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| ArtifactError::Integrity {
                    path: entry.path.clone(),
                    problem: format!("segment {index} has no valid nonce prefix"),
                })?;
            reads.push(SegmentRead {
                key: ObjectPath::from(model::segment_key(stem, index)),
                opener: ChunkOpener::new(key, prefix, CHUNK_BYTES),
                layout: SealedLayout {
                    plain_bytes: segment.plain_bytes,
                    chunk_bytes,
                },
                first: from.saturating_sub(segment_start) / chunk_bytes,
            });
        }
        segment_start = segment_end;
    }
    if segment_start != entry.size_bytes {
        return Err(ArtifactError::Integrity {
            path: entry.path.clone(),
            problem: "its segments do not add up to its size".into(),
        });
    }
    Ok(reads)
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
    let reads = plan_reads(stem, &key, &entry, from)?;
    // A task of its own reads and decrypts ahead of the response (which polls its stream only
    // between sends), bounded by the channel.
    let (sender, receiver) = tokio::sync::mpsc::channel(BATCHES_AHEAD * CHUNKS_PER_BATCH as usize);
    tokio::spawn(async move {
        for read in reads {
            if let Err(error) = pump_segment(&store, read, &sender).await {
                let _ = sender.send(Err(error)).await;
                return;
            }
        }
    });
    let pieces = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|piece| (piece, receiver))
    })
    .boxed();
    let state = Checking {
        pieces,
        skip: skip_in_first_chunk(&entry, from),
        sent_bytes: 0,
        expected_bytes: entry.size_bytes - from,
        entry,
    };
    Ok(futures::stream::try_unfold(state, next_piece).boxed())
}

/// Streams one segment with a single GET from its first chunk on, decrypting batches of
/// `CHUNKS_PER_BATCH` chunks on a blocking thread; stops when the reader has gone.
async fn pump_segment(
    store: &Arc<dyn ObjectStore>,
    read: SegmentRead,
    sender: &tokio::sync::mpsc::Sender<Result<Bytes, ArtifactError>>,
) -> Result<(), ArtifactError> {
    let range = read.layout.range_of(read.first, read.layout.chunks());
    let total = (range.end - range.start) as usize;
    let options = GetOptions {
        range: Some(range.into()),
        ..GetOptions::default()
    };
    let mut raw = store.get_opts(&read.key, options).await?.into_stream();
    let step = CHUNK_BYTES + TAG_BYTES;
    let mut buffer = BytesMut::new();
    let (mut consumed, mut index) = (0usize, read.first);
    while consumed < total {
        let want = (CHUNKS_PER_BATCH as usize * step).min(total - consumed);
        while buffer.len() < want {
            match raw.next().await {
                Some(piece) => buffer.extend_from_slice(&piece?),
                None => return Err(CryptoError::Damaged("truncated".into()).into()),
            }
        }
        let mut batch = buffer.split_to(want);
        consumed += want;
        let ends = consumed == total;
        let opener = read.opener.clone();
        let first = index;
        index += want.div_ceil(step) as u64;
        let (batch, plain) = tokio::task::spawn_blocking(move || {
            let plain = opener.open_run_in_place(first, &mut batch, ends);
            (batch.freeze(), plain)
        })
        .await
        .map_err(|e| ArtifactError::Config(format!("decryption task: {e}")))?;
        for range in plain? {
            if sender.send(Ok(batch.slice(range))).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
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
        // Every byte here was authenticated by its chunk's tag before it was queued, so a
        // damaged chunk stops the response before any of its bytes leave.
        if !piece.is_empty() {
            return Ok(Some((piece, state)));
        }
    }
}
