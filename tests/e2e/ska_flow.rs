//! The SKA (Smart Key Attributes) workflow through the `km-tsb` SDK against the emulator:
//! asynchronous requests, approval tasks signed by approver keys generated here (aws-lc-rs EC
//! P-256 and Ed25519), quorum, rejection, timeout, cancellation, timelock, refusal of foreign and
//! forged approvals, block/unblock/modify under approval, and filtered request lists.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ParsedPublicKey};
use km_tsb::{
    Approval, ApprovalRequest, ApprovalTaskFilter, ApproverKey, BlockRequest, CreateKeyRequest,
    CsrRequest, DecryptRequest, EncryptRequest, FilteredApprovalTaskRequest, Group, KeyAttributes,
    KeyStatus, ModifyRequest, Policy, RejectTaskRequest, RequestFilter, RequestState, Rule,
    SelfSignCertificateRequest, SignCertificateRequest, SignRequest, StandardCertificateAttributes,
    TaskKind, TaskType, Token, TsbClient, UnblockRequest, UnwrapKeyRequest, VerifyRequest,
    WrapKeyRequest,
};

use crate::tsb_contract::{
    advance_clock, approve_all, b64, client, ed25519_approver, emulator, emulator_with_admin,
    expect_api_error, p256_approver, p256_key, task_for, wait_final,
};

/// One token, one group: `quorum` of `approvers`.
fn rule(approvers: &[&ApproverKey], quorum: u32, timelock: u64, timeout: u64) -> Rule {
    let approvals = approvers
        .iter()
        .enumerate()
        .map(|(i, a)| Approval::public_key(Some(format!("approver-{i}")), a.public_key_spki_der()))
        .collect();
    Rule {
        tokens: vec![Token {
            name: "main".into(),
            timelock,
            timeout,
            groups: Some(vec![Group {
                name: "signers".into(),
                quorum,
                approvals,
            }]),
        }],
    }
}

/// A policy where only `ruleUse` needs approvals.
fn use_policy(rule_use: Rule) -> Policy {
    Policy {
        rule_use: Some(rule_use),
        rule_block: None,
        rule_unblock: None,
        rule_modify: None,
        key_status: Some(KeyStatus { blocked: false }),
    }
}

async fn ska_p256_key(c: &TsbClient, label: &str, policy: Policy) -> Vec<u8> {
    let mut request = p256_key(label);
    request.policy = Some(policy);
    let descriptor = c.create_key(&request).await.expect("SKA key");
    assert!(descriptor.json.is_ska());
    descriptor.json.public_key.expect("public key")
}

fn verify_request(label: &str, payload: &[u8], signature: &[u8]) -> VerifyRequest {
    VerifyRequest {
        sign_key_name: label.to_owned(),
        master_key_password: None,
        signature_algorithm: "SHA256_WITH_ECDSA".into(),
        payload: payload.to_vec(),
        signature: signature.to_vec(),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// THE must-show SKA flow: 2-of-3 approvers; PENDING after one approval, EXECUTED after two; the
/// resulting signature verifies through the SDK and independently with aws-lc-rs.
#[tokio::test]
async fn two_of_three_approvals_execute_a_signature() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let (alice, bob, carol) = (p256_approver(), p256_approver(), ed25519_approver());
    let spki = ska_p256_key(
        &c,
        "payments",
        use_policy(rule(&[&alice, &bob, &carol], 2, 0, 0)),
    )
    .await;
    let (a, b, cc) = (
        b64(alice.public_key_spki_der()),
        b64(bob.public_key_spki_der()),
        b64(carol.public_key_spki_der()),
    );

    let payload = b"pay 1000 CHF to IBAN CH93 0076 2011 6238 5295 7".to_vec();
    let request = SignRequest::new("payments", "SHA256_WITH_ECDSA", payload.clone());
    // Synchronous use is refused: the key needs approvals (401 missing.approval).
    let refused = expect_api_error(c.sign(&request).await, 400, 401);
    assert_eq!(refused.reason(), Some("res.error.missing.approval"));

    let id = c
        .sign_async(&request)
        .await
        .expect("sign request submitted");
    let status = c.request_status(&id).await.expect("status");
    assert_eq!(status.id, id);
    assert_eq!(status.status, RequestState::Pending);
    assert!(status.approved_by.is_empty() && status.result.is_none());
    assert_eq!(
        sorted(status.not_yet_approved_by),
        sorted(vec![a.clone(), b.clone(), cc.clone()])
    );

    // Alice's task (sign tasks endpoint) carries the request, the key and the operation type.
    let sign_tasks = ApprovalTaskFilter {
        kind: TaskKind::Sign,
        ..ApprovalTaskFilter::default()
    };
    let tasks = c
        .fetch_approval_tasks(&alice, &sign_tasks)
        .await
        .expect("alice's tasks");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = &tasks[0];
    assert_eq!(task.request_id.as_deref(), Some(id.as_str()));
    assert_eq!(task.key_name.as_deref(), Some("payments"));
    assert_eq!(task.task_type, Some(TaskType::Sign));
    assert!(!task.approval_to_be_signed.is_empty());
    c.approve(&alice, task).await.expect("alice approves");

    let status = c.request_status(&id).await.expect("status");
    assert_eq!(
        status.status,
        RequestState::Pending,
        "1 of 2 approvals: {status:?}"
    );
    assert_eq!(status.approved_by, vec![a.clone()]);
    assert_eq!(status.not_yet_approved_by.len(), 2);
    assert_eq!(
        sorted(status.not_yet_approved_by),
        sorted(vec![b.clone(), cc.clone()])
    );
    // Alice's task is done; she sees nothing more.
    assert!(
        c.fetch_approval_tasks(&alice, &sign_tasks)
            .await
            .expect("tasks")
            .is_empty()
    );

    // Carol (Ed25519) approves: quorum reached.
    approve_all(&c, &[&carol], &id).await;
    let done = wait_final(&c, &id).await;
    assert_eq!(done.status, RequestState::Executed, "{done:?}");
    assert_eq!(sorted(done.approved_by.clone()), sorted(vec![a, cc]));
    let executed_at = done.executed_at().expect("executionTime");
    assert!(
        (time::OffsetDateTime::now_utc() - executed_at)
            .whole_seconds()
            .abs()
            < 120
    );
    let signature = done
        .result_bytes()
        .expect("result")
        .expect("base64 signature");
    assert!(
        c.verify(&verify_request("payments", &payload, &signature))
            .await
            .expect("verify")
    );
    assert!(
        !c.verify(&verify_request("payments", b"pay 9999 CHF", &signature))
            .await
            .expect("verify")
    );
    ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &spki)
        .expect("key SPKI")
        .verify_sig(&payload, &signature)
        .expect("signature verifies independently of the emulator");
    // Bob's task disappeared with the executed request.
    assert!(
        c.fetch_approval_tasks(&bob, &ApprovalTaskFilter::default())
            .await
            .expect("tasks")
            .is_empty()
    );
}

#[tokio::test]
async fn two_rejections_of_three_reject_the_request() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let (alice, bob, carol) = (p256_approver(), ed25519_approver(), p256_approver());
    ska_p256_key(
        &c,
        "rejected-key",
        use_policy(rule(&[&alice, &bob, &carol], 2, 0, 0)),
    )
    .await;
    let id = c
        .sign_async(&SignRequest::new(
            "rejected-key",
            "SHA256_WITH_ECDSA",
            b"no".to_vec(),
        ))
        .await
        .expect("submitted");
    let carol_task = task_for(&c, &carol, &id).await;

    let alice_task = task_for(&c, &alice, &id).await;
    c.reject(&alice, &alice_task.id)
        .await
        .expect("alice rejects");
    let status = c.request_status(&id).await.expect("status");
    assert_eq!(
        status.status,
        RequestState::Pending,
        "2 of 2 remaining can still approve"
    );
    assert_eq!(status.rejected_by, vec![b64(alice.public_key_spki_der())]);
    // A rejected task cannot be rejected twice.
    expect_api_error(c.reject(&alice, &alice_task.id).await, 404, 652);
    // A rejection needs a valid timestamp signature of the task's approver (403 otherwise).
    let bob_task = task_for(&c, &bob, &id).await;
    let (timestamp, _) = bob
        .sign_timestamp(time::OffsetDateTime::now_utc() - time::Duration::seconds(5))
        .expect("timestamp");
    let forged = RejectTaskRequest {
        id: bob_task.id.clone(),
        timestamp_signature: carol.sign(timestamp.as_bytes()).expect("sign"),
        timestamp,
        timestamp_digest_algorithm: bob.digest_algorithm().to_owned(),
        approver_public_key: Some(bob.public_key_spki_der().to_vec()),
        approver_certificate: None,
    };
    expect_api_error(c.reject_task(&forged).await, 400, 403);
    assert!(
        c.request_status(&id)
            .await
            .expect("status")
            .rejected_by
            .len()
            == 1
    );

    let when = time::OffsetDateTime::now_utc() - time::Duration::seconds(30);
    c.reject_at(&bob, &bob_task.id, when)
        .await
        .expect("bob rejects");
    let status = c.request_status(&id).await.expect("status");
    assert_eq!(status.status, RequestState::Rejected, "{status:?}");
    assert_eq!(status.rejected_by.len(), 2);
    assert!(status.result.is_none());
    // Too late for carol.
    expect_api_error(c.approve(&carol, &carol_task).await, 404, 652);
    assert_eq!(
        c.request_status(&id).await.expect("status").status,
        RequestState::Rejected
    );
}

#[tokio::test]
async fn timeout_expires_a_request_and_later_approvals_fail() {
    let emu = emulator_with_admin().await;
    let c = client(&emu.base_url());
    let (alice, bob, carol) = (p256_approver(), p256_approver(), p256_approver());
    ska_p256_key(
        &c,
        "expiring",
        use_policy(rule(&[&alice, &bob, &carol], 2, 0, 60)),
    )
    .await;
    let id = c
        .sign_async(&SignRequest::new(
            "expiring",
            "SHA256_WITH_ECDSA",
            b"late".to_vec(),
        ))
        .await
        .expect("submitted");
    approve_all(&c, &[&alice], &id).await;
    let bob_task = task_for(&c, &bob, &id).await;

    advance_clock(&emu.base_url(), 61).await;
    let status = c.request_status(&id).await.expect("status");
    assert_eq!(status.status, RequestState::Expired, "{status:?}");
    assert!(status.result.is_none());
    expect_api_error(c.approve(&bob, &bob_task).await, 404, 652);
    assert!(
        c.fetch_approval_tasks(&carol, &ApprovalTaskFilter::default())
            .await
            .expect("tasks")
            .is_empty()
    );
    assert_eq!(
        c.request_status(&id).await.expect("status").status,
        RequestState::Expired
    );
}

#[tokio::test]
async fn cancelled_request_cannot_be_approved() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let alice = p256_approver();
    ska_p256_key(&c, "cancelled-key", use_policy(rule(&[&alice], 1, 0, 0))).await;
    let id = c
        .sign_async(&SignRequest::new(
            "cancelled-key",
            "SHA256_WITH_ECDSA",
            b"x".to_vec(),
        ))
        .await
        .expect("submitted");
    let task = task_for(&c, &alice, &id).await;
    c.cancel_request(&id).await.expect("cancel");
    let status = c.request_status(&id).await.expect("status");
    assert_eq!(status.status, RequestState::Cancelled);
    assert!(status.result.is_none());
    expect_api_error(c.approve(&alice, &task).await, 404, 652);
    assert_eq!(
        c.request_status(&id).await.expect("status").status,
        RequestState::Cancelled
    );
    let error = expect_api_error(
        c.cancel_request("0b0f6f4e-9a49-4d0a-8e0e-9d7c2b1a0f11")
            .await,
        404,
        651,
    );
    assert!(error.is_not_found());

    // Deleting a key cancels its open requests.
    let second = c
        .sign_async(&SignRequest::new(
            "cancelled-key",
            "SHA256_WITH_ECDSA",
            b"y".to_vec(),
        ))
        .await
        .expect("submitted");
    c.delete_key("cancelled-key").await.expect("delete key");
    assert_eq!(
        c.request_status(&second).await.expect("status").status,
        RequestState::Cancelled
    );
}

#[tokio::test]
async fn timelock_holds_execution_until_it_has_passed() {
    let emu = emulator_with_admin().await;
    let c = client(&emu.base_url());
    let (alice, bob) = (p256_approver(), ed25519_approver());
    let spki = ska_p256_key(
        &c,
        "timelocked",
        use_policy(rule(&[&alice, &bob], 2, 60, 600)),
    )
    .await;
    let payload = b"release after the timelock".to_vec();
    let id = c
        .sign_async(&SignRequest::new(
            "timelocked",
            "SHA256_WITH_ECDSA",
            payload.clone(),
        ))
        .await
        .expect("submitted");
    approve_all(&c, &[&alice, &bob], &id).await;
    let status = c.request_status(&id).await.expect("status");
    assert_eq!(
        status.status,
        RequestState::Approved,
        "quorum reached, timelock running: {status:?}"
    );
    assert!(status.result.is_none() && status.execution_time.is_none());

    advance_clock(&emu.base_url(), 30).await;
    assert_eq!(
        c.request_status(&id).await.expect("status").status,
        RequestState::Approved
    );

    advance_clock(&emu.base_url(), 31).await;
    let done = wait_final(&c, &id).await;
    assert_eq!(done.status, RequestState::Executed, "{done:?}");
    let signature = done.result_bytes().expect("result").expect("base64");
    ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &spki)
        .expect("SPKI")
        .verify_sig(&payload, &signature)
        .expect("signature verifies");
}

#[tokio::test]
async fn foreign_forged_and_stale_approvals_are_refused() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let (alice, bob, carol) = (p256_approver(), p256_approver(), ed25519_approver());
    let outsider = p256_approver();
    ska_p256_key(
        &c,
        "guarded",
        use_policy(rule(&[&alice, &bob, &carol], 2, 0, 0)),
    )
    .await;
    let id = c
        .sign_async(&SignRequest::new(
            "guarded",
            "SHA256_WITH_ECDSA",
            b"guarded".to_vec(),
        ))
        .await
        .expect("submitted");

    // An approver outside the policy has no tasks, and cannot approve someone else's task.
    assert!(
        c.fetch_approval_tasks(&outsider, &ApprovalTaskFilter::default())
            .await
            .expect("tasks")
            .is_empty()
    );
    let alice_task = task_for(&c, &alice, &id).await;
    let foreign = c
        .approve(&outsider, &alice_task)
        .await
        .expect_err("outsider approval");
    assert_eq!(foreign.tsb_code(), Some(400), "{foreign:?}");
    assert_eq!(foreign.http_status(), Some(403), "{foreign:?}");

    // Alice's identity with a signature by another key: 403 input.invalid.signature.
    let forged = ApprovalRequest {
        id: alice_task.id.clone(),
        approval_to_be_signed: alice_task.approval_to_be_signed.clone(),
        signature: outsider
            .sign(&alice_task.approval_to_be_signed)
            .expect("sign"),
        approval_digest_algorithm: "SHA-256".into(),
        approver_public_key: Some(alice.public_key_spki_der().to_vec()),
        approver_certificate: None,
    };
    expect_api_error(c.submit_approval(&forged).await, 400, 403);
    // Alice's signature over different bytes than the challenge.
    let wrong_bytes = ApprovalRequest {
        signature: alice.sign(b"something else").expect("sign"),
        ..forged.clone()
    };
    expect_api_error(c.submit_approval(&wrong_bytes).await, 400, 403);

    // Fetching with a forged timestamp signature, or a stale timestamp.
    let (timestamp, _) = alice
        .sign_timestamp(time::OffsetDateTime::now_utc() - time::Duration::seconds(5))
        .expect("timestamp");
    let forged_fetch = FilteredApprovalTaskRequest {
        timestamp_signature: signature_for(&outsider, &timestamp),
        ..fetch_body(&alice, timestamp.clone())
    };
    expect_api_error(
        c.filtered_approval_tasks(TaskKind::All, &forged_fetch)
            .await,
        400,
        403,
    );
    let genuine = FilteredApprovalTaskRequest {
        timestamp_signature: alice.sign(timestamp.as_bytes()).expect("sign"),
        ..fetch_body(&alice, timestamp)
    };
    let tasks = c
        .filtered_approval_tasks(TaskKind::All, &genuine)
        .await
        .expect("genuine fetch");
    assert_eq!(tasks.len(), 1);
    let stale = time::OffsetDateTime::now_utc() - time::Duration::seconds(700);
    expect_api_error(
        c.fetch_approval_tasks_at(&alice, &ApprovalTaskFilter::default(), stale)
            .await,
        400,
        404,
    );
    let future = time::OffsetDateTime::now_utc() + time::Duration::seconds(120);
    expect_api_error(
        c.fetch_approval_tasks_at(&alice, &ApprovalTaskFilter::default(), future)
            .await,
        400,
        404,
    );
    let recent = time::OffsetDateTime::now_utc() - time::Duration::seconds(60);
    assert_eq!(
        c.fetch_approval_tasks_at(&alice, &ApprovalTaskFilter::default(), recent)
            .await
            .expect("a minute old is fine")
            .len(),
        1
    );

    // Nothing of this counted.
    let status = c.request_status(&id).await.expect("status");
    assert_eq!(status.status, RequestState::Pending);
    assert!(
        status.approved_by.is_empty() && status.rejected_by.is_empty(),
        "{status:?}"
    );
    approve_all(&c, &[&alice, &bob], &id).await;
    assert_eq!(wait_final(&c, &id).await.status, RequestState::Executed);
}

fn fetch_body(approver: &ApproverKey, timestamp: String) -> FilteredApprovalTaskRequest {
    FilteredApprovalTaskRequest {
        timestamp,
        timestamp_signature: Vec::new(),
        approver_public_key: Some(approver.public_key_spki_der().to_vec()),
        approver_certificate: None,
        timestamp_digest_algorithm: approver.digest_algorithm().to_owned(),
        id: None,
        request_id: None,
        detail_level: None,
        paging: None,
    }
}

#[tokio::test]
async fn block_unblock_and_modify_need_their_approvals() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let (alice, bob) = (p256_approver(), ed25519_approver());
    let governed = rule(&[&alice, &bob], 1, 0, 0);
    let policy = Policy {
        rule_use: None,
        rule_block: Some(governed.clone()),
        rule_unblock: Some(rule(&[&alice, &bob], 2, 0, 0)),
        rule_modify: Some(governed.clone()),
        key_status: Some(KeyStatus { blocked: false }),
    };
    ska_p256_key(&c, "managed", policy).await;
    let sign = SignRequest::new("managed", "SHA256_WITH_ECDSA", b"use".to_vec());
    c.sign(&sign)
        .await
        .expect("ruleUse null: usable synchronously");

    // Block: synchronous refused, asynchronous with one approval.
    expect_api_error(c.block("managed").await, 400, 401);
    let mut block = BlockRequest::new("managed");
    block.meta_data = Some(br#"{"reason":"incident 42"}"#.to_vec());
    let id = c.block_async_with(&block).await.expect("block request");
    let filter = ApprovalTaskFilter {
        kind: TaskKind::BlockKey,
        detail_level: Some("level2".into()),
        ..ApprovalTaskFilter::default()
    };
    let tasks = c
        .fetch_approval_tasks(&bob, &filter)
        .await
        .expect("block tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_type, Some(TaskType::Block));
    assert_eq!(
        tasks[0].meta_data.as_deref(),
        Some(br#"{"reason":"incident 42"}"#.as_slice())
    );
    c.approve(&bob, &tasks[0]).await.expect("approve block");
    assert_eq!(wait_final(&c, &id).await.status, RequestState::Executed);
    assert!(
        c.key_attributes("managed", None)
            .await
            .expect("attributes")
            .json
            .is_blocked()
    );
    expect_api_error(c.sign(&sign).await, 500, 701);
    let refused = c
        .sign_async(&sign)
        .await
        .expect_err("no requests on a blocked key");
    assert_eq!(refused.tsb_code(), Some(701), "{refused:?}");

    // Unblock needs both approvers.
    expect_api_error(c.unblock("managed").await, 400, 401);
    let id = c.unblock_async("managed").await.expect("unblock request");
    let unblock_tasks = ApprovalTaskFilter {
        kind: TaskKind::UnblockKey,
        ..ApprovalTaskFilter::default()
    };
    let alice_tasks = c
        .fetch_approval_tasks(&alice, &unblock_tasks)
        .await
        .expect("tasks");
    assert_eq!(alice_tasks.len(), 1);
    c.approve(&alice, &alice_tasks[0]).await.expect("approve");
    assert_eq!(
        c.request_status(&id).await.expect("status").status,
        RequestState::Pending
    );
    assert!(
        c.key_attributes("managed", None)
            .await
            .expect("attributes")
            .json
            .is_blocked()
    );
    approve_all(&c, &[&bob], &id).await;
    assert_eq!(wait_final(&c, &id).await.status, RequestState::Executed);
    assert!(
        !c.key_attributes("managed", None)
            .await
            .expect("attributes")
            .json
            .is_blocked()
    );
    c.sign(&sign).await.expect("usable again");

    // The unblock_async_with / block_async variants go through the same path.
    let id = c.block_async("managed").await.expect("block again");
    approve_all(&c, &[&alice], &id).await;
    assert_eq!(wait_final(&c, &id).await.status, RequestState::Executed);
    let mut unblock = UnblockRequest::new("managed");
    unblock.meta_data = Some(b"{}".to_vec());
    let id = c.unblock_async_with(&unblock).await.expect("unblock again");
    approve_all(&c, &[&alice, &bob], &id).await;
    assert_eq!(wait_final(&c, &id).await.status, RequestState::Executed);

    // Modify: from now on every use needs alice.
    let stricter = Policy {
        rule_use: Some(rule(&[&alice], 1, 0, 0)),
        rule_block: Some(governed.clone()),
        rule_unblock: Some(governed.clone()),
        rule_modify: Some(governed),
        key_status: Some(KeyStatus { blocked: false }),
    };
    expect_api_error(c.modify("managed", &stricter).await, 400, 401);
    let id = c
        .modify_async("managed", &stricter)
        .await
        .expect("modify request");
    let modify_tasks = ApprovalTaskFilter {
        kind: TaskKind::ModifyKey,
        ..ApprovalTaskFilter::default()
    };
    let tasks = c
        .fetch_approval_tasks(&alice, &modify_tasks)
        .await
        .expect("tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_type, Some(TaskType::Modify));
    c.approve(&alice, &tasks[0]).await.expect("approve modify");
    assert_eq!(wait_final(&c, &id).await.status, RequestState::Executed);
    let policy = c
        .key_attributes("managed", None)
        .await
        .expect("attributes")
        .json
        .policy
        .expect("policy");
    let rule_use = policy.rule_use.expect("ruleUse set by modify");
    let group = &rule_use.tokens[0].groups.as_ref().expect("groups")[0];
    assert_eq!(group.quorum, 1);
    assert_eq!(group.approvals.len(), 1);
    assert_eq!(
        group.approvals[0].value.as_deref(),
        Some(b64(alice.public_key_spki_der()).as_str())
    );
    expect_api_error(c.sign(&sign).await, 400, 401);

    // modify_async_with: back to free use, approved by bob.
    let relaxed = Policy {
        rule_use: None,
        ..policy
    };
    let id = c
        .modify_async_with(&ModifyRequest::new("managed", relaxed))
        .await
        .expect("modify request");
    approve_all(&c, &[&bob], &id).await;
    assert_eq!(wait_final(&c, &id).await.status, RequestState::Executed);
    c.sign(&sign).await.expect("free use again");
}

#[tokio::test]
async fn empty_policy_ska_keys_are_usable_and_governable_synchronously() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let alice = p256_approver();
    ska_p256_key(&c, "empty-policy", Policy::empty_ska()).await;
    let info = c
        .key_attributes("empty-policy", None)
        .await
        .expect("attributes")
        .json;
    assert!(info.is_ska() && !info.is_blocked());
    let sign = SignRequest::new("empty-policy", "SHA256_WITH_ECDSA", b"free".to_vec());
    let signature = c.sign(&sign).await.expect("sync sign");
    assert!(
        c.verify(&verify_request("empty-policy", b"free", &signature))
            .await
            .expect("verify")
    );

    // Synchronous block/unblock: always-fulfilled rules, including the *_with variants.
    c.block_with(&BlockRequest::new("empty-policy"))
        .await
        .expect("block");
    expect_api_error(c.sign(&sign).await, 500, 701);
    c.unblock_with(&UnblockRequest::new("empty-policy"))
        .await
        .expect("unblock");
    c.sign(&sign).await.expect("usable again");

    // Synchronous modify (ruleModify null) to a policy whose ruleUse needs approvals.
    c.modify_with(&ModifyRequest::new(
        "empty-policy",
        use_policy(rule(&[&alice], 1, 0, 0)),
    ))
    .await
    .expect("modify");
    expect_api_error(c.sign(&sign).await, 400, 401);
    let id = c.sign_async(&sign).await.expect("async sign");
    approve_all(&c, &[&alice], &id).await;
    assert_eq!(wait_final(&c, &id).await.status, RequestState::Executed);
    // ruleModify is still null: the policy can be emptied again synchronously.
    c.modify("empty-policy", &Policy::empty_ska())
        .await
        .expect("modify back");
    c.sign(&sign).await.expect("sync sign again");

    // A token with `groups: null` is always fulfillable: synchronous use works.
    let open_token = Policy {
        rule_use: Some(Rule {
            tokens: vec![Token {
                name: "open".into(),
                timelock: 0,
                timeout: 0,
                groups: None,
            }],
        }),
        ..Policy::empty_ska()
    };
    c.modify("empty-policy", &open_token)
        .await
        .expect("modify to an open token");
    c.sign(&sign)
        .await
        .expect("groups:null token needs no approval");

    // A plain key (policy null) can never become SKA, nor be blocked.
    c.create_key(&p256_key("plain")).await.expect("plain key");
    expect_api_error(c.modify("plain", &Policy::empty_ska()).await, 400, 614);
    expect_api_error(c.block("plain").await, 400, 614);
    // The async path on a plain key executes at once.
    let id = c
        .sign_async(&SignRequest::new(
            "plain",
            "SHA256_WITH_ECDSA",
            b"now".to_vec(),
        ))
        .await
        .expect("async on a plain key");
    let done = c.request_status(&id).await.expect("status");
    assert_eq!(done.status, RequestState::Executed, "{done:?}");
    assert!(done.approved_by.is_empty() && done.not_yet_approved_by.is_empty());
}

#[tokio::test]
async fn filtered_requests_select_by_status_and_key() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let alice = p256_approver();
    ska_p256_key(&c, "filter-a", use_policy(rule(&[&alice], 1, 0, 0))).await;
    ska_p256_key(&c, "filter-b", use_policy(rule(&[&alice], 1, 0, 0))).await;
    let submit = |label: &'static str| {
        let c = c.clone();
        async move {
            c.sign_async(&SignRequest::new(label, "SHA256_WITH_ECDSA", b"f".to_vec()))
                .await
                .expect("submitted")
        }
    };
    let executed = submit("filter-a").await;
    approve_all(&c, &[&alice], &executed).await;
    assert_eq!(
        wait_final(&c, &executed).await.status,
        RequestState::Executed
    );
    let pending = submit("filter-a").await;
    let cancelled = submit("filter-b").await;
    c.cancel_request(&cancelled).await.expect("cancel");
    let pending_b = submit("filter-b").await;

    let ids = |list: Vec<km_tsb::RequestStatus>| sorted(list.into_iter().map(|r| r.id).collect());
    let by = |status: Vec<RequestState>, key: Option<&str>| RequestFilter {
        status: Some(status),
        key_name: key.map(str::to_owned),
    };
    assert_eq!(
        ids(c
            .filtered_requests(&by(vec![RequestState::Pending], None))
            .await
            .expect("filter")),
        sorted(vec![pending.clone(), pending_b.clone()])
    );
    assert_eq!(
        ids(c
            .filtered_requests(&by(vec![RequestState::Executed], None))
            .await
            .expect("filter")),
        vec![executed.clone()]
    );
    assert_eq!(
        ids(c
            .filtered_requests(&by(vec![RequestState::Cancelled], None))
            .await
            .expect("filter")),
        vec![cancelled.clone()]
    );
    assert_eq!(
        ids(c
            .filtered_requests(&by(vec![RequestState::Pending], Some("filter-a")))
            .await
            .expect("filter")),
        vec![pending.clone()]
    );
    assert_eq!(
        ids(c
            .filtered_requests(&by(
                vec![RequestState::Executed, RequestState::Cancelled],
                None
            ))
            .await
            .expect("filter")),
        sorted(vec![executed.clone(), cancelled.clone()])
    );
    assert!(
        c.filtered_requests(&by(vec![RequestState::Rejected], None))
            .await
            .expect("filter")
            .is_empty()
    );
    let all = c
        .filtered_requests(&RequestFilter::default())
        .await
        .expect("all");
    assert_eq!(
        ids(all),
        sorted(vec![executed, pending, cancelled, pending_b])
    );
}

#[tokio::test]
async fn every_asynchronous_operation_kind_executes_after_approval() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let approver = ed25519_approver();
    let attributes = KeyAttributes {
        sign: Some(true),
        verify: Some(true),
        decrypt: Some(true),
        encrypt: Some(true),
        unwrap: Some(true),
        wrap: Some(true),
        ..KeyAttributes::default()
    };
    let mut rsa = CreateKeyRequest::new("ska-rsa", "RSA", attributes);
    rsa.key_size = Some(2048);
    rsa.policy = Some(use_policy(rule(&[&approver], 1, 0, 0)));
    c.create_key(&rsa).await.expect("SKA RSA key");

    let run = |id: String, expected: TaskType| {
        let c = c.clone();
        let approver = &approver;
        async move {
            let task = task_for(&c, approver, &id).await;
            assert_eq!(task.task_type, Some(expected), "{task:?}");
            c.approve(approver, &task).await.expect("approve");
            let done = wait_final(&c, &id).await;
            assert_eq!(done.status, RequestState::Executed, "{done:?}");
            done.result.expect("result")
        }
    };

    // Decrypt.
    let plaintext = b"only with approval".to_vec();
    let encrypted = c
        .encrypt(&EncryptRequest::new(
            "ska-rsa",
            "RSA_PADDING_OAEP_WITH_SHA256",
            plaintext.clone(),
        ))
        .await
        .expect("public-key encrypt needs no approval");
    let decrypt = DecryptRequest::new(
        "ska-rsa",
        "RSA_PADDING_OAEP_WITH_SHA256",
        encrypted.encrypted_payload,
    );
    expect_api_error(c.decrypt(&decrypt).await, 400, 401);
    let result = run(
        c.decrypt_async(&decrypt).await.expect("decrypt request"),
        TaskType::Decrypt,
    )
    .await;
    assert_eq!(result, b64(&plaintext));

    // Unwrap an AES key wrapped (RSA-OAEP) under the SKA key, then use the copy.
    let mut aes = CreateKeyRequest::new(
        "aes-original",
        "AES",
        KeyAttributes {
            encrypt: Some(true),
            decrypt: Some(true),
            extractable: Some(true),
            ..KeyAttributes::default()
        },
    );
    aes.key_size = Some(256);
    c.create_key(&aes).await.expect("AES key");
    let wrapped = c
        .wrap(&WrapKeyRequest {
            key_to_be_wrapped: "aes-original".into(),
            key_to_be_wrapped_password: None,
            wrap_key_name: "ska-rsa".into(),
            wrap_key_password: None,
            wrap_method: "RSA_WRAP_OAEP".into(),
        })
        .await
        .expect("wrap with the public key");
    let unwrap = UnwrapKeyRequest {
        wrapped_key: wrapped,
        label: "aes-unwrapped".into(),
        unwrap_key_name: "ska-rsa".into(),
        unwrap_key_password: None,
        wrap_method: "RSA_WRAP_OAEP".into(),
        attributes: KeyAttributes {
            encrypt: Some(true),
            decrypt: Some(true),
            ..KeyAttributes::default()
        },
        policy: None,
        meta_data: None,
        meta_data_signature: None,
        signed_approvals: None,
    };
    expect_api_error(c.unwrap(&unwrap).await, 400, 401);
    let result = run(
        c.unwrap_async(&unwrap).await.expect("unwrap request"),
        TaskType::Unwrap,
    )
    .await;
    assert_eq!(result, "true");
    let secret = b"round trip through the unwrapped copy".to_vec();
    let encrypted = c
        .encrypt(&EncryptRequest::new(
            "aes-original",
            "AES_GCM",
            secret.clone(),
        ))
        .await
        .expect("encrypt");
    let mut decrypt = DecryptRequest::new("aes-unwrapped", "AES_GCM", encrypted.encrypted_payload);
    decrypt.initialization_vector = encrypted.initialization_vector;
    decrypt.tag_length = Some(128);
    assert_eq!(
        c.decrypt(&decrypt).await.expect("decrypt").as_slice(),
        secret.as_slice()
    );

    // Certificates: CSR, self-signed, issue.
    let csr = CsrRequest {
        sign_key_name: "ska-rsa".into(),
        key_password: None,
        signature_algorithm: "SHA256_WITH_RSA".into(),
        validity: Some(30),
        standard_certificate_attributes: StandardCertificateAttributes {
            common_name: "ska.example".into(),
            ..StandardCertificateAttributes::default()
        },
        key_usage: None,
        extended_key_usage: None,
        meta_data: None,
        meta_data_signature: None,
    };
    expect_api_error(c.create_csr(&csr).await, 400, 401);
    let csr_pem = run(
        c.create_csr_async(&csr).await.expect("CSR request"),
        TaskType::Certificate,
    )
    .await;
    assert!(csr_pem.contains("BEGIN CERTIFICATE REQUEST"), "{csr_pem}");

    let self_sign = SelfSignCertificateRequest {
        sign_key_name: "ska-rsa".into(),
        key_password: None,
        signature_algorithm: "SHA256_WITH_RSA".into(),
        validity: Some(30),
        common_name: "ska CA".into(),
        key_usage: None,
        extended_key_usage: None,
        certificate_authority: Some(true),
        meta_data: None,
        meta_data_signature: None,
    };
    let result = run(
        c.create_self_signed_certificate_async(&self_sign)
            .await
            .expect("self-sign request"),
        TaskType::Certificate,
    )
    .await;
    assert_eq!(result, "true");
    let stored = c
        .get_certificate("ska-rsa")
        .await
        .expect("certificate stored");
    assert!(stored.certificate.contains("BEGIN CERTIFICATE"));

    let issue = SignCertificateRequest {
        sign_key_name: "ska-rsa".into(),
        key_password: None,
        signature_algorithm: "SHA256_WITH_RSA".into(),
        common_name: "issued".into(),
        certificate_signing_request: csr_pem,
        certificate_authority: Some(false),
        key_usage: None,
        extended_key_usage: None,
        validity: Some(30),
        meta_data: None,
        meta_data_signature: None,
    };
    let certificate = run(
        c.sign_certificate_async(&issue)
            .await
            .expect("issue request"),
        TaskType::Certificate,
    )
    .await;
    assert!(certificate.contains("BEGIN CERTIFICATE"), "{certificate}");
}

fn signature_for(approver: &ApproverKey, timestamp: &str) -> Vec<u8> {
    approver.sign(timestamp.as_bytes()).expect("sign")
}

#[tokio::test]
async fn approvers_identified_by_certificate_approve() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let pki = km_testkit::TestPki::new("approver-ca").expect("PKI");
    let identity = pki.client("dora").expect("approver certificate");
    let cert_der = {
        use rustls::pki_types::pem::PemObject as _;
        rustls::pki_types::CertificateDer::from_pem_slice(identity.certificate_pem.as_bytes())
            .expect("certificate")
            .as_ref()
            .to_vec()
    };
    let dora = ApproverKey::from_pkcs8_pem(identity.private_key_pem.as_bytes())
        .expect("approver key")
        .with_certificate_der(cert_der.clone());
    let policy = Policy::simplified(vec![Approval::certificate("dora", &cert_der)], 1, 0, 0);
    let spki = ska_p256_key(&c, "cert-governed", policy).await;
    let payload = b"approved by certificate".to_vec();
    let id = c
        .sign_async(&SignRequest::new(
            "cert-governed",
            "SHA256_WITH_ECDSA",
            payload.clone(),
        ))
        .await
        .expect("submitted");
    let status = c.request_status(&id).await.expect("status");
    assert_eq!(
        status.not_yet_approved_by,
        vec![b64(dora.public_key_spki_der())]
    );
    approve_all(&c, &[&dora], &id).await;
    let done = wait_final(&c, &id).await;
    assert_eq!(done.status, RequestState::Executed, "{done:?}");
    ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &spki)
        .expect("SPKI")
        .verify_sig(
            &payload,
            &done.result_bytes().expect("result").expect("base64"),
        )
        .expect("signature verifies");
}

#[tokio::test]
async fn a_never_fulfillable_rule_freezes_its_action() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let frozen = Policy {
        rule_modify: Some(Rule { tokens: Vec::new() }),
        ..Policy::empty_ska()
    };
    ska_p256_key(&c, "frozen", frozen).await;
    let sign = SignRequest::new("frozen", "SHA256_WITH_ECDSA", b"still usable".to_vec());
    c.sign(&sign).await.expect("ruleUse null: usable");
    expect_api_error(c.modify("frozen", &Policy::empty_ska()).await, 400, 401);
    expect_api_error(
        c.modify_async("frozen", &Policy::empty_ska()).await,
        400,
        614,
    );
    let policy = c
        .key_attributes("frozen", None)
        .await
        .expect("attributes")
        .json
        .policy
        .expect("policy");
    assert_eq!(
        policy.rule_modify,
        Some(Rule { tokens: Vec::new() }),
        "policy unchanged"
    );
    // Block is not frozen (ruleBlock null).
    c.block("frozen").await.expect("block");
    c.unblock("frozen").await.expect("unblock");
}
