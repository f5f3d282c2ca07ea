//! Contract tests of the `km-tsb` SDK against the real `km-tsb-emulator` over real HTTP: every
//! SDK method is exercised against a running emulator (port 0, in memory) and every test checks
//! real results (signatures that verify, plaintexts that round-trip, TSB error codes), never just
//! "no error". The areas live in `tsb_contract/*.rs`; the SKA workflow is in `ska_flow.rs` and
//! TLS/mTLS in `tls.rs`, both using the helpers defined here.

mod approvers;
mod auth;
mod bad_input;
mod certificates;
mod data_objects;
mod keys;
mod service;
mod wire_shapes;

use std::fmt::Debug;
use std::time::Duration;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use km_testkit::EmulatorFixture;
use km_tsb::{
    ApprovalTaskFilter, ApproverKey, CreateKeyRequest, KeyAttributes, RequestStatus, TsbClient,
    TsbError,
};
use km_tsb_emulator::{EmulatorConfig, PartitionConfig};

/// OID of NIST P-256 (`curveOid` of EC keys).
pub(crate) const P256: &str = "1.2.840.10045.3.1.7";

/// An in-memory emulator with one open partition.
pub(crate) async fn emulator() -> EmulatorFixture {
    EmulatorFixture::ephemeral().await.expect("emulator starts")
}

/// An in-memory emulator with one open partition and the `/_emulator` admin API (clock).
pub(crate) async fn emulator_with_admin() -> EmulatorFixture {
    EmulatorFixture::start(EmulatorConfig {
        partitions: vec![PartitionConfig::open("default")],
        admin_api: true,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts")
}

/// A client without credentials (open partitions).
pub(crate) fn client(base_url: &str) -> TsbClient {
    TsbClient::builder(base_url)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client builds")
}

/// Asserts that `result` is a TSB API error with this HTTP status and `errorCode`, and that the
/// body carried the matching `res.error.*` reason.
#[track_caller]
pub(crate) fn expect_api_error<T: Debug>(
    result: Result<T, TsbError>,
    status: u16,
    code: u32,
) -> TsbError {
    match result {
        Ok(value) => panic!("expected HTTP {status} / errorCode {code}, got success: {value:?}"),
        Err(error) => {
            assert_eq!(
                (error.http_status(), error.tsb_code()),
                (Some(status), Some(code)),
                "unexpected error: {error:?}"
            );
            assert!(
                error.reason().is_some_and(|r| r.starts_with("res.error.")),
                "error without a res.error.* reason: {error:?}"
            );
            error
        }
    }
}

/// Attributes of a signing key.
pub(crate) fn sign_attributes() -> KeyAttributes {
    KeyAttributes {
        sign: Some(true),
        verify: Some(true),
        ..KeyAttributes::default()
    }
}

/// Attributes of a secret key used for encryption.
pub(crate) fn cipher_attributes() -> KeyAttributes {
    KeyAttributes {
        encrypt: Some(true),
        decrypt: Some(true),
        ..KeyAttributes::default()
    }
}

/// Create request for an EC P-256 signing key (plain key, `policy: null`).
pub(crate) fn p256_key(label: &str) -> CreateKeyRequest {
    let mut request = CreateKeyRequest::new(label, "EC", sign_attributes());
    request.curve_oid = Some(P256.to_owned());
    request
}

/// A fresh EC P-256 approver key (PKCS#8 made by aws-lc-rs, loaded into the SDK).
pub(crate) fn p256_approver() -> ApproverKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("EC key");
    let pkcs8 = pair.to_pkcs8v1().expect("PKCS#8");
    ApproverKey::from_pkcs8_der(pkcs8.as_ref()).expect("approver key loads")
}

/// A fresh Ed25519 approver key.
pub(crate) fn ed25519_approver() -> ApproverKey {
    let pair = Ed25519KeyPair::generate().expect("Ed25519 key");
    let pkcs8 = pair.to_pkcs8v1().expect("PKCS#8");
    ApproverKey::from_pkcs8_der(pkcs8.as_ref()).expect("approver key loads")
}

/// Base64 (standard) of bytes, as the TSB lists approvers.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The single task `approver` sees for `request_id` (panics unless there is exactly one).
pub(crate) async fn task_for(
    client: &TsbClient,
    approver: &ApproverKey,
    request_id: &str,
) -> km_tsb::ApprovalTask {
    let filter = ApprovalTaskFilter {
        request_id: Some(request_id.to_owned()),
        ..ApprovalTaskFilter::default()
    };
    let mut tasks = client
        .fetch_approval_tasks(approver, &filter)
        .await
        .expect("tasks fetched");
    assert_eq!(
        tasks.len(),
        1,
        "approver must see exactly one task of {request_id}: {tasks:?}"
    );
    let task = tasks.remove(0);
    assert_eq!(task.request_id.as_deref(), Some(request_id));
    task
}

/// Every approver in `approvers` fetches its task of `request_id` and approves it.
pub(crate) async fn approve_all(client: &TsbClient, approvers: &[&ApproverKey], request_id: &str) {
    for approver in approvers {
        let task = task_for(client, approver, request_id).await;
        client
            .approve(approver, &task)
            .await
            .expect("approval accepted");
    }
}

/// Waits (polling, with a deadline) until the request is final and returns its status.
pub(crate) async fn wait_final(client: &TsbClient, request_id: &str) -> RequestStatus {
    client
        .wait_for_request(
            request_id,
            Duration::from_millis(50),
            Duration::from_secs(30),
        )
        .await
        .expect("request reaches a final state")
}

/// `POST /_emulator/clock/advance` (admin API).
pub(crate) async fn advance_clock(base_url: &str, seconds: u64) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/_emulator/clock/advance"))
        .json(&serde_json::json!({ "seconds": seconds }))
        .send()
        .await
        .expect("admin API answers");
    assert_eq!(response.status().as_u16(), 200, "clock advance refused");
}
