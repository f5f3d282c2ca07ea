//! The audit log (DESIGN §4.5): every state change and every denied request becomes a hash-chained
//! [`AuditEvent`] stored as HSM data objects on the management partition, with periodic
//! [`Checkpoint`]s signed by an HSM key, streamed to an [`AuditSink`], and exportable for offline
//! verification ([`AuditLog::export`], [`verify_export`]).
//!
//! # Fail-closed, and in which order (audit vs act)
//!
//! The rule is: *if the event cannot be recorded, the action is refused; nothing is half-done.*
//! Neither "act, then record" (a change can happen that the log never learns of) nor "record
//! `success`, then act" (the log claims what may then fail) meets it. keymanager writes ahead:
//!
//! 1. **Request** — [`AuditLog::begin`] records the admitted request (`outcome: success` meaning
//!    *authorized and admitted*, `details.phase = "request"`) and returns only once that event is
//!    durable on the HSM (written, then read back). If it cannot be recorded, `begin` fails and
//!    the caller refuses the request without touching anything.
//! 2. **Act** — the caller performs the state change.
//! 3. **Result** — [`AuditedAction::succeeded`] / [`AuditedAction::failed`] records how it ended
//!    (`details.phase = "result"`, `details.request_seq` = the request's seq).
//!
//! So every change that happens has a durable event written *before* it, and no change happens
//! without one. If the result cannot be recorded (the HSM failed between steps 1 and 3), the
//! change stands — undoing it could fail too — the caller still gets its answer, and the result
//! is kept in this instance's outbox and written first by the next append (which fails, and so
//! refuses the next request, as long as the HSM stays unwritable). If the process dies in that
//! window, the log shows a request without a result: "admitted, outcome unknown", which is true.
//! [`AuditLog::audited`] runs the three steps around a closure.
//!
//! Denied requests are a single event ([`AuditLog::record`] with
//! `EventDraft::for_denial`): the request is refused whatever happens to the event.
//!
//! # Storage and several replicas
//!
//! Events are appended in *batches*: one data object `kms.audit.<first seq>` per batch, created
//! with the HSM's atomic create-if-absent and never replaced (layout in `storage`). The create is
//! the serialisation point of the chain: a replica appends at the seq after the last event it
//! knows; if another replica created that object first, it reads that batch, chains onto it and
//! tries the next seq. Nobody can write event `n + 1` without knowing event `n`'s hash, so the
//! replicas form one chain without gaps or duplicates, with no lock and two HSM round trips per
//! batch (create, read-back). Inside one instance, concurrent callers are *group-committed*: while
//! one batch is being written, new events queue up and go into the next batch together (DESIGN §9
//! P1/P7: the audit write cost is shared by concurrent requests).
//!
//! The state-store record `audithead/main` (`{next_seq, prev_hash, last_object,
//! last_checkpoint}`) is only a *hint* where the log ends, refreshed with every checkpoint, so a
//! starting replica reads forward from it instead of from the genesis. It is checked against the
//! stored event it points at before anything is chained onto it.
//!
//! Checkpoints are made every [`AuditConfig::checkpoint_every`] events and on demand
//! ([`AuditLog::checkpoint`], and by every export), signed inside the HSM with the EC P-256 key
//! [`CHECKPOINT_KEY_LABEL`], and stored as `kms.audit.checkpoint.<up_to_seq>`.
//!
//! # What events may contain
//!
//! Never a secret: no password, token, TOTP seed, key material, plaintext or ciphertext of
//! customer data. `details` carries ids and codes only (key labels, algorithm names, reason codes).
//! The log leaves the HSM as JSON lines and is read by auditors.

mod export;
mod sink;
mod storage;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use km_domain::audit::{
    AuditChain, AuditEvent, ChainAnchor, Checkpoint, EventDraft, FIRST_SEQ, Outcome,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use export::{
    AuditExport, CHECKPOINT_SIGNATURE_ALGORITHM, ExportKey, ExportLine, SignatureVerifier,
    VerifyFailure, VerifyOptions, VerifyReport, verify_export,
};
pub use sink::{AuditSink, JsonLinesSink, NoSink, SinkError};

use crate::{Clock, DataObjectName, Hsm, HsmError, Sealing, StateStore, StoreError, Versioned};
use storage::AuditObject;

/// Label of the HSM key that signs checkpoints.
pub const CHECKPOINT_KEY_LABEL: &str = "kms.audit.checkpoint.v1";
/// `details` key set by [`AuditLog::begin`] and [`AuditedAction`]: `"request"` or `"result"`.
pub const PHASE_DETAIL: &str = "phase";
/// `details` key of a result event: the seq of its request event.
pub const REQUEST_SEQ_DETAIL: &str = "request_seq";
/// `details` key of a failed result: the caller's error code.
pub const ERROR_DETAIL: &str = "error";

/// State-store kind and id of the head hint.
const HEAD_KIND: &str = "audithead";
const HEAD_ID: &str = "main";
/// Largest single event (JSON). Events carry ids and codes; anything bigger is a bug (or data that
/// does not belong in the log). With at most [`MAX_BATCH_EVENTS`] per batch, a batch stays well
/// under the TSB's 1 MiB data-object limit.
const MAX_EVENT_BYTES: usize = 8 * 1024;
/// Most events in one batch object.
const MAX_BATCH_EVENTS: usize = 64;
/// Appends that lose the race to other replicas before giving up.
const MAX_APPEND_ATTEMPTS: u32 = 64;

/// Tunables of an [`AuditLog`]. Every replica of an installation should use the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// A checkpoint is made by the append that reaches a multiple of this many events (0 = only
    /// on demand).
    pub checkpoint_every: u64,
    /// Label of the checkpoint signing key on the management partition.
    pub checkpoint_key_label: String,
    /// Most events group-committed into one data object (1 to 64).
    pub max_batch_events: usize,
    /// Actor recorded on the head hint record.
    pub actor: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 100,
            checkpoint_key_label: CHECKPOINT_KEY_LABEL.to_owned(),
            max_batch_events: 32,
            actor: "system:audit".to_owned(),
        }
    }
}

/// Why an event was not recorded (or the log not read). Cloneable: one failed batch answers every
/// caller in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The management partition could not be read or written.
    #[error("the audit log is unavailable, so the action is refused: {reason}")]
    Unavailable {
        /// The HSM's error.
        reason: String,
    },
    /// A write was answered but its read-back did not confirm it.
    #[error(
        "the audit event in {object} is not confirmed by the HSM, so the action is refused: {reason}"
    )]
    NotDurable {
        /// Data object name.
        object: String,
        /// What the read-back found.
        reason: String,
    },
    /// The stored log cannot be continued: an object is unreadable or does not chain. Needs an
    /// operator (`keymanager audit verify` on an export names the event); nothing is appended
    /// meanwhile.
    #[error("the audit log on the HSM is damaged at {object}: {reason}")]
    Damaged {
        /// Data object name.
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// The event is larger than an audit event may be.
    #[error("the audit event is {size} bytes; at most {max} are allowed")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Other replicas appended so fast that this one lost every race.
    #[error("the audit log is too busy: lost {attempts} appends in a row to other replicas")]
    Contended {
        /// Appends lost.
        attempts: u32,
    },
    /// A checkpoint could not be signed or stored.
    #[error("the audit checkpoint could not be made: {reason}")]
    Checkpoint {
        /// Why.
        reason: String,
    },
    /// The append was interrupted (the runtime shut down); whether the event is stored is
    /// unknown, so the action must be refused.
    #[error("the audit append was interrupted; the action is refused")]
    Interrupted,
}

impl AuditError {
    /// Whether the same append may succeed later without anybody intervening.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. }
                | Self::NotDurable { .. }
                | Self::Contended { .. }
                | Self::Checkpoint { .. }
                | Self::Interrupted
        )
    }

    fn unavailable(error: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            reason: error.to_string(),
        }
    }

    fn damaged(object: &DataObjectName, reason: impl Into<String>) -> Self {
        Self::Damaged {
            object: object.to_string(),
            reason: reason.into(),
        }
    }
}

/// An [`AuditLog::audited`] action that did not complete.
#[derive(Debug, thiserror::Error)]
pub enum AuditedError<E> {
    /// The request could not be recorded; the action was not attempted.
    #[error(transparent)]
    Refused(AuditError),
    /// The request was recorded, the action ran and failed (its result event says so).
    #[error("{0}")]
    Failed(E),
}

/// The head hint (state-store record `audithead/main`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AuditHead {
    /// The seq the next event gets.
    next_seq: u64,
    /// The hash of event `next_seq - 1`.
    prev_hash: String,
    /// The first seq of the batch holding event `next_seq - 1` (0 for an empty log).
    last_object: u64,
    /// The newest checkpoint's `up_to_seq`.
    last_checkpoint: u64,
}

/// The chain as this instance knows it.
#[derive(Debug, Clone)]
struct Loaded {
    chain: AuditChain,
    /// The first seq of the batch holding the last known event (0 for an empty log).
    last_object: u64,
}

/// One queued event: a caller waiting for it, or (`reply: None`) an outbox result.
struct Pending {
    draft: EventDraft,
    reply: Option<oneshot::Sender<Result<AuditEvent, AuditError>>>,
}

struct Shared {
    hsm: Arc<dyn Hsm>,
    store: StateStore,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn AuditSink>,
    config: AuditConfig,
    /// Events waiting for the next batch.
    pending: Mutex<Vec<Pending>>,
    /// Results of completed actions whose recording failed; written first by the next batch.
    outbox: Mutex<Vec<EventDraft>>,
    /// Held by the one task writing a batch; holds the chain (`None` until loaded, and after a
    /// failure, so that the next append starts from what the HSM says).
    writer: Arc<tokio::sync::Mutex<Option<Loaded>>>,
    key_ready: AtomicBool,
}

/// keymanager's audit log on the management partition. Cheap to clone; one per process is
/// enough, but several (in one process or several replicas) append to the same single chain.
#[derive(Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values are plain queues that a panicking holder cannot leave half-changed.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuditLog {
    /// An audit log on `management` (the management partition), keeping its head hint in `store`
    /// (which must be on the same partition), timing events with `clock` and streaming to `sink`.
    pub fn new(
        management: Arc<dyn Hsm>,
        store: StateStore,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn AuditSink>,
        config: AuditConfig,
    ) -> Self {
        let config = AuditConfig {
            max_batch_events: config.max_batch_events.clamp(1, MAX_BATCH_EVENTS),
            ..config
        };
        Self {
            shared: Arc::new(Shared {
                hsm: management,
                store,
                clock,
                sink,
                config,
                pending: Mutex::new(Vec::new()),
                outbox: Mutex::new(Vec::new()),
                writer: Arc::new(tokio::sync::Mutex::new(None)),
                key_ready: AtomicBool::new(false),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &AuditConfig {
        &self.shared.config
    }

    /// Makes sure the checkpoint key exists and finds the end of the log. Call at start-up to fail
    /// early; appends do both by themselves otherwise.
    pub async fn prepare(&self) -> Result<(), AuditError> {
        self.shared.ensure_key().await?;
        let mut writer = self.shared.writer.clone().lock_owned().await;
        let loaded = self.shared.loaded(&mut writer).await?;
        self.shared.catch_up(loaded).await
    }

    /// Records one event and returns it once it is durable on the HSM. For denied requests and
    /// facts that are not themselves a change; for state changes use [`AuditLog::begin`].
    pub async fn record(&self, draft: EventDraft) -> Result<AuditEvent, AuditError> {
        self.submit(draft).await
    }

    /// Step 1 of a state change (see the module docs): records the admitted request and returns
    /// the handle that records its result. Perform the change only after this returned `Ok`.
    /// The draft's outcome is replaced by `success` (= admitted) and `details.phase` is set.
    pub async fn begin(&self, draft: EventDraft) -> Result<AuditedAction, AuditError> {
        let draft = EventDraft {
            outcome: Outcome::Success,
            ..draft
        }
        .with_detail(PHASE_DETAIL, "request");
        let request = self.submit(draft).await?;
        Ok(AuditedAction {
            log: self.clone(),
            request,
            finished: false,
        })
    }

    /// The whole write-ahead pattern: records the request, runs `act` only if that succeeded,
    /// then records its result. A result that cannot be recorded does not undo or hide a change
    /// that happened (see the module docs); it is logged and kept in the outbox.
    pub async fn audited<T, E, F, Fut>(
        &self,
        draft: EventDraft,
        act: F,
    ) -> Result<T, AuditedError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let action = self.begin(draft).await.map_err(AuditedError::Refused)?;
        let seq = action.request().seq;
        match act().await {
            Ok(value) => {
                if let Err(error) = action.succeeded().await {
                    tracing::error!(request_seq = seq, %error,
                        "the action succeeded but its result could not be recorded yet");
                }
                Ok(value)
            }
            Err(failure) => {
                if let Err(error) = action.failed("action_failed").await {
                    tracing::error!(request_seq = seq, %error,
                        "the action failed and its result could not be recorded yet");
                }
                Err(AuditedError::Failed(failure))
            }
        }
    }

    /// Writes results waiting in the outbox (e.g. from a periodic task); `Ok` when it is empty.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let writer = self.shared.writer.clone().lock_owned().await;
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let mut writer = writer;
            shared.commit(&mut writer, Vec::new()).await
        });
        task.await.map_err(|_| AuditError::Interrupted)?
    }

    /// Results of finished actions not yet recorded (kept in memory until the HSM takes them).
    pub fn unrecorded_results(&self) -> usize {
        lock(&self.shared.outbox).len()
    }

    /// Makes a checkpoint over the whole log as stored now (including other replicas' events),
    /// signed in the HSM, stored, and returned.
    pub async fn checkpoint(&self) -> Result<Checkpoint, AuditError> {
        self.shared.ensure_key().await?;
        let mut writer = self.shared.writer.clone().lock_owned().await;
        let loaded = self.shared.loaded(&mut writer).await?;
        self.shared.catch_up(loaded).await?;
        let loaded = loaded.clone();
        drop(writer);
        self.shared.make_checkpoint(&loaded).await
    }

    /// The checkpoint key's public part (DER `SubjectPublicKeyInfo`), to pin for verification.
    pub async fn public_key(&self) -> Result<Vec<u8>, AuditError> {
        self.shared.ensure_key().await?;
        self.shared
            .hsm
            .public_key(&self.shared.config.checkpoint_key_label)
            .await
            .map_err(AuditError::unavailable)
    }

    /// The stored events with seqs in `range`, in seq order, exactly as stored.
    pub async fn read(&self, range: RangeInclusive<u64>) -> Result<Vec<AuditEvent>, AuditError> {
        let (batches, _) = self.shared.list().await?;
        let starts: Vec<u64> = batches.iter().map(|(start, _)| *start).collect();
        let mut events = Vec::new();
        for (index, (start, name)) in batches.iter().enumerate() {
            let end = starts
                .get(index.saturating_add(1))
                .map_or(u64::MAX, |next| next.saturating_sub(1));
            if *start > *range.end() || end < *range.start() {
                continue;
            }
            let raw = self.shared.read_object(name).await?;
            let batch = storage::decode_batch(&raw).map_err(|reason| AuditError::Damaged {
                object: name.to_string(),
                reason,
            })?;
            events.extend(batch.into_iter().filter(|event| range.contains(&event.seq)));
        }
        events.sort_by_key(|event| event.seq);
        Ok(events)
    }

    /// Everything needed to verify the log offline: a fresh checkpoint over the current end of the
    /// log, every stored event up to it and every stored checkpoint, and the checkpoint key.
    /// Objects are passed on as stored — altered ones included — so that the verifier names what
    /// is wrong; an object that is not even a batch is left out (and its events then show up as
    /// missing).
    pub async fn export(&self) -> Result<AuditExport, AuditError> {
        let head = self.checkpoint().await?;
        let public_key = self.public_key().await?;
        let (batches, checkpoint_objects) = self.shared.list().await?;
        let mut events = Vec::new();
        for (start, name) in &batches {
            if *start > head.up_to_seq {
                continue;
            }
            let raw = self.shared.read_object(name).await?;
            match storage::decode_batch(&raw) {
                Ok(batch) => events.extend(batch),
                Err(reason) => {
                    tracing::warn!(object = %name, %reason, "unreadable audit batch left out of the export");
                }
            }
        }
        events.retain(|event| event.seq <= head.up_to_seq);
        let mut checkpoints = Vec::new();
        for (up_to_seq, name) in &checkpoint_objects {
            if *up_to_seq > head.up_to_seq {
                continue;
            }
            let raw = self.shared.read_object(name).await?;
            match storage::decode_checkpoint(&raw) {
                Ok(checkpoint) => checkpoints.push(checkpoint),
                Err(reason) => {
                    tracing::warn!(object = %name, %reason, "unreadable audit checkpoint left out of the export");
                }
            }
        }
        Ok(AuditExport {
            key: ExportKey {
                label: self.shared.config.checkpoint_key_label.clone(),
                algorithm: CHECKPOINT_SIGNATURE_ALGORITHM.to_owned(),
                public_key,
            },
            events,
            checkpoints,
        })
    }

    /// Queues `draft`, commits (as the leader of a batch, or by waiting for the leader that took
    /// it) and waits for the answer.
    async fn submit(&self, draft: EventDraft) -> Result<AuditEvent, AuditError> {
        let size = serde_json::to_vec(&AuditChain::new().prepare(draft.clone(), 0))
            .map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_EVENT_BYTES {
            return Err(AuditError::TooLarge {
                size,
                max: MAX_EVENT_BYTES,
            });
        }
        let (reply, answer) = oneshot::channel();
        lock(&self.shared.pending).push(Pending {
            draft,
            reply: Some(reply),
        });
        let writer = self.shared.writer.clone().lock_owned().await;
        let batch = std::mem::take(&mut *lock(&self.shared.pending));
        if batch.is_empty() {
            // An earlier leader took our event and has answered already.
            drop(writer);
        } else {
            // The batch runs as its own task so that a caller that goes away (a dropped request
            // future) cannot interrupt a write others are waiting for.
            let shared = self.shared.clone();
            let task = tokio::spawn(async move {
                let mut writer = writer;
                // Errors reach every caller through its reply.
                let _ = shared.commit(&mut writer, batch).await;
            });
            let _ = task.await;
        }
        answer.await.unwrap_or(Err(AuditError::Interrupted))
    }
}

/// Step 3 of a state change: records how the admitted request ended. Consume it with
/// [`AuditedAction::succeeded`] or [`AuditedAction::failed`]; dropping it records nothing (the
/// log then shows the request without a result: outcome unknown) and is logged.
#[derive(Debug)]
#[must_use = "record the action's result with succeeded() or failed()"]
pub struct AuditedAction {
    log: AuditLog,
    request: AuditEvent,
    finished: bool,
}

impl AuditedAction {
    /// The durable request event.
    pub fn request(&self) -> &AuditEvent {
        &self.request
    }

    /// The change was made.
    pub async fn succeeded(self) -> Result<AuditEvent, AuditError> {
        self.finish(Outcome::Success, None).await
    }

    /// The change was not made; `code` says why (an error code — never a message that could
    /// quote input or a secret).
    pub async fn failed(self, code: &str) -> Result<AuditEvent, AuditError> {
        self.finish(Outcome::Failed, Some(code)).await
    }

    async fn finish(
        mut self,
        outcome: Outcome,
        code: Option<&str>,
    ) -> Result<AuditEvent, AuditError> {
        self.finished = true;
        let request = &self.request;
        let mut details = request.details.clone();
        details.insert(PHASE_DETAIL.to_owned(), "result".to_owned());
        details.insert(REQUEST_SEQ_DETAIL.to_owned(), request.seq.to_string());
        if let Some(code) = code {
            details.insert(ERROR_DETAIL.to_owned(), code.to_owned());
        }
        let draft = EventDraft {
            actor: request.actor.clone(),
            tenant: request.tenant.clone(),
            action: request.action.clone(),
            target: request.target.clone(),
            outcome,
            request_id: request.request_id.clone(),
            details,
        };
        match self.log.submit(draft.clone()).await {
            Ok(event) => Ok(event),
            Err(error) => {
                if !matches!(error, AuditError::TooLarge { .. }) {
                    lock(&self.log.shared.outbox).push(draft);
                }
                Err(error)
            }
        }
    }
}

impl Drop for AuditedAction {
    fn drop(&mut self) {
        if !self.finished {
            tracing::warn!(request_seq = self.request.seq, action = %self.request.action,
                "an audited action was dropped before its result was recorded");
        }
    }
}

/// Internal error of the head-hint update: nothing to do is not a failure.
enum HintError {
    Store(StoreError),
    UpToDate,
}

impl From<StoreError> for HintError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl Shared {
    async fn ensure_key(&self) -> Result<(), AuditError> {
        if !self.key_ready.load(Ordering::Acquire) {
            self.hsm
                .ensure_signing_key(&self.config.checkpoint_key_label)
                .await
                .map_err(|error| AuditError::Checkpoint {
                    reason: error.to_string(),
                })?;
            self.key_ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// The chain in `slot`, loading it from the HSM first if needed.
    async fn loaded<'a>(&self, slot: &'a mut Option<Loaded>) -> Result<&'a mut Loaded, AuditError> {
        if slot.is_none() {
            *slot = Some(self.load().await?);
        }
        slot.as_mut().ok_or(AuditError::Interrupted)
    }

    /// Finds the end of the log: from the head hint (checked against the event it names), then
    /// forward over batches written since.
    async fn load(&self) -> Result<Loaded, AuditError> {
        let hint: Option<Versioned<AuditHead>> =
            self.store
                .get(HEAD_KIND, HEAD_ID)
                .await
                .map_err(|error| match error {
                    StoreError::Corrupt { name, reason } => AuditError::Damaged {
                        object: name,
                        reason,
                    },
                    other => AuditError::unavailable(other),
                })?;
        let mut loaded = match hint {
            None => Loaded {
                chain: AuditChain::new(),
                last_object: 0,
            },
            Some(Versioned { value: head, .. }) if head.next_seq <= FIRST_SEQ => Loaded {
                chain: AuditChain::new(),
                last_object: 0,
            },
            Some(Versioned { value: head, .. }) => {
                let name = storage::event_object(head.last_object);
                let raw = self.read_object(&name).await?;
                let events = storage::decode_batch_at(&name, head.last_object, &raw)?;
                let last = head.next_seq.saturating_sub(1);
                match events.iter().find(|event| event.seq == last) {
                    Some(event) if event.hash_hex() == head.prev_hash => {}
                    Some(_) => {
                        return Err(AuditError::damaged(
                            &name,
                            format!("event {last} does not match the audit head record"),
                        ));
                    }
                    None => {
                        return Err(AuditError::damaged(
                            &name,
                            format!(
                                "the audit head record says event {last} is here, but it is not"
                            ),
                        ));
                    }
                }
                Loaded {
                    chain: AuditChain::resume(ChainAnchor {
                        next_seq: head.next_seq,
                        prev_hash: head.prev_hash,
                    }),
                    last_object: head.last_object,
                }
            }
        };
        self.catch_up(&mut loaded).await?;
        Ok(loaded)
    }

    /// Reads forward over batches other replicas appended after what `loaded` knows.
    async fn catch_up(&self, loaded: &mut Loaded) -> Result<(), AuditError> {
        loop {
            let first = loaded.chain.head().next_seq;
            let name = storage::event_object(first);
            let Some(raw) = self
                .hsm
                .read_data_object(&name)
                .await
                .map_err(AuditError::unavailable)?
            else {
                return Ok(());
            };
            self.accept_batch(loaded, &name, first, &raw)?;
        }
    }

    /// Chains a batch found on the HSM onto `loaded`.
    fn accept_batch(
        &self,
        loaded: &mut Loaded,
        name: &DataObjectName,
        first: u64,
        raw: &[u8],
    ) -> Result<(), AuditError> {
        let events = storage::decode_batch_at(name, first, raw)?;
        let mut chain = loaded.chain.clone();
        for event in &events {
            chain
                .accept(event)
                .map_err(|error| AuditError::damaged(name, error.to_string()))?;
        }
        loaded.chain = chain;
        loaded.last_object = first;
        Ok(())
    }

    async fn read_object(&self, name: &DataObjectName) -> Result<Vec<u8>, AuditError> {
        self.hsm
            .read_data_object(name)
            .await
            .map_err(AuditError::unavailable)?
            .ok_or_else(|| AuditError::damaged(name, "the object is missing"))
    }

    /// Audit objects on the partition: batches by first seq, checkpoints by `up_to_seq`.
    async fn list(&self) -> Result<AuditObjects, AuditError> {
        let mut batches = Vec::new();
        let mut checkpoints = Vec::new();
        for name in self
            .hsm
            .list_data_objects()
            .await
            .map_err(AuditError::unavailable)?
        {
            match storage::parse_name(&name) {
                Some(AuditObject::Events(first)) => batches.push((first, name)),
                Some(AuditObject::Checkpoint(up_to)) => checkpoints.push((up_to, name)),
                None => {}
            }
        }
        batches.sort_by_key(|(first, _)| *first);
        checkpoints.sort_by_key(|(up_to, _)| *up_to);
        Ok((batches, checkpoints))
    }

    /// Writes the outbox and `batch` as one or more batches, answering every caller. Runs under
    /// the writer lock.
    async fn commit(
        &self,
        slot: &mut Option<Loaded>,
        batch: Vec<Pending>,
    ) -> Result<(), AuditError> {
        let outbox = std::mem::take(&mut *lock(&self.outbox));
        let mut queue: std::collections::VecDeque<Pending> = outbox
            .into_iter()
            .map(|draft| Pending { draft, reply: None })
            .chain(batch)
            .collect();
        while !queue.is_empty() {
            let take = queue.len().min(self.config.max_batch_events);
            let chunk: Vec<Pending> = queue.drain(..take).collect();
            let drafts: Vec<EventDraft> = chunk.iter().map(|p| p.draft.clone()).collect();
            match self.append(slot, &drafts).await {
                Ok((events, loaded)) => {
                    for (pending, event) in chunk.into_iter().zip(&events) {
                        if let Some(reply) = pending.reply {
                            let _ = reply.send(Ok(event.clone()));
                        }
                    }
                    self.after_append(&events, &loaded).await;
                }
                Err(error) => {
                    // Nothing of this chunk or what follows is recorded: answer the callers,
                    // keep outbox results for the next attempt, and forget the chain so the next
                    // append starts from what the HSM holds.
                    *slot = None;
                    let mut retry = Vec::new();
                    for pending in chunk.into_iter().chain(queue) {
                        match pending.reply {
                            Some(reply) => {
                                let _ = reply.send(Err(error.clone()));
                            }
                            None => retry.push(pending.draft),
                        }
                    }
                    if !retry.is_empty() {
                        let mut outbox = lock(&self.outbox);
                        retry.append(&mut outbox);
                        *outbox = retry;
                    }
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Appends `drafts` as one batch at the end of the chain, racing other replicas with
    /// create-if-absent. Returns the durable events and the chain after them.
    async fn append(
        &self,
        slot: &mut Option<Loaded>,
        drafts: &[EventDraft],
    ) -> Result<(Vec<AuditEvent>, Loaded), AuditError> {
        let loaded = self.loaded(slot).await?;
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let now = self.clock.now();
            let mut next = loaded.chain.clone();
            let events: Vec<AuditEvent> = drafts
                .iter()
                .map(|draft| next.append(draft.clone(), now))
                .collect();
            let first = loaded.chain.head().next_seq;
            let name = storage::event_object(first);
            let bytes =
                storage::encode_batch(&events).map_err(|reason| AuditError::NotDurable {
                    object: name.to_string(),
                    reason: format!("the batch could not be encoded: {reason}"),
                })?;
            let theirs = match self.hsm.create_data_object(&name, &bytes).await {
                Ok(()) => None,
                // Another replica appended there first.
                Err(HsmError::AlreadyExists(_)) => Some(self.read_object(&name).await?),
                // The answer may have been lost after the HSM stored it: what is stored decides.
                Err(error) => match self.hsm.read_data_object(&name).await {
                    Ok(Some(stored)) if stored == bytes => None,
                    Ok(Some(stored)) => Some(stored),
                    Ok(None) => return Err(AuditError::unavailable(error)),
                    Err(read) => {
                        return Err(AuditError::unavailable(format!(
                            "{error}; the read-back failed too: {read}"
                        )));
                    }
                },
            };
            match theirs {
                None => {
                    self.confirm(&name, &bytes).await?;
                    loaded.chain = next;
                    loaded.last_object = first;
                    return Ok((events, loaded.clone()));
                }
                Some(stored) => self.accept_batch(loaded, &name, first, &stored)?,
            }
        }
        Err(AuditError::Contended {
            attempts: MAX_APPEND_ATTEMPTS,
        })
    }

    /// The read-back that makes a write durable.
    async fn confirm(&self, name: &DataObjectName, bytes: &[u8]) -> Result<(), AuditError> {
        let not_durable = |reason: String| AuditError::NotDurable {
            object: name.to_string(),
            reason,
        };
        match self.hsm.read_data_object(name).await {
            Ok(Some(stored)) if stored == bytes => Ok(()),
            Ok(Some(_)) => Err(not_durable(
                "the object holds other bytes than were written".to_owned(),
            )),
            Ok(None) => Err(not_durable(
                "the object is missing after the write".to_owned(),
            )),
            Err(error) => Err(not_durable(format!("the read-back failed: {error}"))),
        }
    }

    /// Streams the new events and makes a checkpoint when the batch crossed a multiple of
    /// `checkpoint_every`. Neither can fail the append: the events are durable already.
    async fn after_append(&self, events: &[AuditEvent], loaded: &Loaded) {
        for event in events {
            if let Err(error) = self.sink.event(event) {
                tracing::warn!(seq = event.seq, %error, "audit event not streamed (it is recorded on the HSM)");
            }
        }
        let every = self.config.checkpoint_every;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        if every > 0
            && first.seq.saturating_sub(1) / every != last.seq / every
            && let Err(error) = self.make_checkpoint(loaded).await
        {
            tracing::warn!(up_to_seq = last.seq, %error,
                "periodic audit checkpoint failed; the next one covers these events");
        }
    }

    /// Signs and stores a checkpoint at `loaded`'s head, then refreshes the head hint.
    async fn make_checkpoint(&self, loaded: &Loaded) -> Result<Checkpoint, AuditError> {
        self.ensure_key().await?;
        let label = &self.config.checkpoint_key_label;
        let mut checkpoint = Checkpoint::unsigned(loaded.chain.head(), self.clock.now(), label);
        checkpoint.signature = self
            .hsm
            .sign(label, &checkpoint.signing_bytes())
            .await
            .map_err(|error| AuditError::Checkpoint {
                reason: error.to_string(),
            })?;
        let name = storage::checkpoint_object(checkpoint.up_to_seq);
        let bytes = storage::encode_checkpoint(&checkpoint)
            .map_err(|reason| AuditError::Checkpoint { reason })?;
        let checkpoint = match self.hsm.create_data_object(&name, &bytes).await {
            Ok(()) => {
                self.confirm(&name, &bytes).await?;
                checkpoint
            }
            // A checkpoint at this position exists (another replica, or an earlier export):
            // it covers the same head, so it serves as well.
            Err(HsmError::AlreadyExists(_)) => {
                let raw = self.read_object(&name).await?;
                storage::decode_checkpoint(&raw)
                    .map_err(|reason| AuditError::damaged(&name, reason))?
            }
            Err(error) => match self.hsm.read_data_object(&name).await {
                Ok(Some(stored)) if stored == bytes => checkpoint,
                _ => {
                    return Err(AuditError::Checkpoint {
                        reason: error.to_string(),
                    });
                }
            },
        };
        if let Err(error) = self.sink.checkpoint(&checkpoint) {
            tracing::warn!(up_to_seq = checkpoint.up_to_seq, %error, "audit checkpoint not streamed");
        }
        self.update_hint(loaded, checkpoint.up_to_seq).await;
        Ok(checkpoint)
    }

    /// Moves the head hint forward (never back). Best effort: a stale hint only makes a starting
    /// replica read a few more batches.
    async fn update_hint(&self, loaded: &Loaded, last_checkpoint: u64) {
        let head = loaded.chain.head();
        let hint = AuditHead {
            next_seq: head.next_seq,
            prev_hash: head.prev_hash.clone(),
            last_object: loaded.last_object,
            last_checkpoint,
        };
        let result = self
            .store
            .modify(
                HEAD_KIND,
                HEAD_ID,
                Sealing::Plain,
                &self.config.actor,
                |current: Option<Versioned<AuditHead>>| match current {
                    Some(current) if current.value.next_seq >= hint.next_seq => {
                        Err(HintError::UpToDate)
                    }
                    _ => Ok(hint.clone()),
                },
            )
            .await;
        match result {
            Ok(_) | Err(HintError::UpToDate) => {}
            Err(HintError::Store(error)) => {
                tracing::warn!(%error, "the audit head record was not updated");
            }
        }
    }
}

/// Listed audit objects: `(first seq, name)` of batches and `(up_to_seq, name)` of checkpoints,
/// both sorted.
type AuditObjects = (Vec<(u64, DataObjectName)>, Vec<(u64, DataObjectName)>);
