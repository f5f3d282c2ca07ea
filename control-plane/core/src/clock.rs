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
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}
