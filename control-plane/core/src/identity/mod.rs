//! Identity: local users, first-run setup, sign-in with password and TOTP, sessions and API tokens
//! (DESIGN §4.4). Everything is kept in the [`StateStore`] (see `records` for the layout), so any
//! replica can serve any request without sticky routing.
//!
//! Services ([`Identity`] bundles them):
//! - [`SetupService`]: the one-time setup token printed at start, and creating the first
//!   administrator exactly once;
//! - [`LoginService`]: password → session, or password → pending sign-in → second factor →
//!   session; soft-lock after repeated failures;
//! - [`TotpService`]: TOTP enrolment (QR code and manual seed), recovery codes;
//! - [`SessionService`]: validating, touching and revoking sessions, CSRF tokens, 2FA
//!   re-verification;
//! - [`UserService`]: user administration (every mutating call takes a [`km_domain::Grant`]);
//! - [`ApiTokenService`]: `km_…` tokens for automation.
//!
//! Slow or secret-handling primitives come through ports ([`PasswordHasher`], [`TotpProvider`],
//! [`IdentityCrypto`]) that km-auth implements; time comes from the [`Clock`].

mod api_tokens;
mod caller;
mod config;
mod error;
mod external;
mod login;
mod password_policy;
mod ports;
mod records;
mod secret;
mod sessions;
mod setup;
mod totp;
mod users;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use km_domain::{InvalidId, PrincipalId, RoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use api_tokens::{
    ApiTokenInfo, ApiTokenService, AuthenticatedToken, CreatedApiToken, NewApiToken,
};
pub use caller::Caller;
pub use config::{IdentityConfig, SecondFactorPolicy};
pub use error::{IdentityError, SessionEnd};
pub use external::{ExternalSignIn, SsoLink};
pub use login::{LoginOutcome, LoginService, PendingLogin, SecondFactor};
pub use password_policy::{PasswordPolicy, PasswordRejected};
pub use ports::{
    CryptoError, IdentityCrypto, PasswordHash, PasswordHashError, PasswordHasher,
    TotpEnrolmentArtifacts, TotpError, TotpProvider, TotpSecret,
};
pub use records::AuthMethod;
pub use secret::SecretText;
pub use sessions::{NewSession, SecondFactorState, SessionService, ValidSession};
pub use setup::{SetupService, SetupStart};
pub use totp::{TotpService, TotpSetup};
pub use users::{NewUser, UserAccount, UserService};

use crate::settings::{EffectiveSettings, SettingsError, SettingsService};
use crate::{Clock, Sealing, StateStore, StoreError, Timestamp, Versioned};
use records::{CREDENTIAL, CredentialRecord, USER, UserRecord};

/// The adapters identity runs on.
#[derive(Clone)]
pub struct IdentityPorts {
    /// bcrypt (km-auth `BcryptHasher`).
    pub hasher: Arc<dyn PasswordHasher>,
    /// TOTP (km-auth `TotpRsProvider`).
    pub totp: Arc<dyn TotpProvider>,
    /// Randomness and hashing (km-auth `AwsLcCrypto`).
    pub crypto: Arc<dyn IdentityCrypto>,
}

impl std::fmt::Debug for IdentityPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityPorts").finish_non_exhaustive()
    }
}

/// All identity services over one store; cheap to clone. Build one per process (or several, they
/// coordinate through the store exactly like replicas do).
#[derive(Debug, Clone)]
pub struct Identity {
    /// First-run setup.
    pub setup: SetupService,
    /// Sign-in.
    pub login: LoginService,
    /// TOTP enrolment and recovery codes.
    pub totp: TotpService,
    /// Sessions.
    pub sessions: SessionService,
    /// User administration.
    pub users: UserService,
    /// API tokens.
    pub api_tokens: ApiTokenService,
    /// Runtime settings (second-factor policy, timeouts, soft-lock) that identity applies; the
    /// static [`IdentityConfig`] supplies them until an operator saves some.
    pub settings: SettingsService,
}

impl Identity {
    /// The services over `store`, using `clock` for every time decision.
    pub fn new(
        store: StateStore,
        clock: Arc<dyn Clock>,
        ports: IdentityPorts,
        config: IdentityConfig,
    ) -> Self {
        let settings = SettingsService::new(store.clone(), config.clone());
        let ctx = Ctx(Arc::new(CtxInner {
            store,
            clock,
            ports,
            config,
            settings: settings.clone(),
            dummy_hash: tokio::sync::OnceCell::new(),
        }));
        Self {
            setup: SetupService { ctx: ctx.clone() },
            login: LoginService { ctx: ctx.clone() },
            totp: TotpService { ctx: ctx.clone() },
            sessions: SessionService { ctx: ctx.clone() },
            users: UserService { ctx: ctx.clone() },
            api_tokens: ApiTokenService { ctx },
            settings,
        }
    }

    /// Authenticates one request from what the HTTP layer found: an `Authorization: Bearer`
    /// credential (an API token) wins over a session cookie. `Ok(None)` means anonymous; an
    /// invalid credential is an error (the caller answers 401), never silently anonymous.
    pub async fn authenticate(
        &self,
        bearer: Option<SecretText>,
        session_cookie: Option<SecretText>,
    ) -> Result<Option<Caller>, IdentityError> {
        if let Some(token) = bearer {
            let token = self.api_tokens.verify(&token).await?;
            return Ok(Some(Caller::ApiToken(Box::new(token))));
        }
        if let Some(token) = session_cookie {
            let session = self.sessions.validate(&token).await?;
            return Ok(Some(Caller::Session {
                session: Box::new(session),
                token,
            }));
        }
        Ok(None)
    }
}

/// Shared state and helpers of the services.
#[derive(Clone)]
pub(crate) struct Ctx(Arc<CtxInner>);

pub(crate) struct CtxInner {
    store: StateStore,
    clock: Arc<dyn Clock>,
    ports: IdentityPorts,
    config: IdentityConfig,
    settings: SettingsService,
    /// A hash checked against when the user does not exist, so that "no such user" costs the
    /// same time as "wrong password".
    dummy_hash: tokio::sync::OnceCell<PasswordHash>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

/// Longest local username.
const MAX_USERNAME_CHARS: usize = 64;

impl Ctx {
    pub(crate) fn store(&self) -> &StateStore {
        &self.0.store
    }

    pub(crate) fn config(&self) -> &IdentityConfig {
        &self.0.config
    }

    /// The runtime settings in force (second factor, timeouts, soft-lock), read through the
    /// store's cache on every use so a change applies on every replica within the cache TTL.
    pub(crate) async fn effective(&self) -> Result<EffectiveSettings, IdentityError> {
        match self.0.settings.effective().await {
            Ok(effective) => Ok(effective),
            Err(SettingsError::Store(error)) => Err(IdentityError::Store(error)),
            Err(other) => Err(IdentityError::Inconsistent(format!(
                "runtime settings: {other}"
            ))),
        }
    }

    pub(crate) fn ports(&self) -> &IdentityPorts {
        &self.0.ports
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.0.clock.now()
    }

    pub(crate) fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_chars: self.0.config.password_min_chars,
            max_chars: self.0.config.password_max_chars,
        }
    }

    /// `bytes` random bytes as unpadded base64url (cookie- and URL-safe).
    pub(crate) fn random_token(&self, bytes: usize) -> Result<SecretText, IdentityError> {
        use base64::Engine as _;
        let mut raw = zeroize::Zeroizing::new(vec![0u8; bytes]);
        self.0.ports.crypto.fill_random(&mut raw)?;
        Ok(SecretText::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_slice()),
        ))
    }

    pub(crate) fn random_bytes(
        &self,
        bytes: usize,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, IdentityError> {
        let mut raw = zeroize::Zeroizing::new(vec![0u8; bytes]);
        self.0.ports.crypto.fill_random(&mut raw)?;
        Ok(raw)
    }

    pub(crate) fn sha256_hex(&self, data: &[u8]) -> String {
        hex(&self.0.ports.crypto.sha256(data))
    }

    pub(crate) fn ct_eq(&self, a: &str, b: &str) -> bool {
        self.0
            .ports
            .crypto
            .constant_time_eq(a.as_bytes(), b.as_bytes())
    }

    /// Checks a password against nothing, taking as long as a real check (see `dummy_hash`).
    pub(crate) async fn burn_password_check(&self, password: &SecretText) {
        let hasher = self.0.ports.hasher.clone();
        let dummy = self
            .0
            .dummy_hash
            .get_or_try_init(|| async move {
                hasher
                    .hash(&SecretText::from("keymanager dummy password"))
                    .await
            })
            .await;
        if let Ok(dummy) = dummy {
            let _ = self.0.ports.hasher.verify(password, dummy).await;
        }
    }

    pub(crate) async fn get_user(
        &self,
        username: &PrincipalId,
    ) -> Result<Option<Versioned<UserRecord>>, IdentityError> {
        self.get_plain(USER, username.as_str()).await
    }

    pub(crate) async fn require_user(
        &self,
        username: &PrincipalId,
    ) -> Result<Versioned<UserRecord>, IdentityError> {
        self.get_user(username)
            .await?
            .ok_or_else(|| IdentityError::UserNotFound(username.to_string()))
    }

    /// Read-modify-write of an existing user record under its lock.
    pub(crate) async fn modify_user<F>(
        &self,
        username: &PrincipalId,
        actor: &str,
        mut change: F,
    ) -> Result<UserRecord, IdentityError>
    where
        F: FnMut(&mut UserRecord) -> Result<(), IdentityError>,
    {
        let written = self
            .0
            .store
            .modify(
                USER,
                username.as_str(),
                Sealing::Plain,
                actor,
                |current: Option<Versioned<UserRecord>>| {
                    let mut record = current
                        .ok_or_else(|| IdentityError::UserNotFound(username.to_string()))?
                        .value;
                    change(&mut record)?;
                    Ok::<_, IdentityError>(record)
                },
            )
            .await?;
        Ok(written.value)
    }

    pub(crate) async fn get_credential(
        &self,
        username: &PrincipalId,
    ) -> Result<Option<CredentialRecord>, IdentityError> {
        Ok(self
            .0
            .store
            .get::<CredentialRecord>(CREDENTIAL, username.as_str())
            .await?
            .map(|versioned| versioned.value))
    }

    /// Read-modify-write of the sealed credential record under its lock; `change` sees `None`
    /// when there is none yet.
    pub(crate) async fn modify_credential<F>(
        &self,
        username: &PrincipalId,
        actor: &str,
        change: F,
    ) -> Result<CredentialRecord, IdentityError>
    where
        F: FnMut(Option<Versioned<CredentialRecord>>) -> Result<CredentialRecord, IdentityError>,
    {
        if let Some(user) = self.get_user(username).await?
            && let Some(link) = &user.value.sso
        {
            return Err(IdentityError::ManagedByProvider(link.provider.clone()));
        }
        Ok(self
            .0
            .store
            .modify(
                CREDENTIAL,
                username.as_str(),
                Sealing::Sealed,
                actor,
                change,
            )
            .await?
            .value)
    }

    /// Counts a failed sign-in step and soft-locks the account at the threshold. Returns the error
    /// to show: `wrong` as given, or [`IdentityError::Locked`] when this failure locked it.
    pub(crate) async fn record_failure(
        &self,
        username: &PrincipalId,
        wrong: IdentityError,
    ) -> IdentityError {
        let now = self.now();
        let effective = match self.effective().await {
            Ok(effective) => effective,
            Err(error) => {
                tracing::warn!(%error, "runtime settings unreadable; soft-lock uses the static configuration");
                EffectiveSettings::from_config(&self.0.config)
            }
        };
        let threshold = effective.lockout_threshold.max(1);
        let lockout = effective.lockout_secs;
        let mut locked = None;
        let result = self
            .modify_user(username, username.as_str(), |user| {
                locked = None;
                if let Some(until) = user.locked_at(now) {
                    // Already locked by a concurrent failure: report it, count nothing more.
                    locked = Some(until);
                    return Ok(());
                }
                user.failed_attempts = user.failed_attempts.saturating_add(1);
                if user.failed_attempts >= threshold {
                    let until = now.saturating_add(lockout);
                    user.locked_until = Some(until);
                    user.failed_attempts = 0;
                    locked = Some(until);
                }
                Ok(())
            })
            .await;
        match (result, locked) {
            (Ok(_), Some(until)) => {
                tracing::warn!(user = %username, until, "account soft-locked after repeated sign-in failures");
                IdentityError::Locked {
                    until,
                    retry_after_secs: until.saturating_sub(now),
                }
            }
            (Ok(_), None) => wrong,
            (Err(error), _) => {
                tracing::warn!(user = %username, %error, "could not record a failed sign-in");
                wrong
            }
        }
    }

    /// Ends every session and pending sign-in of `username` (they carry the old epoch).
    pub(crate) fn bump_epoch(user: &mut UserRecord) {
        user.session_epoch = user.session_epoch.saturating_add(1);
    }

    /// Number of platform administrators (bindings `*`/admin) among enabled users.
    pub(crate) async fn platform_admins(&self) -> Result<Vec<PrincipalId>, IdentityError> {
        let mut admins = Vec::new();
        for id in self.0.store.list_ids(USER).await? {
            if let Some(user) = self.0.store.get::<UserRecord>(USER, &id).await?
                && user.value.platform_admin()
                && !user.value.disabled
            {
                admins.push(user.value.username);
            }
        }
        Ok(admins)
    }

    /// Reads a plain record through the store's decoded cache (session checks read the session
    /// and user records on every request).
    pub(crate) async fn get_plain<T: DeserializeOwned + Clone + Send + Sync + 'static>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<Versioned<T>>, IdentityError> {
        Ok(self
            .0
            .store
            .get_shared(kind, id)
            .await?
            .map(|record| (*record).clone()))
    }

    pub(crate) async fn delete_quietly(&self, kind: &str, id: &str, revision: u64) {
        match self.0.store.delete(kind, id, revision).await {
            Ok(()) | Err(StoreError::NotFound { .. }) | Err(StoreError::Conflict { .. }) => {}
            Err(error) => tracing::warn!(kind, %error, "could not delete an identity record"),
        }
    }

    pub(crate) async fn create_plain<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: T,
        actor: &str,
    ) -> Result<(), IdentityError> {
        self.0
            .store
            .create(kind, id, value, actor, Sealing::Plain)
            .await?;
        Ok(())
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A local username: case-insensitive (stored lower-case), 1–64 of `[a-z0-9._@-]` starting with a
/// letter or digit, so it is also a valid record id and can never collide with an SSO subject
/// (`github:…`) or an API-token principal (`token:…`).
pub fn parse_username(raw: &str) -> Result<PrincipalId, IdentityError> {
    let name = raw.trim().to_lowercase();
    let count = name.chars().count();
    if count == 0 || count > MAX_USERNAME_CHARS {
        return Err(IdentityError::InvalidUsername(format!(
            "a username has 1 to {MAX_USERNAME_CHARS} characters"
        )));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(IdentityError::InvalidUsername(
            "a username starts with a letter or digit".to_owned(),
        ));
    }
    if let Some(bad) = name.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '@' | '-'))
    }) {
        return Err(IdentityError::InvalidUsername(format!(
            "a username may contain only letters a-z, digits and . _ @ - ('{}' is not allowed)",
            bad.escape_default()
        )));
    }
    PrincipalId::parse(&name)
        .map_err(|error: InvalidId| IdentityError::InvalidUsername(error.to_string()))
}

/// The public view of a [`UserRecord`] at time `now`.
pub(crate) fn account_view(user: &UserRecord, now: Timestamp) -> UserAccount {
    UserAccount {
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        bindings: user.bindings.clone(),
        disabled: user.disabled,
        created_at: user.created_at,
        password_changed_at: user.password_changed_at,
        must_change_password: user.must_change_password,
        last_login_at: user.last_login_at,
        locked_until: user.locked_at(now),
        failed_attempts: user.failed_attempts,
        totp_enrolled: user.totp_enrolled,
        sso_provider: user.sso.as_ref().map(|link| link.provider.clone()),
    }
}

/// Bindings deduplicated by scope (one role per scope; the last given wins).
pub(crate) fn normalise_bindings(bindings: Vec<RoleBinding>) -> Vec<RoleBinding> {
    let mut out: Vec<RoleBinding> = Vec::new();
    for binding in bindings {
        out.retain(|existing| existing.scope != binding.scope);
        out.push(binding);
    }
    out.sort_by(|a, b| a.scope.cmp(&b.scope));
    out
}
