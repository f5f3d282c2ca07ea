//! The one error type of the identity services. Messages are safe to show to the person signing in
//! (no secret, no hash, no internal detail beyond what the variant says); `code()` is stable for
//! the API.

use km_domain::{GrantMismatch, InvalidId, Role, TenantScope};

use super::password_policy::PasswordRejected;
use super::ports::{CryptoError, PasswordHashError, TotpError};
use crate::{StoreError, Timestamp};

/// Why a session is no longer valid; lets the console say "signed out after 30 minutes of
/// inactivity" rather than a bare "please sign in".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// No such session (never existed, logged out, or purged).
    Unknown,
    /// No request for longer than the idle timeout.
    Idle,
    /// Older than the absolute lifetime.
    Expired,
    /// Revoked by a password change, a role change, a reset or "sign out everywhere".
    Revoked,
    /// The account was disabled or deleted.
    AccountGone,
}

impl SessionEnd {
    /// Stable code.
    pub const fn code(self) -> &'static str {
        match self {
            SessionEnd::Unknown => "session_unknown",
            SessionEnd::Idle => "session_idle",
            SessionEnd::Expired => "session_expired",
            SessionEnd::Revoked => "session_revoked",
            SessionEnd::AccountGone => "session_account_gone",
        }
    }
}

/// What can go wrong in identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Wrong username or password (deliberately not saying which).
    #[error("wrong username or password")]
    InvalidCredentials,
    /// Soft-locked after repeated failures.
    #[error(
        "too many failed sign-in attempts: the account is locked; try again in {} minute(s)",
        .retry_after_secs.div_ceil(60).max(1)
    )]
    Locked {
        /// When sign-in is possible again (Unix seconds).
        until: Timestamp,
        /// Seconds from now until then.
        retry_after_secs: u64,
    },
    /// The account is disabled by an administrator.
    #[error("this account is disabled; ask an administrator")]
    AccountDisabled,
    /// The password breaks a rule.
    #[error(transparent)]
    PasswordRejected(#[from] PasswordRejected),
    /// The username is not acceptable for a local user.
    #[error("invalid username: {0}")]
    InvalidUsername(String),
    /// Wrong, expired or already used setup token.
    #[error(
        "the setup token is wrong or was already used; use the token printed by the most recent start"
    )]
    SetupTokenInvalid,
    /// Setup was already completed; it can happen only once.
    #[error("this instance is already set up")]
    SetupAlreadyComplete,
    /// Another setup request is being processed.
    #[error("setup is in progress in another request; try again in a minute")]
    SetupInProgress,
    /// The TOTP or recovery code is wrong, expired or was already used.
    #[error("the code is wrong or was already used")]
    SecondFactorInvalid,
    /// The account has no second factor to check.
    #[error("no second factor is enrolled for this account")]
    SecondFactorNotEnrolled,
    /// An enrolment exists; remove it first.
    #[error("a second factor is already enrolled; remove it before enrolling again")]
    SecondFactorAlreadyEnrolled,
    /// No enrolment was started, or it timed out.
    #[error("no TOTP enrolment is waiting for confirmation; start again")]
    NoEnrolmentPending,
    /// The pending sign-in (between password and second factor) is unknown or timed out.
    #[error("the sign-in has expired; enter your password again")]
    LoginExpired,
    /// The session cannot be used.
    #[error("the session has ended ({}); please sign in again", .0.code())]
    SessionInvalid(SessionEnd),
    /// Unknown, malformed, revoked or expired API token.
    #[error("invalid or expired API token")]
    ApiTokenInvalid,
    /// An API token may not carry more than its creator holds.
    #[error("an API token cannot have role {requested} on {scope}: you have {}", .held.map_or("no role", Role::as_str))]
    ApiTokenRoleTooHigh {
        /// Scope asked for.
        scope: TenantScope,
        /// Role asked for.
        requested: Role,
        /// What the creator holds there.
        held: Option<Role>,
    },
    /// The requested token lifetime is zero or too long.
    #[error("an API token must expire within 1 second and {max_secs} seconds")]
    ApiTokenLifetime {
        /// The longest allowed.
        max_secs: u64,
    },
    /// A name (of an API token) is empty or too long.
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    /// No such user.
    #[error("no user named {0}")]
    UserNotFound(String),
    /// The username is taken.
    #[error("a user named {0} already exists")]
    UserExists(String),
    /// The change would leave no platform administrator (nobody could manage users any more).
    #[error("this would remove the last platform administrator")]
    LastPlatformAdmin,
    /// The change is not allowed on one's own account through this path.
    #[error("{0}")]
    NotOnSelf(&'static str),
    /// The account signs in through an identity provider; its password and second factor are
    /// managed there.
    #[error(
        "this account signs in through the identity provider {0}; its password and second factor are managed there"
    )]
    ManagedByProvider(String),
    /// A service was handed a grant for another action or tenant (a programming error).
    #[error(transparent)]
    Grant(#[from] GrantMismatch),
    /// An identifier failed validation.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password hasher failed.
    #[error(transparent)]
    Hasher(#[from] PasswordHashError),
    /// The TOTP adapter failed.
    #[error(transparent)]
    Totp(#[from] TotpError),
    /// Randomness failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A stored identity record contradicts itself.
    #[error("identity record {0} is inconsistent")]
    Inconsistent(String),
}

impl IdentityError {
    /// Stable machine-readable code for the API and audit.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::Locked { .. } => "account_locked",
            Self::AccountDisabled => "account_disabled",
            Self::PasswordRejected(_) => "password_rejected",
            Self::InvalidUsername(_) => "invalid_username",
            Self::SetupTokenInvalid => "setup_token_invalid",
            Self::SetupAlreadyComplete => "setup_already_complete",
            Self::SetupInProgress => "setup_in_progress",
            Self::SecondFactorInvalid => "second_factor_invalid",
            Self::SecondFactorNotEnrolled => "second_factor_not_enrolled",
            Self::SecondFactorAlreadyEnrolled => "second_factor_already_enrolled",
            Self::NoEnrolmentPending => "no_enrolment_pending",
            Self::LoginExpired => "login_expired",
            Self::SessionInvalid(end) => end.code(),
            Self::ApiTokenInvalid => "api_token_invalid",
            Self::ApiTokenRoleTooHigh { .. } => "api_token_role_too_high",
            Self::ApiTokenLifetime { .. } => "api_token_lifetime",
            Self::InvalidName(_) => "invalid_name",
            Self::UserNotFound(_) => "user_not_found",
            Self::UserExists(_) => "user_exists",
            Self::LastPlatformAdmin => "last_platform_admin",
            Self::NotOnSelf(_) => "not_on_self",
            Self::ManagedByProvider(_) => "managed_by_identity_provider",
            Self::Grant(_) => "grant_mismatch",
            Self::InvalidId(_) => "invalid_id",
            Self::Store(error) if error.is_transient() => "busy",
            Self::Store(_) => "store_error",
            Self::Hasher(PasswordHashError::Busy) => "busy",
            Self::Hasher(_) => "hasher_error",
            Self::Totp(_) => "totp_error",
            Self::Crypto(_) => "crypto_error",
            Self::Inconsistent(_) => "inconsistent_record",
        }
    }
}
