//! Scheduled work (the scheduler calls [`KeyService::run_due`]): due destructions, activations,
//! expiries, rotations and the deactivation of replaced versions after their grace period. Every
//! action is audited as `system:scheduler` with the write-ahead pattern (nothing happens unless
//! its request event is durable) and re-decided on the freshly read record, so running twice
//! does nothing the second time.

use std::collections::HashSet;

use km_domain::{Action, EventDraft, LifecycleEvent, Outcome, PrincipalId, TenantId};

use super::lifecycle::Step;
use super::record::KeyRecord;
use super::summary::{DueKind, DueWork, pending_work};
use super::{KeyError, KeyService, Target};
use crate::Hsm;
use crate::app::{OPERATION_DETAIL, RequestId};

/// The scheduler's actor name in audit events and key histories.
pub const SCHEDULER: &str = "scheduler";

/// Most actions on one key in one run (a key has a handful of due items at most; the bound only
/// guards against a record that keeps looking due).
const MAX_ACTIONS_PER_KEY: usize = 16;

/// One action the scheduler took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueOutcome {
    /// The key's alias.
    pub label: String,
    /// The version acted on (for a rotation: the version replaced).
    pub version: u32,
    /// What was done.
    pub kind: DueKind,
}

/// One action that failed (it stays due and is tried again by the next run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueFailure {
    /// The key's alias.
    pub label: String,
    /// The version.
    pub version: u32,
    /// What was tried.
    pub kind: DueKind,
    /// Stable reason code.
    pub reason: &'static str,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueReport {
    /// Actions taken, in order.
    pub done: Vec<DueOutcome>,
    /// Actions that failed.
    pub failed: Vec<DueFailure>,
}

impl DueReport {
    /// Whether nothing was due.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty() && self.failed.is_empty()
    }

    /// How many actions of `kind` were taken.
    pub fn count(&self, kind: DueKind) -> usize {
        self.done.iter().filter(|d| d.kind == kind).count()
    }
}

impl DueKind {
    /// The permission whose audit name the action is recorded under.
    const fn action(self) -> Action {
        match self {
            DueKind::Destroy => Action::ScheduleKeyDestruction,
            DueKind::Rotate => Action::RotateKey,
            DueKind::Activate | DueKind::Expire | DueKind::RetireOldVersion => {
                Action::ChangeKeyLifecycle
            }
        }
    }
}

impl KeyService {
    /// Executes the tenant's key work due at `now`. Stops at once (with an error) when the audit
    /// log cannot record; a failing action is reported and tried again by the next run.
    pub async fn run_due(&self, tenant: &TenantId, now: u64) -> Result<DueReport, KeyError> {
        let (candidates, waiting) = self
            .with_inventory(tenant, |index| {
                let waiting: Vec<String> = index
                    .rows()
                    .filter(|row| row.pending_requests > 0)
                    .map(|row| row.label.clone())
                    .collect();
                (index.due(now), waiting)
            })
            .await?;
        let mut report = DueReport::default();
        if candidates.is_empty() && waiting.is_empty() {
            return Ok(report);
        }
        let hsm = self.inner.partitions.hsm_for(tenant, None).await?;
        for alias in &waiting {
            match self.settle_record(&*hsm, tenant, alias).await {
                Ok(_) => {}
                Err(error @ KeyError::Audit(_)) => return Err(error),
                Err(error) => {
                    tracing::warn!(%tenant, label = %alias, %error,
                        "could not settle approval requests; trying again next run");
                }
            }
        }
        let rid = RequestId::generate();
        for alias in candidates {
            self.run_due_key(&*hsm, tenant, &alias, now, &rid, &mut report)
                .await?;
        }
        if !report.is_empty() {
            tracing::info!(%tenant, done = report.done.len(), failed = report.failed.len(),
                request_id = %rid, "scheduled key work ran");
        }
        Ok(report)
    }

    async fn run_due_key(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        alias: &str,
        now: u64,
        rid: &RequestId,
        report: &mut DueReport,
    ) -> Result<(), KeyError> {
        let mut failed: HashSet<(DueKind, u32)> = HashSet::new();
        for _ in 0..MAX_ACTIONS_PER_KEY {
            let Some(record) = self.read_record(tenant, alias).await? else {
                return Ok(());
            };
            let next = pending_work(&record.value)
                .into_iter()
                .find(|w| w.at <= now && !failed.contains(&(w.kind, w.version)));
            let Some(work) = next else {
                break;
            };
            let target = Target {
                record: record.value,
                revision: Some(record.revision),
                version: work.version,
            };
            match self
                .audited_work(hsm, tenant, &target, work, now, rid)
                .await
            {
                Ok(done) => {
                    self.publish(hsm, tenant, &done).await?;
                    report.done.push(DueOutcome {
                        label: alias.to_owned(),
                        version: work.version,
                        kind: work.kind,
                    });
                }
                Err(error @ KeyError::Audit(_)) => return Err(error),
                Err(error) => {
                    tracing::warn!(%tenant, label = alias, operation = work.kind.as_str(), %error,
                        "scheduled key work failed; it stays due");
                    failed.insert((work.kind, work.version));
                    report.failed.push(DueFailure {
                        label: alias.to_owned(),
                        version: work.version,
                        kind: work.kind,
                        reason: error.code(),
                    });
                }
            }
        }
        Ok(())
    }

    /// One due action inside the audit write-ahead pattern.
    async fn audited_work(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        target: &Target,
        work: DueWork,
        now: u64,
        rid: &RequestId,
    ) -> Result<KeyRecord, KeyError> {
        let actor = scheduler_actor();
        let label = target
            .record
            .version(work.version)
            .map_or(target.record.label.as_str(), |v| v.label.as_str());
        let draft = EventDraft::new(
            &actor,
            work.kind.action().as_str(),
            Outcome::Success,
            rid.as_str(),
        )
        .with_tenant(tenant.clone())
        .with_target(label)
        .with_detail(OPERATION_DETAIL, work.kind.as_str())
        .with_detail("version", work.version.to_string());
        let action = self.inner.audit.begin(draft).await?;
        let result = self.do_work(hsm, tenant, target, work, &actor, now).await;
        let recorded = match &result {
            Ok(_) => action.succeeded().await,
            Err(error) => action.failed(error.code()).await,
        };
        if let Err(error) = recorded {
            tracing::error!(%error, "the result of scheduled key work is not recorded yet (kept in the outbox)");
        }
        result
    }

    async fn do_work(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        target: &Target,
        work: DueWork,
        actor: &str,
        now: u64,
    ) -> Result<KeyRecord, KeyError> {
        let event = match work.kind {
            DueKind::Rotate => return self.rotate_target(hsm, target, actor, now).await,
            DueKind::Destroy => LifecycleEvent::Destroy,
            DueKind::Activate => LifecycleEvent::Activate,
            DueKind::Expire | DueKind::RetireOldVersion => LifecycleEvent::Deactivate,
        };
        let waiting = self.settings(tenant).await?.waiting_period;
        let step = Step {
            event,
            reason: Some(work.kind.as_str().replace('_', " ")),
            actor,
            now,
        };
        self.apply_step(hsm, tenant, target, step, waiting).await
    }
}

/// `system:scheduler`.
pub(super) fn scheduler_actor() -> String {
    PrincipalId::system(SCHEDULER)
        .map(String::from)
        .unwrap_or_else(|_| format!("{}{SCHEDULER}", PrincipalId::SYSTEM_PREFIX))
}
