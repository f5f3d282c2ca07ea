//! km-tsb-emulator: a faithful Securosys TSB REST API emulator with software crypto, for
//! `keymanager dev`, demos and every test. Same paths, JSON, status and error codes as the TSB
//! reference (`tsb-api.md`) and the project's wire decisions, so that what passes here passes
//! against a real TSB. Never the production HSM.
//!
//! Owns: HTTP server (plain/TLS/mTLS), partitions with API-key groups and optional bearer-JWT
//! checks, keys with attributes and SKA policies, requests/approval tasks/approvals, approver
//! management, data objects, encrypted crash-safe persistence, fault injection and an
//! advanceable clock. Operations of one partition run in parallel: crypto runs outside the
//! partition lock (see the README's "Concurrency").
//! Must not depend on any other keymanager crate.

mod auth;
pub mod cli;
mod config;
pub mod crypto;
mod error;
mod handlers;
mod model;
mod policy;
mod server;
mod storage;
mod wire;

pub use config::{
    ApiKeyGroups, ClientAuth, EmulatorConfig, JwtConfig, JwtKey, PartitionConfig, Storage,
    TlsConfig,
};
pub use error::EmulatorError;
pub use server::{Emulator, RunningEmulator};
pub use storage::STATE_KEY_ENV;
