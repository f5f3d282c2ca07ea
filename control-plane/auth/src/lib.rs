//! km-auth — the identity adapters: implements km-core's identity ports with vetted libraries.
//!
//! Owns: [`BcryptHasher`] (bcrypt on the blocking pool behind a bounded semaphore),
//! [`TotpRsProvider`] (RFC 6238 with totp-rs: seeds, otpauth URLs, server-rendered QR codes,
//! verification returning the matched time step) and [`AwsLcCrypto`] (randomness, SHA-256,
//! HMAC and constant-time comparison from aws-lc-rs). [`identity_ports`] wires all three.
//! [`HttpSso`] is the single-sign-on relying party (km-core's `SsoProtocol`): OpenID Connect with
//! openidconnect 4 (PKCE, nonce, JWKS rotation, groups/roles claims, Entra ID group overage) and
//! GitHub OAuth2, over a reqwest 0.13 client ([`HttpSsoConfig`]; [`callback_error`] classifies
//! `error=` callbacks).
//!
//! Must not depend on: HTTP servers, the TSB SDK, other adapters. The rules (lockout, replay
//! protection, sessions, pending-login storage, `state` checks, group-to-role mapping) live in
//! km-core; this crate only computes and speaks the identity protocols.

mod crypto;
mod password;
mod sso;
mod totp;

use std::sync::Arc;

pub use crypto::AwsLcCrypto;
pub use password::{BcryptConfig, BcryptHasher};
pub use sso::{HttpSso, HttpSsoConfig, callback_error};
pub use totp::TotpRsProvider;

use km_core::IdentityPorts;

/// The production adapters for `km_core::Identity`, with bcrypt tuned by `bcrypt`.
pub fn identity_ports(bcrypt: BcryptConfig) -> IdentityPorts {
    let crypto = Arc::new(AwsLcCrypto);
    IdentityPorts {
        hasher: Arc::new(BcryptHasher::new(bcrypt)),
        totp: Arc::new(TotpRsProvider::new()),
        crypto,
    }
}
