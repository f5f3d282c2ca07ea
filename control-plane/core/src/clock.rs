//! Time as a port: services never read the system clock themselves, so tests can fix or advance it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (UTC). Second precision is all the control plane records.
pub type Timestamp = u64;

/// Where services get "now" from.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // A clock before 1970 is a broken host; treat it as the epoch rather than failing requests.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to. For tests (several state-store replicas sharing one
/// controllable "now") and for tools that replay history; never for serving.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            now: std::sync::atomic::AtomicU64::new(now),
        }
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: u64) {
        self.now
            .fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sets the clock to `now` (may move it backwards, to test skew).
    pub fn set(&self, now: Timestamp) {
        self.now.store(now, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }
}
