//! The repository over an object store: tenant keys, versions, encrypted streaming file upload
//! and download with SHA-256 checks, sharing, retention and key rotation.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use sha2::Sha256;

use super::ArtifactError;
use super::crypto::SecretKey;
use super::keys::{TenantKeyRecord, wrong_master};
use super::model::{self, Acl, FileEntry, MAX_FILES, Manifest, VersionRef};
use super::reading::read_from;

/// Artefacts in one object store under one master key.
pub struct Repository {
    pub(super) store: Arc<dyn ObjectStore>,
    master: SecretKey,
    tenant_keys: tokio::sync::Mutex<HashMap<String, SecretKey>>,
    /// Serialises version numbering and manifest updates within this server.
    writes: tokio::sync::Mutex<()>,
    /// SHA-256 state of uploads in progress (stem -> bytes hashed, state), so a resumed upload
    /// continues the file's hash without reading back what is stored.
    pub(super) upload_hashes: std::sync::Mutex<HashMap<String, (u64, Sha256)>>,
}

fn key_json(record: &TenantKeyRecord) -> Vec<u8> {
    serde_json::to_vec_pretty(record).expect("records serialise")
}

fn now_s() -> i64 {
    crate::engine::now_s()
}

impl Repository {
    /// A repository over `store` with `master`.
    pub fn new(store: Arc<dyn ObjectStore>, master: SecretKey) -> Self {
        Repository {
            store,
            master,
            tenant_keys: tokio::sync::Mutex::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
            upload_hashes: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The object store (tests read raw objects through it).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The tenant whose key seals the record at `key`: every record under `artifacts/TENANT/`
    /// (sharing, manifests, file records) is encrypted; `keys/*` hold already-wrapped keys
    /// and are read with `read_key_record`.
    fn sealing_tenant(key: &str) -> Option<&str> {
        key.strip_prefix("artifacts/")?.split('/').next()
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>, ArtifactError> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(key: &str, plain: &[u8]) -> Result<T, ArtifactError> {
        serde_json::from_slice(plain).map_err(|e| ArtifactError::Integrity {
            path: key.to_string(),
            problem: format!("not a valid record: {e}"),
        })
    }

    /// A tenant key record (`keys/TENANT.json`: JSON holding a key wrapped by the master key).
    async fn read_key_record(&self, key: &str) -> Result<Option<TenantKeyRecord>, ArtifactError> {
        match self.get_bytes(key).await? {
            Some(bytes) => Self::parse(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), ArtifactError> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    async fn record_key(&self, key: &str) -> Result<SecretKey, ArtifactError> {
        let tenant = Self::sealing_tenant(key).ok_or_else(|| {
            ArtifactError::Config(format!("record {key} is outside artifacts/TENANT/"))
        })?;
        self.tenant_key(tenant).await
    }

    /// A record under `artifacts/TENANT/`, decrypted with the tenant key.
    pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, ArtifactError> {
        let Some(bytes) = self.get_bytes(key).await? else {
            return Ok(None);
        };
        let plain = self.record_key(key).await?.open_record(&bytes, key)?;
        Self::parse(key, &plain).map(Some)
    }

    /// Stores a record under `artifacts/TENANT/`, encrypted with the tenant key.
    pub(super) async fn write_json<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), ArtifactError> {
        let plain = serde_json::to_vec(value).expect("records serialise");
        let sealed = self.record_key(key).await?.seal_record(&plain, key);
        self.put_bytes(key, sealed).await
    }

    /// Fails with a clear error when the store's tenant keys were wrapped by another master key.
    pub async fn check_master_key(&self) -> Result<(), ArtifactError> {
        let mut listing = self.store.list(Some(&ObjectPath::from("keys")));
        if let Some(meta) = listing.next().await {
            let key = meta?.location.to_string();
            if let Some(record) = self.read_key_record(&key).await?
                && record.master_key_id != self.master.id()
            {
                return Err(wrong_master(&self.master.id(), &record.master_key_id));
            }
        }
        Ok(())
    }

    /// The tenant's key, created on first use.
    pub(super) async fn tenant_key(&self, tenant: &str) -> Result<SecretKey, ArtifactError> {
        let mut cache = self.tenant_keys.lock().await;
        if let Some(key) = cache.get(tenant) {
            return Ok(key.clone());
        }
        let path = format!("keys/{tenant}.json");
        let key = match self.read_key_record(&path).await? {
            Some(record) => record.unwrap_with(&self.master)?,
            None => {
                let key = SecretKey::generate();
                let record = TenantKeyRecord::wrap(tenant, &key, &self.master);
                self.put_bytes(&path, key_json(&record)).await?;
                key
            }
        };
        cache.insert(tenant.to_string(), key.clone());
        Ok(key)
    }

    /// Re-wraps every tenant key from `self`'s master key to `new`; data is not touched.
    /// Returns how many keys were re-wrapped.
    pub async fn rotate_master_key(&self, new: &SecretKey) -> Result<usize, ArtifactError> {
        let keys: Vec<_> = self
            .store
            .list(Some(&ObjectPath::from("keys")))
            .try_collect()
            .await?;
        let mut count = 0;
        for meta in keys {
            let path = meta.location.to_string();
            let Some(record) = self.read_key_record(&path).await? else {
                continue;
            };
            if record.master_key_id == new.id() {
                continue; // already rotated (an interrupted rotation resumes)
            }
            let key = record.unwrap_with(&self.master)?;
            let rewrapped = TenantKeyRecord::wrap(&record.tenant, &key, new);
            self.put_bytes(&path, key_json(&rewrapped)).await?;
            count += 1;
        }
        Ok(count)
    }

    /// An artefact's sharing record; `None` if it does not exist.
    pub async fn acl(&self, tenant: &str, name: &str) -> Result<Option<Acl>, ArtifactError> {
        self.read_json(&format!(
            "{}/acl.json",
            model::artifact_prefix(tenant, name)
        ))
        .await
    }

    /// Stores an artefact's sharing record.
    pub async fn set_acl(&self, tenant: &str, name: &str, acl: &Acl) -> Result<(), ArtifactError> {
        let _guard = self.writes.lock().await;
        self.write_json(
            &format!("{}/acl.json", model::artifact_prefix(tenant, name)),
            acl,
        )
        .await
    }

    /// Every artefact: (tenant, name, sharing).
    pub async fn list_artifacts(&self) -> Result<Vec<(String, String, Acl)>, ArtifactError> {
        let mut found = Vec::new();
        let mut listing = self.store.list(Some(&ObjectPath::from("artifacts")));
        while let Some(meta) = listing.next().await {
            let key = meta?.location.to_string();
            let parts: Vec<&str> = key.split('/').collect();
            if parts.len() == 4 && parts[3] == "acl.json" {
                found.push((parts[1].to_string(), parts[2].to_string()));
            }
        }
        let mut out = Vec::new();
        for (tenant, name) in found {
            if let Some(acl) = self.acl(&tenant, &name).await? {
                out.push((tenant, name, acl));
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Ok(out)
    }

    /// Every version of an artefact, oldest first.
    pub async fn versions(&self, tenant: &str, name: &str) -> Result<Vec<Manifest>, ArtifactError> {
        let prefix = ObjectPath::from(model::artifact_prefix(tenant, name));
        let listing = self.store.list_with_delimiter(Some(&prefix)).await?;
        let mut out = Vec::new();
        for dir in listing.common_prefixes {
            let key = format!("{dir}/manifest.json");
            if let Some(manifest) = self.read_json::<Manifest>(&key).await? {
                out.push(manifest);
            }
        }
        out.sort_by_key(|m| m.version);
        Ok(out)
    }

    /// The version `which` names; `NotFound` names what was asked for.
    pub async fn manifest(
        &self,
        tenant: &str,
        name: &str,
        which: &VersionRef,
    ) -> Result<Manifest, ArtifactError> {
        let missing =
            || ArtifactError::NotFound(format!("version {which:?} of artifact `{tenant}/{name}`"));
        if let VersionRef::Number(n) = which {
            let key = format!("{}/manifest.json", model::version_prefix(tenant, name, *n));
            return self.read_json(&key).await?.ok_or_else(missing);
        }
        let versions = self.versions(tenant, name).await?;
        versions
            .into_iter()
            .rev()
            .filter(|m| m.complete)
            .find(|m| match which {
                VersionRef::Digest(d) => m.digest.as_deref().is_some_and(|x| x.starts_with(d)),
                _ => true,
            })
            .ok_or_else(missing)
    }

    /// Starts a new (partial) version; creates the artefact, private, on its first version.
    pub async fn create_version(
        &self,
        tenant: &str,
        name: &str,
        kind: &str,
        user: &str,
    ) -> Result<Manifest, ArtifactError> {
        let _guard = self.writes.lock().await;
        let acl_key = format!("{}/acl.json", model::artifact_prefix(tenant, name));
        match self.read_json::<Acl>(&acl_key).await? {
            Some(acl) if acl.kind != kind => {
                return Err(ArtifactError::Conflict(format!(
                    "artifact `{tenant}/{name}` holds {}s, not {kind}s",
                    acl.kind
                )));
            }
            Some(_) => {}
            None => {
                let acl = Acl {
                    owner_tenant: tenant.to_string(),
                    kind: kind.to_string(),
                    created_at_s: now_s(),
                    ..Acl::default()
                };
                self.write_json(&acl_key, &acl).await?;
            }
        }
        let version = self
            .versions(tenant, name)
            .await?
            .last()
            .map_or(1, |m| m.version + 1);
        let manifest = Manifest {
            tenant: tenant.to_string(),
            name: name.to_string(),
            version,
            kind: kind.to_string(),
            created_by: user.to_string(),
            created_at_s: now_s(),
            complete: false,
            files: Vec::new(),
            size_bytes: 0,
            digest: None,
        };
        let key = format!(
            "{}/manifest.json",
            model::version_prefix(tenant, name, version)
        );
        self.write_json(&key, &manifest).await?;
        Ok(manifest)
    }

    pub(super) async fn partial(
        &self,
        tenant: &str,
        name: &str,
        version: u64,
    ) -> Result<Manifest, ArtifactError> {
        let manifest = self
            .manifest(tenant, name, &VersionRef::Number(version))
            .await?;
        if manifest.complete {
            return Err(ArtifactError::Conflict(format!(
                "version {version} of `{tenant}/{name}` is committed and cannot change; start a new version"
            )));
        }
        Ok(manifest)
    }

    /// Makes a partial version complete with every file uploaded to it.
    pub async fn commit(
        &self,
        tenant: &str,
        name: &str,
        version: u64,
    ) -> Result<Manifest, ArtifactError> {
        let _guard = self.writes.lock().await;
        let mut manifest = self.partial(tenant, name, version).await?;
        let prefix = ObjectPath::from(format!(
            "{}/files",
            model::version_prefix(tenant, name, version)
        ));
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut files = Vec::new();
        for meta in metas
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".json"))
        {
            if let Some(entry) = self.read_json::<FileEntry>(meta.location.as_ref()).await? {
                files.push(entry);
            }
        }
        if let Some(file) = files.iter().find(|f| f.interrupted) {
            return Err(ArtifactError::Conflict(format!(
                "the upload of `{}` broke off after {} bytes; resume it (offset={}) before committing",
                model::printable(&file.path),
                file.size_bytes,
                file.size_bytes
            )));
        }
        if files.is_empty() {
            return Err(ArtifactError::BadRequest(format!(
                "version {version} of `{tenant}/{name}` has no files; upload at least one before committing"
            )));
        }
        if files.len() > MAX_FILES {
            return Err(ArtifactError::BadRequest(format!(
                "more than {MAX_FILES} files"
            )));
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        manifest.size_bytes = files.iter().map(|f| f.size_bytes).sum();
        manifest.digest = Some(Manifest::digest_of(&files));
        manifest.files = files;
        manifest.complete = true;
        let key = format!(
            "{}/manifest.json",
            model::version_prefix(tenant, name, version)
        );
        self.write_json(&key, &manifest).await?;
        Ok(manifest)
    }

    /// The plaintext of a committed file from byte `from` on, as a stream decrypted chunk by
    /// chunk from ranged reads; read from 0, the stream ends in an error (before its last
    /// byte) if the bytes do not match the recorded size and SHA-256.
    pub async fn open_file(
        &self,
        manifest: &Manifest,
        path: &str,
        from: u64,
    ) -> Result<(FileEntry, BoxStream<'static, Result<Bytes, ArtifactError>>), ArtifactError> {
        let entry = manifest
            .files
            .iter()
            .find(|f| f.path == path)
            .cloned()
            .ok_or_else(|| ArtifactError::NotFound(format!("file `{}`", model::printable(path))))?;
        let tenant_key = self.tenant_key(&manifest.tenant).await?;
        let stem = model::file_stem(&manifest.tenant, &manifest.name, manifest.version, path);
        let data_key = tenant_key.unwrap_key(&entry.wrapped_key, &format!("{stem}.data"))?;
        let stream = read_from(self.store.clone(), &stem, data_key, entry.clone(), from)?;
        Ok((entry, stream))
    }

    /// Deletes one version (committed or partial) and its objects.
    pub async fn delete_version(
        &self,
        tenant: &str,
        name: &str,
        version: u64,
    ) -> Result<(), ArtifactError> {
        let prefix = ObjectPath::from(model::version_prefix(tenant, name, version));
        self.delete_prefix(&prefix).await
    }

    /// Deletes an artefact with every version and its sharing record.
    pub async fn delete_artifact(&self, tenant: &str, name: &str) -> Result<(), ArtifactError> {
        let _guard = self.writes.lock().await;
        let prefix = ObjectPath::from(model::artifact_prefix(tenant, name));
        self.delete_prefix(&prefix).await
    }

    pub(super) async fn delete_prefix(&self, prefix: &ObjectPath) -> Result<(), ArtifactError> {
        let metas: Vec<_> = self.store.list(Some(prefix)).try_collect().await?;
        // Manifests last, so an interrupted delete leaves a visible (partial) version to retry.
        let (manifests, others): (Vec<_>, Vec<_>) = metas.into_iter().partition(|m| {
            m.location.as_ref().ends_with("manifest.json")
                || m.location.as_ref().ends_with("acl.json")
        });
        for meta in others.into_iter().chain(manifests) {
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Keeps the newest `keep_last` complete versions and deletes older ones, and deletes
    /// partial versions older than `partial_age_s` (abandoned uploads). Returns the deleted
    /// version numbers.
    pub async fn retain(
        &self,
        tenant: &str,
        name: &str,
        keep_last: Option<usize>,
        partial_age_s: i64,
    ) -> Result<Vec<u64>, ArtifactError> {
        let versions = self.versions(tenant, name).await?;
        let complete: Vec<u64> = versions
            .iter()
            .filter(|m| m.complete)
            .map(|m| m.version)
            .collect();
        let keep_from = keep_last.map_or(0, |k| complete.len().saturating_sub(k));
        let mut doomed: Vec<u64> = complete[..keep_from].to_vec();
        let now = now_s();
        doomed.extend(
            versions
                .iter()
                .filter(|m| !m.complete && now - m.created_at_s >= partial_age_s)
                .map(|m| m.version),
        );
        doomed.sort_unstable();
        for version in &doomed {
            self.delete_version(tenant, name, *version).await?;
        }
        Ok(doomed)
    }
}
