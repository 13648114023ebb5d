//! The rig of the artefact suite: a back end (local directory or S3) and a server over it with
//! helpers to call the API as a given user, plus incompressible test weights.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use suanli_server::artifacts::{ArtifactConfig, SecretKey, backend};

use crate::common::{unique, unique_dir};

/// A back end to run the suite on: a store URL (None = local) shared by the servers of a test.
#[derive(Clone)]
pub struct Backend {
    pub store: Option<String>,
    pub key_file: PathBuf,
}

impl Backend {
    pub fn local() -> Backend {
        let dir = unique_dir("suanli-objects");
        Backend::with(Some(format!("file://{}", dir.display())))
    }

    /// The S3 back end, or `None` when `SUANLI_TEST_S3_URL` is unset. Each test gets its own
    /// key prefix in the bucket.
    pub fn s3() -> Option<Backend> {
        let url = std::env::var("SUANLI_TEST_S3_URL").ok()?;
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(Backend::with(Some(format!(
            "{url}{sep}prefix={}",
            unique("t")
        ))))
    }

    pub fn with(store: Option<String>) -> Backend {
        let key_file = unique_dir("suanli-master-key");
        std::fs::write(&key_file, SecretKey::generate().to_hex()).unwrap();
        Backend { store, key_file }
    }

    pub fn config(&self) -> ArtifactConfig {
        ArtifactConfig {
            store: self.store.clone(),
            master_key_file: Some(self.key_file.clone()),
            public_url: None,
        }
    }

    pub fn objects(&self) -> Arc<dyn ObjectStore> {
        backend::open(self.store.as_deref(), Path::new("/nonexistent")).unwrap()
    }
}

/// The suite's server: the common test server over an artefact store, with calls for files.
pub use crate::common::TestServer as Server;

impl Server {
    /// A server in a fresh data directory over `config`'s store; `Err` if it does not start.
    pub async fn try_start_on(config: ArtifactConfig) -> Result<Server, String> {
        let server_config = suanli_server::ServerConfig {
            data_dir: unique_dir("suanli-artifacts-test"),
            database: None,
            devices: Some("cpu:2".into()),
            policy: "fifo".into(),
            ..Default::default()
        };
        Server::try_start_with_artifacts(server_config, config).await
    }

    pub async fn start_on(backend: &Backend) -> Server {
        Server::try_start_on(backend.config()).await.unwrap()
    }

    /// Uploads `files` as a new committed version; returns the manifest.
    pub async fn put(
        &self,
        token: &str,
        tenant: &str,
        name: &str,
        kind: &str,
        files: &[(&str, Vec<u8>)],
    ) -> Value {
        let base = format!("/api/v1/artifacts/{tenant}/{name}");
        let version = self
            .ok(
                Method::POST,
                &format!("{base}/versions"),
                token,
                Some(json!({ "kind": kind })),
            )
            .await;
        let version = version["version"].as_u64().unwrap();
        for (path, bytes) in files {
            let response = self
                .http
                .put(format!(
                    "{}{base}/versions/{version}/files?path={path}",
                    self.url
                ))
                .bearer_auth(token)
                .body(bytes.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::CREATED,
                "{}",
                response.text().await.unwrap()
            );
        }
        self.ok(
            Method::POST,
            &format!("{base}/versions/{version}/commit"),
            token,
            None,
        )
        .await
    }

    /// Downloads a file, from byte `from` on when given (`Range: bytes=FROM-`); the status, and
    /// the bytes or `None` if the transfer broke off.
    pub async fn get(
        &self,
        token: &str,
        tenant: &str,
        name: &str,
        version: &str,
        path: &str,
        from: Option<usize>,
    ) -> (StatusCode, Option<Vec<u8>>) {
        let url = format!(
            "{}/api/v1/artifacts/{tenant}/{name}/versions/{version}/files?path={path}",
            self.url
        );
        let mut request = self.http.get(url).bearer_auth(token);
        if let Some(from) = from {
            request = request.header("range", format!("bytes={from}-"));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.bytes().await.ok().map(|b| b.to_vec()))
    }
}

pub async fn all_objects(objects: &Arc<dyn ObjectStore>) -> Vec<(String, Vec<u8>)> {
    let metas: Vec<_> = objects.list(None).try_collect().await.unwrap();
    let mut out = Vec::new();
    for meta in metas {
        let bytes = objects
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        out.push((meta.location.to_string(), bytes.to_vec()));
    }
    out
}
