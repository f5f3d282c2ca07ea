//! Single sign-on in the console, in-process over the real app layer (tests/support): the sign-in
//! page's provider buttons and break-glass form, the operators' pages (providers, mapping table,
//! preview) and the refusals — non-operators, callbacks this browser did not start — and the whole
//! browser flow against a REAL OpenID Connect provider process (npm `oidc-provider`, started by
//! km-testkit), whose login and consent pages are played over HTTP. The headless-Chromium version
//! against the real binary is tests/browser/sso.test.mjs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use km_testkit::oidc_provider::{
    CLIENT_ID, CLIENT_SECRET, OidcProvider, OidcProviderConfig, sign_in as provider_sign_in,
};
use poem::http::{StatusCode, header};
use support::*;

/// The host the tests' requests are sent to (the console builds redirect URIs from it).
const HOST: &str = "127.0.0.1:9";
/// The redirect URI of the provider `corp` at [`HOST`].
const REDIRECT_URI: &str = "http://127.0.0.1:9/login/sso/corp/callback";

/// The provider form for `corp`, with the mapping grp-a → acme user, grp-b → globex user.
fn corp_form(csrf: &str, issuer: &str, enabled: bool) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("csrf", csrf.to_owned()),
        ("id", "corp".to_owned()),
        ("display_name", "Corp SSO".to_owned()),
        ("kind", "oidc".to_owned()),
        ("issuer_url", issuer.to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("client_secret", CLIENT_SECRET.to_owned()),
        ("extra_scopes", "groups".to_owned()),
        ("allowed_groups", "grp-a\r\ngrp-b".to_owned()),
        ("rule_claim_0", "group".to_owned()),
        ("rule_value_0", "grp-a".to_owned()),
        ("rule_scope_0", "acme".to_owned()),
        ("rule_role_0", "user".to_owned()),
        ("rule_claim_1", "group".to_owned()),
        ("rule_value_1", "grp-b".to_owned()),
        ("rule_scope_1", "globex".to_owned()),
        ("rule_role_1", "user".to_owned()),
        ("rule_claim_2", "group".to_owned()),
        ("rule_value_2", String::new()),
        ("rule_scope_2", String::new()),
        ("rule_role_2", "readonly".to_owned()),
    ];
    if enabled {
        form.push(("enabled", "on".to_owned()));
    }
    form
}

/// The colour the sidebar switcher gives a partition (`data-colour`).
fn switcher_colour(page: &Page, id: &str) -> String {
    let option = between(&page.body, &format!("data-partition=\"{id}\""), ">");
    between(&option, "data-colour=\"", "\"")
}

/// Whether a response set the session cookie.
fn sets_session(page: &Page) -> bool {
    page.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|value| {
            value.to_str().unwrap().starts_with("km_session=")
                && !value.to_str().unwrap().contains("Max-Age=0")
        })
}

#[tokio::test]
async fn operators_configure_providers_and_preview_the_mapping() {
    let world = world().await;
    let mut root = first_admin(&world).await;

    // No provider yet: the sign-in page is the password form alone.
    let mut anonymous = Jar::default();
    let login = world.get("/login", &mut anonymous).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(!login.body.contains("data-testid=\"sso-providers\""));
    assert!(!login.body.contains("data-testid=\"break-glass\""));

    // A member is refused every operator page; the navigation does not offer it.
    let mut reader = signed_in_reader(&world, &mut root).await;
    let home = world.get("/", &mut reader).await;
    assert!(!home.body.contains("data-nav=\"platform-sso\""));
    for path in ["/platform/sso", "/platform/sso/new", "/platform/sso/corp"] {
        let page = world.get(path, &mut reader).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("data-status=\"403\""), "{path}");
    }
    let forged = world
        .post(
            "/platform/sso/new",
            &pairs(&corp_form(&home.csrf(), "https://idp.example", true)),
            &mut reader,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // The operator: navigation entry, empty list, the form with the registered partitions.
    let home = world.get("/", &mut root).await;
    assert!(home.body.contains("data-nav=\"platform-sso\""));
    let acme_colour = switcher_colour(&home, "acme");
    let globex_colour = switcher_colour(&home, "globex");
    assert_ne!(acme_colour, globex_colour);
    let list = world.get("/platform/sso", &mut root).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("data-testid=\"providers-empty\""));
    let new = world.get("/platform/sso/new", &mut root).await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(
        new.body
            .contains("<option value=\"acme\">Acme Corp (acme)</option>")
    );
    assert!(
        new.body
            .contains("<option value=\"globex\">Globex (globex)</option>")
    );
    assert!(new.body.contains("<template data-rule-template>"));
    assert!(
        new.body.contains("name=\"rule_value_2\""),
        "empty rows without JavaScript"
    );
    assert!(
        !new.body.contains("style="),
        "no inline styles under the CSP"
    );
    let csrf = new.csrf();

    // A rule without a partition is explained; the secret is not echoed.
    let mut broken = corp_form(&csrf, "https://idp.example", false);
    broken.retain(|(name, _)| *name != "rule_scope_1");
    broken.push(("rule_scope_1", String::new()));
    let refused = world
        .post("/platform/sso/new", &pairs(&broken), &mut root)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = between(&refused.body, "data-testid=\"form-error\"", "</p>");
    assert!(error.contains("Mapping rule 2"), "{error}");
    assert!(!refused.body.contains(CLIENT_SECRET));
    assert!(
        refused.body.contains("value=\"grp-b\""),
        "the rows are kept"
    );

    // Saved (disabled): listed with its secret stored, but not on the sign-in page.
    let saved = world
        .post(
            "/platform/sso/new",
            &pairs(&corp_form(&csrf, "https://idp.example", false)),
            &mut root,
        )
        .await;
    assert_eq!(
        saved.location.as_deref(),
        Some("/platform/sso/corp?done=sso_provider_saved_secret#main"),
        "{}",
        saved.body
    );
    let again = world
        .post(
            "/platform/sso/new",
            &pairs(&corp_form(&csrf, "https://idp.example", false)),
            &mut root,
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("There is a provider"), "{}", again.body);
    let list = world.get("/platform/sso", &mut root).await;
    let row = between(&list.body, "data-provider-row=\"corp\"", "</tr>");
    assert!(
        row.contains("Corp SSO") && row.contains("https://idp.example"),
        "{row}"
    );
    assert!(row.contains("stored") && row.contains("disabled"), "{row}");
    let login = world.get("/login", &mut anonymous).await;
    assert!(!login.body.contains("data-testid=\"sso-providers\""));

    // The provider page shows the saved mapping and the redirect URI to register.
    let page = world
        .get(
            "/platform/sso/corp?done=sso_provider_saved_secret",
            &mut root,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Provider saved, and its client secret stored.")
    );
    assert!(page.body.contains("A secret is stored"));
    assert!(!page.body.contains(CLIENT_SECRET));
    assert!(page.body.contains("/login/sso/corp/callback"));
    assert!(
        page.body
            .contains("name=\"rule_value_1\" type=\"text\" value=\"grp-b\"")
    );
    assert!(page.body.contains("<option value=\"globex\" selected>"));

    // The preview: both groups give both partitions, each in its colour; strangers are refused.
    let preview = world
        .post(
            "/platform/sso/corp/preview",
            &[
                ("csrf", &page.csrf()),
                ("groups", "grp-a\r\ngrp-b"),
                ("roles", ""),
            ],
            &mut root,
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("data-outcome=\"granted\""));
    let bindings = between(&preview.body, "data-testid=\"preview-bindings\"", "</ul>");
    let acme = between(&bindings, "data-binding=\"acme\"", "</li>");
    assert!(
        acme.contains("data-role=\"user\"") && acme.contains("Acme Corp (acme)"),
        "{acme}"
    );
    assert!(acme.contains(&format!("fill=\"{acme_colour}\"")), "{acme}");
    let globex = between(&bindings, "data-binding=\"globex\"", "</li>");
    assert!(globex.contains("Globex (globex)"), "{globex}");
    assert!(
        globex.contains(&format!("fill=\"{globex_colour}\"")),
        "{globex}"
    );
    let matched = between(&preview.body, "data-testid=\"preview-matched\"", "</ul>");
    assert!(
        matched.contains("group grp-a → Acme Corp (acme): user"),
        "{matched}"
    );
    assert!(
        matched.contains("group grp-b → Globex (globex): user"),
        "{matched}"
    );
    let outsider = world
        .post(
            "/platform/sso/corp/preview",
            &[
                ("csrf", &page.csrf()),
                ("groups", "contractors"),
                ("roles", ""),
            ],
            &mut root,
        )
        .await;
    assert!(
        outsider
            .body
            .contains("data-outcome=\"not_in_allowed_group\"")
    );
    assert!(!outsider.body.contains("data-testid=\"preview-bindings\""));

    // Password sign-in cannot be turned off while no provider is enabled (the App says why).
    let refused = world
        .post("/platform/sso", &[("csrf", &page.csrf())], &mut root)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("at least one provider is enabled"),
        "{}",
        refused.body
    );

    // Enabled (the secret kept): the sign-in page offers it.
    let mut enabled = corp_form(&page.csrf(), "https://idp.example", true);
    enabled.retain(|(name, _)| *name != "client_secret");
    let updated = world
        .post("/platform/sso/corp", &pairs(&enabled), &mut root)
        .await;
    assert_eq!(
        updated.location.as_deref(),
        Some("/platform/sso/corp?done=sso_provider_saved#main"),
        "{}",
        updated.body
    );
    let list = world.get("/platform/sso", &mut root).await;
    let row = between(&list.body, "data-provider-row=\"corp\"", "</tr>");
    assert!(row.contains("stored") && row.contains("enabled"), "{row}");
    let login = world.get("/login", &mut anonymous).await;
    assert!(login.body.contains("href=\"/login/sso/corp\""));
    assert!(login.body.contains("Sign in with Corp SSO"));
    assert!(login.body.contains("data-testid=\"login-form\""));
    assert!(!login.body.contains("data-testid=\"break-glass\""));

    // Password sign-in off: the form folds away as break-glass; members are refused with the
    // App's message, platform administrators still get in.
    let off = world
        .post("/platform/sso", &[("csrf", &page.csrf())], &mut root)
        .await;
    assert_eq!(
        off.location.as_deref(),
        Some("/platform/sso?done=sso_saved#main"),
        "{}",
        off.body
    );
    let login = world.get("/login", &mut anonymous).await;
    let folded = between(&login.body, "data-testid=\"break-glass\"", "</details>");
    assert!(folded.contains("Administrator sign-in (break-glass)"));
    assert!(folded.contains("data-testid=\"login-form\""));
    assert!(!between(&login.body, "<details", ">").contains("open"));
    let refused = world
        .post(
            "/login",
            &[
                ("csrf", &login.csrf()),
                ("username", "reader"),
                ("password", READER_PASSWORD),
            ],
            &mut anonymous,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let error = between(&refused.body, "data-testid=\"form-error\"", "</p>");
    assert!(
        error.contains("sign-in with a password is turned off"),
        "{error}"
    );
    assert!(between(&refused.body, "<details", ">").contains("open"));
    sign_in(&world, "root", ADMIN_PASSWORD).await;

    // The last enabled provider cannot go while password sign-in is off.
    let refused = world
        .post(
            "/platform/sso/corp/delete",
            &[("csrf", &page.csrf())],
            &mut root,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("at least one provider is enabled"));
    let on = world
        .post(
            "/platform/sso",
            &[("csrf", page.csrf().as_str()), ("local_login", "on")],
            &mut root,
        )
        .await;
    assert_eq!(on.status, StatusCode::SEE_OTHER);
    let deleted = world
        .post(
            "/platform/sso/corp/delete",
            &[("csrf", &page.csrf())],
            &mut root,
        )
        .await;
    assert_eq!(
        deleted.location.as_deref(),
        Some("/platform/sso?done=sso_provider_deleted#main")
    );
    let login = world.get("/login", &mut anonymous).await;
    assert!(!login.body.contains("data-testid=\"sso-providers\""));
    assert_eq!(
        world.get("/platform/sso/corp", &mut root).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn callbacks_this_browser_did_not_start_are_refused_without_a_session() {
    let world = world().await;
    let _root = first_admin(&world).await;
    let mut stranger = Jar::default();

    // An unknown state: the refusal page, 400, and no session.
    let page = world
        .get(
            "/login/sso/corp/callback?code=abc&state=unknown-state-123",
            &mut stranger,
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("Sign-in refused"));
    assert!(page.body.contains("expired or was already used"));
    assert!(page.body.contains("href=\"/login\""));
    assert!(!sets_session(&page));
    assert_security_headers(&page);

    // Even with a forged browser binding, the App knows no such sign-in.
    stranger
        .0
        .insert("km_sso_state".to_owned(), "unknown-state-123".to_owned());
    let page = world
        .get(
            "/login/sso/corp/callback?code=abc&state=unknown-state-123",
            &mut stranger,
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("data-reason=\"login_expired\""));
    assert!(!sets_session(&page));
    assert!(
        !stranger.0.contains_key("km_sso_state"),
        "the binding is cleared"
    );

    // A provider error this browser did not ask for is not shown.
    let page = world
        .get(
            "/login/sso/corp/callback?error=access_denied&error_description=call+555",
            &mut stranger,
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(!page.body.contains("555"));

    // Unknown providers.
    let page = get_at_host(&world, "/login/sso/nope", &mut stranger).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Sign-in refused"));
    let page = get_at_host(&world, "/login/sso/Not%20an%20id", &mut stranger).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

/// GET `path` at [`HOST`] (a path and query, or an absolute URL at [`HOST`]).
async fn get_at_host(world: &World, target: &str, jar: &mut Jar) -> Page {
    let path = target
        .strip_prefix(&format!("http://{HOST}"))
        .unwrap_or(target);
    let response = world
        .client
        .get(path)
        .header(header::HOST, HOST)
        .header(header::COOKIE, jar.header())
        .send()
        .await;
    read(response, jar).await
}

/// Signs `login` in at the provider from a fresh browser: the console's redirect, the provider's
/// pages, and the callback URL the provider sends the browser to.
async fn start_sign_in(world: &World, login: &str) -> (Jar, String) {
    let mut jar = Jar::default();
    let start = get_at_host(world, "/login/sso/corp", &mut jar).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    assert!(jar.0.contains_key("km_sso_state"));
    let authorization = start.location.unwrap();
    assert!(
        authorization.contains(&format!(
            "redirect_uri={}",
            REDIRECT_URI.replace(':', "%3A").replace('/', "%2F")
        )),
        "{authorization}"
    );
    let callback = provider_sign_in(&authorization, login, REDIRECT_URI)
        .await
        .unwrap();
    (jar, callback)
}

#[tokio::test]
async fn people_sign_in_at_a_real_provider_with_the_roles_their_groups_map_to() {
    let mut config = OidcProviderConfig::standard();
    config.clients[0].redirect_uris = vec![REDIRECT_URI.to_owned()];
    let provider = OidcProvider::start(config).await.unwrap();
    let world = world().await;
    let mut root = first_admin(&world).await;
    let new = world.get("/platform/sso/new", &mut root).await;
    // The standard accounts: alice is in km-admins and km-operators, bob in km-auditors.
    let mut form = corp_form(&new.csrf(), provider.issuer(), true);
    for (name, value) in &mut form {
        match (*name, value.as_str()) {
            ("allowed_groups", _) => *value = "km-admins\nkm-auditors".to_owned(),
            ("rule_value_0", _) => *value = "km-admins".to_owned(),
            ("rule_value_1", _) => *value = "km-operators".to_owned(),
            _ => {}
        }
    }
    let saved = world
        .post("/platform/sso/new", &pairs(&form), &mut root)
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);

    // alice: both partitions as user; the callback opens a session like a password sign-in.
    let (mut alice, callback) = start_sign_in(&world, "alice").await;
    let landed = get_at_host(&world, &callback, &mut alice).await;
    assert_eq!(landed.status, StatusCode::OK, "{}", landed.body);
    assert!(
        landed
            .body
            .contains("http-equiv=\"refresh\" content=\"0;url=/\"")
    );
    let session = landed
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("km_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!alice.0.contains_key("km_sso_state"));
    let home = get_at_host(&world, "/", &mut alice).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("data-partition=\"acme\""));
    assert!(home.body.contains("data-partition=\"globex\""));
    assert!(!home.body.contains("data-nav=\"platform-sso\""));

    // The same callback again: refused, no new session.
    let replay = get_at_host(&world, &callback, &mut alice).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(!sets_session(&replay));

    // bob: in an allowed group that no rule maps.
    let (mut bob, callback) = start_sign_in(&world, "bob").await;
    let refused = get_at_host(&world, &callback, &mut bob).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .body
            .contains("data-reason=\"no_partition_mapping\"")
    );
    assert!(!sets_session(&refused));

    // dave (no groups at all): not in an allowed group, said in words.
    let (mut dave, callback) = start_sign_in(&world, "dave").await;
    let refused = get_at_host(&world, &callback, &mut dave).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let message = between(&refused.body, "data-testid=\"sso-refused-message\">", "<");
    assert!(
        message.contains("not in a group that may use keymanager"),
        "{message}"
    );
    assert!(
        !refused.body.contains("code="),
        "no raw callback parameters on the page"
    );
}
