//! Keys of a tenant (`/tenants/{tenant}/keys`): the inventory, creation for every TSB algorithm,
//! metadata, lifecycle, rotation and public-key export; and the tenant's key settings
//! (`/tenants/{tenant}/key-settings`).

use km_core::keys::{
    DEFAULT_ROTATION_GRACE_SECS, HistoryEntry, Jwk, KeyVersion, PublicKeyMaterial, RotationPolicy,
};
use km_core::keys::{KeyEvent, PendingChange};
use km_core::{
    App, AppError, KeyDetail, KeyFilter, KeyMetadataUpdate, KeyQuery, KeySort, KeySummary, NewKey,
    Page, PublicKeyExport, PublicKeyFormat, RequestId, StateChange, TenantKeySettings,
};
use km_domain::{
    Algorithm, ApproverKind, Curve, KeyAttributes, KeySpec, KeySpecError, KeyState, SkaApproval,
    SkaGroup, SkaKeyStatus, SkaPolicy, SkaRule, SkaToken, WaitingPeriod,
};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::key_policy::PendingRequestBody;
use super::{ApiTags, fail, page, tenant};
use crate::context::{authenticate, request_id};
use crate::models::Text;
use crate::problem::ApiError;

/// The key operations.
pub(crate) struct KeysApi;

// ----- enums -----

/// Lifecycle state (NIST SP 800-57).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum KeyStateName {
    /// Created, not yet usable (blocked in the HSM).
    #[oai(rename = "pre-active")]
    PreActive,
    /// Usable.
    #[oai(rename = "active")]
    Active,
    /// Temporarily unusable (blocked).
    #[oai(rename = "suspended")]
    Suspended,
    /// May only process, no longer protect (blocked).
    #[oai(rename = "deactivated")]
    Deactivated,
    /// Never to be trusted again (blocked; unblocking frozen).
    #[oai(rename = "compromised")]
    Compromised,
    /// Waiting for destruction; cancellable.
    #[oai(rename = "destroy-scheduled")]
    DestroyScheduled,
    /// Material deleted; tombstone.
    #[oai(rename = "destroyed")]
    Destroyed,
}

impl From<KeyState> for KeyStateName {
    fn from(state: KeyState) -> Self {
        match state {
            KeyState::PreActive => Self::PreActive,
            KeyState::Active => Self::Active,
            KeyState::Suspended => Self::Suspended,
            KeyState::Deactivated => Self::Deactivated,
            KeyState::Compromised => Self::Compromised,
            KeyState::DestroyScheduled => Self::DestroyScheduled,
            KeyState::Destroyed => Self::Destroyed,
        }
    }
}

impl From<KeyStateName> for KeyState {
    fn from(state: KeyStateName) -> Self {
        match state {
            KeyStateName::PreActive => Self::PreActive,
            KeyStateName::Active => Self::Active,
            KeyStateName::Suspended => Self::Suspended,
            KeyStateName::Deactivated => Self::Deactivated,
            KeyStateName::Compromised => Self::Compromised,
            KeyStateName::DestroyScheduled => Self::DestroyScheduled,
            KeyStateName::Destroyed => Self::Destroyed,
        }
    }
}

/// Inventory order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum KeySortName {
    /// By label.
    Label,
    /// By creation time, oldest first.
    Created,
    /// By expiry, soonest first; keys without expiry last.
    Expiry,
}

impl From<KeySortName> for KeySort {
    fn from(sort: KeySortName) -> Self {
        match sort {
            KeySortName::Label => Self::Label,
            KeySortName::Created => Self::Created,
            KeySortName::Expiry => Self::Expiry,
        }
    }
}

/// A lifecycle change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum KeyEventName {
    /// pre-active → active.
    Activate,
    /// active → suspended.
    Suspend,
    /// suspended → active.
    Reactivate,
    /// active/suspended → deactivated.
    Deactivate,
    /// → compromised (irreversible).
    Compromise,
    /// pre-active/deactivated/compromised → destroy-scheduled.
    ScheduleDestruction,
    /// destroy-scheduled → the state it was scheduled from.
    CancelDestruction,
}

/// How an SKA approver is identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ApproverKindName {
    /// `value` = base64 SPKI DER.
    PublicKey,
    /// `value` = base64 DER certificate, `name` required.
    Certificate,
    /// An approver onboarded through TSB Approver Management, by `name`.
    OnboardedApproverCertificate,
}

/// Public-key export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum PublicKeyFormatName {
    /// PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    Pem,
    /// JSON Web Key (EC P-256/384/521, secp256k1, RSA, Ed25519).
    Jwk,
}

// ----- request bodies -----

/// Usage and protection flags. Absent flags follow the TSB's defaults: `sensitive`,
/// `modifiable` and `destroyable` on, everything else off. Keys created by keymanager always
/// carry an SKA policy, so they can never be `extractable`.
#[derive(Debug, Clone, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct AttributesRequest {
    /// Public-key/secret encrypt.
    pub encrypt: Option<bool>,
    /// Decrypt.
    pub decrypt: Option<bool>,
    /// Verify.
    pub verify: Option<bool>,
    /// Sign (or MAC).
    pub sign: Option<bool>,
    /// Wrap other keys.
    pub wrap: Option<bool>,
    /// Unwrap other keys.
    pub unwrap: Option<bool>,
    /// Derive keys.
    pub derive: Option<bool>,
    /// BIP32 derivation (EC with derive).
    pub bip32: Option<bool>,
    /// SLIP-10 derivation (EC/ED with derive).
    pub slip10: Option<bool>,
    /// Material may leave the HSM (refused: keymanager keys carry an SKA policy).
    pub extractable: Option<bool>,
    /// Attributes may later be made stricter (default on).
    pub modifiable: Option<bool>,
    /// May be destroyed (default on; off = never).
    pub destroyable: Option<bool>,
    /// Never leaves the HSM in plain (default on).
    pub sensitive: Option<bool>,
    /// May be copied.
    pub copyable: Option<bool>,
}

impl From<AttributesRequest> for KeyAttributes {
    fn from(a: AttributesRequest) -> Self {
        let off = |flag: Option<bool>| flag.unwrap_or(false);
        let on = |flag: Option<bool>| flag.unwrap_or(true);
        Self {
            encrypt: off(a.encrypt),
            decrypt: off(a.decrypt),
            verify: off(a.verify),
            sign: off(a.sign),
            wrap: off(a.wrap),
            unwrap: off(a.unwrap),
            derive: off(a.derive),
            bip32: off(a.bip32),
            slip10: off(a.slip10),
            extractable: off(a.extractable),
            modifiable: on(a.modifiable),
            destroyable: on(a.destroyable),
            sensitive: on(a.sensitive),
            copyable: off(a.copyable),
        }
    }
}

/// One SKA approver.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ApprovalRequest {
    /// How the approver is identified.
    #[oai(rename = "type")]
    pub kind: ApproverKindName,
    /// Display name (required for certificate and onboarded approvers).
    #[oai(validator(max_length = 256))]
    pub name: Option<Text>,
    /// Bare base64 of the SPKI DER or DER certificate.
    #[oai(validator(max_length = 16384))]
    pub value: Option<Text>,
}

/// N-of-M approvers.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct GroupRequest {
    /// Unique within its token.
    #[oai(validator(max_length = 256))]
    pub name: Text,
    /// How many must approve.
    pub quorum: u32,
    /// The approvers.
    #[oai(validator(max_items = 64))]
    pub approvals: Vec<ApprovalRequest>,
}

/// Groups that must all agree, within a time window.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct TokenRequest {
    /// Unique within its rule.
    #[oai(validator(max_length = 256))]
    pub name: Text,
    /// Seconds after approval before execution (multiple of 60).
    pub timelock: Option<u64>,
    /// Seconds the approvals may take (multiple of 60; 0 = no limit).
    pub timeout: Option<u64>,
    /// Groups; none = no approval needed.
    #[oai(validator(max_items = 16))]
    pub groups: Option<Vec<GroupRequest>>,
}

/// Alternatives of which any one token suffices; no tokens freezes the action (not allowed for
/// use).
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct RuleRequest {
    /// The tokens.
    #[oai(validator(max_items = 16))]
    pub tokens: Vec<TokenRequest>,
}

/// An SKA policy: who approves use, block, unblock and modify. Absent rules need no approval.
#[derive(Debug, Clone, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct PolicyRequest {
    /// Governs sign, decrypt, unwrap.
    pub rule_use: Option<RuleRequest>,
    /// Governs blocking.
    pub rule_block: Option<RuleRequest>,
    /// Governs unblocking.
    pub rule_unblock: Option<RuleRequest>,
    /// Governs replacing the policy.
    pub rule_modify: Option<RuleRequest>,
}

impl From<ApprovalRequest> for SkaApproval {
    fn from(a: ApprovalRequest) -> Self {
        Self {
            kind: match a.kind {
                ApproverKindName::PublicKey => ApproverKind::PublicKey,
                ApproverKindName::Certificate => ApproverKind::Certificate,
                ApproverKindName::OnboardedApproverCertificate => ApproverKind::Onboarded,
            },
            name: a.name.map(|n| n.0),
            value: a.value.map(|v| v.0),
        }
    }
}

impl From<RuleRequest> for SkaRule {
    fn from(rule: RuleRequest) -> Self {
        SkaRule::new(
            rule.tokens
                .into_iter()
                .map(|token| SkaToken {
                    name: token.name.0,
                    timelock: token.timelock.unwrap_or(0),
                    timeout: token.timeout.unwrap_or(0),
                    groups: token
                        .groups
                        .unwrap_or_default()
                        .into_iter()
                        .map(|g| {
                            SkaGroup::new(
                                g.name.0,
                                g.quorum,
                                g.approvals.into_iter().map(Into::into).collect(),
                            )
                        })
                        .collect(),
                })
                .collect(),
        )
    }
}

impl From<PolicyRequest> for SkaPolicy {
    fn from(p: PolicyRequest) -> Self {
        Self {
            rule_use: p.rule_use.map(Into::into),
            rule_block: p.rule_block.map(Into::into),
            rule_unblock: p.rule_unblock.map(Into::into),
            rule_modify: p.rule_modify.map(Into::into),
            key_status: SkaKeyStatus::default(),
        }
    }
}

/// Automatic rotation.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct RotationRequest {
    /// Seconds between rotations (at least 3600).
    pub interval_secs: u64,
    /// Seconds a replaced version stays active (default 604800, 7 days).
    pub grace_secs: Option<u64>,
}

impl From<RotationRequest> for RotationPolicy {
    fn from(r: RotationRequest) -> Self {
        Self {
            interval_secs: r.interval_secs,
            grace_secs: r.grace_secs.unwrap_or(DEFAULT_ROTATION_GRACE_SECS),
        }
    }
}

/// A key to create.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// 1–100 of `[A-Za-z0-9._-]`; not starting with `kms.`, not ending in `_v<N>` (reserved for
    /// rotated versions). Also the HSM label of version 1.
    #[oai(validator(max_length = 256))]
    pub label: Text,
    /// TSB algorithm name, exactly as the TSB spells it: `RSA`, `DSA`, `EC`, `ED`, `BLS`, `AES`,
    /// `Camellia`, `ChaCha20`, `TDEA`, `HMACSHA256`, `ML-DSA-44/65/87`, `ML-KEM-512/768/1024`,
    /// `SLH-DSA-SHA2-128f`, ...
    #[oai(validator(max_length = 64))]
    pub algorithm: Text,
    /// Key size in bits, for algorithms that take one (RSA, DSA, AES, Camellia, ChaCha20).
    pub key_size: Option<u32>,
    /// Curve for EC/ED: OID or name (`P-256`, `secp256k1`, `Ed25519`, ...).
    #[oai(validator(max_length = 64))]
    pub curve: Option<Text>,
    /// Usage and protection flags.
    pub attributes: AttributesRequest,
    /// SKA policy (default: the empty policy — no approvals, blockable).
    pub policy: Option<PolicyRequest>,
    /// Unix seconds; in the future, the key is created pre-active and activated then.
    pub activation_at: Option<u64>,
    /// Unix seconds: end of the crypto-period (the key is deactivated then).
    pub expires_at: Option<u64>,
    /// Who is responsible.
    #[oai(validator(max_length = 1024))]
    pub owner: Option<Text>,
    /// What the key is for.
    #[oai(validator(max_length = 4096))]
    pub description: Option<Text>,
    /// Tags (`[A-Za-z0-9._:=/-]`, at most 32).
    #[oai(validator(max_items = 64))]
    pub tags: Option<Vec<Text>>,
    /// Automatic rotation.
    pub rotation: Option<RotationRequest>,
}

/// A metadata change; absent fields stay, `null` clears.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    /// Owner.
    #[oai(validator(max_length = 1024))]
    pub owner: MaybeUndefined<Text>,
    /// Description.
    #[oai(validator(max_length = 4096))]
    pub description: MaybeUndefined<Text>,
    /// Tags (replacing all).
    #[oai(validator(max_items = 64))]
    pub tags: Option<Vec<Text>>,
    /// End of the crypto-period (unix seconds).
    pub expires_at: MaybeUndefined<u64>,
    /// Automatic rotation (`null` stops it).
    pub rotation: MaybeUndefined<RotationRequest>,
}

/// A lifecycle change.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct LifecycleRequest {
    /// What should happen.
    pub event: KeyEventName,
    /// Why (kept in the key's history and the audit log; at most 256 characters).
    #[oai(validator(max_length = 1024))]
    pub reason: Option<Text>,
    /// The version to change (default: the current one).
    pub version: Option<u32>,
    /// For `schedule_destruction`: when (unix seconds; default now + the tenant's waiting
    /// period, never earlier).
    pub destroy_at: Option<u64>,
}

/// The tenant's key settings.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct KeySettingsRequest {
    /// Waiting period before a scheduled destruction (at least 86400, default 604800).
    pub destruction_waiting_period_secs: u64,
}

// ----- response bodies -----

/// Usage and protection flags.
#[derive(Debug, Clone, Object)]
pub struct AttributesBody {
    /// Encrypt.
    pub encrypt: bool,
    /// Decrypt.
    pub decrypt: bool,
    /// Verify.
    pub verify: bool,
    /// Sign.
    pub sign: bool,
    /// Wrap.
    pub wrap: bool,
    /// Unwrap.
    pub unwrap: bool,
    /// Derive.
    pub derive: bool,
    /// BIP32.
    pub bip32: bool,
    /// SLIP-10.
    pub slip10: bool,
    /// Extractable.
    pub extractable: bool,
    /// Modifiable.
    pub modifiable: bool,
    /// Destroyable.
    pub destroyable: bool,
    /// Sensitive.
    pub sensitive: bool,
    /// Copyable.
    pub copyable: bool,
}

impl From<KeyAttributes> for AttributesBody {
    fn from(a: KeyAttributes) -> Self {
        Self {
            encrypt: a.encrypt,
            decrypt: a.decrypt,
            verify: a.verify,
            sign: a.sign,
            wrap: a.wrap,
            unwrap: a.unwrap,
            derive: a.derive,
            bip32: a.bip32,
            slip10: a.slip10,
            extractable: a.extractable,
            modifiable: a.modifiable,
            destroyable: a.destroyable,
            sensitive: a.sensitive,
            copyable: a.copyable,
        }
    }
}

/// One key of the inventory: a managed key's alias, or a key keymanager does not manage. Times
/// are unix seconds. Never key material.
#[derive(Debug, Clone, Object)]
pub struct KeyBody {
    /// Alias (managed) or HSM label (unmanaged).
    pub label: String,
    /// Whether keymanager keeps metadata for it.
    pub managed: bool,
    /// Lifecycle state (unmanaged keys: `active`/`suspended` from the HSM's blocked flag).
    pub state: KeyStateName,
    /// HSM label of the current version (absent once destroyed).
    pub current_label: Option<String>,
    /// Number of the current version (managed keys).
    pub current_version: Option<u32>,
    /// Number of versions.
    pub versions: u32,
    /// TSB algorithm name.
    pub algorithm: String,
    /// Key size in bits.
    pub key_size: Option<u32>,
    /// Curve OID (EC/ED).
    pub curve_oid: Option<String>,
    /// Curve name (EC/ED).
    pub curve: Option<String>,
    /// Flags as the HSM reports them.
    pub attributes: AttributesBody,
    /// The HSM's blocked flag (absent when the HSM key is gone).
    pub blocked: Option<bool>,
    /// Whether the key has an SKA policy.
    pub has_policy: Option<bool>,
    /// Owner.
    pub owner: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// When a pre-active key becomes active.
    pub activation_at: Option<u64>,
    /// End of the crypto-period.
    pub expires_at: Option<u64>,
    /// Creation time.
    pub created_at: Option<u64>,
    /// Next automatic rotation.
    pub next_rotation_at: Option<u64>,
    /// When the current version is destroyed (while destroy-scheduled).
    pub destruction_at: Option<u64>,
}

impl From<&KeySummary> for KeyBody {
    fn from(s: &KeySummary) -> Self {
        Self {
            label: s.label.clone(),
            managed: s.managed,
            state: s.state.into(),
            current_label: s.current_label.clone(),
            current_version: s.current_version,
            versions: s.versions,
            algorithm: s.spec.algorithm.clone(),
            key_size: s.spec.key_size,
            curve_oid: s.spec.curve_oid.clone(),
            curve: s
                .spec
                .curve_oid
                .as_deref()
                .and_then(Curve::parse)
                .map(|c| c.name().to_owned()),
            attributes: s.attributes.into(),
            blocked: s.blocked,
            has_policy: s.has_policy,
            owner: s.owner.clone(),
            description: s.description.clone(),
            tags: s.tags.clone(),
            activation_at: s.activation_at,
            expires_at: s.expires_at,
            created_at: s.created_at,
            next_rotation_at: s.next_rotation_at,
            destruction_at: s.destruction_at,
        }
    }
}

/// A page of the inventory.
#[derive(Debug, Clone, Object)]
pub struct KeyPage {
    /// Keys, in the requested order.
    pub items: Vec<KeyBody>,
    /// Pass as `cursor` (with the same `sort`) for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<Page<KeySummary>> for KeyPage {
    fn from(page: Page<KeySummary>) -> Self {
        Self {
            items: page.items.iter().map(KeyBody::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// One version (HSM key) behind an alias.
#[derive(Debug, Clone, Object)]
pub struct KeyVersionBody {
    /// 1 = the original key.
    pub number: u32,
    /// HSM label.
    pub label: String,
    /// Lifecycle state.
    pub state: KeyStateName,
    /// Creation time.
    pub created_at: u64,
    /// When the scheduler deactivates it (a replaced version).
    pub deactivate_after: Option<u64>,
    /// When it is destroyed (while destroy-scheduled).
    pub destruction_at: Option<u64>,
    /// When it was destroyed.
    pub destroyed_at: Option<u64>,
}

impl From<&KeyVersion> for KeyVersionBody {
    fn from(v: &KeyVersion) -> Self {
        Self {
            number: v.number,
            label: v.label.clone(),
            state: v.state.into(),
            created_at: v.created_at,
            deactivate_after: v.deactivate_after,
            destruction_at: v.schedule.map(|s| s.at),
            destroyed_at: v.destroyed_at,
        }
    }
}

/// One lifecycle change.
#[derive(Debug, Clone, Object)]
pub struct HistoryBody {
    /// When.
    pub at: u64,
    /// Who.
    pub actor: String,
    /// Which version.
    pub version: u32,
    /// What: `create`, `adopt`, `rotate`, or the lifecycle event as km-domain names it
    /// (`activate`, `suspend`, `resume`, `deactivate`, `mark-compromised`,
    /// `schedule-destruction`, `cancel-destruction`, `destroy`).
    pub event: String,
    /// State before.
    pub from: Option<KeyStateName>,
    /// State after.
    pub to: KeyStateName,
    /// Why.
    pub reason: Option<String>,
}

impl From<&HistoryEntry> for HistoryBody {
    fn from(h: &HistoryEntry) -> Self {
        Self {
            at: h.at,
            actor: h.actor.clone(),
            version: h.version,
            event: h.event.clone(),
            from: h.from.map(Into::into),
            to: h.to.into(),
            reason: h.reason.clone(),
        }
    }
}

/// Automatic rotation.
#[derive(Debug, Clone, Object)]
pub struct RotationBody {
    /// Seconds between rotations.
    pub interval_secs: u64,
    /// Seconds a replaced version stays active.
    pub grace_secs: u64,
}

/// Everything about one key.
#[derive(Debug, Clone, Object)]
pub struct KeyDetailBody {
    /// The inventory row, with live HSM facts.
    #[oai(flatten)]
    pub key: KeyBody,
    /// Versions, ascending (empty for unmanaged keys).
    pub version_list: Vec<KeyVersionBody>,
    /// The last lifecycle changes, oldest first (the audit log has them all).
    pub history: Vec<HistoryBody>,
    /// Automatic rotation.
    pub rotation: Option<RotationBody>,
    /// Who created or adopted it in keymanager.
    pub created_by: Option<String>,
    /// Found in the HSM rather than created by keymanager.
    pub adopted: bool,
    /// Changes waiting for approvals in the HSM (progress: `GET .../requests`).
    pub pending: Vec<PendingRequestBody>,
}

impl From<KeyDetail> for KeyDetailBody {
    fn from(d: KeyDetail) -> Self {
        Self {
            key: KeyBody::from(&d.summary),
            version_list: d.versions.iter().map(KeyVersionBody::from).collect(),
            history: d.history.iter().map(HistoryBody::from).collect(),
            rotation: d.rotation.map(|r| RotationBody {
                interval_secs: r.interval_secs,
                grace_secs: r.grace_secs,
            }),
            created_by: d.created_by,
            adopted: d.adopted,
            pending: d.pending.iter().map(Into::into).collect(),
        }
    }
}

/// A public key as a JSON Web Key.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct JwkBody {
    /// `EC`, `RSA` or `OKP`.
    pub kty: String,
    /// Curve.
    pub crv: Option<String>,
    /// EC x / OKP key (base64url).
    pub x: Option<String>,
    /// EC y (base64url).
    pub y: Option<String>,
    /// RSA modulus (base64url).
    pub n: Option<String>,
    /// RSA exponent (base64url).
    pub e: Option<String>,
    /// The HSM label of the version.
    pub kid: String,
}

impl From<Jwk> for JwkBody {
    fn from(j: Jwk) -> Self {
        Self {
            kty: j.kty.to_owned(),
            crv: j.crv.map(str::to_owned),
            x: j.x,
            y: j.y,
            n: j.n,
            e: j.e,
            kid: j.kid,
        }
    }
}

/// An exported public key.
#[derive(Debug, Clone, Object)]
pub struct PublicKeyBody {
    /// HSM label of the exported version.
    pub label: String,
    /// Its version number (absent for unmanaged keys).
    pub version: Option<u32>,
    /// The format asked for.
    pub format: PublicKeyFormatName,
    /// PEM `PUBLIC KEY` (format `pem`).
    pub pem: Option<String>,
    /// The JWK (format `jwk`).
    pub jwk: Option<JwkBody>,
}

impl From<PublicKeyExport> for PublicKeyBody {
    fn from(export: PublicKeyExport) -> Self {
        let (format, pem, jwk) = match export.material {
            PublicKeyMaterial::Pem(pem) => (PublicKeyFormatName::Pem, Some(pem), None),
            PublicKeyMaterial::Jwk(jwk) => (PublicKeyFormatName::Jwk, None, Some(jwk.into())),
        };
        Self {
            label: export.label,
            version: export.version,
            format,
            pem,
            jwk,
        }
    }
}

/// The tenant's key settings.
#[derive(Debug, Clone, Object)]
pub struct KeySettingsBody {
    /// Waiting period before a scheduled destruction, seconds.
    pub destruction_waiting_period_secs: u64,
}

impl From<TenantKeySettings> for KeySettingsBody {
    fn from(s: TenantKeySettings) -> Self {
        Self {
            destruction_waiting_period_secs: s.waiting_period.as_secs(),
        }
    }
}

// ----- responses -----

#[derive(Debug, ApiResponse)]
enum KeyPageResponse {
    /// The page.
    #[oai(status = 200)]
    Ok(Json<KeyPage>),
}

#[derive(Debug, ApiResponse)]
enum KeyResponse {
    /// The key.
    #[oai(status = 200)]
    Ok(Json<KeyDetailBody>),
    /// Created.
    #[oai(status = 201)]
    Created(Json<KeyDetailBody>),
    /// The key's block or unblock rule asks for approvals: the change waits as a request (see
    /// `pending`); the state is unchanged until it executes.
    #[oai(status = 202)]
    Accepted(Json<KeyDetailBody>),
}

#[derive(Debug, ApiResponse)]
enum PublicKeyResponse {
    /// The public key.
    #[oai(status = 200)]
    Ok(Json<PublicKeyBody>),
}

#[derive(Debug, ApiResponse)]
enum KeySettingsResponse {
    /// The settings.
    #[oai(status = 200)]
    Ok(Json<KeySettingsBody>),
}

// ----- translation -----

fn invalid(rid: &RequestId, reason: &'static str, message: String) -> ApiError {
    ApiError::from_app(&AppError::invalid(reason, message), rid)
}

fn spec_error(rid: &RequestId) -> impl Fn(KeySpecError) -> ApiError + '_ {
    move |error| invalid(rid, error.code(), error.to_string())
}

fn new_key(body: CreateKeyRequest, rid: &RequestId) -> Result<NewKey, ApiError> {
    let algorithm = Algorithm::parse(&body.algorithm.0).map_err(spec_error(rid))?;
    let spec = KeySpec::new(
        algorithm,
        body.key_size,
        body.curve.as_ref().map(|c| c.0.as_str()),
    )
    .map_err(spec_error(rid))?;
    Ok(NewKey {
        label: body.label.0,
        spec,
        attributes: body.attributes.into(),
        policy: body.policy.map(Into::into).unwrap_or_default(),
        activation_at: body.activation_at,
        expires_at: body.expires_at,
        owner: body.owner.map(|t| t.0),
        description: body.description.map(|t| t.0),
        tags: texts(body.tags),
        rotation: body.rotation.map(Into::into),
    })
}

fn texts(list: Option<Vec<Text>>) -> Vec<String> {
    list.unwrap_or_default().into_iter().map(|t| t.0).collect()
}

/// `Undefined` → keep, `null` → clear, value → set.
fn change<T, U>(field: MaybeUndefined<T>, f: impl FnOnce(T) -> U) -> Option<Option<U>> {
    match field {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(value) => Some(Some(f(value))),
    }
}

fn metadata_update(body: UpdateKeyRequest) -> KeyMetadataUpdate {
    KeyMetadataUpdate {
        owner: change(body.owner, |t| t.0),
        description: change(body.description, |t| t.0),
        tags: body
            .tags
            .map(|tags| tags.into_iter().map(|t| t.0).collect()),
        expires_at: change(body.expires_at, |at| at),
        rotation: change(body.rotation, Into::into),
    }
}

fn state_change(body: LifecycleRequest, rid: &RequestId) -> Result<StateChange, ApiError> {
    let event = match body.event {
        KeyEventName::Activate => KeyEvent::Activate,
        KeyEventName::Suspend => KeyEvent::Suspend,
        KeyEventName::Reactivate => KeyEvent::Reactivate,
        KeyEventName::Deactivate => KeyEvent::Deactivate,
        KeyEventName::Compromise => KeyEvent::Compromise,
        KeyEventName::ScheduleDestruction => KeyEvent::ScheduleDestruction {
            at: body.destroy_at,
        },
        KeyEventName::CancelDestruction => KeyEvent::CancelDestruction,
    };
    if body.destroy_at.is_some() && body.event != KeyEventName::ScheduleDestruction {
        return Err(invalid(
            rid,
            "destroy_at_not_applicable",
            "destroy_at is only for the event schedule_destruction".to_owned(),
        ));
    }
    Ok(StateChange {
        event,
        reason: body.reason.map(|t| t.0),
        version: body.version,
    })
}

// ----- operations -----

#[OpenApi(tag = "ApiTags::Keys")]
impl KeysApi {
    /// The partition's keys — created by keymanager or not — with HSM facts and metadata, from
    /// a per-tenant cache refreshed in the background. keymanager's own `kms.*` keys are never
    /// listed.
    #[oai(
        path = "/tenants/:tenant/keys",
        method = "get",
        operation_id = "list_keys"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Only labels starting with this.
        #[oai(validator(max_length = 256))]
        prefix: Query<Option<String>>,
        /// Only keys carrying this tag.
        #[oai(validator(max_length = 64))]
        tag: Query<Option<String>>,
        /// Only this TSB algorithm (e.g. `EC`, `ML-DSA-65`; case-insensitive).
        #[oai(validator(max_length = 64))]
        algorithm: Query<Option<String>>,
        /// Only keys in this state.
        state: Query<Option<KeyStateName>>,
        /// Only keys expiring before this time (unix seconds).
        expiring_before: Query<Option<u64>>,
        /// Order (default `label`).
        sort: Query<Option<KeySortName>>,
        /// `next_cursor` of the previous page (same `sort`).
        cursor: Query<Option<String>>,
        /// Items per page (1–200, default 50).
        limit: Query<Option<u32>>,
    ) -> Result<KeyPageResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let query = KeyQuery {
            filter: KeyFilter {
                prefix: prefix.0,
                tag: tag.0,
                algorithm: algorithm.0,
                state: state.0.map(Into::into),
                expiring_before: expiring_before.0,
            },
            sort: sort.0.map(Into::into).unwrap_or_default(),
            page: page(cursor.0, limit.0),
        };
        let result = app
            .list_keys(&caller, &rid, &tenant, &query)
            .await
            .map_err(fail(&rid))?;
        Ok(KeyPageResponse::Ok(Json(result.into())))
    }

    /// Creates a key in the partition's HSM (attributes checked against the algorithm first)
    /// with its metadata. With `activation_at` in the future it is created pre-active (blocked).
    #[oai(
        path = "/tenants/:tenant/keys",
        method = "post",
        operation_id = "create_key"
    )]
    async fn create(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        body: Json<CreateKeyRequest>,
    ) -> Result<KeyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let new = new_key(body.0, &rid)?;
        let detail = app
            .create_key(&caller, &rid, &tenant, new)
            .await
            .map_err(fail(&rid))?;
        Ok(KeyResponse::Created(Json(detail.into())))
    }

    /// One key: the alias (current version), a version's own label, or an unmanaged key; with
    /// versions and history.
    #[oai(
        path = "/tenants/:tenant/keys/:label",
        method = "get",
        operation_id = "get_key"
    )]
    async fn get(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
    ) -> Result<KeyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let detail = app
            .get_key(&caller, &rid, &tenant, &label.0)
            .await
            .map_err(fail(&rid))?;
        Ok(KeyResponse::Ok(Json(detail.into())))
    }

    /// Changes owner, description, tags, expiry or rotation schedule. An unmanaged key is
    /// adopted (given metadata) by it.
    #[oai(
        path = "/tenants/:tenant/keys/:label",
        method = "patch",
        operation_id = "update_key_metadata"
    )]
    async fn update(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
        body: Json<UpdateKeyRequest>,
    ) -> Result<KeyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let detail = app
            .update_key_metadata(&caller, &rid, &tenant, &label.0, metadata_update(body.0))
            .await
            .map_err(fail(&rid))?;
        Ok(KeyResponse::Ok(Json(detail.into())))
    }

    /// Moves the key (or one version) through its lifecycle. Only SP 800-57 transitions are
    /// allowed: anything else is 409 with the stable code (`illegal_transition`,
    /// `not_destroyable`, `waiting_period_too_short`, ...).
    #[oai(
        path = "/tenants/:tenant/keys/:label/lifecycle",
        method = "post",
        operation_id = "change_key_state"
    )]
    async fn lifecycle(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
        body: Json<LifecycleRequest>,
    ) -> Result<KeyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let change = state_change(body.0, &rid)?;
        let asked = change.version;
        let detail = app
            .change_key_state(&caller, &rid, &tenant, &label.0, change)
            .await
            .map_err(fail(&rid))?;
        // A version with a waiting lifecycle request refuses further changes, so one found
        // now was made by this call.
        let version = asked.or(detail.summary.current_version);
        let waiting = detail.pending.iter().any(|p| {
            Some(p.version) == version && matches!(p.change, PendingChange::Lifecycle { .. })
        });
        let body = Json(detail.into());
        Ok(if waiting {
            KeyResponse::Accepted(body)
        } else {
            KeyResponse::Ok(body)
        })
    }

    /// Rotates the key: a new HSM key `<label>_v<N>` with the same spec, attributes and policy
    /// becomes current; replaced versions are deactivated after the grace period.
    #[oai(
        path = "/tenants/:tenant/keys/:label/rotate",
        method = "post",
        operation_id = "rotate_key"
    )]
    async fn rotate(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
    ) -> Result<KeyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let detail = app
            .rotate_key(&caller, &rid, &tenant, &label.0)
            .await
            .map_err(fail(&rid))?;
        Ok(KeyResponse::Ok(Json(detail.into())))
    }

    /// The public key as PEM (every asymmetric key) or JWK (EC P-256/384/521, secp256k1, RSA,
    /// Ed25519). Symmetric keys have none (409 `no_public_key`).
    #[oai(
        path = "/tenants/:tenant/keys/:label/public-key",
        method = "get",
        operation_id = "export_public_key"
    )]
    async fn public_key(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
        /// `pem` (default) or `jwk`.
        format: Query<Option<PublicKeyFormatName>>,
        /// Version (default: the current one).
        version: Query<Option<u32>>,
    ) -> Result<PublicKeyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let format = match format.0 {
            None | Some(PublicKeyFormatName::Pem) => PublicKeyFormat::Pem,
            Some(PublicKeyFormatName::Jwk) => PublicKeyFormat::Jwk,
        };
        let export = app
            .export_public_key(&caller, &rid, &tenant, &label.0, version.0, format)
            .await
            .map_err(fail(&rid))?;
        Ok(PublicKeyResponse::Ok(Json(export.into())))
    }

    /// The tenant's key settings (destruction waiting period).
    #[oai(
        path = "/tenants/:tenant/key-settings",
        method = "get",
        operation_id = "get_key_settings"
    )]
    async fn settings(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<KeySettingsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let settings = app
            .get_tenant_key_settings(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(KeySettingsResponse::Ok(Json(settings.into())))
    }

    /// Saves the tenant's key settings (tenant administrators).
    #[oai(
        path = "/tenants/:tenant/key-settings",
        method = "put",
        operation_id = "update_key_settings"
    )]
    async fn update_settings(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        body: Json<KeySettingsRequest>,
    ) -> Result<KeySettingsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let waiting_period = WaitingPeriod::from_secs(body.0.destruction_waiting_period_secs)
            .map_err(|error| invalid(&rid, error.code(), error.to_string()))?;
        let settings = app
            .update_tenant_key_settings(
                &caller,
                &rid,
                &tenant,
                TenantKeySettings { waiting_period },
            )
            .await
            .map_err(fail(&rid))?;
        Ok(KeySettingsResponse::Ok(Json(settings.into())))
    }
}
