//! Lifecycle changes: the domain's [`transition`] decides, this module applies its [`TsbEffect`]
//! to the HSM and writes the record, in the order that keeps the HSM never more permissive than
//! the record (see the module docs of `keys`).

use km_domain::{
    Action, KeyState, LifecycleEvent, SkaAction, SkaRule, TenantId, Transition, TransitionContext,
    TsbEffect, WaitingPeriod, transition,
};

use super::record::{
    HistoryEntry, KeyRecord, KeyVersion, MAX_REASON_LEN, PendingChange, PendingRequest, clean_text,
};
use super::summary::reported_spec;
use super::{KeyDetail, KeyError, KeyService, Target};
use crate::{Hsm, HsmChange, HsmError, HsmKeyInfo};

/// A lifecycle change a person may ask for (destruction itself is the scheduler's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyEvent {
    /// pre-active → active.
    Activate,
    /// active → suspended.
    Suspend,
    /// suspended → active.
    Reactivate,
    /// active/suspended → deactivated (may only process, no longer protect).
    Deactivate,
    /// → compromised: blocked for good, its unblock rule frozen.
    Compromise,
    /// pre-active/deactivated/compromised → destroy-scheduled, due at `at` (default: now plus
    /// the tenant's waiting period; never earlier).
    ScheduleDestruction {
        /// When the key becomes due for destruction.
        at: Option<u64>,
    },
    /// destroy-scheduled → back to the state it was scheduled from.
    CancelDestruction,
}

impl KeyEvent {
    /// Stable name, as the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyEvent::Activate => "activate",
            KeyEvent::Suspend => "suspend",
            KeyEvent::Reactivate => "reactivate",
            KeyEvent::Deactivate => "deactivate",
            KeyEvent::Compromise => "compromise",
            KeyEvent::ScheduleDestruction { .. } => "schedule_destruction",
            KeyEvent::CancelDestruction => "cancel_destruction",
        }
    }

    /// The permission the event needs.
    pub const fn action(self) -> Action {
        match self {
            KeyEvent::Activate
            | KeyEvent::Suspend
            | KeyEvent::Reactivate
            | KeyEvent::Deactivate => Action::ChangeKeyLifecycle,
            KeyEvent::Compromise => Action::MarkKeyCompromised,
            KeyEvent::ScheduleDestruction { .. } => Action::ScheduleKeyDestruction,
            KeyEvent::CancelDestruction => Action::CancelKeyDestruction,
        }
    }

    /// The domain event at `now` with the tenant's waiting period.
    fn domain(self, now: u64, waiting: WaitingPeriod) -> LifecycleEvent {
        match self {
            KeyEvent::Activate => LifecycleEvent::Activate,
            KeyEvent::Suspend => LifecycleEvent::Suspend,
            KeyEvent::Reactivate => LifecycleEvent::Resume,
            KeyEvent::Deactivate => LifecycleEvent::Deactivate,
            KeyEvent::Compromise => LifecycleEvent::MarkCompromised,
            KeyEvent::ScheduleDestruction { at } => LifecycleEvent::ScheduleDestruction {
                at: at.unwrap_or_else(|| now.saturating_add(waiting.as_secs())),
            },
            KeyEvent::CancelDestruction => LifecycleEvent::CancelDestruction,
        }
    }
}

/// A lifecycle change as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// What should happen.
    pub event: KeyEvent,
    /// Why (kept in the key's history and the audit log; at most 256 characters).
    pub reason: Option<String>,
    /// The version to change; `None` = the one the alias points at.
    pub version: Option<u32>,
}

/// The record of an HSM key keymanager did not manage yet: one version, `active` or
/// `suspended` after its blocked flag.
pub(crate) fn adopted(tenant: &TenantId, info: &HsmKeyInfo, now: u64, actor: &str) -> KeyRecord {
    let state = if info.blocked {
        KeyState::Suspended
    } else {
        KeyState::Active
    };
    KeyRecord {
        tenant: tenant.clone(),
        label: info.label.clone(),
        spec: reported_spec(info),
        attributes: info.attributes,
        owner: None,
        description: None,
        tags: Vec::new(),
        activation_at: None,
        expires_at: None,
        rotation: None,
        versions: vec![KeyVersion {
            number: 1,
            label: info.label.clone(),
            state,
            created_at: now,
            deactivate_after: None,
            schedule: None,
            destroyed_at: None,
        }],
        current_version: 1,
        created_at: now,
        created_by: actor.to_owned(),
        adopted: true,
        history: vec![HistoryEntry {
            at: now,
            actor: actor.to_owned(),
            version: 1,
            event: "adopt".to_owned(),
            from: None,
            to: state,
            reason: None,
        }],
        pending: Vec::new(),
    }
}

/// One change to decide and apply.
pub(super) struct Step<'a> {
    /// The domain event.
    pub(super) event: LifecycleEvent,
    /// Why, for the history.
    pub(super) reason: Option<String>,
    /// Who.
    pub(super) actor: &'a str,
    /// When.
    pub(super) now: u64,
}

impl KeyService {
    /// Applies a lifecycle event to a key (adopting an unmanaged one).
    pub async fn change_state(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
        change: StateChange,
        actor: &str,
    ) -> Result<KeyDetail, KeyError> {
        let reason = clean_text("reason", change.reason, MAX_REASON_LEN)?;
        let now = self.now();
        let target = self
            .target(hsm, tenant, label, change.version, actor)
            .await?;
        let waiting = self.settings(tenant).await?.waiting_period;
        let step = Step {
            event: change.event.domain(now, waiting),
            reason,
            actor,
            now,
        };
        let record = self.apply_step(hsm, tenant, &target, step, waiting).await?;
        self.publish(hsm, tenant, &record).await
    }

    /// Decides the step with the domain and applies it to HSM and record. When the HSM holds
    /// the block or unblock as an approval request, the version keeps its state and the record
    /// remembers the request (see `requests`); a version with such a request refuses further
    /// lifecycle changes until it is settled or cancelled.
    pub(super) async fn apply_step(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        target: &Target,
        step: Step<'_>,
        waiting: WaitingPeriod,
    ) -> Result<KeyRecord, KeyError> {
        let version = target
            .record
            .version(target.version)
            .ok_or(KeyError::NotFound)?;
        if let Some(pending) = target.record.pending_lifecycle(target.version) {
            return Err(KeyError::conflict(
                "approval_pending",
                format!(
                    "a {} of {} waits for approvals (request {}); cancel that request or wait until it is settled",
                    pending.change.name(),
                    version.label,
                    pending.request_id
                ),
            ));
        }
        let context = TransitionContext {
            now: step.now,
            destroyable: target.record.attributes.destroyable,
            waiting_period: waiting,
            schedule: version.schedule,
        };
        let decided = transition(version.state, &step.event, &context)?;
        let label = version.label.clone();
        let from = version.state;
        let mut next = target.record.clone();
        if decided.tsb == TsbEffect::Unblock {
            apply_to_record(
                &mut next,
                target.version,
                &step,
                from,
                decided,
                step.reason.clone(),
            );
            return self
                .save_then_unblock(hsm, target, next, &label, &step)
                .await;
        }
        match restrict(hsm, &label, decided.tsb).await? {
            Restricted::Applied => {
                apply_to_record(
                    &mut next,
                    target.version,
                    &step,
                    from,
                    decided,
                    step.reason.clone(),
                );
            }
            Restricted::BlockPending(request_id) => {
                request(
                    &mut next,
                    target.version,
                    &step,
                    from,
                    request_id,
                    SkaAction::Block,
                );
            }
            Restricted::FreezePending(request_id) => {
                apply_to_record(
                    &mut next,
                    target.version,
                    &step,
                    from,
                    decided,
                    step.reason.clone(),
                );
                next.pending.push(PendingRequest {
                    request_id,
                    version: target.version,
                    change: PendingChange::FreezeUnblock,
                    governed_by: SkaAction::Modify,
                    requested_by: step.actor.to_owned(),
                    requested_at: step.now,
                    reason: step.reason.clone(),
                });
            }
        }
        match self.save(target, next, step.actor).await {
            Ok(saved) => Ok(saved.value),
            Err(error) => {
                self.reconcile(hsm, tenant, &target.record.label, target.version)
                    .await;
                Err(error)
            }
        }
    }

    /// An unblock: the record first (so a failed unblock leaves a blocked key behind a record
    /// that is reverted), then the HSM. An unblock waiting for approvals reverts the record too,
    /// remembering the request.
    async fn save_then_unblock(
        &self,
        hsm: &dyn Hsm,
        target: &Target,
        next: KeyRecord,
        label: &str,
        step: &Step<'_>,
    ) -> Result<KeyRecord, KeyError> {
        let saved = self.save(target, next, step.actor).await?;
        let back = Target {
            revision: Some(saved.revision),
            ..target.clone()
        };
        match hsm.unblock_key(label).await {
            Ok(HsmChange::Applied) => Ok(saved.value),
            Ok(HsmChange::Pending { request_id }) => {
                let mut waiting = target.record.clone();
                let from = target
                    .record
                    .version(target.version)
                    .map_or(KeyState::Destroyed, |v| v.state);
                request(
                    &mut waiting,
                    target.version,
                    step,
                    from,
                    request_id,
                    SkaAction::Unblock,
                );
                Ok(self.save(&back, waiting, step.actor).await?.value)
            }
            Err(error) => {
                if let Err(revert) = self.save(&back, target.record.clone(), step.actor).await {
                    tracing::error!(label, %revert,
                        "an unblock failed and the record could not be reverted; the key stays blocked");
                }
                Err(error.into())
            }
        }
    }

    /// After a failed record write that followed a block: if the record (changed by someone
    /// else meanwhile) says the version is active, unblock it again so HSM and record agree.
    async fn reconcile(&self, hsm: &dyn Hsm, tenant: &TenantId, alias: &str, number: u32) {
        let Ok(Some(record)) = self.read_record(tenant, alias).await else {
            return;
        };
        if let Some(version) = record.value.version(number)
            && version.state == KeyState::Active
            && let Err(error) = hsm.unblock_key(&version.label).await
        {
            tracing::error!(label = %version.label, %error,
                "could not unblock a key whose concurrent change left it active");
        }
    }
}

/// How far a restrictive effect got.
pub(super) enum Restricted {
    /// Done in the HSM.
    Applied,
    /// The block waits for approvals (request id); nothing changed yet.
    BlockPending(String),
    /// Blocked; freezing the unblock rule waits for approvals (request id).
    FreezePending(String),
}

/// Applies a restrictive effect to the HSM.
async fn restrict(hsm: &dyn Hsm, label: &str, effect: TsbEffect) -> Result<Restricted, KeyError> {
    match effect {
        TsbEffect::None | TsbEffect::Unblock => Ok(Restricted::Applied),
        TsbEffect::Block => Ok(match hsm.block_key(label).await? {
            HsmChange::Applied => Restricted::Applied,
            HsmChange::Pending { request_id } => Restricted::BlockPending(request_id),
        }),
        TsbEffect::BlockIrreversibly => match hsm.block_key(label).await? {
            HsmChange::Applied => freeze_unblock(hsm, label).await,
            HsmChange::Pending { request_id } => Ok(Restricted::BlockPending(request_id)),
        },
        TsbEffect::Delete => match hsm.delete_key(label).await {
            Ok(()) | Err(HsmError::NotFound(_)) => Ok(Restricted::Applied),
            Err(error) => Err(error.into()),
        },
    }
}

/// Replaces the key's unblock rule by one that can never be fulfilled.
pub(super) async fn freeze_unblock(hsm: &dyn Hsm, label: &str) -> Result<Restricted, KeyError> {
    let info = hsm.key_info(label).await?.ok_or(KeyError::NotFound)?;
    let Some(policy) = info.policy else {
        return Err(KeyError::conflict(
            "plain_key",
            format!("{label} has no SKA policy, so its unblocking cannot be frozen"),
        ));
    };
    if policy.is_frozen(SkaAction::Unblock) {
        return Ok(Restricted::Applied);
    }
    let frozen = policy.with_rule(SkaAction::Unblock, Some(SkaRule::frozen()));
    Ok(match hsm.modify_policy(label, &frozen).await? {
        HsmChange::Applied => Restricted::Applied,
        HsmChange::Pending { request_id } => Restricted::FreezePending(request_id),
    })
}

/// Remembers a lifecycle step the HSM holds as an approval request; the state stays.
fn request(
    record: &mut KeyRecord,
    number: u32,
    step: &Step<'_>,
    state: KeyState,
    request_id: String,
    governed_by: SkaAction,
) {
    record.remember(HistoryEntry {
        at: step.now,
        actor: step.actor.to_owned(),
        version: number,
        event: format!("{}-requested", step.event.as_str()),
        from: None,
        to: state,
        reason: Some(format!("waits for approvals (request {request_id})")),
    });
    record.pending.push(PendingRequest {
        request_id,
        version: number,
        change: PendingChange::Lifecycle { event: step.event },
        governed_by,
        requested_by: step.actor.to_owned(),
        requested_at: step.now,
        reason: step.reason.clone(),
    });
}

/// Moves version `number` to the decided state and remembers the step.
pub(super) fn apply_to_record(
    record: &mut KeyRecord,
    number: u32,
    step: &Step<'_>,
    from: KeyState,
    decided: Transition,
    reason: Option<String>,
) {
    let to = decided.to;
    if let Some(version) = record.version_mut(number) {
        version.state = to;
        version.schedule = decided.schedule;
        if to == KeyState::Destroyed {
            version.destroyed_at = Some(step.now);
        }
    }
    record.remember(HistoryEntry {
        at: step.now,
        actor: step.actor.to_owned(),
        version: number,
        event: step.event.as_str().to_owned(),
        from: Some(from),
        to,
        reason,
    });
}
