//! km-vault-azure — keeps partition credentials as Azure Key Vault secrets.
//!
//! Owns: the [`SecretVault`](km_core::SecretVault) adapter on Key Vault secrets
//! ([`AzureKeyVault`]) and its configuration ([`AzureVaultConfig`]), built on the official SDK
//! crates `azure_security_keyvault_secrets`, `azure_identity` (client secret or managed identity)
//! and `azure_core`, over reqwest with rustls (no OpenSSL).
//!
//! Must not depend on: other vault adapters (km-vault-hsm, km-vault-gcp), HTTP servers (poem),
//! the TSB SDK, or anything above km-core. Only the `keymanager` binary wires it in.
//!
//! # Storage format
//!
//! A [`SecretValue`](km_core::SecretValue) is binary and a Key Vault secret is a string, so each
//! value is stored base64-encoded under content type [`CONTENT_TYPE`]. Reading a secret with any
//! other content type fails with `VaultError::Rejected` (keymanager did not write it).
//!
//! # Behaviour on the wire
//!
//! * Errors: Entra ID or the vault refusing the identity (401/403, a bad client secret, a missing
//!   role) → `Denied`; connect failures, timeouts, 408/429/5xx → `Unavailable`; other 4xx →
//!   `Rejected`. Messages carry the service's error code and message and what to check, never a
//!   secret value (they are built only from the `Display` text of the SDK's error chain).
//! * Retries are short and bounded (at most two, within about a second, `Retry-After` ignored),
//!   the connect timeout is 3 s and every operation has a deadline (`timeout_seconds`, default
//!   30 s), so an unreachable vault fails in seconds instead of hanging.
//! * Soft delete: `delete` deletes then purges, waiting out the service's "being deleted" state;
//!   `put` waits while a just-purged name is still being freed.
//!
//! # Tests
//!
//! The crate's tests drive the real SDK (challenge authentication, `ClientSecretCredential`
//! against an Entra-style token endpoint, `ManagedIdentityCredential` through the App Service
//! `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` protocol in a child process) against
//! `km_testkit::azure_key_vault`, a protocol-level fake of Key Vault and Entra ID over HTTPS. The
//! IMDS (virtual machine) flavour of managed identity cannot be exercised here: its endpoint is
//! the fixed address 169.254.169.254.

mod config;
mod error;
mod retry;
mod vault;

pub use config::{AzureAuth, AzureVaultConfig};
pub use vault::{AzureKeyVault, CONTENT_TYPE, DEFAULT_AUTHORITY_HOST, DEFAULT_TIMEOUT, connect};
