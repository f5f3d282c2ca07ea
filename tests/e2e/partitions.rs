//! The partition registry over the REST API against the real TSB emulator: test connection with
//! the TSB's error explained, onboarding, tenant isolation without existence leaks, suspension,
//! credential rotation without downtime, users' own credentials, offboarding that leaves the HSM
//! untouched — and no credential ever in a response or an audit event.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{ACME_NEXT_KEY, ApiWorld, Auth, PASSWORD, ROOT_PASSWORD, tenant_api_key};

const WRONG_KEY: &str = "definitely-not-the-key-4711";

fn connection(world: &ApiWorld, partition: &str, key: &str) -> Value {
    json!({
        "endpoint": world.emulator.partition_url(partition),
        "auth": "api_keys",
        "credentials": {"api_key": key},
    })
}

async fn world() -> (ApiWorld, Auth) {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    (world, root)
}

#[tokio::test]
async fn a_wrong_api_key_fails_test_connection_with_the_tsb_error_explained() {
    let (world, root) = world().await;
    let answer = world
        .call(
            Method::POST,
            "/api/v1/platform/partitions/test-connection",
            &root,
            Some(connection(&world, "globex", WRONG_KEY)),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert_eq!(answer.code(), "partition_connection_failed");
    let detail = answer.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("631") || detail.contains("invalid.api.key"),
        "{detail}"
    );
    assert!(detail.contains("check the API key"), "{detail}");
    assert!(!answer.text.contains(WRONG_KEY));

    // Onboarding with it is refused the same way, and nothing is registered.
    let onboard = world
        .call(
            Method::POST,
            "/api/v1/platform/partitions",
            &root,
            Some(json!({"id": "zeta", "display_name": "Zeta", "connection": connection(&world, "globex", WRONG_KEY)})),
        )
        .await;
    assert_eq!(
        onboard.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        onboard.text
    );
    let list = world
        .call(Method::GET, "/api/v1/platform/partitions", &root, None)
        .await;
    assert!(!list.text.contains("zeta"), "{}", list.text);

    // An unreachable endpoint says so.
    let mut dead = connection(&world, "globex", WRONG_KEY);
    dead["endpoint"] = json!("http://127.0.0.1:9");
    let answer = world
        .call(
            Method::POST,
            "/api/v1/platform/partitions/test-connection",
            &root,
            Some(dead),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{}",
        answer.text
    );

    // The right key shows what the TSB is.
    let answer = world
        .call(
            Method::POST,
            "/api/v1/platform/partitions/test-connection",
            &root,
            Some(connection(&world, "globex", tenant_api_key("globex"))),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(
        answer.body["version"]
            .as_str()
            .unwrap()
            .contains("keymanager-emulator")
    );
    assert!(
        answer.body["licenses"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
}

#[tokio::test]
async fn onboarded_partitions_are_isolated_and_other_tenants_do_not_leak() {
    let (world, root) = world().await;
    let onboarded = world
        .call(
            Method::POST,
            "/api/v1/platform/partitions",
            &root,
            Some(json!({
                "id": "zeta", "display_name": "Zeta Ltd", "colour": "#EC4899",
                "connection": connection(&world, "globex", tenant_api_key("globex")),
            })),
        )
        .await;
    assert_eq!(onboarded.status, StatusCode::CREATED, "{}", onboarded.text);
    assert_eq!(onboarded.body["colour"], "#ec4899");
    assert_eq!(onboarded.body["vault"], "hsm");
    assert!(!onboarded.text.contains(tenant_api_key("globex")));

    world.create_user(&root, "acme", "amy", "user").await;
    let amy = world.login("amy", PASSWORD).await;
    let mine = world
        .call(Method::GET, "/api/v1/partitions", &amy, None)
        .await;
    let ids: Vec<&str> = mine
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme"]);
    let status = world
        .call(Method::GET, "/api/v1/tenants/acme/status", &amy, None)
        .await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);

    // Another tenant's partition, data and settings: 404, exactly like a tenant that does not
    // exist — the answer does not tell them apart.
    for path in [
        "/api/v1/tenants/{t}",
        "/api/v1/tenants/{t}/status",
        "/api/v1/tenants/{t}/credentials",
        "/api/v1/tenants/{t}/users",
        "/api/v1/tenants/{t}/audit/events",
    ] {
        let existing = world
            .call(Method::GET, &path.replace("{t}", "zeta"), &amy, None)
            .await;
        let missing = world
            .call(Method::GET, &path.replace("{t}", "nosuch"), &amy, None)
            .await;
        assert_eq!(
            existing.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            existing.text
        );
        assert_eq!(missing.status, existing.status, "{path}");
        assert_eq!(missing.code(), existing.code(), "{path}");
        assert_eq!(
            missing.body["detail"], existing.body["detail"],
            "{path}: the details differ"
        );
    }
    // The operator sees it.
    let status = world
        .call(Method::GET, "/api/v1/tenants/zeta/status", &root, None)
        .await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
}

#[tokio::test]
async fn suspension_rotation_and_offboarding() {
    let (world, root) = world().await;
    world.create_user(&root, "acme", "amy", "user").await;
    let amy = world.login("amy", PASSWORD).await;
    let status = |auth: Auth| {
        let world = &world;
        async move {
            world
                .call(Method::GET, "/api/v1/tenants/acme/status", &auth, None)
                .await
        }
    };

    // Suspended: nothing is sent to the HSM, and members are told why.
    let suspended = world
        .call(
            Method::PATCH,
            "/api/v1/platform/partitions/acme",
            &root,
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text);
    let refused = status(amy.clone()).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(refused.body["reason"], "partition_suspended");
    world
        .call(
            Method::PATCH,
            "/api/v1/platform/partitions/acme",
            &root,
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status(amy.clone()).await.status, StatusCode::OK);

    // Rotation to a key the TSB does not accept is refused; the old credentials keep working.
    let bad = world
        .call(
            Method::PUT,
            "/api/v1/platform/partitions/acme/credentials",
            &root,
            Some(connection(&world, "acme", WRONG_KEY)),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(status(amy.clone()).await.status, StatusCode::OK);
    // Rotation to the next key: tested, stored, and used from the next request on.
    let rotated = world
        .call(
            Method::PUT,
            "/api/v1/platform/partitions/acme/credentials",
            &root,
            Some(connection(&world, "acme", ACME_NEXT_KEY)),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_eq!(rotated.body["credentials_version"], 2);
    assert_eq!(status(amy.clone()).await.status, StatusCode::OK);

    // Offboarding needs the id typed again, and leaves the HSM's content alone.
    let before = status(root.clone()).await.body["statistics"].clone();
    let unconfirmed = world
        .call(
            Method::DELETE,
            "/api/v1/platform/partitions/acme",
            &root,
            None,
        )
        .await;
    assert_eq!(
        unconfirmed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unconfirmed.text
    );
    assert_eq!(unconfirmed.body["reason"], "confirmation_mismatch");
    let gone = world
        .call(
            Method::DELETE,
            "/api/v1/platform/partitions/acme?confirm=acme",
            &root,
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    assert_eq!(status(amy.clone()).await.status, StatusCode::NOT_FOUND);
    let again = world
        .call(
            Method::POST,
            "/api/v1/platform/partitions",
            &root,
            Some(json!({"id": "acme", "display_name": "Acme again", "connection": connection(&world, "acme", ACME_NEXT_KEY)})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(status(root.clone()).await.body["statistics"], before);

    // No key in any audit event.
    let events = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    for event in &events {
        let text = serde_json::to_string(event).unwrap();
        for key in [tenant_api_key("acme"), ACME_NEXT_KEY, WRONG_KEY] {
            assert!(
                !text.contains(key),
                "key in audit event {}: {text}",
                event.seq
            );
        }
    }
    assert!(events.iter().any(|e| {
        e.details
            .values()
            .any(|v| v == "rotate_partition_credentials")
    }));
}

#[tokio::test]
async fn users_may_keep_their_own_partition_credentials() {
    let (world, root) = world().await;
    world.create_user(&root, "acme", "rob", "readonly").await;
    let rob = world.login("rob", PASSWORD).await;
    let path = "/api/v1/tenants/acme/credentials";
    let wrong = world
        .call(Method::PUT, path, &rob, Some(json!({"api_key": WRONG_KEY})))
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.text
    );
    let none = world.call(Method::GET, path, &rob, None).await;
    assert_eq!(none.body["own_credentials"], false);

    let set = world
        .call(
            Method::PUT,
            path,
            &rob,
            Some(json!({"api_key": ACME_NEXT_KEY})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert!(!set.text.contains(ACME_NEXT_KEY));
    let kept = world.call(Method::GET, path, &rob, None).await;
    assert_eq!(kept.body["own_credentials"], true);
    let status = world
        .call(Method::GET, "/api/v1/tenants/acme/status", &rob, None)
        .await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);

    let cleared = world.call(Method::DELETE, path, &rob, None).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    let after = world.call(Method::GET, path, &rob, None).await;
    assert_eq!(after.body["own_credentials"], false);
}

#[tokio::test]
async fn bad_registrations_get_clear_4xx_answers() {
    let (world, root) = world().await;
    let good = connection(&world, "globex", tenant_api_key("globex"));
    for (body, reason) in [
        (
            json!({"id": "Bad Id", "display_name": "x", "connection": good}),
            "invalid_tenant",
        ),
        (
            json!({"id": "ok", "display_name": "   ", "connection": good}),
            "invalid_partition",
        ),
        (
            json!({"id": "ok", "display_name": "x", "colour": "red", "connection": good}),
            "invalid_partition",
        ),
        (
            json!({"id": "ok", "display_name": "x", "vault": "nowhere", "connection": good}),
            "unknown_vault",
        ),
        (
            json!({"id": "acme", "display_name": "x", "connection": good}),
            "partition_exists",
        ),
    ] {
        let answer = world
            .call(
                Method::POST,
                "/api/v1/platform/partitions",
                &root,
                Some(body.clone()),
            )
            .await;
        assert!(answer.status.is_client_error(), "{body}: {}", answer.text);
        assert_eq!(answer.body["reason"], reason, "{body}: {}", answer.text);
    }
    let mut userinfo = good.clone();
    userinfo["endpoint"] = json!("https://user:pw@tsb.example");
    let answer = world
        .call(
            Method::POST,
            "/api/v1/platform/partitions/test-connection",
            &root,
            Some(userinfo),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let mut no_key = good.clone();
    no_key["credentials"] = json!({});
    let answer = world
        .call(
            Method::POST,
            "/api/v1/platform/partitions/test-connection",
            &root,
            Some(no_key),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert_eq!(answer.body["reason"], "invalid_credentials");
}
