//! The vault contract against the real TSB emulator: HsmVault → StateStore → km-hsm-tsb → km-tsb
//! → HTTP → km-tsb-emulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use km_core::{
    DataObjectName, Hsm, SecretName, SecretValue, SecretVault, StateStore, StateStoreConfig,
    SystemClock,
};
use km_hsm_tsb::TsbHsm;
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;
use km_vault_hsm::{HsmVault, RECORD_KIND};

fn hsm(fixture: &EmulatorFixture) -> Arc<TsbHsm> {
    Arc::new(TsbHsm::new(
        TsbClient::builder(fixture.base_url()).build().unwrap(),
    ))
}

fn vault(fixture: &EmulatorFixture) -> HsmVault {
    HsmVault::new(StateStore::new(
        hsm(fixture),
        Arc::new(SystemClock),
        StateStoreConfig::default(),
    ))
}

#[tokio::test]
async fn the_hsm_vault_passes_the_vault_contract() {
    km_testkit::install_crypto_provider();
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    km_testkit::vault_contract::run(&vault(&fixture), "hsm")
        .await
        .unwrap();
}

#[tokio::test]
async fn secrets_are_sealed_in_the_hsm_and_shared_by_replicas() {
    km_testkit::install_crypto_provider();
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let name = SecretName::new("tsb-acme").unwrap();
    let secret = b"api-key-7f3a9c1e-never-in-clear".to_vec();
    vault(&fixture)
        .put(&name, &SecretValue::new(secret.clone()))
        .await
        .unwrap();

    let raw = hsm(&fixture)
        .read_data_object(&DataObjectName::new(format!("kms.{RECORD_KIND}.tsb-acme")).unwrap())
        .await
        .unwrap()
        .expect("the record is a data object on the management partition");
    let text = String::from_utf8_lossy(&raw);
    assert!(
        !text.contains("api-key-7f3a9c1e"),
        "stored in the clear: {text}"
    );
    assert!(
        !text.contains("YXBpLWtleS03ZjNh"),
        "stored as plain base64: {text}"
    );

    // A second replica (own cache, own client) reads it.
    let other = vault(&fixture);
    assert_eq!(
        other.get(&name).await.unwrap().unwrap().expose_secret(),
        secret.as_slice()
    );
    assert!(!format!("{other:?}").contains("api-key"));
}

#[tokio::test]
async fn an_unreachable_management_partition_is_reported_as_unavailable() {
    km_testkit::install_crypto_provider();
    let client = TsbClient::builder("http://127.0.0.1:9")
        .get_retries(0)
        .build()
        .unwrap();
    let vault = HsmVault::new(StateStore::new(
        Arc::new(TsbHsm::new(client)),
        Arc::new(SystemClock),
        StateStoreConfig::default(),
    ));
    let error = vault.check().await.unwrap_err();
    assert!(
        matches!(error, km_core::VaultError::Unavailable { .. }),
        "{error:?}"
    );
}
