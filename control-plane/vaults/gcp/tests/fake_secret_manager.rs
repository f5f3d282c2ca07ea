//! km-vault-gcp through the official Google client against km-testkit's protocol-level fake of
//! Secret Manager.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use km_core::{SecretName, SecretValue, SecretVault, VaultError, VaultKind};
use km_testkit::gcp_secret_manager::{FakeSecretManager, VersionState};
use km_vault_gcp::{GcpCredentials, GcpSecretManager, GcpVaultConfig};

fn config(fake: &FakeSecretManager) -> GcpVaultConfig {
    GcpVaultConfig {
        project: fake.project().to_string(),
        endpoint: Some(fake.endpoint().clone()),
        credentials: GcpCredentials::Anonymous,
    }
}

async fn vault(fake: &FakeSecretManager) -> GcpSecretManager {
    km_vault_gcp::connect(&config(fake)).await.unwrap()
}

fn name(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn value(s: &[u8]) -> SecretValue {
    SecretValue::new(s.to_vec())
}

#[tokio::test]
async fn contract_suite_passes_against_the_fake() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = vault(&fake).await;
    assert_eq!(vault.kind(), VaultKind::Gcp);
    km_testkit::vault_contract::run(&vault, "gcp")
        .await
        .unwrap();
    // Everything the suite wrote it also deleted.
    assert!(fake.secret_ids().is_empty(), "{:?}", fake.secret_ids());
}

#[tokio::test]
async fn contract_suite_passes_with_service_account_credentials_checked_by_the_fake() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start_with_service_account()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sa.json");
    std::fs::write(&key_file, fake.service_account_key_json().unwrap()).unwrap();
    let vault = km_vault_gcp::connect(&GcpVaultConfig {
        credentials: GcpCredentials::ServiceAccount {
            key_file: key_file.clone(),
        },
        ..config(&fake)
    })
    .await
    .unwrap();
    km_testkit::vault_contract::run(&vault, "gcp-sa")
        .await
        .unwrap();
    let requests = fake.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| r.bearer), "{requests:?}");

    // The same fake refuses a caller without credentials.
    let anonymous = vault_anonymous(&fake).await;
    let err = anonymous.check().await.unwrap_err();
    assert!(matches!(err, VaultError::Denied { .. }), "{err:?}");
    assert!(err.to_string().contains("UNAUTHENTICATED"), "{err}");
    assert!(err.to_string().contains("credentials"), "{err}");
}

async fn vault_anonymous(fake: &FakeSecretManager) -> GcpSecretManager {
    km_vault_gcp::connect(&config(fake)).await.unwrap()
}

#[tokio::test]
async fn put_twice_destroys_the_first_version_and_labels_the_secret() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = vault(&fake).await;
    let n = name("tsb-acme");
    vault.put(&n, &value(b"first-key")).await.unwrap();
    vault.put(&n, &value(b"second-key")).await.unwrap();

    let versions = fake.versions("tsb-acme").unwrap();
    let states: Vec<_> = versions.iter().map(|v| (v.number, v.state)).collect();
    assert_eq!(
        states,
        [(1, VersionState::Destroyed), (2, VersionState::Enabled)]
    );
    assert_eq!(versions[0].len, 0, "a destroyed version keeps no data");
    assert_eq!(
        fake.labels("tsb-acme")
            .unwrap()
            .get("managed-by")
            .map(String::as_str),
        Some("keymanager")
    );
    assert_eq!(
        fake.replication("tsb-acme").unwrap(),
        serde_json::json!({"automatic": {}})
    );
    assert_eq!(
        vault.get(&n).await.unwrap().unwrap().expose_secret(),
        b"second-key"
    );

    // A third put destroys the second; the first stays destroyed.
    vault.put(&n, &value(b"third-key")).await.unwrap();
    let states: Vec<_> = fake
        .versions("tsb-acme")
        .unwrap()
        .iter()
        .map(|v| v.state)
        .collect();
    assert_eq!(
        states,
        [
            VersionState::Destroyed,
            VersionState::Destroyed,
            VersionState::Enabled
        ]
    );
}

#[tokio::test]
async fn concurrent_puts_on_one_name_leave_only_the_newest_version_readable() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = vault(&fake).await;
    let n = name("contended");
    let writes = (0..6).map(|i| {
        let vault = vault.clone();
        let n = n.clone();
        tokio::spawn(async move { vault.put(&n, &value(format!("v{i}").as_bytes())).await })
    });
    for w in writes {
        w.await.unwrap().unwrap();
    }
    let versions = fake.versions("contended").unwrap();
    assert_eq!(versions.len(), 6);
    let enabled: Vec<_> = versions
        .iter()
        .filter(|v| v.state == VersionState::Enabled)
        .map(|v| v.number)
        .collect();
    assert_eq!(enabled, [6], "{versions:?}");
    assert!(vault.get(&n).await.unwrap().is_some());
}

#[tokio::test]
async fn a_corrupted_checksum_is_an_integrity_error() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = vault(&fake).await;
    let n = name("checked");
    vault.put(&n, &value(b"s3cr3t-payload-123")).await.unwrap();
    fake.set_corrupt_crc(true);
    let err = vault.get(&n).await.unwrap_err();
    assert!(matches!(err, VaultError::Integrity { .. }), "{err:?}");
    assert!(err.to_string().contains("CRC32C"), "{err}");
    assert_no_secret(&format!("{err:?} {err}"), b"s3cr3t-payload-123");
    fake.set_corrupt_crc(false);
    assert_eq!(
        vault.get(&n).await.unwrap().unwrap().expose_secret(),
        b"s3cr3t-payload-123"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_within_seconds() {
    km_testkit::install_crypto_provider();
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vault = km_vault_gcp::connect(&GcpVaultConfig {
        project: "acme-prod".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}").parse().unwrap()),
        credentials: GcpCredentials::Anonymous,
    })
    .await
    .unwrap();
    let started = Instant::now();
    let err = vault.check().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, VaultError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    let err = vault.get(&name("x")).await.unwrap_err();
    assert!(matches!(err, VaultError::Unavailable { .. }), "{err:?}");
    let err = vault.put(&name("x"), &value(b"v")).await.unwrap_err();
    assert!(matches!(err, VaultError::Unavailable { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_service_that_does_not_answer_is_unavailable_after_the_attempt_timeout() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = vault(&fake).await;
    fake.set_hang(true);
    let started = Instant::now();
    let err = vault.get(&name("slow")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, VaultError::Unavailable { .. }), "{err:?}");
    assert!(elapsed < Duration::from_secs(9), "{elapsed:?}");
}

#[tokio::test]
async fn service_unavailable_is_retried_a_bounded_number_of_times() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = vault(&fake).await;
    fake.set_unavailable(true);
    let started = Instant::now();
    let err = vault.get(&name("flaky")).await.unwrap_err();
    assert!(matches!(err, VaultError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("UNAVAILABLE"), "{err}");
    assert_eq!(fake.requests().len(), 3, "{:?}", fake.requests());
    assert!(started.elapsed() < Duration::from_secs(5));
    fake.set_unavailable(false);
    assert!(vault.get(&name("flaky")).await.unwrap().is_none());
}

#[tokio::test]
async fn permission_denied_says_what_to_check() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = vault(&fake).await;
    fake.set_deny(true);
    for err in [
        vault.check().await.unwrap_err(),
        vault.get(&name("p1")).await.unwrap_err(),
        vault
            .put(&name("p1"), &value(b"secret-p1"))
            .await
            .unwrap_err(),
        vault.delete(&name("p1")).await.unwrap_err(),
    ] {
        assert!(matches!(err, VaultError::Denied { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("PERMISSION_DENIED"), "{text}");
        assert!(text.contains("roles/secretmanager.admin"), "{text}");
        assert!(text.contains(fake.project()), "{text}");
        assert_no_secret(&format!("{err:?} {text}"), b"secret-p1");
    }
    // Only one request per call: a permanent error is not retried.
    assert_eq!(fake.requests().len(), 4);
}

#[tokio::test]
async fn check_changes_nothing() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = vault(&fake).await;
    vault.check().await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        format!("/v1/projects/{}/secrets", fake.project())
    );
    assert!(requests[0].query.contains("pageSize=1"), "{requests:?}");
    assert!(fake.secret_ids().is_empty());
}

#[tokio::test]
async fn a_wrong_project_is_denied() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = km_vault_gcp::connect(&GcpVaultConfig {
        project: "someone-else".into(),
        ..config(&fake)
    })
    .await
    .unwrap();
    let err = vault.check().await.unwrap_err();
    assert!(matches!(err, VaultError::Denied { .. }), "{err:?}");
    assert!(err.to_string().contains("someone-else"), "{err}");
}

#[tokio::test]
async fn rejected_requests_and_limits() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start().await.unwrap();
    let vault = vault(&fake).await;
    let too_big = SecretValue::new(vec![7u8; SecretValue::MAX_LEN + 1]);
    let err = vault.put(&name("big"), &too_big).await.unwrap_err();
    assert!(matches!(err, VaultError::Rejected { .. }), "{err:?}");
    let err = vault.put(&name("empty"), &value(b"")).await.unwrap_err();
    assert!(matches!(err, VaultError::Rejected { .. }), "{err:?}");
    assert!(
        fake.requests().is_empty(),
        "limits are checked before calling"
    );
}

#[tokio::test]
async fn secrets_never_show_in_debug_or_errors() {
    km_testkit::install_crypto_provider();
    let fake = FakeSecretManager::start_with_service_account()
        .await
        .unwrap();
    let key_json = fake.service_account_key_json().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sa.json");
    std::fs::write(&key_file, &key_json).unwrap();
    let config = GcpVaultConfig {
        credentials: GcpCredentials::ServiceAccount {
            key_file: key_file.clone(),
        },
        ..config(&fake)
    };
    let vault = km_vault_gcp::connect(&config).await.unwrap();
    let secret = b"TOP-SECRET-api-key-4711";
    let n = name("debug-check");
    vault.put(&n, &value(secret)).await.unwrap();
    let got = vault.get(&n).await.unwrap().unwrap();
    assert_eq!(got.expose_secret(), secret);

    let private_key: serde_json::Value = serde_json::from_str(&key_json).unwrap();
    let private_key = private_key["private_key"].as_str().unwrap().to_string();
    let pem_body = private_key.lines().nth(1).unwrap().to_string();

    let mut shown = vec![
        format!("{got:?}"),
        format!("{vault:?}"),
        format!("{config:?}"),
        format!("{:?}", fake.requests()),
    ];
    fake.set_corrupt_crc(true);
    let err = vault.get(&n).await.unwrap_err();
    shown.push(format!("{err:?} {err}"));
    fake.set_corrupt_crc(false);
    fake.set_deny(true);
    let err = vault.put(&n, &value(secret)).await.unwrap_err();
    shown.push(format!("{err:?} {err}"));
    fake.set_deny(false);

    // A key file of the wrong type names neither the key nor its contents.
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        key_json.replace("\"service_account\"", "\"authorized_user\""),
    )
    .unwrap();
    let err = km_vault_gcp::connect(&GcpVaultConfig {
        credentials: GcpCredentials::ServiceAccount { key_file: broken },
        ..config.clone()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, VaultError::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("authorized_user"), "{err}");
    shown.push(format!("{err:?} {err}"));
    // Truncated JSON: the parser's message is not passed on.
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, &key_json[..key_json.len() / 2]).unwrap();
    let err = km_vault_gcp::connect(&GcpVaultConfig {
        credentials: GcpCredentials::ServiceAccount {
            key_file: truncated,
        },
        ..config.clone()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, VaultError::Rejected { .. }), "{err:?}");
    shown.push(format!("{err:?} {err}"));

    for text in &shown {
        assert_no_secret(text, secret);
        assert!(!text.contains(&pem_body), "private key shown in {text}");
    }
}

#[tokio::test]
async fn a_missing_key_file_is_rejected_with_its_path() {
    let err = km_vault_gcp::connect(&GcpVaultConfig {
        project: "acme-prod".into(),
        endpoint: None,
        credentials: GcpCredentials::ServiceAccount {
            key_file: "/nonexistent/gcp-key.json".into(),
        },
    })
    .await
    .unwrap_err();
    assert!(matches!(err, VaultError::Rejected { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/gcp-key.json"),
        "{err}"
    );
}

#[test]
fn config_parses_from_toml_and_rejects_unknown_fields() {
    let parsed: GcpVaultConfig = toml::from_str(
        r#"
        project = "acme-prod"
        endpoint = "https://secretmanager.europe-west3.rep.googleapis.com"
        credentials = { method = "service_account", key_file = "/etc/keymanager/gcp.json" }
        "#,
    )
    .unwrap();
    assert_eq!(parsed.project, "acme-prod");
    assert_eq!(
        parsed.endpoint.unwrap().host_str(),
        Some("secretmanager.europe-west3.rep.googleapis.com")
    );
    assert_eq!(
        parsed.credentials,
        GcpCredentials::ServiceAccount {
            key_file: "/etc/keymanager/gcp.json".into()
        }
    );

    let adc: GcpVaultConfig = toml::from_str(
        r#"
        project = "acme-prod"
        [credentials]
        method = "application_default"
        "#,
    )
    .unwrap();
    assert_eq!(adc.credentials, GcpCredentials::ApplicationDefault);
    assert!(adc.endpoint.is_none());

    let anonymous: GcpVaultConfig =
        toml::from_str("project = \"p-1\"\ncredentials = { method = \"anonymous\" }").unwrap();
    assert_eq!(anonymous.credentials, GcpCredentials::Anonymous);

    for bad in [
        "project = \"p\"\ncredentials = { method = \"anonymous\" }\nregion = \"x\"",
        "project = \"p\"\ncredentials = { method = \"anonymous\", key_file = \"/k\" }",
        "project = \"p\"\ncredentials = { method = \"api_key\" }",
        "project = \"p\"",
        "project = \"p\"\ncredentials = { method = \"service_account\" }",
    ] {
        assert!(toml::from_str::<GcpVaultConfig>(bad).is_err(), "{bad}");
    }
}

fn assert_no_secret(text: &str, secret: &[u8]) {
    let plain = String::from_utf8_lossy(secret);
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    assert!(!text.contains(plain.as_ref()), "secret shown in {text}");
    assert!(!text.contains(&b64), "secret (base64) shown in {text}");
    // Debug of a byte slice: `[84, 79, 80, ...]`.
    let bytes = format!("{:?}", &secret[..secret.len().min(6)]);
    let bytes = bytes.trim_end_matches(']');
    assert!(!text.contains(bytes), "secret bytes shown in {text}");
}
