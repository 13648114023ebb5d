//! Where artefact bytes live: the local filesystem under the data directory, or any
//! S3-compatible endpoint, both behind `object_store::ObjectStore`.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;

use super::ArtifactError;

/// Opens the store named by `url`: `None` is `DATA_DIR/objects`; `file:///abs/dir` a local
/// directory; `s3://bucket?endpoint=http://host:port&region=R&credentials=FILE&prefix=P` an S3 bucket
/// (optionally under a key prefix, so clusters or test runs can share a bucket).
/// S3 credentials come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or from the file named
/// by `credentials=` (lines `aws_access_key_id = ...`, `aws_secret_access_key = ...`), never
/// from the URL itself.
pub fn open(url: Option<&str>, data_dir: &Path) -> Result<Arc<dyn ObjectStore>, ArtifactError> {
    let bad = |m: String| ArtifactError::Config(m);
    let Some(url) = url else {
        return local(&data_dir.join("objects"));
    };
    if let Some(dir) = url.strip_prefix("file://") {
        return local(Path::new(dir));
    }
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(bad(format!(
            "--store `{url}`: use file:///DIR or s3://BUCKET?endpoint=http://HOST:PORT"
        )));
    };
    let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
    if bucket.is_empty() || bucket.contains('/') {
        return Err(bad(format!(
            "--store `{url}`: name one bucket: s3://BUCKET?..."
        )));
    }
    let mut prefix = None;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region("us-east-1");
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        builder = match key {
            "endpoint" => builder
                .with_allow_http(value.starts_with("http://"))
                .with_endpoint(value),
            "region" => builder.with_region(value),
            "prefix" => {
                prefix = Some(value.trim_matches('/').to_string());
                builder
            }
            "credentials" => {
                let (id, secret) = read_credentials(Path::new(value))?;
                builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret)
            }
            "access_key_id" | "secret_access_key" => {
                return Err(bad(
                    "--store: credentials never go on the command line; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or credentials=FILE".into(),
                ));
            }
            other => {
                return Err(bad(format!(
                    "--store: unknown parameter `{other}`; use endpoint, region, credentials or prefix"
                )));
            }
        };
    }
    let store = builder
        .build()
        .map_err(|e| bad(format!("--store `{bucket}`: {e}")))?;
    match prefix.filter(|p| !p.is_empty()) {
        Some(prefix) => Ok(Arc::new(PrefixStore::new(store, prefix))),
        None => Ok(Arc::new(store)),
    }
}

fn local(dir: &Path) -> Result<Arc<dyn ObjectStore>, ArtifactError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ArtifactError::Config(format!("object directory {}: {e}", dir.display())))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| ArtifactError::Config(format!("object directory {}: {e}", dir.display())))?
        .with_automatic_cleanup(true);
    Ok(Arc::new(store))
}

/// `aws_access_key_id` and `aws_secret_access_key` from an AWS-style credentials file.
fn read_credentials(path: &Path) -> Result<(String, String), ArtifactError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ArtifactError::Config(format!("S3 credentials file {}: {e}", path.display()))
    })?;
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    match (field("aws_access_key_id"), field("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        _ => Err(ArtifactError::Config(format!(
            "S3 credentials file {}: needs lines `aws_access_key_id = ...` and `aws_secret_access_key = ...`",
            path.display()
        ))),
    }
}
