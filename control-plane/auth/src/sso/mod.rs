//! The single-sign-on relying party: [`HttpSso`] implements km-core's [`SsoProtocol`] for OpenID
//! Connect providers (generic, Entra ID, Keycloak) with openidconnect 4, and for GitHub OAuth2.
//!
//! The core keeps the [`PendingLogin`] between redirect and callback, checks `state`, maps
//! groups/roles and creates the session; this module only speaks the protocols.

mod claims;
mod github;
mod http;
mod oidc;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use km_core::{
    AuthorizationStart, ExternalIdentity, PendingLogin, SecretText, SsoError, SsoProtocol,
    SsoProviderKind, SsoProviderSettings,
};

use self::http::{Http, sanitize};
use self::oidc::DiscoveryCache;

/// Tuning of [`HttpSso`]. `Default` gives the production values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSsoConfig {
    /// How long a discovery document and its signing keys (JWKS) are reused before they are
    /// fetched again (default 15 minutes). A token signed with an unknown key id triggers one
    /// refetch regardless.
    pub discovery_ttl: Duration,
    /// Limit for establishing a connection to a provider (default 5 s).
    pub connect_timeout: Duration,
    /// Limit for one whole request, answer included (default 10 s).
    pub request_timeout: Duration,
    /// Largest answer accepted from a provider (default 1 MiB).
    pub max_response_bytes: usize,
    /// GitHub: most pages (of 100) read from `/user/orgs` and `/user/teams` (default 10).
    pub github_max_pages: usize,
    /// The `User-Agent` header (GitHub's API requires one); default `keymanager/<version>`.
    pub user_agent: String,
    /// Allow plain-http issuers on hosts other than loopback (default false: https only, except
    /// `localhost`, `127.0.0.0/8` and `::1`).
    pub allow_plain_http: bool,
    /// Extra trusted root certificates (PEM), in addition to the system's, for providers behind
    /// a private CA.
    pub extra_root_certificates_pem: Vec<String>,
}

impl Default for HttpSsoConfig {
    fn default() -> Self {
        Self {
            discovery_ttl: Duration::from_secs(15 * 60),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
            github_max_pages: 10,
            user_agent: concat!("keymanager/", env!("CARGO_PKG_VERSION")).to_owned(),
            allow_plain_http: false,
            extra_root_certificates_pem: Vec::new(),
        }
    }
}

/// The production [`SsoProtocol`]: OpenID Connect (authorization code flow with PKCE S256, nonce
/// and state; ID tokens checked for signature, issuer, audience, expiry, nonce and `at_hash`) and
/// GitHub OAuth2 (organisations and teams as groups), over one reqwest client without redirects.
///
/// Caches discovery documents per issuer for [`HttpSsoConfig::discovery_ttl`]; when an ID token
/// names a key id the cached JWKS lacks, the document and keys are fetched once more and the
/// token is checked again (provider key rotation).
pub struct HttpSso {
    http: Http,
    discovery: DiscoveryCache,
    config: HttpSsoConfig,
}

impl fmt::Debug for HttpSso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSso")
            .field("config", &self.config)
            .field("cached_issuers", &self.discovery.issuers())
            .finish()
    }
}

impl HttpSso {
    /// A relying party tuned by `config`. Fails only if the HTTP client cannot be built (an
    /// unusable extra root certificate).
    pub fn new(config: HttpSsoConfig) -> Result<Self, SsoError> {
        Ok(Self {
            http: Http::new(&config)?,
            discovery: DiscoveryCache::new(config.discovery_ttl, config.allow_plain_http),
            config,
        })
    }

    /// Drops the cached discovery document and keys of `issuer_url` (e.g. after an operator
    /// changed the provider), so the next login fetches them again.
    pub fn forget_issuer(&self, issuer_url: &str) {
        self.discovery.forget(issuer_url);
    }
}

#[async_trait]
impl SsoProtocol for HttpSso {
    async fn start(
        &self,
        provider: &SsoProviderSettings,
        redirect_uri: &str,
    ) -> Result<AuthorizationStart, SsoError> {
        match provider.kind {
            SsoProviderKind::Github => {
                github::start(provider, redirect_uri, self.config.allow_plain_http)
            }
            SsoProviderKind::Oidc | SsoProviderKind::EntraId | SsoProviderKind::Keycloak => {
                oidc::start(&self.http, &self.discovery, provider, redirect_uri).await
            }
        }
    }

    async fn finish(
        &self,
        provider: &SsoProviderSettings,
        client_secret: &SecretText,
        redirect_uri: &str,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<ExternalIdentity, SsoError> {
        match provider.kind {
            SsoProviderKind::Github => {
                github::finish(
                    &self.http,
                    provider,
                    client_secret,
                    redirect_uri,
                    pending,
                    code,
                    self.config.allow_plain_http,
                    self.config.github_max_pages,
                )
                .await
            }
            SsoProviderKind::Oidc | SsoProviderKind::EntraId | SsoProviderKind::Keycloak => {
                oidc::finish(
                    &self.http,
                    &self.discovery,
                    provider,
                    client_secret,
                    redirect_uri,
                    pending,
                    code,
                )
                .await
            }
        }
    }
}

/// Classifies an `error=` callback (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6) for the core:
/// `access_denied`, `login_required`, `consent_required` and the like are [`SsoError::Denied`];
/// errors that point at keymanager's client registration (`unauthorized_client`,
/// `invalid_client`, `invalid_scope`, `unsupported_response_type`, `invalid_request`,
/// `invalid_request_uri`) are [`SsoError::Misconfigured`]; `server_error` and
/// `temporarily_unavailable` are [`SsoError::Unavailable`]. The provider's description is
/// shortened and stripped of control characters.
pub fn callback_error(error: &str, description: Option<&str>) -> SsoError {
    let mut message = sanitize(error);
    if let Some(description) = description.filter(|d| !d.is_empty()) {
        message.push_str(": ");
        message.push_str(&sanitize(description));
    }
    match error {
        "unauthorized_client"
        | "invalid_client"
        | "invalid_scope"
        | "unsupported_response_type"
        | "invalid_request"
        | "invalid_request_uri"
        | "redirect_uri_mismatch"
        | "application_suspended" => SsoError::Misconfigured(message),
        "server_error" | "temporarily_unavailable" => SsoError::Unavailable(message),
        _ => SsoError::Denied(message),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn callback_errors_are_classified() {
        assert_eq!(
            callback_error("access_denied", Some("The user cancelled\n")),
            SsoError::Denied("access_denied: The user cancelled ".into())
        );
        assert!(matches!(
            callback_error("unauthorized_client", None),
            SsoError::Misconfigured(_)
        ));
        assert!(matches!(
            callback_error("temporarily_unavailable", None),
            SsoError::Unavailable(_)
        ));
        assert!(matches!(
            callback_error("login_required", None),
            SsoError::Denied(_)
        ));
    }

    #[test]
    fn debug_shows_no_secrets_and_config() {
        let sso = HttpSso::new(HttpSsoConfig::default()).unwrap();
        let text = format!("{sso:?}");
        assert!(text.contains("discovery_ttl"));
        assert!(text.contains("cached_issuers"));
    }
}
