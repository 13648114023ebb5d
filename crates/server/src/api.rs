//! The HTTP API: REST/JSON under `/api/v1/`, `/healthz`, `/metrics` and `/openapi.json`.
//!
//! One middleware authenticates every request but `/healthz` (bearer token -> `Principal`) and
//! appends every state-changing request to the audit log with its outcome; each handler then
//! checks the caller's role and tenant itself, next to the data it guards.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{self, Principal};
use crate::engine::{EngineError, now_s};
use crate::store::{
    JobSpec, JobState, NewAuditEvent, Quota, Role, Store, StoreError, Tenant, User,
};
use crate::{Engine, audit};

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Arc<tokio::sync::Mutex<Engine>>,
    pub data_dir: PathBuf,
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
        (self.0, Json(json!({ "error": self.1 }))).into_response()
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
            EngineError::BadRequest(m) => ApiError(StatusCode::BAD_REQUEST, m),
            EngineError::NotFound(m) => ApiError::not_found(m),
            EngineError::Conflict(m) => ApiError(StatusCode::CONFLICT, m),
            EngineError::Store(e) => e.into(),
        }
    }
}

/// What the audit middleware records as the request's target, set by handlers that create
/// something (the new job's id, the new token's id).
#[derive(Clone, Debug)]
pub struct AuditNote(pub String);

type ApiResult<T> = Result<T, ApiError>;

/// The router with every route and the authentication and audit middleware.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/whoami", get(whoami))
        .route("/tenants", get(list_tenants).post(create_tenant))
        .route("/users", get(list_users).post(create_user))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/quotas", get(list_quotas).put(set_quota))
        .route("/nodes", get(list_nodes))
        .route("/nodes/{pool}/down", post(node_down))
        .route("/nodes/{pool}/up", post(node_up))
        .route("/jobs", get(list_jobs).post(submit_job))
        .route("/jobs/{id}", get(show_job))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route("/jobs/{id}/logs", get(job_logs))
        .route("/audit", get(list_audit))
        .route("/audit/verify", get(verify_audit));
    let authenticated = Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(crate::metrics::metrics))
        .route("/openapi.json", get(crate::openapi::openapi))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
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

async fn resolve(store: &dyn Store, token: Option<&str>) -> Result<Principal, String> {
    let token = token.ok_or("missing bearer token")?;
    let record = store
        .token_by_hash(&auth::token_hash(token))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("invalid token")?;
    if let Some(problem) = auth::token_problem(&record, now_s()) {
        return Err(problem.into());
    }
    let user = store
        .get_user(&record.user)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("token of an unknown user")?;
    Ok(Principal::from(&user))
}

async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let principal = resolve(state.store.as_ref(), bearer(request.headers())).await;
    let (actor, response) = match principal {
        Err(problem) => {
            let mut response = ApiError(StatusCode::UNAUTHORIZED, problem).into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            ("anonymous".to_string(), response)
        }
        Ok(principal) => {
            let actor = principal.user.clone();
            request.extensions_mut().insert(principal);
            (actor, next.run(request).await)
        }
    };
    if mutating {
        let target = response
            .extensions()
            .get::<AuditNote>()
            .map_or_else(|| path.clone(), |note| format!("{path} {}", note.0));
        let event = NewAuditEvent {
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            actor,
            action: format!("{method} {path}"),
            target,
            outcome: response.status().as_u16().to_string(),
        };
        if let Err(error) = state.store.append_audit(&event).await {
            tracing::error!(%error, "failed to append to the audit log");
        }
    }
    response
}

fn created<T: serde::Serialize>(value: T, note: String) -> Response {
    let mut response = (StatusCode::CREATED, Json(value)).into_response();
    response.extensions_mut().insert(AuditNote(note));
    response
}

async fn whoami(Extension(me): Extension<Principal>) -> Json<serde_json::Value> {
    Json(json!({ "user": me.user, "role": me.role, "tenant": me.tenant }))
}

async fn list_tenants(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<Vec<Tenant>>> {
    let tenants = state.store.list_tenants().await?;
    Ok(Json(
        tenants
            .into_iter()
            .filter(|t| me.can_read_tenant(&t.name))
            .collect(),
    ))
}

#[derive(Deserialize)]
struct NewTenant {
    name: String,
}

fn valid_name(kind: &str, name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "{kind} name `{name}` must be 1-64 characters of letters, digits, `-`, `_` or `.`"
        )))
    }
}

async fn create_tenant(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Json(body): Json<NewTenant>,
) -> ApiResult<Response> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin creates tenants"));
    }
    valid_name("tenant", &body.name)?;
    let tenant = Tenant {
        name: body.name.clone(),
        created_at_s: now_s(),
    };
    state.store.create_tenant(&tenant).await?;
    Ok(created(tenant, body.name))
}

async fn list_users(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<Vec<User>>> {
    let users = state.store.list_users().await?;
    Ok(Json(
        users
            .into_iter()
            .filter(|u| {
                u.name == me.user
                    || u.tenant.as_deref().is_some_and(|t| me.can_manage_tenant(t))
                    || me.is_admin()
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    tenant: Option<String>,
    role: Role,
}

async fn create_user(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Json(body): Json<NewUser>,
) -> ApiResult<Response> {
    valid_name("user", &body.name)?;
    match (&body.tenant, body.role) {
        (None, Role::Admin) if me.is_admin() => {}
        (None, Role::Admin) => return Err(ApiError::forbidden("only an admin creates admins")),
        (Some(_), Role::Admin) => {
            return Err(ApiError::bad(
                "an admin belongs to no tenant; omit `tenant`",
            ));
        }
        (None, _) => {
            return Err(ApiError::bad(format!(
                "a {} belongs to a tenant; give `tenant`",
                body.role.as_str()
            )));
        }
        (Some(tenant), _) => {
            if !me.can_manage_tenant(tenant) {
                return Err(ApiError::forbidden(&format!(
                    "you cannot manage users of tenant `{tenant}`"
                )));
            }
            let tenants = state.store.list_tenants().await?;
            if !tenants.iter().any(|t| &t.name == tenant) {
                return Err(ApiError::not_found(format!("tenant `{tenant}`")));
            }
        }
    }
    let user = User {
        name: body.name.clone(),
        tenant: body.tenant,
        role: body.role,
        created_at_s: now_s(),
    };
    state.store.create_user(&user).await?;
    Ok(created(user, body.name))
}

/// Whether `me` may create or revoke tokens of `user`.
async fn may_manage_user(store: &dyn Store, me: &Principal, user: &str) -> ApiResult<bool> {
    if me.user == user || me.is_admin() {
        return Ok(true);
    }
    let Some(target) = store.get_user(user).await? else {
        return Ok(false);
    };
    Ok(target.role != Role::Admin
        && target
            .tenant
            .as_deref()
            .is_some_and(|t| me.can_manage_tenant(t)))
}

async fn list_tokens(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<Vec<crate::store::TokenRecord>>> {
    let mut visible = Vec::new();
    for token in state.store.list_tokens().await? {
        if may_manage_user(state.store.as_ref(), &me, &token.user).await? {
            visible.push(token);
        }
    }
    Ok(Json(visible))
}

#[derive(Deserialize)]
struct NewToken {
    user: Option<String>,
    expires_in_s: Option<i64>,
}

async fn create_token(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Json(body): Json<NewToken>,
) -> ApiResult<Response> {
    let user = body.user.unwrap_or_else(|| me.user.clone());
    if !may_manage_user(state.store.as_ref(), &me, &user).await? {
        return Err(ApiError::forbidden(&format!(
            "you cannot create tokens for `{user}`"
        )));
    }
    if state.store.get_user(&user).await?.is_none() {
        return Err(ApiError::not_found(format!("user `{user}`")));
    }
    if body.expires_in_s.is_some_and(|s| s <= 0) {
        return Err(ApiError::bad("expires_in_s must be positive"));
    }
    let now = now_s();
    let (secret, record) = auth::new_token(&user, now, body.expires_in_s.map(|s| now + s));
    state.store.insert_token(&record).await?;
    Ok(created(
        json!({ "id": record.id, "user": user, "token": secret, "expires_at_s": record.expires_at_s }),
        record.id.clone(),
    ))
}

async fn revoke_token(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let Some(token) = state.store.get_token(&id).await? else {
        return Err(ApiError::not_found(format!("token `{id}`")));
    };
    if !may_manage_user(state.store.as_ref(), &me, &token.user).await? {
        return Err(ApiError::forbidden(&format!(
            "you cannot revoke token `{id}`"
        )));
    }
    let revoked = state.store.revoke_token(&id, now_s()).await?;
    Ok(Json(json!({ "id": id, "revoked": revoked })))
}

async fn list_quotas(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<Vec<Quota>>> {
    let quotas = state.store.list_quotas().await?;
    Ok(Json(
        quotas
            .into_iter()
            .filter(|q| me.can_read_tenant(&q.tenant))
            .collect(),
    ))
}

async fn set_quota(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Json(quota): Json<Quota>,
) -> ApiResult<Json<Quota>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin sets quotas"));
    }
    let tenants = state.store.list_tenants().await?;
    if !tenants.iter().any(|t| t.name == quota.tenant) {
        return Err(ApiError::not_found(format!("tenant `{}`", quota.tenant)));
    }
    let quota = Quota {
        accelerator: crate::devices::canonical_type(&quota.accelerator),
        ..quota
    };
    state.store.set_quota(&quota).await?;
    state.engine.lock().await.reload_quotas().await?;
    Ok(Json(quota))
}

async fn list_nodes(State(state): State<AppState>) -> Json<serde_json::Value> {
    let engine = state.engine.lock().await;
    let pools: Vec<serde_json::Value> = engine
        .pools
        .iter()
        .map(|p| {
            json!({
                "node": p.node, "pool": p.name, "accelerator": p.accelerator,
                "total": p.total, "free": p.free.len(), "free_devices": p.free,
                "state": if p.up { "up" } else { "down" }, "executor": "local",
            })
        })
        .collect();
    Json(json!(pools))
}

async fn node_down(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(pool): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin marks nodes down"));
    }
    let stopped = state.engine.lock().await.node_down(&pool).await?;
    Ok(Json(
        json!({ "pool": pool, "state": "down", "requeued_jobs": stopped }),
    ))
}

async fn node_up(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(pool): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin marks nodes up"));
    }
    state.engine.lock().await.node_up(&pool).await?;
    Ok(Json(json!({ "pool": pool, "state": "up" })))
}

#[derive(Deserialize)]
struct JobFilter {
    tenant: Option<String>,
    state: Option<String>,
}

async fn list_jobs(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Query(filter): Query<JobFilter>,
) -> ApiResult<Json<Vec<crate::store::JobRecord>>> {
    let tenant = match (&filter.tenant, &me.tenant) {
        (Some(t), _) if !me.can_read_tenant(t) => {
            return Err(ApiError::forbidden(&format!(
                "you cannot read tenant `{t}`"
            )));
        }
        (Some(t), _) => Some(t.clone()),
        (None, Some(own)) if !me.is_admin() => Some(own.clone()),
        (None, _) => None,
    };
    let wanted = match &filter.state {
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::bad(format!(
                "unknown state `{s}`; use queued, running, succeeded, failed or cancelled"
            ))
        })?),
        None => None,
    };
    let jobs = state.store.list_jobs(tenant.as_deref()).await?;
    Ok(Json(
        jobs.into_iter()
            .filter(|j| wanted.is_none_or(|w| j.state == w))
            .collect(),
    ))
}

#[derive(Deserialize)]
struct Submit {
    name: Option<String>,
    tenant: Option<String>,
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    gpus: Option<u32>,
    processes: Option<u32>,
    #[serde(default)]
    accelerators: Vec<String>,
    #[serde(default)]
    priority: i32,
    checkpoint_dir: Option<String>,
    #[serde(default)]
    max_restarts: u32,
    goal: Option<GoalRequest>,
}

#[derive(Deserialize)]
struct GoalRequest {
    model: String,
    tokens: f64,
}

async fn submit_job(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Json(body): Json<Submit>,
) -> ApiResult<Response> {
    let tenant = body
        .tenant
        .or(me.tenant.clone())
        .ok_or_else(|| ApiError::bad("give `tenant`: an admin belongs to no tenant"))?;
    if !me.can_submit_to(&tenant) {
        return Err(ApiError::forbidden(&format!(
            "role {} cannot submit jobs to tenant `{tenant}`",
            me.role.as_str()
        )));
    }
    let tenants = state.store.list_tenants().await?;
    if !tenants.iter().any(|t| t.name == tenant) {
        return Err(ApiError::not_found(format!("tenant `{tenant}`")));
    }
    let name = body
        .name
        .unwrap_or_else(|| body.command.first().cloned().unwrap_or_default());
    let mut spec = JobSpec {
        name,
        tenant,
        user: me.user.clone(),
        command: body.command,
        env: body.env,
        gpus: body.gpus.unwrap_or(1),
        processes: body.processes.unwrap_or(1),
        accelerators: body
            .accelerators
            .iter()
            .map(|a| crate::devices::canonical_type(a))
            .collect(),
        priority: body.priority,
        checkpoint_dir: body.checkpoint_dir,
        max_restarts: body.max_restarts,
        goal: None,
    };
    if let Some(goal) = body.goal {
        let types = state.engine.lock().await.job_types(&spec);
        let gpus = spec.gpus;
        // The layout search is CPU work: off the async threads.
        let planned = tokio::task::spawn_blocking(move || {
            crate::store::Goal::plan(&goal.model, goal.tokens, gpus, &types)
        })
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        spec.goal = Some(planned.map_err(ApiError::bad)?);
    }
    let job = state.engine.lock().await.submit(spec).await?;
    let id = job.id;
    Ok(created(job, format!("job {id}")))
}

async fn readable_job(
    state: &AppState,
    me: &Principal,
    id: i64,
) -> ApiResult<crate::store::JobRecord> {
    let job = state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    if !me.can_read_tenant(&job.spec.tenant) {
        return Err(ApiError::forbidden(&format!(
            "job {id} belongs to another tenant"
        )));
    }
    Ok(job)
}

async fn show_job(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<crate::store::JobRecord>> {
    Ok(Json(readable_job(&state, &me, id).await?))
}

async fn cancel_job(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<crate::store::JobRecord>> {
    let job = readable_job(&state, &me, id).await?;
    if !me.can_cancel(&job.spec.tenant, &job.spec.user) {
        return Err(ApiError::forbidden(&format!(
            "role {} cannot cancel job {id} of `{}`",
            me.role.as_str(),
            job.spec.user
        )));
    }
    Ok(Json(state.engine.lock().await.cancel(id).await?))
}

#[derive(Deserialize)]
struct LogQuery {
    attempt: Option<u32>,
    #[serde(default)]
    offset: u64,
}

async fn job_logs(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Query(query): Query<LogQuery>,
) -> ApiResult<Response> {
    let job = readable_job(&state, &me, id).await?;
    let attempt = query.attempt.unwrap_or(job.attempts.saturating_sub(1));
    let path = state
        .data_dir
        .join("jobs")
        .join(id.to_string())
        .join(format!("attempt-{attempt}"))
        .join("log");
    let bytes = read_chunk(&path, query.offset).await.map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the log: {e}"),
        )
    })?;
    let next = query.offset + bytes.len() as u64;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (name, value) in [
        ("x-suanli-attempt", attempt.to_string()),
        ("x-suanli-next-offset", next.to_string()),
        ("x-suanli-job-state", job.state.as_str().to_string()),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).expect("ascii header"));
    }
    Ok(response)
}

/// Most bytes of log one request returns; clients ask again from `x-suanli-next-offset`.
const LOG_CHUNK_BYTES: u64 = 1 << 20;

async fn read_chunk(path: &std::path::Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut bytes = Vec::new();
    file.take(LOG_CHUNK_BYTES).read_to_end(&mut bytes).await?;
    Ok(bytes)
}

async fn list_audit(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<Vec<crate::store::AuditEvent>>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin reads the audit log"));
    }
    Ok(Json(state.store.list_audit().await?))
}

async fn verify_audit(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<serde_json::Value>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin verifies the audit log"));
    }
    let events = state.store.list_audit().await?;
    Ok(Json(match audit::verify(&events) {
        Ok((entries, head)) => json!({ "ok": true, "entries": entries, "head": head }),
        Err(broken) => json!({
            "ok": false, "entries": events.len(), "first_bad_seq": broken.seq,
            "problem": broken.problem, "message": broken.to_string(),
        }),
    }))
}
