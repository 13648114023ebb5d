//! Deleting tenants and users: refused while something still depends on them.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{ApiError, ApiResult, AppState, AuditDraft, audited};
use crate::auth::Principal;
use crate::engine::now_s;
use crate::store::Change;

/// DELETE /api/v1/tenants/{name} (admin): only a tenant without users and without queued or
/// running jobs; its quotas go with it, its ended jobs stay in the history.
#[utoipa::path(delete, path = "/api/v1/tenants/{name}", summary = "Delete a tenant without users or active jobs (admin)", params(("name" = String, Path, description = "Tenant or user name")), responses((status = 200, description = "OK", body = super::types::Deleted)))]
pub(super) async fn delete_tenant(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin deletes tenants"));
    }
    let members: Vec<String> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.tenant.as_deref() == Some(name.as_str()))
        .map(|u| u.name)
        .collect();
    if !members.is_empty() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "tenant `{name}` still has users {}; delete them first (suanli user delete NAME)",
                members.join(", ")
            ),
        ));
    }
    let active = state
        .store
        .list_active_jobs()
        .await?
        .into_iter()
        .filter(|j| j.spec.tenant == name)
        .count();
    if active > 0 {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("tenant `{name}` has {active} queued or running jobs; cancel them first"),
        ));
    }
    let entry = draft.entry(StatusCode::OK, Some(&name));
    state
        .store
        .change_audited(Change::DeleteTenant(&name), &entry)
        .await?;
    state.engine.lock().await.reload_quotas().await?;
    Ok(audited(Json(super::types::Deleted { deleted: name })))
}

/// DELETE /api/v1/users/{name} (admin, or tenant-admin for their tenant): the user's tokens are
/// revoked in the same transaction; nobody deletes themselves.
#[utoipa::path(delete, path = "/api/v1/users/{name}", summary = "Delete a user and revoke their tokens (admin, or tenant-admin in their tenant)", params(("name" = String, Path, description = "Tenant or user name")), responses((status = 200, description = "OK", body = super::types::Deleted)))]
pub(super) async fn delete_user(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let Some(user) = state.store.get_user(&name).await? else {
        return Err(ApiError::not_found(format!("user `{name}`")));
    };
    let allowed = match &user.tenant {
        Some(tenant) => me.can_manage_tenant(tenant),
        None => me.is_admin(),
    };
    if !allowed {
        return Err(ApiError::forbidden(&format!(
            "you cannot delete user `{name}`"
        )));
    }
    if user.name == me.user {
        return Err(ApiError::bad(
            "you cannot delete yourself; ask another admin",
        ));
    }
    let entry = draft.entry(StatusCode::OK, Some(&name));
    let change = Change::DeleteUser {
        name: &name,
        now_s: now_s(),
    };
    state.store.change_audited(change, &entry).await?;
    Ok(audited(Json(super::types::Deleted { deleted: name })))
}
