//! The state store against the real TSB emulator: km-core's `StateStore` → km-hsm-tsb → km-tsb →
//! HTTP → km-tsb-emulator. Records, revisions, sealing with the HSM-resident key, locks across
//! several store instances (= replicas), cache convergence on a controllable clock, and a write
//! fault injected into the emulator.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use km_core::{
    DataObjectName, Hsm, LockRetry, ManualClock, Sealing, StateStore, StateStoreConfig, StoreError,
    SystemClock, Versioned,
};
use km_hsm_tsb::TsbHsm;
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;
use km_tsb_emulator::EmulatorConfig;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Partition {
    name: String,
    colour: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Credential {
    api_key: String,
}

const SECRET: &str = "correct-horse-battery-staple-4711";

fn client(fixture: &EmulatorFixture) -> TsbClient {
    TsbClient::builder(fixture.base_url()).build().unwrap()
}

/// One replica: its own TSB client, its own store (and cache).
fn replica(
    fixture: &EmulatorFixture,
    clock: Arc<dyn km_core::Clock>,
    name: &str,
    tune: impl FnOnce(&mut StateStoreConfig),
) -> StateStore {
    let mut config = StateStoreConfig {
        replica: name.to_owned(),
        ..StateStoreConfig::default()
    };
    tune(&mut config);
    StateStore::new(Arc::new(TsbHsm::new(client(fixture))), clock, config)
}

fn store(fixture: &EmulatorFixture) -> StateStore {
    replica(fixture, Arc::new(SystemClock), "r1", |_| {})
}

async fn raw(fixture: &EmulatorFixture, label: &str) -> Option<Vec<u8>> {
    let hsm = TsbHsm::new(client(fixture));
    hsm.read_data_object(&DataObjectName::new(label).unwrap())
        .await
        .unwrap()
}

async fn raw_json(fixture: &EmulatorFixture, label: &str) -> Value {
    serde_json::from_slice(&raw(fixture, label).await.unwrap()).unwrap()
}

async fn overwrite(fixture: &EmulatorFixture, label: &str, value: &Value) {
    client(fixture)
        .replace_data_object(label, &serde_json::to_vec(value).unwrap())
        .await
        .unwrap();
}

fn acme(colour: &str) -> Partition {
    Partition {
        name: "ACME".into(),
        colour: colour.into(),
    }
}

#[tokio::test]
async fn records_are_created_read_updated_listed_and_deleted() {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let store = store(&fixture);

    let created = store
        .create("partition", "acme", acme("red"), "alice", Sealing::Plain)
        .await
        .unwrap();
    assert_eq!((created.revision, created.sealed), (1, false));
    store
        .create("partition", "globex", acme("blue"), "alice", Sealing::Plain)
        .await
        .unwrap();

    let envelope = raw_json(&fixture, "kms.partition.acme").await;
    assert_eq!(envelope["schema"], 1);
    assert_eq!(envelope["kind"], "partition");
    assert_eq!(envelope["id"], "acme");
    assert_eq!(envelope["revision"], 1);
    assert_eq!(envelope["updated_by"], "alice");
    assert_eq!(envelope["sealed"], false);
    assert_eq!(envelope["body"], json!({"name": "ACME", "colour": "red"}));
    assert!(envelope["updated_at"].as_u64().unwrap() > 1_700_000_000);

    let updated = store
        .update("partition", "acme", 1, acme("green"), "bob")
        .await
        .unwrap();
    assert_eq!(updated.revision, 2);
    let read: Versioned<Partition> = store.require("partition", "acme").await.unwrap();
    assert_eq!(
        (read.revision, &read.value, read.updated_by.as_str()),
        (2, &acme("green"), "bob")
    );
    // A second instance (no shared cache) reads the same from the HSM.
    let other: Versioned<Partition> = self::store(&fixture)
        .require("partition", "acme")
        .await
        .unwrap();
    assert_eq!(other, read);

    assert_eq!(
        store.list_ids("partition").await.unwrap(),
        ["acme", "globex"]
    );
    assert!(matches!(
        store
            .create("partition", "acme", acme("x"), "eve", Sealing::Plain)
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));

    store.delete("partition", "acme", 2).await.unwrap();
    assert!(
        store
            .get::<Partition>("partition", "acme")
            .await
            .unwrap()
            .is_none()
    );
    assert!(raw(&fixture, "kms.partition.acme").await.is_none());
    assert_eq!(store.list_ids("partition").await.unwrap(), ["globex"]);
    // No lock object is left behind by any of it.
    let labels = client(&fixture).list_data_objects().await.unwrap();
    assert!(
        labels.iter().all(|l| !l.starts_with("kms.lock.")),
        "{labels:?}"
    );
}

#[tokio::test]
async fn a_stale_revision_conflicts_and_changes_nothing() {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let (a, b) = (store(&fixture), store(&fixture));
    a.create("partition", "acme", acme("red"), "a", Sealing::Plain)
        .await
        .unwrap();
    let seen_by_b: Versioned<Partition> = b.require("partition", "acme").await.unwrap();
    a.update("partition", "acme", 1, acme("green"), "a")
        .await
        .unwrap();

    let error = b
        .update("partition", "acme", seen_by_b.revision, acme("blue"), "b")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Conflict {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{error}"
    );
    let error = b.delete("partition", "acme", 1).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Conflict {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        raw_json(&fixture, "kms.partition.acme").await["body"]["colour"],
        "green"
    );
}

#[tokio::test]
async fn sealed_records_are_opaque_on_the_hsm_and_bound_to_their_place() {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let store = store(&fixture);
    store.prepare().await.unwrap();

    // The seal key is an HSM key that can never leave it.
    let key = client(&fixture)
        .key_attributes("kms.seal.v1", None)
        .await
        .unwrap()
        .json;
    assert_eq!(key.algorithm.as_deref(), Some("AES"));
    assert_eq!(key.key_size, Some(256));
    assert_eq!(key.attributes.extractable, Some(false));
    assert_eq!(key.attributes.sensitive, Some(true));
    assert_eq!(key.attributes.destroyable, Some(false));
    assert!(
        key.policy.is_some(),
        "an SKA key (empty policy), so it can be governed later"
    );
    let export = client(&fixture).export_plain_key("kms.seal.v1", None).await;
    assert!(export.is_err(), "the seal key cannot be exported");

    let credential = Credential {
        api_key: SECRET.into(),
    };
    let created = store
        .create(
            "credential",
            "acme",
            credential.clone(),
            "op",
            Sealing::Sealed,
        )
        .await
        .unwrap();
    assert!(created.sealed);

    let stored = raw(&fixture, "kms.credential.acme").await.unwrap();
    let text = String::from_utf8_lossy(&stored);
    assert!(!text.contains(SECRET), "plaintext on the HSM: {text}");
    assert!(
        !text.contains(&STANDARD.encode(SECRET)),
        "base64 plaintext on the HSM"
    );
    let envelope: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(envelope["sealed"], true);
    assert!(envelope["body"].is_string());

    let read: Versioned<Credential> = self::store(&fixture)
        .require("credential", "acme")
        .await
        .unwrap();
    assert_eq!(read.value, credential);
    assert!(read.sealed);

    // Updates stay sealed under the new revision.
    store
        .update("credential", "acme", 1, credential.clone(), "op")
        .await
        .unwrap();
    let v2 = raw_json(&fixture, "kms.credential.acme").await;
    assert_eq!(
        (v2["revision"].clone(), v2["sealed"].clone()),
        (json!(2), json!(true))
    );
    assert_ne!(
        v2["body"], envelope["body"],
        "fresh nonce and AAD per write"
    );

    // Tampering with the ciphertext: authentication fails in the HSM.
    let mut framed = STANDARD.decode(v2["body"].as_str().unwrap()).unwrap();
    let last = framed.len() - 1;
    framed[last - 20] ^= 0x01;
    let mut tampered = v2.clone();
    tampered["body"] = json!(STANDARD.encode(&framed));
    overwrite(&fixture, "kms.credential.acme", &tampered).await;
    let error = self::store(&fixture)
        .get::<Credential>("credential", "acme")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { reason, .. } if reason.contains("authentication")),
        "{error}"
    );
    assert!(!error.to_string().contains(SECRET));

    // The old body replayed under the new revision: the AAD names revision 1, not 2.
    let mut replayed = v2.clone();
    replayed["body"] = envelope["body"].clone();
    overwrite(&fixture, "kms.credential.acme", &replayed).await;
    let error = self::store(&fixture)
        .get::<Credential>("credential", "acme")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");

    // Restore the genuine v2, then move its sealed body onto another record at the same revision.
    overwrite(&fixture, "kms.credential.acme", &v2).await;
    assert_eq!(
        self::store(&fixture)
            .require::<Credential>("credential", "acme")
            .await
            .unwrap()
            .value,
        credential
    );
    store
        .create(
            "credential",
            "globex",
            Credential {
                api_key: "other".into(),
            },
            "op",
            Sealing::Sealed,
        )
        .await
        .unwrap();
    store
        .update(
            "credential",
            "globex",
            1,
            Credential {
                api_key: "other".into(),
            },
            "op",
        )
        .await
        .unwrap();
    let mut moved = raw_json(&fixture, "kms.credential.globex").await;
    moved["body"] = v2["body"].clone();
    overwrite(&fixture, "kms.credential.globex", &moved).await;
    let error = self::store(&fixture)
        .get::<Credential>("credential", "globex")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { reason, .. } if reason.contains("authentication")),
        "{error}"
    );

    // A corrupt record is never overwritten by a read-modify-write.
    let error = store
        .modify(
            "credential",
            "globex",
            Sealing::Sealed,
            "op",
            |_: Option<Versioned<Credential>>| {
                Ok::<_, StoreError>(Credential {
                    api_key: "new".into(),
                })
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert_eq!(raw_json(&fixture, "kms.credential.globex").await, moved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_modifies_from_several_replicas_never_lose_an_update() {
    const REPLICAS: usize = 4;
    const PER_REPLICA: usize = 6;
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let stores: Vec<StateStore> = (0..REPLICAS)
        .map(|i| {
            replica(
                &fixture,
                Arc::new(SystemClock),
                &format!("replica-{i}"),
                |c| {
                    c.lock_retry = LockRetry {
                        attempts: 2_000,
                        base_delay: Duration::from_millis(2),
                        max_delay: Duration::from_millis(40),
                    };
                },
            )
        })
        .collect();
    let mut tasks = Vec::new();
    for store in &stores {
        for _ in 0..PER_REPLICA {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .modify(
                        "counter",
                        "hits",
                        Sealing::Plain,
                        "t",
                        |c: Option<Versioned<u64>>| {
                            Ok::<_, StoreError>(c.map_or(0, |c| c.value) + 1)
                        },
                    )
                    .await
            }));
        }
    }
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.push(task.await.unwrap().unwrap().revision);
    }
    revisions.sort();
    let expected: Vec<u64> = (1..=(REPLICAS * PER_REPLICA) as u64).collect();
    assert_eq!(revisions, expected, "every modify wrote its own revision");

    let counter: Versioned<u64> = self::store(&fixture)
        .require("counter", "hits")
        .await
        .unwrap();
    assert_eq!(counter.value, (REPLICAS * PER_REPLICA) as u64);
    assert_eq!(counter.revision, (REPLICAS * PER_REPLICA) as u64);
    assert!(raw(&fixture, "kms.lock.counter.hits").await.is_none());
}

#[tokio::test]
async fn a_live_lock_blocks_writers_and_an_expired_one_is_broken() {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let store = replica(&fixture, clock.clone(), "r1", |c| {
        c.lock_retry = LockRetry {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        };
    });
    store
        .create("partition", "acme", acme("red"), "a", Sealing::Plain)
        .await
        .unwrap();

    // A replica crashed while holding the lock (it would have released it otherwise).
    let lock = json!({
        "owner": "crashed-replica",
        "token": "5b0c8b9e-0000-4000-8000-000000000000",
        "acquired_at": 1_800_000_000u64,
        "expires_at": 1_800_000_030u64,
    });
    client(&fixture)
        .create_data_object(
            "kms.lock.partition.acme",
            &serde_json::to_vec(&lock).unwrap(),
            km_tsb::DataObjectFlags::default(),
        )
        .await
        .unwrap();

    let error = store
        .update("partition", "acme", 1, acme("green"), "a")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::LockBusy { holder, .. } if holder == "crashed-replica"),
        "{error}"
    );
    assert_eq!(
        raw_json(&fixture, "kms.partition.acme").await["revision"],
        1
    );

    clock.advance(29);
    assert!(matches!(
        store
            .update("partition", "acme", 1, acme("green"), "a")
            .await,
        Err(StoreError::LockBusy { .. })
    ));

    clock.advance(1);
    let updated = store
        .update("partition", "acme", 1, acme("green"), "a")
        .await
        .unwrap();
    assert_eq!(updated.revision, 2);
    assert!(
        raw(&fixture, "kms.lock.partition.acme").await.is_none(),
        "broken and released"
    );
}

#[tokio::test]
async fn replicas_converge_within_the_cache_ttl() {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let a = replica(&fixture, clock.clone(), "a", |_| {});
    let b = replica(&fixture, clock.clone(), "b", |_| {});
    assert_eq!(a.config().cache_ttl_secs, 2, "the default TTL");

    a.create("config", "public", acme("red"), "a", Sealing::Plain)
        .await
        .unwrap();
    assert_eq!(
        b.require::<Partition>("config", "public")
            .await
            .unwrap()
            .revision,
        1
    );

    a.update("config", "public", 1, acme("green"), "a")
        .await
        .unwrap();
    assert_eq!(
        a.require::<Partition>("config", "public")
            .await
            .unwrap()
            .value,
        acme("green"),
        "own write"
    );
    assert_eq!(
        b.require::<Partition>("config", "public")
            .await
            .unwrap()
            .value,
        acme("red"),
        "cached"
    );
    clock.advance(1);
    assert_eq!(
        b.require::<Partition>("config", "public")
            .await
            .unwrap()
            .revision,
        1
    );
    clock.advance(1);
    let converged: Versioned<Partition> = b.require("config", "public").await.unwrap();
    assert_eq!((converged.revision, converged.value), (2, acme("green")));

    // A write by b refreshes b's own view and reaches a (which just read rev 2) after the TTL.
    assert_eq!(
        a.require::<Partition>("config", "public")
            .await
            .unwrap()
            .revision,
        2
    );
    b.update("config", "public", 2, acme("blue"), "b")
        .await
        .unwrap();
    assert_eq!(
        b.require::<Partition>("config", "public")
            .await
            .unwrap()
            .revision,
        3
    );
    assert_eq!(
        a.require::<Partition>("config", "public")
            .await
            .unwrap()
            .revision,
        2
    );
    clock.advance(2);
    assert_eq!(
        a.require::<Partition>("config", "public")
            .await
            .unwrap()
            .value,
        acme("blue")
    );
}

#[tokio::test]
async fn a_failed_data_object_write_leaves_the_previous_revision_intact() {
    let fixture = EmulatorFixture::start(EmulatorConfig {
        admin_api: true,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let store = store(&fixture);
    store
        .create("partition", "acme", acme("red"), "a", Sealing::Plain)
        .await
        .unwrap();
    let before = raw(&fixture, "kms.partition.acme").await.unwrap();

    let http = reqwest::Client::new();
    let fault = http
        .post(format!("{}/_emulator/faults", fixture.base_url()))
        .json(&json!({
            "pathPrefix": "/v1/dataObject", "method": "PUT", "status": 500, "errorCode": 701, "times": 1
        }))
        .send()
        .await
        .unwrap();
    assert!(
        fault.status().is_success(),
        "{}",
        fault.text().await.unwrap()
    );

    let error = store
        .update("partition", "acme", 1, acme("green"), "a")
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Hsm(km_core::HsmError::Internal(_))),
        "{error}"
    );
    assert!(error.is_transient());

    // Nothing partial: the stored bytes, this store's view and a fresh replica's all say rev 1.
    assert_eq!(raw(&fixture, "kms.partition.acme").await.unwrap(), before);
    let mine: Versioned<Partition> = store.require("partition", "acme").await.unwrap();
    assert_eq!((mine.revision, &mine.value), (1, &acme("red")));
    assert_eq!(
        self::store(&fixture)
            .require::<Partition>("partition", "acme")
            .await
            .unwrap(),
        mine
    );
    assert!(
        raw(&fixture, "kms.lock.partition.acme").await.is_none(),
        "lock released"
    );

    // The fault was used up; the same update now goes through.
    let left: Value = http
        .get(format!("{}/_emulator/faults", fixture.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(left, json!([]));
    assert_eq!(
        store
            .update("partition", "acme", 1, acme("green"), "a")
            .await
            .unwrap()
            .revision,
        2
    );
}
