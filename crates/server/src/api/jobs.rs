//! Jobs: submit, list, show, cancel and logs.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, AppState, AuditDraft, audited, created, limits};
use crate::auth::Principal;
use crate::store::{JobQuery, JobSpec, JobState};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct JobFilter {
    tenant: Option<String>,
    state: Option<String>,
    /// Jobs with ids above this one (the `x-suanli-next-after` of the previous page).
    after: Option<i64>,
    limit: Option<u32>,
}

/// One page of jobs, filtered and paged in the database; a full page carries
/// `x-suanli-next-after`, the cursor of the next one.
#[utoipa::path(get, path = "/api/v1/jobs", summary = "Jobs of the caller's tenant (all for an admin); a full page has x-suanli-next-after", params(JobFilter), responses((status = 200, description = "OK")))]
pub(super) async fn list_jobs(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Query(filter): Query<JobFilter>,
) -> ApiResult<Response> {
    let tenant = match (&filter.tenant, &me.tenant) {
        (Some(t), _) if !me.can_read_tenant(t) => {
            return Err(ApiError::forbidden(&format!(
                "you cannot read tenant `{}`",
                limits::printable(t, 64)
            )));
        }
        (Some(t), _) => Some(t.clone()),
        (None, Some(own)) if !me.is_admin() => Some(own.clone()),
        (None, _) => None,
    };
    let wanted = match &filter.state {
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::bad(format!(
                "unknown state `{}`; use queued, running, succeeded, failed or cancelled",
                limits::printable(s, 32)
            ))
        })?),
        None => None,
    };
    let limit = filter.limit.unwrap_or(limits::PAGE_DEFAULT);
    if limit == 0 || limit > limits::PAGE_MAX {
        return Err(ApiError::bad(format!(
            "limit must be between 1 and {}, not {limit}",
            limits::PAGE_MAX
        )));
    }
    let query = JobQuery {
        tenant,
        state: wanted,
        after_id: filter.after,
        limit,
    };
    let jobs = state.store.query_jobs(&query).await?;
    let next = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    let mut response = Json(jobs).into_response();
    if let Some(next) = next {
        response.headers_mut().insert(
            "x-suanli-next-after",
            HeaderValue::from_str(&next.to_string()).expect("digits"),
        );
    }
    Ok(response)
}

/// Bounds every field of a submission before anything else looks at it; returns its
/// accelerator types in canonical spelling.
fn check_submit(body: &Submit) -> ApiResult<Vec<String>> {
    if let Some(name) = &body.name {
        limits::job_name(name)?;
    }
    if let Some(tenant) = &body.tenant {
        limits::name("tenant", tenant)?;
    }
    limits::command(&body.run.command)?;
    limits::env(&body.run.env)?;
    limits::count("gpus", body.gpus.unwrap_or(1), limits::MAX_GPUS)?;
    limits::count("processes", body.processes.unwrap_or(1), limits::MAX_GPUS)?;
    let accelerators = limits::accelerator_types(&body.run.accelerators)?;
    if let Some(dir) = &body.run.checkpoint_dir {
        limits::path("checkpoint_dir", dir)?;
    }
    if body.run.max_restarts > limits::MAX_RESTARTS {
        return Err(ApiError::bad(format!(
            "max_restarts must be at most {}",
            limits::MAX_RESTARTS
        )));
    }
    if let Some(goal) = &body.goal {
        limits::name("model", &goal.model)?;
    }
    Ok(accelerators)
}

/// `POST /api/v1/jobs`: shared with the CLI (`api::types` re-exports it).
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Submit {
    pub name: Option<String>,
    pub tenant: Option<String>,
    #[serde(flatten)]
    pub run: crate::store::RunSpec,
    pub gpus: Option<u32>,
    pub processes: Option<u32>,
    /// A training goal; without `gpus` the server chooses type, gang size and layout.
    pub goal: Option<crate::engine::goal::GoalRequest>,
}

/// The tenant a submission (or its dry run) goes to: the one given, else the caller's (`default`
/// for an admin), refused unless the caller may submit there; `action` words the refusal.
pub(super) fn submit_tenant(
    me: &Principal,
    given: Option<String>,
    action: &str,
) -> ApiResult<String> {
    let tenant = given
        .or(me.tenant.clone())
        .or_else(|| me.is_admin().then(|| crate::DEFAULT_TENANT.to_string()))
        .ok_or_else(|| ApiError::bad("give `tenant`: this user belongs to no tenant"))?;
    if !me.can_submit_to(&tenant) {
        return Err(ApiError::forbidden(&format!(
            "role {} cannot {action} tenant `{tenant}`",
            me.role.as_str()
        )));
    }
    Ok(tenant)
}

#[utoipa::path(post, path = "/api/v1/jobs", summary = "Submit a job", request_body = Submit, responses((status = 201, description = "Created")))]
pub(super) async fn submit_job(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
    Json(body): Json<Submit>,
) -> ApiResult<Response> {
    let accelerators = check_submit(&body)?;
    let tenant = submit_tenant(&me, body.tenant, "submit jobs to")?;
    let tenants = state.store.list_tenants().await?;
    if !tenants.iter().any(|t| t.name == tenant) {
        return Err(ApiError::not_found(format!("tenant `{tenant}`")));
    }
    let name = body.name.unwrap_or_else(|| {
        let program = body.run.command.first().cloned().unwrap_or_default();
        limits::printable(&program, limits::NAME_BYTES)
    });
    let mut spec = JobSpec {
        name,
        tenant,
        user: me.user.clone(),
        run: crate::store::RunSpec {
            accelerators,
            ..body.run
        },
        gpus: body.gpus.unwrap_or(1),
        processes: body.processes.unwrap_or(1),
        goal: None,
    };
    if let Some(goal) = body.goal {
        super::goals::plan_into(&state, &mut spec, goal, body.gpus.is_none()).await?;
    }
    // The store appends ` job ID` to the entry's target once the job has its id.
    let entry = draft.entry(StatusCode::CREATED, None);
    let job = state.engine.lock().await.submit(spec, &entry).await?;
    Ok(created(job))
}

pub(super) async fn readable_job(
    state: &AppState,
    me: &Principal,
    id: i64,
) -> ApiResult<crate::store::JobRecord> {
    let job = state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    // Another tenant's job is answered exactly like a missing one, so ids reveal nothing.
    if !me.can_read_tenant(&job.spec.tenant) {
        return Err(ApiError::not_found(format!("job {id}")));
    }
    Ok(job)
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", summary = "One job, with the reason it waits or how it ended", params(("id" = i64, Path, description = "Job or token id")), responses((status = 200, description = "OK")))]
pub(super) async fn show_job(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<crate::store::JobRecord>> {
    Ok(Json(readable_job(&state, &me, id).await?))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", summary = "Cancel a job (kills its process group)", params(("id" = i64, Path, description = "Job or token id")), responses((status = 200, description = "OK")))]
pub(super) async fn cancel_job(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let job = readable_job(&state, &me, id).await?;
    if !me.can_cancel(&job.spec.tenant, &job.spec.user) {
        return Err(ApiError::forbidden(&format!(
            "role {} cannot cancel job {id} of `{}`",
            me.role.as_str(),
            job.spec.user
        )));
    }
    let entry = draft.entry(StatusCode::OK, None);
    let (job, recorded) = state.engine.lock().await.cancel(id, &entry).await?;
    // A repeated cancel of a job already stopping changes nothing; the middleware records it.
    Ok(if recorded {
        audited(Json(job))
    } else {
        Json(job).into_response()
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LogQuery {
    attempt: Option<u32>,
    #[serde(default)]
    offset: u64,
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/logs", summary = "A run's output", params(("id" = i64, Path, description = "Job or token id"), LogQuery), responses((status = 200, description = "OK")))]
pub(super) async fn job_logs(
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
    if i64::try_from(query.offset).is_err() {
        return Err(ApiError::bad(format!(
            "offset {} is beyond any log; use the x-suanli-next-offset of the previous answer",
            query.offset
        )));
    }
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

pub(super) async fn read_chunk(path: &std::path::Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    // Past the end there is nothing yet (the log may still grow): no seek, no error.
    if offset >= file.metadata().await?.len() {
        return Ok(Vec::new());
    }
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut bytes = Vec::new();
    file.take(LOG_CHUNK_BYTES).read_to_end(&mut bytes).await?;
    Ok(bytes)
}
