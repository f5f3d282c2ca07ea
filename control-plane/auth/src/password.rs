//! bcrypt password hashing off the async executor.
//!
//! bcrypt is deliberately slow (cost 12 ≈ 0.25 s of CPU), so each hash runs on tokio's blocking
//! pool, and a semaphore bounds how many run at once: a burst of sign-ins queues here instead of
//! occupying every blocking thread and every core. A request that cannot get a slot within
//! `queue_timeout` fails with [`PasswordHashError::Busy`] rather than waiting without bound.
//!
//! bcrypt reads only the first 72 bytes of its input, while passwords may have 128 characters.
//! The password is therefore first hashed with SHA-256 and base64-encoded (44 bytes, no NUL),
//! and the stored format says so: `bcrypt-sha256$v1$<bcrypt hash>`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use km_core::SecretText;
use km_core::identity::{PasswordHash, PasswordHashError, PasswordHasher};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

const FORMAT_PREFIX: &str = "bcrypt-sha256$v1$";

/// Tuning of [`BcryptHasher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BcryptConfig {
    /// bcrypt cost (log2 rounds): 12 in production (DESIGN §4.4); tests use 4.
    pub cost: u32,
    /// Hashes computed at the same time. The default leaves one core for everything else, so a
    /// login burst cannot take the CPU from API requests (P6).
    pub max_concurrent: usize,
    /// Longest wait for a slot before answering "busy"; long enough for a burst of 50 logins to
    /// drain through one slot at cost 12.
    pub queue_timeout: Duration,
}

impl Default for BcryptConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            cost: 12,
            max_concurrent: cores.saturating_sub(1).max(1),
            queue_timeout: Duration::from_secs(30),
        }
    }
}

/// The bcrypt adapter of the [`PasswordHasher`] port.
#[derive(Debug, Clone)]
pub struct BcryptHasher {
    cost: u32,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl BcryptHasher {
    /// A hasher with `config` (a cost outside bcrypt's 4..=31 is clamped into it).
    pub fn new(config: BcryptConfig) -> Self {
        Self {
            cost: config.cost.clamp(4, 31),
            slots: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            queue_timeout: config.queue_timeout,
        }
    }

    /// Runs `work` on the blocking pool while holding a slot. The slot moves into the blocking
    /// task, so it stays taken until bcrypt finishes even if the caller gives up.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordHashError> {
        let slot = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordHashError::Busy)?
            .map_err(|_| PasswordHashError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|error| PasswordHashError::Failed(format!("the hashing task failed: {error}")))
    }
}

/// SHA-256 then base64: fixed 44 bytes, so all of a long password counts.
fn prehash(password: &SecretText) -> Zeroizing<String> {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        password.expose_secret().as_bytes(),
    );
    Zeroizing::new(STANDARD.encode(digest.as_ref()))
}

#[async_trait]
impl PasswordHasher for BcryptHasher {
    async fn hash(&self, password: &SecretText) -> Result<PasswordHash, PasswordHashError> {
        let input = prehash(password);
        let cost = self.cost;
        let hashed = self
            .run(move || bcrypt::hash(input.as_bytes(), cost))
            .await?
            .map_err(|error| PasswordHashError::Failed(error.to_string()))?;
        Ok(PasswordHash::new(format!("{FORMAT_PREFIX}{hashed}")))
    }

    async fn verify(
        &self,
        password: &SecretText,
        hash: &PasswordHash,
    ) -> Result<bool, PasswordHashError> {
        let Some(stored) = hash.as_str().strip_prefix(FORMAT_PREFIX) else {
            return Err(PasswordHashError::Malformed);
        };
        let stored = stored.to_owned();
        let input = prehash(password);
        self.run(move || bcrypt::verify(input.as_bytes(), &stored))
            .await?
            .map_err(|_| PasswordHashError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(max_concurrent: usize, queue_timeout: Duration) -> BcryptHasher {
        BcryptHasher::new(BcryptConfig {
            cost: 4,
            max_concurrent,
            queue_timeout,
        })
    }

    #[tokio::test]
    async fn round_trip_at_cost_4() {
        let hasher = hasher(2, Duration::from_secs(5));
        let password = SecretText::from("purple monkey dishwasher");
        let hash = hasher.hash(&password).await.unwrap();
        assert!(
            hash.as_str().starts_with("bcrypt-sha256$v1$$2b$04$"),
            "{}",
            hash.as_str()
        );
        assert!(!hash.as_str().contains("purple"));
        assert!(hasher.verify(&password, &hash).await.unwrap());
        assert!(
            !hasher
                .verify(&SecretText::from("purple monkey dishwashe"), &hash)
                .await
                .unwrap()
        );
        // Salted: the same password hashes differently each time.
        assert_ne!(hasher.hash(&password).await.unwrap(), hash);
        assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
    }

    #[tokio::test]
    async fn every_character_of_a_long_password_counts() {
        let hasher = hasher(2, Duration::from_secs(5));
        let base = "x".repeat(100);
        let hash = hasher
            .hash(&SecretText::from(format!("{base}A")))
            .await
            .unwrap();
        // Plain bcrypt would accept this: the first 72 bytes are equal.
        assert!(
            !hasher
                .verify(&SecretText::from(format!("{base}B")), &hash)
                .await
                .unwrap()
        );
        assert!(
            hasher
                .verify(&SecretText::from(format!("{base}A")), &hash)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn foreign_or_broken_hashes_are_malformed_not_false() {
        let hasher = hasher(1, Duration::from_secs(5));
        let password = SecretText::from("purple monkey dishwasher");
        let plain_bcrypt = PasswordHash::new(bcrypt::hash("purple monkey dishwasher", 4).unwrap());
        assert!(matches!(
            hasher.verify(&password, &plain_bcrypt).await,
            Err(PasswordHashError::Malformed)
        ));
        let broken = PasswordHash::new(format!("{FORMAT_PREFIX}$2b$04$tooshort"));
        assert!(matches!(
            hasher.verify(&password, &broken).await,
            Err(PasswordHashError::Malformed)
        ));
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_instead_of_piling_up() {
        let hasher = hasher(1, Duration::from_millis(50));
        // Occupy the only slot, as a long-running hash would.
        let held = hasher.slots.clone().acquire_owned().await.unwrap();
        let result = hasher
            .hash(&SecretText::from("purple monkey dishwasher"))
            .await;
        assert!(matches!(result, Err(PasswordHashError::Busy)), "{result:?}");
        drop(held);
        assert!(
            hasher
                .hash(&SecretText::from("purple monkey dishwasher"))
                .await
                .is_ok()
        );
    }

    #[test]
    fn default_cost_is_12() {
        assert_eq!(BcryptConfig::default().cost, 12);
        assert_eq!(
            BcryptHasher::new(BcryptConfig {
                cost: 1,
                ..BcryptConfig::default()
            })
            .cost,
            4
        );
    }
}
