//! Key use cases: the inventory, creation, metadata, lifecycle, rotation, public-key export and
//! the tenant's key settings. Every one goes through `permit` (another tenant's keys are "not
//! found"); changes run audited and act on the HSM with the caller's own credentials when they
//! keep some, else the partition's.
//!
//! Audit events name the key, the operation and (for lifecycle changes) the event, version and
//! the reason given — never key material, which never passes through here.

use std::sync::Arc;

use km_domain::{Action, TenantId};

use super::page::cursor_for;
use super::{App, AppError, Gate, Page, PageRequest, RequestId};
use crate::identity::Caller;
use crate::keys::{
    KeyDetail, KeyError, KeyFilter, KeyMetadataUpdate, KeyService, KeyServiceConfig, KeySort,
    KeySummary, NewKey, PublicKeyExport, PublicKeyFormat, SortKey, StateChange, TenantKeySettings,
};
use crate::{Hsm, HsmError};

/// What [`App::list_keys`] is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyQuery {
    /// Which rows.
    pub filter: KeyFilter,
    /// In which order.
    pub sort: KeySort,
    /// Which page (limit 1–200, default 50; the cursor is only valid for the same sort).
    pub page: PageRequest,
}

impl From<KeyError> for AppError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::NotFound => Self::NotFound { what: "key" },
            KeyError::Invalid { reason, message } => Self::InvalidInput { reason, message },
            KeyError::Conflict { reason, message } => Self::Conflict { reason, message },
            KeyError::Spec(error) => Self::invalid(error.code(), error.to_string()),
            KeyError::Policy(error) => Self::invalid(error.code(), error.to_string()),
            KeyError::Transition(error) => Self::conflict(error.code(), error.to_string()),
            KeyError::Hsm(error) => from_tenant_hsm(error),
            KeyError::Partition(error) => error.into(),
            KeyError::Store(error) => error.into(),
            KeyError::Audit(error) => error.into(),
        }
    }
}

/// An error of a tenant partition's HSM: refusals are conflicts with the HSM's reason;
/// connection failures are explained like the partition pages do.
fn from_tenant_hsm(error: HsmError) -> AppError {
    match error {
        HsmError::NotFound(_) => AppError::NotFound { what: "key" },
        HsmError::AlreadyExists(message) => AppError::conflict("key_exists", message),
        HsmError::Refused(message) => AppError::conflict("hsm_refused", message),
        error @ (HsmError::Unauthorized(_) | HsmError::Unavailable(_) | HsmError::Internal(_)) => {
            AppError::PartitionConnection {
                message: crate::partitions::explain_connection_failure(&error),
            }
        }
        error @ HsmError::Integrity(_) => {
            AppError::internal("tenant HSM integrity failure", &error)
        }
    }
}

/// The opaque cursor after `key` in `sort`.
fn cursor(sort: KeySort, key: &SortKey) -> String {
    cursor_for(&format!("{}|{}", sort.as_str(), key.encode()))
}

/// The position a cursor names, which must have been issued for the same sort.
fn position(query: &KeyQuery) -> Result<Option<SortKey>, AppError> {
    let Some(text) = query.page.after()? else {
        return Ok(None);
    };
    text.split_once('|')
        .filter(|(sort, _)| *sort == query.sort.as_str())
        .and_then(|(_, key)| SortKey::decode(key))
        .map(Some)
        .ok_or_else(|| {
            AppError::invalid(
                "invalid_cursor",
                "the cursor is not one this API issued for this sort order",
            )
        })
}

impl App {
    /// The app with the key service tuned by `config` (inventory TTL, recheck age, concurrency).
    /// Call at start-up, before any key query: the inventory caches start empty.
    pub fn with_key_config(self, config: KeyServiceConfig) -> Self {
        let mut inner = super::AppInner::clone(&self.inner);
        inner.keys = KeyService::new(
            inner.store.clone(),
            inner.partitions.clone(),
            inner.clock.clone(),
            inner.audit.clone(),
            config,
        );
        Self {
            inner: std::sync::Arc::new(inner),
        }
    }

    /// The key service (for the scheduler's `run_due`; use cases go through `App`).
    pub fn keys(&self) -> &KeyService {
        &self.inner.keys
    }

    /// The HSM client to act on `tenant` with: the caller's own credentials, if kept.
    pub(super) async fn tenant_hsm(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<Arc<dyn Hsm>, AppError> {
        Ok(self
            .inner
            .partitions
            .hsm_for(tenant, Some(&caller.principal().subject))
            .await?)
    }

    /// One page of the partition's keys — managed or not — from the tenant's inventory cache
    /// (`list_keys`).
    pub async fn list_keys(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        query: &KeyQuery,
    ) -> Result<Page<KeySummary>, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ListKeys)
            .await?;
        let limit = query.page.limit()?;
        let after = position(query)?;
        let (rows, next) = self
            .inner
            .keys
            .list(tenant, &query.filter, query.sort, after.as_ref(), limit)
            .await?;
        Ok(Page {
            items: rows.iter().map(|row| KeySummary::clone(row)).collect(),
            next_cursor: next.map(|key| cursor(query.sort, &key)),
        })
    }

    /// One key with versions, history and live HSM facts (`read_key`).
    pub async fn get_key(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        label: &str,
    ) -> Result<KeyDetail, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadKey)
            .await?;
        let hsm = self.tenant_hsm(caller, tenant).await?;
        Ok(self.inner.keys.get(&*hsm, tenant, label).await?)
    }

    /// Creates a key in the HSM with its metadata (`create_key`, audited).
    pub async fn create_key(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        new: NewKey,
    ) -> Result<KeyDetail, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, Some(tenant), Action::CreateKey)
            .await?;
        let draft = Self::draft(&grant, rid, "create_key", Some(&new.label))
            .with_detail("spec", new.spec.to_string())
            .with_detail(
                "pre_active",
                new.activation_at
                    .is_some_and(|at| at > self.inner.clock.now())
                    .to_string(),
            );
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            let hsm = self.tenant_hsm(caller, tenant).await?;
            Ok(self.inner.keys.create(&*hsm, tenant, new, &actor).await?)
        })
        .await
    }

    /// Changes owner, description, tags, expiry or rotation schedule; adopts an unmanaged key
    /// (`update_key_metadata`, audited).
    pub async fn update_key_metadata(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        label: &str,
        update: KeyMetadataUpdate,
    ) -> Result<KeyDetail, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::UpdateKeyMetadata,
            )
            .await?;
        let changed: Vec<&str> = [
            ("owner", update.owner.is_some()),
            ("description", update.description.is_some()),
            ("tags", update.tags.is_some()),
            ("expires_at", update.expires_at.is_some()),
            ("rotation", update.rotation.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect();
        let draft = Self::draft(&grant, rid, "update_key_metadata", Some(label))
            .with_detail("fields", changed.join(","));
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            let hsm = self.tenant_hsm(caller, tenant).await?;
            Ok(self
                .inner
                .keys
                .update_metadata(&*hsm, tenant, label, update, &actor)
                .await?)
        })
        .await
    }

    /// Moves a key (or one of its versions) through its lifecycle; the permission depends on the
    /// event (`change_key_lifecycle`, `mark_key_compromised`, `schedule_key_destruction`,
    /// `cancel_key_destruction`; audited). An illegal move is a conflict with the domain's code.
    pub async fn change_key_state(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        label: &str,
        change: StateChange,
    ) -> Result<KeyDetail, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, Some(tenant), change.event.action())
            .await?;
        let mut draft = Self::draft(&grant, rid, "change_key_state", Some(label))
            .with_detail("event", change.event.as_str());
        if let Some(version) = change.version {
            draft = draft.with_detail("version", version.to_string());
        }
        if let Some(reason) = &change.reason {
            let reason: String = reason.chars().take(crate::keys::MAX_REASON_LEN).collect();
            draft = draft.with_detail("reason", reason);
        }
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            let hsm = self.tenant_hsm(caller, tenant).await?;
            Ok(self
                .inner
                .keys
                .change_state(&*hsm, tenant, label, change, &actor)
                .await?)
        })
        .await
    }

    /// Rotates a key: a new version `<label>_v<N>` becomes current (`rotate_key`, audited).
    pub async fn rotate_key(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        label: &str,
    ) -> Result<KeyDetail, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, Some(tenant), Action::RotateKey)
            .await?;
        let draft = Self::draft(&grant, rid, "rotate_key", Some(label));
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            let hsm = self.tenant_hsm(caller, tenant).await?;
            Ok(self.inner.keys.rotate(&*hsm, tenant, label, &actor).await?)
        })
        .await
    }

    /// The public key of a key's version as PEM or JWK (`export_public_key`).
    pub async fn export_public_key(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        label: &str,
        version: Option<u32>,
        format: PublicKeyFormat,
    ) -> Result<PublicKeyExport, AppError> {
        self.permit(
            caller,
            rid,
            Gate::Full,
            Some(tenant),
            Action::ExportPublicKey,
        )
        .await?;
        let hsm = self.tenant_hsm(caller, tenant).await?;
        Ok(self
            .inner
            .keys
            .public_key(&*hsm, tenant, label, version, format)
            .await?)
    }

    /// The tenant's key settings (`read_settings`).
    pub async fn get_tenant_key_settings(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<TenantKeySettings, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadSettings)
            .await?;
        Ok(self.inner.keys.settings(tenant).await?)
    }

    /// Saves the tenant's key settings (`update_settings`, audited).
    pub async fn update_tenant_key_settings(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        settings: TenantKeySettings,
    ) -> Result<TenantKeySettings, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::UpdateSettings,
            )
            .await?;
        let draft = Self::draft(
            &grant,
            rid,
            "update_tenant_key_settings",
            Some(tenant.as_str()),
        )
        .with_detail(
            "destruction_waiting_period_secs",
            settings.waiting_period.as_secs().to_string(),
        );
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            Ok(self
                .inner
                .keys
                .update_settings(tenant, settings, &actor)
                .await?)
        })
        .await
    }
}
