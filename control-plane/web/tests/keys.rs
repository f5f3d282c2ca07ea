//! The keys pages served in-process over the real app layer on the real TSB emulator
//! (tests/support): the empty inventory, the creation wizard (a refusal keeps the entered values),
//! a key's detail with the lifecycle actions its state allows, the actions themselves (with the
//! App's refusals shown), the list with filters, public-key export, and readonly viewers who see
//! everything but may change nothing (forged posts are refused with 403).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use poem::http::StatusCode;

mod support;

use support::*;

/// The wizard's fields for an EC P-256 signing key.
fn ec_key(csrf: &str, label: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_owned()),
        ("label", label.to_owned()),
        ("algorithm", "EC".to_owned()),
        ("param_EC", "secp256r1".to_owned()),
        ("param_RSA", "3072".to_owned()),
        ("usage", "sign".to_owned()),
        ("destroyable", "true".to_owned()),
        ("owner", "team-web".to_owned()),
        ("tags", "web, prod".to_owned()),
    ]
}

async fn change(world: &World, jar: &mut Jar, label: &str, event: &str, reason: &str) -> Page {
    let detail = world.get(&format!("/keys/{label}"), jar).await;
    world
        .post(
            &format!("/keys/{label}/state"),
            &[
                ("csrf", &detail.csrf()),
                ("event", event),
                ("reason", reason),
            ],
            jar,
        )
        .await
}

#[tokio::test]
async fn keys_are_created_listed_and_moved_through_their_lifecycle() {
    let world = world().await;
    let mut root = first_admin(&world).await;

    // The sidebar has the entry; the empty inventory offers the wizard.
    let list = world.get("/keys", &mut root).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_security_headers(&list);
    assert!(list.body.contains("href=\"/keys\""));
    assert!(list.body.contains("data-testid=\"keys-empty\""));
    assert!(list.body.contains("href=\"/keys/new\""));
    assert!(!list.body.contains("style="));

    // The wizard offers every family, with the sizes and curves grouped by algorithm.
    let wizard = world.get("/keys/new", &mut root).await;
    assert_eq!(wizard.status, StatusCode::OK);
    for text in [
        "Asymmetric signing",
        "Symmetric",
        "Post-quantum signing",
        "data-param=\"EC\"",
        "data-param=\"RSA\"",
        "value=\"secp256r1\"",
        "keys with a policy cannot be extractable",
    ] {
        assert!(wizard.body.contains(text), "{text} missing");
    }

    // An extractable key is refused by the App: its message, the values kept, 422.
    let mut form = ec_key(&wizard.csrf(), "web-signing");
    form.push(("extractable", "true".to_owned()));
    let refused = world.post("/keys/new", &pairs(&form), &mut root).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .body
            .contains("extractable keys cannot carry an SKA policy")
    );
    assert!(refused.body.contains("value=\"web-signing\""));
    assert!(refused.body.contains("value=\"web, prod\""));
    // A malformed date is explained before anything reaches the App.
    let mut form = ec_key(&wizard.csrf(), "web-signing");
    form.push(("expires_at", "next week".to_owned()));
    let refused = world.post("/keys/new", &pairs(&form), &mut root).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Expiry: enter a date and time"));

    // Created: to the detail page with a notice.
    let form = ec_key(&wizard.csrf(), "web-signing");
    let created = world.post("/keys/new", &pairs(&form), &mut root).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let location = created.location.unwrap();
    assert_eq!(location, "/keys/web-signing?done=key_created#main");
    let detail = world.get(&location, &mut root).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Key created."));
    assert!(detail.body.contains("EC secp256r1"));
    assert!(detail.body.contains("badge-state-active"));
    assert!(detail.body.contains("team-web"));
    assert!(detail.body.contains("data-testid=\"public-pem\""));
    // Active: suspend, deactivate, compromise — not activate, not destruction.
    assert!(detail.body.contains("data-testid=\"action-suspend\""));
    assert!(detail.body.contains("data-testid=\"action-deactivate\""));
    assert!(detail.body.contains("data-testid=\"action-compromise\""));
    assert!(!detail.body.contains("data-testid=\"action-activate\""));
    assert!(
        !detail
            .body
            .contains("data-testid=\"action-schedule_destruction\"")
    );
    assert!(detail.body.contains("data-confirm="));

    // Suspend, reactivate.
    let done = change(&world, &mut root, "web-signing", "suspend", "").await;
    assert_eq!(
        done.location.as_deref(),
        Some("/keys/web-signing?done=key_suspended#main")
    );
    let detail = world.get("/keys/web-signing", &mut root).await;
    assert!(detail.body.contains("badge-state-suspended"));
    assert!(detail.body.contains("data-testid=\"action-reactivate\""));
    assert!(!detail.body.contains("data-testid=\"action-suspend\""));
    // A forged illegal move: the App's refusal on the key's page.
    let refused = change(&world, &mut root, "web-signing", "activate", "").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("cannot activate"), "{}", refused.body);
    let done = change(&world, &mut root, "web-signing", "reactivate", "").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);

    // Deactivate, then destruction: a reason is required, the date is shown, cancel restores.
    let done = change(&world, &mut root, "web-signing", "deactivate", "").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let detail = world.get("/keys/web-signing", &mut root).await;
    assert!(detail.body.contains("badge-state-deactivated"));
    assert!(detail.body.contains("waiting period of 7 days"));
    let refused = change(
        &world,
        &mut root,
        "web-signing",
        "schedule_destruction",
        " ",
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Give a reason"));
    let done = change(
        &world,
        &mut root,
        "web-signing",
        "schedule_destruction",
        "replaced by web-signing-2",
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let detail = world.get("/keys/web-signing", &mut root).await;
    assert!(detail.body.contains("badge-state-destroy-scheduled"));
    assert!(detail.body.contains("data-testid=\"destruction-at\""));
    assert!(detail.body.contains("replaced by web-signing-2"));
    assert!(
        detail
            .body
            .contains("data-testid=\"action-cancel_destruction\"")
    );
    let done = change(&world, &mut root, "web-signing", "cancel_destruction", "").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let detail = world.get("/keys/web-signing", &mut root).await;
    assert!(detail.body.contains("badge-state-deactivated"));

    // The list shows it with its badge; filters narrow it down.
    let list = world.get("/keys", &mut root).await;
    assert!(list.body.contains("data-testid=\"keys-table\""));
    assert!(list.body.contains("href=\"/keys/web-signing\""));
    assert!(list.body.contains("badge-state-deactivated"));
    assert!(list.body.contains("EC secp256r1"));
    let list = world.get("/keys?state=active&prefix=web", &mut root).await;
    assert!(list.body.contains("No matching keys"));
    let list = world.get("/keys?tag=prod&algorithm=EC", &mut root).await;
    assert!(list.body.contains("href=\"/keys/web-signing\""));

    // An unknown key is not found.
    let missing = world.get("/keys/no-such-key", &mut root).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_public_key_is_exported_as_pem_and_jwk() {
    let world = world().await;
    let mut root = first_admin(&world).await;
    let wizard = world.get("/keys/new", &mut root).await;
    let form = ec_key(&wizard.csrf(), "api-signing");
    let created = world.post("/keys/new", &pairs(&form), &mut root).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let pem = world.get("/keys/api-signing/public.pem", &mut root).await;
    assert_eq!(pem.status, StatusCode::OK, "{}", pem.body);
    assert!(pem.body.contains("BEGIN PUBLIC KEY"));
    assert!(
        pem.headers
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("api-signing.pem")
    );
    let jwk = world.get("/keys/api-signing/public.jwk", &mut root).await;
    assert_eq!(jwk.status, StatusCode::OK, "{}", jwk.body);
    assert!(jwk.body.contains("\"kty\": \"EC\""));
    assert!(jwk.body.contains("\"crv\": \"P-256\""));
}

#[tokio::test]
async fn readonly_viewers_see_keys_but_cannot_change_them() {
    let world = world().await;
    let mut root = first_admin(&world).await;
    let wizard = world.get("/keys/new", &mut root).await;
    let form = ec_key(&wizard.csrf(), "web-signing");
    let created = world.post("/keys/new", &pairs(&form), &mut root).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let mut reader = signed_in_reader(&world, &mut root).await;

    let list = world.get("/keys", &mut reader).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("href=\"/keys/web-signing\""));
    assert!(!list.body.contains("href=\"/keys/new\""));
    let detail = world.get("/keys/web-signing", &mut reader).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("badge-state-active"));
    assert!(!detail.body.contains("data-testid=\"key-actions\""));
    assert!(!detail.body.contains("action-suspend"));
    let wizard = world.get("/keys/new", &mut reader).await;
    assert_eq!(wizard.status, StatusCode::FORBIDDEN);

    // Forged posts with the reader's own valid CSRF token: the App refuses them.
    let csrf = detail.csrf();
    let forged = world
        .post(
            "/keys/web-signing/state",
            &[("csrf", &csrf), ("event", "suspend")],
            &mut reader,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = world
        .post(
            "/keys/web-signing/state",
            &[("csrf", &csrf), ("event", "compromise"), ("reason", "x")],
            &mut reader,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = world
        .post("/keys/web-signing/rotate", &[("csrf", &csrf)], &mut reader)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let form = ec_key(&csrf, "reader-key");
    let forged = world.post("/keys/new", &pairs(&form), &mut reader).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A post without the CSRF token is refused before anything else.
    let forged = world
        .post(
            "/keys/web-signing/state",
            &[("event", "suspend")],
            &mut root,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let detail = world.get("/keys/web-signing", &mut root).await;
    assert!(detail.body.contains("badge-state-active"));
}
