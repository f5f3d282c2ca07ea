//! The ports identity needs from adapters (km-auth implements them): password hashing, TOTP, and
//! randomness plus hashing primitives. km-core never names bcrypt, totp-rs or aws-lc-rs.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::SecretText;
use crate::Timestamp;

/// A stored password hash in the adapter's self-describing format (e.g. `bcrypt-sha256$v1$$2b$12$…`).
/// Not a secret by itself, but it makes offline guessing possible, so it is kept in a sealed record
/// and never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a hash produced by a [`PasswordHasher`].
    pub fn new(encoded: String) -> Self {
        Self(encoded)
    }

    /// The encoded hash, for the adapter that verifies it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// Why hashing or verifying a password failed (not "wrong password": that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordHashError {
    /// Too many hashes are queued; the caller should answer "try again shortly" instead of
    /// letting a login burst pile up on the blocking pool.
    #[error("too many password checks are in progress; try again shortly")]
    Busy,
    /// The stored hash is not in a format this hasher understands.
    #[error("the stored password hash is malformed")]
    Malformed,
    /// The hashing itself failed (worker panicked, library error).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Hashes and checks passwords. Slow on purpose (bcrypt); adapters must run it off the async
/// executor and bound how many run at once.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A fresh salted hash of `password`.
    async fn hash(&self, password: &SecretText) -> Result<PasswordHash, PasswordHashError>;
    /// Whether `password` matches `hash`.
    async fn verify(
        &self,
        password: &SecretText,
        hash: &PasswordHash,
    ) -> Result<bool, PasswordHashError>;
}

/// The raw HMAC key of a TOTP enrolment (RFC 6238). Wiped on drop; stored only inside sealed
/// records, serialised as base64.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// Wraps key bytes (adapters generate 20 random bytes, the RFC 4226 recommendation).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl Serialize for TotpSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&self.0));
        serializer.serialize_str(&encoded)
    }
}

impl<'de> Deserialize<'de> for TotpSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let encoded = Zeroizing::new(String::deserialize(deserializer)?);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map(Self)
            .map_err(|_| serde::de::Error::custom("a TOTP secret is not valid base64"))
    }
}

/// What a user needs to add an enrolment to an authenticator app. Every field embeds the seed,
/// so all are secrets: show them once, on the enrolment page, and never log them.
#[derive(Debug, Clone)]
pub struct TotpEnrolmentArtifacts {
    /// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…` (Key Uri Format).
    pub otpauth_url: SecretText,
    /// The seed in base32, for typing it in by hand.
    pub secret_base32: SecretText,
    /// The otpauth URL as a QR code: `data:image/png;base64,…`, rendered server-side so the
    /// console needs no JavaScript QR library and the seed never reaches a third party.
    pub qr_png_data_url: SecretText,
}

/// A TOTP adapter failure.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The stored secret or the issuer/account name is unusable for TOTP.
    #[error("invalid TOTP parameters: {0}")]
    Invalid(String),
    /// Randomness or QR rendering failed.
    #[error("TOTP operation failed: {0}")]
    Failed(String),
}

/// RFC 6238 TOTP: 30-second steps, 6 digits, HMAC-SHA1 (what every authenticator app supports),
/// ±1 step of tolerance. Synchronous so that a code can be checked inside the state store's
/// locked read-modify-write (which is what makes every code usable once).
pub trait TotpProvider: Send + Sync {
    /// A fresh random seed.
    fn generate_secret(&self) -> Result<TotpSecret, TotpError>;
    /// The enrolment URL, manual-entry seed and QR code for `account` at `issuer`.
    fn enrolment(
        &self,
        secret: &TotpSecret,
        issuer: &str,
        account: &str,
    ) -> Result<TotpEnrolmentArtifacts, TotpError>;
    /// Checks `code` at time `at` (±1 step). Returns the matched time step (`t / 30`) so the caller
    /// can refuse any step not newer than the last one accepted; `None` for a wrong code.
    fn verify(&self, secret: &TotpSecret, code: &str, at: Timestamp) -> Option<u64>;
}

/// Randomness or hashing failed in the crypto adapter.
#[derive(Debug, thiserror::Error)]
#[error("crypto operation failed: {0}")]
pub struct CryptoError(pub String);

/// The few primitives identity composes (random tokens, SHA-256 of tokens, HMAC for CSRF, constant
/// time comparison), from a vetted library in the adapter rather than written here.
pub trait IdentityCrypto: Send + Sync {
    /// Fills `out` from a cryptographically secure generator.
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError>;
    /// SHA-256 of `data`.
    fn sha256(&self, data: &[u8]) -> [u8; 32];
    /// HMAC-SHA-256 of `message` under `key`.
    fn hmac_sha256(&self, key: &[u8], message: &[u8]) -> [u8; 32];
    /// Equality whose timing does not depend on where the inputs differ.
    fn constant_time_eq(&self, a: &[u8], b: &[u8]) -> bool;
}
