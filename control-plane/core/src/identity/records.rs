//! What identity keeps in the state store, one record per object:
//!
//! | record | sealed | holds |
//! |---|---|---|
//! | `kms.user.<username>` | no | bindings, session epoch, soft-lock counter, flags |
//! | `kms.credential.<username>` | **yes** | bcrypt hash, TOTP seed + last accepted step, pending enrolment, recovery-code hashes |
//! | `kms.session.<sha256(token)>` | no | user, epoch, times, second-factor time |
//! | `kms.login.<sha256(token)>` | no | a sign-in waiting for its second factor |
//! | `kms.apitoken.<id>` | no | owner, scope, role, expiry, SHA-256 of the secret |
//! | `kms.setup.main` | no | SHA-256 of the outstanding setup tokens, or who completed setup |
//!
//! The user record is plain so that validating a session (every request) needs no HSM unseal; the
//! secrets sit in the sealed credential record, read only when signing in. Tokens of every kind are
//! stored only as SHA-256 digests: they are 256-bit random, so a fast hash is enough.

use km_domain::{PrincipalId, Role, RoleBinding, TenantScope};
use serde::{Deserialize, Serialize};

use super::ports::{PasswordHash, TotpSecret};
use crate::Timestamp;

pub(crate) const USER: &str = "user";
pub(crate) const CREDENTIAL: &str = "credential";
pub(crate) const SESSION: &str = "session";
pub(crate) const LOGIN: &str = "login";
pub(crate) const API_TOKEN: &str = "apitoken";
pub(crate) const SETUP: &str = "setup";
pub(crate) const SETUP_ID: &str = "main";

/// The actor named in records written by setup.
pub(crate) const SETUP_ACTOR: &str = "system:setup";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    pub(crate) username: PrincipalId,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    pub(crate) bindings: Vec<RoleBinding>,
    /// Sessions remember the epoch they were created in; bumping it ends them all.
    pub(crate) session_epoch: u64,
    #[serde(default)]
    pub(crate) disabled: bool,
    pub(crate) created_at: Timestamp,
    pub(crate) created_by: String,
    pub(crate) password_changed_at: Timestamp,
    #[serde(default)]
    pub(crate) must_change_password: bool,
    /// Consecutive failures since the last success or lock.
    #[serde(default)]
    pub(crate) failed_attempts: u32,
    #[serde(default)]
    pub(crate) locked_until: Option<Timestamp>,
    #[serde(default)]
    pub(crate) last_login_at: Option<Timestamp>,
    /// Mirrors whether the credential holds a TOTP enrolment, so listings need no unseal.
    #[serde(default)]
    pub(crate) totp_enrolled: bool,
    /// Set for accounts that sign in through an identity provider (they have no password).
    #[serde(default)]
    pub(crate) sso: Option<super::external::SsoLink>,
}

impl UserRecord {
    pub(crate) fn locked_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|until| *until > now)
    }

    pub(crate) fn platform_admin(&self) -> bool {
        self.bindings
            .iter()
            .any(|binding| binding.scope == TenantScope::AllTenants && binding.role == Role::Admin)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TotpEnrolment {
    pub(crate) secret: TotpSecret,
    pub(crate) enrolled_at: Timestamp,
    /// The newest time step accepted; only a newer one is accepted next (RFC 6238 §5.2).
    pub(crate) last_step: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingTotp {
    pub(crate) secret: TotpSecret,
    pub(crate) started_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecoveryCodeRecord {
    /// Hex SHA-256 of the normalised code.
    pub(crate) sha256: String,
    #[serde(default)]
    pub(crate) used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CredentialRecord {
    pub(crate) password_hash: PasswordHash,
    #[serde(default)]
    pub(crate) totp: Option<TotpEnrolment>,
    #[serde(default)]
    pub(crate) pending_totp: Option<PendingTotp>,
    #[serde(default)]
    pub(crate) recovery_codes: Vec<RecoveryCodeRecord>,
}

/// How a session was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Password only (no second factor enrolled).
    Password,
    /// Password and a TOTP code.
    PasswordTotp,
    /// Password and a recovery code.
    PasswordRecoveryCode,
    /// Through an identity provider (which enforces its own second factor).
    Sso,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub(crate) user: PrincipalId,
    pub(crate) epoch: u64,
    pub(crate) method: AuthMethod,
    pub(crate) created_at: Timestamp,
    pub(crate) last_seen_at: Timestamp,
    pub(crate) absolute_expires_at: Timestamp,
    #[serde(default)]
    pub(crate) second_factor_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingLoginRecord {
    pub(crate) user: PrincipalId,
    pub(crate) epoch: u64,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ApiTokenRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) owner: PrincipalId,
    pub(crate) scope: TenantScope,
    pub(crate) role: Role,
    /// Hex SHA-256 of the secret part.
    pub(crate) secret_sha256: String,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IssuedSetupToken {
    /// Hex SHA-256 of the token.
    pub(crate) sha256: String,
    pub(crate) issued_at: Timestamp,
    pub(crate) issued_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum SetupRecord {
    /// Waiting for the first administrator; any of `tokens` may be used, once.
    Open { tokens: Vec<IssuedSetupToken> },
    /// A request presented a valid token and is creating the administrator.
    Claimed {
        tokens: Vec<IssuedSetupToken>,
        claim: String,
        username: PrincipalId,
        claimed_at: Timestamp,
    },
    /// Done; never again.
    Complete {
        admin: PrincipalId,
        completed_at: Timestamp,
    },
}
