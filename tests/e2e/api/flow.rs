//! The whole sign-in story over HTTP, the TOTP replay race, re-verification and the mandatory
//! policy from runtime settings, API tokens, and the audit trail of it all.

use km_core::Clock;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{ApiWorld, Auth, PASSWORD, ROOT_PASSWORD, seed_of, session_from, totp};

#[tokio::test]
async fn setup_login_totp_enrolment_logout_and_login_with_totp() {
    let world = ApiWorld::start().await;
    let anon = Auth::Anonymous;

    let status = world
        .call(Method::GET, "/api/v1/auth/setup", &anon, None)
        .await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.body["complete"], false);
    // A wrong setup token claims nothing.
    let wrong = world
        .call(
            Method::POST,
            "/api/v1/auth/setup",
            &anon,
            Some(json!({"setup_token": "nope", "username": "root", "password": ROOT_PASSWORD})),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::FORBIDDEN, "setup_token_invalid")
    );
    world.set_up().await;
    let status = world
        .call(Method::GET, "/api/v1/auth/setup", &anon, None)
        .await;
    assert_eq!(status.body["complete"], true);
    let again = world
        .call(
            Method::POST,
            "/api/v1/auth/setup",
            &anon,
            Some(
                json!({"setup_token": world.setup_token.as_ref().unwrap().expose_secret(),
                "username": "other", "password": ROOT_PASSWORD}),
            ),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    // Password sign-in: the cookie is HttpOnly, Secure, SameSite=Strict, Path=/.
    let login = world
        .call(
            Method::POST,
            "/api/v1/auth/login",
            &anon,
            Some(json!({"username": "root", "password": ROOT_PASSWORD})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let cookie = login.header("set-cookie").to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let root = session_from(&login);
    let me = world
        .call(Method::GET, "/api/v1/account", &root, None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["subject"], "root");
    assert_eq!(me.body["session"]["second_factor"], "not_enrolled");
    assert_eq!(me.body["bindings"][0]["scope"], "*");

    // Cookie authentication needs the CSRF token on state changes.
    let Auth::Session {
        cookie: raw_cookie, ..
    } = &root
    else {
        unreachable!()
    };
    let forged = Auth::Session {
        cookie: raw_cookie.clone(),
        csrf: "forged".to_owned(),
    };
    let refused = world
        .call(
            Method::POST,
            "/api/v1/account/totp/enrolment",
            &forged,
            None,
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::FORBIDDEN, "csrf_invalid")
    );

    // Enrol TOTP.
    let enrolment = world
        .call(Method::POST, "/api/v1/account/totp/enrolment", &root, None)
        .await;
    assert_eq!(enrolment.status, StatusCode::CREATED, "{}", enrolment.text);
    assert!(
        enrolment.body["qr_png_data_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    let seed = seed_of(&enrolment.body);
    let wrong_code = world
        .call(
            Method::POST,
            "/api/v1/account/totp/enrolment/confirm",
            &root,
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(
        wrong_code.code(),
        "second_factor_invalid",
        "{}",
        wrong_code.text
    );
    let confirmed = world
        .call(
            Method::POST,
            "/api/v1/account/totp/enrolment/confirm",
            &root,
            Some(json!({"code": totp(&seed, world.clock.now())})),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    let recovery: Vec<String> = confirmed.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    let me = world
        .call(Method::GET, "/api/v1/account", &root, None)
        .await;
    assert_eq!(me.body["session"]["second_factor"], "verified");
    assert_eq!(me.body["account"]["totp_enrolled"], true);

    // Logout ends the session and clears the cookie.
    let logout = world
        .call(Method::POST, "/api/v1/auth/logout", &root, None)
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text);
    assert!(logout.header("set-cookie").contains("Max-Age=0"));
    let gone = world
        .call(Method::GET, "/api/v1/account", &root, None)
        .await;
    assert_eq!(
        (gone.status, gone.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );

    // Sign in again: password, then the TOTP code (a newer step than the enrolment's).
    world.clock.advance(30);
    let login = world
        .call(
            Method::POST,
            "/api/v1/auth/login",
            &anon,
            Some(json!({"username": "root", "password": ROOT_PASSWORD})),
        )
        .await;
    assert_eq!(
        login.body["status"], "second_factor_required",
        "{}",
        login.text
    );
    assert!(login.header("set-cookie").is_empty());
    let pending = login.body["second_factor"]["pending_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed_in = world
        .call(
            Method::POST,
            "/api/v1/auth/login/second-factor",
            &anon,
            Some(json!({"pending_token": pending, "code": totp(&seed, world.clock.now())})),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);
    let root = session_from(&signed_in);
    let me = world
        .call(Method::GET, "/api/v1/account", &root, None)
        .await;
    assert_eq!(
        me.body["session"]["second_factor"], "verified",
        "{}",
        me.text
    );
    // The pending sign-in was single-use.
    let reused = world
        .call(
            Method::POST,
            "/api/v1/auth/login/second-factor",
            &anon,
            Some(json!({"pending_token": pending, "kind": "recovery_code", "code": recovery[0]})),
        )
        .await;
    assert_eq!(reused.code(), "login_expired", "{}", reused.text);

    // A recovery code signs in once.
    let login = world
        .call(
            Method::POST,
            "/api/v1/auth/login",
            &anon,
            Some(json!({"username": "root", "password": ROOT_PASSWORD})),
        )
        .await;
    let pending = login.body["second_factor"]["pending_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_code = world
        .call(
            Method::POST,
            "/api/v1/auth/login/second-factor",
            &anon,
            Some(json!({"pending_token": pending, "kind": "recovery_code", "code": recovery[1]})),
        )
        .await;
    assert_eq!(by_code.status, StatusCode::OK, "{}", by_code.text);

    // Every step is in the audit log, with the request ids the client saw.
    let events = world
        .call(
            Method::GET,
            "/api/v1/platform/audit/events?action=login_second_factor&limit=200",
            &root,
            None,
        )
        .await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.text);
    let items = events.body["items"].as_array().unwrap();
    let rid = signed_in.header("x-request-id");
    assert!(
        items.iter().any(|e| e["request_id"] == rid
            && e["outcome"] == "success"
            && e["details"]["phase"] == "result"),
        "{}",
        events.text
    );
    assert!(
        items
            .iter()
            .any(|e| e["request_id"] == reused.header("x-request-id")
                && e["outcome"] == "failed"
                && e["details"]["error"] == "login_expired")
    );
    let audit_text = world
        .call(
            Method::GET,
            "/api/v1/platform/audit/events?limit=200",
            &root,
            None,
        )
        .await
        .text;
    for secret in [ROOT_PASSWORD, recovery[1].as_str(), pending.as_str()] {
        assert!(
            !audit_text.contains(secret),
            "a secret reached the audit log"
        );
    }
    let verified = world
        .call(Method::POST, "/api/v1/platform/audit/verify", &root, None)
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.text);
    assert_eq!(verified.body["valid"], true, "{}", verified.text);
    assert!(verified.body["events"].as_u64().unwrap() > 10);
}

#[tokio::test]
async fn the_same_totp_code_in_two_parallel_requests_succeeds_exactly_once() {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let enrolment = world
        .call(Method::POST, "/api/v1/account/totp/enrolment", &root, None)
        .await;
    let seed = seed_of(&enrolment.body);
    let confirmed = world
        .call(
            Method::POST,
            "/api/v1/account/totp/enrolment/confirm",
            &root,
            Some(json!({"code": totp(&seed, world.clock.now())})),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);

    for round in 0..3 {
        world.clock.advance(30);
        // Two sign-ins waiting for their second factor, then one code sent to both at once.
        let mut pending = Vec::new();
        for _ in 0..2 {
            let login = world
                .call(
                    Method::POST,
                    "/api/v1/auth/login",
                    &Auth::Anonymous,
                    Some(json!({"username": "root", "password": ROOT_PASSWORD})),
                )
                .await;
            pending.push(
                login.body["second_factor"]["pending_token"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let code = totp(&seed, world.clock.now());
        let request = |token: &str| {
            world.call(
                Method::POST,
                "/api/v1/auth/login/second-factor",
                &Auth::Anonymous,
                Some(json!({"pending_token": token, "code": code})),
            )
        };
        let (first, second) = tokio::join!(request(&pending[0]), request(&pending[1]));
        let statuses = [first.status, second.status];
        let successes = statuses.iter().filter(|status| status.is_success()).count();
        assert_eq!(
            successes, 1,
            "round {round}: {statuses:?} {} {}",
            first.text, second.text
        );
        let loser = if first.status.is_success() {
            &second
        } else {
            &first
        };
        assert_eq!(
            (loser.status, loser.code()),
            (StatusCode::UNAUTHORIZED, "second_factor_invalid"),
            "{}",
            loser.text
        );
    }
}

#[tokio::test]
async fn runtime_settings_drive_reverification_and_the_mandatory_policy() {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let defaults = world
        .call(Method::GET, "/api/v1/platform/settings", &root, None)
        .await;
    assert_eq!(defaults.status, StatusCode::OK, "{}", defaults.text);
    assert_eq!(defaults.body["reverify_hours"], 12);
    assert_eq!(defaults.body["second_factor"], "optional");
    let mut settings = defaults.body.clone();
    settings["reverify_hours"] = json!(0);
    let refused = world
        .call(
            Method::PUT,
            "/api/v1/platform/settings",
            &root,
            Some(settings.clone()),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{}",
        refused.text
    );
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("reverify_hours")
    );
    settings["reverify_hours"] = json!(1);
    settings["session_idle_minutes"] = json!(240);
    let saved = world
        .call(
            Method::PUT,
            "/api/v1/platform/settings",
            &root,
            Some(settings.clone()),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    assert_eq!(saved.body["reverify_hours"], 1);

    // Enrol, then let the re-verification interval (1 h now) pass.
    let enrolment = world
        .call(Method::POST, "/api/v1/account/totp/enrolment", &root, None)
        .await;
    let seed = seed_of(&enrolment.body);
    let confirmed = world
        .call(
            Method::POST,
            "/api/v1/account/totp/enrolment/confirm",
            &root,
            Some(json!({"code": totp(&seed, world.clock.now())})),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    let users = world
        .call(Method::GET, "/api/v1/platform/users", &root, None)
        .await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.text);
    world.clock.advance(3600 + 30);
    let due = world
        .call(Method::GET, "/api/v1/platform/users", &root, None)
        .await;
    assert_eq!(
        (due.status, due.code()),
        (StatusCode::FORBIDDEN, "second_factor_required"),
        "{}",
        due.text
    );
    let me = world
        .call(Method::GET, "/api/v1/account", &root, None)
        .await;
    assert_eq!(
        me.body["session"]["second_factor"], "reverification_due",
        "{}",
        me.text
    );
    let reverified = world
        .call(
            Method::POST,
            "/api/v1/auth/reverify",
            &root,
            Some(json!({"code": totp(&seed, world.clock.now())})),
        )
        .await;
    assert_eq!(reverified.status, StatusCode::OK, "{}", reverified.text);
    assert_eq!(reverified.body["second_factor"], "verified");
    let users = world
        .call(Method::GET, "/api/v1/platform/users", &root, None)
        .await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.text);

    // Mandatory second factor: a user without TOTP may only enrol.
    world.create_user(&root, "acme", "amy", "admin").await;
    settings["second_factor"] = json!("mandatory");
    let saved = world
        .call(
            Method::PUT,
            "/api/v1/platform/settings",
            &root,
            Some(settings),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    let amy = world.login("amy", PASSWORD).await;
    let me = world.call(Method::GET, "/api/v1/account", &amy, None).await;
    assert_eq!(
        me.body["session"]["second_factor"], "enrolment_required",
        "{}",
        me.text
    );
    let blocked = world
        .call(Method::GET, "/api/v1/tenants/acme/users", &amy, None)
        .await;
    assert_eq!(
        blocked.code(),
        "second_factor_enrolment_required",
        "{}",
        blocked.text
    );
    let enrolment = world
        .call(Method::POST, "/api/v1/account/totp/enrolment", &amy, None)
        .await;
    assert_eq!(enrolment.status, StatusCode::CREATED, "{}", enrolment.text);
    let amy_seed = seed_of(&enrolment.body);
    let confirmed = world
        .call(
            Method::POST,
            "/api/v1/account/totp/enrolment/confirm",
            &amy,
            Some(json!({"code": totp(&amy_seed, world.clock.now())})),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    let allowed = world
        .call(Method::GET, "/api/v1/tenants/acme/users", &amy, None)
        .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);

    // The settings changes are audited with their values.
    let events = world
        .call(
            Method::GET,
            "/api/v1/platform/audit/events?action=update_platform_settings",
            &root,
            None,
        )
        .await;
    let items = events.body["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|e| e["details"]["second_factor"] == "mandatory"
                && e["details"]["phase"] == "result"
                && e["outcome"] == "success"),
        "{}",
        events.text
    );
    // Invalid values are refused before anything is admitted.
    assert!(
        !items.iter().any(|e| e["details"]["reverify_hours"] == "0"),
        "{}",
        events.text
    );
}

#[tokio::test]
async fn api_tokens_authenticate_automation_but_never_act_as_a_person() {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let created = world
        .call(
            Method::POST,
            "/api/v1/account/api-tokens",
            &root,
            Some(json!({"name": "ci", "scope": "*", "role": "readonly", "expires_in_secs": 3600})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let token = created.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("km_"));
    let bearer = Auth::Bearer(token.clone());
    let me = world
        .call(Method::GET, "/api/v1/account", &bearer, None)
        .await;
    assert_eq!(me.body["kind"], "api_token", "{}", me.text);
    // No CSRF needed with a bearer token; readonly on `*` reads the platform audit log...
    let audit = world
        .call(Method::GET, "/api/v1/platform/audit/events", &bearer, None)
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    // ...but cannot administer users, nor change a password or mint tokens.
    let users = world
        .call(Method::GET, "/api/v1/platform/users", &bearer, None)
        .await;
    assert_eq!(
        (users.status, users.body["reason"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_too_low"))
    );
    let password = world
        .call(
            Method::POST,
            "/api/v1/account/password",
            &bearer,
            Some(json!({"current_password": ROOT_PASSWORD, "new_password": "x".repeat(20)})),
        )
        .await;
    assert_eq!(
        password.body["reason"], "interactive_user_only",
        "{}",
        password.text
    );
    // Revoked: the token stops working at once.
    let id = created.body["info"]["id"].as_str().unwrap();
    let revoked = world
        .call(
            Method::DELETE,
            &format!("/api/v1/account/api-tokens/{id}"),
            &root,
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let after = world
        .call(Method::GET, "/api/v1/account", &bearer, None)
        .await;
    assert_eq!(
        (after.status, after.code()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
}
