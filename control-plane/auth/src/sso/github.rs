//! GitHub (OAuth2, not OIDC): authorize + access_token on the web base, identity and memberships
//! from the REST API (`/user`, `/user/orgs`, `/user/teams`, paginated).

use openidconnect::{CsrfToken, PkceCodeChallenge};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue, LINK};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use km_core::{
    AuthorizationStart, ExternalIdentity, PendingLogin, SecretText, SsoError, SsoProviderSettings,
};

use super::http::{Http, sanitize};

/// Scopes every GitHub login asks for.
const DEFAULT_SCOPES: [&str; 2] = ["read:user", "read:org"];
const API_VERSION: &str = "2022-11-28";

/// The web base (`https://github.com` or a GitHub Enterprise Server), without a trailing slash.
fn web_base(provider: &SsoProviderSettings, allow_plain_http: bool) -> Result<Url, SsoError> {
    base_url(&provider.issuer_url, "issuer", allow_plain_http)
}

/// The REST API base: `api_url`, else `https://api.github.com` for github.com and
/// `<issuer>/api/v3` for a GitHub Enterprise Server (never another host than configured).
fn api_base(provider: &SsoProviderSettings, allow_plain_http: bool) -> Result<Url, SsoError> {
    if let Some(api) = provider.api_url.as_deref().filter(|a| !a.trim().is_empty()) {
        return base_url(api, "API", allow_plain_http);
    }
    let web = web_base(provider, allow_plain_http)?;
    if web.host_str() == Some("github.com") {
        return base_url("https://api.github.com", "API", allow_plain_http);
    }
    base_url(
        &format!("{}/api/v3", web.as_str().trim_end_matches('/')),
        "API",
        allow_plain_http,
    )
}

fn base_url(text: &str, what: &str, allow_plain_http: bool) -> Result<Url, SsoError> {
    let url = Url::parse(text.trim_end_matches('/'))
        .map_err(|e| SsoError::Misconfigured(format!("the GitHub {what} URL {text:?}: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback || allow_plain_http => Ok(url),
        _ => Err(SsoError::Misconfigured(format!(
            "the GitHub {what} URL {text:?} must use https"
        ))),
    }
}

/// `base` + `/path`, keeping any path the base has (`https://ghe.example/api/v3` + `/user`).
fn endpoint(base: &Url, path: &str) -> Result<Url, SsoError> {
    let text = format!("{}/{}", base.as_str().trim_end_matches('/'), path);
    Url::parse(&text).map_err(|e| SsoError::Misconfigured(format!("GitHub URL {text:?}: {e}")))
}

pub(crate) fn start(
    provider: &SsoProviderSettings,
    redirect_uri: &str,
    allow_plain_http: bool,
) -> Result<AuthorizationStart, SsoError> {
    Url::parse(redirect_uri).map_err(|e| {
        SsoError::Misconfigured(format!(
            "the redirect URI {redirect_uri:?} is not a URL: {e}"
        ))
    })?;
    let mut scopes: Vec<&str> = DEFAULT_SCOPES.to_vec();
    for scope in provider
        .extra_scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
    {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = CsrfToken::new_random();
    let mut url = endpoint(
        &web_base(provider, allow_plain_http)?,
        "login/oauth/authorize",
    )?;
    url.query_pairs_mut()
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state.secret())
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", challenge.method().as_str())
        .append_pair("allow_signup", "false");
    Ok(AuthorizationStart {
        url: url.to_string(),
        pending: PendingLogin {
            state: state.secret().clone(),
            nonce: String::new(),
            pkce_verifier: SecretText::new(verifier.secret().clone()),
        },
    })
}

/// GitHub's access_token answer: a token, or (with HTTP 200) an error.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: Org,
}

fn token_error(code: &str, description: Option<&str>) -> SsoError {
    let mut message = format!("GitHub's token endpoint answered {}", sanitize(code));
    if let Some(description) = description {
        message.push_str(": ");
        message.push_str(&sanitize(description));
    }
    match code {
        "incorrect_client_credentials"
        | "redirect_uri_mismatch"
        | "invalid_client"
        | "unauthorized_client" => SsoError::Misconfigured(message),
        "unverified_user_email" | "access_denied" => SsoError::Denied(message),
        _ => SsoError::Invalid(message),
    }
}

async fn exchange_code(
    http: &Http,
    token_url: Url,
    provider: &SsoProviderSettings,
    client_secret: &SecretText,
    redirect_uri: &str,
    pending: &PendingLogin,
    code: &str,
) -> Result<SecretText, SsoError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &provider.client_id)
        .append_pair("client_secret", client_secret.expose_secret())
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", pending.pkce_verifier.expose_secret())
        .finish();
    let request = http
        .request(Method::POST, token_url)
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        )
        .body(body)
        .build()
        .map_err(|e| {
            SsoError::Misconfigured(format!("GitHub token request: {}", e.without_url()))
        })?;
    let answer = http
        .execute(request)
        .await
        .map_err(|e| e.unavailable("GitHub's token request"))?;
    let parsed: Option<TokenAnswer> = serde_json::from_slice(&answer.body).ok();
    match parsed {
        Some(TokenAnswer {
            error: Some(code),
            error_description,
            ..
        }) => Err(token_error(&code, error_description.as_deref())),
        Some(TokenAnswer {
            access_token: Some(token),
            ..
        }) if answer.status.is_success() && !token.is_empty() => Ok(SecretText::new(token)),
        _ if answer.status.is_server_error() => Err(SsoError::Unavailable(format!(
            "GitHub's token endpoint answered HTTP {}",
            answer.status
        ))),
        _ => Err(SsoError::Invalid(format!(
            "GitHub's token endpoint answered HTTP {} without an access token",
            answer.status
        ))),
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.trim_start_matches('<').trim_end_matches('>'))
    })
}

/// One GET against the API with the access token; 401/403 mean GitHub refused the person.
async fn get(
    http: &Http,
    url: Url,
    token: &SecretText,
) -> Result<(Vec<u8>, Option<String>), SsoError> {
    let what = format!("GitHub API {}", url.path());
    let request = http
        .request(Method::GET, url)
        .bearer_auth(token.expose_secret())
        .header(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        )
        .header(
            "X-GitHub-Api-Version",
            HeaderValue::from_static(API_VERSION),
        )
        .build()
        .map_err(|e| SsoError::Misconfigured(format!("{what}: {}", e.without_url())))?;
    let answer = http
        .execute(request)
        .await
        .map_err(|e| e.unavailable(&what))?;
    match answer.status {
        s if s.is_success() => {
            let next = answer
                .headers
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(str::to_owned);
            Ok((answer.body, next))
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(SsoError::Denied(format!(
            "{what} refused the access token (HTTP {})",
            answer.status
        ))),
        s => Err(SsoError::Unavailable(format!("{what} answered HTTP {s}"))),
    }
}

fn parse<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, SsoError> {
    serde_json::from_slice(body).map_err(|e| {
        SsoError::Unavailable(format!(
            "GitHub API {what} answered unusable JSON: {}",
            sanitize(&e.to_string())
        ))
    })
}

/// Every item of a paginated list (`per_page=100`, following `rel="next"` on the API's own
/// origin, at most `max_pages` pages).
async fn list<T: DeserializeOwned>(
    http: &Http,
    api: &Url,
    path: &str,
    token: &SecretText,
    max_pages: usize,
) -> Result<Vec<T>, SsoError> {
    let mut url = endpoint(api, path)?;
    url.query_pairs_mut().append_pair("per_page", "100");
    let mut items = Vec::new();
    for page in 1..=max_pages.max(1) {
        let (body, next) = get(http, url, token).await?;
        let mut batch: Vec<T> = parse(path, &body)?;
        items.append(&mut batch);
        let Some(next) = next else {
            return Ok(items);
        };
        let next = Url::parse(&next).map_err(|e| {
            SsoError::Invalid(format!("GitHub API {path}: unusable next-page link: {e}"))
        })?;
        if next.origin() != api.origin() {
            return Err(SsoError::Invalid(format!(
                "GitHub API {path}: the next-page link leaves the API host"
            )));
        }
        if page == max_pages.max(1) {
            tracing::warn!(
                path,
                max_pages,
                "GitHub membership list truncated at the page limit"
            );
            break;
        }
        url = next;
    }
    Ok(items)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish(
    http: &Http,
    provider: &SsoProviderSettings,
    client_secret: &SecretText,
    redirect_uri: &str,
    pending: &PendingLogin,
    code: &str,
    allow_plain_http: bool,
    max_pages: usize,
) -> Result<ExternalIdentity, SsoError> {
    let web = web_base(provider, allow_plain_http)?;
    let api = api_base(provider, allow_plain_http)?;
    let token_url = endpoint(&web, "login/oauth/access_token")?;
    let token = exchange_code(
        http,
        token_url,
        provider,
        client_secret,
        redirect_uri,
        pending,
        code,
    )
    .await?;

    let (body, _) = get(http, endpoint(&api, "user")?, &token).await?;
    let user: User = parse("/user", &body)?;
    let orgs: Vec<Org> = list(http, &api, "user/orgs", &token, max_pages).await?;
    let teams: Vec<Team> = list(http, &api, "user/teams", &token, max_pages).await?;

    let mut groups: Vec<String> = Vec::new();
    let mut add = |g: String| {
        if !groups.contains(&g) {
            groups.push(g);
        }
    };
    for org in orgs {
        add(org.login);
    }
    for team in teams {
        add(team.organization.login.clone());
        add(format!("{}/{}", team.organization.login, team.slug));
    }
    Ok(ExternalIdentity {
        subject: user.id.to_string(),
        username: Some(user.login),
        email: user.email.filter(|e| !e.is_empty()),
        display_name: user.name.filter(|n| !n.is_empty()),
        groups,
        roles: Vec::new(),
        groups_overage: false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn settings(issuer: &str, api: Option<&str>) -> SsoProviderSettings {
        SsoProviderSettings {
            id: "gh".into(),
            display_name: "GitHub".into(),
            kind: km_core::SsoProviderKind::Github,
            issuer_url: issuer.into(),
            api_url: api.map(str::to_owned),
            client_id: "Iv1.abc".into(),
            extra_scopes: vec!["user:email".into(), "read:org".into()],
            groups_claim: None,
            roles_claim: None,
        }
    }

    #[test]
    fn api_base_defaults() {
        let gh = settings("https://github.com/", None);
        assert_eq!(
            api_base(&gh, false).unwrap().as_str(),
            "https://api.github.com/"
        );
        let ghe = settings("https://ghe.example", None);
        assert_eq!(
            endpoint(&api_base(&ghe, false).unwrap(), "user")
                .unwrap()
                .as_str(),
            "https://ghe.example/api/v3/user"
        );
        let explicit = settings("https://github.com", Some("https://api.example/"));
        assert_eq!(
            endpoint(&api_base(&explicit, false).unwrap(), "user/teams")
                .unwrap()
                .as_str(),
            "https://api.example/user/teams"
        );
        assert!(matches!(
            api_base(&settings("http://github.example", None), false),
            Err(SsoError::Misconfigured(_))
        ));
    }

    #[test]
    fn authorization_url_has_pkce_and_scopes() {
        let start = start(
            &settings("https://github.com", None),
            "https://km.example/auth/sso/gh/callback",
            false,
        )
        .unwrap();
        let url = Url::parse(&start.url).unwrap();
        assert_eq!(url.path(), "/login/oauth/authorize");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["scope"], "read:user read:org user:email");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], start.pending.state);
        assert!(start.pending.nonce.is_empty());
        assert!(start.pending.pkce_verifier.char_count() >= 43);
    }

    #[test]
    fn link_header_next() {
        let link = "<https://api.github.com/user/teams?per_page=100&page=2>; rel=\"next\", \
                    <https://api.github.com/user/teams?per_page=100&page=5>; rel=\"last\"";
        assert_eq!(
            next_link(link),
            Some("https://api.github.com/user/teams?per_page=100&page=2")
        );
        assert_eq!(
            next_link("<https://api.github.com/x?page=1>; rel=\"prev\""),
            None
        );
    }

    #[test]
    fn token_errors_are_classified() {
        assert!(matches!(
            token_error("incorrect_client_credentials", None),
            SsoError::Misconfigured(_)
        ));
        assert!(matches!(
            token_error("bad_verification_code", Some("expired")),
            SsoError::Invalid(_)
        ));
        assert!(matches!(
            token_error("unverified_user_email", None),
            SsoError::Denied(_)
        ));
    }
}
