//! Unit tests of the store's protocol against the in-memory HSM fake of `test_hsm`, which can
//! misbehave on demand. (The real emulator is exercised by tests/e2e/state_store.rs.)

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::test_hsm::FakeHsm;
use super::*;
use crate::ManualClock;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    name: String,
    balance: u64,
}

fn account(balance: u64) -> Account {
    Account {
        name: "acme".into(),
        balance,
    }
}

struct Rig {
    hsm: Arc<FakeHsm>,
    clock: Arc<ManualClock>,
}

impl Rig {
    fn new() -> Self {
        Self {
            hsm: Arc::new(FakeHsm::default()),
            clock: Arc::new(ManualClock::new(1_000)),
        }
    }

    fn store(&self) -> StateStore {
        self.store_with(|_| {})
    }

    fn store_with(&self, tune: impl FnOnce(&mut StateStoreConfig)) -> StateStore {
        let mut config = StateStoreConfig {
            replica: "r1".into(),
            lock_retry: LockRetry {
                attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
            },
            ..StateStoreConfig::default()
        };
        tune(&mut config);
        StateStore::new(self.hsm.clone(), self.clock.clone(), config)
    }
}

#[tokio::test]
async fn create_get_update_delete_round_trip() {
    let rig = Rig::new();
    let store = rig.store();
    let created = store
        .create("account", "acme", account(1), "alice", Sealing::Plain)
        .await
        .unwrap();
    assert_eq!(
        (created.revision, created.updated_at, created.sealed),
        (1, 1_000, false)
    );

    let envelope: serde_json::Value =
        serde_json::from_slice(&rig.hsm.raw("kms.account.acme").unwrap()).unwrap();
    assert_eq!(envelope["schema"], 1);
    assert_eq!(envelope["kind"], "account");
    assert_eq!(envelope["id"], "acme");
    assert_eq!(envelope["revision"], 1);
    assert_eq!(envelope["updated_by"], "alice");
    assert_eq!(envelope["sealed"], false);
    assert_eq!(envelope["body"]["balance"], 1);
    assert!(
        rig.hsm.raw("kms.lock.account.acme").is_none(),
        "lock released"
    );

    rig.clock.advance(5);
    let updated = store
        .update("account", "acme", 1, account(2), "bob")
        .await
        .unwrap();
    assert_eq!((updated.revision, updated.updated_at), (2, 1_005));
    let read: Versioned<Account> = store.require("account", "acme").await.unwrap();
    assert_eq!(read, updated);
    assert_eq!(read.updated_by, "bob");

    assert!(matches!(
        store
            .create("account", "acme", account(9), "x", Sealing::Plain)
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.delete("account", "acme", 1).await,
        Err(StoreError::Conflict {
            expected: 1,
            found: 2,
            ..
        })
    ));
    store.delete("account", "acme", 2).await.unwrap();
    assert!(
        store
            .get::<Account>("account", "acme")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.update("account", "acme", 2, account(3), "x").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(rig.hsm.objects.lock().unwrap().is_empty(), "no debris left");
}

#[tokio::test]
async fn stale_revisions_conflict_and_change_nothing() {
    let rig = Rig::new();
    let store = rig.store();
    store
        .create("account", "acme", account(1), "a", Sealing::Plain)
        .await
        .unwrap();
    store
        .update("account", "acme", 1, account(2), "a")
        .await
        .unwrap();
    let error = store
        .update("account", "acme", 1, account(99), "b")
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
    assert_eq!(
        store
            .require::<Account>("account", "acme")
            .await
            .unwrap()
            .value,
        account(2)
    );
}

#[tokio::test]
async fn invalid_names_never_reach_the_hsm() {
    let rig = Rig::new();
    let store = rig.store();
    for (kind, id) in [
        ("lock", "x"),
        ("audit", "x"),
        ("Account", "x"),
        ("account", "../x"),
        ("account", "a/b"),
    ] {
        let error = store
            .create(kind, id, account(1), "a", Sealing::Plain)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidName { .. }),
            "{kind}/{id}: {error}"
        );
        assert!(matches!(
            store.get::<Account>(kind, id).await,
            Err(StoreError::InvalidName { .. })
        ));
    }
    assert_eq!(rig.hsm.reads.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn sealed_bodies_are_opaque_bound_to_record_and_revision() {
    let rig = Rig::new();
    let store = rig.store();
    let secret = Account {
        name: "totp-secret-JBSWY3DP".into(),
        balance: 7,
    };
    store
        .create("secret", "a", secret.clone(), "x", Sealing::Sealed)
        .await
        .unwrap();
    store
        .create("secret", "b", account(1), "x", Sealing::Sealed)
        .await
        .unwrap();
    assert_eq!(
        rig.hsm.seal_keys.load(Ordering::SeqCst),
        1,
        "seal key ensured once"
    );

    let raw = rig.hsm.raw("kms.secret.a").unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("JBSWY3DP"));
    let read: Versioned<Account> = store.require("secret", "a").await.unwrap();
    assert!(read.sealed);
    assert_eq!(read.value, secret);

    // An update keeps it sealed (the revision in the AAD moves on).
    store
        .update("secret", "a", 1, secret.clone(), "x")
        .await
        .unwrap();
    let raw_v2 = rig.hsm.raw("kms.secret.a").unwrap();
    assert_eq!(
        store
            .require::<Account>("secret", "a")
            .await
            .unwrap()
            .revision,
        2
    );

    // Body of a onto b: fails.
    let mut b: serde_json::Value =
        serde_json::from_slice(&rig.hsm.raw("kms.secret.b").unwrap()).unwrap();
    let a2: serde_json::Value = serde_json::from_slice(&raw_v2).unwrap();
    b["body"] = a2["body"].clone();
    b["revision"] = a2["revision"].clone();
    rig.hsm
        .put_raw("kms.secret.b", &serde_json::to_vec(&b).unwrap());
    store.invalidate_cache();
    let error = store.get::<Account>("secret", "b").await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { reason, .. } if reason.contains("authentication")),
        "{error}"
    );

    // Old body under the newer revision: fails.
    let mut rollback: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    rollback["revision"] = serde_json::json!(2);
    rig.hsm
        .put_raw("kms.secret.a", &serde_json::to_vec(&rollback).unwrap());
    store.invalidate_cache();
    assert!(matches!(
        store.get::<Account>("secret", "a").await,
        Err(StoreError::Corrupt { .. })
    ));

    // A corrupt record is never overwritten by modify.
    let error = store
        .modify(
            "secret",
            "a",
            Sealing::Sealed,
            "x",
            |_: Option<Versioned<Account>>| Ok::<_, StoreError>(account(0)),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert_eq!(
        rig.hsm.raw("kms.secret.a").unwrap(),
        serde_json::to_vec(&rollback).unwrap()
    );
}

#[tokio::test]
async fn modify_creates_then_updates_and_closure_errors_abort() {
    #[derive(Debug, thiserror::Error)]
    enum AppError {
        #[error("store: {0}")]
        Store(#[from] StoreError),
        #[error("insufficient funds")]
        Insufficient,
    }
    let rig = Rig::new();
    let store = rig.store();
    let first = store
        .modify(
            "account",
            "acme",
            Sealing::Plain,
            "a",
            |current: Option<Versioned<Account>>| {
                assert!(current.is_none());
                Ok::<_, AppError>(account(10))
            },
        )
        .await
        .unwrap();
    assert_eq!(first.revision, 1);
    let second = store
        .modify(
            "account",
            "acme",
            Sealing::Plain,
            "a",
            |current: Option<Versioned<Account>>| {
                let current = current.unwrap();
                assert_eq!(current.revision, 1);
                Ok::<_, AppError>(account(current.value.balance - 3))
            },
        )
        .await
        .unwrap();
    assert_eq!((second.revision, second.value.balance), (2, 7));
    let error = store
        .modify(
            "account",
            "acme",
            Sealing::Plain,
            "a",
            |_: Option<Versioned<Account>>| Err::<Account, _>(AppError::Insufficient),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, AppError::Insufficient));
    assert_eq!(
        store
            .require::<Account>("account", "acme")
            .await
            .unwrap()
            .revision,
        2
    );
    assert!(
        rig.hsm.raw("kms.lock.account.acme").is_none(),
        "lock released after abort"
    );
}

#[tokio::test]
async fn a_write_the_hsm_silently_drops_is_not_acknowledged() {
    let rig = Rig::new();
    let store = rig.store();
    store
        .create("account", "acme", account(1), "a", Sealing::Plain)
        .await
        .unwrap();
    rig.hsm.lose_writes.store(1, Ordering::SeqCst);
    let error = store
        .update("account", "acme", 1, account(2), "a")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotDurable { .. }), "{error}");
    // The cache does not pretend otherwise.
    assert_eq!(
        store
            .require::<Account>("account", "acme")
            .await
            .unwrap()
            .revision,
        1
    );
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_decided_by_the_read_back() {
    let rig = Rig::new();
    let store = rig.store();
    store
        .create("account", "acme", account(1), "a", Sealing::Plain)
        .await
        .unwrap();
    rig.hsm.fail_after_storing.store(1, Ordering::SeqCst);
    let updated = store
        .update("account", "acme", 1, account(2), "a")
        .await
        .unwrap();
    assert_eq!(updated.revision, 2);
}

#[tokio::test]
async fn a_live_lock_makes_writers_wait_then_give_up_and_an_expired_one_is_broken() {
    let rig = Rig::new();
    let store = rig.store();
    store
        .create("account", "acme", account(1), "a", Sealing::Plain)
        .await
        .unwrap();
    let foreign = serde_json::json!({
        "owner": "crashed-replica", "token": "t", "acquired_at": 1_000, "expires_at": 1_030
    });
    rig.hsm.put_raw(
        "kms.lock.account.acme",
        &serde_json::to_vec(&foreign).unwrap(),
    );

    let error = store
        .update("account", "acme", 1, account(2), "a")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::LockBusy { holder, .. } if holder == "crashed-replica"),
        "{error}"
    );
    assert!(error.is_transient());

    rig.clock.advance(30);
    store
        .update("account", "acme", 1, account(2), "a")
        .await
        .unwrap();
    assert!(rig.hsm.raw("kms.lock.account.acme").is_none());

    // Unreadable lock debris does not block for ever either.
    rig.hsm.put_raw("kms.lock.account.acme", b"garbage");
    store
        .update("account", "acme", 2, account(3), "a")
        .await
        .unwrap();
}

/// A clock that moves one second every time it is read: an operation that reads the clock
/// several times sees its lease run out in between.
#[derive(Debug, Default)]
struct TickingClock(std::sync::atomic::AtomicU64);

impl Clock for TickingClock {
    fn now(&self) -> Timestamp {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_lease_that_runs_out_before_the_write_writes_nothing() {
    let hsm = Arc::new(FakeHsm::default());
    let config = StateStoreConfig {
        lock_ttl_secs: 2,
        lock_guard_secs: 1,
        ..StateStoreConfig::default()
    };
    let store = StateStore::new(hsm.clone(), Arc::new(TickingClock::default()), config);
    let error = store
        .create("account", "acme", account(1), "a", Sealing::Plain)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::LockLost { .. }), "{error}");
    assert!(error.is_transient());
    assert!(
        hsm.objects.lock().unwrap().is_empty(),
        "neither the record nor a lock is left"
    );
}

#[tokio::test]
async fn reads_are_cached_for_the_ttl_and_own_writes_are_visible_at_once() {
    let rig = Rig::new();
    let a = rig.store();
    let b = rig.store_with(|c| c.replica = "r2".into());
    a.create("account", "acme", account(1), "a", Sealing::Plain)
        .await
        .unwrap();
    assert_eq!(
        b.require::<Account>("account", "acme")
            .await
            .unwrap()
            .revision,
        1
    );

    let before = rig.hsm.reads.load(Ordering::SeqCst);
    assert_eq!(
        b.require::<Account>("account", "acme")
            .await
            .unwrap()
            .revision,
        1
    );
    assert_eq!(
        rig.hsm.reads.load(Ordering::SeqCst),
        before,
        "served from the cache"
    );

    a.update("account", "acme", 1, account(2), "a")
        .await
        .unwrap();
    assert_eq!(
        a.require::<Account>("account", "acme")
            .await
            .unwrap()
            .revision,
        2,
        "own write"
    );
    assert_eq!(
        b.require::<Account>("account", "acme")
            .await
            .unwrap()
            .revision,
        1,
        "stale within TTL"
    );
    rig.clock.advance(1);
    assert_eq!(
        b.require::<Account>("account", "acme")
            .await
            .unwrap()
            .revision,
        1
    );
    rig.clock.advance(1);
    assert_eq!(
        b.require::<Account>("account", "acme")
            .await
            .unwrap()
            .revision,
        2,
        "converged"
    );

    // Absence is cached too, and a create by another replica shows up after the TTL.
    assert!(
        b.get::<Account>("account", "other")
            .await
            .unwrap()
            .is_none()
    );
    a.create("account", "other", account(1), "a", Sealing::Plain)
        .await
        .unwrap();
    assert!(
        b.get::<Account>("account", "other")
            .await
            .unwrap()
            .is_none()
    );
    rig.clock.advance(2);
    assert!(
        b.get::<Account>("account", "other")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn list_ids_returns_only_records_of_the_kind() {
    let rig = Rig::new();
    let store = rig.store();
    for id in ["b", "a", "c.d"] {
        store
            .create("user", id, account(1), "x", Sealing::Plain)
            .await
            .unwrap();
    }
    store
        .create("users", "z", account(1), "x", Sealing::Plain)
        .await
        .unwrap();
    rig.hsm.put_raw("kms.lock.user.a", b"{}");
    rig.hsm.put_raw("unrelated", b"{}");
    assert_eq!(store.list_ids("user").await.unwrap(), ["a", "b", "c.d"]);
    assert!(matches!(
        store.list_ids("lock").await,
        Err(StoreError::InvalidName { .. })
    ));
}

#[tokio::test]
async fn concurrent_modifies_on_one_instance_lose_nothing() {
    let rig = Rig::new();
    let store = rig.store_with(|c| {
        c.lock_retry = LockRetry {
            attempts: 1_000,
            base_delay: Duration::from_micros(100),
            max_delay: Duration::from_millis(2),
        };
    });
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .modify(
                        "counter",
                        "c",
                        Sealing::Plain,
                        "t",
                        |c: Option<Versioned<u64>>| {
                            Ok::<_, StoreError>(c.map_or(0, |c| c.value) + 1)
                        },
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let counter = store.require::<u64>("counter", "c").await.unwrap();
    assert_eq!((counter.value, counter.revision), (16, 16));
}
