//! API-key groups, key rollover and per-partition base URLs.

use km_testkit::EmulatorFixture;
use km_tsb::{ApiKeys, DataObjectFlags, KeyGroup, TsbClient};
use km_tsb_emulator::{ApiKeyGroups, EmulatorConfig, PartitionConfig};
use secrecy::SecretString;

use super::{expect_api_error, p256_key};

fn groups(prefix: &str) -> ApiKeyGroups {
    ApiKeyGroups {
        key_management: vec![format!("{prefix}-km")],
        key_operation: vec![format!("{prefix}-op")],
        approver: vec![format!("{prefix}-ap")],
        service: vec![format!("{prefix}-svc")],
        approver_key_management: vec![format!("{prefix}-akm")],
    }
}

fn keys(list: &[&str]) -> Vec<SecretString> {
    list.iter().map(|k| SecretString::from(*k)).collect()
}

/// The SDK's keys for a partition configured with `groups(prefix)`.
fn api_keys(prefix: &str) -> ApiKeys {
    ApiKeys {
        key_management: keys(&[&format!("{prefix}-km")]),
        key_operation: keys(&[&format!("{prefix}-op")]),
        approver: keys(&[&format!("{prefix}-ap")]),
        service: keys(&[&format!("{prefix}-svc")]),
        approver_key_management: keys(&[&format!("{prefix}-akm")]),
    }
}

async fn two_partitions() -> EmulatorFixture {
    EmulatorFixture::start(EmulatorConfig {
        partitions: vec![
            PartitionConfig {
                name: "alpha".into(),
                api_keys: groups("alpha"),
                jwt: None,
            },
            PartitionConfig {
                name: "beta".into(),
                api_keys: groups("beta"),
                jwt: None,
            },
        ],
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts")
}

fn client_with(url: &str, keys: ApiKeys) -> TsbClient {
    TsbClient::builder(url)
        .api_keys(keys)
        .build()
        .expect("client builds")
}

#[tokio::test]
async fn api_key_rollover_moves_to_the_next_key_of_the_group() {
    let emu = two_partitions().await;
    for (round, url) in [emu.base_url(), emu.partition_url("alpha")]
        .into_iter()
        .enumerate()
    {
        let mut sdk_keys = api_keys("alpha");
        sdk_keys.key_management = keys(&["stale-key", "alpha-km"]);
        let c = client_with(&url, sdk_keys);
        assert_eq!(c.api_key_index(KeyGroup::KeyManagement), 0);
        let listed = c.list_keys().await.expect("rolls over to the second key");
        assert_eq!(listed.len(), round, "{listed:?}");
        assert_eq!(c.api_key_index(KeyGroup::KeyManagement), 1, "{url}");
        // Later calls start with the good key; other groups are untouched.
        c.create_key(&p256_key(&format!("rolled-{round}")))
            .await
            .expect("create with the remembered key");
        assert_eq!(c.api_key_index(KeyGroup::KeyManagement), 1);
        assert_eq!(c.api_key_index(KeyGroup::Service), 0);
        c.version_info().await.expect("service key works");
        // A clone shares the rollover state.
        assert_eq!(c.clone().api_key_index(KeyGroup::KeyManagement), 1);
    }
    // Both keys were created in alpha (root URL: partition chosen by the key).
    let alpha = client_with(&emu.partition_url("alpha"), api_keys("alpha"));
    assert_eq!(alpha.list_keys().await.expect("list").len(), 2);
}

#[tokio::test]
async fn wrong_and_misplaced_api_keys_are_refused_with_631() {
    let emu = two_partitions().await;
    let alpha_url = emu.partition_url("alpha");

    // Only a wrong key: 401/631 after trying it.
    let mut wrong = api_keys("alpha");
    wrong.key_management = keys(&["wrong-key"]);
    let c = client_with(&alpha_url, wrong.clone());
    let error = expect_api_error(c.list_keys().await, 401, 631);
    assert!(error.is_unauthorized());
    let root = client_with(&emu.base_url(), wrong);
    expect_api_error(root.list_keys().await, 401, 631);

    // Every key of the list is wrong: still 631, after trying them all.
    let mut all_wrong = api_keys("alpha");
    all_wrong.key_management = keys(&["wrong-1", "wrong-2"]);
    let c = client_with(&alpha_url, all_wrong);
    expect_api_error(c.list_keys().await, 401, 631);

    // A key of another group (key operation) used for key management.
    let mut misplaced = api_keys("alpha");
    misplaced.key_management = keys(&["alpha-op"]);
    let c = client_with(&alpha_url, misplaced);
    expect_api_error(c.list_keys().await, 401, 631);
    c.random(8)
        .await
        .expect("the same key is fine for key operations");

    // No key at all on a protected partition.
    let anonymous = client_with(&alpha_url, ApiKeys::default());
    expect_api_error(anonymous.version_info().await, 401, 631);
    expect_api_error(anonymous.list_data_objects().await, 401, 631);

    // The service group guards versionInfo: the key-management key is not accepted there.
    let mut service_wrong = api_keys("alpha");
    service_wrong.service = keys(&["alpha-km"]);
    let c = client_with(&alpha_url, service_wrong);
    expect_api_error(c.version_info().await, 401, 631);

    // A partition's key is not valid for another partition's URL.
    let c = client_with(&emu.partition_url("beta"), api_keys("alpha"));
    expect_api_error(c.list_keys().await, 401, 631);
}

#[tokio::test]
async fn partition_urls_isolate_keystores() {
    let emu = two_partitions().await;
    let alpha = client_with(&emu.partition_url("alpha"), api_keys("alpha"));
    let beta = client_with(&emu.partition_url("beta"), api_keys("beta"));
    assert!(alpha.base_url().as_str().ends_with("/partitions/alpha"));

    alpha
        .create_key(&p256_key("only-in-alpha"))
        .await
        .expect("create in alpha");
    alpha
        .create_data_object("alpha-object", b"a", DataObjectFlags::default())
        .await
        .expect("data object in alpha");
    beta.create_key(&p256_key("only-in-beta"))
        .await
        .expect("create in beta");

    assert_eq!(
        alpha.list_keys().await.expect("list"),
        vec!["only-in-alpha".to_owned()]
    );
    assert_eq!(
        beta.list_keys().await.expect("list"),
        vec!["only-in-beta".to_owned()]
    );
    expect_api_error(beta.key_attributes("only-in-alpha", None).await, 404, 650);
    expect_api_error(beta.get_data_object("alpha-object").await, 404, 653);
    assert!(beta.list_data_objects().await.expect("list").is_empty());

    // The same label may exist in both partitions independently.
    beta.create_key(&p256_key("only-in-alpha"))
        .await
        .expect("same label in beta");
    let a = alpha
        .key_attributes("only-in-alpha", None)
        .await
        .expect("alpha");
    let b = beta
        .key_attributes("only-in-alpha", None)
        .await
        .expect("beta");
    assert_ne!(a.json.public_key, b.json.public_key, "different keys");

    // At the root URL the API key selects the partition.
    let root_beta = client_with(&emu.base_url(), api_keys("beta"));
    let mut labels = root_beta.list_keys().await.expect("list");
    labels.sort();
    assert_eq!(
        labels,
        vec!["only-in-alpha".to_owned(), "only-in-beta".to_owned()]
    );
    let stats = beta.keystore_statistics().await.expect("statistics");
    assert_eq!(
        (stats.private_keys, stats.data_objects),
        (2, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn client_options_combine_and_misconfiguration_is_reported() {
    let emu = EmulatorFixture::start(EmulatorConfig {
        partitions: vec![PartitionConfig {
            name: "single".into(),
            api_keys: ApiKeyGroups {
                key_management: vec!["one-key".into()],
                key_operation: vec!["one-key".into()],
                approver: vec!["one-key".into()],
                service: vec!["one-key".into()],
                approver_key_management: vec!["one-key".into()],
            },
            jwt: None,
        }],
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let url = emu.base_url();

    // API keys + bearer token + custom timeouts/agent all together.
    let c = TsbClient::builder(&url)
        .api_keys(ApiKeys::all(keys(&["one-key"])))
        .bearer_token(SecretString::from("header.payload.signature"))
        .user_agent("keymanager-contract-tests")
        .connect_timeout(std::time::Duration::from_secs(2))
        .timeout(std::time::Duration::from_secs(20))
        .retry_backoff(std::time::Duration::from_millis(10))
        .get_retries(1)
        .https_only(false)
        .build()
        .expect("client builds");
    assert!(
        c.version_info()
            .await
            .expect("version")
            .version
            .contains("keymanager-emulator")
    );
    c.create_key(&p256_key("all-options"))
        .await
        .expect("create");
    assert_eq!(
        c.list_keys().await.expect("list"),
        vec!["all-options".to_owned()]
    );
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("header.payload.signature") && !debug.contains("one-key"),
        "{debug}"
    );

    // Refused before anything is sent.
    let error = TsbClient::builder(&url)
        .https_only(true)
        .build()
        .expect_err("http with https_only");
    assert!(matches!(error, km_tsb::TsbError::Config(_)), "{error:?}");
    let error = TsbClient::builder("ftp://example.com")
        .build()
        .expect_err("scheme");
    assert!(matches!(error, km_tsb::TsbError::Config(_)), "{error:?}");
    let error = TsbClient::builder(&url)
        .api_keys(ApiKeys::all(keys(&["bad\nkey"])))
        .build()
        .expect_err("header-unsafe key");
    assert!(matches!(error, km_tsb::TsbError::Config(_)), "{error:?}");

    // A stopped TSB is "unavailable" (connect error), not an API error.
    emu.emulator.shutdown().await;
    let error = c.version_info().await.expect_err("emulator is gone");
    assert!(matches!(error, km_tsb::TsbError::Connect(_)), "{error:?}");
    assert!(error.is_unavailable());
}
