//! Response bodies built by the API (not stored as such), shared with the CLI's typed client.

use serde::{Deserialize, Serialize};

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
