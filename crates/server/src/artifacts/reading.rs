//! Reading a stored file: ciphertext stream in, plaintext stream out, one chunk at a time,
//! ending in an error if the plaintext's size or SHA-256 differs from the recorded one.

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use sha2::{Digest, Sha256};

use super::ArtifactError;
use super::crypto::{Opener, SecretKey};
use super::model::FileEntry;

struct Decrypting {
    raw: BoxStream<'static, object_store::Result<Bytes>>,
    opener: Option<Opener>,
    hasher: Sha256,
    size_bytes: u64,
    entry: FileEntry,
}

impl Decrypting {
    fn check(&mut self, plain: &[u8]) -> Result<(), ArtifactError> {
        self.hasher.update(plain);
        self.size_bytes += plain.len() as u64;
        if self.size_bytes > self.entry.size_bytes {
            return Err(self.integrity("longer than recorded"));
        }
        Ok(())
    }

    fn integrity(&self, problem: &str) -> ArtifactError {
        ArtifactError::Integrity {
            path: self.entry.path.clone(),
            problem: problem.to_string(),
        }
    }
}

/// Decrypts `raw` with `key`, checking it against `entry`.
pub(super) fn decrypt_stream(
    raw: BoxStream<'static, object_store::Result<Bytes>>,
    key: SecretKey,
    entry: FileEntry,
) -> BoxStream<'static, Result<Bytes, ArtifactError>> {
    let state = Decrypting {
        raw,
        opener: Some(Opener::new(&key)),
        hasher: Sha256::new(),
        size_bytes: 0,
        entry,
    };
    futures::stream::try_unfold(state, |mut state| async move {
        loop {
            let Some(opener) = state.opener.as_mut() else {
                return Ok(None);
            };
            match state.raw.next().await {
                Some(piece) => {
                    let plain = opener.push(&piece?)?;
                    if !plain.is_empty() {
                        state.check(&plain)?;
                        return Ok(Some((Bytes::from(plain), state)));
                    }
                }
                None => {
                    let opener = state.opener.take().expect("present");
                    let plain = opener.finish()?;
                    state.check(&plain)?;
                    let digest = hex::encode(std::mem::take(&mut state.hasher).finalize());
                    if state.size_bytes != state.entry.size_bytes || digest != state.entry.sha256 {
                        return Err(
                            state.integrity("SHA-256 or size differs from the recorded one")
                        );
                    }
                    return Ok(Some((Bytes::from(plain), state)));
                }
            }
        }
    })
    .boxed()
}
