//! The single-sign-on port: the relying-party protocol work (OpenID Connect code flow with PKCE and
//! nonce, GitHub OAuth2) that an adapter (km-auth) performs for the [`App`](crate::App).
//!
//! The core decides everything else: which providers exist (operators configure them, stored in
//! the state store), where a pending login is kept between the redirect and the callback (a
//! single-use record, so it works across replicas and cannot be replayed), what the groups and
//! role claims of an [`ExternalIdentity`] grant (km-domain's mapping rules), and the session.

mod service;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::identity::SecretText;

pub use service::{PENDING_LOGIN_SECS, SsoConfig, SsoProviderConfig, SsoService, SsoServiceError};

/// Which protocol and defaults a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SsoProviderKind {
    /// Any OpenID Connect provider (discovery at `<issuer>/.well-known/openid-configuration`).
    Oidc,
    /// Microsoft Entra ID: OIDC with issuer `https://login.microsoftonline.com/<tenant>/v2.0`,
    /// groups in `groups` (object ids), app roles in `roles`, group overage detected.
    EntraId,
    /// Keycloak: OIDC with issuer `<base>/realms/<realm>`, groups in `groups` (needs the group
    /// membership mapper), realm roles in `realm_access.roles`.
    Keycloak,
    /// GitHub OAuth2 (not OIDC): identity from `/user`, groups are `<org>` and `<org>/<team-slug>`
    /// from the organisation and team memberships.
    Github,
}

impl SsoProviderKind {
    /// The kind's name in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            SsoProviderKind::Oidc => "oidc",
            SsoProviderKind::EntraId => "entra_id",
            SsoProviderKind::Keycloak => "keycloak",
            SsoProviderKind::Github => "github",
        }
    }
}

/// One identity provider as the protocol adapter needs it (no secrets: the client secret is kept
/// sealed and passed separately).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoProviderSettings {
    /// Slug naming the provider in URLs (`/auth/sso/<id>/...`) and in SSO principals.
    pub id: String,
    /// Shown on the sign-in button.
    pub display_name: String,
    /// Protocol and defaults.
    pub kind: SsoProviderKind,
    /// OIDC issuer URL (exactly as the provider's discovery document states it). For GitHub the
    /// web base, `https://github.com` (or a GitHub Enterprise Server / test double).
    pub issuer_url: String,
    /// GitHub only: the REST API base, `https://api.github.com` by default.
    #[serde(default)]
    pub api_url: Option<String>,
    /// OAuth2 client id.
    pub client_id: String,
    /// Extra scopes beyond the kind's defaults (`openid profile email` for OIDC kinds,
    /// `read:user read:org` for GitHub).
    #[serde(default)]
    pub extra_scopes: Vec<String>,
    /// Claim holding group ids/names; `None` = the kind's default (`groups`).
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Claim holding role names (dotted paths allowed, e.g. `realm_access.roles`); `None` = the
    /// kind's default (`roles` for Entra ID, `realm_access.roles` for Keycloak, none otherwise).
    #[serde(default)]
    pub roles_claim: Option<String>,
}

/// What the adapter must remember between sending the browser to the provider and the callback.
/// Kept server-side by the core (sealed, single use), never in the browser.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The `state` parameter sent to the provider (CSRF protection; also the record's key).
    pub state: String,
    /// The OIDC `nonce` the ID token must carry (empty for GitHub).
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: SecretText,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &self.state)
            .field("nonce", &"<redacted>")
            .field("pkce_verifier", &self.pkce_verifier)
            .finish()
    }
}

/// The start of a login: where to send the browser, and what to keep until it comes back.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    /// The provider's authorization URL with every parameter set.
    pub url: String,
    /// To be kept until the callback.
    pub pending: PendingLogin,
}

/// Who the provider says signed in, with validated claims.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalIdentity {
    /// The provider's stable subject id (`sub`; the numeric user id for GitHub).
    pub subject: String,
    /// A human-readable login name (`preferred_username`, email or GitHub login), if any.
    pub username: Option<String>,
    /// Email address, if the provider released it.
    pub email: Option<String>,
    /// Display name, if any.
    pub display_name: Option<String>,
    /// Group ids or names from the groups claim (GitHub: `org` and `org/team`).
    pub groups: Vec<String>,
    /// Role names from the roles claim.
    pub roles: Vec<String>,
    /// The provider left the groups out because there were too many (Entra ID "group overage":
    /// `_claim_names.groups` instead of a `groups` claim). The core refuses such a login with an
    /// explanation instead of guessing.
    pub groups_overage: bool,
}

/// Why a provider step failed. Messages are shown to operators (and, in short form, to the person
/// signing in); they never contain tokens or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoError {
    /// The provider could not be reached or its discovery document / keys are unusable.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider's configuration in keymanager is wrong (bad issuer URL, client id/secret
    /// refused at the token endpoint).
    #[error("the identity provider configuration is wrong: {0}")]
    Misconfigured(String),
    /// The provider answered with an error instead of a code (e.g. the person cancelled).
    #[error("the identity provider refused the sign-in: {0}")]
    Denied(String),
    /// A token or answer failed validation (signature, issuer, audience, expiry, nonce, state):
    /// possibly an attack; never retried.
    #[error("the sign-in answer failed validation: {0}")]
    Invalid(String),
}

/// The relying-party protocol, implemented by an adapter. Stateless between calls apart from
/// caches (discovery documents, signing keys), which the adapter refreshes when a token names a
/// key it does not know (key rotation).
#[async_trait]
pub trait SsoProtocol: Send + Sync + fmt::Debug {
    /// Builds the authorization request for `provider` (fresh state, nonce and PKCE verifier).
    async fn start(
        &self,
        provider: &SsoProviderSettings,
        redirect_uri: &str,
    ) -> Result<AuthorizationStart, SsoError>;

    /// Exchanges `code` for tokens and validates them against `pending` (nonce, PKCE), returning
    /// the identity with its groups and roles.
    async fn finish(
        &self,
        provider: &SsoProviderSettings,
        client_secret: &SecretText,
        redirect_uri: &str,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<ExternalIdentity, SsoError>;
}
