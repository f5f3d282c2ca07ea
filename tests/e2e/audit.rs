//! The audit log against the real TSB emulator: km-core's `AuditLog` → km-hsm-tsb → km-tsb → HTTP →
//! km-tsb-emulator, checkpoints signed by a real EC P-256 key inside the emulator, and the export
//! checked by the real `keymanager audit verify` binary (aws-lc-rs ECDSA). Tampering goes straight
//! to the emulator's data objects; the unwritable audit store is an emulator fault.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use km_core::audit::{AuditConfig, AuditLog, AuditedError, JsonLinesSink, NoSink};
use km_core::{
    AuditSink, LockRetry, Sealing, StateStore, StateStoreConfig, SystemClock, Versioned,
};
use km_domain::audit::{AuditEvent, EventDraft, Outcome, verify_chain};
use km_hsm_tsb::TsbHsm;
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;
use km_tsb_emulator::EmulatorConfig;
use serde_json::{Value, json};

fn client(fixture: &EmulatorFixture) -> TsbClient {
    TsbClient::builder(fixture.base_url()).build().unwrap()
}

/// One replica: its own TSB client, state store and audit log.
fn replica(
    fixture: &EmulatorFixture,
    name: &str,
    sink: Arc<dyn AuditSink>,
    checkpoint_every: u64,
) -> (StateStore, AuditLog) {
    let hsm = Arc::new(TsbHsm::new(client(fixture)));
    let clock = Arc::new(SystemClock);
    let store = StateStore::new(
        hsm.clone(),
        clock.clone(),
        StateStoreConfig {
            replica: name.to_owned(),
            lock_retry: LockRetry {
                attempts: 2_000,
                base_delay: Duration::from_millis(2),
                max_delay: Duration::from_millis(40),
            },
            ..StateStoreConfig::default()
        },
    );
    let log = AuditLog::new(
        hsm,
        store.clone(),
        clock,
        sink,
        AuditConfig {
            checkpoint_every,
            ..AuditConfig::default()
        },
    );
    (store, log)
}

fn draft(actor: &str, n: usize) -> EventDraft {
    EventDraft::new(
        actor,
        "create_key",
        Outcome::Success,
        format!("req-{actor}-{n}"),
    )
    .with_target(format!("key-{n}"))
}

/// `keymanager audit verify <args>`: (exit code, stdout + stderr).
fn audit_verify(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_keymanager"))
        .args(["audit", "verify"])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("keymanager runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().expect("exited normally"), text)
}

async fn export_to(log: &AuditLog, path: &Path) {
    let text = log.export().await.unwrap().to_json_lines().unwrap();
    std::fs::write(path, text).unwrap();
}

fn pem(spki: &[u8]) -> String {
    let body = STANDARD.encode(spki);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// The stored batch object holding event `seq`, and its parsed content.
async fn batch_holding(fixture: &EmulatorFixture, seq: u64) -> (String, Value) {
    let client = client(fixture);
    let mut labels: Vec<String> = client
        .list_data_objects()
        .await
        .unwrap()
        .into_iter()
        .filter(|label| {
            label.starts_with("kms.audit.") && !label.starts_with("kms.audit.checkpoint.")
        })
        .collect();
    labels.sort();
    for label in labels {
        let batch: Value =
            serde_json::from_slice(&client.get_data_object(&label).await.unwrap().value).unwrap();
        if batch["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["seq"] == seq)
        {
            return (label, batch);
        }
    }
    panic!("no stored batch holds event {seq}");
}

/// A `Write` the test can read back (the streamed JSON lines).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_form_one_chain_that_the_binary_verifies() {
    const PER_REPLICA: usize = 15;
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let stream = Captured::default();
    let (_, a) = replica(
        &fixture,
        "a",
        Arc::new(JsonLinesSink::new(stream.clone())),
        10,
    );
    let (_, b) = replica(&fixture, "b", Arc::new(NoSink), 10);

    let mut tasks = Vec::new();
    for (name, log) in [("a", &a), ("b", &b)] {
        for n in 0..PER_REPLICA {
            let log = log.clone();
            tasks.push(tokio::spawn(
                async move { log.record(draft(name, n)).await },
            ));
        }
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap().seq);
    }
    seqs.sort();
    let total = (2 * PER_REPLICA) as u64;
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "no gaps, no duplicates"
    );

    let events: Vec<AuditEvent> = b.read(1..=u64::MAX).await.unwrap();
    verify_chain(&events).unwrap();
    let mut ids: Vec<&str> = events.iter().map(|e| e.request_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2 * PER_REPLICA);

    // Replica a streamed exactly its own events, as JSON lines.
    let streamed = String::from_utf8(stream.0.lock().unwrap().clone()).unwrap();
    let streamed_events = streamed
        .lines()
        .filter(|line| line.contains(r#""type":"event""#))
        .count();
    assert_eq!(streamed_events, PER_REPLICA);

    // The checkpoint key is an HSM key whose private part can never leave it.
    let key = client(&fixture)
        .key_attributes("kms.audit.checkpoint.v1", None)
        .await
        .unwrap()
        .json;
    assert_eq!(key.algorithm.as_deref(), Some("EC"));
    assert_eq!(key.curve_oid.as_deref(), Some("1.2.840.10045.3.1.7"));
    assert_eq!(key.attributes.sign, Some(true));
    assert_eq!(key.attributes.extractable, Some(false));
    assert_eq!(key.attributes.sensitive, Some(true));
    assert_eq!(key.attributes.destroyable, Some(false));
    assert!(key.policy.is_some(), "an SKA key with the empty policy");
    assert!(
        client(&fixture)
            .export_plain_key("kms.audit.checkpoint.v1", None)
            .await
            .is_err()
    );

    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("audit.jsonl");
    export_to(&b, &export).await;
    let (code, output) = audit_verify(&[export.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("audit log OK"), "{output}");
    assert!(
        output.contains(&format!("{total} events (1 to {total})")),
        "{output}"
    );
    assert!(output.contains("taken from the export"), "{output}");

    // Pinned with the public key as an operator would keep it (PEM), strictly.
    let key_file = dir.path().join("checkpoint-key.pem");
    std::fs::write(&key_file, pem(&a.public_key().await.unwrap())).unwrap();
    let (code, output) = audit_verify(&[
        export.to_str().unwrap(),
        "--public-key",
        key_file.to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("pinned with --public-key"), "{output}");

    // Any other P-256 key does not verify the checkpoints.
    let other_fixture = EmulatorFixture::ephemeral().await.unwrap();
    let (_, other_log) = replica(&other_fixture, "x", Arc::new(NoSink), 10);
    let foreign = dir.path().join("foreign.pem");
    std::fs::write(&foreign, pem(&other_log.public_key().await.unwrap())).unwrap();
    let (code, output) = audit_verify(&[
        export.to_str().unwrap(),
        "--public-key",
        foreign.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("invalid signature"), "{output}");
}

#[tokio::test]
async fn a_tampered_event_is_named_by_audit_verify() {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let (_, log) = replica(&fixture, "r", Arc::new(NoSink), 4);
    for n in 1..=10 {
        log.record(draft("alice", n)).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let intact = dir.path().join("intact.jsonl");
    export_to(&log, &intact).await;
    let (code, output) = audit_verify(&[intact.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");

    // Someone with data-object rights on the management partition rewrites event 6's target.
    let (label, mut batch) = batch_holding(&fixture, 6).await;
    for event in batch["events"].as_array_mut().unwrap() {
        if event["seq"] == 6 {
            event["target"] = json!("key-of-someone-else");
        }
    }
    client(&fixture)
        .replace_data_object(&label, &serde_json::to_vec(&batch).unwrap())
        .await
        .unwrap();

    // A fresh replica exports what is stored now.
    let (_, auditor) = replica(&fixture, "auditor", Arc::new(NoSink), 4);
    let tampered = dir.path().join("tampered.jsonl");
    export_to(&auditor, &tampered).await;
    let (code, output) = audit_verify(&[tampered.to_str().unwrap()]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("FAILED"), "{output}");
    assert!(
        output.contains("event 6 "),
        "names the altered event: {output}"
    );
    assert!(!output.contains("event 5 "), "{output}");
}

#[tokio::test]
async fn a_forged_checkpoint_signature_is_named_by_audit_verify() {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let (_, log) = replica(&fixture, "r", Arc::new(NoSink), 4);
    for n in 1..=9 {
        log.record(draft("alice", n)).await.unwrap();
    }
    let label = format!("kms.audit.checkpoint.{:020}", 4);
    let client = client(&fixture);
    let mut checkpoint: Value =
        serde_json::from_slice(&client.get_data_object(&label).await.unwrap().value).unwrap();
    assert_eq!(checkpoint["up_to_seq"], 4);
    let mut signature = hex::decode(checkpoint["signature"].as_str().unwrap()).unwrap();
    let last = signature.len() - 1;
    signature[last] ^= 0x01;
    checkpoint["signature"] = json!(hex::encode(&signature));
    client
        .replace_data_object(&label, &serde_json::to_vec(&checkpoint).unwrap())
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("audit.jsonl");
    export_to(&log, &export).await;
    let (code, output) = audit_verify(&[export.to_str().unwrap()]);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("checkpoint over events up to 4 has an invalid signature"),
        "{output}"
    );
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Partition {
    name: String,
    colour: String,
}

fn acme(colour: &str) -> Partition {
    Partition {
        name: "ACME".into(),
        colour: colour.into(),
    }
}

/// The use case under test: a state change through the write-ahead audit pattern.
async fn recolour(
    store: &StateStore,
    log: &AuditLog,
    revision: u64,
    colour: &str,
    acted: &AtomicBool,
) -> Result<Versioned<Partition>, AuditedError<km_core::StoreError>> {
    let draft = EventDraft::new(
        "alice",
        "update_partition",
        Outcome::Success,
        "req-recolour",
    )
    .with_target("acme");
    log.audited(draft, || async {
        acted.store(true, Ordering::SeqCst);
        store
            .update("partition", "acme", revision, acme(colour), "alice")
            .await
    })
    .await
}

#[tokio::test]
async fn an_unwritable_audit_store_refuses_state_changes_and_nothing_is_half_done() {
    let fixture = EmulatorFixture::start(EmulatorConfig {
        admin_api: true,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let (store, log) = replica(&fixture, "r", Arc::new(NoSink), 100);
    let created = log
        .audited(
            EventDraft::new("alice", "create_partition", Outcome::Success, "req-create")
                .with_target("acme"),
            || store.create("partition", "acme", acme("red"), "alice", Sealing::Plain),
        )
        .await
        .unwrap();
    assert_eq!(created.revision, 1);
    let raw = |fixture: &EmulatorFixture| {
        let client = client(fixture);
        async move {
            client
                .get_data_object("kms.partition.acme")
                .await
                .unwrap()
                .value
        }
    };
    let before = raw(&fixture).await;

    // The management partition stops accepting new data objects (the audit store's writes).
    let http = reqwest::Client::new();
    let fault = http
        .post(format!("{}/_emulator/faults", fixture.base_url()))
        .json(&json!({
            "pathPrefix": "/v1/dataObject", "method": "POST", "status": 500, "errorCode": 701
        }))
        .send()
        .await
        .unwrap();
    assert!(
        fault.status().is_success(),
        "{}",
        fault.text().await.unwrap()
    );

    let acted = AtomicBool::new(false);
    let error = recolour(&store, &log, 1, "green", &acted)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AuditedError::Refused(e) if e.is_transient()),
        "{error}"
    );
    assert!(
        !acted.load(Ordering::SeqCst),
        "the change was never attempted"
    );
    // A denied request cannot be recorded either; it stays refused.
    assert!(
        log.record(EventDraft::new(
            "mallory",
            "update_partition",
            Outcome::Denied,
            "req-deny"
        ))
        .await
        .is_err()
    );

    // Nothing half-done: the record, this replica's view and a fresh replica's all say rev 1.
    assert_eq!(raw(&fixture).await, before);
    let mine: Versioned<Partition> = store.require("partition", "acme").await.unwrap();
    assert_eq!((mine.revision, &mine.value), (1, &acme("red")));
    let (fresh, _) = replica(&fixture, "fresh", Arc::new(NoSink), 100);
    assert_eq!(
        fresh
            .require::<Partition>("partition", "acme")
            .await
            .unwrap(),
        mine
    );

    // The fault cleared, the same change goes through, audited.
    let cleared = http
        .delete(format!("{}/_emulator/faults", fixture.base_url()))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    let updated = recolour(&store, &log, 1, "green", &acted).await.unwrap();
    assert!(acted.load(Ordering::SeqCst));
    assert_eq!(updated.revision, 2);

    // The log: request/result of the create, then request/result of the recolour — no gap, no
    // trace of the refused attempt (it was never recorded, so it never happened).
    let events = log.read(1..=u64::MAX).await.unwrap();
    verify_chain(&events).unwrap();
    let summary: Vec<(u64, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.seq,
                e.action.as_str(),
                e.details["phase"].as_str(),
                e.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "create_partition", "request", "success"),
            (2, "create_partition", "result", "success"),
            (3, "update_partition", "request", "success"),
            (4, "update_partition", "result", "success"),
        ]
    );
    assert_eq!(events[3].details["request_seq"], "3");

    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("audit.jsonl");
    export_to(&log, &export).await;
    let (code, output) = audit_verify(&[export.to_str().unwrap(), "--strict"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("4 events (1 to 4)"), "{output}");
}
