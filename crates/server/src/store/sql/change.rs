//! Writes inside a transaction: one change, a new job, an audit append after the chain's head.

use sqlx::{AnyConnection, Row};

use super::super::{
    AuditEvent, Change, Changed, JobRecord, JobSpec, JobState, NewAuditEvent, StoreError,
    TokenRecord,
};
use super::conflict_or;
use super::rows::to_json;

/// Makes one change on `connection` (inside the caller's transaction, if any).
pub(super) async fn apply(
    connection: &mut AnyConnection,
    change: Change<'_>,
) -> Result<Changed, StoreError> {
    match change {
        Change::CreateTenant(tenant) => {
            sqlx::query("INSERT INTO tenants (name, created_at_s) VALUES ($1, $2)")
                .bind(&tenant.name)
                .bind(tenant.created_at_s)
                .execute(&mut *connection)
                .await
                .map_err(|e| conflict_or(e, format!("tenant `{}`", tenant.name)))?;
        }
        Change::CreateUser(user) => {
            sqlx::query(
                "INSERT INTO users (name, tenant, role, created_at_s) VALUES ($1, $2, $3, $4)",
            )
            .bind(&user.name)
            .bind(user.tenant.clone())
            .bind(user.role.as_str())
            .bind(user.created_at_s)
            .execute(&mut *connection)
            .await
            .map_err(|e| conflict_or(e, format!("user `{}`", user.name)))?;
        }
        Change::InsertToken(token) => insert_token(connection, token).await?,
        Change::RevokeToken { id, now_s } => {
            let result = sqlx::query(
                "UPDATE tokens SET revoked_at_s = $1 WHERE id = $2 AND revoked_at_s IS NULL",
            )
            .bind(now_s)
            .bind(id)
            .execute(&mut *connection)
            .await?;
            if result.rows_affected() != 1 {
                return Ok(Changed::Unchanged);
            }
        }
        Change::SetQuota(quota) => {
            sqlx::query(
                "INSERT INTO quotas (tenant, accelerator, limit_count) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant, accelerator) DO UPDATE SET limit_count = excluded.limit_count",
            )
            .bind(&quota.tenant)
            .bind(&quota.accelerator)
            .bind(i64::from(quota.limit))
            .execute(&mut *connection)
            .await?;
        }
        Change::DeleteTenant(name) => delete_tenant(connection, name).await?,
        Change::DeleteUser { name, now_s } => delete_user(connection, name, now_s).await?,
        Change::UpdateJob(job) => update_job(connection, job).await?,
    }
    Ok(Changed::Done)
}

/// Stores a token (its hash, never the secret).
async fn insert_token(
    connection: &mut AnyConnection,
    token: &TokenRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (id, user_name, hash, created_at_s, expires_at_s, revoked_at_s) \
             VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&token.id)
    .bind(&token.user)
    .bind(&token.hash)
    .bind(token.created_at_s)
    .bind(token.expires_at_s)
    .bind(token.revoked_at_s)
    .execute(&mut *connection)
    .await
    .map_err(|e| conflict_or(e, format!("token `{}`", token.id)))?;
    Ok(())
}

/// Removes a tenant and its quotas.
async fn delete_tenant(connection: &mut AnyConnection, name: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM quotas WHERE tenant = $1")
        .bind(name)
        .execute(&mut *connection)
        .await?;
    let result = sqlx::query("DELETE FROM tenants WHERE name = $1")
        .bind(name)
        .execute(&mut *connection)
        .await?;
    one_row(result.rows_affected(), || format!("tenant `{name}`"))
}

/// Revokes a user's tokens at `now_s` and removes the user.
async fn delete_user(
    connection: &mut AnyConnection,
    name: &str,
    now_s: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tokens SET revoked_at_s = $1 WHERE user_name = $2 AND revoked_at_s IS NULL",
    )
    .bind(now_s)
    .bind(name)
    .execute(&mut *connection)
    .await?;
    let result = sqlx::query("DELETE FROM users WHERE name = $1")
        .bind(name)
        .execute(&mut *connection)
        .await?;
    one_row(result.rows_affected(), || format!("user `{name}`"))
}

/// Writes a job's state, run and spec (the spec changes only in a goal job's progress and choice).
async fn update_job(connection: &mut AnyConnection, job: &JobRecord) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE jobs SET state = $1, reason = $2, restarts = $3, attempts = $4, \
             exit_code = $5, started_at_s = $6, finished_at_s = $7, run = $8, spec = $9 \
             WHERE id = $10",
    )
    .bind(job.state.as_str())
    .bind(&job.reason)
    .bind(i64::from(job.restarts))
    .bind(i64::from(job.attempts))
    .bind(job.exit_code.map(i64::from))
    .bind(job.started_at_s)
    .bind(job.finished_at_s)
    .bind(job.run.as_ref().map(to_json))
    // The spec changes only in its goal's progress and choice (goal jobs).
    .bind(to_json(&job.spec))
    .bind(job.id)
    .execute(&mut *connection)
    .await?;
    one_row(result.rows_affected(), || format!("job {}", job.id))
}

/// A write that had to touch exactly one row: `NotFound(what)` when it touched none.
fn one_row(rows: u64, what: impl FnOnce() -> String) -> Result<(), StoreError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound(what()))
    }
}

/// Stores a new queued job inside the caller's transaction.
pub(super) async fn insert_job_in(
    connection: &mut AnyConnection,
    spec: &JobSpec,
    now_s: i64,
) -> Result<JobRecord, StoreError> {
    let row = sqlx::query(
        "INSERT INTO jobs (tenant, state, reason, restarts, attempts, submitted_at_s, spec) \
         VALUES ($1, $2, $3, 0, 0, $4, $5) RETURNING id",
    )
    .bind(&spec.tenant)
    .bind(JobState::Queued.as_str())
    .bind("submitted")
    .bind(now_s)
    .bind(to_json(spec))
    .fetch_one(&mut *connection)
    .await?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        spec: spec.clone(),
        state: JobState::Queued,
        reason: "submitted".into(),
        restarts: 0,
        attempts: 0,
        exit_code: None,
        submitted_at_s: now_s,
        started_at_s: None,
        finished_at_s: None,
        run: None,
    })
}

/// Appends `event` after the chain's head, inside the caller's transaction; see the module
/// comment for how concurrent appends are serialised.
pub(super) async fn append_in(
    connection: &mut AnyConnection,
    kind: &str,
    event: &NewAuditEvent,
) -> Result<AuditEvent, StoreError> {
    if kind == "postgres" {
        sqlx::query("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *connection)
            .await?;
    }
    let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *connection)
        .await?;
    let (prev_seq, prev_hash) = match last {
        Some(row) => (row.try_get::<i64, _>("seq")?, row.try_get("hash")?),
        None => (0, crate::audit::GENESIS_HASH.to_string()),
    };
    let mut chained = AuditEvent {
        seq: prev_seq + 1,
        at_ms: event.at_ms,
        actor: event.actor.clone(),
        action: event.action.clone(),
        target: event.target.clone(),
        outcome: event.outcome.clone(),
        prev_hash,
        hash: String::new(),
    };
    chained.hash = crate::audit::event_hash(&chained);
    sqlx::query(
        "INSERT INTO audit (seq, at_ms, actor, action, target, outcome, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(chained.seq)
    .bind(chained.at_ms)
    .bind(&chained.actor)
    .bind(&chained.action)
    .bind(&chained.target)
    .bind(&chained.outcome)
    .bind(&chained.prev_hash)
    .bind(&chained.hash)
    .execute(&mut *connection)
    .await
    .map_err(|e| conflict_or(e, format!("audit event {}", chained.seq)))?;
    Ok(chained)
}
