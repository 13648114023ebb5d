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
mod api_files;
pub mod backend;
pub use suanli_crypto as crypto;
pub mod keys;
pub mod model;
mod reading;
mod repo;
pub mod types;
mod writing;

use std::path::{Path, PathBuf};

pub use crypto::SecretKey;
pub use model::{Acl, FileEntry, Manifest, Segment, VersionRef};
pub use repo::Repository;

/// Where artefacts live and which master key protects them.
#[derive(Clone, Debug, Default)]
pub struct ArtifactConfig {
    /// `None`: DATA_DIR/objects. Otherwise `file:///DIR` or `s3://BUCKET?endpoint=...`.
    pub store: Option<String>,
    /// A file holding the master key (64 hex digits). Without it and without
    /// `SUANLI_MASTER_KEY`, DATA_DIR/master-key is used (created on first start, mode 0600).
    pub master_key_file: Option<PathBuf>,
    /// How jobs on other nodes reach this server (`https://suanli.example.org`), when it is not
    /// the listen address (behind a proxy or NAT, or listening on 0.0.0.0).
    pub public_url: Option<String>,
}

impl ArtifactConfig {
    /// From `SUANLI_STORE` and `SUANLI_MASTER_KEY_FILE`.
    pub fn from_env() -> Self {
        ArtifactConfig {
            store: std::env::var("SUANLI_STORE").ok().filter(|s| !s.is_empty()),
            master_key_file: std::env::var_os("SUANLI_MASTER_KEY_FILE").map(PathBuf::from),
            public_url: std::env::var("SUANLI_PUBLIC_URL")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }
}

/// The base of every job's `SUANLI_CHECKPOINT_URL`: `PUBLIC_URL/api/v1/artifacts` when the
/// server was given one; else the listen address, with `host` (this machine's name) in place of
/// an unspecified IP (0.0.0.0 or ::), which no other node could connect to.
pub fn checkpoint_base(
    public_url: Option<&str>,
    listen: std::net::SocketAddr,
    host: &str,
) -> Result<String, ArtifactError> {
    let Some(url) = public_url else {
        let authority = if listen.ip().is_unspecified() {
            format!("{host}:{}", listen.port())
        } else {
            listen.to_string()
        };
        return Ok(format!("http://{authority}/api/v1/artifacts"));
    };
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let valid = rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && r.len() <= 512
            && r.chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '@' | '\\'))
    });
    if !valid {
        return Err(ArtifactError::Config(format!(
            "--public-url `{}`: give the URL other nodes reach this server at, e.g. https://suanli.example.org or http://10.0.0.5:8080 (no query, fragment or user)",
            model::printable(url)
        )));
    }
    Ok(format!("{url}/api/v1/artifacts"))
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

#[cfg(test)]
mod tests {
    use super::checkpoint_base;

    #[test]
    fn checkpoint_urls_name_an_address_other_nodes_can_reach() {
        let any = "0.0.0.0:8080".parse().unwrap();
        let local = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            checkpoint_base(None, any, "node-7").unwrap(),
            "http://node-7:8080/api/v1/artifacts"
        );
        assert_eq!(
            checkpoint_base(None, "[::]:9".parse().unwrap(), "n").unwrap(),
            "http://n:9/api/v1/artifacts"
        );
        assert_eq!(
            checkpoint_base(None, local, "node-7").unwrap(),
            "http://127.0.0.1:8080/api/v1/artifacts"
        );
        assert_eq!(
            checkpoint_base(Some("https://gw.example.org/suanli/"), any, "n").unwrap(),
            "https://gw.example.org/suanli/api/v1/artifacts"
        );
        for bad in [
            "gw.example.org",
            "ftp://x",
            "http://",
            "http://a b",
            "http://x?y=1",
            "http://u@x",
        ] {
            let error = checkpoint_base(Some(bad), local, "n")
                .unwrap_err()
                .to_string();
            assert!(error.contains("--public-url"), "{bad}: {error}");
        }
    }
}
