//! Request and response bodies of the artefact routes, shared by the handlers and the CLI's
//! client, so a change on either side is a compile error rather than a silently missing field.
//! What a manifest shows here leaves out the wrapped keys and segments the store keeps.

use serde::{Deserialize, Serialize};

use super::model::{FileEntry, Manifest};

/// A stored file as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileView {
    pub path: String,
    pub size_bytes: u64,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
}

impl From<&FileEntry> for FileView {
    fn from(file: &FileEntry) -> Self {
        FileView {
            path: file.path.clone(),
            size_bytes: file.size_bytes,
            sha256: file.sha256.clone(),
        }
    }
}

/// How much of a file a partial version holds (`GET .../uploads?path=`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UploadProgress {
    pub path: String,
    pub size_bytes: u64,
    /// SHA-256 of the bytes received, hex.
    pub sha256: String,
    /// The upload broke off; it resumes from `size_bytes`.
    pub interrupted: bool,
}

impl From<&FileEntry> for UploadProgress {
    fn from(file: &FileEntry) -> Self {
        UploadProgress {
            path: file.path.clone(),
            size_bytes: file.size_bytes,
            sha256: file.sha256.clone(),
            interrupted: file.interrupted,
        }
    }
}

/// A version as the API shows it: its files without their keys, size and content address.
pub type ManifestView = Manifest<FileView>;

impl From<&Manifest> for ManifestView {
    fn from(manifest: &Manifest) -> Self {
        manifest.map_files(|file| FileView::from(file))
    }
}

/// One artefact in `GET /api/v1/artifacts`: its newest complete version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactSummary {
    pub tenant: String,
    pub name: String,
    pub kind: String,
    pub public: bool,
    /// How many complete versions.
    pub versions: usize,
    pub latest: Option<u64>,
    pub size_bytes: Option<u64>,
    pub digest: Option<String>,
    /// Shown to the owning tenant only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<Vec<String>>,
}

/// One artefact with every version (`GET /api/v1/artifacts/{tenant}/{name}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactView {
    pub tenant: String,
    pub name: String,
    pub kind: String,
    pub public: bool,
    pub versions: Vec<ManifestView>,
    /// Shown to the owning tenant only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<Vec<String>>,
}

/// `POST .../versions`: start a partial version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewVersion {
    /// `model` or `checkpoint`.
    pub kind: String,
}

/// `POST .../share` and `.../unshare`: one tenant, or everyone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShareRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

/// Who may read an artefact after a share or unshare.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sharing {
    pub tenant: String,
    pub name: String,
    pub public: bool,
    pub shared_with: Vec<String>,
}

/// `POST .../retain`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetainRequest {
    /// How many of the newest complete versions to keep.
    pub keep_last: Option<usize>,
    /// Partial versions older than this are abandoned uploads (default one hour).
    pub partial_age_s: Option<i64>,
}

/// The versions a retain deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Retained {
    pub deleted_versions: Vec<u64>,
}
