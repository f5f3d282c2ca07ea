//! keymanager's end-to-end suite: ONE test binary, one module per area. Every test drives real
//! components — the `keymanager` binary, the TSB emulator over real HTTP/TLS — started on port 0.

// A test binary: failing loudly on the first unexpected value is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod audit;
mod dashboard;
mod dev_command;
mod identity;
mod installation;
mod key_attestation;
mod key_policy;
mod keys;
mod notifications;
mod partitions;
mod scheduler;
mod serve_command;
mod ska_flow;
mod sso;
mod state_store;
mod support;
mod tls;
mod tsb_contract;
