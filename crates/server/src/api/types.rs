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
