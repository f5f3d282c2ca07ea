//! The SSO configuration (providers, mapping tables, whether local sign-in is allowed), the
//! providers' client secrets (sealed), and the pending logins between redirect and callback.
//!
//! | record | sealed | holds |
//! |---|---|---|
//! | `kms.config.sso` | no | [`SsoConfig`]: providers, mapping tables, local sign-in switch |
//! | `kms.sso-secret.<provider>` | **yes** | the provider's OAuth2 client secret |
//! | `kms.sso-pending.<state>` | **yes** | nonce and PKCE verifier of a login in progress (10 min, single use) |

use std::sync::Arc;

use km_domain::{MappingRule, SsoMapping};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::{
    AuthorizationStart, ExternalIdentity, PendingLogin, SsoError, SsoProtocol, SsoProviderKind,
    SsoProviderSettings,
};
use crate::identity::SecretText;
use crate::{Clock, Sealing, StateStore, StoreError, Timestamp, Versioned};

const CONFIG_KIND: &str = "config";
const CONFIG_ID: &str = "sso";
const SECRET_KIND: &str = "sso-secret";
const PENDING_KIND: &str = "sso-pending";
/// How long a login may take at the provider.
pub const PENDING_LOGIN_SECS: u64 = 600;

/// One configured provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoProviderConfig {
    /// Protocol settings.
    pub settings: SsoProviderSettings,
    /// Shown on the sign-in page and accepted at the callback only when enabled.
    pub enabled: bool,
    /// Who may sign in and what they get.
    pub mapping: SsoMapping,
}

/// The deployment's SSO configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoConfig {
    /// Whether local username/password sign-in is offered. Even when off, platform
    /// administrators may still sign in locally (break-glass when the provider is down).
    #[serde(default = "default_true")]
    pub local_login: bool,
    /// The providers, in sign-in page order.
    #[serde(default)]
    pub providers: Vec<SsoProviderConfig>,
}

fn default_true() -> bool {
    true
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            local_login: true,
            providers: Vec::new(),
        }
    }
}

impl SsoConfig {
    /// The provider `id`, enabled or not.
    pub fn provider(&self, id: &str) -> Option<&SsoProviderConfig> {
        self.providers.iter().find(|p| p.settings.id == id)
    }

    /// Checks the configuration; the message names the offending provider and field.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = Vec::new();
        for provider in &self.providers {
            let s = &provider.settings;
            let id_ok = !s.id.is_empty()
                && s.id.len() <= 32
                && s.id.starts_with(|c: char| c.is_ascii_lowercase())
                && s.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok {
                return Err(format!(
                    "provider id {:?}: 1-32 of a-z, 0-9 and -, starting with a letter",
                    s.id
                ));
            }
            if seen.contains(&s.id) {
                return Err(format!("provider id {:?} is used twice", s.id));
            }
            seen.push(s.id.clone());
            if s.display_name.trim().is_empty() || s.display_name.chars().count() > 64 {
                return Err(format!(
                    "provider {}: display_name must be 1-64 characters",
                    s.id
                ));
            }
            for (field, url) in std::iter::once(("issuer_url", s.issuer_url.as_str()))
                .chain(s.api_url.as_deref().map(|url| ("api_url", url)))
            {
                let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
                if !scheme_ok || url.contains(char::is_whitespace) || url.len() > 2048 {
                    return Err(format!("provider {}: {field} must be an http(s) URL", s.id));
                }
            }
            if s.client_id.trim().is_empty() || s.client_id.len() > 256 {
                return Err(format!("provider {}: client_id is required", s.id));
            }
            if s.kind == SsoProviderKind::Github && !provider.mapping.rules.is_empty() {
                for rule in &provider.mapping.rules {
                    if rule.claim == km_domain::ClaimKind::Role {
                        return Err(format!(
                            "provider {}: GitHub has no role claims; map organisations or teams (groups)",
                            s.id
                        ));
                    }
                }
            }
            for rule in &provider.mapping.rules {
                validate_rule(&s.id, rule)?;
            }
        }
        if !self.local_login && !self.providers.iter().any(|p| p.enabled) {
            return Err(
                "local sign-in can only be turned off while at least one provider is enabled"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

fn validate_rule(provider: &str, rule: &MappingRule) -> Result<(), String> {
    if rule.value.trim().is_empty() || rule.value.len() > 256 {
        return Err(format!(
            "provider {provider}: every mapping rule needs a group or role value (1-256 characters)"
        ));
    }
    Ok(())
}

/// A login between redirect and callback (sealed record).
#[derive(Serialize, Deserialize)]
struct PendingRecord {
    provider: String,
    nonce: String,
    pkce_verifier: String,
    redirect_uri: String,
    expires_at: Timestamp,
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        self.pkce_verifier.zeroize();
        self.nonce.zeroize();
    }
}

/// The sealed client secret.
#[derive(Serialize, Deserialize)]
struct SecretRecord {
    client_secret: String,
}

impl Drop for SecretRecord {
    fn drop(&mut self) {
        self.client_secret.zeroize();
    }
}

/// Why an SSO step failed (before the mapping decision).
#[derive(Debug, thiserror::Error)]
pub enum SsoServiceError {
    /// No such enabled provider.
    #[error("there is no enabled sign-in provider {0:?}")]
    UnknownProvider(String),
    /// The callback's state is unknown, used or expired.
    #[error("this sign-in has expired or was already used; start again")]
    PendingUnknown,
    /// The provider failed or its answer is not valid.
    #[error(transparent)]
    Protocol(#[from] SsoError),
    /// The configuration is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// SSO state and the protocol adapter.
#[derive(Clone)]
pub struct SsoService {
    store: StateStore,
    clock: Arc<dyn Clock>,
    protocol: Arc<dyn SsoProtocol>,
}

impl std::fmt::Debug for SsoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoService").finish_non_exhaustive()
    }
}

impl SsoService {
    /// The service over `store` with the relying-party `protocol`.
    pub fn new(store: StateStore, clock: Arc<dyn Clock>, protocol: Arc<dyn SsoProtocol>) -> Self {
        Self {
            store,
            clock,
            protocol,
        }
    }

    /// The configuration in force (defaults when none was saved).
    pub async fn config(&self) -> Result<Versioned<SsoConfig>, SsoServiceError> {
        Ok(self
            .store
            .get::<SsoConfig>(CONFIG_KIND, CONFIG_ID)
            .await?
            .unwrap_or_else(|| Versioned {
                value: SsoConfig::default(),
                revision: 0,
                updated_at: 0,
                updated_by: String::new(),
                sealed: false,
            }))
    }

    /// Validates and saves the configuration.
    pub async fn save_config(
        &self,
        config: SsoConfig,
        actor: &str,
    ) -> Result<SsoConfig, SsoServiceError> {
        config.validate().map_err(SsoServiceError::Invalid)?;
        let previous = self.config().await?.value;
        let saved = self
            .store
            .modify(
                CONFIG_KIND,
                CONFIG_ID,
                Sealing::Plain,
                actor,
                |_: Option<Versioned<SsoConfig>>| Ok::<_, StoreError>(config.clone()),
            )
            .await?;
        // A removed provider's client secret goes with it (a new provider reusing the id must
        // not inherit it).
        for gone in previous
            .providers
            .iter()
            .filter(|old| saved.value.provider(&old.settings.id).is_none())
        {
            let id = &gone.settings.id;
            if let Some(secret) = self.store.get::<SecretRecord>(SECRET_KIND, id).await? {
                self.store.delete(SECRET_KIND, id, secret.revision).await?;
            }
        }
        Ok(saved.value)
    }

    /// Stores a provider's client secret (sealed).
    pub async fn set_client_secret(
        &self,
        provider: &str,
        secret: &SecretText,
        actor: &str,
    ) -> Result<(), SsoServiceError> {
        self.store
            .modify(
                SECRET_KIND,
                provider,
                Sealing::Sealed,
                actor,
                |_: Option<Versioned<SecretRecord>>| {
                    Ok::<_, StoreError>(SecretRecord {
                        client_secret: secret.expose_secret().to_owned(),
                    })
                },
            )
            .await?;
        Ok(())
    }

    /// Whether a client secret is stored for `provider`.
    pub async fn has_client_secret(&self, provider: &str) -> Result<bool, SsoServiceError> {
        Ok(self
            .store
            .get::<SecretRecord>(SECRET_KIND, provider)
            .await?
            .is_some())
    }

    async fn client_secret(&self, provider: &str) -> Result<SecretText, SsoServiceError> {
        Ok(self
            .store
            .get::<SecretRecord>(SECRET_KIND, provider)
            .await?
            .map(|record| SecretText::from(record.value.client_secret.as_str()))
            .unwrap_or_else(|| SecretText::from("")))
    }

    async fn enabled_provider(&self, id: &str) -> Result<SsoProviderConfig, SsoServiceError> {
        self.config()
            .await?
            .value
            .provider(id)
            .filter(|p| p.enabled)
            .cloned()
            .ok_or_else(|| SsoServiceError::UnknownProvider(id.to_owned()))
    }

    /// Starts a login at `provider`: keeps the pending login and returns the URL to send the
    /// browser to.
    pub async fn begin(
        &self,
        provider: &str,
        redirect_uri: &str,
    ) -> Result<String, SsoServiceError> {
        let config = self.enabled_provider(provider).await?;
        let AuthorizationStart { url, pending } =
            self.protocol.start(&config.settings, redirect_uri).await?;
        let record = PendingRecord {
            provider: provider.to_owned(),
            nonce: pending.nonce.clone(),
            pkce_verifier: pending.pkce_verifier.expose_secret().to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            expires_at: self.clock.now().saturating_add(PENDING_LOGIN_SECS),
        };
        self.store
            .create(
                PENDING_KIND,
                &pending_id(&pending.state)?,
                record,
                "anonymous",
                Sealing::Sealed,
            )
            .await?;
        Ok(url)
    }

    /// Finishes a login: consumes the pending login named by `state` (once), checks it belongs to
    /// `provider` and has not expired, and lets the adapter exchange and validate. Returns the
    /// provider's configuration (for the mapping) and the identity.
    pub async fn finish(
        &self,
        provider: &str,
        state: &str,
        code: &str,
    ) -> Result<(SsoProviderConfig, ExternalIdentity), SsoServiceError> {
        let id = pending_id(state).map_err(|_| SsoServiceError::PendingUnknown)?;
        let Some(pending) = self.store.get::<PendingRecord>(PENDING_KIND, &id).await? else {
            return Err(SsoServiceError::PendingUnknown);
        };
        // Single use: whoever deletes it first proceeds; a replayed callback finds nothing.
        match self.store.delete(PENDING_KIND, &id, pending.revision).await {
            Ok(()) => {}
            Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => {
                return Err(SsoServiceError::PendingUnknown);
            }
            Err(error) => return Err(error.into()),
        }
        let record = &pending.value;
        if record.provider != provider || self.clock.now() >= record.expires_at {
            return Err(SsoServiceError::PendingUnknown);
        }
        let config = self.enabled_provider(provider).await?;
        let secret = self.client_secret(provider).await?;
        let login = PendingLogin {
            state: state.to_owned(),
            nonce: record.nonce.clone(),
            pkce_verifier: SecretText::from(record.pkce_verifier.as_str()),
        };
        let identity = self
            .protocol
            .finish(
                &config.settings,
                &secret,
                &record.redirect_uri,
                &login,
                code,
            )
            .await?;
        Ok((config, identity))
    }

    /// Removes pending logins that expired without a callback; returns how many.
    pub async fn purge_expired(&self) -> Result<usize, SsoServiceError> {
        let now = self.clock.now();
        let mut purged = 0;
        for id in self.store.list_ids(PENDING_KIND).await? {
            if let Some(pending) = self.store.get::<PendingRecord>(PENDING_KIND, &id).await?
                && now >= pending.value.expires_at
                && self
                    .store
                    .delete(PENDING_KIND, &id, pending.revision)
                    .await
                    .is_ok()
            {
                purged += 1;
            }
        }
        Ok(purged)
    }
}

/// The record id of a pending login: the `state` itself when it is plain (the adapter makes it
/// URL-safe random text), refused otherwise.
fn pending_id(state: &str) -> Result<String, SsoServiceError> {
    let plain = !state.is_empty()
        && state.len() <= 128
        && state
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if plain {
        Ok(format!("s{state}"))
    } else {
        Err(SsoServiceError::PendingUnknown)
    }
}
