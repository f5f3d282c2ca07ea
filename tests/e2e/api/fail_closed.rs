//! Fail-closed over HTTP: while the audit store cannot be written (an emulator fault on data-object
//! creation, which is how audit batches are stored), every state-changing REST request is refused
//! with 503 `audit_unavailable` and changes nothing; once the fault is cleared, the same request
//! goes through, audited.

use km_core::IdentityConfig;
use km_tsb::TsbClient;
use km_tsb_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Answer, ApiWorld, PASSWORD, ROOT_PASSWORD};

/// [`ApiWorld::start`], but over an emulator with its fault-injection admin API.
async fn world_with_faults() -> ApiWorld {
    let emulator = EmulatorConfig {
        admin_api: true,
        ..EmulatorConfig::default()
    };
    ApiWorld::start_over(emulator, IdentityConfig::default()).await
}

/// The answer is 503 problem+json with the stable code `audit_unavailable` and a retry hint.
fn assert_audit_unavailable(answer: &Answer, what: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
        "{what}: {}",
        answer.text
    );
    assert!(
        answer
            .header("content-type")
            .starts_with("application/problem+json"),
        "{what}: {:?}",
        answer.headers
    );
    assert_eq!(answer.header("retry-after"), "1", "{what}");
    assert_eq!(answer.body["status"], 503, "{what}");
    assert_eq!(
        answer.body["request_id"],
        answer.header("x-request-id"),
        "{what}"
    );
}

/// Labels of the management partition's data objects, straight from the emulator (no cache).
async fn stored_labels(world: &ApiWorld) -> Vec<String> {
    let client = TsbClient::builder(world.emulator.base_url())
        .build()
        .unwrap();
    let mut labels = client.list_data_objects().await.unwrap();
    labels.sort();
    labels
}

/// (action, target, phase, outcome) of the audit events of the two changes under test.
async fn events_of_interest(world: &ApiWorld) -> Vec<(String, String, String, String)> {
    let events = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    events
        .iter()
        .filter(|event| {
            event.target.as_deref() == Some("carol") || event.action == "update_platform_settings"
        })
        .map(|event| {
            (
                event.action.clone(),
                event.target.clone().unwrap_or_default(),
                event.details.get("phase").cloned().unwrap_or_default(),
                event.outcome.as_str().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn fail_closed_state_changes_are_refused_while_the_audit_store_is_unwritable() {
    let world = world_with_faults().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let emulator = world.emulator.base_url();
    let admin = reqwest::Client::new();

    let settings_before = world
        .call(Method::GET, "/api/v1/platform/settings", &root, None)
        .await;
    assert_eq!(
        settings_before.status,
        StatusCode::OK,
        "{}",
        settings_before.text
    );
    let mut changed_settings = settings_before.body.clone();
    let threshold = settings_before.body["lockout_threshold"].as_u64().unwrap();
    changed_settings["lockout_threshold"] = json!(threshold + 2);
    let new_user = json!({"username": "carol", "password": PASSWORD, "role": "user"});
    let labels_before = stored_labels(&world).await;

    // The management partition stops accepting new data objects: no audit event can be written.
    let fault = admin
        .post(format!("{emulator}/_emulator/faults"))
        .json(&json!({
            "pathPrefix": "/v1/dataObject", "method": "POST", "status": 500, "errorCode": 701
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status(), StatusCode::CREATED);

    // Reads are not audited and still work ...
    let me = world
        .call(Method::GET, "/api/v1/account", &root, None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    // ... but every state change is refused.
    let refused_user = world
        .call(
            Method::POST,
            "/api/v1/tenants/acme/users",
            &root,
            Some(new_user.clone()),
        )
        .await;
    assert_audit_unavailable(&refused_user, "create user");
    let refused_settings = world
        .call(
            Method::PUT,
            "/api/v1/platform/settings",
            &root,
            Some(changed_settings.clone()),
        )
        .await;
    assert_audit_unavailable(&refused_settings, "update settings");

    let cleared = admin
        .delete(format!("{emulator}/_emulator/faults"))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success(), "{}", cleared.status());

    // Nothing changed: no new data object at all (no user, credential, lock or audit batch), the
    // user does not exist, the settings are as before, and the audit log has no trace of either.
    assert_eq!(stored_labels(&world).await, labels_before);
    let missing = world
        .call(Method::GET, "/api/v1/tenants/acme/users/carol", &root, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    let settings_now = world
        .call(Method::GET, "/api/v1/platform/settings", &root, None)
        .await;
    assert_eq!(settings_now.body, settings_before.body);
    assert_eq!(events_of_interest(&world).await, Vec::new());

    // With the audit store back, the same requests succeed, audited.
    let created = world
        .call(
            Method::POST,
            "/api/v1/tenants/acme/users",
            &root,
            Some(new_user),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let found = world
        .call(Method::GET, "/api/v1/tenants/acme/users/carol", &root, None)
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(found.body["username"], "carol");
    let saved = world
        .call(
            Method::PUT,
            "/api/v1/platform/settings",
            &root,
            Some(changed_settings.clone()),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    let settings_after = world
        .call(Method::GET, "/api/v1/platform/settings", &root, None)
        .await;
    assert_eq!(settings_after.body, changed_settings);
    let expected: Vec<(String, String, String, String)> = [
        ("create_user", "carol", "request"),
        ("create_user", "carol", "result"),
        ("update_platform_settings", "kms.config.public", "request"),
        ("update_platform_settings", "kms.config.public", "result"),
    ]
    .iter()
    .map(|(action, target, phase)| {
        (
            (*action).to_owned(),
            (*target).to_owned(),
            (*phase).to_owned(),
            "success".to_owned(),
        )
    })
    .collect();
    assert_eq!(events_of_interest(&world).await, expected);
}
