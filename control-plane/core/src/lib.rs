//! km-core — keymanager's use cases and the ports they need.
//!
//! Owns: the ports (traits) through which the control plane reaches the outside world — the
//! [`Hsm`] port (one instance per HSM partition), the [`SecretVault`] (where partition credentials
//! are kept) and the [`Clock`] — and the services built on them:
//! the [`StateStore`] (sealed, versioned records kept as HSM data objects on the management
//! partition, with lock objects and a read cache), [`Installation`] (first-start provisioning of
//! the management partition), [`Readiness`] and the [`AuditLog`] (hash-chained events on the HSM,
//! checkpoints signed by an HSM key, fail-closed), the runtime [`Settings`], the [`KeyService`]
//! (key inventory with its per-tenant cache, creation, lifecycle, rotation, scheduled work,
//! public-key export), the [`NotificationService`] (signed expiry-notification webhooks), and
//! the [`App`]: the
//! one application layer through which the REST API and the console perform every use case (gate,
//! `authorize`, audited change).
//!
//! Must not depend on: HTTP servers or clients, the TSB SDK, WASM runtimes or cloud SDKs. Adapters
//! (km-hsm-tsb, km-vault-*, ...) implement the ports; only the `keymanager` binary wires them.

pub mod app;
pub mod audit;
mod clock;
mod hsm;
pub mod identity;
mod installation;
pub mod keys;
pub mod notifications;
pub mod partitions;
mod readiness;
pub mod scheduler;
pub mod settings;
pub mod sso;
pub mod state;
mod vault;

pub use app::{
    App, AppError, AppParts, AuditFilter, AuditVerifySummary, CompleteSetup,
    DASHBOARD_HORIZON_SECS, Dashboard, KeyQuery, LoginOptions, Me, Page, PageRequest, RequestId,
    SetupStatus, SsoSettingsView, UserUpdate,
};
pub use audit::{
    AuditConfig, AuditError, AuditExport, AuditLog, AuditSink, AuditedAction, AuditedError,
    JsonLinesSink, NoSink, SignatureVerifier, VerifyFailure, VerifyOptions, VerifyReport,
    verify_export,
};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use hsm::{
    DataObjectName, Hsm, HsmChange, HsmError, HsmKeyInfo, HsmRequest, HsmRequestStatus,
    InvalidDataObjectName, KeystoreStatistics, NewHsmKey, OnboardedApprover, SealedBlob,
    ServiceInfo,
};
pub use identity::{
    Identity, IdentityConfig, IdentityError, IdentityPorts, SecondFactorPolicy, SecretText,
};
pub use installation::{Installation, InstallationError, InstallationRecord};
pub use keys::KeyAttestation;
pub use keys::{
    ApproverDecision, ApproverProgress, InventoryOverview, KeyDetail, KeyError, KeyFilter,
    KeyMetadataUpdate, KeyService, KeyServiceConfig, KeySort, KeySummary, NewKey, PendingChange,
    PendingRequest, PolicyUpdate, PublicKeyExport, PublicKeyFormat, RequestProgress, StateChange,
    TenantKeySettings, UpcomingEvent, UpcomingKind,
};
pub use notifications::{
    DeliveryReport, ExpiryNoticeJob, NoWebhookSender, NotificationConfig, NotificationError,
    NotificationService, NotificationSettings, NotificationUpdate, RotatedSecret,
    SavedNotifications, WebhookError, WebhookSender,
};
pub use partitions::{
    ApiKeyCredentials, ConnectionReport, NewPartition, PartitionConnector, PartitionCredentials,
    PartitionError, PartitionRecord, PartitionTarget, PartitionUpdate, Partitions, VaultSet,
};
pub use readiness::{Readiness, ReadinessReport};
pub use scheduler::{
    JobError, JobReport, LeaderLease, Leadership, LeaseConfig, ScheduledJob, Scheduler,
    SchedulerConfig, TickReport,
};
pub use settings::{
    EffectiveSettings, InvalidSetting, SecondFactorSetting, Settings, SettingsError,
    SettingsService,
};
pub use sso::{
    AuthorizationStart, ExternalIdentity, PendingLogin, SsoConfig, SsoError, SsoProtocol,
    SsoProviderConfig, SsoProviderKind, SsoProviderSettings, SsoService,
};
pub use state::{LockRetry, Sealing, StateStore, StateStoreConfig, StoreError, Versioned};
pub use vault::{
    CredentialRef, InvalidSecretName, SecretName, SecretValue, SecretVault, VaultError, VaultKind,
};
