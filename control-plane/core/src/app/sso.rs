//! Single sign-on use cases: the sign-in page's options, the redirect to a provider, the callback
//! (claims → bindings → session), and the operators' configuration with its mapping preview.

use km_domain::{Action, EventDraft, MappingDecision, Outcome, SsoMapping, map_claims};

use super::{ANONYMOUS_ACTOR, App, AppError, Gate, RequestId};
use crate::identity::{Caller, ExternalSignIn, NewSession, SecretText};
use crate::sso::{SsoConfig, SsoError, SsoServiceError};

/// What the sign-in page offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    /// Username/password sign-in is offered to everybody (when false, only platform
    /// administrators may still use it, as break-glass).
    pub local_login: bool,
    /// Enabled providers: id and button text.
    pub providers: Vec<(String, String)>,
}

/// The SSO configuration as operators see it.
#[derive(Debug, Clone)]
pub struct SsoSettingsView {
    /// The configuration.
    pub config: SsoConfig,
    /// Per provider id: whether a client secret is stored (never the secret).
    pub secrets: Vec<(String, bool)>,
}

impl From<SsoServiceError> for AppError {
    fn from(error: SsoServiceError) -> Self {
        match error {
            SsoServiceError::UnknownProvider(id) => {
                tracing::info!(provider = %id, "sign-in with an unknown or disabled provider");
                Self::NotFound { what: "provider" }
            }
            SsoServiceError::PendingUnknown => Self::LoginExpired,
            SsoServiceError::Invalid(message) => Self::invalid("invalid_sso_config", message),
            SsoServiceError::Store(store) => store.into(),
            SsoServiceError::Protocol(protocol) => {
                tracing::warn!(error = %protocol, "identity provider step failed");
                let (reason, message) = match &protocol {
                    SsoError::Invalid(_) => (
                        "invalid_response",
                        "the identity provider's answer failed validation; start the sign-in again"
                            .to_owned(),
                    ),
                    SsoError::Denied(detail) => (
                        "provider_denied",
                        format!("the identity provider refused the sign-in: {detail}"),
                    ),
                    SsoError::Misconfigured(_) | SsoError::Unavailable(_) => (
                        "provider_unavailable",
                        format!("{protocol}; ask an operator to check the single sign-on settings"),
                    ),
                };
                Self::SsoRefused { reason, message }
            }
        }
    }
}

/// Why a mapping decision refuses a person, for the page they see.
fn refusal(decision: &MappingDecision) -> Option<AppError> {
    match decision {
        MappingDecision::Granted { .. } => None,
        MappingDecision::NotInAllowedGroup => Some(AppError::SsoRefused {
            reason: "not_in_allowed_group",
            message: "your account is not in a group that may use keymanager; ask your \
                      administrator to add you to one"
                .to_owned(),
        }),
        MappingDecision::NoMatchingRule => Some(AppError::SsoRefused {
            reason: "no_partition_mapping",
            message: "your groups do not give you a role on any partition; ask a platform \
                      operator to map one of your groups"
                .to_owned(),
        }),
    }
}

impl App {
    /// What the sign-in page offers (anonymous).
    pub async fn login_options(&self) -> Result<LoginOptions, AppError> {
        let config = self.inner.sso.config().await?.value;
        Ok(LoginOptions {
            local_login: config.local_login,
            providers: config
                .providers
                .iter()
                .filter(|p| p.enabled)
                .map(|p| (p.settings.id.clone(), p.settings.display_name.clone()))
                .collect(),
        })
    }

    /// Starts a sign-in at `provider` (anonymous): the URL to redirect the browser to. The
    /// callback must come back to `redirect_uri` within ten minutes, once.
    pub async fn sso_begin(&self, provider: &str, redirect_uri: &str) -> Result<String, AppError> {
        Ok(self.inner.sso.begin(provider, redirect_uri).await?)
    }

    /// The callback of a sign-in at `provider`: validates the answer, maps the person's groups and
    /// roles onto bindings, and opens a session. Audited (actor `anonymous`, the provider and the
    /// resulting account in the details).
    pub async fn sso_complete(
        &self,
        rid: &RequestId,
        provider: &str,
        state: &str,
        code: &str,
    ) -> Result<NewSession, AppError> {
        let draft = EventDraft::new(ANONYMOUS_ACTOR, "login_sso", Outcome::Success, rid.as_str())
            .with_detail("provider", provider);
        self.audited(draft, async {
            let (config, identity) = self.inner.sso.finish(provider, state, code).await?;
            if identity.groups_overage {
                return Err(AppError::SsoRefused {
                    reason: "groups_overage",
                    message: "the identity provider left your groups out of the sign-in because \
                              you are in too many (Entra ID group overage); ask an operator to \
                              configure the application to emit only the groups assigned to it"
                        .to_owned(),
                });
            }
            let decision = map_claims(&config.mapping, &identity.groups, &identity.roles);
            if let Some(refused) = refusal(&decision) {
                return Err(refused);
            }
            let MappingDecision::Granted { bindings, .. } = decision else {
                return Err(AppError::internal("sso mapping", &"not granted"));
            };
            let person = ExternalSignIn {
                provider: provider.to_owned(),
                subject: identity.subject.clone(),
                login: identity.username.clone().or(identity.email.clone()),
                display_name: identity.display_name.clone(),
                bindings,
            };
            Ok(self.inner.identity.login.sign_in_external(person).await?)
        })
        .await
    }

    /// The provider sent the browser back with an error instead of a code. Audited as a failed
    /// sign-in; answers with the refusal to show.
    pub async fn sso_provider_error(
        &self,
        rid: &RequestId,
        provider: &str,
        error: &str,
        description: Option<&str>,
    ) -> AppError {
        let safe =
            |text: &str| -> String { text.chars().filter(|c| !c.is_control()).take(200).collect() };
        let refused = AppError::SsoRefused {
            reason: "provider_denied",
            message: match description {
                Some(description) => format!(
                    "the identity provider refused the sign-in: {} ({})",
                    safe(description),
                    safe(error)
                ),
                None => format!("the identity provider refused the sign-in: {}", safe(error)),
            },
        };
        let draft = EventDraft::new(ANONYMOUS_ACTOR, "login_sso", Outcome::Success, rid.as_str())
            .with_detail("provider", provider);
        let failed: Result<(), AppError> = self.audited(draft, async { Err(refused) }).await;
        failed.err().unwrap_or(AppError::Internal)
    }

    /// The SSO configuration (`manage_sso`).
    pub async fn get_sso_settings(
        &self,
        caller: &Caller,
        rid: &RequestId,
    ) -> Result<SsoSettingsView, AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::ManageSso)
            .await?;
        let config = self.inner.sso.config().await?.value;
        let mut secrets = Vec::with_capacity(config.providers.len());
        for provider in &config.providers {
            let id = provider.settings.id.clone();
            let stored = self.inner.sso.has_client_secret(&id).await?;
            secrets.push((id, stored));
        }
        Ok(SsoSettingsView { config, secrets })
    }

    /// Validates and saves the SSO configuration (`manage_sso`, audited).
    pub async fn update_sso_settings(
        &self,
        caller: &Caller,
        rid: &RequestId,
        config: SsoConfig,
    ) -> Result<SsoConfig, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ManageSso)
            .await?;
        config
            .validate()
            .map_err(|message| AppError::invalid("invalid_sso_config", message))?;
        let providers: Vec<&str> = config
            .providers
            .iter()
            .map(|p| p.settings.id.as_str())
            .collect();
        let draft = Self::draft(&grant, rid, "update_sso_settings", Some("kms.config.sso"))
            .with_detail("local_login", config.local_login.to_string())
            .with_detail("providers", providers.join(","));
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            Ok(self.inner.sso.save_config(config, &actor).await?)
        })
        .await
    }

    /// Stores a provider's client secret, sealed (`manage_sso`, audited without the secret).
    pub async fn set_sso_client_secret(
        &self,
        caller: &Caller,
        rid: &RequestId,
        provider: &str,
        secret: &SecretText,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ManageSso)
            .await?;
        let config = self.inner.sso.config().await?.value;
        if config.provider(provider).is_none() {
            return Err(AppError::NotFound { what: "provider" });
        }
        if secret.char_count() == 0 || secret.char_count() > 1024 {
            return Err(AppError::invalid(
                "invalid_client_secret",
                "the client secret must be 1 to 1024 characters",
            ));
        }
        let draft = Self::draft(&grant, rid, "set_sso_client_secret", Some(provider));
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            Ok(self
                .inner
                .sso
                .set_client_secret(provider, secret, &actor)
                .await?)
        })
        .await
    }

    /// What `groups` and `roles` would yield under `mapping` — the same decision a sign-in makes
    /// (`manage_sso`; reads only).
    pub async fn preview_sso_mapping(
        &self,
        caller: &Caller,
        rid: &RequestId,
        mapping: &SsoMapping,
        groups: &[String],
        roles: &[String],
    ) -> Result<MappingDecision, AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::ManageSso)
            .await?;
        Ok(map_claims(mapping, groups, roles))
    }

    /// The saved mapping of `provider` (for previews of the stored configuration).
    pub async fn sso_mapping_of(
        &self,
        caller: &Caller,
        rid: &RequestId,
        provider: &str,
    ) -> Result<SsoMapping, AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::ManageSso)
            .await?;
        self.inner
            .sso
            .config()
            .await?
            .value
            .provider(provider)
            .map(|p| p.mapping.clone())
            .ok_or(AppError::NotFound { what: "provider" })
    }
}
