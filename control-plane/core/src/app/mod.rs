//! The application layer: the ONE place where keymanager's interfaces — the REST API (km-api)
//! and the console (km-web) — perform use cases (DESIGN §1 principles 4 and 5).
//!
//! Every method of [`App`] that acts for somebody takes the authenticated [`Caller`] and the
//! request's [`RequestId`], and does the same four things in the same order:
//!
//! 1. **Gate** — an interactive session that owes a second factor (re-verification due, or
//!    enrolment required by a mandatory policy) or a password change may reach only the few use
//!    cases that settle that debt ([`AppError::SecondFactorRequired`], ...).
//! 2. **Authorize** — `km_domain::authorize(caller.principal(), tenant, action)`, the only
//!    permission decision in keymanager. A refusal is recorded as an audit event (`denied`, with
//!    the reason code) and answered with [`AppError::Forbidden`] — or [`AppError::NotFound`] when
//!    the caller has no role on the tenant at all, so other tenants' resources do not leak. If the
//!    denial cannot be recorded the request is refused all the same.
//! 3. **Act, audited** — a state change runs inside the audit write-ahead pattern
//!    ([`AuditLog::begin`] → change → `succeeded`/`failed(reason)`): if the request cannot be
//!    recorded, nothing is changed ([`AppError::AuditUnavailable`], fail-closed). Reads are not
//!    audited.
//! 4. **Answer** — with the service's result or an [`AppError`] whose `code()` is stable.
//!
//! Anonymous use cases (setup, sign-in) take no caller; their state changes are audited the same
//! way with the actor `anonymous`.
//!
//! Secrets that cross this boundary (passwords, codes, tokens, TOTP seeds) are [`SecretText`].

mod account;
mod audit_query;
mod auth;
mod dashboard;
mod error;
mod key_attestation;
mod key_requests;
mod keys;
mod notifications;
mod page;
mod partitions;
mod settings;
mod sso;
mod tokens;
mod users;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

use km_domain::{Action, EventDraft, Grant, Outcome, TenantId, authorize};

pub use account::Me;
pub use audit_query::{AuditFilter, AuditVerifySummary};
pub use auth::{CompleteSetup, SetupStatus};
pub use dashboard::{DASHBOARD_HORIZON_SECS, Dashboard};
pub use error::AppError;
pub use keys::KeyQuery;
pub use page::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Page, PageRequest};
pub use sso::{LoginOptions, SsoSettingsView};
pub use users::UserUpdate;

use crate::audit::{AuditLog, SignatureVerifier};
use crate::identity::{Caller, Identity, SecondFactorState, SecretText};
use crate::keys::{KeyService, KeyServiceConfig};
use crate::notifications::{NoWebhookSender, NotificationConfig, NotificationService};
use crate::settings::{Settings, SettingsService};
use crate::sso::SsoService;
use crate::{Clock, Partitions, StateStore};

/// Actor recorded for requests without an authenticated principal.
pub const ANONYMOUS_ACTOR: &str = "anonymous";
/// `details` key naming the use case when the audit `action` is a coarser permission (e.g.
/// `manage_own_totp` / `begin_totp_enrolment`).
pub const OPERATION_DETAIL: &str = "operation";

/// A request's correlation id: returned to the client (`X-Request-Id`), written into every audit
/// event and log line of the request. Accepted from a client only if it is short and plain, so it
/// can never smuggle text into logs or the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Longest accepted client-supplied id.
    pub const MAX_LEN: usize = 64;

    /// A fresh random id (UUID v4, simple form).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// A client-supplied id, if it is 1–64 of `[A-Za-z0-9._-]`.
    pub fn from_client(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`App::new`] is built from. The binary (or a test) wires these from configuration.
#[derive(Clone)]
pub struct AppParts {
    /// Identity services (its `settings` service is the one the app uses).
    pub identity: Identity,
    /// The audit log on the management partition.
    pub audit: AuditLog,
    /// The state store (the same one identity uses).
    pub store: StateStore,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Checks checkpoint signatures when the audit log is verified (an aws-lc-rs adapter).
    pub verifier: Arc<dyn SignatureVerifier + Send + Sync>,
    /// The partition registry with its vaults and per-partition HSM clients.
    pub partitions: Partitions,
    /// Single sign-on: configuration, client secrets, pending logins, protocol adapter.
    pub sso: SsoService,
}

impl std::fmt::Debug for AppParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppParts").finish_non_exhaustive()
    }
}

/// keymanager's use cases, for every interface. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

#[derive(Clone)]
struct AppInner {
    identity: Identity,
    audit: AuditLog,
    settings: SettingsService,
    store: StateStore,
    clock: Arc<dyn Clock>,
    verifier: Arc<dyn SignatureVerifier + Send + Sync>,
    partitions: Partitions,
    sso: SsoService,
    keys: KeyService,
    notifications: NotificationService,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// What a session must have settled before a use case runs (see the module docs, step 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Nothing: reading one's own account, signing out, re-verifying.
    Open,
    /// Settling the debt itself: changing the password, enrolling TOTP. Allowed while enrolment
    /// is required or a password change is due, but not while re-verification is due.
    Onboarding,
    /// Ordinary work: everything settled.
    Full,
}

impl App {
    /// The app over its parts.
    pub fn new(parts: AppParts) -> Self {
        let settings = parts.identity.settings.clone();
        let keys = KeyService::new(
            parts.store.clone(),
            parts.partitions.clone(),
            parts.clock.clone(),
            parts.audit.clone(),
            KeyServiceConfig::default(),
        );
        // Webhooks are wired by `App::with_webhooks`; until then deliveries report "unavailable".
        let notifications = NotificationService::new(
            parts.store.clone(),
            parts.clock.clone(),
            parts.identity.sessions.ctx.ports().crypto.clone(),
            parts.audit.clone(),
            Arc::new(NoWebhookSender),
            NotificationConfig::default(),
        );
        Self {
            inner: Arc::new(AppInner {
                identity: parts.identity,
                audit: parts.audit,
                settings,
                store: parts.store,
                clock: parts.clock,
                verifier: parts.verifier,
                partitions: parts.partitions,
                sso: parts.sso,
                keys,
                notifications,
            }),
        }
    }

    /// The identity services (for the HTTP layers' cookie handling; use cases go through `App`).
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// The runtime settings service.
    pub fn settings_service(&self) -> &SettingsService {
        &self.inner.settings
    }

    /// The single-sign-on service (for the scheduler's purge of abandoned sign-ins; use cases go
    /// through `App`).
    pub fn sso(&self) -> &SsoService {
        &self.inner.sso
    }

    /// The state store.
    pub fn store(&self) -> &StateStore {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The runtime settings in force, without a permission check — for rendering decisions that
    /// every signed-in page needs (e.g. whether TOTP is mandatory). Use [`App::get_settings`] to
    /// show them as data.
    pub async fn current_settings(&self) -> Result<Settings, AppError> {
        Ok(self.inner.settings.get().await?)
    }

    /// Authenticates one request: a bearer API token wins over a session cookie. `Ok(None)` is
    /// anonymous; a credential that does not check out is an error, never anonymous.
    pub async fn authenticate(
        &self,
        bearer: Option<SecretText>,
        session_cookie: Option<SecretText>,
    ) -> Result<Option<Caller>, AppError> {
        Ok(self
            .inner
            .identity
            .authenticate(bearer, session_cookie)
            .await?)
    }

    /// Checks the CSRF token of a state-changing request. API-token callers need none (a
    /// browser never sends their credential by itself); session callers must present the
    /// session's token.
    pub fn check_csrf(&self, caller: &Caller, presented: Option<&str>) -> Result<(), AppError> {
        match caller {
            Caller::ApiToken(_) => Ok(()),
            Caller::Session { token, .. } => match presented {
                Some(presented)
                    if self
                        .inner
                        .identity
                        .sessions
                        .verify_csrf(token, presented.trim()) =>
                {
                    Ok(())
                }
                _ => Err(AppError::CsrfInvalid),
            },
        }
    }

    /// The CSRF token of a session caller (to embed in forms); `None` for API tokens.
    pub fn csrf_token(&self, caller: &Caller) -> Option<String> {
        match caller {
            Caller::Session { token, .. } => Some(self.inner.identity.sessions.csrf_token(token)),
            Caller::ApiToken(_) => None,
        }
    }

    /// Step 1: refuses sessions that owe a second factor or a password change.
    pub(crate) fn gate(&self, caller: &Caller, gate: Gate) -> Result<(), AppError> {
        let Some(session) = caller.session() else {
            return Ok(());
        };
        match gate {
            Gate::Open => Ok(()),
            Gate::Onboarding => match session.second_factor {
                SecondFactorState::ReverificationDue { .. } => Err(AppError::SecondFactorRequired),
                _ => Ok(()),
            },
            Gate::Full => match session.second_factor {
                SecondFactorState::ReverificationDue { .. } => Err(AppError::SecondFactorRequired),
                SecondFactorState::EnrolmentRequired => {
                    Err(AppError::SecondFactorEnrolmentRequired)
                }
                SecondFactorState::NotEnrolled | SecondFactorState::Verified { .. }
                    if session.must_change_password =>
                {
                    Err(AppError::PasswordChangeRequired)
                }
                SecondFactorState::NotEnrolled | SecondFactorState::Verified { .. } => Ok(()),
            },
        }
    }

    /// Steps 1 and 2: gate, then `authorize`; a denial is audited (fail-closed: refused even when
    /// it cannot be recorded).
    pub(crate) async fn permit(
        &self,
        caller: &Caller,
        rid: &RequestId,
        gate: Gate,
        tenant: Option<&TenantId>,
        action: Action,
    ) -> Result<Grant, AppError> {
        self.gate(caller, gate)?;
        match authorize(caller.principal(), tenant, action) {
            Ok(grant) => Ok(grant),
            Err(denied) => {
                let draft = EventDraft::for_denial(&denied, rid.as_str());
                if let Err(error) = self.inner.audit.record(draft).await {
                    tracing::error!(%error, request_id = %rid, action = %action,
                        "a denied request could not be audited; it is refused all the same");
                }
                tracing::info!(request_id = %rid, principal = %denied.principal(),
                    action = %action, reason = denied.reason().code(), "request denied");
                Err(AppError::from_denied(&denied))
            }
        }
    }

    /// Step 3 for an authorized change: the audit draft of `grant`, naming the operation and the
    /// target.
    pub(crate) fn draft(
        grant: &Grant,
        rid: &RequestId,
        operation: &str,
        target: Option<&str>,
    ) -> EventDraft {
        let draft = EventDraft::for_grant(grant, Outcome::Success, rid.as_str())
            .with_detail(OPERATION_DETAIL, operation);
        match target {
            Some(target) => draft.with_target(target),
            None => draft,
        }
    }

    /// Step 3: the write-ahead pattern around `act`. Nothing runs unless the request event is
    /// durable; the result event records success or the error's reason code.
    pub(crate) async fn audited<T, Fut>(&self, draft: EventDraft, act: Fut) -> Result<T, AppError>
    where
        Fut: Future<Output = Result<T, AppError>>,
    {
        let action = self.inner.audit.begin(draft).await?;
        let seq = action.request().seq;
        match act.await {
            Ok(value) => {
                if let Err(error) = action.succeeded().await {
                    tracing::error!(request_seq = seq, %error,
                        "the change was made but its result is not recorded yet (kept in the outbox)");
                }
                Ok(value)
            }
            Err(failure) => {
                if let Err(error) = action.failed(failure.reason()).await {
                    tracing::error!(request_seq = seq, %error,
                        "the change failed and its result is not recorded yet (kept in the outbox)");
                }
                Err(failure)
            }
        }
    }
}
