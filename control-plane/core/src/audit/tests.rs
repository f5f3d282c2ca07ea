//! Unit tests of the audit log's protocol against an in-memory HSM fake (the real emulator and real
//! ECDSA are exercised by tests/e2e/audit.rs). The fake "signs" with a reversible tag and the fake
//! verifier recomputes it — no cryptography is imitated, only whether the bytes were altered.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use km_domain::audit::{CheckpointMismatch, GENESIS_PREV_HASH, verify_chain};
use zeroize::Zeroizing;

use super::*;
use crate::{
    KeystoreStatistics, LockRetry, ManualClock, SealedBlob, ServiceInfo, StateStoreConfig,
};

const FAKE_SPKI: &[u8] = b"fake-spki-of-the-checkpoint-key";

#[derive(Default)]
struct FakeHsm {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    /// Every data-object create fails (the audit store is unwritable).
    fail_creates: AtomicBool,
    /// Creates of audit batches to store and then answer with a transport error.
    lose_answers: AtomicUsize,
    /// Latency of every create, so that concurrent callers pile up behind a batch.
    create_delay_ms: AtomicUsize,
    creates: AtomicUsize,
    signing_keys: AtomicUsize,
}

fn fake_signature(label: &str, payload: &[u8]) -> Vec<u8> {
    let mut signature = label.as_bytes().to_vec();
    signature.extend(payload.iter().rev());
    signature
}

struct FakeVerifier;

impl SignatureVerifier for FakeVerifier {
    fn verify_ecdsa_p256_sha256(&self, spki: &[u8], message: &[u8], signature: &[u8]) -> bool {
        spki == FAKE_SPKI && signature == fake_signature(CHECKPOINT_KEY_LABEL, message).as_slice()
    }
}

impl FakeHsm {
    fn raw(&self, name: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(name).cloned()
    }

    fn put_raw(&self, name: &str, value: &[u8]) {
        self.objects
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_vec());
    }

    fn names(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .objects
            .lock()
            .unwrap()
            .keys()
            .filter(|name| name.starts_with(prefix))
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn batches(&self) -> Vec<String> {
        self.names("kms.audit.0")
    }

    fn take(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[async_trait]
impl Hsm for FakeHsm {
    async fn service_info(&self) -> Result<ServiceInfo, HsmError> {
        Ok(ServiceInfo {
            version: "fake".into(),
            licenses: vec![],
        })
    }
    async fn keystore_statistics(&self) -> Result<KeystoreStatistics, HsmError> {
        Ok(KeystoreStatistics::default())
    }
    async fn create_data_object(
        &self,
        name: &DataObjectName,
        value: &[u8],
    ) -> Result<(), HsmError> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        let delay = self.create_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            // Simulated HSM latency (not waiting for state).
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        if self.fail_creates.load(Ordering::SeqCst) {
            return Err(HsmError::Internal("injected write fault".into()));
        }
        let mut objects = self.objects.lock().unwrap();
        if objects.contains_key(name.as_str()) {
            return Err(HsmError::AlreadyExists(name.to_string()));
        }
        objects.insert(name.to_string(), value.to_vec());
        if name.as_str().starts_with("kms.audit.0") && Self::take(&self.lose_answers) {
            return Err(HsmError::Unavailable("connection reset".into()));
        }
        Ok(())
    }
    async fn read_data_object(&self, name: &DataObjectName) -> Result<Option<Vec<u8>>, HsmError> {
        Ok(self.raw(name.as_str()))
    }
    async fn replace_data_object(
        &self,
        name: &DataObjectName,
        value: &[u8],
    ) -> Result<(), HsmError> {
        let mut objects = self.objects.lock().unwrap();
        match objects.get_mut(name.as_str()) {
            Some(stored) => {
                *stored = value.to_vec();
                Ok(())
            }
            None => Err(HsmError::NotFound(name.to_string())),
        }
    }
    async fn delete_data_object(&self, name: &DataObjectName) -> Result<(), HsmError> {
        match self.objects.lock().unwrap().remove(name.as_str()) {
            Some(_) => Ok(()),
            None => Err(HsmError::NotFound(name.to_string())),
        }
    }
    async fn list_data_objects(&self) -> Result<Vec<DataObjectName>, HsmError> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .keys()
            .map(|k| DataObjectName::new(k.clone()).unwrap())
            .collect())
    }
    async fn ensure_seal_key(&self, _label: &str) -> Result<(), HsmError> {
        Ok(())
    }
    async fn seal(&self, _: &str, _: &[u8], _: &[u8]) -> Result<SealedBlob, HsmError> {
        Err(HsmError::Refused("no sealing in this fake".into()))
    }
    async fn unseal(
        &self,
        _: &str,
        _: &SealedBlob,
        _: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        Err(HsmError::Refused("no sealing in this fake".into()))
    }
    async fn ensure_signing_key(&self, _label: &str) -> Result<(), HsmError> {
        self.signing_keys.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn sign(&self, label: &str, payload: &[u8]) -> Result<Vec<u8>, HsmError> {
        Ok(fake_signature(label, payload))
    }
    async fn public_key(&self, _label: &str) -> Result<Vec<u8>, HsmError> {
        Ok(FAKE_SPKI.to_vec())
    }

    async fn list_keys(&self) -> Result<Vec<String>, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn key_info(&self, _: &str) -> Result<Option<crate::HsmKeyInfo>, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn create_key(&self, _: &crate::NewHsmKey) -> Result<crate::HsmKeyInfo, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn block_key(&self, _: &str) -> Result<crate::HsmChange, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn unblock_key(&self, _: &str) -> Result<crate::HsmChange, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn modify_policy(
        &self,
        _: &str,
        _: &km_domain::SkaPolicy,
    ) -> Result<crate::HsmChange, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn request_status(&self, _: &str) -> Result<crate::HsmRequest, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn cancel_request(&self, _: &str) -> Result<(), HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn delete_key(&self, _: &str) -> Result<(), HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
    async fn key_public_key(&self, _: &str) -> Result<Option<Vec<u8>>, HsmError> {
        Err(HsmError::Refused(
            "not supported by this test double".into(),
        ))
    }
}

/// A `Write` whose bytes the test can read.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
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
            clock: Arc::new(ManualClock::new(1_800_000_000)),
        }
    }

    fn log(&self) -> AuditLog {
        self.log_with(Arc::new(NoSink), |_| {})
    }

    fn log_with(&self, sink: Arc<dyn AuditSink>, tune: impl FnOnce(&mut AuditConfig)) -> AuditLog {
        let store = StateStore::new(
            self.hsm.clone(),
            self.clock.clone(),
            StateStoreConfig {
                replica: "r".into(),
                lock_retry: LockRetry {
                    attempts: 50,
                    base_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(2),
                },
                ..StateStoreConfig::default()
            },
        );
        let mut config = AuditConfig::default();
        tune(&mut config);
        AuditLog::new(self.hsm.clone(), store, self.clock.clone(), sink, config)
    }
}

fn draft(n: usize) -> EventDraft {
    EventDraft::new("alice", "create_key", Outcome::Success, format!("req-{n}"))
        .with_target(format!("key-{n}"))
}

fn verify(text: &str) -> Result<VerifyReport, VerifyFailure> {
    verify_export(text, &VerifyOptions::default(), &FakeVerifier)
}

async fn export_text(log: &AuditLog) -> String {
    log.export().await.unwrap().to_json_lines().unwrap()
}

#[tokio::test]
async fn events_are_chained_durable_and_exported_for_verification() {
    let rig = Rig::new();
    let log = rig.log();
    for n in 1..=5 {
        let event = log.record(draft(n)).await.unwrap();
        assert_eq!(event.seq, n as u64);
        assert_eq!(event.time, 1_800_000_000);
        assert_eq!(event.request_id, format!("req-{n}"));
    }
    // Sequential records: one batch object each, named by the first seq.
    assert_eq!(
        rig.hsm.batches(),
        (1..=5)
            .map(|n| format!("kms.audit.{n:020}"))
            .collect::<Vec<_>>()
    );
    let events = log.read(1..=5).await.unwrap();
    let summary = verify_chain(&events).unwrap();
    assert_eq!(summary.last_seq, Some(5));
    assert_eq!(events[0].prev_hash, GENESIS_PREV_HASH);
    assert_eq!(log.read(2..=3).await.unwrap(), events[1..3]);

    let export = log.export().await.unwrap();
    assert_eq!(export.events, events);
    assert_eq!(export.key.public_key, FAKE_SPKI);
    assert_eq!(export.key.label, CHECKPOINT_KEY_LABEL);
    assert_eq!(export.checkpoints.last().unwrap().up_to_seq, 5);
    let text = export.to_json_lines().unwrap();
    assert_eq!(text.lines().count(), 1 + 5 + export.checkpoints.len());
    assert!(text.lines().next().unwrap().contains(r#""type":"key""#));
    let report = verify(&text).unwrap();
    assert_eq!((report.events, report.last_checkpoint), (5, Some(5)));
    assert_eq!(report.uncovered, None);
    assert!(!report.key_pinned);
    assert_eq!(
        rig.hsm.signing_keys.load(Ordering::SeqCst),
        1,
        "key ensured once"
    );
}

#[tokio::test]
async fn an_empty_log_exports_a_checkpoint_over_nothing_and_then_continues() {
    let rig = Rig::new();
    let log = rig.log();
    let export = log.export().await.unwrap();
    assert!(export.events.is_empty());
    assert_eq!(export.checkpoints.len(), 1);
    assert_eq!(export.checkpoints[0].up_to_seq, 0);
    let report = verify(&export.to_json_lines().unwrap()).unwrap();
    assert_eq!((report.events, report.checkpoints), (0, 1));
    // A replica starting from the hint the export left behind begins at event 1.
    assert_eq!(rig.log().record(draft(1)).await.unwrap().seq, 1);
    verify(&export_text(&log).await).unwrap();
}

#[tokio::test]
async fn concurrent_callers_are_group_committed_into_few_objects() {
    let rig = Rig::new();
    rig.hsm.create_delay_ms.store(5, Ordering::SeqCst);
    let log = rig.log();
    let mut tasks = Vec::new();
    for n in 0..60 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.record(draft(n)).await }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap().seq);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=60).collect::<Vec<u64>>());
    let batches = rig.hsm.batches().len();
    assert!(batches < 60 / 2, "60 events in {batches} objects");
    verify(&export_text(&log).await).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_append_to_one_chain_without_gaps_or_duplicates() {
    let rig = Rig::new();
    rig.hsm.create_delay_ms.store(1, Ordering::SeqCst);
    let replicas = [rig.log(), rig.log()];
    let mut tasks = Vec::new();
    for (r, log) in replicas.iter().enumerate() {
        for n in 0..25 {
            let log = log.clone();
            tasks.push(tokio::spawn(
                async move { log.record(draft(r * 100 + n)).await },
            ));
        }
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap().seq);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
    let events = replicas[0].read(1..=u64::MAX).await.unwrap();
    verify_chain(&events).unwrap();
    let mut ids: Vec<&str> = events.iter().map(|e| e.request_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "every event exactly once");
    verify(&export_text(&replicas[1]).await).unwrap();
}

#[tokio::test]
async fn an_unwritable_store_refuses_the_action_and_the_chain_resumes_without_a_gap() {
    let rig = Rig::new();
    let log = rig.log();
    log.record(draft(1)).await.unwrap();

    rig.hsm.fail_creates.store(true, Ordering::SeqCst);
    let error = log.record(draft(2)).await.unwrap_err();
    assert!(matches!(error, AuditError::Unavailable { .. }), "{error}");
    assert!(error.is_transient());
    assert!(log.begin(draft(3)).await.is_err());
    let acted = AtomicBool::new(false);
    let outcome = log
        .audited(draft(4), || async {
            acted.store(true, Ordering::SeqCst);
            Ok::<_, std::io::Error>(())
        })
        .await;
    assert!(matches!(outcome, Err(AuditedError::Refused(_))));
    assert!(!acted.load(Ordering::SeqCst), "the action never ran");
    assert_eq!(rig.hsm.batches().len(), 1, "nothing was recorded");

    rig.hsm.fail_creates.store(false, Ordering::SeqCst);
    let value = log
        .audited(draft(5), || async { Ok::<_, std::io::Error>(42) })
        .await
        .unwrap();
    assert_eq!(value, 42);
    let events = log.read(1..=10).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3],
        "request and result follow event 1 without a gap"
    );
    verify_chain(&events).unwrap();
    assert_eq!(events[1].details[PHASE_DETAIL], "request");
    assert_eq!(events[2].details[PHASE_DETAIL], "result");
    assert_eq!(events[2].details[REQUEST_SEQ_DETAIL], "2");
    assert_eq!(events[2].outcome, Outcome::Success);
}

#[tokio::test]
async fn a_failed_action_is_recorded_as_failed_with_its_code() {
    let rig = Rig::new();
    let log = rig.log();
    let outcome = log
        .audited(draft(1), || async {
            Err::<(), _>(std::io::Error::other("boom"))
        })
        .await;
    assert!(matches!(outcome, Err(AuditedError::Failed(_))));
    let action = log.begin(draft(2).with_detail("key", "k1")).await.unwrap();
    assert_eq!(action.request().seq, 3);
    let result = action.failed("conflict").await.unwrap();
    let events = log.read(1..=4).await.unwrap();
    assert_eq!(events[1].outcome, Outcome::Failed);
    assert_eq!(events[1].details[ERROR_DETAIL], "action_failed");
    assert_eq!(result.outcome, Outcome::Failed);
    assert_eq!(result.details[ERROR_DETAIL], "conflict");
    assert_eq!(result.details["key"], "k1", "request details carried over");
    assert_eq!(result.details[REQUEST_SEQ_DETAIL], "3");
}

#[tokio::test]
async fn a_result_that_cannot_be_recorded_waits_in_the_outbox_and_goes_first() {
    let rig = Rig::new();
    let log = rig.log();
    let action = log.begin(draft(1)).await.unwrap();
    // The HSM fails after the request was recorded and the action done.
    rig.hsm.fail_creates.store(true, Ordering::SeqCst);
    assert!(action.succeeded().await.is_err());
    assert_eq!(log.unrecorded_results(), 1);
    assert!(log.record(draft(2)).await.is_err(), "still unwritable");
    assert!(log.flush().await.is_err());
    assert_eq!(log.unrecorded_results(), 1, "kept for the next attempt");

    rig.hsm.fail_creates.store(false, Ordering::SeqCst);
    let next = log.record(draft(3)).await.unwrap();
    assert_eq!(log.unrecorded_results(), 0);
    let events = log.read(1..=3).await.unwrap();
    assert_eq!(events[1].details[PHASE_DETAIL], "result");
    assert_eq!(events[1].details[REQUEST_SEQ_DETAIL], "1");
    assert_eq!((next.seq, next.request_id.as_str()), (3, "req-3"));
    log.flush().await.unwrap();
}

#[tokio::test]
async fn a_lost_answer_is_decided_by_the_read_back() {
    let rig = Rig::new();
    let log = rig.log();
    rig.hsm.lose_answers.store(1, Ordering::SeqCst);
    assert_eq!(log.record(draft(1)).await.unwrap().seq, 1);
    assert_eq!(log.record(draft(2)).await.unwrap().seq, 2);
    verify_chain(&log.read(1..=2).await.unwrap()).unwrap();
}

#[tokio::test]
async fn periodic_checkpoints_and_the_head_hint_let_a_new_replica_continue() {
    let rig = Rig::new();
    let sink = SharedBuffer::default();
    let log = rig.log_with(Arc::new(JsonLinesSink::new(sink.clone())), |c| {
        c.checkpoint_every = 3;
    });
    for n in 1..=7 {
        log.record(draft(n)).await.unwrap();
    }
    assert_eq!(
        rig.hsm.names("kms.audit.checkpoint."),
        [
            format!("kms.audit.checkpoint.{:020}", 3),
            format!("kms.audit.checkpoint.{:020}", 6)
        ]
    );
    let head: AuditHead = serde_json::from_value(
        serde_json::from_slice::<serde_json::Value>(&rig.hsm.raw("kms.audithead.main").unwrap())
            .unwrap()["body"]
            .clone(),
    )
    .unwrap();
    assert_eq!(
        (head.next_seq, head.last_object, head.last_checkpoint),
        (7, 6, 6)
    );

    // The stream: every event and checkpoint as an export line, in order.
    let streamed = sink.text();
    let lines: Vec<ExportLine> = streamed
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 7 + 2);
    assert!(matches!(&lines[3], ExportLine::Checkpoint(c) if c.up_to_seq == 3));
    // A captured stream verifies with the pinned key; its tail after the last checkpoint is
    // reported, and refused when full coverage is required.
    let pinned = VerifyOptions {
        pinned_public_key: Some(FAKE_SPKI.to_vec()),
        require_full_coverage: false,
    };
    let report = verify_export(&streamed, &pinned, &FakeVerifier).unwrap();
    assert_eq!(report.uncovered, Some((7, 7)));
    assert!(report.key_pinned);
    let strict = VerifyOptions {
        require_full_coverage: true,
        ..pinned
    };
    let failure = verify_export(&streamed, &strict, &FakeVerifier).unwrap_err();
    assert_eq!(failure, VerifyFailure::Uncovered { first: 7, last: 7 });

    // A new replica starts from the hint and continues the same chain.
    let other = rig.log();
    assert_eq!(other.record(draft(8)).await.unwrap().seq, 8);
    verify(&export_text(&other).await).unwrap();
}

#[tokio::test]
async fn a_head_hint_that_does_not_match_the_log_stops_appends() {
    let rig = Rig::new();
    let log = rig.log_with(Arc::new(NoSink), |c| c.checkpoint_every = 2);
    for n in 1..=2 {
        log.record(draft(n)).await.unwrap();
    }
    let name = "kms.audithead.main";
    let mut envelope: serde_json::Value =
        serde_json::from_slice(&rig.hsm.raw(name).unwrap()).unwrap();
    envelope["body"]["prev_hash"] = serde_json::json!("ab".repeat(32));
    rig.hsm
        .put_raw(name, &serde_json::to_vec(&envelope).unwrap());
    let error = rig.log().record(draft(3)).await.unwrap_err();
    assert!(
        matches!(&error, AuditError::Damaged { reason, .. } if reason.contains("head record")),
        "{error}"
    );
    assert!(!error.is_transient());
}

#[tokio::test]
async fn an_unreadable_batch_at_the_end_stops_appends() {
    let rig = Rig::new();
    let log = rig.log();
    log.record(draft(1)).await.unwrap();
    rig.hsm
        .put_raw(&format!("kms.audit.{:020}", 2), b"not json");
    let error = log.record(draft(2)).await.unwrap_err();
    assert!(matches!(error, AuditError::Damaged { .. }), "{error}");
    assert_eq!(rig.hsm.raw(&format!("kms.audit.{:020}", 3)), None);
}

#[tokio::test]
async fn oversized_events_are_refused_before_anything_is_written() {
    let rig = Rig::new();
    let log = rig.log();
    let error = log
        .record(draft(1).with_detail("blob", "x".repeat(10_000)))
        .await
        .unwrap_err();
    assert!(matches!(error, AuditError::TooLarge { .. }), "{error}");
    assert_eq!(rig.hsm.creates.load(Ordering::SeqCst), 0);
}

// ----- offline verification -----

/// An export of `n` events with a checkpoint every 4, as JSON lines, and the lines parsed.
async fn exported(n: usize) -> (Rig, String) {
    let rig = Rig::new();
    let log = rig.log_with(Arc::new(NoSink), |c| c.checkpoint_every = 4);
    for i in 1..=n {
        log.record(draft(i)).await.unwrap();
    }
    let text = export_text(&log).await;
    (rig, text)
}

fn edit_lines(text: &str, mut edit: impl FnMut(&mut serde_json::Value)) -> String {
    text.lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            edit(&mut value);
            serde_json::to_string(&value).unwrap()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_event(value: &serde_json::Value, seq: u64) -> bool {
    value["type"] == "event" && value["seq"] == seq
}

#[tokio::test]
async fn verification_names_an_altered_event() {
    let (_rig, text) = exported(10).await;
    verify(&text).unwrap();
    let tampered = edit_lines(&text, |v| {
        if is_event(v, 6) {
            v["target"] = "someone-elses-key".into();
        }
    });
    let failure = verify(&tampered).unwrap_err();
    assert_eq!(failure.seq(), Some(6));
    assert!(failure.to_string().contains("event 6"), "{failure}");

    // The last event has no successor; the export's checkpoint catches it.
    let tampered = edit_lines(&text, |v| {
        if is_event(v, 10) {
            v["actor"] = "mallory".into();
        }
    });
    let failure = verify(&tampered).unwrap_err();
    assert!(
        matches!(failure, VerifyFailure::Checkpoint { up_to_seq: 10, .. }),
        "{failure}"
    );
    assert_eq!(failure.seq(), Some(10));
    assert!(failure.to_string().contains("event 10"), "{failure}");
}

#[tokio::test]
async fn verification_catches_a_rehashed_chain_at_the_signed_checkpoint() {
    let (_rig, text) = exported(10).await;
    // Alter event 2 and fix every later prev_hash: the chain is consistent again, but the signed
    // checkpoint over event 4 no longer matches.
    let mut lines: Vec<ExportLine> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut prev: Option<String> = None;
    for line in &mut lines {
        if let ExportLine::Event(event) = line {
            if let Some(prev) = &prev {
                event.prev_hash = prev.clone();
            }
            if event.seq == 2 {
                event.actor = "mallory".into();
            }
            prev = Some(event.hash_hex());
        }
    }
    let rewritten: String = lines
        .iter()
        .map(|line| serde_json::to_string(line).unwrap() + "\n")
        .collect();
    let failure = verify(&rewritten).unwrap_err();
    assert!(
        matches!(failure, VerifyFailure::Checkpoint { up_to_seq: 4, .. }),
        "{failure}"
    );
    assert_eq!(failure.seq(), Some(4));
}

#[tokio::test]
async fn verification_names_a_forged_checkpoint_and_a_foreign_key() {
    let (_rig, text) = exported(10).await;
    let forged = edit_lines(&text, |v| {
        if v["type"] == "checkpoint" && v["up_to_seq"] == 8 {
            let mut signature = hex_decode(v["signature"].as_str().unwrap());
            signature[3] ^= 1;
            v["signature"] = hex_encode(&signature).into();
        }
    });
    assert_eq!(
        verify(&forged).unwrap_err(),
        VerifyFailure::BadSignature { up_to_seq: 8 }
    );

    let other_key = VerifyOptions {
        pinned_public_key: Some(b"another key".to_vec()),
        require_full_coverage: true,
    };
    let failure = verify_export(&text, &other_key, &FakeVerifier).unwrap_err();
    assert!(
        matches!(failure, VerifyFailure::BadSignature { .. }),
        "{failure}"
    );

    let pinned = VerifyOptions {
        pinned_public_key: Some(FAKE_SPKI.to_vec()),
        require_full_coverage: true,
    };
    let report = verify_export(&text, &pinned, &FakeVerifier).unwrap();
    assert!(report.key_pinned && !report.exported_key_differs);

    // Without a key at all, checkpoints cannot be checked.
    let keyless: String = text
        .lines()
        .filter(|line| !line.contains(r#""type":"key""#))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(verify(&keyless).unwrap_err(), VerifyFailure::NoKey);
}

#[tokio::test]
async fn verification_catches_removed_events_and_checkpoints() {
    let (_rig, text) = exported(10).await;
    let keep = |text: &str, drop: &dyn Fn(&serde_json::Value) -> bool| -> String {
        text.lines()
            .filter(|line| !drop(&serde_json::from_str(line).unwrap()))
            .map(|line| format!("{line}\n"))
            .collect()
    };
    // A removed event in the middle.
    let failure = verify(&keep(&text, &|v| is_event(v, 5))).unwrap_err();
    assert_eq!(failure.seq(), Some(5), "{failure}");
    // The tail cut off (its checkpoint kept): the checkpoint covers more than the log has.
    let failure = verify(&keep(&text, &|v| {
        v["type"] == "event" && v["seq"].as_u64() > Some(8)
    }))
    .unwrap_err();
    assert!(
        matches!(
            failure,
            VerifyFailure::Checkpoint {
                source: CheckpointMismatch::Truncated { last_seq: 8, .. },
                ..
            }
        ),
        "{failure}"
    );
    // Every checkpoint removed: nothing authenticates the events.
    let failure = verify(&keep(&text, &|v| v["type"] == "checkpoint")).unwrap_err();
    assert_eq!(failure, VerifyFailure::Unsigned { events: 10 });
    // The first events removed without a checkpoint right before the rest.
    let failure = verify(&keep(&text, &|v| is_event(v, 1) || is_event(v, 2))).unwrap_err();
    assert_eq!(failure, VerifyFailure::NoAnchor { first_seq: 3 });
}

#[tokio::test]
async fn a_partial_export_verifies_from_the_checkpoint_before_it() {
    let (_rig, text) = exported(10).await;
    let partial: String = text
        .lines()
        .filter(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["type"] != "event" || v["seq"].as_u64() > Some(4)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let report = verify(&partial).unwrap();
    assert_eq!((report.first_seq, report.last_seq), (Some(5), Some(10)));
}

#[tokio::test]
async fn a_malformed_line_is_named() {
    let (_rig, text) = exported(3).await;
    let broken = edit_lines(&text, |v| {
        if is_event(v, 2) {
            v["seq"] = serde_json::json!(2);
            v["outcome"] = "maybe".into();
        }
    });
    let failure = verify(&broken).unwrap_err();
    assert!(
        matches!(failure, VerifyFailure::Malformed { seq: Some(2), .. }),
        "{failure}"
    );
    assert!(failure.to_string().contains("event 2"), "{failure}");
}

#[test]
fn object_names_round_trip_and_sort_in_log_order() {
    let names = [
        storage::event_object(1),
        storage::event_object(12),
        storage::checkpoint_object(12),
    ];
    assert_eq!(names[0].as_str(), "kms.audit.00000000000000000001");
    assert!(names[0].as_str() < names[1].as_str());
    assert_eq!(
        names.iter().map(storage::parse_name).collect::<Vec<_>>(),
        [
            Some(AuditObject::Events(1)),
            Some(AuditObject::Events(12)),
            Some(AuditObject::Checkpoint(12))
        ]
    );
    for other in [
        "kms.audithead.main",
        "kms.audit.12",
        "kms.audit.checkpoint.x",
    ] {
        assert_eq!(
            storage::parse_name(&DataObjectName::new(other).unwrap()),
            None
        );
    }
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
