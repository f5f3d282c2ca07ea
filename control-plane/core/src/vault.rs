//! The `SecretVault` port: where partition credentials (TSB API keys, bearer tokens, client
//! certificate keys) are kept.
//!
//! keymanager never stores a tenant's HSM credentials in its own records: a partition record holds
//! a [`CredentialRef`] (which vault, which secret name) and the secret itself lives in the vault the
//! operator chose for that partition — the management HSM (sealed data objects), Azure Key Vault or
//! Google Secret Manager. Adapters (`km-vault-hsm`, `km-vault-azure`, `km-vault-gcp`) implement
//! [`SecretVault`]; all of them pass the same contract suite (`km_testkit::vault_contract`).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The name of a secret in a vault: 1–100 characters of `[a-z0-9-]`, starting with a letter and
/// not ending with `-`. That is the common subset of what Azure Key Vault (alphanumerics and `-`,
/// up to 127) and Google Secret Manager (letters, digits, `-`, `_`, up to 255) accept, so a name
/// is valid in every backend and moving a partition between vaults never needs a rename.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretName(String);

impl SecretName {
    /// Longest accepted name.
    pub const MAX_LEN: usize = 100;

    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidSecretName> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > Self::MAX_LEN {
            Some("it is longer than 100 characters")
        } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            Some("it must start with a lower-case letter")
        } else if name.ends_with('-') {
            Some("it must not end with '-'")
        } else if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            Some("only a-z, 0-9 and - are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidSecretName { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The name as sent to the vault.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SecretName {
    type Error = InvalidSecretName;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<SecretName> for String {
    fn from(name: SecretName) -> Self {
        name.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that cannot be a [`SecretName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a valid secret name: {reason}")]
pub struct InvalidSecretName {
    /// The rejected name.
    pub name: String,
    /// Which rule it broke.
    pub reason: &'static str,
}

/// A secret's bytes: wiped from memory on drop, never printed (`Debug` shows only the length).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Largest value every backend stores (Azure Key Vault's limit is 25 KiB; Google's 64 KiB).
    pub const MAX_LEN: usize = 16 * 1024;

    /// Wraps `bytes`; the buffer is wiped when the value drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes. Call only where the secret must be used or sent to the vault.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<{} bytes redacted>)", self.0.len())
    }
}

/// The kinds of vault keymanager can keep credentials in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VaultKind {
    /// Sealed data objects on the management partition.
    Hsm,
    /// Azure Key Vault secrets.
    Azure,
    /// Google Cloud Secret Manager secrets.
    Gcp,
}

impl VaultKind {
    /// The backend's name in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            VaultKind::Hsm => "hsm",
            VaultKind::Azure => "azure",
            VaultKind::Gcp => "gcp",
        }
    }
}

impl fmt::Display for VaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a secret is kept: the configured vault's id (`hsm`, or an operator-chosen id such as
/// `azure-prod`) and the secret's name in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CredentialRef {
    /// Id of a configured vault.
    pub vault: String,
    /// The secret's name in that vault.
    pub name: SecretName,
}

/// What can go wrong with a vault. Messages name the backend and say what to check; they never
/// contain a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The vault refused keymanager's own credentials or permissions.
    #[error(
        "the {backend} vault refused keymanager's credentials: {detail}; check the vault's credentials and that keymanager may read and write secrets there"
    )]
    Denied {
        /// Which backend.
        backend: VaultKind,
        /// What the vault said.
        detail: String,
    },
    /// The vault could not be reached or did not answer in time.
    #[error("the {backend} vault is unreachable: {detail}; check its address and the network")]
    Unavailable {
        /// Which backend.
        backend: VaultKind,
        /// What failed.
        detail: String,
    },
    /// The vault rejected the request (name, size, state), or answered something unexpected.
    #[error("the {backend} vault rejected the request: {detail}")]
    Rejected {
        /// Which backend.
        backend: VaultKind,
        /// What the vault said.
        detail: String,
    },
    /// The stored secret failed an integrity check (checksum, authenticated decryption).
    #[error("the secret read from the {backend} vault failed its integrity check: {detail}")]
    Integrity {
        /// Which backend.
        backend: VaultKind,
        /// What did not match.
        detail: String,
    },
}

/// One vault holding secrets by name. Implementations must be safe to share between tasks and
/// must never log, print or put a secret value into an error.
#[async_trait]
pub trait SecretVault: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn kind(&self) -> VaultKind;

    /// Stores `value` under `name`, replacing the current value (backends with versions add a
    /// new version). Once this returns `Ok`, [`get`](Self::get) returns `value` on every replica.
    async fn put(&self, name: &SecretName, value: &SecretValue) -> Result<(), VaultError>;

    /// The current value of `name`, or `None` if there is no such secret.
    async fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, VaultError>;

    /// Removes `name` with every version, so that the name can be used again at once (backends
    /// with soft delete also purge). Removing an absent secret is `Ok`.
    async fn delete(&self, name: &SecretName) -> Result<(), VaultError>;

    /// Checks that the vault answers and keymanager's credentials work, without changing anything.
    async fn check(&self) -> Result<(), VaultError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_follow_the_common_subset_of_all_backends() {
        for good in ["a", "partition-acme", "p1-api-keys", &"a".repeat(100)] {
            assert!(SecretName::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "-abc",
            "abc-",
            "Abc",
            "a_b",
            "a.b",
            "a/b",
            &"a".repeat(101),
        ] {
            assert!(SecretName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_values_never_show_in_debug() {
        let value = SecretValue::new(b"hunter2".to_vec());
        assert_eq!(format!("{value:?}"), "SecretValue(<7 bytes redacted>)");
    }

    #[test]
    fn secret_names_round_trip_through_serde_and_are_validated_on_the_way_in() {
        let name: SecretName = serde_json::from_str("\"tsb-acme\"").unwrap();
        assert_eq!(name.as_str(), "tsb-acme");
        assert!(serde_json::from_str::<SecretName>("\"Bad Name\"").is_err());
    }
}
