//! `Label`: the short texts of a result record (job id, tenant, accelerator type) without a heap
//! allocation each.
//!
//! A replay of a million jobs returns a million records; with a `String` per field that is three
//! million allocations (and about 100 MB) for texts that are mostly a few characters long (job
//! ids) or the same few values over and over (tenants, types). A label holds up to
//! [`Label::INLINE_BYTES`] bytes in place, and a longer text behind an `Arc` that clones share.
//! It reads, compares, prints and serialises as the text it holds.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A short text held in place, or a longer one shared.
#[derive(Clone)]
pub struct Label(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; Label::INLINE_BYTES],
    },
    Shared(Arc<str>),
}

impl Label {
    /// Texts up to this many bytes are held in place (the label is as large as a `String`).
    pub const INLINE_BYTES: usize = 22;

    /// The text's bytes (compared without checking them again).
    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared(text) => text.as_bytes(),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                // Only ever filled from a `&str` of exactly `len` bytes.
                std::str::from_utf8(&bytes[..usize::from(*len)]).expect("a label holds UTF-8")
            }
            Repr::Shared(text) => text,
        }
    }
}

impl From<&str> for Label {
    fn from(text: &str) -> Self {
        if text.len() <= Label::INLINE_BYTES {
            let mut bytes = [0; Label::INLINE_BYTES];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Label(Repr::Inline {
                len: text.len() as u8,
                bytes,
            })
        } else {
            Label(Repr::Shared(Arc::from(text)))
        }
    }
}

impl From<String> for Label {
    fn from(text: String) -> Self {
        Label::from(text.as_str())
    }
}

impl std::ops::Deref for Label {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Label {}

/// The order of the texts (`str` orders by bytes).
impl Ord for Label {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for Label {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Label {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Label {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_compares_and_serialises_as_its_text() {
        let long = "a-tenant-name-longer-than-twenty-two-bytes";
        for text in ["", "0", "h100-sxm5-80gb", "exactly-22-bytes-long!", long] {
            let label = Label::from(text);
            assert_eq!(label.as_str(), text);
            assert_eq!(label, text);
            assert_eq!(label.clone(), label);
            assert_eq!(label.cmp(&Label::from("m")), text.cmp("m"));
            assert_eq!(label.to_string(), text);
            assert_eq!(format!("{label:?}"), format!("{text:?}"));
            assert_eq!(
                serde_json::to_string(&label).unwrap(),
                serde_json::to_string(text).unwrap()
            );
        }
        assert_eq!(size_of::<Label>(), size_of::<String>());
        assert!(matches!(Label::from(long).0, Repr::Shared(_)));
        assert!(matches!(
            Label::from("exactly-22-bytes-long!").0,
            Repr::Inline { .. }
        ));
    }
}
