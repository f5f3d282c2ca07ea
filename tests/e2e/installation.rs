//! The installation record on the management partition, through km-core → km-hsm-tsb → km-tsb →
//! the emulator: created once, identical for every replica that starts at the same moment, and
//! never overwritten when unreadable.

use std::sync::Arc;

use km_core::{DataObjectName, Hsm, Installation, InstallationError, SystemClock};
use km_hsm_tsb::TsbHsm;
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;

fn management(fixture: &EmulatorFixture) -> Arc<TsbHsm> {
    Arc::new(TsbHsm::new(
        TsbClient::builder(fixture.base_url()).build().unwrap(),
    ))
}

#[tokio::test]
async fn concurrent_first_starts_agree_on_one_installation() {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let hsm = management(&fixture);
    let starters: Vec<_> = (0..8)
        .map(|_| {
            let installation = Installation::new(hsm.clone(), Arc::new(SystemClock));
            tokio::spawn(async move { installation.ensure().await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for starter in starters {
        ids.push(starter.await.unwrap().installation_id);
    }
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every replica sees the same installation: {ids:?}"
    );

    let stored = hsm
        .read_data_object(&DataObjectName::record("install", "main"))
        .await
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&stored.unwrap()).unwrap();
    assert_eq!(stored["installation_id"], ids[0].as_str());
}

#[tokio::test]
async fn an_unreadable_record_stops_start_up_instead_of_being_replaced() {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let hsm = management(&fixture);
    let name = DataObjectName::record("install", "main");
    hsm.create_data_object(&name, b"not json").await.unwrap();

    let error = Installation::new(hsm.clone(), Arc::new(SystemClock))
        .ensure()
        .await
        .unwrap_err();
    assert!(
        matches!(error, InstallationError::Corrupt { .. }),
        "{error}"
    );
    assert_eq!(
        hsm.read_data_object(&name).await.unwrap().as_deref(),
        Some(&b"not json"[..])
    );
}
