//! km-testkit — helpers shared by keymanager's tests and benchmarks.
//!
//! Owns: a throwaway PKI for TLS/mTLS tests ([`TestPki`]), one-line starters for the real TSB
//! emulator on port 0 ([`EmulatorFixture`]) and the contract suite every `SecretVault` backend
//! must pass ([`vault_contract`]). Everything started here is a real component speaking
//! the real wire format; nothing is mocked.
//!
//! Must not be a dependency of any production crate.

pub mod azure_key_vault;
mod emulator;
pub mod gcp_secret_manager;
pub mod github_oauth;
pub mod oidc_provider;
mod pki;
pub mod vault_contract;

pub use emulator::{EmulatorFixture, install_crypto_provider};
pub use pki::{Identity, TestPki};
