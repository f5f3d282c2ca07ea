//! km-testkit — helpers shared by keymanager's tests and benchmarks.
//!
//! Owns: a throwaway PKI for TLS/mTLS tests ([`TestPki`]) and one-line starters for the real TSB
//! emulator on port 0 ([`EmulatorFixture`]). Everything started here is a real component speaking
//! the real wire format; nothing is mocked.
//!
//! Must not be a dependency of any production crate.

mod emulator;
mod pki;

pub use emulator::{EmulatorFixture, install_crypto_provider};
pub use pki::{Identity, TestPki};
