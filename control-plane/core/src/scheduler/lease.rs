//! The leader lease: one state-store record `kms.scheduler.leader` that names the replica allowed
//! to run scheduled work, until when, and in which term.
//!
//! # Algorithm (one call of [`LeaderLease::try_acquire_or_renew`])
//!
//! The record is always read **fresh** from the HSM (never from the store's cache, which may be
//! [`StateStoreConfig::cache_ttl_secs`](crate::StateStoreConfig::cache_ttl_secs) behind another
//! replica's write). Then:
//! - **absent** → create it (create-if-absent: of two replicas creating at once, one gets
//!   `AlreadyExists` and follows), term 1;
//! - **ours** (it carries the random token of *this* instance's acquisition) → renew: a
//!   revision-checked update moving `renewed_at`/`expires_at` on. A `Conflict` means somebody
//!   took it over after our lease ran out: we lost it;
//! - **free** (`now >= expires_at`, or released) → take over: a revision-checked update with a new
//!   token and term + 1. Of two replicas racing for the same expired lease, both update from the
//!   same revision under the record's lock, so the second gets `Conflict` and follows;
//! - **someone else's and live** → follow until `expires_at`.
//!
//! Only the token identifies the holder: a restarted process (same replica name, new instance)
//! waits for its predecessor's lease to run out like anybody else — unless the predecessor
//! released it on a graceful shutdown. The name is for people.
//!
//! A holder acts only while [`LeaderLease::still_leader`]: at least `guard_secs` left on the lease
//! *as it last wrote it*, by its own clock. A renewal that fails for a transient reason therefore
//! does not stop a leader at once, and a leader that cannot renew stops `guard_secs` before anybody
//! else may take over. Releasing ([`LeaderLease::release`]) marks the record released (rather than
//! deleting it) so that the next replica takes over at once *and* terms keep counting up.
//!
//! # Audit
//!
//! Leadership changes are audited as `system:scheduler`, action `scheduler_leadership`, target
//! `kms.scheduler.leader`, details `replica`, `term` and `change` (`acquire`, `take_over`,
//! `release`, `lost`). Acquiring and taking over are write-ahead (request event before the write,
//! result after it): a replica that cannot record does not lead. Releasing never waits for the
//! audit log (giving up power is always safe; the next leader's `take_over` names the previous
//! holder and term). Losing the lease is recorded when discovered.

use std::sync::{Mutex, PoisonError};

use km_domain::{EventDraft, Outcome};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditError, AuditLog};
use crate::{Sealing, StateStore, StoreError, Timestamp, Versioned};

/// State-store kind of the lease record.
pub const LEASE_KIND: &str = "scheduler";
/// State-store id of the lease record (data object `kms.scheduler.leader`).
pub const LEASE_ID: &str = "leader";
/// The audit actor of everything the scheduler does.
pub const SCHEDULER_ACTOR: &str = "system:scheduler";
/// Audit action of leadership changes.
pub const LEADERSHIP_ACTION: &str = "scheduler_leadership";
/// Audit target of leadership changes: the lease's data object.
const LEASE_TARGET: &str = "kms.scheduler.leader";

/// Timing of the lease. Every replica should use the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a lease lasts after each renewal: a crashed leader delays scheduled work by at
    /// most this (plus one scheduler interval).
    pub ttl_secs: u64,
    /// A leader renews before a job when its last renewal is at least this old (and at every
    /// round), so that a long round does not run out of lease.
    pub renew_every_secs: u64,
    /// A leader starts no job with less than this left on its lease: the longest a job may run
    /// (or the process stall) after the check, plus the clock skew between replicas, without two
    /// replicas acting at once.
    pub guard_secs: u64,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 30,
            renew_every_secs: 10,
            guard_secs: 10,
        }
    }
}

impl LeaseConfig {
    /// Makes the values consistent: TTL at least 2 s, guard at most half the TTL, renewal due
    /// within the part of the lease outside the guard.
    pub fn normalised(self) -> Self {
        let ttl_secs = self.ttl_secs.max(2);
        let guard_secs = self.guard_secs.min(ttl_secs / 2);
        let renew_every_secs = self.renew_every_secs.clamp(1, ttl_secs - guard_secs);
        Self {
            ttl_secs,
            renew_every_secs,
            guard_secs,
        }
    }
}

/// The lease record `kms.scheduler.leader`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The holder's replica name (for people: the token decides).
    pub holder: String,
    /// Random per acquisition: tells this acquisition from any other, even by the same replica.
    pub token: String,
    /// Counts acquisitions since the record was created: 1, 2, ... (never reused while the
    /// record exists).
    pub term: u64,
    /// When this term began.
    pub acquired_at: Timestamp,
    /// The holder's last renewal.
    pub renewed_at: Timestamp,
    /// From this instant on (by the reader's clock) anybody may take over.
    pub expires_at: Timestamp,
    /// Set by a graceful release: anybody may take over at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Timestamp>,
}

impl LeaseRecord {
    /// Whether anybody may take the lease over at `now`.
    pub fn is_free(&self, now: Timestamp) -> bool {
        self.released_at.is_some() || now >= self.expires_at
    }
}

/// What this replica is after a round of [`LeaderLease::try_acquire_or_renew`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// This instance holds the lease.
    Leader {
        /// The lease's term (grows by one per acquisition).
        term: u64,
    },
    /// Another instance holds it (or just won it).
    Follower {
        /// Its replica name.
        holder: String,
        /// When its lease runs out unless renewed.
        until: Timestamp,
    },
}

impl Leadership {
    /// Whether this is [`Leadership::Leader`].
    pub fn is_leader(&self) -> bool {
        matches!(self, Self::Leader { .. })
    }
}

/// Why the lease could not be read or written (this replica then acts only as long as
/// [`LeaderLease::still_leader`] allows).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The state store failed (HSM unavailable, a damaged lease record, ...).
    #[error("the scheduler lease could not be read or written: {0}")]
    Store(#[from] StoreError),
    /// The leadership change could not be audited, so it was not made.
    #[error("the scheduler leadership change could not be audited: {0}")]
    Audit(#[from] AuditError),
}

/// What this instance knows about the lease it holds.
#[derive(Debug, Clone)]
struct Held {
    token: String,
    term: u64,
    renewed_at: Timestamp,
    expires_at: Timestamp,
}

/// One replica's view of, and claim on, the scheduler lease.
#[derive(Debug)]
pub struct LeaderLease {
    store: StateStore,
    audit: AuditLog,
    replica: String,
    config: LeaseConfig,
    held: Mutex<Option<Held>>,
}

impl LeaderLease {
    /// The lease as seen by `replica`, kept in `store`, leadership changes recorded in `audit`.
    pub fn new(store: StateStore, audit: AuditLog, replica: String, config: LeaseConfig) -> Self {
        Self {
            store,
            audit,
            replica,
            config: config.normalised(),
            held: Mutex::new(None),
        }
    }

    /// This replica's name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The timing in use (normalised).
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// The lease record as the HSM holds it now (fresh read), for status pages and diagnostics.
    pub async fn current(&self) -> Result<Option<Versioned<LeaseRecord>>, StoreError> {
        self.store.get_fresh(LEASE_KIND, LEASE_ID).await
    }

    /// Whether this instance may start an action at `now`: it holds the lease with more than the
    /// guard left, as of its last successful write (no HSM round trip).
    pub fn still_leader(&self, now: Timestamp) -> bool {
        self.held()
            .is_some_and(|held| now.saturating_add(self.config.guard_secs) < held.expires_at)
    }

    /// Whether this instance holds the lease and its last renewal is `renew_every_secs` old.
    pub fn renewal_due(&self, now: Timestamp) -> bool {
        self.held()
            .is_some_and(|held| now >= held.renewed_at.saturating_add(self.config.renew_every_secs))
    }

    /// The term this instance holds, if any.
    pub fn term(&self) -> Option<u64> {
        self.held().map(|held| held.term)
    }

    /// One round of the algorithm in the module docs. On an error nothing changed locally: the
    /// caller still consults [`LeaderLease::still_leader`], which ends at the old lease's guard.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<Leadership, LeaseError> {
        let current = self.current().await?;
        let held = self.held();
        match current {
            Some(record)
                if held
                    .as_ref()
                    .is_some_and(|held| held.token == record.value.token)
                    && record.value.released_at.is_none() =>
            {
                self.renew(now, record).await
            }
            Some(record) if record.value.is_free(now) => {
                self.lost(&record.value, "the lease was free").await;
                self.acquire(now, Some(record)).await
            }
            Some(record) => {
                self.lost(&record.value, "another replica holds the lease")
                    .await;
                Ok(Leadership::Follower {
                    holder: record.value.holder,
                    until: record.value.expires_at,
                })
            }
            None => {
                if let Some(held) = held {
                    self.forget();
                    tracing::warn!(replica = %self.replica, term = held.term,
                        "the scheduler lease record disappeared; acquiring it again");
                }
                self.acquire(now, None).await
            }
        }
    }

    /// Gives the lease up (graceful shutdown) so that another replica takes over at once. Returns
    /// whether this instance held it. This instance stops acting first, whatever happens next.
    pub async fn release(&self, now: Timestamp) -> Result<bool, LeaseError> {
        let Some(held) = self.forget() else {
            return Ok(false);
        };
        let Some(current) = self.current().await? else {
            return Ok(false);
        };
        if current.value.token != held.token || current.value.released_at.is_some() {
            return Ok(false);
        }
        let audited = match self
            .audit
            .begin(self.draft("release", held.term, None))
            .await
        {
            Ok(audited) => Some(audited),
            Err(error) => {
                tracing::warn!(%error, replica = %self.replica, term = held.term,
                    "releasing the scheduler lease although the audit log cannot record it");
                None
            }
        };
        let released = LeaseRecord {
            released_at: Some(now),
            ..current.value
        };
        let outcome = self
            .store
            .update(
                LEASE_KIND,
                LEASE_ID,
                current.revision,
                released,
                SCHEDULER_ACTOR,
            )
            .await;
        let (result, code) = match outcome {
            Ok(_) => (Ok(true), None),
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {
                (Ok(false), Some("lease_taken"))
            }
            Err(error) => (Err(error.into()), Some("lease_unavailable")),
        };
        if let Some(audited) = audited {
            finish(audited, code).await;
        }
        if matches!(result, Ok(true)) {
            tracing::info!(replica = %self.replica, term = held.term, "scheduler lease released");
        }
        result
    }

    async fn renew(
        &self,
        now: Timestamp,
        record: Versioned<LeaseRecord>,
    ) -> Result<Leadership, LeaseError> {
        let term = record.value.term;
        let renewed = LeaseRecord {
            renewed_at: now,
            expires_at: now.saturating_add(self.config.ttl_secs),
            ..record.value
        };
        let expires_at = renewed.expires_at;
        match self
            .store
            .update(
                LEASE_KIND,
                LEASE_ID,
                record.revision,
                renewed,
                SCHEDULER_ACTOR,
            )
            .await
        {
            Ok(_) => {
                self.update_held(|held| {
                    held.renewed_at = now;
                    held.expires_at = expires_at;
                });
                Ok(Leadership::Leader { term })
            }
            // Somebody took it over between our read and our write.
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {
                let current = self.current().await?;
                match current {
                    Some(current) => {
                        self.lost(&current.value, "the lease changed while renewing")
                            .await;
                        Ok(Leadership::Follower {
                            holder: current.value.holder,
                            until: current.value.expires_at,
                        })
                    }
                    None => {
                        self.forget();
                        Ok(Leadership::Follower {
                            holder: String::new(),
                            until: now,
                        })
                    }
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Creates the record (`previous` = `None`) or takes it over from `previous`, write-ahead
    /// audited.
    async fn acquire(
        &self,
        now: Timestamp,
        previous: Option<Versioned<LeaseRecord>>,
    ) -> Result<Leadership, LeaseError> {
        let term = previous
            .as_ref()
            .map_or(1, |previous| previous.value.term.saturating_add(1));
        let record = LeaseRecord {
            holder: self.replica.clone(),
            token: uuid::Uuid::new_v4().simple().to_string(),
            term,
            acquired_at: now,
            renewed_at: now,
            expires_at: now.saturating_add(self.config.ttl_secs),
            released_at: None,
        };
        let held = Held {
            token: record.token.clone(),
            term,
            renewed_at: now,
            expires_at: record.expires_at,
        };
        let change = if previous.is_some() {
            "take_over"
        } else {
            "acquire"
        };
        let audited = self
            .audit
            .begin(self.draft(change, term, previous.as_ref().map(|p| &p.value)))
            .await?;
        let written = match &previous {
            None => self
                .store
                .create(
                    LEASE_KIND,
                    LEASE_ID,
                    record,
                    SCHEDULER_ACTOR,
                    Sealing::Plain,
                )
                .await
                .map(drop),
            Some(previous) => self
                .store
                .update(
                    LEASE_KIND,
                    LEASE_ID,
                    previous.revision,
                    record,
                    SCHEDULER_ACTOR,
                )
                .await
                .map(drop),
        };
        match written {
            Ok(()) => {
                *self.lock_held() = Some(held);
                finish(audited, None).await;
                tracing::info!(replica = %self.replica, term, change, "this replica leads the scheduler");
                Ok(Leadership::Leader { term })
            }
            // Another replica was faster.
            Err(
                StoreError::AlreadyExists { .. }
                | StoreError::Conflict { .. }
                | StoreError::NotFound { .. },
            ) => {
                finish(audited, Some("lease_taken")).await;
                Ok(match self.current().await? {
                    Some(current) => Leadership::Follower {
                        holder: current.value.holder,
                        until: current.value.expires_at,
                    },
                    None => Leadership::Follower {
                        holder: String::new(),
                        until: now,
                    },
                })
            }
            Err(error) => {
                finish(audited, Some("lease_unavailable")).await;
                Err(error.into())
            }
        }
    }

    /// If this instance thought it held the lease, it does no longer: stop acting and record it.
    async fn lost(&self, now_stored: &LeaseRecord, why: &str) {
        let Some(held) = self.forget() else {
            return;
        };
        tracing::warn!(replica = %self.replica, term = held.term, holder = %now_stored.holder,
            new_term = now_stored.term, why, "this replica lost the scheduler lease");
        let draft = EventDraft::new(
            SCHEDULER_ACTOR,
            LEADERSHIP_ACTION,
            Outcome::Failed,
            request_id(),
        )
        .with_target(LEASE_TARGET)
        .with_detail("change", "lost")
        .with_detail("replica", self.replica.clone())
        .with_detail("term", held.term.to_string())
        .with_detail("holder", now_stored.holder.clone())
        .with_detail("holder_term", now_stored.term.to_string());
        if let Err(error) = self.audit.record(draft).await {
            tracing::warn!(%error, "the loss of the scheduler lease could not be audited");
        }
    }

    fn draft(&self, change: &str, term: u64, previous: Option<&LeaseRecord>) -> EventDraft {
        let draft = EventDraft::new(
            SCHEDULER_ACTOR,
            LEADERSHIP_ACTION,
            Outcome::Success,
            request_id(),
        )
        .with_target(LEASE_TARGET)
        .with_detail("change", change)
        .with_detail("replica", self.replica.clone())
        .with_detail("term", term.to_string());
        match previous {
            Some(previous) => draft
                .with_detail("previous_holder", previous.holder.clone())
                .with_detail("previous_term", previous.term.to_string()),
            None => draft,
        }
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        // A plain value that a panicking holder cannot leave half-changed.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn held(&self) -> Option<Held> {
        self.lock_held().clone()
    }

    fn forget(&self) -> Option<Held> {
        self.lock_held().take()
    }

    fn update_held(&self, change: impl FnOnce(&mut Held)) {
        if let Some(held) = self.lock_held().as_mut() {
            change(held);
        }
    }
}

/// A correlation id for the scheduler's own events.
pub(crate) fn request_id() -> String {
    format!("scheduler-{}", uuid::Uuid::new_v4().simple())
}

/// Records the result of a write-ahead leadership event; a result that cannot be written is kept
/// in the audit log's outbox (see `audit`), so it is only logged here.
async fn finish(audited: crate::audit::AuditedAction, failure: Option<&str>) {
    let recorded = match failure {
        None => audited.succeeded().await,
        Some(code) => audited.failed(code).await,
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, "the result of a scheduler leadership change is not yet audited");
    }
}
