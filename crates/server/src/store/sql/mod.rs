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

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use super::{
    AuditEvent, Change, Changed, JobQuery, JobRecord, JobSpec, NewAuditEvent, Quota, Store,
    StoreError, Tenant, TokenRecord, User,
};

mod change;
mod rows;

use change::{append_in, apply, insert_job_in};
use rows::{audit_from_row, job_from_row, token_from_row, user_from_row};

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

impl SqlStore {
    /// One change on its own, without an audit entry (the engine's own updates, bootstrap).
    async fn apply_alone(&self, change: Change<'_>) -> Result<Changed, StoreError> {
        let mut connection = self.pool.acquire().await?;
        apply(&mut connection, change).await
    }
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
