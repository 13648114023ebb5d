//! The store: every durable record of the control plane (tenants, users, tokens, quotas, jobs,
//! audit events) behind one async trait, so the embedded SQLite file and a PostgreSQL server are
//! interchangeable. Each method is one transaction; a request's change and its audit entry go
//! through `Store::change_audited`, so both are stored or neither. The conformance suite in
//! `tests/store.rs` runs against every implementation.

pub mod migrate;
mod sql;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use sql::SqlStore;

/// What the store refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("cannot connect to the database at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A user's role. `Admin` is global; the others act inside one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Admin,
    TenantAdmin,
    Member,
    Viewer,
}

impl Role {
    /// The role's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::TenantAdmin => "tenant-admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a role name.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "tenant-admin" => Some(Role::TenantAdmin),
            "member" => Some(Role::Member),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    pub created_at_s: i64,
}

/// A user: a global admin (no tenant) or a member of one tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub tenant: Option<String>,
    pub role: Role,
    pub created_at_s: i64,
}

/// An API token as stored: only the SHA-256 of the secret is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    #[serde(skip_serializing)]
    pub hash: String,
    pub created_at_s: i64,
    pub expires_at_s: Option<i64>,
    pub revoked_at_s: Option<i64>,
}

/// The most accelerators of one type a tenant may hold (queued and running jobs together).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub tenant: String,
    pub accelerator: String,
    pub limit: u32,
}

/// What a job runs and how it is treated: the same fields in a submission (`api::Submit`) and in
/// the stored spec, flattened into both (the JSON keeps one level).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunSpec {
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Accelerator types the job may run on; empty means any.
    #[serde(default)]
    pub accelerators: Vec<String>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub checkpoint_dir: Option<String>,
    #[serde(default)]
    pub max_restarts: u32,
    /// Wall-clock seconds a run may take before it is stopped and the job fails (no restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_s: Option<u64>,
    /// Seconds the user expects a run to take; the scheduler plans on it (backfill, start
    /// predictions) but nothing is stopped at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_s: Option<u64>,
}

/// What a job asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    pub tenant: String,
    pub user: String,
    #[serde(flatten)]
    pub run: RunSpec,
    /// Accelerators in the gang.
    pub gpus: u32,
    /// Processes the gang runs as (each gets `gpus / processes` accelerators and a rank).
    #[serde(default = "one")]
    pub processes: u32,
    /// A training goal the planner turned into rates, so the scheduler knows the job's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
}

/// A training goal: train `model` on `tokens` tokens, by `deadline_s` within `budget_usd`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub model: String,
    pub tokens: f64,
    /// Tokens/s of the job's gang on each accelerator type it may use, from `suanli-perf`.
    #[serde(default)]
    pub tokens_per_s: BTreeMap<String, f64>,
    /// Hours to the goal on each type (`tokens / tokens_per_s`).
    #[serde(default)]
    pub estimated_hours: BTreeMap<String, f64>,
    /// Finish by this time (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_s: Option<i64>,
    /// Spend at most this many US dollars (at the indicative prices of `suanli-perf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// The framework `SUANLI_LAUNCH_ARGS` is written for (megatron, nemo, torchtitan, deepspeed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// The option the server chose when the job gave no gang size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<GoalOption>,
    /// The latest progress the job reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// One way to run a goal: a gang of one type, its layout, and when it would start and finish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GoalOption {
    pub accelerator: String,
    pub count: u32,
    /// The planner's layout; absent when none fits (see `lost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub plan: Option<suanli_perf::goal_plan::GangPlan>,
    /// Start predicted by running the live queue forward with the engine's scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_start_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_finish_s: Option<i64>,
    /// Plus or minus this many seconds on the finish: the run time times the error band.
    #[serde(default)]
    pub finish_band_s: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// `SUANLI_LAUNCH_ARGS` for the goal's framework.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_args: Option<String>,
    /// Why this option loses (quota, memory, deadline, budget, cost); none for the chosen one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
}

/// Progress a goal job reported (`suanli progress` or its progress file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Tokens trained so far, over every run.
    pub tokens: f64,
    pub at_s: i64,
    /// The first report of the current run, which the measured rate starts from.
    pub first_tokens: f64,
    pub first_at_s: i64,
    pub attempt: u32,
    /// Tokens/s measured between the run's first and latest reports (the plan's rate before).
    pub tokens_per_s: f64,
    /// `at_s` plus the remaining tokens at `tokens_per_s`.
    pub predicted_finish_s: i64,
}

fn one() -> u32 {
    1
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    /// The state's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a state name.
    pub fn parse(text: &str) -> Option<JobState> {
        match text {
            "queued" => Some(JobState::Queued),
            "running" => Some(JobState::Running),
            "succeeded" => Some(JobState::Succeeded),
            "failed" => Some(JobState::Failed),
            "cancelled" => Some(JobState::Cancelled),
            _ => None,
        }
    }

    /// Whether the job will never run again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// One run (attempt) of a job on the executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// 0 for the first run, then one more per restart or preemption.
    pub attempt: u32,
    pub pool: String,
    pub accelerator: String,
    pub node: String,
    /// Device indices on the node.
    pub devices: Vec<u32>,
    /// Directory with the run's log, pid and exit files.
    pub run_dir: String,
    pub started_at_s: i64,
    /// Set once a cancel has been asked for, so a restarted server finishes the cancel.
    #[serde(default)]
    pub cancel_requested: bool,
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: i64,
    pub spec: JobSpec,
    pub state: JobState,
    /// Why the job waits, or how it ended.
    pub reason: String,
    /// Restarts after failures so far.
    pub restarts: u32,
    /// Runs begun so far (restarts, preemptions and server recoveries included).
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub submitted_at_s: i64,
    pub started_at_s: Option<i64>,
    pub finished_at_s: Option<i64>,
    pub run: Option<RunRecord>,
}

/// An audit event before it is chained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEvent {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

/// An audit event in the chain: `hash` = SHA-256 over `prev_hash` and the event's fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A state change a request makes, for `Store::change_audited`; each variant is the change the
/// store method of the same name makes.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    CreateTenant(&'a Tenant),
    CreateUser(&'a User),
    InsertToken(&'a TokenRecord),
    RevokeToken {
        id: &'a str,
        now_s: i64,
    },
    SetQuota(&'a Quota),
    /// Removes a tenant and its quotas (the caller checks it has no users or active jobs).
    DeleteTenant(&'a str),
    /// Removes a user and revokes their tokens at `now_s`.
    DeleteUser {
        name: &'a str,
        now_s: i64,
    },
    UpdateJob(&'a JobRecord),
}

/// What a `Change` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    Done,
    /// Nothing to change (revoking an unknown or revoked token): no entry is appended either.
    Unchanged,
}

/// Which jobs `Store::query_jobs` returns: filtered and paged in SQL, in id order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobQuery {
    pub tenant: Option<String>,
    pub state: Option<JobState>,
    /// Only jobs with a larger id (the last id of the previous page).
    pub after_id: Option<i64>,
    /// Most jobs returned; 0 means none.
    pub limit: u32,
}

/// Durable state of the control plane. Every method is one transaction.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// The back end's name (`sqlite`, `postgres`).
    fn kind(&self) -> &'static str;

    /// Whether no user exists yet (first start).
    async fn is_empty(&self) -> Result<bool, StoreError>;

    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    async fn get_user(&self, name: &str) -> Result<Option<User>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Marks a token revoked; false if it was unknown or already revoked.
    async fn revoke_token(&self, id: &str, now_s: i64) -> Result<bool, StoreError>;

    /// Sets (or replaces) a tenant's quota for one accelerator type.
    async fn set_quota(&self, quota: &Quota) -> Result<(), StoreError>;
    async fn list_quotas(&self) -> Result<Vec<Quota>, StoreError>;

    /// Stores a new queued job and returns it with its id.
    async fn insert_job(&self, spec: &JobSpec, now_s: i64) -> Result<JobRecord, StoreError>;
    async fn get_job(&self, id: i64) -> Result<Option<JobRecord>, StoreError>;
    /// Jobs in id order, of one tenant or all.
    async fn list_jobs(&self, tenant: Option<&str>) -> Result<Vec<JobRecord>, StoreError>;
    /// One page of jobs, filtered by tenant and state in the database.
    async fn query_jobs(&self, query: &JobQuery) -> Result<Vec<JobRecord>, StoreError>;
    /// Jobs that are queued or running, in id order.
    async fn list_active_jobs(&self) -> Result<Vec<JobRecord>, StoreError>;
    /// Writes a job's mutable fields (state, reason, counters, times, run).
    async fn update_job(&self, job: &JobRecord) -> Result<(), StoreError>;
    /// Writes several jobs' mutable fields in one transaction, in order: all or none (the
    /// engine stores one scheduling pass's starts, or one report's ends, with one commit).
    async fn update_jobs(&self, jobs: &[JobRecord]) -> Result<(), StoreError>;

    /// Makes `change` and appends `audit` to the hash chain in one transaction, so a crash
    /// leaves both or neither. A failed change (a conflict, an unknown job) appends nothing; a
    /// change that changes nothing returns `Changed::Unchanged` and no entry. Appends from
    /// concurrent calls are serialised, so the chain never forks.
    async fn change_audited(
        &self,
        change: Change<'_>,
        audit: &NewAuditEvent,
    ) -> Result<(Changed, Option<AuditEvent>), StoreError>;

    /// Stores a new queued job and appends `audit`, its target followed by ` job ID` (the new
    /// id), in one transaction; returns the job and the entry.
    async fn insert_job_audited(
        &self,
        spec: &JobSpec,
        now_s: i64,
        audit: &NewAuditEvent,
    ) -> Result<(JobRecord, AuditEvent), StoreError>;

    /// Appends to the hash chain on its own (requests that change nothing, denied ones), reading
    /// the previous hash in the same transaction.
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<AuditEvent, StoreError>;
    /// The whole chain in sequence order.
    async fn list_audit(&self) -> Result<Vec<AuditEvent>, StoreError>;
}
