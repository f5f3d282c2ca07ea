//! Data objects: create-if-absent, get, list, replace, delete, not-found.

use km_tsb::DataObjectFlags;

use super::{client, emulator, expect_api_error};

#[tokio::test]
async fn data_objects_are_create_if_absent_and_fully_manageable() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let label = "km/state:tenant-1@v1";
    let value = b"\x00first value\xff".to_vec();

    c.create_data_object(label, &value, DataObjectFlags::default())
        .await
        .expect("create");
    let error = expect_api_error(
        c.create_data_object(label, b"second value", DataObjectFlags::default())
            .await,
        400,
        615,
    );
    assert!(error.is_already_existing());
    let object = c.get_data_object(label).await.expect("get");
    assert_eq!(object.label, label);
    assert_eq!(
        object.value, value,
        "a lost create must not change the value"
    );
    assert!(object.modifiable && object.destroyable && object.private);

    c.create_data_object("other", b"x", DataObjectFlags::default())
        .await
        .expect("create");
    let mut labels = c.list_data_objects().await.expect("list");
    labels.sort();
    assert_eq!(labels, vec![label.to_owned(), "other".to_owned()]);

    c.replace_data_object(label, b"replaced")
        .await
        .expect("replace");
    assert_eq!(
        c.get_data_object(label).await.expect("get").value,
        b"replaced"
    );

    c.delete_data_object(label).await.expect("delete");
    let error = expect_api_error(c.get_data_object(label).await, 404, 653);
    assert!(error.is_not_found());
    expect_api_error(c.delete_data_object(label).await, 404, 653);
    expect_api_error(c.replace_data_object(label, b"x").await, 404, 653);
    assert_eq!(
        c.list_data_objects().await.expect("list"),
        vec!["other".to_owned()]
    );

    // Flags are honoured: a non-modifiable, non-destroyable object stays as it is (614).
    let frozen = DataObjectFlags {
        modifiable: false,
        destroyable: false,
        private: false,
    };
    c.create_data_object("frozen", b"v", frozen)
        .await
        .expect("create");
    let object = c.get_data_object("frozen").await.expect("get");
    assert!(!object.modifiable && !object.destroyable && !object.private);
    expect_api_error(c.replace_data_object("frozen", b"w").await, 400, 614);
    expect_api_error(c.delete_data_object("frozen").await, 400, 614);
    assert_eq!(c.get_data_object("frozen").await.expect("get").value, b"v");

    // Label rules (610) and value size (616).
    expect_api_error(
        c.create_data_object("bad label!", b"v", DataObjectFlags::default())
            .await,
        400,
        610,
    );
    let too_big = vec![0u8; 1024 * 1024 + 1];
    expect_api_error(
        c.create_data_object("too-big", &too_big, DataObjectFlags::default())
            .await,
        400,
        616,
    );
}
