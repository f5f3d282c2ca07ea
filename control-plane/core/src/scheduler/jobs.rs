//! The leader's periodic jobs: the key service's due work ([`KeyDueWorkJob`]) and housekeeping
//! (removing records that can no longer be used). The purges are idempotent by nature
//! (each record is re-read, and deleted with its revision checked, only when dead) and nothing
//! depends on them for correctness — validation refuses an expired session or sign-in anyway;
//! the purge only keeps the management partition small.
//!
//! Their audit event is a summary *after* the purge (actor `system:scheduler`, the count in
//! `details.removed`), recorded only when something was removed: the records deleted already
//! grant nothing, so a write-ahead request event every few minutes would only drown the log.

use async_trait::async_trait;
use km_domain::{EventDraft, Outcome};

use super::lease::{SCHEDULER_ACTOR, request_id};
use super::{JobError, JobReport, ScheduledJob};
use crate::Timestamp;
use crate::audit::AuditLog;
use crate::identity::Identity;
use crate::sso::SsoService;

/// How often the purges run on the leader (as the former per-replica loop did).
const PURGE_EVERY_SECS: u64 = 5 * 60;

/// Deletes expired, idle and revoked sessions and sign-ins waiting for a second factor
/// (`Sessions::purge_expired`).
#[derive(Debug, Clone)]
pub struct SessionPurgeJob {
    identity: Identity,
    audit: AuditLog,
}

impl SessionPurgeJob {
    /// The job over the identity services, auditing into `audit`.
    pub fn new(identity: Identity, audit: AuditLog) -> Self {
        Self { identity, audit }
    }
}

#[async_trait]
impl ScheduledJob for SessionPurgeJob {
    fn name(&self) -> &'static str {
        "session_purge"
    }

    fn every_secs(&self) -> u64 {
        PURGE_EVERY_SECS
    }

    async fn run(&self, _now: Timestamp) -> Result<JobReport, JobError> {
        let removed = self
            .identity
            .sessions
            .purge_expired()
            .await
            .map_err(JobError::failed)?;
        summarise(&self.audit, "purge_expired_sessions", removed).await?;
        Ok(JobReport::new(
            count(removed),
            format!("{removed} dead sessions and pending sign-ins removed"),
        ))
    }
}

/// Deletes single-sign-on logins that were started but never came back from the provider
/// (`SsoService::purge_expired`).
#[derive(Debug, Clone)]
pub struct SsoPendingPurgeJob {
    sso: SsoService,
    audit: AuditLog,
}

impl SsoPendingPurgeJob {
    /// The job over the single-sign-on service, auditing into `audit`.
    pub fn new(sso: SsoService, audit: AuditLog) -> Self {
        Self { sso, audit }
    }
}

#[async_trait]
impl ScheduledJob for SsoPendingPurgeJob {
    fn name(&self) -> &'static str {
        "sso_pending_purge"
    }

    fn every_secs(&self) -> u64 {
        PURGE_EVERY_SECS
    }

    async fn run(&self, _now: Timestamp) -> Result<JobReport, JobError> {
        let removed = self.sso.purge_expired().await.map_err(JobError::failed)?;
        summarise(&self.audit, "purge_expired_sso_logins", removed).await?;
        Ok(JobReport::new(
            count(removed),
            format!("{removed} expired single-sign-on logins removed"),
        ))
    }
}

fn count(removed: usize) -> u64 {
    u64::try_from(removed).unwrap_or(u64::MAX)
}

/// Records what a purge removed (nothing when it removed nothing).
async fn summarise(audit: &AuditLog, action: &str, removed: usize) -> Result<(), JobError> {
    if removed == 0 {
        return Ok(());
    }
    let draft = EventDraft::new(SCHEDULER_ACTOR, action, Outcome::Success, request_id())
        .with_detail("removed", removed.to_string());
    audit.record(draft).await?;
    Ok(())
}

/// The key service's due work on every active partition: activations, expiries, scheduled
/// rotations, deactivation of replaced versions after their grace period, and destructions whose
/// waiting period is over (`KeyService::run_due`, which audits each action as `system:scheduler`
/// and is idempotent). One partition failing (its HSM down, its credentials revoked) does not stop
/// the others; the job then reports the failed partitions.
#[derive(Debug, Clone)]
pub struct KeyDueWorkJob {
    partitions: crate::Partitions,
    keys: crate::KeyService,
}

impl KeyDueWorkJob {
    /// The job over the registry and the key service.
    pub fn new(partitions: crate::Partitions, keys: crate::KeyService) -> Self {
        Self { partitions, keys }
    }
}

#[async_trait]
impl ScheduledJob for KeyDueWorkJob {
    fn name(&self) -> &'static str {
        "key_due_work"
    }

    async fn run(&self, now: Timestamp) -> Result<JobReport, JobError> {
        let partitions = self.partitions.list().await.map_err(JobError::failed)?;
        let mut actions = 0u64;
        let mut failed_keys = 0usize;
        let mut failed_partitions = Vec::new();
        for partition in partitions
            .iter()
            .filter(|p| p.value.status == km_domain::PartitionStatus::Active)
        {
            match self.keys.run_due(&partition.value.id, now).await {
                Ok(report) => {
                    actions += count(report.done.len());
                    failed_keys += report.failed.len();
                }
                Err(error) => {
                    tracing::warn!(tenant = %partition.value.id, %error,
                        "due key work failed for a partition; the others go on");
                    failed_partitions.push(partition.value.id.to_string());
                }
            }
        }
        if !failed_partitions.is_empty() {
            return Err(JobError::failed(format!(
                "{actions} key actions done; partitions that failed: {}",
                failed_partitions.join(", ")
            )));
        }
        Ok(JobReport::new(
            actions,
            format!("{actions} key actions done, {failed_keys} refused (see the audit log)"),
        ))
    }
}
