//! Rows to records: each table's columns read back into the store's types, and records to the
//! JSON text columns hold.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::super::{AuditEvent, JobRecord, JobState, Role, StoreError, TokenRecord, User};

/// A record whose fields are read from the row's columns of the same name, or of the name after
/// `=`; the fields after `;` are the local variables of that name (columns that needed parsing).
/// `derive(sqlx::FromRow)` would say the same, but it builds sqlx's proc-macro crate and, for
/// the host, both database drivers again: the choice `migrate.rs` makes for `migrate!`.
macro_rules! from_columns {
    ($row:ident => $record:ident {
        $($field:ident $(= $column:literal)?),* $(; $($local:ident),*)? $(,)?
    }) => {
        $record {
            $($field: $row.try_get(from_columns!(@column $field $($column)?))?,)*
            $($($local,)*)?
        }
    };
    (@column $field:ident) => {
        stringify!($field)
    };
    (@column $field:ident $column:literal) => {
        $column
    };
}

pub(super) fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role `{role}`")))?;
    Ok(from_columns!(row => User { name, tenant, created_at_s; role }))
}

pub(super) fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(from_columns!(row => TokenRecord {
        id, user = "user_name", hash, created_at_s, expires_at_s, revoked_at_s
    }))
}

pub(super) fn job_from_row(row: &AnyRow) -> Result<JobRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let state = JobState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("job state `{state}`")))?;
    let spec: String = row.try_get("spec")?;
    let spec =
        serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt(format!("job spec: {e}")))?;
    let run = match row.try_get::<Option<String>, _>("run")? {
        Some(text) if !text.is_empty() => Some(
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("job run: {e}")))?,
        ),
        _ => None,
    };
    let restarts = row.try_get::<i64, _>("restarts")? as u32;
    let attempts = row.try_get::<i64, _>("attempts")? as u32;
    let exit_code = row
        .try_get::<Option<i64>, _>("exit_code")?
        .map(|c| c as i32);
    Ok(from_columns!(row => JobRecord {
        id, reason, submitted_at_s, started_at_s, finished_at_s;
        spec, state, restarts, attempts, exit_code, run
    }))
}

pub(super) fn audit_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    Ok(from_columns!(row => AuditEvent {
        seq, at_ms, actor, action, target, outcome, prev_hash, hash
    }))
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store records serialise")
}
