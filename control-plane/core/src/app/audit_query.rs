//! Reading the audit log: filtered, newest first, with a cursor; and verifying it.

use km_domain::{Action, AuditEvent, Outcome, TenantId};

use super::page::cursor_for;
use super::{App, AppError, Gate, Page, PageRequest, RequestId};
use crate::audit::{VerifyOptions, verify_export};
use crate::identity::Caller;

/// Which events to list. Every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events about this tenant (platform queries only; tenant queries are pinned to theirs).
    pub tenant: Option<TenantId>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this action (e.g. `create_user`, `login_password`).
    pub action: Option<String>,
    /// This outcome.
    pub outcome: Option<Outcome>,
    /// Exactly this target.
    pub target: Option<String>,
    /// At or after this time (Unix seconds).
    pub since: Option<u64>,
    /// Before this time (Unix seconds).
    pub until: Option<u64>,
}

impl AuditFilter {
    fn matches(&self, event: &AuditEvent) -> bool {
        self.tenant
            .as_ref()
            .is_none_or(|tenant| event.tenant.as_ref() == Some(tenant))
            && self
                .actor
                .as_ref()
                .is_none_or(|actor| event.actor == *actor)
            && self
                .action
                .as_ref()
                .is_none_or(|action| event.action == *action)
            && self.outcome.is_none_or(|outcome| event.outcome == outcome)
            && self
                .target
                .as_ref()
                .is_none_or(|target| event.target.as_deref() == Some(target.as_str()))
            && self.since.is_none_or(|since| event.time >= since)
            && self.until.is_none_or(|until| event.time < until)
    }
}

/// The result of verifying the whole audit log (hash chain and signed checkpoints) as stored
/// now. A fresh checkpoint is made first, so a valid log is fully covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerifySummary {
    /// The chain and every checkpoint verified.
    pub valid: bool,
    /// Events checked.
    pub events: u64,
    /// First seq.
    pub first_seq: Option<u64>,
    /// Last seq.
    pub last_seq: Option<u64>,
    /// Checkpoints verified.
    pub checkpoints: u64,
    /// Highest seq a verified checkpoint covers.
    pub last_checkpoint: Option<u64>,
    /// What is wrong, when not valid.
    pub problem: Option<String>,
    /// The event the problem points at, when it points at one.
    pub problem_seq: Option<u64>,
}

impl App {
    /// Events about `tenant`, newest first (`read_audit` on that tenant). `filter.tenant` is
    /// ignored: the query is pinned to `tenant`.
    pub async fn list_tenant_audit_events(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        filter: AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadAudit)
            .await?;
        let filter = AuditFilter {
            tenant: Some(tenant.clone()),
            ..filter
        };
        self.query_audit(&filter, page).await
    }

    /// Events of the whole log, newest first (`read_platform_audit`).
    pub async fn list_audit_events(
        &self,
        caller: &Caller,
        rid: &RequestId,
        filter: AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::ReadPlatformAudit)
            .await?;
        self.query_audit(&filter, page).await
    }

    /// Verifies the stored log (`verify_audit`): chain, checkpoint signatures, coverage.
    pub async fn verify_audit(
        &self,
        caller: &Caller,
        rid: &RequestId,
    ) -> Result<AuditVerifySummary, AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::VerifyAudit)
            .await?;
        let export = self.inner.audit.export().await?;
        let text = export
            .to_json_lines()
            .map_err(|error| AppError::internal("audit export encoding", &error))?;
        let options = VerifyOptions {
            pinned_public_key: Some(export.key.public_key.clone()),
            require_full_coverage: true,
        };
        Ok(
            match verify_export(&text, &options, self.inner.verifier.as_ref()) {
                Ok(report) => AuditVerifySummary {
                    valid: true,
                    events: report.events,
                    first_seq: report.first_seq,
                    last_seq: report.last_seq,
                    checkpoints: report.checkpoints,
                    last_checkpoint: report.last_checkpoint,
                    problem: None,
                    problem_seq: None,
                },
                Err(failure) => AuditVerifySummary {
                    valid: false,
                    events: export.events.len() as u64,
                    first_seq: export.events.first().map(|event| event.seq),
                    last_seq: export.events.last().map(|event| event.seq),
                    checkpoints: export.checkpoints.len() as u64,
                    last_checkpoint: export.checkpoints.last().map(|c| c.up_to_seq),
                    problem: Some(failure.to_string()),
                    problem_seq: failure.seq(),
                },
            },
        )
    }

    /// Newest first; the cursor is the seq of the last event returned.
    async fn query_audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, AppError> {
        let limit = page.limit()?;
        let before = match page.after()? {
            None => u64::MAX,
            Some(text) => text.parse::<u64>().map_err(|_| {
                AppError::invalid("invalid_cursor", "the cursor is not one this API issued")
            })?,
        };
        if before <= km_domain::FIRST_SEQ {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let mut events = self
            .inner
            .audit
            .read(km_domain::FIRST_SEQ..=before.saturating_sub(1))
            .await?;
        events.retain(|event| filter.matches(event));
        events.reverse();
        let more = events.len() > limit;
        events.truncate(limit);
        let next_cursor = if more {
            events
                .last()
                .map(|event| cursor_for(&event.seq.to_string()))
        } else {
            None
        };
        Ok(Page {
            items: events,
            next_cursor,
        })
    }
}
