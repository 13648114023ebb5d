//! The file routes of an artefact version: upload (resumable with `offset=N`), upload
//! progress, and download (resumable with `Range: bytes=N-`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;

use super::api::{Access, Answer, Fail, authorize, version_number};
use super::model::{self, VersionRef};
use super::types::{FileView, UploadProgress};
use crate::api::AppState;
use crate::auth::Principal;

#[derive(Deserialize)]
pub(super) struct FileQuery {
    path: String,
    /// Uploads: resume an interrupted upload that holds exactly this many bytes.
    #[serde(default)]
    offset: u64,
}

#[utoipa::path(put, path = "/api/v1/artifacts/{tenant}/{name}/versions/{version}/files", summary = "Stream a file (?path=) into a partial version, encrypted", params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name"), ("version" = String, Path, description = "Number, latest or sha256:PREFIX")), responses((status = 200, description = "OK")))]
pub(super) async fn upload(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name, version)): Path<(String, String, String)>,
    Query(query): Query<FileQuery>,
    body: Body,
) -> Answer<Response> {
    authorize(&state, &me, &tenant, &name, Access::Write).await?;
    let version = version_number(&version)?;
    let stream = body.into_data_stream();
    let entry = state
        .artifacts
        .put_file(&tenant, &name, version, &query.path, query.offset, stream)
        .await?;
    Ok((StatusCode::CREATED, Json(FileView::from(&entry))).into_response())
}

/// How much of a file a partial version holds: where an interrupted upload resumes.
#[utoipa::path(get, path = "/api/v1/artifacts/{tenant}/{name}/versions/{version}/uploads", summary = "Bytes received so far of an interrupted upload (?path=)", params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name"), ("version" = String, Path, description = "Number, latest or sha256:PREFIX")), responses((status = 200, description = "OK", body = UploadProgress)))]
pub(super) async fn upload_progress(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name, version)): Path<(String, String, String)>,
    Query(query): Query<FileQuery>,
) -> Answer<Json<UploadProgress>> {
    authorize(&state, &me, &tenant, &name, Access::Write).await?;
    let entry = state
        .artifacts
        .upload_progress(&tenant, &name, version_number(&version)?, &query.path)
        .await?
        .ok_or_else(|| {
            Fail(
                StatusCode::NOT_FOUND,
                format!(
                    "no upload of `{}` in this version",
                    model::printable(&query.path)
                ),
            )
        })?;
    Ok(Json(UploadProgress::from(&entry)))
}

/// The start of an open-ended `Range: bytes=N-` (the only form a resuming client needs).
fn range_start(headers: &axum::http::HeaderMap) -> Answer<u64> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(0);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| {
            Fail(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "Range: only `bytes=N-` (resume from byte N) is supported".to_string(),
            )
        })
}

#[utoipa::path(get, path = "/api/v1/artifacts/{tenant}/{name}/versions/{version}/files", summary = "Stream a file (?path=), decrypted and SHA-256-checked", params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name"), ("version" = String, Path, description = "Number, latest or sha256:PREFIX")), responses((status = 200, description = "OK")))]
pub(super) async fn download(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name, version)): Path<(String, String, String)>,
    Query(query): Query<FileQuery>,
    request_headers: axum::http::HeaderMap,
) -> Answer<Response> {
    authorize(&state, &me, &tenant, &name, Access::Read).await?;
    let which = VersionRef::parse(&version)?;
    let manifest = state.artifacts.manifest(&tenant, &name, &which).await?;
    if !manifest.complete {
        return Err(Fail(
            StatusCode::CONFLICT,
            format!("version {} is still being uploaded", manifest.version),
        ));
    }
    let from = range_start(&request_headers)?;
    if let Some(file) = manifest.files.iter().find(|f| f.path == query.path)
        && from > 0
        && from >= file.size_bytes
    {
        return Err(Fail(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!(
                "Range: byte {from} is past the end of a {}-byte file",
                file.size_bytes
            ),
        ));
    }
    let (entry, stream) = state
        .artifacts
        .open_file(&manifest, &query.path, from)
        .await?;
    let stream = stream.map_err(|error| {
        tracing::error!(%error, "artifact read failed");
        std::io::Error::other(error.to_string())
    });
    let mut response = Body::from_stream(stream).into_response();
    if from > 0 {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let range = format!("bytes {from}-{}/{}", entry.size_bytes - 1, entry.size_bytes);
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&range).expect("ASCII"),
        );
    }
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, (entry.size_bytes - from).into());
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        "x-suanli-sha256",
        HeaderValue::from_str(&entry.sha256).expect("hex"),
    );
    headers.insert("x-suanli-version", manifest.version.into());
    Ok(response)
}
