//! Approver management: create, onboard with the one-time code, decrypt the payload, use the
//! onboarded approver in an SKA policy, renew/restore codes, status, delete.

use km_tsb::{
    Approval, ApproverKey, ApproverKeyType, CreateApproverRequest, OnboardApproverRequest,
    RequestState, SignRequest, TsbClient,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use secrecy::SecretString;

use super::{approve_all, client, emulator, expect_api_error, p256_key, wait_final};

const NAME: &str = "alice@example.com";

fn onboard_request(code: SecretString, transport: &SecretString) -> OnboardApproverRequest {
    OnboardApproverRequest {
        approver_name: NAME.into(),
        one_time_code: code,
        transport_password: transport.clone(),
    }
}

async fn onboard(c: &TsbClient, code: SecretString, transport: &SecretString) -> String {
    let response = c
        .onboard_approver(&onboard_request(code, transport))
        .await
        .expect("onboard");
    assert_eq!(response.initialization_vector.len(), 12, "96-bit GCM nonce");
    // The wrong transport password does not open it.
    let wrong = SecretString::from("0123456789abcdef");
    assert!(matches!(
        response.decrypt(&wrong),
        Err(km_tsb::TsbError::Crypto(_))
    ));
    let plain = response.decrypt(transport).expect("payload decrypts");
    let text = String::from_utf8(plain.to_vec()).expect("PEM bundle");
    assert!(!text.is_empty());
    text
}

#[tokio::test]
async fn approvers_are_created_onboarded_used_and_deleted() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let transport = SecretString::from("transport-pw-16c");

    let code = c
        .create_approver(&CreateApproverRequest {
            approver_name: NAME.into(),
            algorithm: "RSA".into(),
            key_size: 2048,
            backup_password: SecretString::from("backup password"),
            validity: Some(365),
        })
        .await
        .expect("create approver");
    let status = c.approver_onboarding_status().await.expect("status");
    assert!(status.onboarded.is_empty(), "{status:?}");
    assert_eq!(status.pending.len(), 1);
    assert_eq!(status.pending[0].approver_name, NAME);
    let duplicate = CreateApproverRequest {
        approver_name: NAME.into(),
        algorithm: "RSA".into(),
        key_size: 2048,
        backup_password: SecretString::from("x"),
        validity: None,
    };
    let error = expect_api_error(c.create_approver(&duplicate).await, 400, 632);
    assert!(error.is_already_existing());

    // A wrong one-time code is refused (412); the right one hands out the key material.
    expect_api_error(
        c.onboard_approver(&onboard_request(SecretString::from("000000x"), &transport))
            .await,
        400,
        412,
    );
    let bundle = onboard(&c, code.clone(), &transport).await;
    assert!(
        bundle.contains("-----BEGIN CERTIFICATE-----"),
        "no certificate in the payload"
    );
    assert!(
        bundle.contains("PRIVATE KEY-----"),
        "no private key in the payload"
    );
    // The code is single-use.
    expect_api_error(
        c.onboard_approver(&onboard_request(code, &transport)).await,
        400,
        412,
    );

    let status = c.approver_onboarding_status().await.expect("status");
    assert!(status.pending.is_empty(), "{status:?}");
    assert_eq!(status.onboarded.len(), 1);
    assert_eq!(status.onboarded[0].approver_name, NAME);
    let listed_cert = status.onboarded[0]
        .approver_certificate
        .clone()
        .expect("certificate");

    // The onboarded approver works: a key whose ruleUse names it, approved with its certificate.
    let cert_der = CertificateDer::from_pem_slice(bundle.as_bytes())
        .expect("certificate PEM")
        .as_ref()
        .to_vec();
    assert_eq!(
        super::b64(&cert_der),
        listed_cert,
        "status lists the onboarded certificate"
    );
    let approver = ApproverKey::from_pkcs8_pem(bundle.as_bytes())
        .expect("approver key loads")
        .with_certificate_der(cert_der.clone());
    assert_eq!(approver.key_type(), ApproverKeyType::Rsa);
    assert_eq!(approver.certificate_der(), Some(cert_der.as_slice()));
    let mut key = p256_key("governed-by-alice");
    key.policy = Some(km_tsb::Policy::simplified(
        vec![Approval::onboarded(NAME)],
        1,
        0,
        0,
    ));
    c.create_key(&key)
        .await
        .expect("SKA key with an onboarded approver");
    let id = c
        .sign_async(&SignRequest::new(
            "governed-by-alice",
            "SHA256_WITH_ECDSA",
            b"pay".to_vec(),
        ))
        .await
        .expect("sign request");
    approve_all(&c, &[&approver], &id).await;
    let done = wait_final(&c, &id).await;
    assert_eq!(done.status, RequestState::Executed, "{done:?}");
    assert!(done.result_bytes().expect("result").expect("base64").len() > 8);

    // Renew is only for approvers not onboarded yet; restore re-issues a code.
    expect_api_error(c.renew_one_time_code(NAME).await, 400, 614);
    let restored = c.restore_approver_from_backup(NAME).await.expect("restore");
    let status = c.approver_onboarding_status().await.expect("status");
    assert_eq!(
        status.pending.len(),
        1,
        "restored approver is pending: {status:?}"
    );
    let renewed = c
        .renew_one_time_code(NAME)
        .await
        .expect("renew while pending");
    expect_api_error(
        c.onboard_approver(&onboard_request(restored, &transport))
            .await,
        400,
        412,
    );
    let again = onboard(&c, renewed, &transport).await;
    assert!(again.contains("-----BEGIN CERTIFICATE-----"));

    // Forgot password: a request whose result is a new one-time code.
    let request_id = c
        .restore_approver_forgot_password(NAME, &SecretString::from("new backup password"))
        .await
        .expect("forgot password");
    let done = wait_final(&c, &request_id).await;
    assert_eq!(done.status, RequestState::Executed, "{done:?}");
    let otp = SecretString::from(done.result.expect("one-time code"));
    let long_transport = SecretString::from("transport-password-of-32-chars!!");
    let third = onboard(&c, otp, &long_transport).await;
    assert!(third.contains("PRIVATE KEY-----"));

    c.delete_approver(NAME).await.expect("delete");
    let status = c.approver_onboarding_status().await.expect("status");
    assert!(
        status.onboarded.is_empty() && status.pending.is_empty(),
        "{status:?}"
    );
    expect_api_error(c.delete_approver(NAME).await, 404, 654);
    expect_api_error(c.renew_one_time_code(NAME).await, 404, 654);
}
