//! The artefact routes under `/api/v1/artifacts`. Who may do what: any role of the owning
//! tenant (or a tenant it was shared with, or anyone if public) reads; members and tenant-admins
//! of the owner write; tenant-admins share. An artefact the caller may not read is answered
//! exactly like one that does not exist (404), so private names cannot be probed. Reads are
//! audited here; writes by the API's middleware.

use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::ArtifactError;
use super::api_files as files;
use super::model::{self, Acl, VersionRef, printable};
use super::types::{
    ArtifactSummary, ArtifactView, ManifestView, NewVersion, RetainRequest, Retained, ShareRequest,
    Sharing,
};
use crate::api::{AppState, AuditDraft, AuditRecorded};
use crate::auth::Principal;
use crate::store::NewAuditEvent;

/// An error answer: a status and a one-line JSON message.
pub struct Fail(pub(super) StatusCode, pub(super) String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (self.0, Json(crate::api::types::ErrorBody { error: self.1 })).into_response()
    }
}

impl From<ArtifactError> for Fail {
    fn from(error: ArtifactError) -> Self {
        let status = match &error {
            ArtifactError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ArtifactError::NotFound(_) => StatusCode::NOT_FOUND,
            ArtifactError::Conflict(_) => StatusCode::CONFLICT,
            _ => {
                tracing::error!(%error, "artifact store error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Fail(status, error.to_string())
    }
}

impl From<crate::store::StoreError> for Fail {
    fn from(error: crate::store::StoreError) -> Self {
        Fail(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

pub(super) type Answer<T> = Result<T, Fail>;

/// The artefact routes, with read auditing.
/// The OpenAPI description of these routes, generated from the handlers' `#[utoipa::path]`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list,
        show,
        delete_artifact,
        create_version,
        show_version,
        delete_version,
        files::download,
        files::upload,
        files::upload_progress,
        commit,
        share,
        unshare,
        retain,
    ),
    components(schemas(super::types::FileView))
)]
pub struct ArtifactsDoc;

pub fn routes(state: AppState) -> Router<AppState> {
    let base = "/artifacts/{tenant}/{name}";
    Router::new()
        .route("/artifacts", get(list))
        .route(base, get(show).delete(delete_artifact))
        .route(&format!("{base}/versions"), post(create_version))
        .route(
            &format!("{base}/versions/{{version}}"),
            get(show_version).delete(delete_version),
        )
        .route(
            &format!("{base}/versions/{{version}}/files"),
            get(files::download).put(files::upload),
        )
        .route(
            &format!("{base}/versions/{{version}}/uploads"),
            get(files::upload_progress),
        )
        .route(&format!("{base}/versions/{{version}}/commit"), post(commit))
        .route(&format!("{base}/share"), post(share))
        .route(&format!("{base}/unshare"), post(unshare))
        .route(&format!("{base}/retain"), post(retain))
        .layer(axum::middleware::from_fn_with_state(state, audit_reads))
}

/// Appends every read (GET) with its outcome to the audit log; the API's middleware already
/// records every write.
async fn audit_reads(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_read = request.method() == Method::GET;
    let actor = request
        .extensions()
        .get::<Principal>()
        .map_or("anonymous".to_string(), |p| p.user.clone());
    // These routes are nested under /api/v1, which the nested router no longer sees.
    let target = format!("/api/v1{}", request.uri());
    let action = format!("GET /api/v1{}", request.uri().path());
    let at_ms = crate::engine::now_s() * 1000;
    let response = next.run(request).await;
    if is_read {
        let event = NewAuditEvent {
            at_ms,
            actor,
            action,
            target,
            outcome: response.status().as_u16().to_string(),
        };
        if let Err(error) = state.store.append_audit(&event).await {
            tracing::error!(%error, "failed to append to the audit log");
        }
    }
    response
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Access {
    Read,
    Write,
    Share,
}

fn hidden(tenant: &str, name: &str) -> Fail {
    Fail(
        StatusCode::NOT_FOUND,
        format!(
            "artifact `{}/{}` not found",
            printable(tenant),
            printable(name)
        ),
    )
}

fn may_read(me: &Principal, tenant: &str, acl: &Acl) -> bool {
    me.can_read_tenant(tenant) || acl.shared_with_tenant(me.tenant.as_deref())
}

/// The artefact's sharing record if `me` may have `access`; 404 when it may not even read.
pub(super) async fn authorize(
    state: &AppState,
    me: &Principal,
    tenant: &str,
    name: &str,
    access: Access,
) -> Answer<Acl> {
    model::check_name(name)?;
    model::check_name(tenant)?;
    let acl = state.artifacts.acl(tenant, name).await?;
    let acl = match acl {
        Some(acl) if may_read(me, tenant, &acl) => acl,
        _ => return Err(hidden(tenant, name)),
    };
    let allowed = match access {
        Access::Read => true,
        Access::Write => me.can_submit_to(tenant),
        Access::Share => me.can_manage_tenant(tenant),
    };
    if !allowed {
        let verb = if access == Access::Share {
            "share"
        } else {
            "change"
        };
        return Err(Fail(
            StatusCode::FORBIDDEN,
            format!(
                "forbidden: role {} of tenant `{}` cannot {verb} artifacts of tenant `{tenant}`",
                me.role.as_str(),
                me.tenant.as_deref().unwrap_or("-")
            ),
        ));
    }
    Ok(acl)
}

#[derive(Deserialize)]
struct ListFilter {
    tenant: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/artifacts", summary = "Artefacts the caller may read", responses((status = 200, description = "OK", body = Vec<ArtifactSummary>)))]
async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Query(filter): Query<ListFilter>,
) -> Answer<Json<Vec<ArtifactSummary>>> {
    let mut out = Vec::new();
    for (tenant, name, acl) in state.artifacts.list_artifacts().await? {
        if !may_read(&me, &tenant, &acl) || filter.tenant.as_ref().is_some_and(|t| *t != tenant) {
            continue;
        }
        let versions = state.artifacts.versions(&tenant, &name).await?;
        let latest = versions.iter().rev().find(|m| m.complete);
        out.push(ArtifactSummary {
            shared_with: me.can_read_tenant(&tenant).then(|| acl.shared_with.clone()),
            tenant,
            name,
            kind: acl.kind,
            public: acl.public,
            versions: versions.iter().filter(|m| m.complete).count(),
            latest: latest.map(|m| m.version),
            size_bytes: latest.map(|m| m.size_bytes),
            digest: latest.and_then(|m| m.digest.clone()),
        });
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/artifacts/{tenant}/{name}", summary = "An artefact's versions and files", params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name")), responses((status = 200, description = "OK", body = ArtifactView)))]
async fn show(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name)): Path<(String, String)>,
) -> Answer<Json<ArtifactView>> {
    let acl = authorize(&state, &me, &tenant, &name, Access::Read).await?;
    let versions = state.artifacts.versions(&tenant, &name).await?;
    Ok(Json(ArtifactView {
        shared_with: me.can_read_tenant(&tenant).then(|| acl.shared_with.clone()),
        tenant,
        name,
        kind: acl.kind,
        public: acl.public,
        versions: versions.iter().map(ManifestView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/artifacts/{tenant}/{name}/versions", summary = "Start a new partial version", request_body = NewVersion, params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name")), responses((status = 201, description = "Created", body = ManifestView)))]
async fn create_version(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name)): Path<(String, String)>,
    Json(body): Json<NewVersion>,
) -> Answer<Response> {
    model::check_name(&tenant)?;
    model::check_name(&name)?;
    if !matches!(body.kind.as_str(), "model" | "checkpoint") {
        return Err(Fail(
            StatusCode::BAD_REQUEST,
            format!("kind `{}`: use model or checkpoint", printable(&body.kind)),
        ));
    }
    if !me.can_submit_to(&tenant) {
        // Say "forbidden" only to callers who may already see the artefact.
        return Err(match state.artifacts.acl(&tenant, &name).await? {
            Some(acl) if may_read(&me, &tenant, &acl) => Fail(
                StatusCode::FORBIDDEN,
                format!(
                    "forbidden: role {} cannot write artifacts of tenant `{tenant}`",
                    me.role.as_str()
                ),
            ),
            _ => hidden(&tenant, &name),
        });
    }
    if !state
        .store
        .list_tenants()
        .await?
        .iter()
        .any(|t| t.name == tenant)
    {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("tenant `{tenant}` not found"),
        ));
    }
    let manifest = state
        .artifacts
        .create_version(&tenant, &name, &body.kind, &me.user)
        .await?;
    Ok((StatusCode::CREATED, Json(ManifestView::from(&manifest))).into_response())
}

pub(super) fn version_number(text: &str) -> Answer<u64> {
    match VersionRef::parse(text)? {
        VersionRef::Number(n) => Ok(n),
        _ => Err(Fail(
            StatusCode::BAD_REQUEST,
            "name a version by number here".to_string(),
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/artifacts/{tenant}/{name}/versions/{version}/commit", summary = "Make a version complete", params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name"), ("version" = String, Path, description = "Number, latest or sha256:PREFIX")), responses((status = 200, description = "OK", body = ManifestView)))]
async fn commit(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name, version)): Path<(String, String, String)>,
) -> Answer<Json<ManifestView>> {
    authorize(&state, &me, &tenant, &name, Access::Write).await?;
    let manifest = state
        .artifacts
        .commit(&tenant, &name, version_number(&version)?)
        .await?;
    Ok(Json(ManifestView::from(&manifest)))
}

#[utoipa::path(get, path = "/api/v1/artifacts/{tenant}/{name}/versions/{version}", summary = "A version's manifest", params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name"), ("version" = String, Path, description = "Number, latest or sha256:PREFIX")), responses((status = 200, description = "OK", body = ManifestView)))]
async fn show_version(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name, version)): Path<(String, String, String)>,
) -> Answer<Json<ManifestView>> {
    authorize(&state, &me, &tenant, &name, Access::Read).await?;
    let which = VersionRef::parse(&version)?;
    let manifest = state.artifacts.manifest(&tenant, &name, &which).await?;
    Ok(Json(ManifestView::from(&manifest)))
}

#[utoipa::path(delete, path = "/api/v1/artifacts/{tenant}/{name}/versions/{version}", summary = "Delete a version", params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name"), ("version" = String, Path, description = "Number, latest or sha256:PREFIX")), responses((status = 200, description = "OK")))]
async fn delete_version(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name, version)): Path<(String, String, String)>,
) -> Answer<StatusCode> {
    authorize(&state, &me, &tenant, &name, Access::Write).await?;
    let version = version_number(&version)?;
    state
        .artifacts
        .manifest(&tenant, &name, &VersionRef::Number(version))
        .await?;
    state
        .artifacts
        .delete_version(&tenant, &name, version)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/artifacts/{tenant}/{name}", summary = "Delete an artefact (member of its tenant)", params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name")), responses((status = 200, description = "OK")))]
async fn delete_artifact(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name)): Path<(String, String)>,
) -> Answer<StatusCode> {
    authorize(&state, &me, &tenant, &name, Access::Write).await?;
    state.artifacts.delete_artifact(&tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a share or an unshare extracts besides its body.
type ShareParts = (
    State<AppState>,
    Extension<Principal>,
    Extension<AuditDraft>,
    Path<(String, String)>,
);

/// Shares (`add`) or takes back a share, audited with what changed.
async fn change_share(parts: ShareParts, body: ShareRequest, add: bool) -> Answer<Response> {
    let (State(state), Extension(me), Extension(draft), Path((tenant, name))) = parts;
    let mut acl = authorize(&state, &me, &tenant, &name, Access::Share).await?;
    let note = match (&body.tenant, body.public) {
        (Some(other), false) => {
            if !state
                .store
                .list_tenants()
                .await?
                .iter()
                .any(|t| t.name == *other)
            {
                return Err(Fail(
                    StatusCode::NOT_FOUND,
                    format!("tenant `{}` not found", printable(other)),
                ));
            }
            acl.shared_with.retain(|t| t != other);
            if add {
                acl.shared_with.push(other.clone());
                acl.shared_with.sort();
            }
            format!(
                "{} tenant {other}",
                if add { "shared with" } else { "unshared from" }
            )
        }
        (None, true) => {
            acl.public = add;
            format!("public={add}")
        }
        _ => {
            return Err(Fail(
                StatusCode::BAD_REQUEST,
                "give either {\"tenant\": NAME} or {\"public\": true}".into(),
            ));
        }
    };
    state.artifacts.set_acl(&tenant, &name, &acl).await?;
    let entry = draft.entry(StatusCode::OK, Some(&note));
    state.store.append_audit(&entry).await?;
    let mut response = Json(Sharing {
        tenant,
        name,
        public: acl.public,
        shared_with: acl.shared_with,
    })
    .into_response();
    response.extensions_mut().insert(AuditRecorded);
    Ok(response)
}

#[utoipa::path(post, path = "/api/v1/artifacts/{tenant}/{name}/share", summary = "Share read-only with a tenant or everyone (tenant-admin)", request_body = ShareRequest, params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name")), responses((status = 200, description = "OK", body = Sharing)))]
async fn share(parts: ShareParts, Json(body): Json<ShareRequest>) -> Answer<Response> {
    change_share(parts, body, true).await
}

#[utoipa::path(post, path = "/api/v1/artifacts/{tenant}/{name}/unshare", summary = "Take back a share (tenant-admin)", request_body = ShareRequest, params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name")), responses((status = 200, description = "OK", body = Sharing)))]
async fn unshare(parts: ShareParts, Json(body): Json<ShareRequest>) -> Answer<Response> {
    change_share(parts, body, false).await
}

#[utoipa::path(post, path = "/api/v1/artifacts/{tenant}/{name}/retain", summary = "Keep the newest N versions; delete abandoned partial ones", request_body = RetainRequest, params(("tenant" = String, Path, description = "Owning tenant"), ("name" = String, Path, description = "Artefact name")), responses((status = 200, description = "OK", body = Retained)))]
async fn retain(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path((tenant, name)): Path<(String, String)>,
    Json(body): Json<RetainRequest>,
) -> Answer<Json<Retained>> {
    authorize(&state, &me, &tenant, &name, Access::Write).await?;
    if body.keep_last == Some(0) {
        return Err(Fail(
            StatusCode::BAD_REQUEST,
            "--keep-last must be at least 1".into(),
        ));
    }
    let deleted = state
        .artifacts
        .retain(
            &tenant,
            &name,
            body.keep_last,
            body.partial_age_s.unwrap_or(3600).max(0),
        )
        .await?;
    Ok(Json(Retained {
        deleted_versions: deleted,
    }))
}
