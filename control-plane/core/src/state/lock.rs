//! Record locks across replicas: one data object `kms.lock.<kind>.<id>` per locked record,
//! created with the HSM's atomic create-if-absent and carrying an expiry.
//!
//! Protocol:
//! 1. **Acquire**: create the lock object `{owner, token, acquired_at, expires_at}` (a fresh random
//!    token per acquisition). If it exists and has not expired, back off (exponential, jittered)
//!    and retry a bounded number of times, then answer [`StoreError::LockBusy`].
//! 2. **Break**: if it exists but has expired (or is unreadable), read it again and delete it only
//!    if it is byte-for-byte the object judged stale, then retry the create. The create stays the
//!    only way to *take* a lock, so two breakers cannot both win it by creating.
//! 3. **Verify before every write**: the holder re-reads its lock and requires its own token, and
//!    requires at least the guard interval left on its lease (by its own clock); otherwise it
//!    writes nothing and answers [`StoreError::LockLost`].
//! 4. **Release**: delete the lock (only after a re-read when the lease has run out locally).
//!
//! Residual races (the TSB offers create-if-absent, but no compare-and-set or compare-and-delete,
//! so a lease without fencing tokens is the strongest lock it allows). Two writers can overlap
//! only after a lease has *expired*, i.e. its holder crashed or stalled for longer than the lock
//! TTL minus the guard, and only in one of two ways:
//! - **Stalled holder**: a holder passes step 3, then its write reaches the HSM more than the
//!   guard interval later (after its lease ran out and someone broke it). The default guard (30 s)
//!   equals km-tsb's default request timeout, so a write that arrives at all arrives in time
//!   unless the process itself stalls (or the clocks of two replicas drift apart) for that long.
//! - **Two breakers**: between breaker B's re-read and its delete (step 2, one round trip),
//!   breaker A deletes the same stale lock, creates its own and passes step 3; B then deletes A's
//!   fresh lock and takes one of its own. If A's write lands after B has read the record, one of
//!   the two updates is lost. This needs a stale lock, two replicas breaking it within one round
//!   trip of each other, and A's verify-to-write gap to span B's delete, create and read.
//!
//! In both cases each write is still read back, so a writer whose bytes were overwritten before
//! its read-back gets [`StoreError::NotDurable`] rather than a false acknowledgement. The lock TTL
//! must exceed the longest operation plus the guard plus the clock skew between replicas.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::record::RecordKey;
use super::{Inner, StoreError};
use crate::{DataObjectName, HsmError, Timestamp};

/// Content of a lock object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LockRecord {
    /// The replica that holds it (diagnostics: shown in [`StoreError::LockBusy`]).
    pub(crate) owner: String,
    /// Random per acquisition: distinguishes two acquisitions by the same replica.
    pub(crate) token: String,
    pub(crate) acquired_at: Timestamp,
    /// After this instant (by the reader's clock) anybody may break the lock.
    pub(crate) expires_at: Timestamp,
}

/// A lock this store holds.
#[derive(Debug)]
pub(crate) struct Lease {
    name: DataObjectName,
    bytes: Vec<u8>,
    expires_at: Timestamp,
}

/// What a failed create found.
enum Holder {
    Gone,
    Live(String),
    Stale(Vec<u8>),
}

impl Inner {
    pub(crate) async fn acquire(&self, key: &RecordKey) -> Result<Lease, StoreError> {
        let name = key.lock_name();
        let retry = &self.config.lock_retry;
        let mut holder = String::from("another replica");
        let mut waits = 0u32;
        // Breaking a stale lock or finding it just released does not count as a wait, but is
        // bounded too, so that a misbehaving HSM cannot keep us looping.
        let mut rounds = 0u32;
        while waits < retry.attempts.max(1) && rounds < retry.attempts.max(1).saturating_mul(4) {
            rounds += 1;
            let now = self.clock.now();
            let record = LockRecord {
                owner: self.config.replica.clone(),
                token: uuid::Uuid::new_v4().to_string(),
                acquired_at: now,
                expires_at: now.saturating_add(self.config.lock_ttl_secs),
            };
            let bytes = serde_json::to_vec(&record).map_err(|error| StoreError::Encode {
                name: name.to_string(),
                reason: error.to_string(),
            })?;
            match self.hsm.create_data_object(&name, &bytes).await {
                Ok(()) => {
                    return Ok(Lease {
                        name,
                        bytes,
                        expires_at: record.expires_at,
                    });
                }
                Err(HsmError::AlreadyExists(_)) => {}
                Err(error) => {
                    // The create may have landed even though the answer was lost: if the lock now
                    // holds our token, it is ours.
                    if let Ok(Some(stored)) = self.hsm.read_data_object(&name).await
                        && stored == bytes
                    {
                        return Ok(Lease {
                            name,
                            bytes,
                            expires_at: record.expires_at,
                        });
                    }
                    return Err(error.into());
                }
            }
            match self.inspect(&name).await? {
                Holder::Gone => continue,
                Holder::Stale(seen) => {
                    self.break_stale(&name, &seen).await?;
                    continue;
                }
                Holder::Live(owner) => holder = owner,
            }
            waits += 1;
            if waits < retry.attempts {
                tokio::time::sleep(retry.delay(waits)).await;
            }
        }
        Err(StoreError::LockBusy {
            kind: key.kind().to_owned(),
            id: key.id().to_owned(),
            holder,
        })
    }

    async fn inspect(&self, name: &DataObjectName) -> Result<Holder, StoreError> {
        let Some(seen) = self.hsm.read_data_object(name).await? else {
            return Ok(Holder::Gone);
        };
        match serde_json::from_slice::<LockRecord>(&seen) {
            Ok(lock) if self.clock.now() < lock.expires_at => Ok(Holder::Live(lock.owner)),
            Ok(lock) => {
                tracing::warn!(lock = %name, owner = %lock.owner, expired_at = lock.expires_at,
                    "breaking an expired state lock");
                Ok(Holder::Stale(seen))
            }
            // Only the store writes lock objects; one it cannot read is debris (or tampering), and
            // must not block the record for ever.
            Err(error) => {
                tracing::warn!(lock = %name, %error, "breaking an unreadable state lock");
                Ok(Holder::Stale(seen))
            }
        }
    }

    /// Deletes the lock only if it is still exactly the stale object we saw.
    async fn break_stale(&self, name: &DataObjectName, seen: &[u8]) -> Result<(), StoreError> {
        match self.hsm.read_data_object(name).await? {
            Some(again) if again == seen => match self.hsm.delete_data_object(name).await {
                Ok(()) | Err(HsmError::NotFound(_)) => Ok(()),
                Err(error) => Err(error.into()),
            },
            _ => Ok(()),
        }
    }

    /// Step 3: the lease is still ours, with enough time left for one write.
    pub(crate) async fn verify(&self, key: &RecordKey, lease: &Lease) -> Result<(), StoreError> {
        let guard = self
            .config
            .lock_guard_secs
            .min(self.config.lock_ttl_secs / 2);
        let lost = || StoreError::LockLost {
            kind: key.kind().to_owned(),
            id: key.id().to_owned(),
        };
        if self.clock.now().saturating_add(guard) >= lease.expires_at {
            return Err(lost());
        }
        match self.hsm.read_data_object(&lease.name).await? {
            Some(stored) if stored == lease.bytes => Ok(()),
            _ => Err(lost()),
        }
    }

    /// Step 4. Failures are logged, not returned: the operation's outcome is already decided, and
    /// a lock left behind expires after the TTL.
    pub(crate) async fn release(&self, lease: Lease) {
        if self.clock.now() >= lease.expires_at {
            match self.hsm.read_data_object(&lease.name).await {
                Ok(Some(stored)) if stored == lease.bytes => {}
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(lock = %lease.name, %error, "could not check an expired state lock");
                    return;
                }
            }
        }
        match self.hsm.delete_data_object(&lease.name).await {
            Ok(()) | Err(HsmError::NotFound(_)) => {}
            Err(error) => {
                tracing::warn!(lock = %lease.name, %error,
                    "could not release a state lock; it expires by itself");
            }
        }
    }
}

/// How long and how often to wait for a busy lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRetry {
    /// Waits for a live lock before giving up with [`StoreError::LockBusy`].
    pub attempts: u32,
    /// First backoff; doubles per wait up to `max_delay`.
    pub base_delay: Duration,
    /// Longest single backoff.
    pub max_delay: Duration,
}

impl Default for LockRetry {
    /// About 15 s of waiting in total: longer than any sane queue of writers on one record,
    /// shorter than an HTTP client's patience.
    fn default() -> Self {
        Self {
            attempts: 100,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(250),
        }
    }
}

impl LockRetry {
    /// Backoff before wait number `wait` (1-based): exponential, capped, with "equal jitter" so
    /// that replicas that collided once do not collide again in lock-step.
    pub(crate) fn delay(&self, wait: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << wait.saturating_sub(1).min(16));
        let capped = exponential.min(self.max_delay);
        let half = capped / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
        // Jitter only needs to differ between replicas, not to be unpredictable.
        let random = (uuid::Uuid::new_v4().as_u128() as u64) % spread;
        half + Duration::from_micros(random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let retry = LockRetry {
            attempts: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(80),
        };
        let first = retry.delay(1);
        assert!(
            first >= Duration::from_millis(5) && first <= Duration::from_millis(10),
            "{first:?}"
        );
        for wait in 1..40 {
            assert!(retry.delay(wait) <= Duration::from_millis(80));
        }
        let late = retry.delay(30);
        assert!(late >= Duration::from_millis(40), "{late:?}");
    }
}
