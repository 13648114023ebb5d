//! The SQL store: one implementation over sqlx's `Any` driver for SQLite and PostgreSQL.
//!
//! The queries are plain SQL both engines accept (`$n` parameters, `ON CONFLICT`, `RETURNING`);
//! only the schema differs (`AUTOINCREMENT` against `BIGSERIAL`, in `migrations/`). Every integer
//! column is 64-bit so both engines decode to `i64`. Job specs and runs are JSON text: the server
//! reads them whole and never queries inside them.
//!
//! Audit appends are serialised so two transactions never read the same chain head: on
//! PostgreSQL each append first takes `LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE` (conflicts
//! with itself, not with readers; held to commit), which holds across connections and processes,
//! unlike a mutex in the server; the lock is taken after the change, last, so it is held only
//! for the append and cannot deadlock with the change's row locks. On SQLite the pool has a
//! single connection, so transactions already run one at a time, and the change's write has
//! taken SQLite's write lock before the head is read.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row};

use super::{
    AuditEvent, Change, Changed, JobQuery, JobRecord, JobSpec, JobState, NewAuditEvent, Quota,
    Role, Store, StoreError, Tenant, TokenRecord, User,
};

const JOB_COLUMNS: &str = "id, state, reason, restarts, attempts, exit_code, submitted_at_s, started_at_s, finished_at_s, spec, run";

/// A store on SQLite (`sqlite://path`) or PostgreSQL (`postgres://...`).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    kind: &'static str,
}

impl SqlStore {
    /// Opens the SQLite file `path`, creating it if needed, and migrates its schema.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connects to `url` (`sqlite://...` or `postgres://...`) and brings its schema to the newest
    /// version (see `migrate`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (kind, connections) = if url.starts_with("sqlite:") {
            // One connection: SQLite serialises writers anyway, and one connection never sees
            // `database is locked`.
            ("sqlite", 1)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            ("postgres", 8)
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!("unsupported database url `{url}`; use sqlite://PATH or postgres://...")
                    .into(),
            )));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|error| StoreError::Connect {
                url: without_password(url),
                reason: match error {
                    sqlx::Error::PoolTimedOut => "no connection within 10 s".to_string(),
                    other => other.to_string(),
                },
            })?;
        if kind == "sqlite" {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&pool)
                .await?;
        }
        super::migrate::migrator(kind).await?.run(&pool).await?;
        Ok(SqlStore { pool, kind })
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user@host/db`, for messages.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn conflict_or(error: sqlx::Error, what: String) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(error),
    }
}

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        name: row.try_get("name")?,
        tenant: row.try_get("tenant")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role `{role}`")))?,
        created_at_s: row.try_get("created_at_s")?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        hash: row.try_get("hash")?,
        created_at_s: row.try_get("created_at_s")?,
        expires_at_s: row.try_get("expires_at_s")?,
        revoked_at_s: row.try_get("revoked_at_s")?,
    })
}

fn job_from_row(row: &AnyRow) -> Result<JobRecord, StoreError> {
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

fn audit_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
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

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store records serialise")
}

impl SqlStore {
    /// One change on its own, without an audit entry (the engine's own updates, bootstrap).
    async fn apply_alone(&self, change: Change<'_>) -> Result<Changed, StoreError> {
        let mut connection = self.pool.acquire().await?;
        apply(&mut connection, change).await
    }
}

/// Makes one change on `connection` (inside the caller's transaction, if any).
async fn apply(connection: &mut AnyConnection, change: Change<'_>) -> Result<Changed, StoreError> {
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
        Change::InsertToken(token) => {
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
        }
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
        Change::DeleteTenant(name) => {
            sqlx::query("DELETE FROM quotas WHERE tenant = $1")
                .bind(name)
                .execute(&mut *connection)
                .await?;
            let result = sqlx::query("DELETE FROM tenants WHERE name = $1")
                .bind(name)
                .execute(&mut *connection)
                .await?;
            if result.rows_affected() != 1 {
                return Err(StoreError::NotFound(format!("tenant `{name}`")));
            }
        }
        Change::DeleteUser { name, now_s } => {
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
            if result.rows_affected() != 1 {
                return Err(StoreError::NotFound(format!("user `{name}`")));
            }
        }
        Change::UpdateJob(job) => {
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
            if result.rows_affected() != 1 {
                return Err(StoreError::NotFound(format!("job {}", job.id)));
            }
        }
    }
    Ok(Changed::Done)
}

/// Stores a new queued job inside the caller's transaction.
async fn insert_job_in(
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
async fn append_in(
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

#[async_trait::async_trait]
impl Store for SqlStore {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        let count: i64 = row.try_get("n")?;
        Ok(count == 0)
    }

    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.apply_alone(Change::CreateTenant(tenant))
            .await
            .map(drop)
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT name, created_at_s FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Tenant {
                    name: row.try_get("name")?,
                    created_at_s: row.try_get("created_at_s")?,
                })
            })
            .collect()
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.apply_alone(Change::CreateUser(user)).await.map(drop)
    }

    async fn get_user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT name, tenant, role, created_at_s FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT name, tenant, role, created_at_s FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.apply_alone(Change::InsertToken(token)).await.map(drop)
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY created_at_s, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: &str, now_s: i64) -> Result<bool, StoreError> {
        let changed = self.apply_alone(Change::RevokeToken { id, now_s }).await?;
        Ok(changed == Changed::Done)
    }

    async fn set_quota(&self, quota: &Quota) -> Result<(), StoreError> {
        self.apply_alone(Change::SetQuota(quota)).await.map(drop)
    }

    async fn list_quotas(&self) -> Result<Vec<Quota>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, accelerator, limit_count FROM quotas ORDER BY tenant, accelerator",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let limit: i64 = row.try_get("limit_count")?;
                Ok(Quota {
                    tenant: row.try_get("tenant")?,
                    accelerator: row.try_get("accelerator")?,
                    limit: limit as u32,
                })
            })
            .collect()
    }

    async fn insert_job(&self, spec: &JobSpec, now_s: i64) -> Result<JobRecord, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let job = insert_job_in(&mut transaction, spec, now_s).await?;
        transaction.commit().await?;
        Ok(job)
    }

    async fn get_job(&self, id: i64) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn list_jobs(&self, tenant: Option<&str>) -> Result<Vec<JobRecord>, StoreError> {
        let rows = match tenant {
            Some(tenant) => {
                sqlx::query(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = $1 ORDER BY id"
                ))
                .bind(tenant)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(job_from_row).collect()
    }

    async fn query_jobs(&self, query: &JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        // Conditions with numbered parameters, bound in the same order.
        let mut conditions = Vec::new();
        let mut number = 0;
        let mut next = || {
            number += 1;
            number
        };
        if query.tenant.is_some() {
            conditions.push(format!("tenant = ${}", next()));
        }
        if query.state.is_some() {
            conditions.push(format!("state = ${}", next()));
        }
        if query.after_id.is_some() {
            conditions.push(format!("id > ${}", next()));
        }
        let limit = next();
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs {filter} ORDER BY id LIMIT ${limit}");
        let mut statement = sqlx::query(&sql);
        if let Some(tenant) = &query.tenant {
            statement = statement.bind(tenant.as_str());
        }
        if let Some(state) = query.state {
            statement = statement.bind(state.as_str());
        }
        if let Some(after) = query.after_id {
            statement = statement.bind(after);
        }
        let rows = statement
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn list_active_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn update_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.apply_alone(Change::UpdateJob(job)).await.map(drop)
    }

    async fn update_jobs(&self, jobs: &[JobRecord]) -> Result<(), StoreError> {
        match jobs {
            [] => Ok(()),
            [job] => self.update_job(job).await,
            _ => {
                let mut transaction = self.pool.begin().await?;
                for job in jobs {
                    apply(&mut transaction, Change::UpdateJob(job)).await?;
                }
                transaction.commit().await?;
                Ok(())
            }
        }
    }

    async fn change_audited(
        &self,
        change: Change<'_>,
        audit: &NewAuditEvent,
    ) -> Result<(Changed, Option<AuditEvent>), StoreError> {
        let mut transaction = self.pool.begin().await?;
        let changed = apply(&mut transaction, change).await?;
        if changed == Changed::Unchanged {
            return Ok((changed, None));
        }
        let chained = append_in(&mut transaction, self.kind, audit).await?;
        transaction.commit().await?;
        Ok((changed, Some(chained)))
    }

    async fn insert_job_audited(
        &self,
        spec: &JobSpec,
        now_s: i64,
        audit: &NewAuditEvent,
    ) -> Result<(JobRecord, AuditEvent), StoreError> {
        let mut transaction = self.pool.begin().await?;
        let job = insert_job_in(&mut transaction, spec, now_s).await?;
        let audit = NewAuditEvent {
            target: format!("{} job {}", audit.target, job.id),
            ..audit.clone()
        };
        let chained = append_in(&mut transaction, self.kind, &audit).await?;
        transaction.commit().await?;
        Ok((job, chained))
    }

    async fn append_audit(&self, event: &NewAuditEvent) -> Result<AuditEvent, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let chained = append_in(&mut transaction, self.kind, event).await?;
        transaction.commit().await?;
        Ok(chained)
    }

    async fn list_audit(&self) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            super::without_password("postgres://suanli:secret@db:5432/suanli"),
            "postgres://suanli@db:5432/suanli"
        );
        assert_eq!(
            super::without_password("postgres://db/suanli"),
            "postgres://db/suanli"
        );
    }
}
