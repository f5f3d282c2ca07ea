//! km-auth's single-sign-on relying party against real counterparts: the panva `oidc-provider`
//! (Node.js, `tests/oidc-provider`; needs `npm ci` there) and km-testkit's protocol-level GitHub
//! fake.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use km_auth::{HttpSso, HttpSsoConfig};
use km_core::{
    AuthorizationStart, ExternalIdentity, PendingLogin, SecretText, SsoError, SsoProtocol,
    SsoProviderKind, SsoProviderSettings,
};
use km_testkit::github_oauth::{
    EXAMPLE_CLIENT_ID, EXAMPLE_CLIENT_SECRET, FakeGithub, GithubFakeConfig,
};
use km_testkit::oidc_provider::{
    CLIENT_ID, CLIENT_SECRET, OidcProvider, OidcProviderConfig, REDIRECT_URI, code_and_state,
    sign_in,
};
use poem::http::header;
use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{Body, EndpointExt as _, Request, Response, handler};

fn sso() -> HttpSso {
    km_testkit::install_crypto_provider();
    HttpSso::new(HttpSsoConfig::default()).unwrap()
}

fn oidc_settings(kind: SsoProviderKind, issuer: &str) -> SsoProviderSettings {
    SsoProviderSettings {
        id: "test-idp".into(),
        display_name: "Test IdP".into(),
        kind,
        issuer_url: issuer.into(),
        api_url: None,
        client_id: CLIENT_ID.into(),
        extra_scopes: vec!["groups".into(), "roles".into()],
        groups_claim: None,
        roles_claim: None,
    }
}

fn secret() -> SecretText {
    SecretText::from(CLIENT_SECRET)
}

/// Start, sign in as `login` through the provider's pages, return the start and the code.
async fn authorize(
    sso: &HttpSso,
    provider: &SsoProviderSettings,
    login: &str,
) -> (AuthorizationStart, String) {
    let start = sso.start(provider, REDIRECT_URI).await.unwrap();
    let callback = sign_in(&start.url, login, REDIRECT_URI).await.unwrap();
    let (code, state) = code_and_state(&callback).unwrap();
    assert_eq!(state, start.pending.state, "the provider echoes our state");
    (start, code)
}

async fn login(
    sso: &HttpSso,
    provider: &SsoProviderSettings,
    login: &str,
) -> Result<ExternalIdentity, SsoError> {
    let (start, code) = authorize(sso, provider, login).await;
    sso.finish(provider, &secret(), REDIRECT_URI, &start.pending, &code)
        .await
}

#[tokio::test]
async fn oidc_code_flow_yields_identity_with_groups_and_roles() {
    let idp = OidcProvider::start(OidcProviderConfig::standard())
        .await
        .unwrap();
    let sso = sso();
    let mut provider = oidc_settings(SsoProviderKind::Oidc, idp.issuer());
    provider.roles_claim = Some("roles".into());

    let start = sso.start(&provider, REDIRECT_URI).await.unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["nonce"], start.pending.nonce);
    assert_eq!(q["scope"], "openid profile email groups roles");
    assert!(!q.contains_key("code_verifier"));
    assert!(
        !start
            .url
            .contains(start.pending.pkce_verifier.expose_secret())
    );

    let callback = sign_in(&start.url, "alice", REDIRECT_URI).await.unwrap();
    let (code, state) = code_and_state(&callback).unwrap();
    assert_eq!(state, start.pending.state);
    let identity = sso
        .finish(&provider, &secret(), REDIRECT_URI, &start.pending, &code)
        .await
        .unwrap();
    assert_eq!(
        identity,
        ExternalIdentity {
            subject: "alice".into(),
            username: Some("alice".into()),
            email: Some("alice@example.test".into()),
            display_name: Some("Alice Example".into()),
            groups: vec!["km-admins".into(), "km-operators".into()],
            roles: vec!["key-admin".into()],
            groups_overage: false,
        }
    );

    // The same code cannot be used twice.
    let again = sso
        .finish(&provider, &secret(), REDIRECT_URI, &start.pending, &code)
        .await;
    assert!(matches!(again, Err(SsoError::Invalid(_))), "{again:?}");

    // Keycloak defaults: roles from the nested realm_access.roles claim.
    let keycloak = oidc_settings(SsoProviderKind::Keycloak, idp.issuer());
    let identity = login(&sso, &keycloak, "alice").await.unwrap();
    assert_eq!(identity.roles, vec!["realm-admin".to_owned()]);
    assert_eq!(identity.groups, vec!["km-admins", "km-operators"]);

    // A plain OIDC provider has no roles claim by default; bob has no roles anyway.
    let plain = oidc_settings(SsoProviderKind::Oidc, idp.issuer());
    let identity = login(&sso, &plain, "bob").await.unwrap();
    assert_eq!(identity.subject, "bob");
    assert_eq!(identity.groups, vec!["km-auditors"]);
    assert!(identity.roles.is_empty());
}

#[tokio::test]
async fn claims_missing_from_the_id_token_come_from_userinfo() {
    let mut config = OidcProviderConfig::standard();
    config.conform_id_token_claims = true;
    let idp = OidcProvider::start(config).await.unwrap();
    let sso = sso();
    let mut provider = oidc_settings(SsoProviderKind::Oidc, idp.issuer());
    provider.roles_claim = Some("roles".into());
    let identity = login(&sso, &provider, "alice").await.unwrap();
    assert_eq!(identity.subject, "alice");
    assert_eq!(identity.groups, vec!["km-admins", "km-operators"]);
    assert_eq!(identity.roles, vec!["key-admin"]);
    assert_eq!(identity.email.as_deref(), Some("alice@example.test"));
    assert_eq!(identity.display_name.as_deref(), Some("Alice Example"));
}

#[tokio::test]
async fn entra_group_overage_is_reported() {
    let idp = OidcProvider::start(OidcProviderConfig::standard())
        .await
        .unwrap();
    let sso = sso();
    let provider = oidc_settings(SsoProviderKind::EntraId, idp.issuer());
    let identity = login(&sso, &provider, "carol").await.unwrap();
    assert!(identity.groups_overage);
    assert!(identity.groups.is_empty());
    assert_eq!(identity.username.as_deref(), Some("carol@example.test"));
}

#[tokio::test]
async fn wrong_nonce_is_invalid() {
    let idp = OidcProvider::start(OidcProviderConfig::standard())
        .await
        .unwrap();
    let sso = sso();
    let provider = oidc_settings(SsoProviderKind::Oidc, idp.issuer());
    let (start, code) = authorize(&sso, &provider, "alice").await;
    let pending = PendingLogin {
        nonce: "not-the-nonce-we-sent".into(),
        ..start.pending.clone()
    };
    let result = sso
        .finish(&provider, &secret(), REDIRECT_URI, &pending, &code)
        .await;
    match result {
        Err(SsoError::Invalid(message)) => assert!(message.contains("nonce"), "{message}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused() {
    let idp = OidcProvider::start(OidcProviderConfig::standard())
        .await
        .unwrap();
    let sso = sso();
    let provider = oidc_settings(SsoProviderKind::Oidc, idp.issuer());
    let (start, code) = authorize(&sso, &provider, "alice").await;
    let pending = PendingLogin {
        pkce_verifier: SecretText::from("x".repeat(64)),
        ..start.pending.clone()
    };
    let result = sso
        .finish(&provider, &secret(), REDIRECT_URI, &pending, &code)
        .await;
    match result {
        Err(SsoError::Invalid(message)) => assert!(message.contains("invalid_grant"), "{message}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_client_secret_is_misconfigured() {
    let idp = OidcProvider::start(OidcProviderConfig::standard())
        .await
        .unwrap();
    let sso = sso();
    let provider = oidc_settings(SsoProviderKind::Oidc, idp.issuer());
    let (start, code) = authorize(&sso, &provider, "alice").await;
    let wrong = SecretText::from("definitely-wrong-secret");
    let result = sso
        .finish(&provider, &wrong, REDIRECT_URI, &start.pending, &code)
        .await;
    match &result {
        Err(SsoError::Misconfigured(message)) => {
            assert!(message.contains("invalid_client"), "{message}");
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    // Neither the error nor the pending login's Debug output shows a secret.
    let shown = format!("{result:?} {start:?} {sso:?}");
    assert!(!shown.contains("definitely-wrong-secret"));
    assert!(!shown.contains(CLIENT_SECRET));
    assert!(!shown.contains(start.pending.pkce_verifier.expose_secret()));
    // The nonce travels in the authorization URL, but the pending login never shows it.
    assert!(!format!("{:?}", start.pending).contains(&start.pending.nonce));
}

#[tokio::test]
async fn unreachable_issuer_is_unavailable_quickly() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sso = sso();
    let provider = oidc_settings(SsoProviderKind::Oidc, &format!("http://127.0.0.1:{port}"));
    let began = Instant::now();
    let result = sso.start(&provider, REDIRECT_URI).await;
    assert!(
        matches!(result, Err(SsoError::Unavailable(_))),
        "{result:?}"
    );
    let result = sso
        .finish(
            &provider,
            &secret(),
            REDIRECT_URI,
            &PendingLogin {
                state: "s".into(),
                nonce: "n".into(),
                pkce_verifier: SecretText::from("v".repeat(43)),
            },
            "code",
        )
        .await;
    assert!(
        matches!(result, Err(SsoError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );

    // A plain-http issuer that is not loopback is refused before any network traffic.
    let remote = oidc_settings(SsoProviderKind::Oidc, "http://idp.example.invalid");
    let result = sso.start(&remote, REDIRECT_URI).await;
    assert!(
        matches!(result, Err(SsoError::Misconfigured(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn rotated_signing_keys_are_refetched() {
    let mut idp = OidcProvider::start(OidcProviderConfig::standard())
        .await
        .unwrap();
    let sso = sso();
    let provider = oidc_settings(SsoProviderKind::Oidc, idp.issuer());
    let jwks_url = format!("{}/jwks", idp.issuer());
    let kids = |jwks: serde_json::Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = kids(reqwest::get(&jwks_url).await.unwrap().json().await.unwrap());

    // The first login caches discovery and the JWKS.
    login(&sso, &provider, "alice").await.unwrap();

    idp.restart_with_rotated_keys().await.unwrap();
    let after = kids(reqwest::get(&jwks_url).await.unwrap().json().await.unwrap());
    assert!(
        before.iter().all(|k| !after.contains(k)),
        "{before:?} {after:?}"
    );

    // The cached JWKS does not know the new key id; the adapter refetches it once.
    let identity = login(&sso, &provider, "alice").await.unwrap();
    assert_eq!(identity.subject, "alice");
}

/// A reverse proxy in front of the provider that can tamper with the token endpoint's ID token.
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    tamper: AtomicBool,
}

fn tamper_id_token(body: &[u8]) -> Vec<u8> {
    let mut answer: serde_json::Value = serde_json::from_slice(body).unwrap();
    let id_token = answer["id_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = "mallory".into();
    claims["groups"] = serde_json::json!(["km-admins", "everyone-important"]);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    answer["id_token"] = format!("{}.{}.{}", parts[0], payload, parts[2]).into();
    serde_json::to_vec(&answer).unwrap()
}

#[handler]
async fn forward(req: &Request, body: Body, Data(proxy): Data<&Arc<Proxy>>) -> Response {
    let target = format!(
        "{}{}",
        proxy.upstream,
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut outgoing = proxy.client.request(req.method().clone(), target);
    for (name, value) in req.headers() {
        if name != header::CONTENT_LENGTH && name != header::CONNECTION {
            outgoing = outgoing.header(name, value);
        }
    }
    let upstream = outgoing
        .body(body.into_vec().await.unwrap())
        .send()
        .await
        .unwrap();
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let mut bytes = upstream.bytes().await.unwrap().to_vec();
    if req.uri().path() == "/token" && status.is_success() && proxy.tamper.load(Ordering::SeqCst) {
        bytes = tamper_id_token(&bytes);
    }
    let mut response = Response::builder().status(status).body(bytes);
    for (name, value) in &headers {
        if name != header::CONTENT_LENGTH
            && name != header::TRANSFER_ENCODING
            && name != header::CONNECTION
        {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

#[tokio::test]
async fn tampered_id_token_is_invalid() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = OidcProviderConfig::standard();
    config.issuer = Some(proxy_url.clone());
    let idp = OidcProvider::start(config).await.unwrap();
    assert_eq!(idp.issuer(), proxy_url);
    let proxy = Arc::new(Proxy {
        upstream: format!("http://127.0.0.1:{}", idp.port()),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        tamper: AtomicBool::new(false),
    });
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    let app = forward.data(proxy.clone());
    let server = tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));

    let sso = sso();
    let provider = oidc_settings(SsoProviderKind::Oidc, &proxy_url);
    // Through the untouched proxy the login works ...
    let identity = login(&sso, &provider, "bob").await.unwrap();
    assert_eq!(identity.subject, "bob");

    // ... and with a modified ID token payload the signature no longer matches.
    proxy.tamper.store(true, Ordering::SeqCst);
    let result = login(&sso, &provider, "bob").await;
    match result {
        Err(SsoError::Invalid(message)) => assert!(message.contains("signature"), "{message}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    server.abort();
}

fn github_settings(fake: &FakeGithub) -> SsoProviderSettings {
    SsoProviderSettings {
        id: "github".into(),
        display_name: "GitHub".into(),
        kind: SsoProviderKind::Github,
        issuer_url: fake.base_url(),
        api_url: Some(fake.base_url()),
        client_id: EXAMPLE_CLIENT_ID.into(),
        extra_scopes: vec![],
        groups_claim: None,
        roles_claim: None,
    }
}

#[tokio::test]
async fn github_login_collects_orgs_and_teams_across_pages() {
    let fake = FakeGithub::start(GithubFakeConfig::example())
        .await
        .unwrap();
    let sso = sso();
    let provider = github_settings(&fake);
    let start = sso
        .start(&provider, "http://127.0.0.1:9/auth/sso/github/callback")
        .await
        .unwrap();
    assert!(start.pending.nonce.is_empty());
    assert!(start.url.contains("code_challenge_method=S256"));
    assert!(start.url.contains("scope=read%3Auser+read%3Aorg"));
    let callback = fake.approve(&start.url, "octocat").await.unwrap();
    let (code, state) = code_and_state(&callback).unwrap();
    assert_eq!(state, start.pending.state);

    let identity = sso
        .finish(
            &provider,
            &SecretText::from(EXAMPLE_CLIENT_SECRET),
            "http://127.0.0.1:9/auth/sso/github/callback",
            &start.pending,
            &code,
        )
        .await
        .unwrap();
    assert_eq!(identity.subject, "583231");
    assert_eq!(identity.username.as_deref(), Some("octocat"));
    assert_eq!(identity.display_name.as_deref(), Some("The Octocat"));
    assert_eq!(identity.email.as_deref(), Some("octocat@github.example"));
    assert_eq!(
        identity.groups,
        vec![
            "acme",
            "widgets",
            "acme/platform",
            "acme/security",
            "acme/sre",
            "acme/dba",
            "acme/oncall",
            "widgets/admins",
        ]
    );
    assert!(identity.roles.is_empty());
    // Six teams at two per page: three team pages, following the Link headers.
    let calls = fake.api_calls();
    let team_pages: Vec<_> = calls
        .iter()
        .filter(|c| c.starts_with("/user/teams"))
        .collect();
    assert_eq!(team_pages.len(), 3, "{calls:?}");
    assert!(team_pages[2].contains("page=3"), "{calls:?}");
}

#[tokio::test]
async fn github_wrong_secret_is_misconfigured_and_wrong_verifier_invalid() {
    let fake = FakeGithub::start(GithubFakeConfig::example())
        .await
        .unwrap();
    let sso = sso();
    let provider = github_settings(&fake);
    let redirect = "http://127.0.0.1:9/auth/sso/github/callback";

    let start = sso.start(&provider, redirect).await.unwrap();
    let (code, _) = code_and_state(&fake.approve(&start.url, "hubot").await.unwrap()).unwrap();
    let wrong = SecretText::from("not-the-github-secret");
    let result = sso
        .finish(&provider, &wrong, redirect, &start.pending, &code)
        .await;
    match &result {
        Err(SsoError::Misconfigured(message)) => {
            assert!(
                message.contains("incorrect_client_credentials"),
                "{message}"
            );
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    assert!(!format!("{result:?}").contains("not-the-github-secret"));

    let start = sso.start(&provider, redirect).await.unwrap();
    let (code, _) = code_and_state(&fake.approve(&start.url, "hubot").await.unwrap()).unwrap();
    let pending = PendingLogin {
        pkce_verifier: SecretText::from("y".repeat(64)),
        ..start.pending.clone()
    };
    let result = sso
        .finish(
            &provider,
            &SecretText::from(EXAMPLE_CLIENT_SECRET),
            redirect,
            &pending,
            &code,
        )
        .await;
    assert!(matches!(result, Err(SsoError::Invalid(_))), "{result:?}");

    // A user with no memberships signs in with no groups.
    let start = sso.start(&provider, redirect).await.unwrap();
    let (code, _) = code_and_state(&fake.approve(&start.url, "hubot").await.unwrap()).unwrap();
    let identity = sso
        .finish(
            &provider,
            &SecretText::from(EXAMPLE_CLIENT_SECRET),
            redirect,
            &start.pending,
            &code,
        )
        .await
        .unwrap();
    assert_eq!(identity.subject, "7");
    assert!(identity.groups.is_empty());
    assert_eq!(identity.display_name, None);
}
