//! km-domain — keymanager's pure domain: identifiers, tenants, and the rules that decide what is allowed.
//!
//! Owns: newtype identifiers with their validation rules. Later: key specs and the lifecycle state
//! machine, the SKA policy model, roles/permissions with `authorize()`, audit event types.
//!
//! Must not depend on: any IO, async runtime, HTTP, TSB or storage crate. Everything here is a plain
//! value or a pure function so it can be tested exhaustively.

mod ids;

pub use ids::{InvalidId, TenantId};
