//! TLS and mutual TLS between the `km-tsb` SDK and the emulator, with a throwaway PKI — including
//! the must-show key lifecycle over mTLS.

use km_testkit::{EmulatorFixture, TestPki};
use km_tsb::{SignRequest, TsbClient, TsbError, VerifyRequest};
use km_tsb_emulator::{ClientAuth, EmulatorConfig, TlsConfig};

use crate::tsb_contract::{expect_api_error, p256_key};

async fn tls_emulator(pki: &TestPki, client_auth: ClientAuth) -> EmulatorFixture {
    let client_ca_pem = match client_auth {
        ClientAuth::None => None,
        ClientAuth::Want | ClientAuth::Need => Some(pki.ca_pem.clone()),
    };
    EmulatorFixture::start(EmulatorConfig {
        tls: Some(TlsConfig {
            cert_chain_pem: pki.server.certificate_pem.clone(),
            private_key_pem: pki.server.private_key_pem.clone(),
            client_ca_pem,
            client_auth,
        }),
        ..EmulatorConfig::default()
    })
    .await
    .expect("TLS emulator starts")
}

fn mtls_client(url: &str, pki: &TestPki, common_name: &str) -> TsbClient {
    let identity = pki.client(common_name).expect("client certificate");
    TsbClient::builder(url)
        .root_ca_pem(pki.ca_pem.as_bytes())
        .client_identity_pem(
            identity.certificate_pem.as_bytes(),
            identity.private_key_pem.as_bytes(),
        )
        .get_retries(0)
        .build()
        .expect("client builds")
}

fn tls_client(url: &str, ca_pem: &str) -> TsbClient {
    TsbClient::builder(url)
        .root_ca_pem(ca_pem.as_bytes())
        .get_retries(0)
        .build()
        .expect("client builds")
}

fn verify(label: &str, payload: &[u8], signature: &[u8]) -> VerifyRequest {
    VerifyRequest {
        sign_key_name: label.to_owned(),
        master_key_password: None,
        signature_algorithm: "SHA256_WITH_ECDSA".into(),
        payload: payload.to_vec(),
        signature: signature.to_vec(),
    }
}

/// THE must-show flow over mutual TLS: create → sign → verify → block (sign refused with the
/// TSB error) → unblock → sign again → delete → gone (404/650).
#[tokio::test]
async fn key_lifecycle_over_mutual_tls() {
    let pki = TestPki::new("tsb-mtls").expect("PKI");
    let emu = tls_emulator(&pki, ClientAuth::Need).await;
    let url = emu.base_url();
    assert!(url.starts_with("https://"), "{url}");
    let c = mtls_client(&url, &pki, "keymanager-control-plane");
    let label = "mtls-lifecycle";

    // An SKA key with the empty policy: usable without approvals, and blockable.
    let mut request = p256_key(label);
    request.policy = Some(km_tsb::Policy::empty_ska());
    let created = c.create_key(&request).await.expect("create over mTLS");
    assert!(created.json.is_ska() && !created.json.is_blocked());

    let payload = b"transfer 100 CHF to account 42".to_vec();
    let sign = SignRequest::new(label, "SHA256_WITH_ECDSA", payload.clone());
    let signature = c.sign(&sign).await.expect("sign");
    assert!(
        c.verify(&verify(label, &payload, &signature))
            .await
            .expect("verify")
    );
    assert!(
        !c.verify(&verify(label, b"transfer 999 CHF", &signature))
            .await
            .expect("verify")
    );

    c.block(label).await.expect("block");
    assert!(
        c.key_attributes(label, None)
            .await
            .expect("attributes")
            .json
            .is_blocked()
    );
    let refused = expect_api_error(c.sign(&sign).await, 500, 701);
    assert_eq!(refused.reason(), Some("res.error.in.hsm"));
    // Public-key verification still works on a blocked key.
    assert!(
        c.verify(&verify(label, &payload, &signature))
            .await
            .expect("verify blocked")
    );

    c.unblock(label).await.expect("unblock");
    assert!(
        !c.key_attributes(label, None)
            .await
            .expect("attributes")
            .json
            .is_blocked()
    );
    let again = c.sign(&sign).await.expect("sign after unblock");
    assert!(
        c.verify(&verify(label, &payload, &again))
            .await
            .expect("verify")
    );

    c.delete_key(label).await.expect("delete");
    let gone = expect_api_error(c.key_attributes(label, None).await, 404, 650);
    assert!(gone.is_not_found());
    expect_api_error(c.sign(&sign).await, 404, 650);
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_trusted_certificate() {
    let pki = TestPki::new("tsb-mtls-refuse").expect("PKI");
    let emu = tls_emulator(&pki, ClientAuth::Need).await;
    let url = emu.base_url();

    // No client certificate: the handshake is refused; no HTTP answer at all.
    let error = tls_client(&url, &pki.ca_pem)
        .version_info()
        .await
        .expect_err("no client certificate");
    assert!(
        matches!(error, TsbError::Tls(_)),
        "expected a TLS failure, got {error:?}"
    );
    assert!(
        error.is_unavailable() && error.http_status().is_none(),
        "{error:?}"
    );

    // A client certificate from another CA is refused as well.
    let stranger = TestPki::new("stranger").expect("PKI");
    let identity = stranger.client("intruder").expect("client certificate");
    let error = TsbClient::builder(&url)
        .root_ca_pem(pki.ca_pem.as_bytes())
        .client_identity_pem(
            identity.certificate_pem.as_bytes(),
            identity.private_key_pem.as_bytes(),
        )
        .get_retries(0)
        .build()
        .expect("client builds")
        .version_info()
        .await
        .expect_err("certificate of an unknown CA");
    assert!(
        matches!(error, TsbError::Tls(_)),
        "expected a TLS failure, got {error:?}"
    );

    // The trusted client certificate works.
    let version = mtls_client(&url, &pki, "ok-client")
        .version_info()
        .await
        .expect("mTLS works");
    assert!(version.version.contains("keymanager-emulator"));
}

#[tokio::test]
async fn plain_tls_works_and_server_trust_is_enforced() {
    let pki = TestPki::new("tsb-tls").expect("PKI");
    let emu = tls_emulator(&pki, ClientAuth::None).await;
    let url = emu.base_url();
    assert!(url.starts_with("https://"), "{url}");

    let c = tls_client(&url, &pki.ca_pem);
    assert!(
        c.version_info()
            .await
            .expect("TLS")
            .version
            .contains("keymanager-emulator")
    );
    c.create_key(&p256_key("over-tls"))
        .await
        .expect("create over TLS");
    assert_eq!(
        c.list_keys().await.expect("list"),
        vec!["over-tls".to_owned()]
    );

    // A client that does not trust the server's CA fails with TsbError::Tls.
    let other = TestPki::new("other-ca").expect("PKI");
    let error = tls_client(&url, &other.ca_pem)
        .version_info()
        .await
        .expect_err("untrusted server certificate");
    assert!(
        matches!(error, TsbError::Tls(_)),
        "expected TsbError::Tls, got {error:?}"
    );

    // Plain HTTP to the TLS port gets no TSB answer.
    let http_url = url.replacen("https://", "http://", 1);
    let error = super::tsb_contract::client(&http_url)
        .version_info()
        .await
        .expect_err("plain HTTP to a TLS port");
    assert!(matches!(error, TsbError::Transport(_)), "{error:?}");
}

#[tokio::test]
async fn optional_client_authentication_accepts_both() {
    let pki = TestPki::new("tsb-want").expect("PKI");
    let emu = tls_emulator(&pki, ClientAuth::Want).await;
    let url = emu.base_url();
    tls_client(&url, &pki.ca_pem)
        .version_info()
        .await
        .expect("without a client certificate");
    mtls_client(&url, &pki, "with-cert")
        .version_info()
        .await
        .expect("with a client certificate");
}
