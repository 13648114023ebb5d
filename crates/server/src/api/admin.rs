//! Tenants, users, tokens, quotas, nodes and the audit log.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::types::{NewTenant, NewToken, NewUser, NodeRow};
use super::{ApiError, ApiResult, AppState, AuditDraft, audited, created};
use crate::auth::{self, Principal};
use crate::engine::now_s;
use crate::store::{Change, Changed, Quota, Role, Store, Tenant, User};

#[utoipa::path(get, path = "/api/v1/tenants", summary = "Tenants the caller can see", responses((status = 200, description = "OK")))]
pub(super) async fn list_tenants(
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

fn valid_name(kind: &str, name: &str) -> ApiResult<()> {
    super::limits::name(kind, name)
}

#[utoipa::path(post, path = "/api/v1/tenants", summary = "Create a tenant (admin)", request_body = NewTenant, responses((status = 201, description = "Created")))]
pub(super) async fn create_tenant(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
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
    let entry = draft.entry(StatusCode::CREATED, Some(&body.name));
    state
        .store
        .change_audited(Change::CreateTenant(&tenant), &entry)
        .await?;
    Ok(created(tenant))
}

#[utoipa::path(get, path = "/api/v1/users", summary = "Users the caller can see", responses((status = 200, description = "OK")))]
pub(super) async fn list_users(
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

#[utoipa::path(post, path = "/api/v1/users", summary = "Create a user (admin, or tenant-admin in their tenant)", request_body = NewUser, responses((status = 201, description = "Created")))]
pub(super) async fn create_user(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
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
    let entry = draft.entry(StatusCode::CREATED, Some(&body.name));
    match state
        .store
        .change_audited(Change::CreateUser(&user), &entry)
        .await
    {
        Ok(_) => Ok(created(user)),
        // Names are global: say it is taken, never whose it is or in which tenant.
        Err(crate::store::StoreError::Conflict(_)) => Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "user name `{}` is not available; choose another (user names are shared by all tenants)",
                body.name
            ),
        )),
        Err(error) => Err(error.into()),
    }
}

/// Whether `me` may create or revoke tokens of `user`.
pub(super) async fn may_manage_user(
    store: &dyn Store,
    me: &Principal,
    user: &str,
) -> ApiResult<bool> {
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

#[utoipa::path(get, path = "/api/v1/tokens", summary = "Tokens the caller can manage (hashes never shown)", responses((status = 200, description = "OK")))]
pub(super) async fn list_tokens(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<Vec<super::types::TokenView>>> {
    let mut visible = Vec::new();
    for token in state.store.list_tokens().await? {
        if may_manage_user(state.store.as_ref(), &me, &token.user).await? {
            visible.push(token.into());
        }
    }
    Ok(Json(visible))
}

#[utoipa::path(post, path = "/api/v1/tokens", summary = "Create a token; the secret is returned once", request_body = NewToken, responses((status = 201, description = "Created")))]
pub(super) async fn create_token(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
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
    let max = super::limits::MAX_TOKEN_LIFETIME_S;
    if body.expires_in_s.is_some_and(|s| s <= 0 || s > max) {
        return Err(ApiError::bad(format!(
            "expires_in_s must be between 1 and {max} (ten years)"
        )));
    }
    let now = now_s();
    let (secret, record) = auth::new_token(&user, now, body.expires_in_s.map(|s| now + s));
    let entry = draft.entry(StatusCode::CREATED, Some(&record.id));
    state
        .store
        .change_audited(Change::InsertToken(&record), &entry)
        .await?;
    Ok(created(super::types::CreatedToken {
        id: record.id,
        user,
        token: secret,
        expires_at_s: record.expires_at_s,
    }))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", summary = "Revoke a token", params(("id" = i64, Path, description = "Job or token id")), responses((status = 200, description = "OK")))]
pub(super) async fn revoke_token(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let Some(token) = state.store.get_token(&id).await? else {
        return Err(ApiError::not_found(format!("token `{id}`")));
    };
    if !may_manage_user(state.store.as_ref(), &me, &token.user).await? {
        return Err(ApiError::forbidden(&format!(
            "you cannot revoke token `{id}`"
        )));
    }
    let change = Change::RevokeToken {
        id: &id,
        now_s: now_s(),
    };
    let entry = draft.entry(StatusCode::OK, None);
    let (changed, _) = state.store.change_audited(change, &entry).await?;
    let body = Json(super::types::Revoked {
        id,
        revoked: changed == Changed::Done,
    });
    // Revoking a revoked token changes nothing; the middleware records that request.
    Ok(match changed {
        Changed::Unchanged => body.into_response(),
        _ => audited(body),
    })
}

#[utoipa::path(get, path = "/api/v1/quotas", summary = "Quotas of the tenants the caller can see", responses((status = 200, description = "OK", body = Vec<super::types::QuotaUsage>)))]
pub(super) async fn list_quotas(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<Vec<super::types::QuotaUsage>>> {
    let quotas = state.store.list_quotas().await?;
    let engine = state.engine.lock().await;
    Ok(Json(
        quotas
            .into_iter()
            .filter(|q| me.can_read_tenant(&q.tenant))
            .map(|q| {
                let used = engine.admitted_usage(&q.tenant, &q.accelerator);
                super::types::QuotaUsage {
                    used,
                    tenant: q.tenant,
                    accelerator: q.accelerator,
                    limit: q.limit,
                }
            })
            .collect(),
    ))
}

#[utoipa::path(put, path = "/api/v1/quotas", summary = "Set a tenant's quota for an accelerator type (admin)", responses((status = 200, description = "OK")))]
pub(super) async fn set_quota(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Extension(draft): Extension<AuditDraft>,
    Json(quota): Json<Quota>,
) -> ApiResult<Response> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin sets quotas"));
    }
    valid_name("tenant", &quota.tenant)?;
    valid_name("accelerator type", &quota.accelerator)?;
    let tenants = state.store.list_tenants().await?;
    if !tenants.iter().any(|t| t.name == quota.tenant) {
        return Err(ApiError::not_found(format!("tenant `{}`", quota.tenant)));
    }
    // A quota on a type this cluster has (detected types may be outside the catalog) or a
    // catalog type; anything else is a typo that would silently never apply.
    let (offered, catalog) = {
        let engine = state.engine.lock().await;
        let offered = engine
            .pools
            .iter()
            .any(|p| p.accelerator == crate::devices::canonical_type(&quota.accelerator));
        (offered, engine.catalog.clone())
    };
    let accelerator = if offered {
        crate::devices::canonical_type(&quota.accelerator)
    } else {
        crate::devices::declared_type(&quota.accelerator, &catalog)
            .map_err(|e| ApiError::bad(e.to_string()))?
    };
    let quota = Quota {
        accelerator,
        ..quota
    };
    let entry = draft.entry(StatusCode::OK, None);
    state
        .store
        .change_audited(Change::SetQuota(&quota), &entry)
        .await?;
    state.engine.lock().await.reload_quotas().await?;
    Ok(audited(Json(quota)))
}

#[utoipa::path(get, path = "/api/v1/nodes", summary = "Nodes and their free accelerators", responses((status = 200, description = "OK", body = Vec<NodeRow>)))]
pub(super) async fn list_nodes(State(state): State<AppState>) -> Json<Vec<NodeRow>> {
    let engine = state.engine.lock().await;
    Json(engine.pools.iter().flat_map(NodeRow::of_pool).collect())
}

#[utoipa::path(post, path = "/api/v1/nodes/{pool}/down", summary = "Mark a pool's node failed: its jobs are requeued (admin)", params(("pool" = String, Path, description = "Node pool")), responses((status = 200, description = "OK", body = super::types::NodeChange)))]
pub(super) async fn node_down(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(pool): Path<String>,
) -> ApiResult<Json<super::types::NodeChange>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin marks nodes down"));
    }
    let stopped = state.engine.lock().await.node_down(&pool).await?;
    Ok(Json(super::types::NodeChange {
        pool,
        state: "down".into(),
        requeued_jobs: Some(stopped),
    }))
}

#[utoipa::path(post, path = "/api/v1/nodes/{pool}/up", summary = "Return a failed node to service (admin)", params(("pool" = String, Path, description = "Node pool")), responses((status = 200, description = "OK", body = super::types::NodeChange)))]
pub(super) async fn node_up(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
    Path(pool): Path<String>,
) -> ApiResult<Json<super::types::NodeChange>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin marks nodes up"));
    }
    state.engine.lock().await.node_up(&pool).await?;
    Ok(Json(super::types::NodeChange {
        pool,
        state: "up".into(),
        requeued_jobs: None,
    }))
}

#[utoipa::path(get, path = "/api/v1/audit", summary = "The audit log (admin)", responses((status = 200, description = "OK")))]
pub(super) async fn list_audit(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<Vec<crate::store::AuditEvent>>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin reads the audit log"));
    }
    Ok(Json(state.store.list_audit().await?))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", summary = "Check the audit hash chain (admin)", responses((status = 200, description = "OK")))]
pub(super) async fn verify_audit(
    State(state): State<AppState>,
    Extension(me): Extension<Principal>,
) -> ApiResult<Json<super::types::AuditVerdict>> {
    if !me.is_admin() {
        return Err(ApiError::forbidden("only an admin verifies the audit log"));
    }
    let events = state.store.list_audit().await?;
    Ok(Json(super::types::AuditVerdict::of(&events)))
}
