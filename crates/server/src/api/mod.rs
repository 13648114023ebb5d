//! The HTTP API: REST/JSON under `/api/v1/`, `/healthz`, `/metrics` and `/openapi.json`.
//!
//! One middleware authenticates every request but `/healthz` (bearer token -> `Principal`) and
//! sees that every state-changing request is in the audit log with its outcome; each handler then
//! checks the caller's role and tenant itself, next to the data it guards. A handler that changes
//! the store passes the request's entry (`AuditDraft::entry`) to `Store::change_audited`, so the
//! change and its entry commit together, and marks its response `AuditRecorded`; for any other
//! response (denied, refused, failed, or a request that changed nothing in the store) the
//! middleware appends the entry itself.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::Engine;
use crate::auth::{self, AuthError, Principal};
use crate::engine::{EngineError, now_s};
use crate::store::{NewAuditEvent, Store, StoreError};

mod admin;
mod delete;
mod goals;
mod jobs;
pub mod limits;
pub mod types;

/// The OpenAPI description of the routes in this module, generated from their handlers'
/// `#[utoipa::path]` attributes (`crate::openapi` adds the artefact routes and the shared parts).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        healthz,
        whoami,
        crate::metrics::metrics,
        crate::openapi::openapi,
        admin::list_tenants,
        admin::create_tenant,
        admin::list_users,
        admin::create_user,
        delete::delete_tenant,
        delete::delete_user,
        admin::list_tokens,
        admin::create_token,
        admin::revoke_token,
        admin::list_quotas,
        admin::set_quota,
        admin::list_nodes,
        admin::node_down,
        admin::node_up,
        jobs::list_jobs,
        jobs::submit_job,
        jobs::show_job,
        jobs::cancel_job,
        jobs::job_logs,
        goals::plan_job,
        goals::report_progress,
        admin::list_audit,
        admin::verify_audit,
    ),
    components(schemas(
        types::QuotaUsage,
        types::NodeChange,
        types::CreatedToken,
        types::Revoked,
        types::Whoami,
        types::AuditVerdict,
        types::TokenView,
        jobs::Submit,
        crate::engine::goal::GoalRequest,
        crate::engine::goal::GoalPlan,
        crate::store::GoalOption,
        goals::PlanBody,
        goals::ProgressBody,
        types::NewTenant,
        types::NewUser,
        types::NewToken,
        types::NodeRow
    ))
)]
pub struct ApiDoc;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Arc<tokio::sync::Mutex<Engine>>,
    pub data_dir: PathBuf,
    /// Models and checkpoints (`crate::artifacts`).
    pub artifacts: Arc<crate::artifacts::Repository>,
    /// Models and accelerators the planners use: the server's catalog (`SUANLI_CATALOG` too).
    pub catalog: Arc<suanli_catalog::Catalog>,
}

/// An error as the API returns it: a status and a one-line JSON message.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn forbidden(what: &str) -> Self {
        ApiError(StatusCode::FORBIDDEN, format!("forbidden: {what}"))
    }
    fn bad(what: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, what.into())
    }
    fn not_found(what: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, format!("{} not found", what.into()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(types::ErrorBody { error: self.1 })).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(_) => ApiError(StatusCode::CONFLICT, error.to_string()),
            StoreError::NotFound(_) => ApiError(StatusCode::NOT_FOUND, error.to_string()),
            _ => {
                tracing::error!(%error, "store error");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Rejected(m) => ApiError(StatusCode::BAD_REQUEST, m),
            EngineError::NotFound(m) => ApiError::not_found(m),
            EngineError::WrongState(m) => ApiError(StatusCode::CONFLICT, m),
            EngineError::TenantFull(m) => ApiError(StatusCode::TOO_MANY_REQUESTS, m),
            EngineError::Store(e) => e.into(),
        }
    }
}

/// The audit entry of an authenticated state-changing request, short of its outcome; put in the
/// request's extensions by the middleware.
#[derive(Clone, Debug)]
pub struct AuditDraft {
    at_ms: i64,
    actor: String,
    action: String,
    path: String,
}

impl AuditDraft {
    /// The entry for this request ending with `status`; `note` names what it created.
    pub fn entry(&self, status: StatusCode, note: Option<&str>) -> NewAuditEvent {
        NewAuditEvent {
            at_ms: self.at_ms,
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: match note {
                Some(note) => format!("{} {note}", self.path),
                None => self.path.clone(),
            },
            outcome: status.as_u16().to_string(),
        }
    }
}

/// Marks a response whose audit entry was appended in the same transaction as its change.
#[derive(Clone, Copy, Debug)]
pub struct AuditRecorded;

/// Marks `response` as already audited.
fn audited(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(AuditRecorded);
    response
}

type ApiResult<T> = Result<T, ApiError>;

/// The router with every route and the authentication and audit middleware.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/whoami", get(whoami))
        .route(
            "/tenants",
            get(admin::list_tenants).post(admin::create_tenant),
        )
        .route("/users", get(admin::list_users).post(admin::create_user))
        .route(
            "/tenants/{name}",
            axum::routing::delete(delete::delete_tenant),
        )
        .route("/users/{name}", axum::routing::delete(delete::delete_user))
        .route("/tokens", get(admin::list_tokens).post(admin::create_token))
        .route("/tokens/{id}", axum::routing::delete(admin::revoke_token))
        .route("/quotas", get(admin::list_quotas).put(admin::set_quota))
        .route("/nodes", get(admin::list_nodes))
        .route("/nodes/{pool}/down", post(admin::node_down))
        .route("/nodes/{pool}/up", post(admin::node_up))
        .route(
            "/jobs",
            get(jobs::list_jobs)
                .post(jobs::submit_job)
                .layer(DefaultBodyLimit::max(limits::SUBMIT_BODY_BYTES)),
        )
        .route("/jobs/plan", post(goals::plan_job))
        .route("/jobs/{id}", get(jobs::show_job))
        .route("/jobs/{id}/progress", post(goals::report_progress))
        .route("/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/jobs/{id}/logs", get(jobs::job_logs))
        .route("/audit", get(admin::list_audit))
        .route("/audit/verify", get(admin::verify_audit))
        .layer(DefaultBodyLimit::max(limits::BODY_BYTES))
        // Artefact uploads stream multi-GB bodies: their routes set their own limits.
        .merge(crate::artifacts::api::routes(state.clone()));
    let authenticated = Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(crate::metrics::metrics))
        .route("/openapi.json", get(crate::openapi::openapi))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(authenticated)
        .with_state(state)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn resolve(store: &dyn Store, token: Option<&str>) -> Result<Principal, AuthError> {
    let token = token.ok_or(AuthError::Missing)?;
    let record = store
        .token_by_hash(&auth::token_hash(token))
        .await?
        .ok_or(AuthError::Invalid)?;
    if let Some(problem) = auth::token_problem(&record, now_s()) {
        return Err(problem);
    }
    let user = store
        .get_user(&record.user)
        .await?
        .ok_or(AuthError::UnknownUser)?;
    Ok(Principal::from(&user))
}

async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let principal = resolve(state.store.as_ref(), bearer(request.headers())).await;
    let mut draft = AuditDraft {
        at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        actor: "anonymous".to_string(),
        action: format!("{method} {path}"),
        path,
    };
    let response = match principal {
        Err(problem) => {
            let mut response =
                ApiError(StatusCode::UNAUTHORIZED, problem.to_string()).into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Ok(principal) => {
            draft.actor = principal.user.clone();
            request.extensions_mut().insert(principal);
            if mutating {
                request.extensions_mut().insert(draft.clone());
            }
            next.run(request).await
        }
    };
    if mutating && response.extensions().get::<AuditRecorded>().is_none() {
        let event = draft.entry(response.status(), None);
        if let Err(error) = state.store.append_audit(&event).await {
            tracing::error!(%error, "failed to append to the audit log");
        }
    }
    response
}

/// A `201 Created` whose change was audited with it.
fn created<T: serde::Serialize>(value: T) -> Response {
    audited((StatusCode::CREATED, Json(value)))
}

#[utoipa::path(get, path = "/healthz", summary = "Liveness; the only unauthenticated route", responses((status = 200, description = "OK")), security(()))]
async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/api/v1/whoami", summary = "The caller's user, role and tenant", responses((status = 200, description = "OK")))]
async fn whoami(Extension(me): Extension<Principal>) -> Json<types::Whoami> {
    Json(types::Whoami {
        user: me.user,
        role: me.role,
        tenant: me.tenant,
    })
}
