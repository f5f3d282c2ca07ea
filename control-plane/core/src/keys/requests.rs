//! SKA policy authoring and the approval requests of a key.
//!
//! A key's SKA rules (use/block/unblock/modify → tokens → groups with a quorum → approvers) live
//! in the HSM; keymanager validates a new policy with km-domain and hands it to the HSM, which
//! applies it at once or — when the key's current modify rule asks for approvals — holds it as
//! a request. Block and unblock requests come from lifecycle changes (see `lifecycle`). Every
//! request is remembered on the key's record ([`PendingRequest`]) until it is *settled*: the
//! HSM says it executed (the record then moves: new state, policy-changed history entry) or
//! ended otherwise (rejected, expired, cancelled, failed: the record only notes it). Settling
//! runs when a key's requests are read and on every scheduler run, is audited as
//! `system:scheduler`, and is idempotent: it re-decides on the freshly read record.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use km_domain::{
    Action, ApproverKind, EventDraft, KeyState, Outcome, SkaAction, SkaPolicy, SkaRule, TenantId,
    TransitionContext, TsbEffect, transition,
};
use sha2::{Digest, Sha256};

use super::lifecycle::{Restricted, Step, apply_to_record, freeze_unblock};
use super::record::{
    HistoryEntry, KeyRecord, MAX_REASON_LEN, PendingChange, PendingRequest, clean_text,
};
use super::{KeyDetail, KeyError, KeyService, Target};
use crate::app::{OPERATION_DETAIL, RequestId};
use crate::{Hsm, HsmChange, HsmError, HsmRequest, HsmRequestStatus, Versioned};

/// A new SKA policy for a key, as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyUpdate {
    /// The rules (its `key_status` is ignored: blocking is a lifecycle matter).
    pub policy: SkaPolicy,
    /// Why (kept in the key's history and the audit log).
    pub reason: Option<String>,
    /// The version to change; `None` = the one the alias points at.
    pub version: Option<u32>,
}

/// Where one approver stands on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApproverDecision {
    /// Approved.
    Approved,
    /// Not decided yet.
    Waiting,
    /// Rejected.
    Rejected,
}

impl ApproverDecision {
    /// Stable name, as the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApproverDecision::Approved => "approved",
            ApproverDecision::Waiting => "waiting",
            ApproverDecision::Rejected => "rejected",
        }
    }
}

/// One approver of a request as the HSM reports it, named from the key's policy when it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverProgress {
    /// The approver's name in the governing rule, when it names a public key.
    pub name: Option<String>,
    /// SHA-256 of the approver's public key (hex, first 16 bytes): stable and short.
    pub fingerprint: String,
    /// Their decision so far.
    pub decision: ApproverDecision,
}

/// A request with its live progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestProgress {
    /// The key's alias.
    pub key: String,
    /// The HSM label of the version it concerns.
    pub label: String,
    /// The request as remembered.
    pub request: PendingRequest,
    /// Where it stands in the HSM (`None` when the HSM could not be asked just now).
    pub status: Option<HsmRequestStatus>,
    /// Approvals collected.
    pub approvals_collected: u32,
    /// Approvals the cheapest token of the governing rule needs (sum of its groups' quorums).
    pub approvals_needed: Option<u32>,
    /// The approvers the HSM lists, with their decisions.
    pub approvers: Vec<ApproverProgress>,
}

/// The outcome of one request, once the HSM has decided.
enum Settled {
    Executed,
    Ended(&'static str),
}

impl KeyService {
    /// Replaces the SKA policy of a key's version (adopting an unmanaged key). Applied at once,
    /// or remembered as a request when the current modify rule asks for approvals — see the
    /// returned detail's `pending`.
    pub async fn update_policy(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
        update: PolicyUpdate,
        actor: &str,
    ) -> Result<KeyDetail, KeyError> {
        let reason = clean_text("reason", update.reason, MAX_REASON_LEN)?;
        update.policy.validate()?;
        let now = self.now();
        let target = self
            .target(hsm, tenant, label, update.version, actor)
            .await?;
        let version = target
            .record
            .version(target.version)
            .ok_or(KeyError::NotFound)?;
        match version.state {
            KeyState::Destroyed => {
                return Err(KeyError::conflict(
                    "key_destroyed",
                    format!("{} is destroyed; it has no policy any more", version.label),
                ));
            }
            KeyState::Compromised => {
                return Err(KeyError::conflict(
                    "key_compromised",
                    format!(
                        "{} is compromised: its policy stays as it is (unblocking frozen for good)",
                        version.label
                    ),
                ));
            }
            _ => {}
        }
        if let Some(pending) = target.record.pending.iter().find(|p| {
            p.version == target.version && matches!(p.change, PendingChange::Policy { .. })
        }) {
            return Err(KeyError::conflict(
                "approval_pending",
                format!(
                    "a policy change of {} already waits for approvals (request {}); cancel it first",
                    version.label, pending.request_id
                ),
            ));
        }
        let hsm_label = version.label.clone();
        let state = version.state;
        let info = hsm.key_info(&hsm_label).await?.ok_or(KeyError::NotFound)?;
        if info.policy.is_none() {
            return Err(KeyError::conflict(
                "plain_key",
                format!("{hsm_label} was created without an SKA policy and can never get one"),
            ));
        }
        let mut policy = update.policy;
        policy.key_status.blocked = info.blocked;
        let mut next = target.record.clone();
        let (event, note) = match hsm.modify_policy(&hsm_label, &policy).await? {
            HsmChange::Applied => ("policy-changed", reason.clone()),
            HsmChange::Pending { request_id } => {
                let note = format!("waits for approvals (request {request_id})");
                next.pending.push(PendingRequest {
                    request_id,
                    version: target.version,
                    change: PendingChange::Policy { policy },
                    governed_by: SkaAction::Modify,
                    requested_by: actor.to_owned(),
                    requested_at: now,
                    reason,
                });
                ("policy-requested", Some(note))
            }
        };
        next.remember(HistoryEntry {
            at: now,
            actor: actor.to_owned(),
            version: target.version,
            event: event.to_owned(),
            from: None,
            to: state,
            reason: note,
        });
        let saved = self.save(&target, next, actor).await?;
        self.publish(hsm, tenant, &saved.value).await
    }

    /// The key's requests with their live progress (settling the ones the HSM has decided).
    pub async fn requests(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
    ) -> Result<Vec<RequestProgress>, KeyError> {
        let Some(record) = self.settle_record(hsm, tenant, label).await? else {
            // Unmanaged keys have no requests keymanager made; say "not found" only if the key
            // itself is unknown.
            hsm.key_info(label).await?.ok_or(KeyError::NotFound)?;
            return Ok(Vec::new());
        };
        let mut progress = Vec::with_capacity(record.pending.len());
        for pending in &record.pending {
            progress.push(self.progress_of(hsm, &record, pending).await);
        }
        Ok(progress)
    }

    /// Every request waiting on the tenant's keys (from the inventory, then the records), with
    /// live progress.
    pub async fn pending_requests(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
    ) -> Result<Vec<RequestProgress>, KeyError> {
        let keys = self
            .with_inventory(tenant, |index| {
                index
                    .rows()
                    .filter(|row| row.pending_requests > 0)
                    .map(|row| row.label.clone())
                    .collect::<Vec<_>>()
            })
            .await?;
        let mut all = Vec::new();
        for key in keys {
            all.extend(self.requests(hsm, tenant, &key).await?);
        }
        all.sort_by(|a, b| (a.request.requested_at, &a.key).cmp(&(b.request.requested_at, &b.key)));
        Ok(all)
    }

    /// Withdraws a request of the key: the HSM drops it and the record forgets it.
    pub async fn cancel_request(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
        request_id: &str,
        actor: &str,
    ) -> Result<KeyDetail, KeyError> {
        let record = self
            .managed_record(tenant, label)
            .await?
            .ok_or(KeyError::NotFound)?;
        let Some(position) = record
            .value
            .pending
            .iter()
            .position(|p| p.request_id == request_id)
        else {
            return Err(KeyError::invalid(
                "unknown_request",
                format!("{label} has no waiting request {request_id}"),
            ));
        };
        match hsm.cancel_request(request_id).await {
            Ok(()) | Err(HsmError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
        let mut next = record.value.clone();
        let pending = next.pending.remove(position);
        let state = next
            .version(pending.version)
            .map_or(KeyState::Destroyed, |v| v.state);
        next.remember(HistoryEntry {
            at: self.now(),
            actor: actor.to_owned(),
            version: pending.version,
            event: format!("{}-cancelled", pending.change.name()),
            from: None,
            to: state,
            reason: Some(format!("request {request_id} withdrawn")),
        });
        let target = Target {
            record: record.value,
            revision: Some(record.revision),
            version: pending.version,
        };
        let saved = self.save(&target, next, actor).await?;
        self.publish(hsm, tenant, &saved.value).await
    }

    /// Settles the requests of the key `label` the HSM has decided; the record after that
    /// (`None` for a key without record).
    pub(super) async fn settle_record(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
    ) -> Result<Option<KeyRecord>, KeyError> {
        let Some(record) = self.managed_record(tenant, label).await? else {
            return Ok(None);
        };
        if record.value.pending.is_empty() {
            return Ok(Some(record.value));
        }
        let mut decided = Vec::new();
        for pending in &record.value.pending {
            match hsm.request_status(&pending.request_id).await {
                Ok(request) if request.status == HsmRequestStatus::Executed => {
                    decided.push((pending.request_id.clone(), Settled::Executed));
                }
                Ok(request) if request.status.is_final() => {
                    decided.push((pending.request_id.clone(), Settled::Ended(ended(&request))));
                }
                Ok(_) => {}
                Err(HsmError::NotFound(_)) => {
                    decided.push((pending.request_id.clone(), Settled::Ended("unknown")));
                }
                Err(error) => {
                    tracing::warn!(%tenant, label, request = %pending.request_id, %error,
                        "could not look up an approval request; it stays waiting");
                }
            }
        }
        if decided.is_empty() {
            return Ok(Some(record.value));
        }
        let settled = self.audited_settle(hsm, tenant, record, decided).await?;
        self.publish(hsm, tenant, &settled).await?;
        Ok(Some(settled))
    }

    /// Applies decided requests to the record, audited as `system:scheduler`.
    async fn audited_settle(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        record: Versioned<KeyRecord>,
        decided: Vec<(String, Settled)>,
    ) -> Result<KeyRecord, KeyError> {
        let actor = super::due::scheduler_actor();
        let rid = RequestId::generate();
        let ids: Vec<&str> = decided.iter().map(|(id, _)| id.as_str()).collect();
        let draft = EventDraft::new(
            &actor,
            Action::EditKeyPolicy.as_str(),
            Outcome::Success,
            rid.as_str(),
        )
        .with_tenant(tenant.clone())
        .with_target(record.value.label.as_str())
        .with_detail(OPERATION_DETAIL, "settle_approval_requests")
        .with_detail("requests", ids.join(","));
        let action = self.inner.audit.begin(draft).await?;
        let result = self.settle(hsm, record, decided, &actor).await;
        let recorded = match &result {
            Ok(_) => action.succeeded().await,
            Err(error) => action.failed(error.code()).await,
        };
        if let Err(error) = recorded {
            tracing::error!(%error, "the settling of approval requests is not recorded yet (kept in the outbox)");
        }
        result
    }

    async fn settle(
        &self,
        hsm: &dyn Hsm,
        record: Versioned<KeyRecord>,
        decided: Vec<(String, Settled)>,
        actor: &str,
    ) -> Result<KeyRecord, KeyError> {
        let now = self.now();
        let waiting = self.settings(&record.value.tenant).await?.waiting_period;
        let mut next = record.value.clone();
        let outcomes: HashMap<String, Settled> = decided.into_iter().collect();
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut next.pending)
            .into_iter()
            .partition(|p| outcomes.contains_key(&p.request_id));
        next.pending = keep;
        for pending in done {
            let state = next
                .version(pending.version)
                .map_or(KeyState::Destroyed, |v| v.state);
            match (&outcomes[&pending.request_id], &pending.change) {
                (Settled::Executed, PendingChange::Lifecycle { event }) => {
                    let Some(version) = next.version(pending.version) else {
                        continue;
                    };
                    // Decided as of the request (the HSM has done its part since).
                    let context = TransitionContext {
                        now: pending.requested_at,
                        destroyable: next.attributes.destroyable,
                        waiting_period: waiting,
                        schedule: version.schedule,
                    };
                    let label = version.label.clone();
                    let step = Step {
                        event: *event,
                        reason: pending.reason.clone(),
                        actor: &pending.requested_by,
                        now,
                    };
                    match transition(state, event, &context) {
                        Ok(decided) => {
                            apply_to_record(
                                &mut next,
                                pending.version,
                                &step,
                                state,
                                decided,
                                Some(approved_note(&pending, step.reason.as_deref())),
                            );
                            if decided.tsb == TsbEffect::BlockIrreversibly
                                && let Restricted::FreezePending(request_id) =
                                    freeze_unblock(hsm, &label).await?
                            {
                                next.pending.push(PendingRequest {
                                    request_id,
                                    version: pending.version,
                                    change: PendingChange::FreezeUnblock,
                                    governed_by: SkaAction::Modify,
                                    requested_by: actor.to_owned(),
                                    requested_at: now,
                                    reason: None,
                                });
                            }
                        }
                        Err(error) => note(
                            &mut next,
                            &pending,
                            now,
                            actor,
                            state,
                            "no-longer-applies",
                            error.to_string(),
                        ),
                    }
                }
                (Settled::Executed, _) => note(
                    &mut next,
                    &pending,
                    now,
                    actor,
                    state,
                    "executed",
                    approved_note(&pending, pending.reason.as_deref()),
                ),
                (Settled::Ended(how), _) => note(
                    &mut next,
                    &pending,
                    now,
                    actor,
                    state,
                    how,
                    format!("request {} {how}", pending.request_id),
                ),
            }
        }
        let target = Target {
            record: record.value,
            revision: Some(record.revision),
            version: next.current_version,
        };
        Ok(self.save(&target, next, actor).await?.value)
    }

    /// The record of a managed key (by alias or a version's label).
    async fn managed_record(
        &self,
        tenant: &TenantId,
        label: &str,
    ) -> Result<Option<Versioned<KeyRecord>>, KeyError> {
        Ok(match self.locate(tenant, label, None).await? {
            super::Located::Managed { record, .. } => Some(*record),
            super::Located::Unmanaged => None,
        })
    }

    async fn progress_of(
        &self,
        hsm: &dyn Hsm,
        record: &KeyRecord,
        pending: &PendingRequest,
    ) -> RequestProgress {
        let label = record
            .version(pending.version)
            .map_or_else(|| record.label.clone(), |v| v.label.clone());
        let rule = match hsm.key_info(&label).await {
            Ok(Some(info)) => info
                .policy
                .and_then(|policy| policy.rule(pending.governed_by).cloned()),
            _ => None,
        };
        let status = hsm.request_status(&pending.request_id).await.ok();
        let names = rule.as_ref().map(approver_names).unwrap_or_default();
        let mut approvers = Vec::new();
        if let Some(request) = &status {
            let lists = [
                (&request.approved_by, ApproverDecision::Approved),
                (&request.not_yet_approved_by, ApproverDecision::Waiting),
                (&request.rejected_by, ApproverDecision::Rejected),
            ];
            for (keys, decision) in lists {
                for key in keys {
                    approvers.push(ApproverProgress {
                        name: names.get(key).cloned(),
                        fingerprint: approver_fingerprint(key),
                        decision,
                    });
                }
            }
        }
        RequestProgress {
            key: record.label.clone(),
            label,
            request: pending.clone(),
            status: status.as_ref().map(|r| r.status),
            approvals_collected: status.as_ref().map_or(0, |r| r.approvals_collected),
            approvals_needed: rule.as_ref().and_then(cheapest_quorum),
            approvers,
        }
    }
}

/// How a request ended, as a history/audit word.
fn ended(request: &HsmRequest) -> &'static str {
    match request.status {
        HsmRequestStatus::Rejected => "rejected",
        HsmRequestStatus::Expired => "expired",
        HsmRequestStatus::Cancelled => "cancelled",
        HsmRequestStatus::Failed => "failed",
        _ => "ended",
    }
}

fn approved_note(pending: &PendingRequest, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("{reason}; approved (request {})", pending.request_id),
        None => format!("approved (request {})", pending.request_id),
    }
}

/// Remembers how a request ended without changing the state.
fn note(
    record: &mut KeyRecord,
    pending: &PendingRequest,
    now: u64,
    actor: &str,
    state: KeyState,
    how: &str,
    reason: String,
) {
    record.remember(HistoryEntry {
        at: now,
        actor: actor.to_owned(),
        version: pending.version,
        event: format!("{}-{how}", pending.change.name()),
        from: None,
        to: state,
        reason: Some(reason),
    });
}

/// Base64 SPKI → name, for the public-key approvers of a rule.
fn approver_names(rule: &SkaRule) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for token in &rule.tokens {
        for group in &token.groups {
            for approval in &group.approvals {
                if let (ApproverKind::PublicKey, Some(value), Some(name)) =
                    (approval.kind, &approval.value, &approval.name)
                {
                    names.insert(value.clone(), name.clone());
                }
            }
        }
    }
    names
}

/// The fewest approvals any fulfillable token of the rule needs.
fn cheapest_quorum(rule: &SkaRule) -> Option<u32> {
    rule.tokens
        .iter()
        .filter(|token| token.can_be_fulfilled())
        .map(|token| token.groups.iter().map(|g| g.quorum).sum())
        .min()
}

/// Short, stable identification of an approver's key or certificate (given as base64): hex of
/// the first 16 bytes of SHA-256 of the decoded bytes (of the text itself when not base64).
pub fn approver_fingerprint(spki_base64: &str) -> String {
    let bytes = STANDARD
        .decode(spki_base64)
        .unwrap_or_else(|_| spki_base64.as_bytes().to_vec());
    let digest = Sha256::digest(&bytes);
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use km_domain::{SkaApproval, SkaGroup, SkaToken};

    use super::*;

    #[test]
    fn the_cheapest_fulfillable_token_sets_the_quorum() {
        let a = SkaApproval::public_key(Some("alice".into()), "QUxJQ0U=");
        let b = SkaApproval::public_key(Some("bob".into()), "Qk9C");
        let two_groups = SkaToken::new(
            "board",
            vec![
                SkaGroup::new("officers", 2, vec![a.clone(), b.clone()]),
                SkaGroup::new("auditors", 1, vec![a.clone()]),
            ],
        );
        let one = SkaToken::new("solo", vec![SkaGroup::new("x", 1, vec![b.clone()])]);
        let impossible = SkaToken::new("never", vec![SkaGroup::new("y", 3, vec![a.clone()])]);
        let rule = SkaRule::new(vec![two_groups.clone(), one, impossible.clone()]);
        assert_eq!(cheapest_quorum(&rule), Some(1));
        assert_eq!(cheapest_quorum(&SkaRule::new(vec![two_groups])), Some(3));
        assert_eq!(cheapest_quorum(&SkaRule::new(vec![impossible])), None);
        assert_eq!(cheapest_quorum(&SkaRule::frozen()), None);

        let names = approver_names(&rule);
        assert_eq!(names.get("QUxJQ0U=").map(String::as_str), Some("alice"));
        assert_eq!(names.get("Qk9C").map(String::as_str), Some("bob"));
    }

    #[test]
    fn fingerprints_are_short_stable_hex() {
        let print = approver_fingerprint("QUxJQ0U=");
        assert_eq!(print.len(), 32);
        assert_eq!(print, approver_fingerprint("QUxJQ0U="));
        assert_ne!(print, approver_fingerprint("Qk9C"));
    }
}
