//! km-vault-azure against `km_testkit::azure_key_vault` (Key Vault + Entra ID over HTTPS), with
//! the real SDK end to end: challenge authentication, `ClientSecretCredential`, pipelines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use km_core::{SecretName, SecretValue, SecretVault, VaultError, VaultKind};
use km_testkit::azure_key_vault::{FakeKeyVault, Fault, SecretState};
use km_vault_azure::{AzureAuth, AzureKeyVault, AzureVaultConfig, CONTENT_TYPE};
use secrecy::SecretString;

/// A running fake plus a configuration trusting its CA (the temp file lives as long as this).
struct Setup {
    fake: FakeKeyVault,
    ca_file: tempfile::NamedTempFile,
}

impl Setup {
    async fn new() -> Self {
        km_testkit::install_crypto_provider();
        let fake = FakeKeyVault::start().await.unwrap();
        let mut ca_file = tempfile::NamedTempFile::new().unwrap();
        ca_file.write_all(fake.ca_pem().as_bytes()).unwrap();
        Self { fake, ca_file }
    }

    fn config_with(&self, auth: AzureAuth) -> AzureVaultConfig {
        let mut config = AzureVaultConfig::new(self.fake.vault_url(), auth);
        config.authority_host = Some(self.fake.authority_host());
        config.ca_pem_file = Some(self.ca_file.path().to_path_buf());
        // The fake lives on 127.0.0.1, outside the challenge's vault.azure.net domain.
        config.verify_challenge_resource = false;
        config
    }

    fn config(&self) -> AzureVaultConfig {
        self.config_with(self.client_secret_auth(self.fake.client_secret()))
    }

    fn client_secret_auth(&self, secret: &str) -> AzureAuth {
        AzureAuth::ClientSecret {
            tenant_id: self.fake.tenant_id().to_owned(),
            client_id: self.fake.client_id().to_owned(),
            client_secret: Some(SecretString::from(secret)),
            client_secret_file: None,
        }
    }

    async fn vault(&self) -> AzureKeyVault {
        AzureKeyVault::connect(&self.config()).await.unwrap()
    }
}

fn name(text: &str) -> SecretName {
    SecretName::new(text).unwrap()
}

fn value(bytes: &[u8]) -> SecretValue {
    SecretValue::new(bytes.to_vec())
}

#[tokio::test]
async fn passes_the_vault_contract_with_client_secret_auth() {
    let setup = Setup::new().await;
    let vault = setup.vault().await;
    assert_eq!(vault.kind(), VaultKind::Azure);
    km_testkit::vault_contract::run(&vault, "azure")
        .await
        .unwrap();
    // One sign-in served the whole run: the SDK cached the token.
    assert_eq!(setup.fake.tokens_issued(), 1);
}

#[tokio::test]
async fn passes_the_contract_when_soft_delete_is_slow() {
    let setup = Setup::new().await;
    setup
        .fake
        .set_soft_delete_latency(Duration::from_millis(150), Duration::from_millis(150));
    let vault = setup.vault().await;
    km_testkit::vault_contract::run(&vault, "azure-slow")
        .await
        .unwrap();
}

#[tokio::test]
async fn stores_base64_with_the_binary_content_type_and_purges_on_delete() {
    let setup = Setup::new().await;
    let vault = setup.vault().await;
    let secret = name("tsb-acme");
    let bytes = [0u8, 159, 146, 150, 255, b'\n'];
    vault.put(&secret, &value(&bytes)).await.unwrap();

    let puts: Vec<_> = setup
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.status == 200)
        .collect();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].path, "/secrets/tsb-acme");
    assert!(
        puts[0].query.contains("api-version=2025-07-01"),
        "{}",
        puts[0].query
    );
    let body: serde_json::Value = serde_json::from_str(&puts[0].body).unwrap();
    assert_eq!(body["contentType"], CONTENT_TYPE);
    assert_eq!(body["value"], "AJ+Slv8K");
    assert_eq!(
        setup.fake.secret_state("tsb-acme"),
        SecretState::Active { versions: 1 }
    );

    vault.put(&secret, &value(b"second")).await.unwrap();
    assert_eq!(
        setup.fake.secret_state("tsb-acme"),
        SecretState::Active { versions: 2 }
    );

    vault.delete(&secret).await.unwrap();
    let state = setup.fake.secret_state("tsb-acme");
    assert!(
        matches!(state, SecretState::BeingPurged | SecretState::Absent),
        "{state:?}"
    );
    let purges = setup
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path == "/deletedsecrets/tsb-acme" && r.status == 204)
        .count();
    assert_eq!(purges, 1);
}

#[tokio::test]
async fn check_reads_only() {
    let setup = Setup::new().await;
    let vault = setup.vault().await;
    vault.check().await.unwrap();
    let requests = setup.fake.requests();
    assert!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/secrets") || r.path.starts_with("/deletedsecrets"))
            .all(|r| r.method == "GET"),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_denied_with_a_useful_message() {
    let setup = Setup::new().await;
    let wrong = "wrong-secret-Zq81!";
    let config = setup.config_with(setup.client_secret_auth(wrong));
    let vault = AzureKeyVault::connect(&config).await.unwrap();

    for result in [
        vault.check().await,
        vault.put(&name("p1"), &value(b"top-secret-value")).await,
    ] {
        let err = result.unwrap_err();
        let VaultError::Denied { backend, detail } = &err else {
            panic!("expected Denied, got {err:?}");
        };
        assert_eq!(*backend, VaultKind::Azure);
        assert!(detail.contains("AADSTS7000215"), "{detail}");
        assert!(detail.contains("client secret"), "{detail}");
        assert!(detail.contains("tenant_id"), "{detail}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(wrong), "{shown}");
        assert!(!shown.contains("top-secret-value"), "{shown}");
        assert!(!shown.contains(setup.fake.client_secret()), "{shown}");
    }
    // The vault never saw the value: the SDK strips the body until it has a token.
    assert!(
        setup
            .fake
            .requests()
            .iter()
            .all(|r| !r.body.contains("dG9wLXNlY3JldC12YWx1ZQ"))
    );
}

#[tokio::test]
async fn an_unknown_tenant_or_client_is_denied() {
    let setup = Setup::new().await;
    let mut auth = setup.client_secret_auth(setup.fake.client_secret());
    if let AzureAuth::ClientSecret { tenant_id, .. } = &mut auth {
        *tenant_id = "other-tenant".to_owned();
    }
    let vault = AzureKeyVault::connect(&setup.config_with(auth))
        .await
        .unwrap();
    let err = vault.check().await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Denied { detail, .. } if detail.contains("AADSTS90002")),
        "{err:?}"
    );

    let mut auth = setup.client_secret_auth(setup.fake.client_secret());
    if let AzureAuth::ClientSecret { client_id, .. } = &mut auth {
        *client_id = "someone-else".to_owned();
    }
    let vault = AzureKeyVault::connect(&setup.config_with(auth))
        .await
        .unwrap();
    let err = vault.check().await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Denied { detail, .. } if detail.contains("AADSTS700016")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_vault_is_unavailable_within_seconds() {
    let setup = Setup::new().await;
    // A port that was just free: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = setup.config();
    config.vault_url = format!("https://127.0.0.1:{port}/").parse().unwrap();
    let vault = AzureKeyVault::connect(&config).await.unwrap();
    let started = Instant::now();
    let err = vault.get(&name("p1")).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, VaultError::Unavailable { detail, .. } if detail.contains("reading secret p1")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_authority_is_unavailable_within_seconds() {
    let setup = Setup::new().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = setup.config();
    config.authority_host = Some(format!("https://127.0.0.1:{port}/").parse().unwrap());
    let vault = AzureKeyVault::connect(&config).await.unwrap();
    let started = Instant::now();
    let err = vault.check().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(&err, VaultError::Unavailable { detail, .. } if detail.contains("token endpoint")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_unavailable_not_a_hang() {
    let setup = Setup::new().await;
    let mut config = setup.config();
    config.ca_pem_file = None;
    let vault = AzureKeyVault::connect(&config).await.unwrap();
    let started = Instant::now();
    let err = vault.check().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, VaultError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn service_faults_map_to_the_right_errors() {
    let setup = Setup::new().await;
    let vault = setup.vault().await;
    let secret = name("p1");
    vault.put(&secret, &value(b"v")).await.unwrap();

    setup.fake.set_fault(Some(Fault::Forbidden));
    let err = vault.get(&secret).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Denied { detail, .. }
            if detail.contains("403") && detail.contains("ForbiddenByRbac") && detail.contains("Key Vault Secrets Officer")),
        "{err:?}"
    );

    setup.fake.set_fault(Some(Fault::Unavailable));
    let err = vault.get(&secret).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Unavailable { detail, .. } if detail.contains("503")),
        "{err:?}"
    );

    // Retry-After: 30 must not make a caller wait 30 s.
    setup.fake.set_fault(Some(Fault::Throttled));
    let started = Instant::now();
    let err = vault.get(&secret).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(&err, VaultError::Unavailable { detail, .. } if detail.contains("429")),
        "{err:?}"
    );

    setup.fake.set_fault(Some(Fault::PurgeProtection));
    let err = vault.delete(&secret).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Rejected { detail, .. } if detail.contains("purge protection")),
        "{err:?}"
    );

    // A fresh client must sign in while Entra ID is down.
    setup.fake.set_fault(Some(Fault::TokenEndpointUnavailable));
    let fresh = setup.vault().await;
    let started = Instant::now();
    let err = fresh.check().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(&err, VaultError::Unavailable { detail, .. } if detail.contains("AADSTS90000")),
        "{err:?}"
    );

    setup.fake.set_fault(None);
    fresh.check().await.unwrap();
    vault.delete(&secret).await.unwrap();
}

#[tokio::test]
async fn a_token_the_vault_no_longer_accepts_is_denied() {
    let setup = Setup::new().await;
    let vault = setup.vault().await;
    vault.put(&name("p1"), &value(b"one")).await.unwrap();
    assert_eq!(setup.fake.tokens_issued(), 1);
    // The credential keeps serving its cached token, so the vault's second challenge fails too.
    setup.fake.revoke_tokens();
    let err = vault.get(&name("p1")).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Denied { detail, .. }
            if detail.contains("401") && detail.contains("did not accept the token")),
        "{err:?}"
    );
}

#[tokio::test]
async fn refuses_secrets_keymanager_did_not_write() {
    let setup = Setup::new().await;
    let vault = setup.vault().await;

    setup
        .fake
        .insert_secret("plain-text", "hunter2-plain", Some("text/plain"));
    let err = vault.get(&name("plain-text")).await.unwrap_err();
    let VaultError::Rejected { detail, .. } = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert!(detail.contains("text/plain"), "{detail}");
    assert!(detail.contains(CONTENT_TYPE), "{detail}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));

    setup.fake.insert_secret("untyped", "hunter2-untyped", None);
    let err = vault.get(&name("untyped")).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Rejected { detail, .. } if detail.contains("none")),
        "{err:?}"
    );

    setup
        .fake
        .insert_secret("not-base64", "hunter2!*not*base64", Some(CONTENT_TYPE));
    let err = vault.get(&name("not-base64")).await.unwrap_err();
    assert!(matches!(err, VaultError::Integrity { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[tokio::test]
async fn a_deleted_but_unpurged_leftover_is_purged_by_put_and_delete() {
    let setup = Setup::new().await;
    let vault = setup.vault().await;

    vault.put(&name("left-1"), &value(b"old")).await.unwrap();
    setup.fake.soft_delete("left-1");
    assert_eq!(setup.fake.secret_state("left-1"), SecretState::Deleted);
    assert!(vault.get(&name("left-1")).await.unwrap().is_none());
    vault.put(&name("left-1"), &value(b"new")).await.unwrap();
    assert_eq!(
        vault
            .get(&name("left-1"))
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        b"new"
    );

    vault.put(&name("left-2"), &value(b"old")).await.unwrap();
    setup.fake.soft_delete("left-2");
    vault.delete(&name("left-2")).await.unwrap();
    let state = setup.fake.secret_state("left-2");
    assert!(
        matches!(state, SecretState::BeingPurged | SecretState::Absent),
        "{state:?}"
    );
}

#[tokio::test]
async fn an_oversized_value_is_rejected_before_any_request() {
    let setup = Setup::new().await;
    let vault = setup.vault().await;
    let err = vault
        .put(
            &name("big"),
            &SecretValue::new(vec![7; SecretValue::MAX_LEN + 1]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Rejected { .. }), "{err:?}");
    assert!(setup.fake.requests().is_empty());
}

#[tokio::test]
async fn secrets_never_show_in_debug_output() {
    let setup = Setup::new().await;
    let config = setup.config();
    let vault = AzureKeyVault::connect(&config).await.unwrap();
    let secret = setup.fake.client_secret();
    for shown in [format!("{config:?}"), format!("{vault:?}")] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(format!("{vault:?}").contains("client_secret"));
    vault
        .put(&name("dbg"), &value(b"the-value-itself"))
        .await
        .unwrap();
    let got = vault.get(&name("dbg")).await.unwrap();
    assert!(!format!("{got:?}").contains("the-value-itself"));
}

#[tokio::test]
async fn the_client_secret_can_come_from_a_file() {
    let setup = Setup::new().await;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{}", setup.fake.client_secret()).unwrap();
    let config = setup.config_with(AzureAuth::ClientSecret {
        tenant_id: setup.fake.tenant_id().to_owned(),
        client_id: setup.fake.client_id().to_owned(),
        client_secret: None,
        client_secret_file: Some(file.path().to_path_buf()),
    });
    let vault = AzureKeyVault::connect(&config).await.unwrap();
    vault.check().await.unwrap();
}

#[tokio::test]
async fn bad_configurations_are_rejected_at_connect() {
    let setup = Setup::new().await;

    let mut config = setup.config();
    config.vault_url = "http://127.0.0.1:1/".parse().unwrap();
    let err = AzureKeyVault::connect(&config).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Rejected { detail, .. } if detail.contains("https")),
        "{err:?}"
    );

    let config = setup.config_with(AzureAuth::ClientSecret {
        tenant_id: "t".into(),
        client_id: "c".into(),
        client_secret: None,
        client_secret_file: None,
    });
    let err = AzureKeyVault::connect(&config).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Rejected { detail, .. } if detail.contains("client_secret_file")),
        "{err:?}"
    );

    let config = setup.config_with(AzureAuth::ClientSecret {
        tenant_id: "t".into(),
        client_id: "c".into(),
        client_secret: Some("s3cr3t-in-both".into()),
        client_secret_file: Some("/nonexistent".into()),
    });
    let err = AzureKeyVault::connect(&config).await.unwrap_err();
    assert!(matches!(err, VaultError::Rejected { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("s3cr3t-in-both"));

    let config = setup.config_with(AzureAuth::ClientSecret {
        tenant_id: "t".into(),
        client_id: "c".into(),
        client_secret: None,
        client_secret_file: Some("/nonexistent/secret".into()),
    });
    let err = AzureKeyVault::connect(&config).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Rejected { detail, .. } if detail.contains("/nonexistent/secret")),
        "{err:?}"
    );

    let mut config = setup.config();
    config.ca_pem_file = Some("/nonexistent/ca.pem".into());
    let err = AzureKeyVault::connect(&config).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Rejected { detail, .. } if detail.contains("ca_pem_file")),
        "{err:?}"
    );

    let mut config = setup.config();
    config.timeout_seconds = Some(0);
    assert!(AzureKeyVault::connect(&config).await.is_err());
}

#[test]
fn config_reads_from_toml() {
    let config: AzureVaultConfig = toml::from_str(
        r#"
        vault_url = "https://contoso-km.vault.azure.net/"
        timeout_seconds = 20

        [auth]
        method = "client_secret"
        tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"
        client_id = "00000000-0000-0000-0000-000000000001"
        client_secret = "toml-secret-value"
        "#,
    )
    .unwrap();
    assert_eq!(
        config.vault_url.as_str(),
        "https://contoso-km.vault.azure.net/"
    );
    assert!(config.verify_challenge_resource);
    assert!(config.authority_host.is_none());
    assert_eq!(config.timeout_seconds, Some(20));
    assert!(matches!(
        &config.auth,
        AzureAuth::ClientSecret {
            client_secret: Some(_),
            client_secret_file: None,
            ..
        }
    ));
    let shown = format!("{config:?}");
    assert!(!shown.contains("toml-secret-value"), "{shown}");

    let config: AzureVaultConfig = toml::from_str(
        r#"
        vault_url = "https://contoso-km.vault.usgovcloudapi.net/"
        authority_host = "https://login.microsoftonline.us"
        auth = { method = "managed_identity", client_id = "abc" }
        "#,
    )
    .unwrap();
    assert!(
        matches!(&config.auth, AzureAuth::ManagedIdentity { client_id: Some(id) } if id == "abc")
    );

    let config: AzureVaultConfig = toml::from_str(
        r#"
        vault_url = "https://contoso-km.vault.azure.net/"
        auth = { method = "managed_identity" }
        "#,
    )
    .unwrap();
    assert!(matches!(
        &config.auth,
        AzureAuth::ManagedIdentity { client_id: None }
    ));

    for bad in [
        // unknown top-level key
        "vault_url = \"https://x.vault.azure.net/\"\nfoo = 1\nauth = { method = \"managed_identity\" }",
        // unknown auth key
        "vault_url = \"https://x.vault.azure.net/\"\nauth = { method = \"managed_identity\", tenant_id = \"t\" }",
        // unknown method
        "vault_url = \"https://x.vault.azure.net/\"\nauth = { method = \"password\" }",
        // not a URL
        "vault_url = \"contoso\"\nauth = { method = \"managed_identity\" }",
    ] {
        assert!(toml::from_str::<AzureVaultConfig>(bad).is_err(), "{bad}");
    }
}
