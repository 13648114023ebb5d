//! Goal jobs on the API: planning a goal (a dry run of `job submit --goal`), choosing the gang of
//! a submitted goal job, and progress reports from running ones.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, AppState, AuditDraft, audited, limits};
use crate::auth::Principal;
use crate::engine::goal::{self, GoalPlan, GoalRequest};
use crate::store::JobSpec;

/// Plans `request` for `tenant` on `accelerators` (empty: any) against the live queue: the
/// engine's state is copied under its lock, the searches and forecasts run off it.
async fn plan_goal(
    state: &AppState,
    tenant: &str,
    accelerators: &[String],
    request: GoalRequest,
) -> ApiResult<(GoalPlan, String)> {
    limits::name("model", &request.model)?;
    let inputs = state.engine.lock().await.goal_inputs(tenant, accelerators);
    let (plan, model) = tokio::task::spawn_blocking(move || {
        let model = inputs
            .catalog()
            .model(&request.model)
            .map(|m| m.id.clone())
            .map_err(|e| crate::engine::EngineError::Rejected(e.to_string()));
        (goal::plan(&inputs, &request), model)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((plan?, model?))
}

/// Fills a submitted job's goal: with `choose`, the server picks type, gang size and layout (a
/// goal no option meets is refused with the reason); otherwise the given gang's rates.
pub(super) async fn plan_into(
    state: &AppState,
    spec: &mut JobSpec,
    request: GoalRequest,
    choose: bool,
) -> ApiResult<()> {
    if choose {
        let (plan, model) =
            plan_goal(state, &spec.tenant, &spec.run.accelerators, request.clone()).await?;
        let chosen = plan.chosen.ok_or_else(|| {
            ApiError::bad(
                plan.problem
                    .unwrap_or_else(|| "no option meets the goal".into()),
            )
        })?;
        goal::apply_choice(spec, &request, &model, chosen);
        return Ok(());
    }
    let inputs = state
        .engine
        .lock()
        .await
        .goal_inputs(&spec.tenant, &spec.run.accelerators);
    let gpus = spec.gpus;
    let planned = tokio::task::spawn_blocking(move || {
        goal::goal_for_gang(inputs.catalog(), &request, gpus, inputs.types())
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    spec.goal = Some(planned?);
    Ok(())
}

/// A dry run of a goal job.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanBody {
    /// Tenant whose quota and queue count (default: the caller's).
    pub tenant: Option<String>,
    /// Accelerator types the job may use (default any).
    #[serde(default)]
    pub accelerators: Vec<String>,
    pub goal: GoalRequest,
}

#[utoipa::path(post, path = "/api/v1/jobs/plan", summary = "Dry run of a goal job: every option (type, gang size, layout, predicted start and finish, cost, error band) and why the others lose", request_body = PlanBody, responses((status = 200, description = "OK", body = GoalPlan)))]
pub(super) async fn plan_job(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Json(body): Json<PlanBody>,
) -> ApiResult<Json<GoalPlan>> {
    if let Some(tenant) = &body.tenant {
        limits::name("tenant", tenant)?;
    }
    let accelerators = limits::accelerator_types(&body.accelerators)?;
    // Planning is a submission's first half: who cannot submit there cannot plan there.
    let tenant = super::jobs::submit_tenant(&me, body.tenant, "plan jobs for")?;
    let (plan, _) = plan_goal(&state, &tenant, &accelerators, body.goal).await?;
    Ok(Json(plan))
}

/// Tokens a running goal job has trained.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgressBody {
    pub tokens: f64,
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/progress", summary = "A running goal job reports the tokens it has trained; its predicted finish follows", params(("id" = i64, Path, description = "Job id")), request_body = ProgressBody, responses((status = 200, description = "OK")))]
pub(super) async fn report_progress(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
    Path(id): Path<i64>,
    Json(body): Json<ProgressBody>,
) -> ApiResult<Response> {
    let job = super::jobs::readable_job(&state, &me, id).await?;
    if !me.can_submit_to(&job.spec.tenant) {
        return Err(ApiError::forbidden(&format!(
            "role {} cannot report progress of job {id}",
            me.role.as_str()
        )));
    }
    let entry = draft.entry(StatusCode::OK, None);
    let job = state
        .engine
        .lock()
        .await
        .report_progress(id, body.tokens, Some(&entry))
        .await?;
    Ok(audited(Json(job)))
}
