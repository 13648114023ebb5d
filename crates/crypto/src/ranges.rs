//! Random access to what `Sealer` made: where chunk `i` lies in the object, and opening runs of
//! chunks independently, so a reader can fetch ranges in parallel and resume at any offset.

use super::{
    Cipher, CryptoError, HEADER_BYTES, MAGIC, SecretKey, TAG_BYTES, chunk_nonce, chunk_rejected,
};

/// The shape of a sealed object of `plain_bytes` plaintext in chunks of `chunk_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedLayout {
    pub plain_bytes: u64,
    pub chunk_bytes: u64,
}

impl SealedLayout {
    /// Every object has at least one chunk: the last holds `plain_bytes % chunk_bytes` bytes
    /// (possibly none).
    pub fn chunks(&self) -> u64 {
        self.plain_bytes / self.chunk_bytes + 1
    }

    /// The object's length: header, plaintext and one tag per chunk.
    pub fn sealed_bytes(&self) -> u64 {
        HEADER_BYTES as u64 + self.plain_bytes + self.chunks() * TAG_BYTES as u64
    }

    /// Byte range `[start, end)` of chunks `first..last` (exclusive) in the object.
    pub fn range_of(&self, first: u64, last: u64) -> std::ops::Range<u64> {
        let sealed = self.chunk_bytes + TAG_BYTES as u64;
        let start = HEADER_BYTES as u64 + first * sealed;
        let end = if last >= self.chunks() {
            self.sealed_bytes()
        } else {
            HEADER_BYTES as u64 + last * sealed
        };
        start..end
    }
}

/// Opens chunks at known indices with the nonce prefix from an object's header.
#[derive(Clone)]
pub struct ChunkOpener {
    cipher: Cipher,
    prefix: [u8; 7],
    chunk_bytes: usize,
}

impl ChunkOpener {
    /// From a nonce prefix kept elsewhere (see `Sealer::nonce_prefix`).
    pub fn new(key: &SecretKey, prefix: [u8; 7], chunk_bytes: usize) -> Self {
        ChunkOpener {
            cipher: key.cipher(),
            prefix,
            chunk_bytes,
        }
    }

    /// From the object's first `HEADER_BYTES`; fails unless its chunk size is `chunk_bytes`.
    pub fn from_header(
        key: &SecretKey,
        header: &[u8],
        chunk_bytes: usize,
    ) -> Result<Self, CryptoError> {
        if header.len() < HEADER_BYTES || &header[..4] != MAGIC {
            return Err(CryptoError::Damaged("not a suanli encrypted object".into()));
        }
        let stated = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        if stated != chunk_bytes {
            return Err(CryptoError::Damaged(format!(
                "chunk size {stated}, expected {chunk_bytes}"
            )));
        }
        Ok(ChunkOpener {
            cipher: key.cipher(),
            prefix: header[8..15].try_into().expect("7 bytes"),
            chunk_bytes,
        })
    }

    /// Opens `sealed`, consecutive chunks starting at index `first`; the last of them is the
    /// object's last chunk iff `ends_object`. Every chunk is authenticated with its index and
    /// last-chunk flag, so a range from another place or object fails.
    pub fn open_run(
        &self,
        first: u64,
        sealed: &[u8],
        ends_object: bool,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut out = sealed.to_vec();
        let plain = self.open_run_in_place(first, &mut out, ends_object)?;
        // Close the gaps the tags leave: each chunk's plaintext moves down to follow the last.
        let mut filled = 0;
        for range in plain {
            let len = range.len();
            out.copy_within(range, filled);
            filled += len;
        }
        out.truncate(filled);
        Ok(out)
    }

    /// Like `open_run`, but decrypts in place: returns where each chunk's plaintext now lies
    /// in `sealed` (its tag follows it), with no allocation or copy.
    pub fn open_run_in_place(
        &self,
        first: u64,
        sealed: &mut [u8],
        ends_object: bool,
    ) -> Result<Vec<std::ops::Range<usize>>, CryptoError> {
        let step = self.chunk_bytes + TAG_BYTES;
        if sealed.is_empty() {
            return Err(CryptoError::Damaged("an empty range".into()));
        }
        let mut out = Vec::with_capacity(sealed.len() / step + 1);
        let (mut start, mut index) = (0usize, first);
        while start < sealed.len() {
            let take = step.min(sealed.len() - start);
            let last = start + take == sealed.len();
            let fits = if last && ends_object {
                (TAG_BYTES..step).contains(&take)
            } else {
                take == step
            };
            if !fits {
                return Err(CryptoError::Damaged("truncated".into()));
            }
            let nonce = chunk_nonce(
                &self.prefix,
                u32::try_from(index).map_err(|_| CryptoError::Damaged("chunk index".into()))?,
                last && ends_object,
            );
            let (text, tag) = sealed[start..start + take].split_at_mut(take - TAG_BYTES);
            self.cipher
                .open_in_place(nonce, b"", text, tag)
                .map_err(|_| chunk_rejected(index))?;
            out.push(start..start + take - TAG_BYTES);
            start += take;
            index += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sealer;

    fn seal(key: &SecretKey, data: &[u8], chunk: usize) -> Vec<u8> {
        let mut sealer = Sealer::new(key, chunk);
        let mut out = sealer.push(data).unwrap();
        out.extend(sealer.finish().unwrap());
        out
    }

    #[test]
    fn every_run_of_chunks_opens_alone_and_matches_the_plaintext() {
        let key = SecretKey::generate();
        for len in [0usize, 5, 16, 17, 48, 100] {
            let data: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
            let sealed = seal(&key, &data, 16);
            let layout = SealedLayout {
                plain_bytes: len as u64,
                chunk_bytes: 16,
            };
            assert_eq!(layout.sealed_bytes(), sealed.len() as u64, "len {len}");
            let opener = ChunkOpener::from_header(&key, &sealed, 16).unwrap();
            let n = layout.chunks();
            for first in 0..n {
                for last in first + 1..=n {
                    let r = layout.range_of(first, last);
                    let plain = opener
                        .open_run(first, &sealed[r.start as usize..r.end as usize], last == n)
                        .unwrap();
                    let mut run = sealed[r.start as usize..r.end as usize].to_vec();
                    let ranges = opener
                        .open_run_in_place(first, &mut run, last == n)
                        .unwrap();
                    let joined: Vec<u8> =
                        ranges.into_iter().flat_map(|x| run[x].to_vec()).collect();
                    assert_eq!(joined, plain);
                    let from = (first * 16) as usize;
                    let to = ((last * 16) as usize).min(len);
                    assert_eq!(plain, data[from..to], "len {len} chunks {first}..{last}");
                }
            }
        }
    }

    #[test]
    fn misplaced_or_cut_runs_fail() {
        let key = SecretKey::generate();
        let data = vec![9u8; 64];
        let sealed = seal(&key, &data, 16);
        let layout = SealedLayout {
            plain_bytes: 64,
            chunk_bytes: 16,
        };
        let opener = ChunkOpener::from_header(&key, &sealed, 16).unwrap();
        let prefix: [u8; 7] = sealed[8..15].try_into().unwrap();
        let r = layout.range_of(1, 2);
        let again = ChunkOpener::new(&key, prefix, 16);
        assert!(
            again
                .open_run(1, &sealed[r.start as usize..r.end as usize], false)
                .is_ok()
        );
        let run = &sealed[r.start as usize..r.end as usize];
        assert!(opener.open_run(2, run, false).is_err(), "wrong index");
        assert!(
            opener
                .open_run_in_place(2, &mut run.to_vec(), false)
                .is_err()
        );
        assert!(
            opener
                .open_run_in_place(1, &mut run.to_vec(), true)
                .is_err()
        );
        assert!(opener.open_run(1, run, true).is_err(), "not the last chunk");
        assert!(opener.open_run(1, &run[..run.len() - 1], false).is_err());
        assert!(ChunkOpener::from_header(&key, &sealed, 32).is_err());
        assert!(
            ChunkOpener::from_header(&SecretKey::generate(), &sealed, 16)
                .unwrap()
                .open_run(1, run, false)
                .is_err()
        );
    }
}
