//! The dashboard page and the expiry alert, served in-process over the real app layer on the real
//! TSB emulator (tests/support): a readonly member sees the dashboard and the alert on the keys
//! list and the overview; a suspended partition's dashboard says so and still shows its keys.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

use poem::http::StatusCode;
use time::OffsetDateTime;
use time::macros::format_description;

mod support;

use support::*;

const DAY: i64 = 24 * 60 * 60;

/// `datetime-local` text (read as UTC by the wizard) `days` from now.
fn in_days(days: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    OffsetDateTime::from_unix_timestamp(i64::try_from(now).unwrap() + days * DAY)
        .unwrap()
        .format(format_description!("[year]-[month]-[day]T[hour]:[minute]"))
        .unwrap()
}

#[tokio::test]
async fn readonly_members_see_the_dashboard_and_the_alert_and_suspension_is_explained() {
    let world = world().await;
    let mut root = first_admin(&world).await;
    let wizard = world.get("/keys/new", &mut root).await;
    let created = world
        .post(
            "/keys/new",
            &[
                ("csrf", &wizard.csrf()),
                ("label", "web-signing"),
                ("algorithm", "EC"),
                ("param_EC", "secp256r1"),
                ("usage", "sign"),
                ("destroyable", "true"),
                ("owner", "team-web"),
                ("expires_at", &in_days(5)),
            ],
            &mut root,
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let mut reader = signed_in_reader(&world, &mut root).await;

    let dashboard = world.get("/dashboard", &mut reader).await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.body);
    assert_security_headers(&dashboard);
    assert!(!dashboard.body.contains("style="));
    assert!(
        dashboard
            .body
            .contains("href=\"/dashboard\" data-nav=\"dashboard\" aria-current=\"page\"")
    );
    for text in [
        "data-testid=\"tsb-version\"",
        "data-testid=\"keystore-statistics\"",
        "<tr data-row data-label=\"web-signing\" data-kind=\"expiry\">",
        "href=\"/keys/web-signing\"",
        "team-web",
        "<tr data-state=\"active\" data-count=\"1\">",
        "<tr data-algorithm=\"EC\" data-count=\"1\">",
    ] {
        assert!(
            dashboard.body.contains(text),
            "{text} missing:\n{}",
            dashboard.body
        );
    }
    assert!(!dashboard.body.contains("data-testid=\"expiry-alert\""));

    for path in ["/keys", "/"] {
        let page = world.get(path, &mut reader).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let alert = between(&page.body, "data-testid=\"expiry-alert\"", "</div>");
        assert!(
            alert.contains("1 key expires within 30 days"),
            "{path}: {alert}"
        );
        assert!(alert.contains("href=\"/dashboard\""), "{path}: {alert}");
    }

    // Suspended: nothing is asked of the HSM; the dashboard says why and shows the keys as last
    // read.
    let edit = world.get("/platform/partitions/acme", &mut root).await;
    let suspended = world
        .post(
            "/platform/partitions/acme/status",
            &[("csrf", &edit.csrf()), ("status", "suspended")],
            &mut root,
        )
        .await;
    assert_eq!(
        suspended.status,
        StatusCode::SEE_OTHER,
        "{}",
        suspended.body
    );
    let dashboard = world.get("/dashboard", &mut reader).await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.body);
    assert!(
        dashboard
            .body
            .contains("data-testid=\"dashboard-suspended\"")
    );
    assert!(
        !dashboard
            .body
            .contains("data-testid=\"dashboard-hsm-error\"")
    );
    assert!(!dashboard.body.contains("data-testid=\"tsb-version\""));
    assert!(dashboard.body.contains("data-label=\"web-signing\""));
}
