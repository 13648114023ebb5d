//! Reading a stored file: one GET per segment object from the chunk holding the first wanted
//! byte, decrypted in batches on blocking threads (each as soon as it has arrived, while the
//! next is read) by a task that runs a bounded distance ahead of the response;
//! integrity is the AEAD chain's (every chunk authenticated with its segment's nonce prefix from
//! the sealed manifest, its index and its last-chunk flag) plus the recorded size, so tampered,
//! swapped, reordered or truncated objects end the read in an error. The whole file's SHA-256
//! is not recomputed here: the client checks it end to end against the recorded one.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectStore};

use super::ArtifactError;
use super::crypto::{CHUNK_BYTES, ChunkOpener, CryptoError, SealedLayout, SecretKey, TAG_BYTES};
use super::model::{self, FileEntry};

/// Encrypted chunks (of `CHUNK_BYTES` plaintext) decrypted at a time.
const CHUNKS_PER_BATCH: u64 = 4;
/// Batches read ahead of the response: each is decrypted on a blocking thread as soon as it
/// has arrived, while the next is read, and waits in order for the response to send it. With
/// the one being read and the one being sent, a download holds at most (4 + 2) x 4 MiB.
const BATCHES_AHEAD: usize = 4;

/// A batch being decrypted: the buffer (plaintext in place once done) and where each chunk's
/// plaintext lies in it.
type Opening = tokio::task::JoinHandle<Result<(Bytes, Vec<Range<usize>>), ArtifactError>>;

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
    // A task of its own reads the objects and starts decrypting each batch as it arrives,
    // ahead of the response (which polls its stream only between sends); the channel bounds
    // how far ahead.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Opening>(BATCHES_AHEAD);
    tokio::spawn(async move {
        for read in reads {
            if let Err(error) = read_segment(&store, read, &sender).await {
                let _ = sender.send(tokio::spawn(async { Err(error) })).await;
                return;
            }
        }
    });
    let pieces = futures::stream::unfold(
        (receiver, None::<(Bytes, std::vec::IntoIter<Range<usize>>)>),
        |(mut receiver, mut current)| async move {
            loop {
                if let Some((batch, ranges)) = current.as_mut()
                    && let Some(range) = ranges.next()
                {
                    let piece = batch.slice(range);
                    return Some((Ok(piece), (receiver, current)));
                }
                let opening = receiver.recv().await?;
                match opening.await {
                    Ok(Ok((batch, ranges))) => current = Some((batch, ranges.into_iter())),
                    Ok(Err(error)) => return Some((Err(error), (receiver, None))),
                    Err(e) => {
                        let error = ArtifactError::Config(format!("decryption task: {e}"));
                        return Some((Err(error), (receiver, None)));
                    }
                }
            }
        },
    )
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

/// Reads one segment with a single GET from its first chunk on, in batches of
/// `CHUNKS_PER_BATCH` chunks, each handed to a blocking thread to decrypt in place as soon as
/// it is whole; stops when the reader has gone.
async fn read_segment(
    store: &Arc<dyn ObjectStore>,
    read: SegmentRead,
    sender: &tokio::sync::mpsc::Sender<Opening>,
) -> Result<(), ArtifactError> {
    let range = read.layout.range_of(read.first, read.layout.chunks());
    let total = (range.end - range.start) as usize;
    let options = GetOptions {
        range: Some(range.into()),
        ..GetOptions::default()
    };
    let mut raw = store.get_opts(&read.key, options).await?.into_stream();
    let step = CHUNK_BYTES + TAG_BYTES;
    let (mut consumed, mut index) = (0usize, read.first);
    // What arrived past the batch being filled (a piece may straddle two batches).
    let mut spill = Bytes::new();
    while consumed < total {
        let want = (CHUNKS_PER_BATCH as usize * step).min(total - consumed);
        let mut batch = BytesMut::with_capacity(want);
        while batch.len() < want {
            if spill.is_empty() {
                spill = match raw.next().await {
                    Some(piece) => piece?,
                    None => return Err(CryptoError::Damaged("truncated".into()).into()),
                };
            }
            let take = (want - batch.len()).min(spill.len());
            batch.extend_from_slice(&spill.split_to(take));
        }
        consumed += want;
        let ends = consumed == total;
        let opener = read.opener.clone();
        let first = index;
        index += want.div_ceil(step) as u64;
        let opening = tokio::task::spawn_blocking(move || -> Result<_, ArtifactError> {
            let plain = opener.open_run_in_place(first, &mut batch, ends)?;
            Ok((batch.freeze(), plain))
        });
        if sender.send(opening).await.is_err() {
            return Ok(());
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
