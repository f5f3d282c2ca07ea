//! Service information: versionInfo, licenseInfo and keystore statistics.

use km_tsb::{CreateKeyRequest, DataObjectFlags};

use super::{cipher_attributes, client, emulator, p256_key};

#[tokio::test]
async fn service_info_names_the_emulator_and_statistics_follow_the_keystore() {
    let emu = emulator().await;
    let c = client(&emu.base_url());

    let version = c.version_info().await.expect("versionInfo");
    assert!(
        version.version.contains("keymanager-emulator"),
        "the emulator must say it is one: {}",
        version.version
    );
    assert!(version.version.starts_with("2."), "{}", version.version);

    let licence = c.license_info().await.expect("licenseInfo");
    for flag in ["REST_API", "TSB_ENGINE", "KEY_AUTH"] {
        assert!(licence.has(flag), "licence lacks {flag}: {licence:?}");
    }
    assert!(!licence.has("NO_SUCH_FLAG"));

    let before = c.keystore_statistics().await.expect("statistics");
    assert_eq!(
        (
            before.private_keys,
            before.public_keys,
            before.secret_keys,
            before.data_objects
        ),
        (0, 0, 0, 0),
        "fresh emulator: {before:?}"
    );
    assert!(
        before.max_size > 0 && before.remaining_objects > 0,
        "{before:?}"
    );

    c.create_key(&p256_key("stats-ec")).await.expect("EC key");
    let mut aes = CreateKeyRequest::new("stats-aes", "AES", cipher_attributes());
    aes.key_size = Some(256);
    c.create_key(&aes).await.expect("AES key");
    c.create_data_object("stats-object", b"0123456789", DataObjectFlags::default())
        .await
        .expect("data object");

    let after = c.keystore_statistics().await.expect("statistics");
    assert_eq!(after.private_keys, before.private_keys + 1, "{after:?}");
    assert_eq!(after.public_keys, before.public_keys + 1, "{after:?}");
    assert_eq!(after.secret_keys, before.secret_keys + 1, "{after:?}");
    assert_eq!(after.data_objects, before.data_objects + 1, "{after:?}");
    assert!(
        after.used_size > before.used_size,
        "{before:?} -> {after:?}"
    );
    assert!(
        after.remaining_objects < before.remaining_objects,
        "{before:?} -> {after:?}"
    );

    c.delete_data_object("stats-object")
        .await
        .expect("delete object");
    c.delete_key("stats-aes").await.expect("delete key");
    let last = c.keystore_statistics().await.expect("statistics");
    assert_eq!((last.secret_keys, last.data_objects), (0, 0), "{last:?}");
}
