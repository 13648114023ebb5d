//! Authentication and authorization: API tokens (random, shown once, stored as SHA-256) and the
//! rules of who may do what in which tenant.

use sha2::{Digest, Sha256};

use crate::store::{Role, TokenRecord, User};

/// Prefix of every token, so a leaked one is easy to recognise in logs and scanners.
pub const TOKEN_PREFIX: &str = "suanli_";

/// A new token: the secret to show once and the record to store.
pub fn new_token(user: &str, now_s: i64, expires_at_s: Option<i64>) -> (String, TokenRecord) {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the operating system provides random bytes");
    let mut id = [0u8; 6];
    getrandom::fill(&mut id).expect("the operating system provides random bytes");
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let record = TokenRecord {
        id: format!("tok-{}", hex::encode(id)),
        user: user.to_string(),
        hash: token_hash(&token),
        created_at_s: now_s,
        expires_at_s,
        revoked_at_s: None,
    };
    (token, record)
}

/// SHA-256 (hex) of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Why a token was refused.
pub fn token_problem(record: &TokenRecord, now_s: i64) -> Option<AuthError> {
    if record.revoked_at_s.is_some() {
        Some(AuthError::Revoked)
    } else if record.expires_at_s.is_some_and(|at| at <= now_s) {
        Some(AuthError::Expired)
    } else {
        None
    }
}

/// Why a request is not authenticated (the API answers 401 with this text).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error("token revoked")]
    Revoked,
    #[error("token expired")]
    Expired,
    /// The token's user was deleted.
    #[error("token of an unknown user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    /// `None` for a global admin.
    pub tenant: Option<String>,
}

impl From<&User> for Principal {
    fn from(user: &User) -> Self {
        Principal {
            user: user.name.clone(),
            role: user.role,
            tenant: user.tenant.clone(),
        }
    }
}

impl Principal {
    /// Whether the caller is the global admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// May read things in `tenant` (any role of that tenant, or admin).
    pub fn can_read_tenant(&self, tenant: &str) -> bool {
        self.is_admin() || self.tenant.as_deref() == Some(tenant)
    }

    /// May submit jobs to `tenant` (member or tenant-admin of it, or admin).
    pub fn can_submit_to(&self, tenant: &str) -> bool {
        self.is_admin()
            || (self.tenant.as_deref() == Some(tenant)
                && matches!(self.role, Role::TenantAdmin | Role::Member))
    }

    /// May cancel a job of `owner` in `tenant`: admins, the tenant's admins, and the owner if a
    /// member.
    pub fn can_cancel(&self, tenant: &str, owner: &str) -> bool {
        self.is_admin()
            || (self.tenant.as_deref() == Some(tenant)
                && (self.role == Role::TenantAdmin
                    || (self.role == Role::Member && self.user == owner)))
    }

    /// May manage users and tokens of `tenant` (admin or that tenant's admin).
    pub fn can_manage_tenant(&self, tenant: &str) -> bool {
        self.is_admin()
            || (self.role == Role::TenantAdmin && self.tenant.as_deref() == Some(tenant))
    }
}
