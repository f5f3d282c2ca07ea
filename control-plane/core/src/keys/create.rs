//! Creating keys and their rotated versions in the HSM, with the metadata record beside them.
//! A key that reaches the HSM but not the record is deleted again; if even that fails, the
//! caller is told exactly which key is left unmanaged (it is listed, and adopted by any later
//! write to it), so nothing is left untracked silently.

use km_domain::{KeyAttributes, KeySpec, KeyState, SkaPolicy, TenantId, validate_attributes};

use super::record::{
    DEFAULT_ROTATION_GRACE_SECS, HistoryEntry, KeyRecord, KeyVersion, MAX_OWNER_LEN,
    RotationPolicy, StoredSpec, clean_tags, clean_text, validate_new_label, validate_times,
    version_label,
};
use super::{KeyDetail, KeyError, KeyService, MAX_DESCRIPTION_LEN, Target};
use crate::{Hsm, HsmChange, HsmError, NewHsmKey};

/// A key to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The label (alias): 1–100 of `[A-Za-z0-9._-]`, not `kms.`-prefixed, not ending in
    /// `_v<N>`.
    pub label: String,
    /// Algorithm with size or curve.
    pub spec: KeySpec,
    /// Usage and protection flags (checked against the spec by km-domain).
    pub attributes: KeyAttributes,
    /// The SKA policy (the empty policy unless approvals are wanted). Its `keyStatus` must not
    /// be blocked: ask for a pre-active key with `activation_at` instead.
    pub policy: SkaPolicy,
    /// When the key becomes usable; in the future, the key is created pre-active (blocked).
    pub activation_at: Option<u64>,
    /// End of its crypto-period.
    pub expires_at: Option<u64>,
    /// Who is responsible.
    pub owner: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Automatic rotation.
    pub rotation: Option<RotationPolicy>,
}

impl KeyService {
    /// Creates a key in the HSM and records it: `pre-active` (blocked at once) when
    /// `activation_at` lies in the future, `active` otherwise.
    pub async fn create(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        new: NewKey,
        actor: &str,
    ) -> Result<KeyDetail, KeyError> {
        let now = self.now();
        let (request, record) = prepare(tenant, new, now, actor)?;
        if self.read_record(tenant, &record.label).await?.is_some() {
            return Err(exists(&record.label));
        }
        let mut info = hsm
            .create_key(&request)
            .await
            .map_err(|error| match error {
                HsmError::AlreadyExists(_) => exists(&record.label),
                other => other.into(),
            })?;
        if record.state() == KeyState::PreActive {
            let blocked = match hsm.block_key(&record.label).await {
                Ok(HsmChange::Applied) => Ok(()),
                Ok(HsmChange::Pending { request_id }) => {
                    let _ = hsm.cancel_request(&request_id).await;
                    Err(KeyError::conflict(
                        "approval_required",
                        "the new key's block rule asks for approvals, so it cannot start pre-active; create it without an activation date, or give it the block rule later",
                    ))
                }
                Err(error) => Err(error.into()),
            };
            if let Err(error) = blocked {
                self.undo_create(hsm, &record.label, &error.to_string())
                    .await?;
                return Err(error);
            }
            info.blocked = true;
        }
        let new_target = Target {
            record: record.clone(),
            revision: None,
            version: 1,
        };
        if let Err(error) = self.save(&new_target, record.clone(), actor).await {
            self.undo_create(hsm, &record.label, &error.to_string())
                .await?;
            return Err(error);
        }
        self.inventory_changed(
            tenant,
            Self::row_of(&record, Some(&info)).checked(self.now()),
        );
        Ok(KeyDetail::of(&record, Some(&info)))
    }

    /// Deletes a key whose creation could not be completed. If that fails too, the key stays in
    /// the HSM unmanaged, and the error says so.
    async fn undo_create(&self, hsm: &dyn Hsm, label: &str, cause: &str) -> Result<(), KeyError> {
        match hsm.delete_key(label).await {
            Ok(()) | Err(HsmError::NotFound(_)) => Ok(()),
            Err(error) => {
                tracing::error!(label, %error, cause, "a created key could not be recorded nor deleted");
                Err(KeyError::conflict(
                    "key_untracked",
                    format!(
                        "key {label} was created in the HSM, but its creation could not be completed ({cause}) \
                         and the key could not be deleted again ({error}); it is listed as unmanaged: \
                         update its metadata to adopt it, or delete it in the HSM"
                    ),
                ))
            }
        }
    }

    /// Rotates the key `label`: a new HSM key `<base>_v<N+1>` with the same spec, attributes and
    /// policy becomes the current version; the versions it replaces are deactivated by the
    /// scheduler after the grace period.
    pub async fn rotate(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
        actor: &str,
    ) -> Result<KeyDetail, KeyError> {
        let target = self.target(hsm, tenant, label, None, actor).await?;
        let record = self.rotate_target(hsm, &target, actor, self.now()).await?;
        self.publish(hsm, tenant, &record).await
    }

    /// Rotation of a located key at `now` (also the scheduler's).
    pub(super) async fn rotate_target(
        &self,
        hsm: &dyn Hsm,
        target: &Target,
        actor: &str,
        now: u64,
    ) -> Result<KeyRecord, KeyError> {
        let record = &target.record;
        let current = record.current().ok_or(KeyError::NotFound)?;
        if current.state != KeyState::Active {
            return Err(KeyError::conflict(
                "key_not_active",
                format!(
                    "only an active key can be rotated; {} is {}",
                    record.label, current.state
                ),
            ));
        }
        let spec = record.spec.to_spec().map_err(|error| {
            KeyError::conflict(
                "rotation_unsupported",
                format!("{} cannot be rotated: {error}", record.label),
            )
        })?;
        let policy = self.policy_of(hsm, &current.label).await?;
        let number = record.latest_number() + 1;
        let label = version_label(&record.label, number);
        let request = NewHsmKey {
            label: label.clone(),
            spec,
            attributes: record.attributes,
            policy,
        };
        hsm.create_key(&request).await.map_err(|error| match error {
            HsmError::AlreadyExists(_) => KeyError::conflict(
                "version_label_taken",
                format!("the label {label} of the next version is taken by another key in the partition"),
            ),
            other => other.into(),
        })?;
        let next = rotated(record, number, label.clone(), actor, now);
        match self.save(target, next, actor).await {
            Ok(saved) => Ok(saved.value),
            Err(error) => {
                self.undo_create(hsm, &label, &error.to_string()).await?;
                Err(error)
            }
        }
    }

    /// The SKA policy to give a new version: the current version's, unblocked.
    async fn policy_of(&self, hsm: &dyn Hsm, label: &str) -> Result<SkaPolicy, KeyError> {
        let info = hsm.key_info(label).await?.ok_or(KeyError::NotFound)?;
        let mut policy = info.policy.ok_or_else(|| {
            KeyError::conflict(
                "plain_key",
                format!("{label} has no SKA policy; keymanager rotates SKA keys only"),
            )
        })?;
        policy.key_status.blocked = false;
        Ok(policy)
    }
}

fn exists(label: &str) -> KeyError {
    KeyError::conflict(
        "key_exists",
        format!("a key labelled {label} exists already in the partition; choose another label"),
    )
}

/// Validates a new key (km-domain rules for spec, attributes and policy; label, times and
/// metadata rules) and returns the HSM request and the record to keep.
fn prepare(
    tenant: &TenantId,
    new: NewKey,
    now: u64,
    actor: &str,
) -> Result<(NewHsmKey, KeyRecord), KeyError> {
    validate_new_label(&new.label)?;
    validate_attributes(&new.spec, &new.attributes, true)?;
    new.policy.validate()?;
    if new.policy.key_status.blocked {
        return Err(KeyError::invalid(
            "blocked_policy",
            "a key cannot be created blocked through its policy; give activation_at in the future for a pre-active key",
        ));
    }
    validate_times(now, new.activation_at, new.expires_at)?;
    if let Some(rotation) = &new.rotation {
        rotation.validate()?;
    }
    let pre_active = new.activation_at.is_some_and(|at| at > now);
    let state = if pre_active {
        KeyState::PreActive
    } else {
        KeyState::Active
    };
    let record = KeyRecord {
        tenant: tenant.clone(),
        label: new.label.clone(),
        spec: StoredSpec::of(&new.spec),
        attributes: new.attributes,
        owner: clean_text("owner", new.owner, MAX_OWNER_LEN)?,
        description: clean_text("description", new.description, MAX_DESCRIPTION_LEN)?,
        tags: clean_tags(new.tags)?,
        activation_at: new.activation_at.filter(|_| pre_active),
        expires_at: new.expires_at,
        rotation: new.rotation,
        versions: vec![KeyVersion {
            number: 1,
            label: new.label.clone(),
            state,
            created_at: now,
            deactivate_after: None,
            schedule: None,
            destroyed_at: None,
        }],
        current_version: 1,
        created_at: now,
        created_by: actor.to_owned(),
        adopted: false,
        history: vec![HistoryEntry {
            at: now,
            actor: actor.to_owned(),
            version: 1,
            event: "create".to_owned(),
            from: None,
            to: state,
            reason: None,
        }],
        pending: Vec::new(),
    };
    let request = NewHsmKey {
        label: new.label,
        spec: new.spec,
        attributes: new.attributes,
        policy: new.policy,
    };
    Ok((request, record))
}

/// `record` after rotation `number`: the new version is current and active; the usable versions
/// it replaces get their deactivation time (now plus the grace period).
fn rotated(record: &KeyRecord, number: u32, label: String, actor: &str, now: u64) -> KeyRecord {
    let grace = record
        .rotation
        .map_or(DEFAULT_ROTATION_GRACE_SECS, |r| r.grace_secs);
    let mut next = record.clone();
    for version in &mut next.versions {
        if matches!(version.state, KeyState::Active | KeyState::Suspended)
            && version.deactivate_after.is_none()
        {
            version.deactivate_after = Some(now.saturating_add(grace));
        }
    }
    next.versions.push(KeyVersion {
        number,
        label,
        state: KeyState::Active,
        created_at: now,
        deactivate_after: None,
        schedule: None,
        destroyed_at: None,
    });
    next.current_version = number;
    next.remember(HistoryEntry {
        at: now,
        actor: actor.to_owned(),
        version: number,
        event: "rotate".to_owned(),
        from: None,
        to: KeyState::Active,
        reason: None,
    });
    next
}
