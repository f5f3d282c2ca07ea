//! The one error type of the app layer. Every variant has a stable [`AppError::code`] that the
//! REST API returns in problem+json and the console maps to pages; [`AppError::reason`] refines it
//! (e.g. `conflict` / `user_exists`). Messages are safe to show: internal failures are logged where
//! they are converted and surface only as [`AppError::Internal`] with a generic text.

use km_domain::{Denied, DenyReason};

use crate::audit::AuditError;
use crate::identity::{IdentityError, PasswordHashError, SessionEnd};
use crate::settings::SettingsError;
use crate::{HsmError, StoreError};

/// Why a use case did not run (or did not complete).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// No credentials, or a session that has ended.
    #[error("{}", match .ended {
        None => "authentication required: sign in or send an API token".to_owned(),
        Some(end) => format!("the session has ended ({}); sign in again", end.code()),
    })]
    Unauthenticated {
        /// Why the session is gone, when a session cookie was presented.
        ended: Option<SessionEnd>,
    },
    /// The bearer API token is unknown, malformed, revoked or expired.
    #[error("invalid or expired API token")]
    InvalidToken,
    /// Wrong username or password.
    #[error("wrong username or password")]
    InvalidCredentials,
    /// A mutating request with a session cookie lacks the right CSRF token.
    #[error("missing or wrong CSRF token: send the session's token in the X-CSRF-Token header")]
    CsrfInvalid,
    /// The session must prove the second factor again before anything else.
    #[error("confirm your second factor first")]
    SecondFactorRequired,
    /// Second factors are mandatory and this user has none yet: enrol first.
    #[error("a second factor is required for every account: enrol TOTP first")]
    SecondFactorEnrolmentRequired,
    /// The password was set by an administrator and must be changed first.
    #[error("choose a new password first")]
    PasswordChangeRequired,
    /// The TOTP or recovery code is wrong, expired or already used.
    #[error("the code is wrong or was already used")]
    SecondFactorInvalid,
    /// The pending sign-in (between password and second factor) is unknown or expired.
    #[error("the sign-in has expired; enter your password again")]
    LoginExpired,
    /// Soft-locked after repeated failed sign-ins.
    #[error(
        "too many failed sign-in attempts: the account is locked; try again in {} minute(s)",
        .retry_after_secs.div_ceil(60).max(1)
    )]
    Locked {
        /// Seconds until sign-in is possible again.
        retry_after_secs: u64,
    },
    /// The account is disabled.
    #[error("this account is disabled; ask an administrator")]
    AccountDisabled,
    /// Authenticated but not allowed.
    #[error("{message}")]
    Forbidden {
        /// Stable sub-code, e.g. `role_too_low`, `platform_operator_only`.
        reason: &'static str,
        /// Safe explanation.
        message: String,
    },
    /// No such resource — or one the caller may not know exists (another tenant's).
    #[error("no such {what}")]
    NotFound {
        /// What was looked for (`user`, `api_token`, `resource`).
        what: &'static str,
    },
    /// The request contradicts the current state.
    #[error("{message}")]
    Conflict {
        /// Stable sub-code, e.g. `user_exists`, `last_platform_admin`.
        reason: &'static str,
        /// Safe explanation.
        message: String,
    },
    /// The input is malformed or breaks a rule.
    #[error("{message}")]
    InvalidInput {
        /// Stable sub-code, e.g. `password_rejected`, `invalid_username`, `bad_json`.
        reason: &'static str,
        /// Safe explanation (may name the field, never echoes secrets).
        message: String,
    },
    /// Wrong or already used setup token.
    #[error(
        "the setup token is wrong or was already used; use the token printed by the most recent start"
    )]
    SetupTokenInvalid,
    /// Setup is done; it happens only once.
    #[error("this instance is already set up")]
    SetupAlreadyComplete,
    /// Temporarily overloaded (locks busy, too many password checks); try again shortly.
    #[error("the service is busy; try again shortly")]
    Busy,
    /// The audit log cannot record events, so nothing is changed (fail-closed).
    #[error("the audit log is unavailable, so the request is refused; try again later")]
    AuditUnavailable,
    /// The HSM (management partition) does not answer.
    #[error("the HSM is unavailable; try again later")]
    HsmUnavailable,
    /// A tenant partition's TSB refused keymanager's credentials or could not be reached; the
    /// message carries the TSB's own error and what to check.
    #[error("{message}")]
    PartitionConnection {
        /// Explanation with the TSB's error.
        message: String,
    },
    /// A single sign-on was refused: the provider's answer failed, or the person's groups do not
    /// grant access. The message says what to do.
    #[error("{message}")]
    SsoRefused {
        /// Stable sub-code: `not_in_allowed_group`, `no_partition_mapping`, `groups_overage`,
        /// `invalid_response`, `provider_denied`, `provider_unavailable`.
        reason: &'static str,
        /// Safe explanation.
        message: String,
    },
    /// A credential vault failed (unreachable, or it refused keymanager's own credentials).
    #[error("{message}")]
    VaultUnavailable {
        /// The vault's error, naming the backend and what to check.
        message: String,
    },
    /// Anything else; the cause is in the server log under the request id.
    #[error("internal error; the server log has the details under this request id")]
    Internal,
}

impl AppError {
    /// Stable machine-readable code (the API's problem `code`).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::InvalidToken => "invalid_token",
            Self::InvalidCredentials => "invalid_credentials",
            Self::CsrfInvalid => "csrf_invalid",
            Self::SecondFactorRequired => "second_factor_required",
            Self::SecondFactorEnrolmentRequired => "second_factor_enrolment_required",
            Self::PasswordChangeRequired => "password_change_required",
            Self::SecondFactorInvalid => "second_factor_invalid",
            Self::LoginExpired => "login_expired",
            Self::Locked { .. } => "locked",
            Self::AccountDisabled => "account_disabled",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::InvalidInput { .. } => "invalid_input",
            Self::SetupTokenInvalid => "setup_token_invalid",
            Self::SetupAlreadyComplete => "setup_already_complete",
            Self::Busy => "busy",
            Self::AuditUnavailable => "audit_unavailable",
            Self::HsmUnavailable => "hsm_unavailable",
            Self::PartitionConnection { .. } => "partition_connection_failed",
            Self::VaultUnavailable { .. } => "vault_unavailable",
            Self::SsoRefused { .. } => "sso_refused",
            Self::Internal => "internal",
        }
    }

    /// The most specific stable code: the sub-code of `forbidden`, `conflict` and
    /// `invalid_input`, the session-end code of `unauthenticated`, otherwise [`AppError::code`].
    /// Recorded in audit result events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unauthenticated { ended: Some(end) } => end.code(),
            Self::Forbidden { reason, .. }
            | Self::Conflict { reason, .. }
            | Self::InvalidInput { reason, .. }
            | Self::SsoRefused { reason, .. } => reason,
            other => other.code(),
        }
    }

    /// Seconds to wait before retrying, when that is known.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Locked { retry_after_secs } => Some(*retry_after_secs),
            Self::Busy | Self::AuditUnavailable | Self::HsmUnavailable => Some(1),
            Self::VaultUnavailable { .. } => Some(5),
            _ => None,
        }
    }

    /// Invalid input with a sub-code and a message.
    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            reason,
            message: message.into(),
        }
    }

    /// What a refusal by `authorize` looks like to the caller: "not found" when the caller has
    /// no role on the tenant at all (so tenants and their resources do not leak), "forbidden"
    /// otherwise.
    pub fn from_denied(denied: &Denied) -> Self {
        match denied.reason() {
            DenyReason::NoBindingForTenant => Self::NotFound { what: "resource" },
            reason => Self::Forbidden {
                reason: reason.code(),
                message: format!("not allowed: {reason}"),
            },
        }
    }

    /// Logs an internal failure (with its detail) and returns the generic error.
    pub(crate) fn internal(context: &str, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(%detail, "{context}");
        Self::Internal
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::NotFound { .. } => Self::NotFound { what: "resource" },
            StoreError::AlreadyExists { .. } => Self::conflict("exists", "it exists already"),
            StoreError::Conflict { .. } => Self::conflict(
                "concurrent_change",
                "it was changed by another request meanwhile; reload and try again",
            ),
            StoreError::LockBusy { .. }
            | StoreError::LockLost { .. }
            | StoreError::NotDurable { .. } => {
                tracing::warn!(%error, "state store busy");
                Self::Busy
            }
            StoreError::Hsm(
                HsmError::Unavailable(_) | HsmError::Unauthorized(_) | HsmError::Internal(_),
            ) => {
                tracing::error!(%error, "management partition unavailable");
                Self::HsmUnavailable
            }
            StoreError::Hsm(_)
            | StoreError::InvalidName { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Encode { .. } => Self::internal("state store failure", &error),
        }
    }
}

impl From<AuditError> for AppError {
    fn from(error: AuditError) -> Self {
        tracing::error!(%error, "audit log unavailable; refusing");
        Self::AuditUnavailable
    }
}

impl From<SettingsError> for AppError {
    fn from(error: SettingsError) -> Self {
        match error {
            SettingsError::Invalid(invalid) => {
                Self::invalid("invalid_setting", invalid.to_string())
            }
            SettingsError::Store(store) => store.into(),
            SettingsError::Grant(mismatch) => Self::internal("grant mismatch", &mismatch),
        }
    }
}

impl From<IdentityError> for AppError {
    fn from(error: IdentityError) -> Self {
        use IdentityError as E;
        match error {
            E::InvalidCredentials => Self::InvalidCredentials,
            E::Locked {
                retry_after_secs, ..
            } => Self::Locked { retry_after_secs },
            E::AccountDisabled => Self::AccountDisabled,
            E::PasswordRejected(rejected) => {
                Self::invalid("password_rejected", rejected.to_string())
            }
            E::InvalidUsername(message) => {
                Self::invalid("invalid_username", format!("invalid username: {message}"))
            }
            E::SetupTokenInvalid => Self::SetupTokenInvalid,
            E::SetupAlreadyComplete => Self::SetupAlreadyComplete,
            error @ E::SetupInProgress => Self::conflict("setup_in_progress", error.to_string()),
            E::SecondFactorInvalid => Self::SecondFactorInvalid,
            error @ (E::SecondFactorNotEnrolled
            | E::SecondFactorAlreadyEnrolled
            | E::NoEnrolmentPending
            | E::UserExists(_)
            | E::LastPlatformAdmin) => {
                let reason = error.code();
                Self::conflict(reason, error.to_string())
            }
            E::LoginExpired => Self::LoginExpired,
            E::SessionInvalid(end) => Self::Unauthenticated { ended: Some(end) },
            E::ApiTokenInvalid => Self::InvalidToken,
            error @ E::ManagedByProvider(_) => {
                Self::conflict("managed_by_identity_provider", error.to_string())
            }
            error @ (E::ApiTokenRoleTooHigh { .. } | E::NotOnSelf(_)) => Self::Forbidden {
                reason: error.code(),
                message: error.to_string(),
            },
            error @ (E::ApiTokenLifetime { .. } | E::InvalidName(_) | E::InvalidId(_)) => {
                let reason = error.code();
                Self::invalid(reason, error.to_string())
            }
            E::UserNotFound(_) => Self::NotFound { what: "user" },
            E::Store(store) => store.into(),
            E::Hasher(PasswordHashError::Busy) => Self::Busy,
            error @ (E::Grant(_)
            | E::Hasher(_)
            | E::Totp(_)
            | E::Crypto(_)
            | E::Inconsistent(_)) => Self::internal("identity failure", &error),
        }
    }
}

impl From<crate::PartitionError> for AppError {
    fn from(error: crate::PartitionError) -> Self {
        use crate::PartitionError as E;
        match error {
            E::NotFound(_) => Self::NotFound { what: "partition" },
            error @ E::Exists(_) => Self::conflict("partition_exists", error.to_string()),
            error @ E::Suspended(_) => Self::conflict("partition_suspended", error.to_string()),
            error @ E::CredentialsMissing(_) => {
                Self::conflict("credentials_missing", error.to_string())
            }
            error @ E::UnknownVault(..) => Self::invalid("unknown_vault", error.to_string()),
            E::InvalidCredentials(message) => Self::invalid("invalid_credentials", message),
            E::Connection(hsm) => Self::PartitionConnection {
                message: crate::partitions::explain_connection_failure(&hsm),
            },
            E::Vault(vault) => {
                tracing::error!(error = %vault, "credential vault failed");
                Self::VaultUnavailable {
                    message: vault.to_string(),
                }
            }
            E::Store(store) => store.into(),
        }
    }
}
