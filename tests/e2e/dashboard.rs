//! The tenant dashboard over the REST API against the real TSB emulator: the partition, what its
//! TSB reports, keys counted by state and algorithm as they move through their lifecycle, the
//! expiries and destructions of the next 30 days (the horizon moving with the world's
//! `ManualClock`, overdue events until the scheduler runs), readonly access, other tenants "not
//! found", bad input, and a dashboard that still answers while the partition's HSM does not.

use km_core::{Clock, IdentityConfig};
use km_domain::TenantId;
use km_tsb_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Answer, ApiWorld, Auth, PASSWORD, ROOT_PASSWORD, START};

const DAY: u64 = 24 * 60 * 60;

async fn dashboard(world: &ApiWorld, auth: &Auth, tenant: &str) -> Answer {
    world
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{tenant}/dashboard"),
            auth,
            None,
        )
        .await
}

async fn dashboard_ok(world: &ApiWorld, auth: &Auth, tenant: &str) -> Value {
    let answer = dashboard(world, auth, tenant).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body
}

async fn create_key(world: &ApiWorld, auth: &Auth, body: Value) {
    let answer = world
        .call(Method::POST, "/api/v1/tenants/acme/keys", auth, Some(body))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
}

async fn event(world: &ApiWorld, auth: &Auth, label: &str, name: &str) -> Value {
    let answer = world
        .call(
            Method::POST,
            &format!("/api/v1/tenants/acme/keys/{label}/lifecycle"),
            auth,
            Some(json!({"event": name, "reason": "dashboard test"})),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{name} {label}: {}",
        answer.text
    );
    answer.body
}

fn ec(label: &str) -> Value {
    json!({"label": label, "algorithm": "EC", "curve": "P-256",
           "attributes": {"sign": true, "verify": true}})
}

/// `by_state` as (state, count) pairs, in the order the API lists them.
fn states(overview: &Value) -> Vec<(String, u64)> {
    overview["by_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap().to_owned(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn algorithms(overview: &Value) -> Vec<(String, u64)> {
    overview["by_algorithm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["algorithm"].as_str().unwrap().to_owned(),
                a["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `upcoming` as (label, kind, at, overdue).
fn upcoming(overview: &Value) -> Vec<(String, String, u64, bool)> {
    overview["upcoming"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["label"].as_str().unwrap().to_owned(),
                e["kind"].as_str().unwrap().to_owned(),
                e["at"].as_u64().unwrap(),
                e["overdue"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(s, c)| ((*s).to_owned(), *c)).collect()
}

#[tokio::test]
async fn the_dashboard_counts_keys_and_lists_what_falls_due_within_30_days() {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;

    // An empty partition: every state listed with zero, nothing due.
    let empty = dashboard_ok(&world, &root, "acme").await;
    assert_eq!(empty["partition"]["id"], "acme");
    assert_eq!(empty["partition"]["display_name"], "Acme Corp");
    assert_eq!(empty["overview"]["total"], 0);
    assert_eq!(
        states(&empty["overview"]),
        counts(&[
            ("pre-active", 0),
            ("active", 0),
            ("suspended", 0),
            ("deactivated", 0),
            ("compromised", 0),
            ("destroy-scheduled", 0),
            ("destroyed", 0),
        ])
    );
    assert_eq!(empty["overview"]["upcoming"], json!([]));

    let mut expiring = ec("expires-in-10-days");
    expiring["owner"] = json!("team-web");
    expiring["expires_at"] = json!(START + 10 * DAY);
    create_key(&world, &root, expiring).await;
    create_key(
        &world,
        &root,
        json!({"label": "expires-in-40-days", "algorithm": "AES", "key_size": 256,
               "attributes": {"encrypt": true, "decrypt": true}, "expires_at": START + 40 * DAY}),
    )
    .await;
    create_key(&world, &root, ec("paused")).await;
    event(&world, &root, "paused", "suspend").await;
    let mut future = ec("not-yet");
    future["activation_at"] = json!(START + 3 * DAY);
    create_key(&world, &root, future).await;
    create_key(&world, &root, ec("retired")).await;
    event(&world, &root, "retired", "deactivate").await;
    let scheduled = event(&world, &root, "retired", "schedule_destruction").await;
    let destroy_at = scheduled["destruction_at"].as_u64().unwrap();
    assert_eq!(destroy_at, START + 7 * DAY, "the default waiting period");

    let body = dashboard_ok(&world, &root, "acme").await;
    assert_eq!(body["generated_at"], START);
    assert_eq!(body["horizon_secs"], 30 * DAY);
    assert!(body["hsm_error"].is_null(), "{body}");
    assert!(body["overview_error"].is_null(), "{body}");
    let hsm = &body["hsm"];
    assert!(
        hsm["version"].as_str().unwrap().contains("emulator"),
        "{hsm}"
    );
    assert!(!hsm["licenses"].as_array().unwrap().is_empty(), "{hsm}");
    assert_eq!(hsm["statistics"]["secret_keys"], 1, "{hsm}");
    assert_eq!(hsm["statistics"]["private_keys"], 4, "{hsm}");

    let overview = &body["overview"];
    assert_eq!(overview["total"], 5);
    assert_eq!(overview["managed"], 5);
    assert_eq!(
        states(overview),
        counts(&[
            ("pre-active", 1),
            ("active", 2),
            ("suspended", 1),
            ("deactivated", 0),
            ("compromised", 0),
            ("destroy-scheduled", 1),
            ("destroyed", 0),
        ])
    );
    assert_eq!(algorithms(overview), counts(&[("EC", 4), ("AES", 1)]));
    // Due within 30 days: the destruction (7 days) and the expiry (10 days); 40 days is not.
    assert_eq!(
        upcoming(overview),
        vec![
            (
                "retired".to_owned(),
                "destruction".to_owned(),
                destroy_at,
                false
            ),
            (
                "expires-in-10-days".to_owned(),
                "expiry".to_owned(),
                START + 10 * DAY,
                false
            ),
        ]
    );
    let expiry = &overview["upcoming"][1];
    assert_eq!(expiry["state"], "active");
    assert_eq!(expiry["owner"], "team-web");
    assert_eq!(overview["upcoming"][0]["state"], "destroy-scheduled");

    // Eleven days on, before the scheduler ran: both events are overdue, and the horizon now
    // reaches the 40-day expiry.
    world.clock.advance(11 * DAY);
    let root = world.login("root", ROOT_PASSWORD).await;
    let later = dashboard_ok(&world, &root, "acme").await;
    assert_eq!(later["generated_at"], START + 11 * DAY);
    assert_eq!(
        upcoming(&later["overview"]),
        vec![
            (
                "retired".to_owned(),
                "destruction".to_owned(),
                destroy_at,
                true
            ),
            (
                "expires-in-10-days".to_owned(),
                "expiry".to_owned(),
                START + 10 * DAY,
                true
            ),
            (
                "expires-in-40-days".to_owned(),
                "expiry".to_owned(),
                START + 40 * DAY,
                false
            ),
        ]
    );

    // The scheduler destroys and expires (and activates the pre-active key): only the 40-day
    // expiry is left, and the counts follow.
    let tenant = TenantId::parse("acme").unwrap();
    let report = world
        .app
        .keys()
        .run_due(&tenant, world.clock.now())
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    let done = dashboard_ok(&world, &root, "acme").await;
    assert_eq!(
        upcoming(&done["overview"]),
        vec![(
            "expires-in-40-days".to_owned(),
            "expiry".to_owned(),
            START + 40 * DAY,
            false
        )]
    );
    assert_eq!(
        states(&done["overview"]),
        counts(&[
            ("pre-active", 0),
            ("active", 2),
            ("suspended", 1),
            ("deactivated", 1),
            ("compromised", 0),
            ("destroy-scheduled", 0),
            ("destroyed", 1),
        ])
    );
}

#[tokio::test]
async fn readonly_members_read_it_and_other_tenants_do_not_exist() {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    world.create_user(&root, "acme", "reader", "readonly").await;
    world
        .create_user(&root, "globex", "outsider", "admin")
        .await;
    let mut key = ec("soon");
    key["expires_at"] = json!(START + 2 * DAY);
    create_key(&world, &root, key).await;

    let reader = world.login("reader", PASSWORD).await;
    let seen = dashboard_ok(&world, &reader, "acme").await;
    assert_eq!(seen["overview"]["total"], 1);
    assert_eq!(seen["overview"]["upcoming"][0]["label"], "soon");

    let outsider = world.login("outsider", PASSWORD).await;
    for tenant in ["acme", "no-such-tenant"] {
        let refused = dashboard(&world, &outsider, tenant).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{tenant}: {}",
            refused.text
        );
    }
    // The reader has no role on globex either.
    let refused = dashboard(&world, &reader, "globex").await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);

    let anonymous = dashboard(&world, &Auth::Anonymous, "acme").await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated"),
        "{}",
        anonymous.text
    );
    let bad = dashboard(&world, &root, "Not%20A%20Tenant").await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_input"),
        "{}",
        bad.text
    );
    assert_eq!(bad.body["reason"], "invalid_tenant");
    assert!(
        bad.header("content-type")
            .starts_with("application/problem+json")
    );
}

#[tokio::test]
async fn the_dashboard_still_answers_while_the_partitions_hsm_does_not() {
    let emulator = EmulatorConfig {
        admin_api: true,
        ..EmulatorConfig::default()
    };
    let world = ApiWorld::start_over(emulator, IdentityConfig::default()).await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let mut key = ec("soon");
    key["expires_at"] = json!(START + 5 * DAY);
    create_key(&world, &root, key).await;
    // acme's inventory is cached now; globex's was never read.
    dashboard_ok(&world, &root, "acme").await;

    let admin = reqwest::Client::new();
    for tenant in ["acme", "globex"] {
        let fault = admin
            .post(format!("{}/_emulator/faults", world.emulator.base_url()))
            .json(&json!({"pathPrefix": "/v1", "partition": tenant,
                          "status": 500, "errorCode": 701}))
            .send()
            .await
            .unwrap();
        assert_eq!(fault.status(), StatusCode::CREATED);
    }

    // The TSB part is replaced by its error; the keys come from the cache.
    let body = dashboard_ok(&world, &root, "acme").await;
    assert!(body["hsm"].is_null(), "{body}");
    assert_eq!(
        body["hsm_error"]["code"], "partition_connection_failed",
        "{body}"
    );
    assert!(
        !body["hsm_error"]["message"].as_str().unwrap().is_empty(),
        "{body}"
    );
    assert_eq!(body["overview"]["total"], 1, "{body}");
    assert_eq!(body["overview"]["upcoming"][0]["label"], "soon");
    assert_eq!(body["partition"]["display_name"], "Acme Corp");

    // Nothing cached and no HSM: still a dashboard, naming what is missing and why.
    let blind = dashboard_ok(&world, &root, "globex").await;
    assert_eq!(blind["partition"]["id"], "globex");
    assert_eq!(blind["hsm_error"]["code"], "partition_connection_failed");
    assert!(blind["overview"].is_null(), "{blind}");
    assert_eq!(
        blind["overview_error"]["code"], "partition_connection_failed",
        "{blind}"
    );
}
