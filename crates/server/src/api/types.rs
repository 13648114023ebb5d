//! Request bodies and the response bodies built by the API (not stored as such), shared with
//! the CLI's typed client.

use serde::{Deserialize, Serialize};

pub use super::goals::{PlanBody, ProgressBody};
pub use super::jobs::Submit;
pub use crate::engine::goal::GoalRequest;
pub use crate::store::RunSpec;

/// A tenant's quota for one accelerator type and what its admitted jobs hold of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuotaUsage {
    pub tenant: String,
    pub accelerator: String,
    /// Most accelerators of this type the tenant may hold.
    pub limit: u32,
    /// Accelerators its queued-and-admitted and running jobs hold now.
    pub used: u32,
}

/// A node marked down or up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeChange {
    pub pool: String,
    /// `down` or `up`.
    pub state: String,
    /// Jobs stopped and queued again by marking the node down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeued_jobs: Option<Vec<i64>>,
}

/// A new token: the secret is in this answer only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub id: String,
    pub user: String,
    /// The bearer secret; only its SHA-256 is stored.
    pub token: String,
    pub expires_at_s: Option<i64>,
}

/// The answer to revoking a token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revoked {
    pub id: String,
    /// False when the token was already revoked.
    pub revoked: bool,
}

/// The caller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Whoami {
    pub user: String,
    #[schema(value_type = String, example = "member")]
    pub role: crate::store::Role,
    /// None for a global admin.
    pub tenant: Option<String>,
}

/// The audit chain checked: intact with `entries` and `head`, or broken at `first_bad_seq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditVerdict {
    pub ok: bool,
    pub entries: usize,
    /// The last entry's hash, when intact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl AuditVerdict {
    /// The verdict on `events` (`crate::audit::verify`).
    pub fn of(events: &[crate::store::AuditEvent]) -> Self {
        match crate::audit::verify(events) {
            Ok((entries, head)) => AuditVerdict {
                ok: true,
                entries,
                head: Some(head),
                first_bad_seq: None,
                problem: None,
                message: None,
            },
            Err(broken) => AuditVerdict {
                ok: false,
                entries: events.len(),
                head: None,
                first_bad_seq: Some(broken.seq),
                message: Some(broken.to_string()),
                problem: Some(broken.problem),
            },
        }
    }
}

/// A token as listed: never its hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub user: String,
    pub created_at_s: i64,
    pub expires_at_s: Option<i64>,
    pub revoked_at_s: Option<i64>,
}

impl From<crate::store::TokenRecord> for TokenView {
    fn from(token: crate::store::TokenRecord) -> Self {
        TokenView {
            id: token.id,
            user: token.user,
            created_at_s: token.created_at_s,
            expires_at_s: token.expires_at_s,
            revoked_at_s: token.revoked_at_s,
        }
    }
}

/// `POST /api/v1/tenants`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewTenant {
    pub name: String,
}

/// `POST /api/v1/users`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    pub name: String,
    /// None for an admin.
    pub tenant: Option<String>,
    /// `admin`, `tenant-admin`, `member` or `viewer`.
    #[schema(value_type = String)]
    pub role: crate::store::Role,
}

/// `POST /api/v1/tokens`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// Whose token (default: the caller's).
    pub user: Option<String>,
    /// Lifetime in seconds (default: never expires).
    pub expires_in_s: Option<i64>,
}

/// One node of a pool in `GET /api/v1/nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeRow {
    pub node: String,
    pub pool: String,
    pub accelerator: String,
    /// Accelerators on the node.
    pub total: u32,
    /// How many are free (the node's own numbering in `free_devices`).
    pub free: u32,
    pub free_devices: Vec<u32>,
    /// `up`/`down`, or Slurm's word for a Slurm node (`idle`, `mixed`, `drained`, `down*`).
    pub state: String,
    /// Why Slurm holds the node (Slurm nodes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `local`, or the Slurm cluster's label.
    pub executor: String,
}

impl NodeRow {
    /// The rows of a pool: one for a local pool, one per node of a Slurm cluster's.
    pub fn of_pool(p: &crate::engine::PoolSlot) -> Vec<NodeRow> {
        if p.nodes.is_empty() {
            return vec![NodeRow {
                node: p.node.clone(),
                pool: p.name.clone(),
                accelerator: p.accelerator.clone(),
                total: p.total,
                free: p.free.len() as u32,
                free_devices: p.free.iter().copied().collect(),
                state: if p.up { "up" } else { "down" }.into(),
                reason: None,
                executor: p.executor.clone(),
            }];
        }
        let per_node = p.per_node.max(1);
        p.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let range = i as u32 * per_node..(i as u32 + 1) * per_node;
                let free: Vec<u32> = p.free.range(range).map(|d| d % per_node).collect();
                NodeRow {
                    node: node.name.clone(),
                    pool: p.name.clone(),
                    accelerator: p.accelerator.clone(),
                    total: per_node,
                    free: free.len() as u32,
                    free_devices: free,
                    // Slurm's word; `down` when an admin took the whole pool out of service.
                    state: if p.up {
                        node.state.clone()
                    } else {
                        "down".into()
                    },
                    reason: Some(node.reason.clone()),
                    executor: p.executor.clone(),
                }
            })
            .collect()
    }
}

/// Every refusal's body: one line saying what was wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// The answer to deleting a tenant or a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deleted {
    /// The name deleted.
    pub deleted: String,
}
