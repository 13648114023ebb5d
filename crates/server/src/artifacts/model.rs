//! Artefact records (manifests, files, sharing) and the rules for names and paths.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ArtifactError;

/// Longest artefact name.
pub const MAX_NAME: usize = 128;
/// Longest file path inside an artefact.
pub const MAX_PATH: usize = 512;
/// Most files in one version.
pub const MAX_FILES: usize = 10_000;

/// Who besides the owning tenant may read an artefact (read-only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Acl {
    pub owner_tenant: String,
    pub kind: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub shared_with: Vec<String>,
    pub created_at_s: i64,
}

impl Acl {
    /// Whether members of `tenant` (not the owner) may read.
    pub fn shared_with_tenant(&self, tenant: Option<&str>) -> bool {
        self.public || tenant.is_some_and(|t| self.shared_with.iter().any(|s| s == t))
    }
}

/// One stored file of a version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path as uploaded (`config.json`, `model-00001-of-00002.safetensors`).
    pub path: String,
    pub size_bytes: u64,
    /// SHA-256 of the plaintext, hex; checked on every read.
    pub sha256: String,
    /// The file's data key wrapped by the tenant key.
    pub wrapped_key: String,
    pub tenant_key_id: String,
    /// The encrypted objects holding the file, in order: one, or more when an interrupted
    /// upload was resumed.
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// An upload broke off after `size_bytes`; the version cannot be committed until the
    /// upload is resumed from there and completed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// One encrypted object of a file (`STEM.NNNNN.data`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub plain_bytes: u64,
    /// The STREAM nonce prefix of the object (7 bytes, hex), also in its header.
    pub nonce_prefix: String,
}

/// The object holding segment `index` of the file stored under `stem`.
pub fn segment_key(stem: &str, index: usize) -> String {
    format!("{stem}.{index:05}.data")
}

/// A version of an artefact: complete once committed. The store keeps each file as a
/// `FileEntry` (with its wrapped key and segments); the API shows it as a `FileView`
/// (`types::ManifestView`), so both share this one list of fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    as = ManifestView,
    description = "A version: its files, size and content address once complete."
)]
pub struct Manifest<F = FileEntry> {
    pub tenant: String,
    pub name: String,
    pub version: u64,
    /// `model` or `checkpoint`.
    pub kind: String,
    pub created_by: String,
    pub created_at_s: i64,
    pub complete: bool,
    pub size_bytes: u64,
    /// `sha256:...` over every file's path and digest: the version's content address; none
    /// until committed.
    pub digest: Option<String>,
    /// Sorted by path; filled at commit.
    #[serde(default = "Vec::new")]
    pub files: Vec<F>,
}

impl<F> Manifest<F> {
    /// The same version with each file shown through `show`.
    pub fn map_files<G>(&self, show: impl FnMut(&F) -> G) -> Manifest<G> {
        Manifest {
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            version: self.version,
            kind: self.kind.clone(),
            created_by: self.created_by.clone(),
            created_at_s: self.created_at_s,
            complete: self.complete,
            size_bytes: self.size_bytes,
            digest: self.digest.clone(),
            files: self.files.iter().map(show).collect(),
        }
    }
}

impl Manifest {
    /// The content address of a set of files: SHA-256 over `path\0sha256\n` in path order.
    pub fn digest_of(files: &[FileEntry]) -> String {
        let mut hasher = Sha256::new();
        for file in files {
            hasher.update(file.path.as_bytes());
            hasher.update([0]);
            hasher.update(file.sha256.as_bytes());
            hasher.update([b'\n']);
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

/// Which version a request names.
#[derive(Clone, Debug, PartialEq)]
pub enum VersionRef {
    Number(u64),
    /// The newest complete version.
    Latest,
    /// The complete version whose digest starts with this (`sha256:` + at least 12 hex digits).
    Digest(String),
}

impl VersionRef {
    /// `7`, `latest` or `sha256:HEX`.
    pub fn parse(text: &str) -> Result<Self, ArtifactError> {
        if text == "latest" {
            return Ok(VersionRef::Latest);
        }
        if let Some(hex) = text.strip_prefix("sha256:") {
            if hex.len() >= 12 && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(VersionRef::Digest(text.to_ascii_lowercase()));
            }
        } else if let Ok(n) = text.parse::<u64>()
            && n > 0
        {
            return Ok(VersionRef::Number(n));
        }
        Err(ArtifactError::BadRequest(format!(
            "version `{}`: use a number (1, 2, ...), `latest` or `sha256:` and 12-64 hex digits",
            printable(text)
        )))
    }
}

/// Control characters replaced, length bounded: safe to echo.
pub fn printable(text: &str) -> String {
    text.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn segment_ok(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'='))
}

/// An artefact name: 1-128 of `A-Z a-z 0-9 . _ - + =`, not `.` or `..`.
pub fn check_name(name: &str) -> Result<(), ArtifactError> {
    if name.len() <= MAX_NAME && segment_ok(name) {
        return Ok(());
    }
    Err(ArtifactError::BadRequest(format!(
        "artifact name `{}`: use 1-{MAX_NAME} letters, digits, `.`, `_`, `-`, `+` or `=`",
        printable(name)
    )))
}

/// A file path inside an artefact: relative, `/`-separated segments like names.
pub fn check_path(path: &str) -> Result<(), ArtifactError> {
    if path.len() <= MAX_PATH && path.split('/').all(segment_ok) {
        return Ok(());
    }
    Err(ArtifactError::BadRequest(format!(
        "file path `{}`: use a relative path of at most {MAX_PATH} characters whose parts are letters, digits, `.`, `_`, `-`, `+` or `=` (no `..`)",
        printable(path)
    )))
}

/// Object-store key prefix of an artefact.
pub fn artifact_prefix(tenant: &str, name: &str) -> String {
    format!("artifacts/{tenant}/{name}")
}

/// Object-store key prefix of a version.
pub fn version_prefix(tenant: &str, name: &str, version: u64) -> String {
    format!("{}/{version:010}", artifact_prefix(tenant, name))
}

/// Object-store key stem of a file: its path hashed, so names need no escaping.
pub fn file_stem(tenant: &str, name: &str, version: u64, path: &str) -> String {
    let id = hex::encode(&Sha256::digest(path.as_bytes())[..16]);
    format!("{}/files/{id}", version_prefix(tenant, name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_reject_traversal_and_control_characters() {
        assert!(check_name("llama-3-8b").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\u{1b}[31m", &"a".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("original/params.json").is_ok());
        for bad in ["/etc/passwd", "a/../b", "a//b", "a/", "a\nb", ""] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn version_references_parse_or_say_what_is_right() {
        assert_eq!(VersionRef::parse("3").unwrap(), VersionRef::Number(3));
        assert_eq!(VersionRef::parse("latest").unwrap(), VersionRef::Latest);
        assert!(matches!(
            VersionRef::parse("sha256:0123456789ab").unwrap(),
            VersionRef::Digest(_)
        ));
        for bad in ["0", "-1", "sha256:12", "newest", "sha256:zzzzzzzzzzzzzz"] {
            let error = VersionRef::parse(bad).unwrap_err().to_string();
            assert!(error.contains("use a number"), "{error}");
        }
    }
}
