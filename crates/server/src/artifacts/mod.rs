//! The artefact repository: models and checkpoints, versioned, content-addressed by SHA-256,
//! encrypted per tenant, kept in an object store (local directory or S3), with read-only
//! sharing between tenants.
//!
//! Layout in the object store (every file's bytes are ciphertext; see `crypto`):
//! `keys/TENANT.json` (the tenant key wrapped by the master key),
//! `artifacts/TENANT/NAME/acl.json` (sharing), `artifacts/TENANT/NAME/VERSION/manifest.json`
//! and per file `.../VERSION/files/ID.json` (path, size, SHA-256, wrapped data key) and
//! `.../VERSION/files/ID.data`. The object store is the only state, so a server on another
//! node with the same store and master key sees the same artefacts.

pub mod api;
pub mod backend;
pub use suanli_crypto as crypto;
pub mod keys;
pub mod model;
mod reading;
mod repo;

use std::path::{Path, PathBuf};

pub use crypto::SecretKey;
pub use model::{Acl, FileEntry, Manifest, VersionRef};
pub use repo::Repository;

/// Where artefacts live and which master key protects them.
#[derive(Clone, Debug, Default)]
pub struct ArtifactConfig {
    /// `None`: DATA_DIR/objects. Otherwise `file:///DIR` or `s3://BUCKET?endpoint=...`.
    pub store: Option<String>,
    /// A file holding the master key (64 hex digits). Without it and without
    /// `SUANLI_MASTER_KEY`, DATA_DIR/master-key is used (created on first start, mode 0600).
    pub master_key_file: Option<PathBuf>,
}

impl ArtifactConfig {
    /// From `SUANLI_STORE` and `SUANLI_MASTER_KEY_FILE`.
    pub fn from_env() -> Self {
        ArtifactConfig {
            store: std::env::var("SUANLI_STORE").ok().filter(|s| !s.is_empty()),
            master_key_file: std::env::var_os("SUANLI_MASTER_KEY_FILE").map(PathBuf::from),
        }
    }
}

/// What goes wrong in the repository.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("integrity check failed for {path}: {problem}")]
    Integrity { path: String, problem: String },
}

/// Opens the repository for a server in `data_dir`.
pub async fn open(config: &ArtifactConfig, data_dir: &Path) -> Result<Repository, ArtifactError> {
    let master = keys::load_master_key(config.master_key_file.as_deref(), data_dir)?;
    let store = backend::open(config.store.as_deref(), data_dir)?;
    let repo = Repository::new(store, master);
    repo.check_master_key().await?;
    Ok(repo)
}
