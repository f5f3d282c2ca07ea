//! Single sign-on through the application layer and the REST API against a REAL OpenID Connect
//! provider process (npm `oidc-provider`, started on 127.0.0.1 by km-testkit): operators configure
//! a provider and its group mapping over the API, people sign in at the provider (its own login
//! and consent pages, driven headlessly), and the callback yields sessions whose bindings follow
//! the mapping — or a refusal that says why. The console's browser flow is in
//! tests/browser/sso.test.mjs.

use km_core::{AppError, RequestId};
use km_testkit::oidc_provider::{
    CLIENT_ID, CLIENT_SECRET, OidcProvider, OidcProviderConfig, REDIRECT_URI, code_and_state,
    sign_in,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{ApiWorld, Auth, ROOT_PASSWORD};

/// A provider whose accounts cover every mapping outcome.
async fn provider() -> OidcProvider {
    let mut config = OidcProviderConfig::standard();
    config.accounts.insert(
        "dave".to_owned(),
        json!({"name": "Dave Outsider", "preferred_username": "dave", "groups": ["contractors"]}),
    );
    config.accounts.insert(
        "erin".to_owned(),
        json!({"name": "Erin Both", "preferred_username": "erin", "groups": ["team-a", "team-b"]}),
    );
    OidcProvider::start(config).await.unwrap()
}

fn settings(issuer: &str) -> Value {
    json!({
        "local_login": true,
        "providers": [{
            "id": "corp",
            "display_name": "Corp SSO",
            "kind": "oidc",
            "issuer_url": issuer,
            "client_id": CLIENT_ID,
            "extra_scopes": ["groups", "roles"],
            "roles_claim": "roles",
            "enabled": true,
            "mapping": {
                "allowed_group_ids": ["km-admins", "km-auditors", "team-a", "team-b"],
                "rules": [
                    {"claim": "group", "value": "km-admins", "scope": "acme", "role": "user"},
                    {"claim": "role", "value": "key-admin", "scope": "acme", "role": "admin"},
                    {"claim": "group", "value": "km-auditors", "scope": "globex", "role": "readonly"},
                    {"claim": "group", "value": "team-a", "scope": "acme", "role": "user"},
                    {"claim": "group", "value": "team-b", "scope": "globex", "role": "user"}
                ]
            }
        }]
    })
}

async fn configured() -> (ApiWorld, OidcProvider, Auth) {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let provider = provider().await;
    let saved = world
        .call(
            Method::PUT,
            "/api/v1/platform/sso",
            &root,
            Some(settings(provider.issuer())),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    let secret = world
        .call(
            Method::PUT,
            "/api/v1/platform/sso/providers/corp/client-secret",
            &root,
            Some(json!({"client_secret": CLIENT_SECRET})),
        )
        .await;
    assert_eq!(secret.status, StatusCode::NO_CONTENT, "{}", secret.text);
    (world, provider, root)
}

/// Signs `login` in at the provider and completes the callback; the callback's state is returned
/// too, for replay checks.
async fn sso(world: &ApiWorld, login: &str) -> (Result<Auth, AppError>, String, String) {
    let url = world.app.sso_begin("corp", REDIRECT_URI).await.unwrap();
    let callback = sign_in(&url, login, REDIRECT_URI).await.unwrap();
    let (code, state) = code_and_state(&callback).unwrap();
    let session = world
        .app
        .sso_complete(&RequestId::generate(), "corp", &state, &code)
        .await
        .map(|session| Auth::Session {
            cookie: session.token.expose_secret().to_owned(),
            csrf: session.csrf_token.clone(),
        });
    (session, state, code)
}

async fn bindings(world: &ApiWorld, auth: &Auth) -> Vec<(String, String)> {
    let me = world.call(Method::GET, "/api/v1/account", auth, None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    let mut bindings: Vec<(String, String)> = me.body["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["scope"].as_str().unwrap().to_owned(),
                b["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    bindings.sort();
    bindings
}

fn pair(scope: &str, role: &str) -> (String, String) {
    (scope.to_owned(), role.to_owned())
}

#[tokio::test]
async fn groups_and_role_claims_from_a_real_provider_become_bindings() {
    let (world, _provider, _root) = configured().await;

    // alice: group km-admins → acme user, role claim key-admin → acme admin (highest wins).
    let (alice, state, code) = sso(&world, "alice").await;
    let alice = alice.unwrap();
    assert_eq!(bindings(&world, &alice).await, [pair("acme", "admin")]);
    let me = world
        .call(Method::GET, "/api/v1/account", &alice, None)
        .await;
    assert_eq!(me.body["account"]["sso_provider"], "corp", "{}", me.text);
    let acme = world
        .call(Method::GET, "/api/v1/tenants/acme", &alice, None)
        .await;
    assert_eq!(acme.status, StatusCode::OK, "{}", acme.text);
    let globex = world
        .call(Method::GET, "/api/v1/tenants/globex/status", &alice, None)
        .await;
    assert_eq!(globex.status, StatusCode::NOT_FOUND, "{}", globex.text);

    // Her password and second factor are the provider's business.
    let password = world
        .call(
            Method::POST,
            "/api/v1/account/password",
            &alice,
            Some(json!({"current_password": "x", "new_password": "granite orchard falcon three"})),
        )
        .await;
    assert_eq!(password.status, StatusCode::CONFLICT, "{}", password.text);
    assert_eq!(password.body["reason"], "managed_by_identity_provider");
    let totp = world
        .call(Method::POST, "/api/v1/account/totp/enrolment", &alice, None)
        .await;
    assert_eq!(totp.status, StatusCode::CONFLICT, "{}", totp.text);

    // The same callback again: the pending login was single use.
    let replay = world
        .app
        .sso_complete(&RequestId::generate(), "corp", &state, &code)
        .await
        .unwrap_err();
    assert_eq!(replay, AppError::LoginExpired);

    // erin: in team-a and team-b → both partitions.
    let (erin, _, _) = sso(&world, "erin").await;
    let erin = erin.unwrap();
    assert_eq!(
        bindings(&world, &erin).await,
        [pair("acme", "user"), pair("globex", "user")]
    );
    let mine = world
        .call(Method::GET, "/api/v1/partitions", &erin, None)
        .await;
    let ids: Vec<&str> = mine
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "globex"]);

    // bob: auditors → globex readonly only; acme is "not found" for him.
    let (bob, _, _) = sso(&world, "bob").await;
    let bob = bob.unwrap();
    assert_eq!(bindings(&world, &bob).await, [pair("globex", "readonly")]);
    let acme = world
        .call(Method::GET, "/api/v1/tenants/acme", &bob, None)
        .await;
    assert_eq!(acme.status, StatusCode::NOT_FOUND, "{}", acme.text);
}

#[tokio::test]
async fn people_outside_the_mapping_are_refused_with_a_reason() {
    let (world, _provider, _root) = configured().await;

    let (dave, _, _) = sso(&world, "dave").await;
    match dave.unwrap_err() {
        AppError::SsoRefused { reason, message } => {
            assert_eq!(reason, "not_in_allowed_group");
            assert!(message.contains("not in a group"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // carol's ID token left her groups out (Entra ID overage): refused, explained.
    let (carol, _, _) = sso(&world, "carol").await;
    match carol.unwrap_err() {
        AppError::SsoRefused { reason, message } => {
            assert_eq!(reason, "groups_overage");
            assert!(message.contains("too many"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Refusals are audited as failed sign-ins.
    let events = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    let failed = events
        .iter()
        .filter(|e| e.action == "login_sso" && e.outcome.as_str() == "failed")
        .count();
    assert!(failed >= 2, "{failed} failed SSO sign-ins audited");
}

#[tokio::test]
async fn the_preview_gives_the_same_decision_as_a_sign_in() {
    let (world, _provider, root) = configured().await;
    let preview = |body: Value| {
        let world = &world;
        let root = root.clone();
        async move {
            world
                .call(
                    Method::POST,
                    "/api/v1/platform/sso/preview",
                    &root,
                    Some(body),
                )
                .await
        }
    };
    let both = preview(json!({"provider": "corp", "groups": ["team-a", "team-b"]})).await;
    assert_eq!(both.status, StatusCode::OK, "{}", both.text);
    assert_eq!(both.body["outcome"], "granted");
    assert_eq!(
        both.body["bindings"],
        json!([{"scope": "acme", "role": "user"}, {"scope": "globex", "role": "user"}])
    );
    assert_eq!(both.body["matched_rules"], json!([3, 4]));

    let outsider = preview(json!({"provider": "corp", "groups": ["contractors"]})).await;
    assert_eq!(outsider.body["outcome"], "not_in_allowed_group");

    let unsaved = preview(json!({
        "mapping": {"allowed_group_ids": [], "rules": [
            {"claim": "group", "value": "ops", "scope": "*", "role": "readonly"}
        ]},
        "groups": ["ops"]
    }))
    .await;
    assert_eq!(
        unsaved.body["bindings"],
        json!([{"scope": "*", "role": "readonly"}])
    );

    let nothing =
        preview(json!({"mapping": {"allowed_group_ids": [], "rules": []}, "groups": ["x"]})).await;
    assert_eq!(nothing.body["outcome"], "no_partition_mapping");
}

#[tokio::test]
async fn the_client_secret_is_write_only_and_never_audited() {
    let (world, _provider, root) = configured().await;
    let settings = world
        .call(Method::GET, "/api/v1/platform/sso", &root, None)
        .await;
    assert_eq!(settings.status, StatusCode::OK);
    assert_eq!(settings.body["providers"][0]["client_secret_set"], true);
    assert!(!settings.text.contains(CLIENT_SECRET));
    let events = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    assert!(events.iter().any(|e| e.action == "manage_sso"));
    for event in &events {
        assert!(
            !serde_json::to_string(event)
                .unwrap()
                .contains(CLIENT_SECRET),
            "secret in audit event {}",
            event.seq
        );
    }
}

#[tokio::test]
async fn removing_a_provider_removes_its_client_secret() {
    let (world, provider, root) = configured().await;
    let removed = world
        .call(
            Method::PUT,
            "/api/v1/platform/sso",
            &root,
            Some(json!({"local_login": true, "providers": []})),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    let again = world
        .call(
            Method::PUT,
            "/api/v1/platform/sso",
            &root,
            Some(settings(provider.issuer())),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["providers"][0]["client_secret_set"], false);
}

#[tokio::test]
async fn bad_configurations_are_refused_with_what_to_fix() {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let mut bad = settings("ftp://idp.example");
    let answer = world
        .call(
            Method::PUT,
            "/api/v1/platform/sso",
            &root,
            Some(bad.clone()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("issuer_url"),
        "{}",
        answer.text
    );

    bad = settings("https://idp.example");
    bad["local_login"] = json!(false);
    bad["providers"][0]["enabled"] = json!(false);
    let answer = world
        .call(Method::PUT, "/api/v1/platform/sso", &root, Some(bad))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("local sign-in"),
        "{}",
        answer.text
    );

    let unknown = world
        .call(
            Method::PUT,
            "/api/v1/platform/sso/providers/nope/client-secret",
            &root,
            Some(json!({"client_secret": "x"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
}

#[tokio::test]
async fn turning_local_sign_in_off_keeps_platform_administrators_as_break_glass() {
    let (world, _provider, root) = configured().await;
    world.create_user(&root, "acme", "amy", "user").await;
    let mut settings = world
        .call(Method::GET, "/api/v1/platform/sso", &root, None)
        .await
        .body;
    settings["local_login"] = json!(false);
    for provider in settings["providers"].as_array_mut().unwrap() {
        provider
            .as_object_mut()
            .unwrap()
            .remove("client_secret_set");
    }
    let saved = world
        .call(Method::PUT, "/api/v1/platform/sso", &root, Some(settings))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);

    let options = world
        .call(
            Method::GET,
            "/api/v1/auth/login-options",
            &Auth::Anonymous,
            None,
        )
        .await;
    assert_eq!(
        options.body,
        json!({"local_login": false, "providers": [{"id": "corp", "display_name": "Corp SSO"}]})
    );

    for (username, password) in [("amy", crate::api::PASSWORD), ("nobody", "whatever it is")] {
        let refused = world
            .call(
                Method::POST,
                "/api/v1/auth/login",
                &Auth::Anonymous,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        assert_eq!(refused.body["reason"], "local_login_disabled");
    }
    // The platform administrator still gets in (break-glass when the provider is down).
    world.login("root", ROOT_PASSWORD).await;
}

#[tokio::test]
async fn github_organisations_and_teams_map_onto_partitions() {
    use km_testkit::github_oauth::{
        EXAMPLE_CLIENT_ID, EXAMPLE_CLIENT_SECRET, FakeGithub, GithubFakeConfig,
    };
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let github = FakeGithub::start(GithubFakeConfig::example())
        .await
        .unwrap();
    let settings = json!({
        "local_login": true,
        "providers": [{
            "id": "github",
            "display_name": "GitHub",
            "kind": "github",
            "issuer_url": github.base_url(),
            "api_url": github.base_url(),
            "client_id": EXAMPLE_CLIENT_ID,
            "enabled": true,
            "mapping": {
                "allowed_group_ids": ["acme", "widgets"],
                "rules": [
                    {"claim": "group", "value": "acme/security", "scope": "acme", "role": "admin"},
                    {"claim": "group", "value": "widgets", "scope": "globex", "role": "readonly"}
                ]
            }
        }]
    });
    let saved = world
        .call(Method::PUT, "/api/v1/platform/sso", &root, Some(settings))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    world
        .call(
            Method::PUT,
            "/api/v1/platform/sso/providers/github/client-secret",
            &root,
            Some(json!({"client_secret": EXAMPLE_CLIENT_SECRET})),
        )
        .await;

    let sign_in_as = |login: &'static str| {
        let world = &world;
        let github = &github;
        async move {
            let url = world.app.sso_begin("github", REDIRECT_URI).await.unwrap();
            let callback = github.approve(&url, login).await.unwrap();
            let (code, state) = code_and_state(&callback).unwrap();
            world
                .app
                .sso_complete(&RequestId::generate(), "github", &state, &code)
                .await
        }
    };
    // octocat: team acme/security (found on the third page of teams) and org widgets.
    let session = sign_in_as("octocat").await.unwrap();
    assert_eq!(session.username.as_str(), "github:583231");
    let octocat = Auth::Session {
        cookie: session.token.expose_secret().to_owned(),
        csrf: session.csrf_token.clone(),
    };
    assert_eq!(
        bindings(&world, &octocat).await,
        [pair("acme", "admin"), pair("globex", "readonly")]
    );
    // hubot belongs to no organisation.
    match sign_in_as("hubot").await.unwrap_err() {
        AppError::SsoRefused { reason, .. } => assert_eq!(reason, "not_in_allowed_group"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
