//! The master key (from `SUANLI_MASTER_KEY`, a file, or DATA_DIR/master-key) and the records
//! of tenant keys wrapped by it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ArtifactError;
use super::crypto::SecretKey;

/// A tenant key as stored: wrapped by the master key named by `master_key_id`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantKeyRecord {
    pub tenant: String,
    pub master_key_id: String,
    pub wrapped: String,
}

/// The associated data a tenant key is wrapped with.
pub fn tenant_context(tenant: &str) -> String {
    format!("suanli tenant key {tenant}")
}

impl TenantKeyRecord {
    /// A new record of `key` under `master`.
    pub fn wrap(tenant: &str, key: &SecretKey, master: &SecretKey) -> Self {
        TenantKeyRecord {
            tenant: tenant.to_string(),
            master_key_id: master.id(),
            wrapped: master.wrap(key, &tenant_context(tenant)),
        }
    }

    /// The tenant key; a clear error when `master` is not the key that wrapped it.
    pub fn unwrap_with(&self, master: &SecretKey) -> Result<SecretKey, ArtifactError> {
        if self.master_key_id != master.id() {
            return Err(wrong_master(&master.id(), &self.master_key_id));
        }
        Ok(master.unwrap_key(&self.wrapped, &tenant_context(&self.tenant))?)
    }
}

/// The error for a master key that does not match the store.
pub fn wrong_master(given: &str, stored: &str) -> ArtifactError {
    ArtifactError::Config(format!(
        "wrong master key: this server's key is {given} but the store's tenant keys are wrapped by key {stored}; \
         start with the right SUANLI_MASTER_KEY / --master-key-file, or re-wrap with `suanli artifact rotate-master-key`"
    ))
}

/// The master key: `SUANLI_MASTER_KEY` (64 hex digits), else `file`, else DATA_DIR/master-key,
/// created with a fresh random key (mode 0600) when absent.
pub fn load_master_key(file: Option<&Path>, data_dir: &Path) -> Result<SecretKey, ArtifactError> {
    if let Ok(text) = std::env::var("SUANLI_MASTER_KEY") {
        return SecretKey::from_hex(&text)
            .map_err(|e| ArtifactError::Config(format!("SUANLI_MASTER_KEY: {e}")));
    }
    if let Some(file) = file {
        return read_key_file(file);
    }
    let path = data_dir.join("master-key");
    if path.exists() {
        return read_key_file(&path);
    }
    let key = SecretKey::generate();
    crate::write_secret(&path, &key.to_hex())
        .map_err(|e| ArtifactError::Config(format!("master key {}: {e}", path.display())))?;
    tracing::info!(path = %path.display(), id = key.id(), "created the artefact master key; back it up: without it no artefact can be read");
    Ok(key)
}

/// A key file: 64 hex digits.
pub fn read_key_file(path: &Path) -> Result<SecretKey, ArtifactError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ArtifactError::Config(format!("master key file {}: {e}", path.display())))?;
    SecretKey::from_hex(&text)
        .map_err(|e| ArtifactError::Config(format!("master key file {}: {e}", path.display())))
}
