//! The expiry-notification page (`/settings/notifications`) served in-process over the real app
//! layer on the real TSB emulator (tests/support; that app wires no webhook client, so a test
//! delivery reports "not available"): saving, the signing secret shown once, refusals shown next
//! to the form, the test delivery's outcome, and readers who see the settings but not the secret
//! and whose forged posts the App refuses with 403.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use poem::http::StatusCode;

mod support;

use support::*;

const PAGE: &str = "/settings/notifications";

fn secret_on(page: &Page) -> String {
    between(&page.body, "data-testid=\"signing-secret\">", "<")
}

#[tokio::test]
async fn admins_configure_the_webhook_and_see_the_secret_once() {
    let world = world().await;
    let mut root = first_admin(&world).await;
    let page = world.get(PAGE, &mut root).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_security_headers(&page);
    assert!(
        page.body.contains("href=\"/settings/notifications\""),
        "nav entry"
    );
    assert!(page.body.contains("data-testid=\"notifications-save\""));
    assert!(page.body.contains("value=\"30, 7, 1\""));
    assert!(!page.body.contains("data-testid=\"signing-secret\""));

    // Plain http is refused next to the form, with what was typed kept.
    let refused = world
        .post(
            PAGE,
            &[
                ("csrf", &page.csrf()),
                ("enabled", "on"),
                ("url", "http://hooks.example.com/km"),
                ("lead_days", "14, 2"),
            ],
            &mut root,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("data-testid=\"form-error\""));
    assert!(refused.body.contains("https://"));
    assert!(refused.body.contains("value=\"14, 2\""));
    let bad_days = world
        .post(
            PAGE,
            &[("csrf", &page.csrf()), ("lead_days", "30, soon")],
            &mut root,
        )
        .await;
    assert_eq!(bad_days.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_days.body.contains("soon"));

    // The first enabling makes the secret and shows it on that answer only.
    let saved = world
        .post(
            PAGE,
            &[
                ("csrf", &page.csrf()),
                ("enabled", "on"),
                ("url", "https://hooks.example.com/km"),
                ("lead_days", "30, 7, 1"),
            ],
            &mut root,
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let secret = secret_on(&saved);
    assert!(
        secret.starts_with("kmwhsec_") && secret.len() == 72,
        "{secret}"
    );
    assert!(saved.body.contains("data-copy=\"#signing-secret\""));
    let shown = world.get(PAGE, &mut root).await;
    assert!(!shown.body.contains(&secret[8..]));
    assert!(
        shown
            .body
            .contains("data-testid=\"secret-status\"><span class=\"dot\"></span>set")
    );
    assert!(
        shown
            .body
            .contains("value=\"https://hooks.example.com/km\"")
    );

    // Saving again redirects with a notice and shows no secret.
    let again = world
        .post(
            PAGE,
            &[
                ("csrf", &shown.csrf()),
                ("enabled", "on"),
                ("url", "https://hooks.example.com/other"),
                ("lead_days", "7"),
            ],
            &mut root,
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let after = world
        .get(again.location.as_deref().unwrap(), &mut root)
        .await;
    assert!(after.body.contains("Notification settings saved."));
    assert!(after.body.contains("value=\"7\""));

    // A test delivery shows the outcome (this app has no webhook client).
    let tested = world
        .post(
            &format!("{PAGE}/test"),
            &[("csrf", &after.csrf())],
            &mut root,
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert!(tested.body.contains("data-testid=\"test-result\""));
    assert!(tested.body.contains("not delivered"));
    assert!(tested.body.contains("not available in this process"));

    // A new secret, shown once.
    let rotated = world
        .post(
            &format!("{PAGE}/secret"),
            &[("csrf", &after.csrf())],
            &mut root,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_secret = secret_on(&rotated);
    assert_ne!(new_secret, secret);
    let shown = world.get(PAGE, &mut root).await;
    assert!(!shown.body.contains(&new_secret[8..]));
}

#[tokio::test]
async fn readers_see_the_settings_but_forged_posts_are_refused() {
    let world = world().await;
    let mut root = first_admin(&world).await;
    let page = world.get(PAGE, &mut root).await;
    let saved = world
        .post(
            PAGE,
            &[
                ("csrf", &page.csrf()),
                ("enabled", "on"),
                ("url", "https://hooks.example.com/km"),
                ("lead_days", "30, 7, 1"),
            ],
            &mut root,
        )
        .await;
    let secret = secret_on(&saved);
    let mut reader = signed_in_reader(&world, &mut root).await;

    let seen = world.get(PAGE, &mut reader).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert!(seen.body.contains("value=\"https://hooks.example.com/km\""));
    assert!(seen.body.contains("<fieldset class=\"stack\" disabled>"));
    assert!(!seen.body.contains("data-testid=\"notifications-save\""));
    assert!(!seen.body.contains("data-testid=\"rotate-secret\""));
    assert!(!seen.body.contains("data-testid=\"send-test\""));
    assert!(!seen.body.contains(&secret[8..]));

    // Forged posts with the reader's own valid CSRF token: the App refuses them.
    let csrf = seen.csrf();
    for (path, form) in [
        (
            PAGE.to_owned(),
            vec![("csrf", csrf.as_str()), ("url", "https://evil.example/")],
        ),
        (format!("{PAGE}/secret"), vec![("csrf", csrf.as_str())]),
        (format!("{PAGE}/test"), vec![("csrf", csrf.as_str())]),
    ] {
        let forged = world.post(&path, &form, &mut reader).await;
        assert_eq!(
            forged.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            forged.body
        );
        assert!(!forged.body.contains("kmwhsec_"));
    }
    let unchanged = world.get(PAGE, &mut root).await;
    assert!(
        unchanged
            .body
            .contains("value=\"https://hooks.example.com/km\"")
    );
    // Without the CSRF token nothing happens either.
    let no_csrf = world
        .post(&format!("{PAGE}/secret"), &[("csrf", "x")], &mut root)
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
}
