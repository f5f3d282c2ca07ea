//! SKA policy authoring and approval requests over the REST API against the real TSB emulator:
//! a policy is validated and applied; a block rule turns a suspension into a request (202) that
//! an approver approves through the TSB's approver API, after which the key is suspended; a
//! modify rule turns a policy change into a request that can be withdrawn; progress names the
//! approvers; the scheduler settles requests; readonly users see but cannot act.

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use km_core::Clock;
use km_domain::TenantId;
use km_tsb::{ApiKeys, ApprovalTaskFilter, ApproverKey, SecretString, TaskKind, TsbClient};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Answer, ApiWorld, Auth, PASSWORD, ROOT_PASSWORD, tenant_api_key};

async fn world() -> (ApiWorld, Auth) {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    (world, root)
}

fn approver() -> ApproverKey {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .unwrap();
    ApproverKey::from_pkcs8_der(pkcs8.as_ref()).unwrap()
}

fn spki(key: &ApproverKey) -> String {
    STANDARD.encode(key.public_key_spki_der())
}

/// A one-group rule: `quorum` of the named approvers.
fn rule(quorum: u32, approvers: &[(&str, &ApproverKey)]) -> Value {
    let approvals: Vec<Value> = approvers
        .iter()
        .map(|(name, key)| json!({"type": "public_key", "name": name, "value": spki(key)}))
        .collect();
    json!({"tokens": [{"name": "officers", "timelock": 0, "timeout": 0,
        "groups": [{"name": "officers", "quorum": quorum, "approvals": approvals}]}]})
}

/// The approver side: a km-tsb client on the tenant's partition.
fn approver_client(world: &ApiWorld) -> TsbClient {
    TsbClient::builder(world.emulator.partition_url("acme"))
        .api_keys(ApiKeys::all(vec![SecretString::from(
            tenant_api_key("acme").to_owned(),
        )]))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn approve(world: &ApiWorld, who: &ApproverKey, kind: TaskKind, request_id: &str) {
    let client = approver_client(world);
    let filter = ApprovalTaskFilter {
        kind,
        request_id: Some(request_id.to_owned()),
        ..ApprovalTaskFilter::default()
    };
    let tasks = client.fetch_approval_tasks(who, &filter).await.unwrap();
    assert_eq!(tasks.len(), 1, "one task for {request_id}");
    client.approve(who, &tasks[0]).await.unwrap();
}

fn path(label: &str, rest: &str) -> String {
    format!("/api/v1/tenants/acme/keys/{label}{rest}")
}

async fn create_key(world: &ApiWorld, auth: &Auth, label: &str) {
    let answer = world
        .call(
            Method::POST,
            "/api/v1/tenants/acme/keys",
            auth,
            Some(json!({"label": label, "algorithm": "EC", "curve": "P-256",
                        "attributes": {"sign": true, "verify": true}})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
}

async fn put_policy(world: &ApiWorld, auth: &Auth, label: &str, policy: Value) -> Answer {
    world
        .call(
            Method::PUT,
            &path(label, "/policy"),
            auth,
            Some(json!({"policy": policy, "reason": "four eyes"})),
        )
        .await
}

async fn get(world: &ApiWorld, auth: &Auth, path: &str) -> Value {
    let answer = world.call(Method::GET, path, auth, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
    answer.body
}

async fn lifecycle(world: &ApiWorld, auth: &Auth, label: &str, event: &str) -> Answer {
    world
        .call(
            Method::POST,
            &path(label, "/lifecycle"),
            auth,
            Some(json!({"event": event, "reason": "incident 7"})),
        )
        .await
}

#[tokio::test]
async fn a_block_rule_turns_a_suspension_into_a_request_that_executes_once_approved() {
    let (world, root) = world().await;
    let label = "treasury-signing";
    create_key(&world, &root, label).await;
    let alice = approver();
    let bob = approver();

    let empty = get(&world, &root, &path(label, "/policy")).await;
    assert_eq!(empty["ska"], true);
    assert_eq!(empty["blocked"], false);
    assert!(empty["policy"]["rule_block"].is_null(), "{empty}");

    // 1 of alice/bob must approve blocking; the modify rule is still empty, so this applies.
    let block_rule = rule(1, &[("alice", &alice), ("bob", &bob)]);
    let applied = put_policy(&world, &root, label, json!({"rule_block": block_rule})).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    assert_eq!(
        applied.body["policy"]["rule_block"]["tokens"][0]["groups"][0]["quorum"],
        1
    );
    assert_eq!(applied.body["pending"], json!([]));

    // Suspending now waits for approval: 202, still active, the request remembered.
    let asked = lifecycle(&world, &root, label, "suspend").await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    assert_eq!(asked.body["state"], "active");
    assert_eq!(asked.body["blocked"], false);
    let pending = &asked.body["pending"][0];
    assert_eq!(pending["change"], "suspend");
    assert_eq!(pending["governed_by"], "block");
    assert_eq!(pending["reason"], "incident 7");
    let request_id = pending["request_id"].as_str().unwrap().to_owned();

    // Nothing else may move the key meanwhile.
    let refused = lifecycle(&world, &root, label, "deactivate").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(refused.body["reason"], "approval_pending");
    assert!(refused.text.contains(&request_id), "{}", refused.text);

    // Progress names the approvers from the policy.
    let progress = get(&world, &root, &path(label, "/requests")).await;
    assert_eq!(progress[0]["request_id"], request_id.as_str());
    assert_eq!(progress[0]["status"], "pending");
    assert_eq!(progress[0]["approvals_collected"], 0);
    assert_eq!(progress[0]["approvals_needed"], 1);
    let mut names: Vec<&str> = progress[0]["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["decision"], "waiting");
            a["name"].as_str().unwrap()
        })
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"]);
    let tenant_wide = get(&world, &root, "/api/v1/tenants/acme/requests").await;
    assert_eq!(tenant_wide[0]["key"], label);
    let dashboard = get(&world, &root, "/api/v1/tenants/acme/dashboard").await;
    assert_eq!(
        dashboard["pending_requests"][0]["request_id"],
        request_id.as_str()
    );
    assert_eq!(dashboard["pending_requests"][0]["change"], "suspend");

    // Bob approves through the TSB; reading the key settles the request.
    approve(&world, &bob, TaskKind::BlockKey, &request_id).await;
    let key = get(&world, &root, &path(label, "")).await;
    assert_eq!(key["state"], "suspended", "{key}");
    assert_eq!(key["blocked"], true);
    assert_eq!(key["pending"], json!([]));
    let last = key["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "suspend");
    assert_eq!(last["to"], "suspended");
    assert!(
        last["reason"].as_str().unwrap().contains(&request_id),
        "{last}"
    );
    assert!(
        get(&world, &root, "/api/v1/tenants/acme/requests")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The settling is in the audit log as the scheduler's.
    let audit = get(
        &world,
        &root,
        "/api/v1/tenants/acme/audit/events?action=edit_key_policy&actor=system:scheduler",
    )
    .await;
    let text = audit.to_string();
    assert!(text.contains(&request_id), "{text}");
    assert!(text.contains("settle_approval_requests"), "{text}");
}

#[tokio::test]
async fn a_modify_rule_holds_policy_changes_which_can_be_withdrawn_or_settled_by_the_scheduler() {
    let (world, root) = world().await;
    let label = "payments-hmac";
    create_key(&world, &root, label).await;
    let alice = approver();
    let guarded = json!({"rule_modify": rule(1, &[("alice", &alice)])});
    assert_eq!(
        put_policy(&world, &root, label, guarded.clone())
            .await
            .status,
        StatusCode::OK
    );

    // The next change waits for alice: 202 with the policy asked for.
    let next = json!({"rule_modify": rule(1, &[("alice", &alice)]),
                      "rule_use": rule(1, &[("alice", &alice)])});
    let waiting = put_policy(&world, &root, label, next.clone()).await;
    assert_eq!(waiting.status, StatusCode::ACCEPTED, "{}", waiting.text);
    let pending = &waiting.body["pending"][0];
    assert_eq!(pending["change"], "policy");
    assert_eq!(pending["governed_by"], "modify");
    assert!(!pending["policy"]["rule_use"].is_null());
    assert!(
        waiting.body["policy"]["rule_use"].is_null(),
        "the old policy stays in force"
    );
    let first = pending["request_id"].as_str().unwrap().to_owned();

    // A second change while one waits is refused.
    let again = put_policy(&world, &root, label, next.clone()).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["reason"], "approval_pending");

    // Withdrawn: the HSM cancels it, the record forgets it, the policy is unchanged.
    let cancelled = world
        .call(
            Method::DELETE,
            &path(label, &format!("/requests/{first}")),
            &root,
            None,
        )
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::NO_CONTENT,
        "{}",
        cancelled.text
    );
    let after = get(&world, &root, &path(label, "/policy")).await;
    assert_eq!(after["pending"], json!([]));
    assert!(after["policy"]["rule_use"].is_null());
    let unknown = world
        .call(
            Method::DELETE,
            &path(label, &format!("/requests/{first}")),
            &root,
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["reason"], "unknown_request");
    let approvals = approver_client(&world);
    let status = approvals.request_status(&first).await.unwrap();
    assert_eq!(format!("{:?}", status.status), "Cancelled");

    // Asked again and approved: the scheduler's run settles it without anyone reading the key.
    let waiting = put_policy(&world, &root, label, next).await;
    assert_eq!(waiting.status, StatusCode::ACCEPTED);
    let second = waiting.body["pending"][0]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    approve(&world, &alice, TaskKind::ModifyKey, &second).await;
    let tenant = TenantId::parse("acme").unwrap();
    world
        .app
        .keys()
        .run_due(&tenant, world.clock.now())
        .await
        .unwrap();
    let record = get(&world, &root, &path(label, "")).await;
    assert_eq!(record["pending"], json!([]));
    let events: Vec<&str> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert!(
        events.ends_with(&["policy-requested", "policy-executed"]),
        "{events:?}"
    );
    let policy = get(&world, &root, &path(label, "/policy")).await;
    assert_eq!(
        policy["policy"]["rule_use"]["tokens"][0]["groups"][0]["approvals"][0]["name"],
        "alice"
    );
}

#[tokio::test]
async fn bad_policies_readonly_users_and_other_tenants_are_refused() {
    let (world, root) = world().await;
    let label = "ledger";
    create_key(&world, &root, label).await;
    let alice = approver();

    // 2 of 1 approver can never be met; timelocks must be whole minutes; unknown fields refused.
    let cases = [
        json!({"rule_block": rule(2, &[("alice", &alice)])}),
        json!({"rule_use": {"tokens": [{"name": "t", "timelock": 61, "timeout": 0,
            "groups": [{"name": "g", "quorum": 1, "approvals": [
                {"type": "public_key", "name": "alice", "value": spki(&alice)}]}]}]}}),
        json!({"rule_use": {"tokens": [{"name": "t", "groups": [{"name": "g", "quorum": 1,
            "approvals": [{"type": "public_key", "value": "not base64!"}]}]}]}}),
        json!({"rule_sideways": null}),
    ];
    for policy in cases {
        let answer = put_policy(&world, &root, label, policy.clone()).await;
        assert!(
            answer.status == StatusCode::UNPROCESSABLE_ENTITY
                || answer.status == StatusCode::BAD_REQUEST,
            "{policy}: {} {}",
            answer.status,
            answer.text
        );
        assert_eq!(
            answer.header("content-type"),
            "application/problem+json",
            "{}",
            answer.text
        );
    }
    assert!(
        get(&world, &root, &path(label, "/policy")).await["policy"]["rule_block"].is_null(),
        "nothing applied"
    );

    world.create_user(&root, "acme", "reader", "readonly").await;
    let reader = world.login("reader", PASSWORD).await;
    assert_eq!(
        get(&world, &reader, &path(label, "/policy")).await["ska"],
        true
    );
    get(&world, &reader, &path(label, "/requests")).await;
    get(&world, &reader, "/api/v1/tenants/acme/approvers").await;
    let forbidden = put_policy(&world, &reader, label, json!({})).await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text
    );

    world
        .create_user(&root, "globex", "outsider", "admin")
        .await;
    let outsider = world.login("outsider", PASSWORD).await;
    for (method, url) in [
        (Method::GET, path(label, "/policy")),
        (Method::GET, path(label, "/requests")),
        (Method::GET, "/api/v1/tenants/acme/requests".to_owned()),
    ] {
        let answer = world.call(method, &url, &outsider, None).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{url}: {}",
            answer.text
        );
    }
    let answer = put_policy(&world, &outsider, label, json!({})).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}
