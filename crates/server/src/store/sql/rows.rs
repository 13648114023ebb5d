//! Rows to records: each table's columns read back into the store's types, and records to the
//! JSON text columns hold.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::super::{AuditEvent, JobRecord, JobState, Role, StoreError, TokenRecord, User};

pub(super) fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        name: row.try_get("name")?,
        tenant: row.try_get("tenant")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role `{role}`")))?,
        created_at_s: row.try_get("created_at_s")?,
    })
}

pub(super) fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        hash: row.try_get("hash")?,
        created_at_s: row.try_get("created_at_s")?,
        expires_at_s: row.try_get("expires_at_s")?,
        revoked_at_s: row.try_get("revoked_at_s")?,
    })
}

pub(super) fn job_from_row(row: &AnyRow) -> Result<JobRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let spec: String = row.try_get("spec")?;
    let run: Option<String> = row.try_get("run")?;
    let exit_code: Option<i64> = row.try_get("exit_code")?;
    let restarts: i64 = row.try_get("restarts")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        spec: serde_json::from_str(&spec)
            .map_err(|e| StoreError::Corrupt(format!("job spec: {e}")))?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("job state `{state}`")))?,
        reason: row.try_get("reason")?,
        restarts: restarts as u32,
        attempts: attempts as u32,
        exit_code: exit_code.map(|c| c as i32),
        submitted_at_s: row.try_get("submitted_at_s")?,
        started_at_s: row.try_get("started_at_s")?,
        finished_at_s: row.try_get("finished_at_s")?,
        run: match run {
            Some(text) if !text.is_empty() => Some(
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("job run: {e}")))?,
            ),
            _ => None,
        },
    })
}

pub(super) fn audit_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent {
        seq: row.try_get("seq")?,
        at_ms: row.try_get("at_ms")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: row.try_get("outcome")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store records serialise")
}
