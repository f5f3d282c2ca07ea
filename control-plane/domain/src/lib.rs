//! km-domain — keymanager's pure domain: identifiers, tenants, and the rules that decide what is allowed.
//!
//! Owns: newtype identifiers with their validation rules (`TenantId`, `PrincipalId`); roles, role
//! bindings and the single `authorize()` decision with its permission table (`rbac`); the audit event
//! model with its hash chain, offline chain verification and checkpoint signing bytes (`audit`); key
//! specs (algorithm with size or curve) and the attribute rules checked before a create request
//! (`keyspec`); the key lifecycle states and the single `transition()` decision with its HSM effect
//! (`lifecycle`); tenant registration values (`tenant`); the SSO claims-to-bindings mapping
//! (`sso`); the SKA policy model (rules, tokens, groups, approvers) with its authoring rules
//! (`ska`).
//!
//! Must not depend on: any IO, async runtime, clock, HTTP, TSB or storage crate. Everything here is a
//! plain value or a pure function (time is passed in) so it can be tested exhaustively.

pub mod audit;
mod ids;
pub mod keyspec;
pub mod lifecycle;
pub mod rbac;
pub mod ska;
pub mod sso;
pub mod tenant;

pub use audit::{
    AuditChain, AuditEvent, ChainAnchor, ChainBreak, ChainSummary, Checkpoint, CheckpointMismatch,
    EventDraft, FIRST_SEQ, GENESIS_PREV_HASH, Outcome, verify_chain, verify_chain_from,
    verify_checkpoint,
};
pub use ids::{InvalidId, PrincipalId, TenantId};
pub use keyspec::{
    Algorithm, Capabilities, Curve, KeyAttributes, KeySpec, KeySpecError, SlhDsaHash, SlhDsaLevel,
    SlhDsaParams, Usage, validate_attributes,
};
pub use lifecycle::{
    DEFAULT_WAITING_PERIOD_SECS, DestructionSchedule, IllegalTransition, InvalidWaitingPeriod,
    KeyState, LifecycleEvent, MIN_WAITING_PERIOD_SECS, ScheduledFrom, Transition,
    TransitionContext, TsbEffect, WaitingPeriod, transition,
};
pub use rbac::{
    Action, Denied, DenyReason, Grant, GrantMismatch, PERMISSIONS, Principal, PrincipalKind,
    Requirement, Role, RoleBinding, ScopeKind, TenantScope, authorize,
};
pub use ska::{
    ApproverKind, SkaAction, SkaApproval, SkaGroup, SkaKeyStatus, SkaPolicy, SkaPolicyError,
    SkaRule, SkaToken,
};
pub use sso::{ClaimKind, MappingDecision, MappingRule, SsoMapping, map_claims};
pub use tenant::{
    AuthMode, Colour, DisplayName, InvalidRegistration, PartitionStatus, TsbEndpoint,
};
