//! km-domain — keymanager's pure domain: identifiers, tenants, and the rules that decide what is allowed.
//!
//! Owns: newtype identifiers with their validation rules (`TenantId`, `PrincipalId`); roles, role
//! bindings and the single `authorize()` decision with its permission table (`rbac`); the audit event
//! model with its hash chain, offline chain verification and checkpoint signing bytes (`audit`).
//! Later: key specs and the lifecycle state machine, the SKA policy model.
//!
//! Must not depend on: any IO, async runtime, clock, HTTP, TSB or storage crate. Everything here is a
//! plain value or a pure function (time is passed in) so it can be tested exhaustively.

pub mod audit;
mod ids;
pub mod rbac;

pub use audit::{
    AuditChain, AuditEvent, ChainAnchor, ChainBreak, ChainSummary, Checkpoint, CheckpointMismatch,
    EventDraft, FIRST_SEQ, GENESIS_PREV_HASH, Outcome, verify_chain, verify_chain_from,
    verify_checkpoint,
};
pub use ids::{InvalidId, PrincipalId, TenantId};
pub use rbac::{
    Action, Denied, DenyReason, Grant, GrantMismatch, PERMISSIONS, Principal, PrincipalKind,
    Requirement, Role, RoleBinding, ScopeKind, TenantScope, authorize,
};
