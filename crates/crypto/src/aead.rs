//! AES-256-GCM through `ring`, whose x86-64 code interleaves AES and GHASH with VAES/AVX2
//! (or AES-NI/PCLMULQDQ): several times the throughput of the portable `aes-gcm` crate on the
//! same core. The ciphertext is standard GCM (12-byte nonce, 16-byte tag after the text), so
//! objects written with either implementation open with the other (tested below).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use super::TAG_BYTES;

/// One AES-256-GCM key, ready to seal and open.
#[derive(Clone)]
pub(crate) struct Cipher(LessSafeKey);

/// Authentication failed: wrong key, wrong nonce or associated data, or altered bytes.
#[derive(Debug)]
pub(crate) struct Rejected;

impl Cipher {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, key).expect("32 bytes is an AES-256 key");
        Cipher(LessSafeKey::new(key))
    }

    /// Encrypts `text` in place and returns its tag.
    pub(crate) fn seal_in_place(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        text: &mut [u8],
    ) -> [u8; TAG_BYTES] {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), text)
            .expect("GCM seals up to 64 GiB per nonce");
        tag.as_ref().try_into().expect("a 16-byte tag")
    }

    /// Decrypts `text` in place if `tag` authenticates it (with `nonce` and `aad`).
    pub(crate) fn open_in_place(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        text: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Rejected> {
        let tag: [u8; TAG_BYTES] = tag.try_into().map_err(|_| Rejected)?;
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                Tag::from(tag),
                text,
                0..,
            )
            .map(|_| ())
            .map_err(|_| Rejected)
    }

    /// `plain` sealed: ciphertext then tag, appended to `out`.
    pub(crate) fn seal_onto(&self, nonce: [u8; 12], aad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self.seal_in_place(nonce, aad, &mut out[start..]);
        out.extend_from_slice(&tag);
    }

    /// The plaintext of `sealed` (ciphertext then tag).
    pub(crate) fn open(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, Rejected> {
        let text_bytes = sealed.len().checked_sub(TAG_BYTES).ok_or(Rejected)?;
        let mut text = sealed[..text_bytes].to_vec();
        self.open_in_place(nonce, aad, &mut text, &sealed[text_bytes..])?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::{Aead, KeyInit, Payload};

    /// Test case 14 of McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)" (2005):
    /// a zero 256-bit key, a zero 96-bit IV and one zero block.
    #[test]
    fn matches_the_published_gcm_test_vector() {
        let cipher = Cipher::new(&[0u8; 32]);
        let mut out = Vec::new();
        cipher.seal_onto([0u8; 12], b"", &[0u8; 16], &mut out);
        assert_eq!(
            hex::encode(&out),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
        // Test case 13: the same key and IV, no plaintext: the tag alone.
        let mut out = Vec::new();
        cipher.seal_onto([0u8; 12], b"", b"", &mut out);
        assert_eq!(hex::encode(&out), "530f8afbc74536b9a963b4f1c4cb738b");
    }

    /// What `ring` seals, the independent RustCrypto implementation opens, and back, at sizes
    /// around the 16-byte block and the 1 MiB chunk.
    #[test]
    fn interoperates_with_the_rustcrypto_implementation() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8 * 7 + 1);
        let ours = Cipher::new(&key);
        let theirs = aes_gcm::Aes256Gcm::new(aes_gcm::Key::<aes_gcm::Aes256Gcm>::from_slice(&key));
        for len in [0usize, 1, 15, 16, 17, 4095, 1 << 20, (1 << 20) + 16] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let nonce: [u8; 12] = std::array::from_fn(|i| (len + i) as u8);
            let aad = format!("object {len}");
            let mut sealed = Vec::new();
            ours.seal_onto(nonce, aad.as_bytes(), &plain, &mut sealed);
            let payload = Payload {
                msg: &sealed,
                aad: aad.as_bytes(),
            };
            let opened = theirs
                .decrypt(aes_gcm::Nonce::from_slice(&nonce), payload)
                .expect("RustCrypto opens what ring sealed");
            assert_eq!(opened, plain, "len {len}");
            let payload = Payload {
                msg: &plain,
                aad: aad.as_bytes(),
            };
            let theirs_sealed = theirs
                .encrypt(aes_gcm::Nonce::from_slice(&nonce), payload)
                .unwrap();
            assert_eq!(theirs_sealed, sealed, "len {len}");
            assert_eq!(ours.open(nonce, aad.as_bytes(), &sealed).unwrap(), plain);
            assert!(ours.open(nonce, b"elsewhere", &sealed).is_err());
            let mut flipped = sealed.clone();
            flipped[len / 2] ^= 0x40;
            assert!(ours.open(nonce, aad.as_bytes(), &flipped).is_err());
        }
    }
}
