//! Envelope encryption: AES-256-GCM keys wrapped by keys, and a chunked stream cipher.
//!
//! A master key (the server's) wraps one key per tenant; a tenant key wraps one data key per
//! stored file; a data key encrypts the file. Rotating a key re-wraps the keys below it and
//! never touches the data. Files are sealed in fixed-size chunks with the STREAM construction
//! (Hoang, Reyhanitabar, Rogaway and Vizár, "Online Authenticated-Encryption and its
//! Nonce-Reuse Misuse-Resistance", CRYPTO 2015, §7): chunk `i`'s nonce is a random 7-byte
//! prefix, `i` as 4 big-endian bytes and a last-chunk flag, so reordering, dropping or
//! truncating chunks fails authentication and memory stays at one chunk.

use sha2::{Digest, Sha256};

mod aead;
mod ranges;
use aead::Cipher;
pub use ranges::{ChunkOpener, SealedLayout};

/// Bytes of plaintext per sealed chunk.
pub const CHUNK_BYTES: usize = 1 << 20;
/// The GCM tag added to every chunk.
pub const TAG_BYTES: usize = 16;
const MAGIC: &[u8; 4] = b"SLA1";
/// Magic, chunk size (u32 LE) and nonce prefix.
pub const HEADER_BYTES: usize = 4 + 4 + 7;

/// What goes wrong with keys and ciphertext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("{0}")]
    BadKey(String),
    #[error("{what} does not decrypt: wrong key or tampered data")]
    Unwrap { what: String },
    #[error("encrypted object is damaged: {0}")]
    Damaged(String),
}

/// A 256-bit key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system provides random bytes");
        SecretKey(key)
    }

    /// From 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(text.trim()).map_err(|_| {
            CryptoError::BadKey("a key is 64 hex digits (32 bytes); this is not hex".into())
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            CryptoError::BadKey(format!(
                "a key is 64 hex digits (32 bytes); this has {} bytes",
                b.len()
            ))
        })?;
        Ok(SecretKey(key))
    }

    /// 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A public name for the key: 16 hex digits of SHA-256 over a label and the key.
    pub fn id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"suanli key id\0");
        hasher.update(self.0);
        hex::encode(&hasher.finalize()[..8])
    }

    /// The AES-256-GCM cipher of this key.
    fn cipher(&self) -> Cipher {
        Cipher::new(&self.0)
    }

    /// Wraps `key` for `context` (bound as associated data): nonce (12 bytes) and ciphertext, hex.
    pub fn wrap(&self, key: &SecretKey, context: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system provides random bytes");
        let mut sealed = Vec::with_capacity(32 + TAG_BYTES);
        self.cipher()
            .seal_onto(nonce, context.as_bytes(), &key.0, &mut sealed);
        format!("{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    /// Unwraps what `wrap` made for the same `context`.
    pub fn unwrap_key(&self, wrapped: &str, context: &str) -> Result<SecretKey, CryptoError> {
        let fail = || CryptoError::Unwrap {
            what: context.to_string(),
        };
        let bytes = hex::decode(wrapped).map_err(|_| fail())?;
        if bytes.len() != 12 + 32 + TAG_BYTES {
            return Err(fail());
        }
        let nonce: [u8; 12] = bytes[..12].try_into().expect("12 bytes");
        let plain = self
            .cipher()
            .open(nonce, context.as_bytes(), &bytes[12..])
            .map_err(|_| fail())?;
        Ok(SecretKey(plain.try_into().map_err(|_| fail())?))
    }
}

/// The magic of a sealed record (a small object encrypted whole, such as a manifest).
const RECORD_MAGIC: &[u8; 4] = b"SLR1";

impl SecretKey {
    /// Encrypts a small record whole for `context` (bound as associated data, e.g. the object
    /// path, so a record moved elsewhere does not open): magic, 12-byte nonce, ciphertext.
    pub fn seal_record(&self, plain: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system provides random bytes");
        let mut out = Vec::with_capacity(4 + 12 + plain.len() + TAG_BYTES);
        out.extend_from_slice(RECORD_MAGIC);
        out.extend_from_slice(&nonce);
        self.cipher()
            .seal_onto(nonce, context.as_bytes(), plain, &mut out);
        out
    }

    /// Decrypts what `seal_record` made for the same `context`.
    pub fn open_record(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 4 + 12 + TAG_BYTES || &sealed[..4] != RECORD_MAGIC {
            return Err(CryptoError::Damaged(format!(
                "{context} is not a sealed record"
            )));
        }
        let nonce: [u8; 12] = sealed[4..16].try_into().expect("12 bytes");
        self.cipher()
            .open(nonce, context.as_bytes(), &sealed[16..])
            .map_err(|_| CryptoError::Unwrap {
                what: context.to_string(),
            })
    }
}

fn chunk_nonce(prefix: &[u8; 7], index: u32, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..7].copy_from_slice(prefix);
    nonce[7..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// Chunk `index` does not open with its nonce and key.
fn chunk_rejected(index: u64) -> CryptoError {
    CryptoError::Damaged(format!(
        "chunk {index} fails authentication (wrong data key, tampered, reordered or truncated)"
    ))
}

/// Encrypts a stream: feed plaintext with `push`, end with `finish`; both return ciphertext.
pub struct Sealer {
    cipher: Cipher,
    prefix: [u8; 7],
    index: u32,
    chunk_bytes: usize,
    pending: Vec<u8>,
    header: Option<Vec<u8>>,
}

impl Sealer {
    /// A sealer with `key` and chunks of `chunk_bytes` plaintext.
    pub fn new(key: &SecretKey, chunk_bytes: usize) -> Self {
        let mut prefix = [0u8; 7];
        getrandom::fill(&mut prefix).expect("the operating system provides random bytes");
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&(chunk_bytes as u32).to_le_bytes());
        header.extend_from_slice(&prefix);
        Sealer {
            cipher: key.cipher(),
            prefix,
            index: 0,
            chunk_bytes,
            pending: Vec::with_capacity(chunk_bytes),
            header: Some(header),
        }
    }

    /// The random nonce prefix this sealer wrote into its header (readers that keep it in an
    /// authenticated record need not fetch the header).
    pub fn nonce_prefix(&self) -> [u8; 7] {
        self.prefix
    }

    fn seal(&mut self, plain: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        if let Some(header) = self.header.take() {
            out.extend_from_slice(&header);
        }
        let nonce = chunk_nonce(&self.prefix, self.index, last);
        self.cipher.seal_onto(nonce, b"", plain, out);
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| CryptoError::Damaged("more than 2^32 chunks in one object".into()))?;
        Ok(())
    }

    /// Ciphertext of every chunk `data` completes.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(
            (self.pending.len() + data.len()) / self.chunk_bytes * (self.chunk_bytes + TAG_BYTES)
                + HEADER_BYTES,
        );
        while !data.is_empty() {
            if self.pending.is_empty() && data.len() >= self.chunk_bytes {
                // A whole chunk in `data`: sealed from there, not copied into `pending` first.
                let (chunk, rest) = data.split_at(self.chunk_bytes);
                self.seal(chunk, false, &mut out)?;
                data = rest;
                continue;
            }
            let take = (self.chunk_bytes - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == self.chunk_bytes {
                let chunk = std::mem::take(&mut self.pending);
                self.seal(&chunk, false, &mut out)?;
                self.pending = chunk;
                self.pending.clear();
            }
        }
        Ok(out)
    }

    /// The last chunk (possibly empty plaintext) and, for an empty stream, the header.
    pub fn finish(mut self) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::new();
        let chunk = std::mem::take(&mut self.pending);
        self.seal(&chunk, true, &mut out)?;
        Ok(out)
    }
}

/// Decrypts what `Sealer` made: feed ciphertext with `push`, end with `finish`.
pub struct Opener {
    cipher: Cipher,
    prefix: Option<[u8; 7]>,
    chunk_bytes: usize,
    index: u32,
    pending: Vec<u8>,
}

impl Opener {
    /// An opener with `key`.
    pub fn new(key: &SecretKey) -> Self {
        Opener {
            cipher: key.cipher(),
            prefix: None,
            chunk_bytes: 0,
            index: 0,
            pending: Vec::new(),
        }
    }

    fn open(&mut self, sealed: &[u8], last: bool) -> Result<Vec<u8>, CryptoError> {
        let prefix = self.prefix.expect("header read before chunks");
        let nonce = chunk_nonce(&prefix, self.index, last);
        let plain = self
            .cipher
            .open(nonce, b"", sealed)
            .map_err(|_| chunk_rejected(self.index.into()))?;
        self.index = self.index.wrapping_add(1);
        Ok(plain)
    }

    fn read_header(&mut self) -> Result<bool, CryptoError> {
        if self.prefix.is_some() {
            return Ok(true);
        }
        if self.pending.len() < HEADER_BYTES {
            return Ok(false);
        }
        if &self.pending[..4] != MAGIC {
            return Err(CryptoError::Damaged("not a suanli encrypted object".into()));
        }
        let chunk_bytes = u32::from_le_bytes(self.pending[4..8].try_into().expect("4 bytes"));
        if chunk_bytes == 0 || chunk_bytes > 64 << 20 {
            return Err(CryptoError::Damaged(format!("chunk size {chunk_bytes}")));
        }
        self.chunk_bytes = chunk_bytes as usize;
        self.prefix = Some(self.pending[8..15].try_into().expect("7 bytes"));
        self.pending.drain(..HEADER_BYTES);
        Ok(true)
    }

    /// Plaintext of every full chunk received so far; the last chunk waits for `finish`.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        if !self.read_header()? {
            return Ok(out);
        }
        let sealed_bytes = self.chunk_bytes + TAG_BYTES;
        // A chunk is known not to be the last once more bytes follow it.
        let mut start = 0;
        while self.pending.len() - start > sealed_bytes {
            let chunk = self.pending[start..start + sealed_bytes].to_vec();
            out.extend_from_slice(&self.open(&chunk, false)?);
            start += sealed_bytes;
        }
        self.pending.drain(..start);
        Ok(out)
    }

    /// The last chunk's plaintext; fails if the stream was cut short.
    pub fn finish(mut self) -> Result<Vec<u8>, CryptoError> {
        if !self.read_header()? {
            return Err(CryptoError::Damaged("shorter than its header".into()));
        }
        if self.pending.len() < TAG_BYTES || self.pending.len() >= self.chunk_bytes + TAG_BYTES {
            return Err(CryptoError::Damaged("truncated".into()));
        }
        let chunk = std::mem::take(&mut self.pending);
        self.open(&chunk, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &SecretKey, data: &[u8], chunk: usize, step: usize) -> Vec<u8> {
        let mut sealer = Sealer::new(key, chunk);
        let mut out = Vec::new();
        for part in data.chunks(step.max(1)) {
            out.extend(sealer.push(part).unwrap());
        }
        out.extend(sealer.finish().unwrap());
        out
    }

    fn open(key: &SecretKey, data: &[u8], step: usize) -> Result<Vec<u8>, CryptoError> {
        let mut opener = Opener::new(key);
        let mut out = Vec::new();
        for part in data.chunks(step.max(1)) {
            out.extend(opener.push(part)?);
        }
        out.extend(opener.finish()?);
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_boundary_and_feed_size() {
        let key = SecretKey::generate();
        for len in [0usize, 1, 15, 16, 17, 32, 33, 100] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            for step in [1, 3, 16, 1000] {
                let sealed = seal(&key, &data, 16, step);
                // header + one tag per chunk, the last one possibly empty
                assert_eq!(
                    sealed.len(),
                    HEADER_BYTES + len + (len / 16 + 1) * TAG_BYTES
                );
                assert_eq!(open(&key, &sealed, step + 5).unwrap(), data, "len {len}");
            }
        }
    }

    #[test]
    fn truncation_reordering_tampering_and_wrong_keys_fail() {
        let key = SecretKey::generate();
        let data = vec![42u8; 64];
        let sealed = seal(&key, &data, 16, 64);
        let chunk = 16 + TAG_BYTES;
        // Dropping the last chunk leaves a valid-looking non-final chunk at the end.
        let cut = &sealed[..sealed.len() - TAG_BYTES];
        assert!(open(&key, cut, 7).is_err());
        let cut = &sealed[..HEADER_BYTES + 2 * chunk];
        assert!(open(&key, cut, 7).is_err());
        let mut swapped = sealed.clone();
        let (a, b) = (HEADER_BYTES, HEADER_BYTES + chunk);
        let first = swapped[a..b].to_vec();
        let second = swapped[b..b + chunk].to_vec();
        swapped[a..b].copy_from_slice(&second);
        swapped[b..b + chunk].copy_from_slice(&first);
        assert!(open(&key, &swapped, 7).is_err());
        let mut flipped = sealed.clone();
        flipped[HEADER_BYTES + 3] ^= 1;
        assert!(open(&key, &flipped, 7).is_err());
        assert!(open(&SecretKey::generate(), &sealed, 7).is_err());
        // The plaintext bytes are nowhere in the ciphertext.
        assert!(!sealed.windows(8).any(|w| w == [42u8; 8]));
    }

    #[test]
    fn wrapped_keys_are_bound_to_their_context_and_wrapping_key() {
        let master = SecretKey::generate();
        let tenant = SecretKey::generate();
        let wrapped = master.wrap(&tenant, "tenant acme");
        assert_eq!(master.unwrap_key(&wrapped, "tenant acme").unwrap(), tenant);
        assert!(master.unwrap_key(&wrapped, "tenant other").is_err());
        assert!(
            SecretKey::generate()
                .unwrap_key(&wrapped, "tenant acme")
                .is_err()
        );
        assert!(SecretKey::from_hex("abc").is_err());
        let record = tenant.seal_record(b"{\"name\":\"llama\"}", "a/manifest.json");
        assert!(!record.windows(5).any(|w| w == b"llama"));
        assert_eq!(
            tenant.open_record(&record, "a/manifest.json").unwrap(),
            b"{\"name\":\"llama\"}"
        );
        assert!(tenant.open_record(&record, "b/manifest.json").is_err());
        assert!(master.open_record(&record, "a/manifest.json").is_err());
        assert!(
            tenant
                .open_record(&record[..20], "a/manifest.json")
                .is_err()
        );
        assert_eq!(
            SecretKey::from_hex(&master.to_hex()).unwrap().id(),
            master.id()
        );
    }
}

#[cfg(test)]
mod speed {
    /// `cargo test -p suanli-crypto --release -- --ignored --nocapture speed`
    #[test]
    #[ignore = "timing probe"]
    fn seal_open_and_hash_speed() {
        let key = super::SecretKey::generate();
        let data = vec![7u8; 64 << 20];
        let t = std::time::Instant::now();
        let mut s = super::Sealer::new(&key, super::CHUNK_BYTES);
        let mut sealed = Vec::new();
        for part in data.chunks(1 << 16) {
            sealed.extend(s.push(part).unwrap());
        }
        sealed.extend(s.finish().unwrap());
        let seal_s = t.elapsed().as_secs_f64();
        let opener = super::ChunkOpener::from_header(&key, &sealed, super::CHUNK_BYTES).unwrap();
        let t = std::time::Instant::now();
        opener
            .open_run_in_place(0, &mut sealed[super::HEADER_BYTES..], true)
            .unwrap();
        let open_s = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        use sha2::Digest;
        let _ = sha2::Sha256::digest(&data);
        eprintln!(
            "64 MiB: seal {:.0} MB/s, open in place {:.0} MB/s, sha256 {:.0} MB/s",
            64.0 / seal_s,
            64.0 / open_s,
            64.0 / t.elapsed().as_secs_f64()
        );
    }
}
