//! The console served in-process over the real app layer (identity, audit, state store, partition
//! registry; tests/support) on the real TSB emulator: the whole first-run journey through plain HTTP, as a
//! browser would make it (cookies kept by hand), plus the refusals — anonymous, CSRF,
//! cross-origin, readonly — and the partition pages (registry, onboarding wizard, edit,
//! members' status and own credentials). The headless-Chromium version of these journeys
//! against the real binary is tests/browser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use km_auth::TotpRsProvider;
use km_core::{Clock, SystemClock};
use poem::http::{StatusCode, header};

mod support;

use support::*;

#[tokio::test]
async fn first_run_journey_and_role_based_refusals() {
    let world = world().await;
    let mut admin = Jar::default();

    // Before setup, sign-in sends people to the setup page; pages need a session.
    let page = world.get("/login", &mut admin).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/setup"));
    let page = world.get("/users", &mut admin).await;
    assert_eq!(page.location.as_deref(), Some("/login"));

    let setup = world.get("/setup", &mut admin).await;
    assert_eq!(setup.status, StatusCode::OK);
    assert_security_headers(&setup);
    assert!(setup.body.contains("Create administrator"));
    assert!(
        !setup.body.contains("style="),
        "no inline styles under the CSP"
    );
    let csrf = setup.csrf();

    // A form without the right CSRF token changes nothing.
    let form = [
        ("csrf", "forged"),
        ("token", world.setup_token.as_str()),
        ("username", "root"),
        ("display_name", "Root Admin"),
        ("password", "quiet harbour lantern 2026"),
        ("password_confirm", "quiet harbour lantern 2026"),
    ];
    let refused = world.post("/setup", &form, &mut admin).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Another browser (no pre-session cookie) cannot replay this browser's token.
    let mut stranger = Jar::default();
    let mut replay = form;
    replay[0].1 = &csrf;
    let refused = world.post("/setup", &replay, &mut stranger).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut wrong_token = replay;
    wrong_token[1].1 = "not-the-token";
    let page = world.post("/setup", &wrong_token, &mut admin).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("setup token is wrong"), "{}", page.body);

    let done = world.post("/setup", &replay, &mut admin).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account/totp?done=setup"));
    let session_cookie = done
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("km_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    // Setup happens once.
    let page = world.get("/setup", &mut admin).await;
    assert_eq!(page.location.as_deref(), Some("/login"));

    // TOTP enrolment: start, read the seed, confirm with a code computed from it.
    let totp = world.get("/account/totp?done=setup", &mut admin).await;
    assert_eq!(totp.status, StatusCode::OK);
    assert!(totp.body.contains("first administrator"));
    let scan = world
        .post(
            "/account/totp",
            &[("csrf", &totp.csrf()), ("step", "begin")],
            &mut admin,
        )
        .await;
    assert_eq!(scan.status, StatusCode::OK);
    assert!(scan.body.contains("src=\"data:image/png;base64,"));
    let seed = between(&scan.body, "data-testid=\"totp-secret\">", "<");
    let provider = TotpRsProvider::new();
    let secret = provider.secret_from_base32(&seed).unwrap();
    let code = provider.code_at(&secret, SystemClock.now()).unwrap();
    let codes = world
        .post(
            "/account/totp",
            &[
                ("csrf", &scan.csrf()),
                ("step", "confirm"),
                ("code", code.expose_secret()),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(codes.status, StatusCode::OK, "{}", codes.body);
    assert!(codes.body.contains("data-testid=\"recovery-codes\""));

    // The admin sees the admin pages and both demo partitions.
    let home = world.get("/", &mut admin).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("href=\"/users\""));
    assert!(home.body.contains("data-partition=\"globex\""));
    let users = world.get("/users", &mut admin).await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.body.contains("data-username=\"root\""));

    // A cross-origin POST is refused even with a valid token.
    let response = world
        .client
        .post("/users")
        .header(header::COOKIE, admin.header())
        .header(header::HOST, "console.example")
        .header(header::ORIGIN, "https://evil.example")
        .form(&[
            ("csrf", users.csrf().as_str()),
            ("username", "mallory"),
            ("password", "a long enough password"),
            ("role", "admin"),
        ])
        .send()
        .await;
    assert_eq!(response.0.status(), StatusCode::FORBIDDEN);

    let created = world
        .post(
            "/users",
            &[
                ("csrf", &users.csrf()),
                ("username", "reader"),
                ("display_name", "Read Only"),
                ("password", "amber meadow reading 77"),
                ("role", "readonly"),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/users?done=user_created")
    );
    let users = world.get("/users?done=user_created", &mut admin).await;
    assert!(users.body.contains("data-username=\"reader\""));
    assert!(users.body.contains("User created."));

    // Sign out, then the reader signs in (no second factor enrolled: straight in).
    let out = world
        .post("/logout", &[("csrf", &users.csrf())], &mut admin)
        .await;
    assert_eq!(out.location.as_deref(), Some("/login?done=signed_out"));
    assert!(!admin.0.contains_key("km_session"));

    let mut reader = Jar::default();
    let login = world.get("/login", &mut reader).await;
    let page = world
        .post(
            "/login",
            &[
                ("csrf", &login.csrf()),
                ("username", "reader"),
                ("password", "wrong password here"),
            ],
            &mut reader,
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("wrong username or password"));
    let page = world
        .post(
            "/login",
            &[
                ("csrf", &page.csrf()),
                ("username", "reader"),
                ("password", "amber meadow reading 77"),
            ],
            &mut reader,
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/"));

    let home = world.get("/", &mut reader).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        !home.body.contains("href=\"/users\""),
        "no admin nav for readonly"
    );
    assert!(
        home.body
            .contains("data-testid=\"current-partition\">Acme Corp<")
    );
    assert!(!home.body.contains("data-partition=\"globex\""));
    // Direct URL of the admin page: refused by the app layer.
    let users = world.get("/users", &mut reader).await;
    assert_eq!(users.status, StatusCode::FORBIDDEN);
    assert!(users.body.contains("data-status=\"403\""));
    // And its form, even with a valid CSRF token.
    let refused = world
        .post(
            "/users",
            &[
                ("csrf", &home.csrf()),
                ("username", "sneaky"),
                ("password", "sneaky password 123"),
                ("role", "admin"),
            ],
            &mut reader,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Settings: the partition card, not the platform settings.
    let settings = world.get("/settings", &mut reader).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(!settings.body.contains("data-testid=\"platform-settings\""));
    let refused = world
        .post(
            "/settings",
            &[
                ("csrf", &home.csrf()),
                ("second_factor", "optional"),
                ("reverify_hours", "12"),
                ("session_idle_minutes", "30"),
                ("session_absolute_hours", "12"),
                ("lockout_threshold", "5"),
                ("lockout_minutes", "15"),
            ],
            &mut reader,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // The audit log of its partition is readable (readonly may read audit).
    let audit = world.get("/audit", &mut reader).await;
    assert_eq!(audit.status, StatusCode::OK);

    // The admin signs in again: password, then the TOTP step.
    let login = world.get("/login", &mut admin).await;
    let step = world
        .post(
            "/login",
            &[
                ("csrf", &login.csrf()),
                ("username", "root"),
                ("password", "quiet harbour lantern 2026"),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(step.location.as_deref(), Some("/login/second-factor"));
    assert!(admin.0.contains_key("km_pending"));
    let form = world.get("/login/second-factor", &mut admin).await;
    assert_eq!(form.status, StatusCode::OK);
    let bad = world
        .post(
            "/login/second-factor",
            &[("csrf", &form.csrf()), ("code", "000000")],
            &mut admin,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    // The enrolment used up the current time step; the authenticator's next code (one step
    // ahead, inside the ±1 step tolerance) signs in.
    let code = provider
        .code_at(&secret, SystemClock.now().saturating_add(30))
        .unwrap();
    let signed_in = world
        .post(
            "/login/second-factor",
            &[("csrf", &bad.csrf()), ("code", code.expose_secret())],
            &mut admin,
        )
        .await;
    assert_eq!(
        signed_in.location.as_deref(),
        Some("/"),
        "{}",
        signed_in.body
    );
    assert!(admin.0.contains_key("km_session"));
    assert!(!admin.0.contains_key("km_pending"));
    let home = world.get("/", &mut admin).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("href=\"/users\""));
}

#[tokio::test]
async fn static_assets_and_unknown_paths() {
    let world = world().await;
    let mut jar = Jar::default();
    let css = world.get("/static/console.css", &mut jar).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/css; charset=utf-8"
    );
    assert!(css.body.contains("prefers-color-scheme: dark"));
    assert_security_headers(&css);
    let js = world.get("/static/console.js", &mut jar).await;
    assert_eq!(js.status, StatusCode::OK);
    let missing = world.get("/static/nope.js", &mut jar).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let unknown = world.get("/no/such/page", &mut jar).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("Page not found"));
    assert_security_headers(&unknown);
}

#[tokio::test]
async fn operators_manage_the_partition_registry() {
    let world = world().await;
    let mut admin = first_admin(&world).await;

    // The operator's sidebar: the registered partitions and the registry.
    let home = world.get("/", &mut admin).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("data-nav=\"platform-partitions\""));
    assert!(home.body.contains("href=\"/partitions/acme\""));
    assert!(home.body.contains("data-partition=\"globex\""));
    assert!(!home.body.contains("data-partition=\"initech\""));
    let list = world.get("/platform/partitions", &mut admin).await;
    assert_eq!(list.status, StatusCode::OK);
    for id in ["acme", "globex"] {
        assert!(list.body.contains(&format!("data-partition-row=\"{id}\"")));
    }
    assert!(list.body.contains(&world.fixture.partition_url("acme")));
    assert!(!list.body.contains("data-partition-row=\"initech\""));

    // The wizard: a wrong key is explained by the TSB's error, and never echoed.
    let wizard = world.get("/platform/partitions/new", &mut admin).await;
    assert_eq!(wizard.status, StatusCode::OK);
    assert!(wizard.body.contains("<option value=\"hsm\" selected>"));
    let csrf = wizard.csrf();
    let endpoint = world.fixture.partition_url("initech");
    let right = api_key("initech");
    let wrong = "wrong-key-never-echoed-42";
    let form = |intent: &'static str, key: &str| {
        [
            ("csrf", csrf.clone()),
            ("intent", intent.to_owned()),
            ("id", "initech".to_owned()),
            ("display_name", "Initech".to_owned()),
            ("colour", "custom".to_owned()),
            ("custom_colour", "#123ABC".to_owned()),
            ("endpoint", endpoint.clone()),
            ("auth", "api_keys".to_owned()),
            ("api_key", key.to_owned()),
            ("vault", "hsm".to_owned()),
        ]
    };
    let wizard_post = "/platform/partitions/new";
    let tested = world
        .post(wizard_post, &pairs(&form("test", wrong)), &mut admin)
        .await;
    assert_eq!(tested.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = between(&tested.body, "data-testid=\"connection-error\"", "</p>");
    assert!(error.contains("refused the credentials"), "{error}");
    assert!(error.contains("API key"), "{error}");
    assert!(
        !tested.body.contains(wrong),
        "the submitted key is not echoed"
    );
    assert!(
        tested.body.contains("value=\"initech\""),
        "other fields are kept"
    );
    assert!(tested.body.contains("value=\"#123abc\""));

    let tested = world
        .post(wizard_post, &pairs(&form("test", &right)), &mut admin)
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert!(tested.body.contains("data-testid=\"connection-ok\""));
    assert!(!between(&tested.body, "data-testid=\"tsb-version\">", "<").is_empty());
    assert!(tested.body.contains("data-testid=\"keystore-statistics\""));
    assert!(!tested.body.contains(&right));

    let onboarded = world
        .post(wizard_post, &pairs(&form("onboard", &right)), &mut admin)
        .await;
    assert_eq!(
        onboarded.location.as_deref(),
        Some("/platform/partitions?done=partition_onboarded#main"),
        "{}",
        onboarded.body
    );
    let again = world
        .post(wizard_post, &pairs(&form("onboard", &right)), &mut admin)
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("registered already"), "{}", again.body);
    let list = world
        .get("/platform/partitions?done=partition_onboarded", &mut admin)
        .await;
    assert!(list.body.contains("Partition onboarded."));
    assert!(list.body.contains("data-partition-row=\"initech\""));
    assert!(list.body.contains("fill=\"#123abc\""));
    let home = world.get("/", &mut admin).await;
    assert!(home.body.contains("data-partition=\"initech\""));

    // Switching changes the partition of every page.
    let switched = world
        .post(
            "/partition",
            &[
                ("csrf", &home.csrf()),
                ("partition", "globex"),
                ("return_to", "/users"),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(switched.location.as_deref(), Some("/users"));
    let users = world.get("/users", &mut admin).await;
    assert!(users.body.contains("People with access to Globex"));
    assert!(users.body.contains("href=\"/partitions/globex\""));

    // Edit: name and colour, suspend, a failed rotation test, offboarding.
    let edit = world.get("/platform/partitions/initech", &mut admin).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("Nothing in the HSM is deleted"));
    let csrf = edit.csrf();
    let saved = world
        .post(
            "/platform/partitions/initech",
            &[
                ("csrf", &csrf),
                ("display_name", "Initech Labs"),
                ("colour", "#ef4444"),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(
        saved.location.as_deref(),
        Some("/platform/partitions/initech?done=partition_saved#main")
    );
    let refused = world
        .post(
            "/platform/partitions/initech",
            &[("csrf", &csrf), ("display_name", "  "), ("colour", "")],
            &mut admin,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let suspended = world
        .post(
            "/platform/partitions/initech/status",
            &[("csrf", &csrf), ("status", "suspended")],
            &mut admin,
        )
        .await;
    assert_eq!(
        suspended.location.as_deref(),
        Some("/platform/partitions/initech?done=partition_suspended#main")
    );
    let home = world.get("/", &mut admin).await;
    assert!(
        home.body.contains(
            "data-partition=\"initech\" data-status=\"suspended\" data-colour=\"#ef4444\""
        )
    );
    assert!(home.body.contains("Initech Labs"));
    let status = world.get("/partitions/initech", &mut admin).await;
    assert_eq!(status.status, StatusCode::OK);
    assert!(status.body.contains("<strong>Suspended.</strong>"));

    let rotation = world
        .post(
            "/platform/partitions/initech/credentials",
            &[
                ("csrf", &csrf),
                ("intent", "test"),
                ("endpoint", &endpoint),
                ("auth", "api_keys"),
                ("api_key", wrong),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(rotation.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(rotation.body.contains("data-testid=\"connection-error\""));
    assert!(!rotation.body.contains(wrong));
    let rotated = world
        .post(
            "/platform/partitions/initech/credentials",
            &[
                ("csrf", &csrf),
                ("intent", "rotate"),
                ("endpoint", &endpoint),
                ("auth", "api_keys"),
                ("api_key", &right),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(
        rotated.location.as_deref(),
        Some("/platform/partitions/initech?done=credentials_rotated#main"),
        "{}",
        rotated.body
    );

    let mismatch = world
        .post(
            "/platform/partitions/initech/offboard",
            &[("csrf", &csrf), ("confirm", "acme")],
            &mut admin,
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("type the partition id initech"));
    let offboarded = world
        .post(
            "/platform/partitions/initech/offboard",
            &[("csrf", &csrf), ("confirm", "initech")],
            &mut admin,
        )
        .await;
    assert_eq!(
        offboarded.location.as_deref(),
        Some("/platform/partitions?done=partition_offboarded#main")
    );
    let list = world.get("/platform/partitions", &mut admin).await;
    assert!(!list.body.contains("data-partition-row=\"initech\""));
    let gone = world.get("/platform/partitions/initech", &mut admin).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn members_see_their_partitions_only_and_keep_own_credentials() {
    let world = world().await;
    let mut admin = first_admin(&world).await;
    let users = world.get("/users", &mut admin).await;
    let created = world
        .post(
            "/users",
            &[
                ("csrf", &users.csrf()),
                ("username", "reader"),
                ("password", READER_PASSWORD),
                ("role", "readonly"),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/users?done=user_created")
    );
    let mut reader = sign_in(&world, "reader", READER_PASSWORD).await;

    let home = world.get("/", &mut reader).await;
    assert!(!home.body.contains("data-nav=\"platform-partitions\""));
    assert!(home.body.contains("href=\"/partitions/acme\""));
    let status = world.get("/partitions/acme", &mut reader).await;
    assert_eq!(status.status, StatusCode::OK);
    assert!(!between(&status.body, "data-testid=\"tsb-version\">", "<").is_empty());
    assert!(
        !status.body.contains("data-testid=\"partition-endpoint\""),
        "endpoints are for operators"
    );
    assert_eq!(
        world
            .get("/partitions", &mut reader)
            .await
            .location
            .as_deref(),
        Some("/partitions/acme")
    );

    // Another tenant's partition does not exist for this member; a bad id neither.
    for path in [
        "/partitions/globex",
        "/partitions/globex/credentials",
        "/partitions/No-Such!",
    ] {
        let page = world.get(path, &mut reader).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.body.contains("data-status=\"404\""), "{path}");
    }
    // The operator pages are refused.
    for path in [
        "/platform/partitions",
        "/platform/partitions/new",
        "/platform/partitions/acme",
    ] {
        let page = world.get(path, &mut reader).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("data-status=\"403\""), "{path}");
    }
    // A partition it is not bound to cannot be selected, by form or by cookie.
    let refused = world
        .post(
            "/partition",
            &[("csrf", &home.csrf()), ("partition", "globex")],
            &mut reader,
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    reader
        .0
        .insert("km_partition".to_owned(), "globex".to_owned());
    let home = world.get("/", &mut reader).await;
    assert!(
        home.body
            .contains("data-testid=\"current-partition\">Acme Corp<")
    );

    // Own credentials: a wrong key is explained and not echoed, the right one kept and removed.
    let page = world.get("/partitions/acme/credentials", &mut reader).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("none kept"));
    let csrf = page.csrf();
    let wrong = "not-my-key-at-all-9876";
    let failed = world
        .post(
            "/partitions/acme/credentials",
            &[("csrf", &csrf), ("auth", "api_keys"), ("api_key", wrong)],
            &mut reader,
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(failed.body.contains("data-testid=\"connection-error\""));
    assert!(!failed.body.contains(wrong));
    assert!(failed.body.contains("none kept"));
    let right = api_key("acme");
    let saved = world
        .post(
            "/partitions/acme/credentials",
            &[("csrf", &csrf), ("auth", "api_keys"), ("api_key", &right)],
            &mut reader,
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(saved.body.contains("data-testid=\"connection-ok\""));
    assert!(saved.body.contains("your own are kept"));
    assert!(!saved.body.contains(&right));
    let removed = world
        .post(
            "/partitions/acme/credentials/remove",
            &[("csrf", &csrf)],
            &mut reader,
        )
        .await;
    assert_eq!(
        removed.location.as_deref(),
        Some("/partitions/acme/credentials?done=own_credentials_removed")
    );
    let page = world.get("/partitions/acme/credentials", &mut reader).await;
    assert!(page.body.contains("none kept"));
}
