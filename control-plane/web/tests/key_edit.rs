//! Editing a key's metadata and the partition's key settings in the console (in-process over the
//! real app layer on the real TSB emulator): the form is pre-filled, a bad value is explained
//! with the input kept, saving shows on the key's page and in its list sort/filter, and readonly
//! viewers see no form while forged posts are refused by the App.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use poem::http::StatusCode;

mod support;

use support::*;

async fn create(world: &World, jar: &mut Jar, label: &str) {
    let wizard = world.get("/keys/new", jar).await;
    let form = [
        ("csrf", wizard.csrf()),
        ("label", label.to_owned()),
        ("algorithm", "EC".to_owned()),
        ("param_EC", "secp256r1".to_owned()),
        ("usage", "sign".to_owned()),
        ("destroyable", "true".to_owned()),
        ("owner", "team-web".to_owned()),
        ("tags", "web".to_owned()),
    ];
    let created = world.post("/keys/new", &pairs(&form), jar).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
}

#[tokio::test]
async fn metadata_is_edited_and_shows_in_the_list_order() {
    let world = world().await;
    let mut root = first_admin(&world).await;
    create(&world, &mut root, "alpha").await;
    create(&world, &mut root, "beta").await;

    let detail = world.get("/keys/alpha", &mut root).await;
    assert!(detail.body.contains("href=\"/keys/alpha/edit\""));
    let form = world.get("/keys/alpha/edit", &mut root).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("value=\"team-web\""), "pre-filled owner");

    // A bad rotation interval is explained, the typed values kept.
    let csrf = form.csrf();
    let refused = world
        .post(
            "/keys/alpha/edit",
            &[
                ("csrf", csrf.as_str()),
                ("owner", "team-payments"),
                ("rotation_days", "ninety"),
            ],
            &mut root,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("Rotation interval"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"team-payments\""));
    // The App's own rule (interval at least an hour) comes back the same way.
    let refused = world
        .post(
            "/keys/alpha/edit",
            &[("csrf", csrf.as_str()), ("rotation_days", "0")],
            &mut root,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("interval"), "{}", refused.body);

    // Saved: owner, tags, description, expiry and rotation on the key's page.
    let saved = world
        .post(
            "/keys/alpha/edit",
            &[
                ("csrf", csrf.as_str()),
                ("owner", "team-payments"),
                ("description", "Signs payment batches"),
                ("tags", "payments, prod"),
                ("expires_at", "2099-01-01T00:00"),
                ("rotation_days", "90"),
                ("grace_days", "3"),
            ],
            &mut root,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let detail = world.get("/keys/alpha", &mut root).await;
    for text in [
        "team-payments",
        "Signs payment batches",
        "payments",
        "2099-01-01 00:00 UTC",
        "90 days",
    ] {
        assert!(detail.body.contains(text), "{text} missing");
    }

    // beta never expires: sorted by expiry, alpha comes first; the 30-day filter finds neither.
    let by_expiry = world.get("/keys?sort=expiry", &mut root).await;
    let alpha = by_expiry.body.find("href=\"/keys/alpha\"").unwrap();
    let beta = by_expiry.body.find("href=\"/keys/beta\"").unwrap();
    assert!(alpha < beta);
    let by_label = world.get("/keys?sort=label", &mut root).await;
    assert!(by_label.body.contains("<option value=\"label\" selected>"));
    let soon = world.get("/keys?expiring=30", &mut root).await;
    assert!(
        soon.body.contains("data-testid=\"keys-empty\""),
        "{}",
        soon.body
    );
}

#[tokio::test]
async fn key_settings_are_changed_by_admins_and_only_seen_by_readers() {
    let world = world().await;
    let mut root = first_admin(&world).await;
    let page = world.get("/settings/keys", &mut root).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("value=\"7\""), "default 7 days");
    let csrf = page.csrf();
    let refused = world
        .post(
            "/settings/keys",
            &[("csrf", csrf.as_str()), ("waiting_days", "0")],
            &mut root,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("value=\"0\""));
    let saved = world
        .post(
            "/settings/keys",
            &[("csrf", csrf.as_str()), ("waiting_days", "14")],
            &mut root,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(
        world
            .get("/settings/keys", &mut root)
            .await
            .body
            .contains("value=\"14\"")
    );

    create(&world, &mut root, "gamma").await;
    let mut reader = signed_in_reader(&world, &mut root).await;
    let seen = world.get("/settings/keys", &mut reader).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.body.contains("14 days"));
    assert!(!seen.body.contains("key-settings-form"));
    let detail = world.get("/keys/gamma", &mut reader).await;
    assert!(!detail.body.contains("/keys/gamma/edit"));
    let csrf = seen.csrf();
    let forged = world
        .post(
            "/settings/keys",
            &[("csrf", csrf.as_str()), ("waiting_days", "1")],
            &mut reader,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = world
        .post(
            "/keys/gamma/edit",
            &[("csrf", csrf.as_str()), ("owner", "mallory")],
            &mut reader,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}
