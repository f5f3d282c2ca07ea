//! Role-based access control: who may do what, on which tenant.
//!
//! There is exactly one decision function, [`authorize`]. It reads the [`PERMISSIONS`] table (one row
//! per [`Action`], checked at compile time), denies by default, and on success returns a [`Grant`]: a
//! proof value that only this module can build. Services that perform privileged work take a `Grant`
//! as an argument, so skipping the check does not compile ("RBAC by construction").
//!
//! Roles are bound per tenant; a binding on `*` ([`TenantScope::AllTenants`]) makes a platform
//! operator. When several bindings apply, the most permissive one wins.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{InvalidId, PrincipalId, TenantId};

/// What a principal may do within a scope (DESIGN §4.4).
///
/// - `admin`: everything, including users and configuration;
/// - `user`: create, manage and use keys and certificates, but not users or configuration;
/// - `readonly`: read keys, certificates and status; change nothing.
///
/// Roles are ordered by privilege (`Readonly < User < Admin`) so "at least this role" is a comparison;
/// the order is explicit (not the declaration order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything on the scope, including users and configuration.
    Admin,
    /// Keys and certificates: create, manage, use.
    User,
    /// Read keys, certificates and status.
    Readonly,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 3] = [Role::Readonly, Role::User, Role::Admin];

    const fn rank(self) -> u8 {
        match self {
            Role::Readonly => 0,
            Role::User => 1,
            Role::Admin => 2,
        }
    }

    /// Whether this role includes everything `needed` may do.
    pub const fn includes(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }

    /// The name used in configuration, claims mappings and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Readonly => "readonly",
        }
    }
}

impl PartialOrd for Role {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Role {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a role binding applies: one tenant, or every tenant (`*`, a platform operator).
///
/// Serialised as the tenant id or `"*"`; a tenant id can never be `*`, so the two cannot be confused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TenantScope {
    /// Only this tenant.
    Tenant(TenantId),
    /// Every tenant, present and future, plus platform-wide actions.
    AllTenants,
}

impl TenantScope {
    /// The text form of [`TenantScope::AllTenants`].
    pub const ALL_TENANTS: &'static str = "*";

    /// Parses `*` or a tenant id (as written in configuration and SSO group mappings).
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        if value == Self::ALL_TENANTS {
            Ok(Self::AllTenants)
        } else {
            TenantId::parse(value).map(Self::Tenant)
        }
    }

    /// Whether a binding with this scope applies to `tenant`.
    pub fn covers(&self, tenant: &TenantId) -> bool {
        match self {
            TenantScope::Tenant(bound) => bound == tenant,
            TenantScope::AllTenants => true,
        }
    }
}

impl TryFrom<String> for TenantScope {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantScope> for String {
    fn from(value: TenantScope) -> Self {
        match value {
            TenantScope::Tenant(tenant) => tenant.into(),
            TenantScope::AllTenants => TenantScope::ALL_TENANTS.to_owned(),
        }
    }
}

impl fmt::Display for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantScope::Tenant(tenant) => f.write_str(tenant.as_str()),
            TenantScope::AllTenants => f.write_str(Self::ALL_TENANTS),
        }
    }
}

/// One role on one scope. A principal holds any number; they add up (the most permissive applies).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoleBinding {
    /// Where the role applies.
    pub scope: TenantScope,
    /// Which role.
    pub role: Role,
}

impl RoleBinding {
    /// A binding on one tenant.
    pub fn tenant(tenant: TenantId, role: Role) -> Self {
        Self {
            scope: TenantScope::Tenant(tenant),
            role,
        }
    }

    /// A binding on `*`: a platform operator with this role.
    pub fn all_tenants(role: Role) -> Self {
        Self {
            scope: TenantScope::AllTenants,
            role,
        }
    }
}

/// How a principal authenticated. Some own-account actions (password, TOTP, minting API tokens)
/// make sense only for an interactive user: a token must not mint tokens that outlive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person: local user or SSO.
    User,
    /// Automation holding an API token.
    ApiToken,
    /// keymanager itself (e.g. `system:scheduler`).
    System,
}

impl PrincipalKind {
    /// Stable name for logs and error codes.
    pub const fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::ApiToken => "api_token",
            PrincipalKind::System => "system",
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated actor and its role bindings, as the authentication layer established them.
/// `authorize` trusts that the principal is authenticated; it only decides what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Who: user id, API-token id, or `system:<name>`.
    pub subject: PrincipalId,
    /// How it authenticated.
    pub kind: PrincipalKind,
    /// What it may do where.
    pub bindings: Vec<RoleBinding>,
}

impl Principal {
    /// An interactive user (local or SSO).
    pub fn user(subject: PrincipalId, bindings: Vec<RoleBinding>) -> Self {
        Self {
            subject,
            kind: PrincipalKind::User,
            bindings,
        }
    }

    /// Automation authenticated by an API token; `subject` is the token id, never the token.
    pub fn api_token(subject: PrincipalId, bindings: Vec<RoleBinding>) -> Self {
        Self {
            subject,
            kind: PrincipalKind::ApiToken,
            bindings,
        }
    }

    /// keymanager itself, e.g. the scheduler (`Principal::system(PrincipalId::system("scheduler")?, ..)`).
    pub fn system(subject: PrincipalId, bindings: Vec<RoleBinding>) -> Self {
        Self {
            subject,
            kind: PrincipalKind::System,
            bindings,
        }
    }

    /// The effective role on `tenant`: the most permissive of its bindings on that tenant and on `*`.
    /// Use it to cap what a principal can delegate (an API token's role must not exceed it).
    pub fn role_on(&self, tenant: &TenantId) -> Option<Role> {
        self.best_binding(|scope| scope.covers(tenant))
            .map(|binding| binding.role)
    }

    /// The most permissive role bound on `*`, if this principal is a platform operator.
    pub fn platform_role(&self) -> Option<Role> {
        self.best_binding(|scope| *scope == TenantScope::AllTenants)
            .map(|binding| binding.role)
    }

    /// Whether any binding is on `*`.
    pub fn is_platform_operator(&self) -> bool {
        self.platform_role().is_some()
    }

    /// The most permissive applicable binding; on a tie a tenant binding is preferred over `*`, so
    /// the answer does not depend on binding order.
    fn best_binding(&self, applies: impl Fn(&TenantScope) -> bool) -> Option<&RoleBinding> {
        let mut best: Option<&RoleBinding> = None;
        for binding in self
            .bindings
            .iter()
            .filter(|binding| applies(&binding.scope))
        {
            best = match best {
                None => Some(binding),
                Some(current) if binding.role > current.role => Some(binding),
                Some(current)
                    if binding.role == current.role
                        && current.scope == TenantScope::AllTenants
                        && binding.scope != TenantScope::AllTenants =>
                {
                    Some(binding)
                }
                keep => keep,
            };
        }
        best
    }
}

/// Defines [`Action`] together with `Action::ALL` and `Action::as_str`, so the list of all actions
/// cannot drift from the enum.
macro_rules! define_actions {
    ($( $(#[$meta:meta])* $variant:ident => $name:literal, )+) => {
        /// Everything the product does that needs a permission. The variants are grouped like the
        /// [`PERMISSIONS`] table; each has exactly one row there (checked at compile time).
        ///
        /// Serialised (and named in audit events) in snake_case, e.g. `create_key`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Action {
            $( $(#[$meta])* $variant, )+
        }

        impl Action {
            /// Every action, in declaration order (`Action::ALL[a as usize] == a`).
            pub const ALL: &'static [Action] = &[ $( Action::$variant, )+ ];

            /// Stable snake_case name, the same as the serde form; used as the audit `action`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Action::$variant => $name, )+
                }
            }
        }
    };
}

define_actions! {
    // --- own account and session: any authenticated principal ---
    /// See one's own account, bindings and session.
    ReadOwnAccount => "read_own_account",
    /// Change one's own password (interactive users only).
    ChangeOwnPassword => "change_own_password",
    /// Enrol, re-verify or remove one's own TOTP second factor (interactive users only).
    ManageOwnTotp => "manage_own_totp",
    /// Create and revoke one's own API tokens (interactive users only; a token's role may not exceed
    /// the creator's `Principal::role_on`).
    ManageOwnApiTokens => "manage_own_api_tokens",
    /// List the partitions one can switch to; the service filters the list to the principal's
    /// bindings (all partitions for a `*` binding).
    ListPartitions => "list_partitions",

    // --- users and role bindings ---
    /// List the users bound to a tenant.
    ListUsers => "list_users",
    /// Read a user bound to a tenant.
    ReadUser => "read_user",
    /// Create a local user with a binding on the tenant.
    CreateUser => "create_user",
    /// Change a user account (display name, disable, unlock). Platform-wide: an account spans tenants,
    /// so a tenant admin changing it could take over another tenant's admin.
    UpdateUser => "update_user",
    /// Delete a user account (platform-wide, same reason as `UpdateUser`).
    DeleteUser => "delete_user",
    /// Reset another user's password or second factor (platform-wide, same reason).
    ResetUserPassword => "reset_user_password",
    /// Grant or revoke role bindings on the tenant.
    ManageRoleBindings => "manage_role_bindings",
    /// List every user account, including those without bindings.
    ListAllUsers => "list_all_users",
    /// Grant or revoke bindings on `*` (make or unmake platform operators).
    ManagePlatformBindings => "manage_platform_bindings",

    // --- settings ---
    /// Read the tenant's settings (four-eyes rules, destruction waiting period, ...).
    ReadSettings => "read_settings",
    /// Change the tenant's settings.
    UpdateSettings => "update_settings",
    /// Read deployment-wide settings (2FA policy, session timeouts, ...).
    ReadPlatformSettings => "read_platform_settings",
    /// Change deployment-wide settings.
    UpdatePlatformSettings => "update_platform_settings",

    // --- audit ---
    /// Read the tenant's audit events.
    ReadAudit => "read_audit",
    /// Read the whole audit log (all tenants and platform events).
    ReadPlatformAudit => "read_platform_audit",
    /// Verify the hash chain and checkpoints; needs the whole log, which spans tenants.
    VerifyAudit => "verify_audit",

    // --- partitions, SSO and plugins ---
    /// Read a partition's registration and status.
    ReadPartition => "read_partition",
    /// Register an HSM partition as a tenant.
    OnboardPartition => "onboard_partition",
    /// Change a partition's registration (name, colour, endpoint, credentials reference, groups).
    UpdatePartition => "update_partition",
    /// Remove a partition from keymanager.
    OffboardPartition => "offboard_partition",
    /// Keep one's own credentials for a partition (used instead of the partition's shared ones for
    /// one's own requests).
    ManageOwnPartitionCredentials => "manage_own_partition_credentials",
    /// Configure SSO providers and group-to-binding mappings.
    ManageSso => "manage_sso",
    /// Install, upgrade or remove plugins.
    ManagePlugins => "manage_plugins",
    /// See the plugins available to and enabled on the tenant.
    ListPlugins => "list_plugins",
    /// Enable, disable and configure plugins on the tenant (monitor/enforce, settings).
    ConfigureTenantPlugins => "configure_tenant_plugins",

    // --- keys, policies and approvers ---
    /// List keys.
    ListKeys => "list_keys",
    /// Read a key's metadata, attributes, state and policy.
    ReadKey => "read_key",
    /// Create (generate or import) a key in the HSM.
    CreateKey => "create_key",
    /// Change keymanager metadata (owner, description, tags, crypto-period, rotation schedule).
    UpdateKeyMetadata => "update_key_metadata",
    /// Activate, suspend, reactivate or deactivate a key.
    ChangeKeyLifecycle => "change_key_lifecycle",
    /// Rotate a key (new version, alias moved).
    RotateKey => "rotate_key",
    /// Schedule a key's destruction after the waiting period.
    ScheduleKeyDestruction => "schedule_key_destruction",
    /// Cancel a scheduled destruction.
    CancelKeyDestruction => "cancel_key_destruction",
    /// Mark a key compromised (irreversible).
    MarkKeyCompromised => "mark_key_compromised",
    /// Author or change a key's SKA policy.
    EditKeyPolicy => "edit_key_policy",
    /// Use a key through keymanager (sign, encrypt, wrap, ...).
    UseKey => "use_key",
    /// Export a key's public part (never secret material).
    ExportPublicKey => "export_public_key",
    /// List SKA approvers known to the tenant.
    ListApprovers => "list_approvers",
    /// Add or remove SKA approvers.
    ManageApprovers => "manage_approvers",

    // --- certificates ---
    /// List certificates.
    ListCertificates => "list_certificates",
    /// Read a certificate.
    ReadCertificate => "read_certificate",
    /// Make a CSR or a self-signed certificate, or issue one from a CSR with a CA key.
    IssueCertificate => "issue_certificate",
    /// Import a certificate.
    ImportCertificate => "import_certificate",
    /// Delete a certificate.
    DeleteCertificate => "delete_certificate",

    // --- approvals (SKA requests and control-plane four-eyes) ---
    /// List pending requests and their progress.
    ListApprovals => "list_approvals",
    /// Approve a request (never one's own; the service checks that).
    Approve => "approve",
    /// Cancel a pending request.
    CancelApprovalRequest => "cancel_approval_request",

    // --- self-tests ---
    /// Run the self-test suite on the tenant's partition (creates ephemeral keys).
    RunSelfTest => "run_self_test",
    /// Read self-test reports.
    ReadSelfTestReports => "read_self_test_reports",

    // --- dashboard ---
    /// Read the tenant dashboard (counts, expiries, health).
    ReadDashboard => "read_dashboard",
}

impl Action {
    /// Looks an action up by its snake_case name (`Action::as_str`).
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL
            .iter()
            .copied()
            .find(|action| action.as_str() == name)
    }

    /// What this action needs, from [`PERMISSIONS`]. `None` is impossible (the table is checked at
    /// compile time) and is treated as a denial by [`authorize`].
    pub fn requirement(self) -> Option<Requirement> {
        PERMISSIONS
            .get(self as usize)
            .filter(|(action, _)| *action == self)
            .map(|(_, requirement)| *requirement)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of binding an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    /// Acts on the principal's own account; no binding needed.
    Account,
    /// Acts inside one tenant; needs a binding on it or on `*`.
    Tenant,
    /// Acts on the platform; needs a binding on `*`.
    Platform,
}

/// The minimal role and scope an action needs: one row of [`PERMISSIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// Any authenticated principal, acting on itself (or seeing a view filtered to its bindings).
    Authenticated,
    /// An interactive user acting on its own credentials; API tokens and system actors may not.
    InteractiveUser,
    /// At least this role on the tenant named in the request (or on `*`).
    Tenant(Role),
    /// At least this role on `*`.
    Platform(Role),
}

impl Requirement {
    /// The kind of binding needed.
    pub const fn scope(self) -> ScopeKind {
        match self {
            Requirement::Authenticated | Requirement::InteractiveUser => ScopeKind::Account,
            Requirement::Tenant(_) => ScopeKind::Tenant,
            Requirement::Platform(_) => ScopeKind::Platform,
        }
    }

    /// The minimal role, when a binding is needed at all.
    pub const fn min_role(self) -> Option<Role> {
        match self {
            Requirement::Authenticated | Requirement::InteractiveUser => None,
            Requirement::Tenant(role) | Requirement::Platform(role) => Some(role),
        }
    }
}

use Requirement::{Authenticated, InteractiveUser, Platform, Tenant};
use Role::{Admin, Readonly, User};

/// The permission table that drives [`authorize`]: one row per [`Action`], in declaration order
/// (a compile-time check below enforces both), so it can be read and reviewed as a whole.
pub const PERMISSIONS: &[(Action, Requirement)] = &[
    // own account and session
    (Action::ReadOwnAccount, Authenticated),
    (Action::ChangeOwnPassword, InteractiveUser),
    (Action::ManageOwnTotp, InteractiveUser),
    (Action::ManageOwnApiTokens, InteractiveUser),
    (Action::ListPartitions, Authenticated),
    // users and role bindings
    (Action::ListUsers, Tenant(Admin)),
    (Action::ReadUser, Tenant(Admin)),
    (Action::CreateUser, Tenant(Admin)),
    (Action::UpdateUser, Platform(Admin)),
    (Action::DeleteUser, Platform(Admin)),
    (Action::ResetUserPassword, Platform(Admin)),
    (Action::ManageRoleBindings, Tenant(Admin)),
    (Action::ListAllUsers, Platform(Admin)),
    (Action::ManagePlatformBindings, Platform(Admin)),
    // settings
    (Action::ReadSettings, Tenant(Readonly)),
    (Action::UpdateSettings, Tenant(Admin)),
    (Action::ReadPlatformSettings, Platform(Readonly)),
    (Action::UpdatePlatformSettings, Platform(Admin)),
    // audit
    (Action::ReadAudit, Tenant(Readonly)),
    (Action::ReadPlatformAudit, Platform(Readonly)),
    (Action::VerifyAudit, Platform(Readonly)),
    // partitions, SSO and plugins
    (Action::ReadPartition, Tenant(Readonly)),
    (Action::OnboardPartition, Platform(Admin)),
    (Action::UpdatePartition, Platform(Admin)),
    (Action::OffboardPartition, Platform(Admin)),
    (Action::ManageOwnPartitionCredentials, Tenant(Readonly)),
    (Action::ManageSso, Platform(Admin)),
    (Action::ManagePlugins, Platform(Admin)),
    (Action::ListPlugins, Tenant(Readonly)),
    (Action::ConfigureTenantPlugins, Tenant(Admin)),
    // keys, policies and approvers
    (Action::ListKeys, Tenant(Readonly)),
    (Action::ReadKey, Tenant(Readonly)),
    (Action::CreateKey, Tenant(User)),
    (Action::UpdateKeyMetadata, Tenant(User)),
    (Action::ChangeKeyLifecycle, Tenant(User)),
    (Action::RotateKey, Tenant(User)),
    (Action::ScheduleKeyDestruction, Tenant(User)),
    (Action::CancelKeyDestruction, Tenant(User)),
    (Action::MarkKeyCompromised, Tenant(User)),
    (Action::EditKeyPolicy, Tenant(User)),
    (Action::UseKey, Tenant(User)),
    (Action::ExportPublicKey, Tenant(Readonly)),
    (Action::ListApprovers, Tenant(Readonly)),
    (Action::ManageApprovers, Tenant(User)),
    // certificates
    (Action::ListCertificates, Tenant(Readonly)),
    (Action::ReadCertificate, Tenant(Readonly)),
    (Action::IssueCertificate, Tenant(User)),
    (Action::ImportCertificate, Tenant(User)),
    (Action::DeleteCertificate, Tenant(User)),
    // approvals
    (Action::ListApprovals, Tenant(Readonly)),
    (Action::Approve, Tenant(User)),
    (Action::CancelApprovalRequest, Tenant(User)),
    // self-tests
    (Action::RunSelfTest, Tenant(User)),
    (Action::ReadSelfTestReports, Tenant(Readonly)),
    // dashboard
    (Action::ReadDashboard, Tenant(Readonly)),
];

// Compile-time check: one row per action, in declaration order. Adding an `Action` without a row
// (or a row out of place) fails the build.
const _: () = {
    assert!(
        PERMISSIONS.len() == Action::ALL.len(),
        "PERMISSIONS needs exactly one row per Action"
    );
    let mut index = 0;
    while index < PERMISSIONS.len() {
        assert!(
            PERMISSIONS[index].0 as usize == index,
            "PERMISSIONS rows must follow the order of Action"
        );
        index += 1;
    }
};

/// Proof that [`authorize`] allowed `principal` to perform `action` on `tenant`.
///
/// Only this module can build one (private fields, no `Default`, no `Deserialize`), so a service that
/// takes `&Grant` cannot be reached without the check. Services should still call
/// [`Grant::require`] to make sure the grant is for the action and tenant they are about to touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    principal: PrincipalId,
    kind: PrincipalKind,
    tenant: Option<TenantId>,
    action: Action,
    via: Option<RoleBinding>,
}

impl Grant {
    /// Who was allowed.
    pub fn principal(&self) -> &PrincipalId {
        &self.principal
    }

    /// How that principal authenticated.
    pub fn principal_kind(&self) -> PrincipalKind {
        self.kind
    }

    /// The tenant named in the request (for platform actions, the tenant they concern, if any).
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// What was allowed.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The binding that allowed it; `None` for own-account actions that need no binding.
    pub fn via(&self) -> Option<&RoleBinding> {
        self.via.as_ref()
    }

    /// Checks that this grant is for exactly `action` on `tenant`, so a grant for one thing cannot be
    /// replayed for another.
    pub fn require(&self, action: Action, tenant: Option<&TenantId>) -> Result<(), GrantMismatch> {
        if self.action == action && self.tenant.as_ref() == tenant {
            Ok(())
        } else {
            Err(GrantMismatch {
                granted: self.action,
                granted_tenant: self.tenant.clone(),
                required: action,
                required_tenant: tenant.cloned(),
            })
        }
    }
}

/// A service was handed a [`Grant`] for a different action or tenant: a programming error that must
/// be refused, not papered over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "grant is for {granted} on {}, but {required} on {} was attempted",
    tenant_text(.granted_tenant.as_ref()),
    tenant_text(.required_tenant.as_ref())
)]
pub struct GrantMismatch {
    /// What the grant allows.
    pub granted: Action,
    /// Where the grant allows it.
    pub granted_tenant: Option<TenantId>,
    /// What was attempted.
    pub required: Action,
    /// Where it was attempted.
    pub required_tenant: Option<TenantId>,
}

fn tenant_text(tenant: Option<&TenantId>) -> &str {
    tenant.map_or("no tenant", TenantId::as_str)
}

/// Why [`authorize`] said no. The codes ([`DenyReason::code`]) are stable: the API returns them and
/// audit events record them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// No binding on the tenant nor on `*`.
    NoBindingForTenant,
    /// A binding applies but its role is too low.
    RoleTooLow {
        /// The least role that would do.
        needed: Role,
        /// The best role the principal has there.
        had: Role,
    },
    /// A platform-wide action, and the principal has no binding on `*`.
    PlatformOperatorOnly,
    /// A tenant action was requested without naming a tenant.
    TenantRequired,
    /// An own-credential action (password, TOTP, API tokens) by an API token or system actor.
    InteractiveUserOnly {
        /// How the principal authenticated.
        kind: PrincipalKind,
    },
    /// The action has no row in the permission table. Cannot happen (a compile-time check pins one
    /// row per action); it exists so that a broken table denies instead of granting.
    Unlisted,
}

impl DenyReason {
    /// Stable machine-readable code.
    pub const fn code(self) -> &'static str {
        match self {
            DenyReason::NoBindingForTenant => "no_binding_for_tenant",
            DenyReason::RoleTooLow { .. } => "role_too_low",
            DenyReason::PlatformOperatorOnly => "platform_operator_only",
            DenyReason::TenantRequired => "tenant_required",
            DenyReason::InteractiveUserOnly { .. } => "interactive_user_only",
            DenyReason::Unlisted => "unlisted_action",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::NoBindingForTenant => f.write_str("no role on this tenant"),
            DenyReason::RoleTooLow { needed, had } => write!(f, "needs role {needed}, has {had}"),
            DenyReason::PlatformOperatorOnly => {
                f.write_str("only a platform operator (a role on '*') may do this")
            }
            DenyReason::TenantRequired => f.write_str("a tenant must be named"),
            DenyReason::InteractiveUserOnly { kind } => {
                write!(
                    f,
                    "only an interactive user may do this, not a {kind} principal"
                )
            }
            DenyReason::Unlisted => f.write_str("the action is not in the permission table"),
        }
    }
}

/// A refusal from [`authorize`]: who, what, where and why. Every one is audited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{principal} may not {action} on {}: {reason}", tenant_text(.tenant.as_ref()))]
pub struct Denied {
    principal: PrincipalId,
    tenant: Option<TenantId>,
    action: Action,
    reason: DenyReason,
}

impl Denied {
    /// Who was refused.
    pub fn principal(&self) -> &PrincipalId {
        &self.principal
    }

    /// The tenant named in the request.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// What was refused.
    pub fn action(&self) -> Action {
        self.action
    }

    /// Why.
    pub fn reason(&self) -> DenyReason {
        self.reason
    }
}

/// The one authorization decision in keymanager: may `principal` perform `action` on `tenant`?
///
/// Deny by default: every path that does not positively match a requirement of the action's
/// [`PERMISSIONS`] row is a denial. The most permissive applicable binding wins (a binding on the
/// tenant or on `*` for tenant actions; a binding on `*` for platform actions). For own-account and
/// platform actions `tenant` is not needed; when given it is recorded in the grant.
pub fn authorize(
    principal: &Principal,
    tenant: Option<&TenantId>,
    action: Action,
) -> Result<Grant, Denied> {
    let decision = decide(principal, tenant, action);
    match decision {
        Ok(via) => Ok(Grant {
            principal: principal.subject.clone(),
            kind: principal.kind,
            tenant: tenant.cloned(),
            action,
            via: via.cloned(),
        }),
        Err(reason) => Err(Denied {
            principal: principal.subject.clone(),
            tenant: tenant.cloned(),
            action,
            reason,
        }),
    }
}

/// The decision itself: the binding that allows the action (`None` when none is needed) or why not.
fn decide<'p>(
    principal: &'p Principal,
    tenant: Option<&TenantId>,
    action: Action,
) -> Result<Option<&'p RoleBinding>, DenyReason> {
    let Some(requirement) = action.requirement() else {
        return Err(DenyReason::Unlisted);
    };
    match requirement {
        Requirement::Authenticated => Ok(None),
        Requirement::InteractiveUser => match principal.kind {
            PrincipalKind::User => Ok(None),
            kind @ (PrincipalKind::ApiToken | PrincipalKind::System) => {
                Err(DenyReason::InteractiveUserOnly { kind })
            }
        },
        Requirement::Tenant(needed) => {
            let Some(tenant) = tenant else {
                return Err(DenyReason::TenantRequired);
            };
            let Some(binding) = principal.best_binding(|scope| scope.covers(tenant)) else {
                return Err(DenyReason::NoBindingForTenant);
            };
            sufficient(binding, needed)
        }
        Requirement::Platform(needed) => {
            let Some(binding) = principal.best_binding(|scope| *scope == TenantScope::AllTenants)
            else {
                return Err(DenyReason::PlatformOperatorOnly);
            };
            sufficient(binding, needed)
        }
    }
}

fn sufficient(binding: &RoleBinding, needed: Role) -> Result<Option<&RoleBinding>, DenyReason> {
    if binding.role.includes(needed) {
        Ok(Some(binding))
    } else {
        Err(DenyReason::RoleTooLow {
            needed,
            had: binding.role,
        })
    }
}

#[cfg(test)]
mod tests;
