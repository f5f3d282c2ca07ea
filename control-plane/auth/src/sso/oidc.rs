//! OpenID Connect relying party (any OIDC provider, Entra ID, Keycloak) on openidconnect 4:
//! discovery cached per issuer, code flow with PKCE S256 + nonce + state, ID token validation
//! with one JWKS refetch on an unknown key id, claims from the ID token or the userinfo endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthType, AuthorizationCode, ClaimsVerificationError, Client,
    ClientId, ClientSecret, CsrfToken, DiscoveryError, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdToken, IdTokenClaims, IdTokenFields, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenResponse,
    UserInfoClaims, UserInfoError,
};

use km_core::{
    AuthorizationStart, ExternalIdentity, PendingLogin, SecretText, SsoError, SsoProviderSettings,
};

use super::claims::{ClaimNames, ExtraClaims, groups_overage, values};
use super::http::{Http, HttpError, sanitize};

type Fields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<Fields, CoreTokenType>;
type Claims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;
type OidcIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// ID token signature algorithms accepted: asymmetric only (no HMAC with the client secret, never
/// `none`), whatever the discovery document lists.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Scopes every OIDC login asks for besides `openid` (which openidconnect adds itself).
const DEFAULT_SCOPES: [&str; 2] = ["profile", "email"];

#[derive(Debug, Clone)]
struct Entry {
    metadata: Arc<CoreProviderMetadata>,
    fetched: Instant,
}

/// Discovery documents (with their JWKS) per issuer, reused for a TTL.
#[derive(Debug)]
pub(crate) struct DiscoveryCache {
    ttl: Duration,
    allow_plain_http: bool,
    entries: Mutex<HashMap<String, Entry>>,
}

impl DiscoveryCache {
    pub(crate) fn new(ttl: Duration, allow_plain_http: bool) -> Self {
        Self {
            ttl,
            allow_plain_http,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // The map stays consistent even if a holder panicked (single inserts/removes only).
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops the cached document of `issuer`, if any.
    pub(crate) fn forget(&self, issuer: &str) {
        self.lock().remove(issuer);
    }

    /// The issuers currently cached (for Debug output).
    pub(crate) fn issuers(&self) -> Vec<String> {
        let mut issuers: Vec<String> = self.lock().keys().cloned().collect();
        issuers.sort();
        issuers
    }

    /// The cached document of `issuer` when younger than the TTL, else a fresh one.
    async fn get(&self, http: &Http, issuer: &str) -> Result<Entry, SsoError> {
        if let Some(entry) = self.lock().get(issuer)
            && entry.fetched.elapsed() < self.ttl
        {
            return Ok(entry.clone());
        }
        self.fetch(http, issuer).await
    }

    /// A document fetched after `stale` (another login may already have refreshed it), else a
    /// fresh one: the key-rotation path.
    async fn refresh(&self, http: &Http, issuer: &str, stale: Instant) -> Result<Entry, SsoError> {
        if let Some(entry) = self.lock().get(issuer)
            && entry.fetched > stale
        {
            return Ok(entry.clone());
        }
        self.fetch(http, issuer).await
    }

    async fn fetch(&self, http: &Http, issuer: &str) -> Result<Entry, SsoError> {
        let issuer_url = checked_issuer(issuer, self.allow_plain_http)?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, http)
            .await
            .map_err(|e| discovery_error(issuer, e))?;
        let entry = Entry {
            metadata: Arc::new(metadata),
            fetched: Instant::now(),
        };
        let mut entries = self.lock();
        let ttl = self.ttl;
        entries.retain(|_, e| e.fetched.elapsed() < ttl);
        entries.insert(issuer.to_owned(), entry.clone());
        Ok(entry)
    }
}

/// The issuer as an [`IssuerUrl`], refusing anything but https (plain http only for loopback
/// hosts, or anywhere when `allow_plain_http`).
fn checked_issuer(issuer: &str, allow_plain_http: bool) -> Result<IssuerUrl, SsoError> {
    let url = url::Url::parse(issuer).map_err(|e| {
        SsoError::Misconfigured(format!("the issuer URL {issuer:?} is not a URL: {e}"))
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback || allow_plain_http => {}
        _ => {
            return Err(SsoError::Misconfigured(format!(
                "the issuer URL {issuer:?} must use https"
            )));
        }
    }
    IssuerUrl::new(issuer.to_owned()).map_err(|e| {
        SsoError::Misconfigured(format!("the issuer URL {issuer:?} is not a URL: {e}"))
    })
}

fn discovery_error(issuer: &str, err: DiscoveryError<HttpError>) -> SsoError {
    match err {
        DiscoveryError::Request(e) => e.unavailable(&format!(
            "fetching the discovery document or keys of {issuer}"
        )),
        DiscoveryError::Response(status, _, _) => SsoError::Unavailable(format!(
            "the discovery document or keys of {issuer} could not be fetched (HTTP {status})"
        )),
        DiscoveryError::Parse(e) => SsoError::Unavailable(format!(
            "the discovery document or keys of {issuer} are unusable: {}",
            sanitize(&e.to_string())
        )),
        DiscoveryError::Validation(e) => SsoError::Misconfigured(format!(
            "the discovery document of {issuer} does not match the configured issuer: {}",
            sanitize(&e)
        )),
        DiscoveryError::UrlParse(e) => {
            SsoError::Misconfigured(format!("the issuer URL {issuer:?} is not usable: {e}"))
        }
        other => SsoError::Unavailable(format!(
            "discovery of {issuer} failed: {}",
            sanitize(&other.to_string())
        )),
    }
}

/// client_secret_basic unless the provider only lists client_secret_post.
fn auth_type(metadata: &CoreProviderMetadata) -> AuthType {
    match metadata.token_endpoint_auth_methods_supported() {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

fn client(
    metadata: &CoreProviderMetadata,
    provider: &SsoProviderSettings,
    client_secret: Option<&SecretText>,
    redirect_uri: &str,
) -> Result<OidcClient, SsoError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| {
        SsoError::Misconfigured(format!(
            "the redirect URI {redirect_uri:?} is not a URL: {e}"
        ))
    })?;
    let secret = client_secret.map(|s| ClientSecret::new(s.expose_secret().to_owned()));
    Ok(OidcClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(provider.client_id.clone()),
        secret,
    )
    .set_auth_type(auth_type(metadata))
    .set_redirect_uri(redirect))
}

/// `profile email` plus the provider's extra scopes, without duplicates or `openid`.
fn scopes(provider: &SsoProviderSettings) -> Vec<String> {
    let mut out: Vec<String> = DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    for scope in provider
        .extra_scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
    {
        if scope != "openid" && !out.iter().any(|s| s == scope) {
            out.push(scope.to_owned());
        }
    }
    out
}

pub(crate) async fn start(
    http: &Http,
    cache: &DiscoveryCache,
    provider: &SsoProviderSettings,
    redirect_uri: &str,
) -> Result<AuthorizationStart, SsoError> {
    let entry = cache.get(http, &provider.issuer_url).await?;
    let client = client(&entry.metadata, provider, None, redirect_uri)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in scopes(provider) {
        request = request.add_scope(Scope::new(scope));
    }
    let (url, state, nonce) = request.url();
    Ok(AuthorizationStart {
        url: url.to_string(),
        pending: PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: SecretText::new(verifier.secret().clone()),
        },
    })
}

fn token_error(
    err: RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>,
) -> SsoError {
    match err {
        RequestTokenError::ServerResponse(answer) => {
            let code = answer.error();
            let mut message = format!("the token endpoint answered {code}");
            if let Some(description) = answer.error_description() {
                message.push_str(": ");
                message.push_str(&sanitize(description));
            }
            match code {
                CoreErrorResponseType::InvalidClient
                | CoreErrorResponseType::UnauthorizedClient
                | CoreErrorResponseType::UnsupportedGrantType
                | CoreErrorResponseType::InvalidScope => SsoError::Misconfigured(message),
                CoreErrorResponseType::Extension(ext)
                    if ext == "temporarily_unavailable" || ext == "server_error" =>
                {
                    SsoError::Unavailable(message)
                }
                _ => SsoError::Invalid(message),
            }
        }
        RequestTokenError::Request(e) => e.unavailable("the token request"),
        RequestTokenError::Parse(e, _) => SsoError::Unavailable(format!(
            "the token endpoint's answer is unusable: {}",
            sanitize(&e.to_string())
        )),
        RequestTokenError::Other(e) => SsoError::Unavailable(format!(
            "the token endpoint's answer is unusable: {}",
            sanitize(&e)
        )),
    }
}

/// Why an ID token was not accepted.
enum Rejection {
    /// Signed with a key id the cached JWKS does not have: refetch and try again.
    UnknownKey,
    Invalid(String),
}

fn verify(
    client: &OidcClient,
    id_token: &OidcIdToken,
    nonce: &Nonce,
    access_token: &AccessToken,
) -> Result<Claims, Rejection> {
    let verifier = client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS);
    let claims = id_token
        .claims(&verifier, nonce)
        .map_err(|e| match e {
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => Rejection::UnknownKey,
            ClaimsVerificationError::SignatureVerification(e) => {
                Rejection::Invalid(format!("the ID token's signature is not valid: {e}"))
            }
            other => Rejection::Invalid(format!("the ID token is not valid: {other}")),
        })?
        .clone();
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(|e| Rejection::Invalid(format!("the ID token's algorithm: {e}")))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|e| Rejection::Invalid(format!("the ID token's key: {e}")))?;
        let actual = AccessTokenHash::from_token(access_token, alg, key)
            .map_err(|e| Rejection::Invalid(format!("the ID token's at_hash: {e}")))?;
        if actual != *expected {
            return Err(Rejection::Invalid(
                "the ID token's at_hash does not match the access token".into(),
            ));
        }
    }
    Ok(claims)
}

fn userinfo_error(err: UserInfoError<HttpError>) -> SsoError {
    match err {
        UserInfoError::ClaimsVerification(e) => {
            SsoError::Invalid(format!("the userinfo answer is not valid: {e}"))
        }
        UserInfoError::Request(e) => e.unavailable("the userinfo request"),
        UserInfoError::Response(status, _, _) => {
            SsoError::Unavailable(format!("the userinfo endpoint answered HTTP {status}"))
        }
        other => SsoError::Unavailable(format!(
            "the userinfo answer is unusable: {}",
            sanitize(&other.to_string())
        )),
    }
}

/// Name, email and username from standard claims (an email the provider marks unverified is
/// dropped). Only fills fields still empty.
fn fill_profile(
    identity: &mut ExternalIdentity,
    email: Option<&str>,
    email_verified: Option<bool>,
    preferred_username: Option<&str>,
    name: Option<&str>,
) {
    let email = email.filter(|e| !e.is_empty() && email_verified != Some(false));
    if identity.email.is_none() {
        identity.email = email.map(str::to_owned);
    }
    if identity.username.is_none() {
        identity.username = preferred_username
            .filter(|u| !u.is_empty())
            .or(email)
            .map(str::to_owned);
    }
    if identity.display_name.is_none() {
        identity.display_name = name.filter(|n| !n.is_empty()).map(str::to_owned);
    }
}

pub(crate) async fn finish(
    http: &Http,
    cache: &DiscoveryCache,
    provider: &SsoProviderSettings,
    client_secret: &SecretText,
    redirect_uri: &str,
    pending: &PendingLogin,
    code: &str,
) -> Result<ExternalIdentity, SsoError> {
    let issuer = provider.issuer_url.as_str();
    let mut entry = cache.get(http, issuer).await?;
    let mut oidc = client(&entry.metadata, provider, Some(client_secret), redirect_uri)?;
    let tokens = oidc
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| {
            SsoError::Misconfigured(format!("the provider {issuer} has no token endpoint: {e}"))
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(
            pending.pkce_verifier.expose_secret().to_owned(),
        ))
        .request_async(http)
        .await
        .map_err(token_error)?;
    let id_token = tokens.id_token().ok_or_else(|| {
        SsoError::Invalid("the token endpoint answered without an ID token".into())
    })?;
    let nonce = Nonce::new(pending.nonce.clone());
    let claims = match verify(&oidc, id_token, &nonce, tokens.access_token()) {
        Ok(claims) => claims,
        Err(Rejection::Invalid(message)) => return Err(SsoError::Invalid(message)),
        Err(Rejection::UnknownKey) => {
            // Key rotation: the provider signs with a key published after our copy of its JWKS.
            tracing::info!(
                issuer,
                "ID token signed with an unknown key id; refetching the JWKS"
            );
            entry = cache.refresh(http, issuer, entry.fetched).await?;
            oidc = client(&entry.metadata, provider, Some(client_secret), redirect_uri)?;
            match verify(&oidc, id_token, &nonce, tokens.access_token()) {
                Ok(claims) => claims,
                Err(Rejection::Invalid(message)) => return Err(SsoError::Invalid(message)),
                Err(Rejection::UnknownKey) => {
                    return Err(SsoError::Invalid(
                        "the ID token is signed with a key the provider does not publish".into(),
                    ));
                }
            }
        }
    };

    let names = ClaimNames::of(provider);
    let extra = &claims.additional_claims().claims;
    let mut identity = ExternalIdentity {
        subject: claims.subject().to_string(),
        ..ExternalIdentity::default()
    };
    fill_profile(
        &mut identity,
        claims.email().map(|e| e.as_str()),
        claims.email_verified(),
        claims.preferred_username().map(|u| u.as_str()),
        claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
    );
    identity.groups_overage = groups_overage(extra, &names.groups);
    let mut groups = values(extra, &names.groups);
    let mut roles = names.roles.as_deref().and_then(|r| values(extra, r));

    let need_groups = groups.is_none() && !identity.groups_overage;
    let need_roles = names.roles.is_some() && roles.is_none();
    let thin =
        identity.username.is_none() && identity.email.is_none() && identity.display_name.is_none();
    if (need_groups || need_roles || thin) && entry.metadata.userinfo_endpoint().is_some() {
        let info: UserInfoClaims<ExtraClaims, CoreGenderClaim> = oidc
            .user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .map_err(|e| SsoError::Misconfigured(format!("userinfo: {e}")))?
            .request_async(http)
            .await
            .map_err(userinfo_error)?;
        let more = &info.additional_claims().claims;
        if need_groups {
            groups = values(more, &names.groups);
            identity.groups_overage = groups_overage(more, &names.groups);
        }
        if need_roles {
            roles = names.roles.as_deref().and_then(|r| values(more, r));
        }
        fill_profile(
            &mut identity,
            info.email().map(|e| e.as_str()),
            info.email_verified(),
            info.preferred_username().map(|u| u.as_str()),
            info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        );
    }
    identity.groups = groups.unwrap_or_default();
    identity.roles = roles.unwrap_or_default();
    Ok(identity)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn issuers_must_be_https_except_loopback() {
        assert!(checked_issuer("https://login.example.com/realms/x", false).is_ok());
        assert!(checked_issuer("http://127.0.0.1:8080", false).is_ok());
        assert!(checked_issuer("http://localhost:8080", false).is_ok());
        assert!(checked_issuer("http://[::1]:8080", false).is_ok());
        assert!(matches!(
            checked_issuer("http://idp.internal", false),
            Err(SsoError::Misconfigured(_))
        ));
        assert!(checked_issuer("http://idp.internal", true).is_ok());
        assert!(matches!(
            checked_issuer("not a url", false),
            Err(SsoError::Misconfigured(_))
        ));
        assert!(matches!(
            checked_issuer("ftp://idp.example", true),
            Err(SsoError::Misconfigured(_))
        ));
    }

    #[test]
    fn scopes_are_defaults_plus_extras() {
        let provider = SsoProviderSettings {
            id: "p".into(),
            display_name: "P".into(),
            kind: km_core::SsoProviderKind::Oidc,
            issuer_url: "https://idp.example".into(),
            api_url: None,
            client_id: "c".into(),
            extra_scopes: vec!["groups roles".into(), "openid".into(), "email".into()],
            groups_claim: None,
            roles_claim: None,
        };
        assert_eq!(
            scopes(&provider),
            vec!["profile", "email", "groups", "roles"]
        );
    }

    fn metadata(methods: Option<&[&str]>) -> CoreProviderMetadata {
        let mut doc = serde_json::json!({
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/auth",
            "token_endpoint": "https://idp.example/token",
            "jwks_uri": "https://idp.example/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]
        });
        if let Some(methods) = methods {
            doc["token_endpoint_auth_methods_supported"] = serde_json::json!(methods);
        }
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn client_secret_post_only_when_basic_is_not_offered() {
        assert!(matches!(auth_type(&metadata(None)), AuthType::BasicAuth));
        assert!(matches!(
            auth_type(&metadata(Some(&[
                "client_secret_post",
                "client_secret_basic"
            ]))),
            AuthType::BasicAuth
        ));
        assert!(matches!(
            auth_type(&metadata(Some(&["private_key_jwt", "client_secret_post"]))),
            AuthType::RequestBody
        ));
    }

    #[test]
    fn unverified_email_is_dropped() {
        let mut identity = ExternalIdentity::default();
        fill_profile(&mut identity, Some("a@x"), Some(false), None, Some("A"));
        assert_eq!(identity.email, None);
        assert_eq!(identity.username, None);
        assert_eq!(identity.display_name.as_deref(), Some("A"));
        let mut identity = ExternalIdentity::default();
        fill_profile(&mut identity, Some("a@x"), None, None, None);
        assert_eq!(identity.email.as_deref(), Some("a@x"));
        assert_eq!(identity.username.as_deref(), Some("a@x"));
    }
}
