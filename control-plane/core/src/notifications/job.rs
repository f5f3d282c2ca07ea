//! Which notices are due (pure: [`plan`]), what was delivered ([`NoticeLog`]), the payloads, and
//! the scheduled job that runs it all on the leader ([`ExpiryNoticeJob`]).

use async_trait::async_trait;
use km_domain::{PartitionStatus, TenantId};
use serde::{Deserialize, Serialize};

use super::{DAY, NotificationService};
use crate::Timestamp;
use crate::keys::{KeyService, UpcomingEvent, UpcomingKind};
use crate::scheduler::{JobError, JobReport, ScheduledJob};

/// Audit action of a delivery attempt (actor `system:scheduler`). Not a permission: scheduler
/// events name what was done, like `purge_expired_sessions`.
pub const NOTICE_ACTION: &str = "send_key_notice";
/// Most delivery attempts in one run, over all tenants; the rest waits for the next run (each
/// attempt may take the adapter's full timeout, and a run should stay short, see `scheduler`).
pub const MAX_SENDS_PER_RUN: usize = 20;
/// How often the job runs on the leader.
const EVERY_SECS: u64 = 60;

/// What a notice announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The end of a key's crypto-period.
    Expiry,
    /// A key's scheduled destruction.
    Destruction,
}

impl NoticeKind {
    /// The payload's `type`.
    pub const fn payload_type(self) -> &'static str {
        match self {
            Self::Expiry => "key.expiry_upcoming",
            Self::Destruction => "key.destruction_upcoming",
        }
    }
}

impl From<UpcomingKind> for NoticeKind {
    fn from(kind: UpcomingKind) -> Self {
        match kind {
            UpcomingKind::Expiry => Self::Expiry,
            UpcomingKind::Destruction => Self::Destruction,
        }
    }
}

/// One delivered notice: the nearest lead time delivered for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentNotice {
    /// The key's alias (or label).
    pub key: String,
    /// What the event is.
    pub kind: NoticeKind,
    /// When the event is (Unix seconds): a changed expiry is another event.
    pub at: Timestamp,
    /// The lead time delivered (nearer ones may still come).
    pub lead_days: u16,
    /// The delivery's id.
    pub delivery_id: String,
    /// When the receiver accepted it.
    pub sent_at: Timestamp,
}

/// The delivered notices of a tenant (`kms.notices.<tenant>`, plain): one entry per upcoming
/// event, dropped once the event is past.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeLog {
    /// Entries, in no particular order.
    #[serde(default)]
    pub sent: Vec<SentNotice>,
}

impl NoticeLog {
    /// The nearest lead time delivered for an event, if any.
    pub fn delivered(&self, key: &str, kind: NoticeKind, at: Timestamp) -> Option<u16> {
        self.sent
            .iter()
            .filter(|s| s.key == key && s.kind == kind && s.at == at)
            .map(|s| s.lead_days)
            .min()
    }

    /// Records a delivery, replacing the entry of the same event.
    pub fn remember(&mut self, sent: SentNotice) {
        self.sent
            .retain(|s| !(s.key == sent.key && s.kind == sent.kind && s.at == sent.at));
        self.sent.push(sent);
    }

    /// Whether an entry's event is past (so [`NoticeLog::prune`] would drop something).
    pub fn has_past(&self, now: Timestamp) -> bool {
        self.sent.iter().any(|s| s.at <= now)
    }

    /// Drops the entries of events that are past.
    pub fn prune(&mut self, now: Timestamp) {
        self.sent.retain(|s| s.at > now);
    }
}

/// A notice to deliver now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DueNotice {
    pub event: UpcomingEvent,
    pub kind: NoticeKind,
    /// The lead time it is for.
    pub lead_days: u16,
    /// Whole days left, rounded up.
    pub days_left: u64,
}

impl DueNotice {
    /// The log entry once delivered.
    pub fn sent(&self, delivery_id: &str, now: Timestamp) -> SentNotice {
        SentNotice {
            key: self.event.label.clone(),
            kind: self.kind,
            at: self.event.at,
            lead_days: self.lead_days,
            delivery_id: delivery_id.to_owned(),
            sent_at: now,
        }
    }
}

/// The lead time due for an event `remaining` seconds ahead: the smallest one it is within.
pub(crate) fn lead_due(remaining: u64, lead_days: &[u16]) -> Option<u16> {
    lead_days
        .iter()
        .copied()
        .filter(|days| remaining <= u64::from(*days) * DAY)
        .min()
}

/// The notices due at `now` among `events`, soonest event first: for each future event its
/// [`lead_due`], unless that lead time or a nearer one was delivered already.
pub(crate) fn plan(
    events: &[UpcomingEvent],
    log: &NoticeLog,
    lead_days: &[u16],
    now: Timestamp,
) -> Vec<DueNotice> {
    let mut due: Vec<DueNotice> = events
        .iter()
        .filter(|event| event.at > now)
        .filter_map(|event| {
            let remaining = event.at - now;
            let lead = lead_due(remaining, lead_days)?;
            let kind = NoticeKind::from(event.kind);
            let done = log
                .delivered(&event.label, kind, event.at)
                .is_some_and(|delivered| delivered <= lead);
            (!done).then(|| DueNotice {
                event: event.clone(),
                kind,
                lead_days: lead,
                days_left: remaining.div_ceil(DAY),
            })
        })
        .collect();
    due.sort_by(|a, b| (a.event.at, &a.event.label).cmp(&(b.event.at, &b.event.label)));
    due
}

/// RFC 3339 in UTC (`2027-01-31T12:00:00Z`).
pub(crate) fn rfc3339(at: Timestamp) -> String {
    i64::try_from(at)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

#[derive(Serialize)]
struct NoticePayload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    tenant: &'a str,
    key: &'a str,
    at: String,
    days_left: u64,
    state: &'static str,
    owner: Option<&'a str>,
    sent_at: String,
}

#[derive(Serialize)]
struct TestPayload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    tenant: &'a str,
    sent_at: String,
}

/// The JSON body of a notice.
pub(crate) fn notice_payload(
    notice: &DueNotice,
    delivery_id: &str,
    tenant: &TenantId,
    now: Timestamp,
) -> Vec<u8> {
    let payload = NoticePayload {
        kind: notice.kind.payload_type(),
        id: delivery_id,
        tenant: tenant.as_str(),
        key: &notice.event.label,
        at: rfc3339(notice.event.at),
        days_left: notice.days_left,
        state: notice.event.state.as_str(),
        owner: notice.event.owner.as_deref(),
        sent_at: rfc3339(now),
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// The JSON body of a test delivery.
pub(crate) fn test_payload(delivery_id: &str, tenant: &TenantId, now: Timestamp) -> Vec<u8> {
    let payload = TestPayload {
        kind: "test",
        id: delivery_id,
        tenant: tenant.as_str(),
        sent_at: rfc3339(now),
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// Sends the expiry and destruction notices due on every active partition whose notifications
/// are enabled (`NotificationService::notify_tenant`, which audits each attempt as
/// `system:scheduler` and marks each delivery, so a run repeated by another leader sends nothing
/// twice). At most [`MAX_SENDS_PER_RUN`] attempts per run; one partition failing does not stop
/// the others.
#[derive(Debug, Clone)]
pub struct ExpiryNoticeJob {
    partitions: crate::Partitions,
    keys: KeyService,
    notifications: NotificationService,
}

impl ExpiryNoticeJob {
    /// The job over the registry, the key service (for the upcoming events) and the notification
    /// service (settings, secrets, deliveries).
    pub fn new(
        partitions: crate::Partitions,
        keys: KeyService,
        notifications: NotificationService,
    ) -> Self {
        Self {
            partitions,
            keys,
            notifications,
        }
    }

    async fn run_tenant(
        &self,
        tenant: &TenantId,
        now: Timestamp,
        budget: &mut usize,
    ) -> Result<super::TenantNotices, String> {
        let settings = self
            .notifications
            .settings(tenant)
            .await
            .map_err(|error| error.to_string())?;
        if !settings.enabled {
            return Ok(super::TenantNotices::default());
        }
        let horizon = settings
            .lead_days
            .iter()
            .map(|days| u64::from(*days) * DAY)
            .max()
            .unwrap_or(0);
        let overview = self
            .keys
            .overview(tenant, horizon)
            .await
            .map_err(|error| error.to_string())?;
        self.notifications
            .notify_tenant(tenant, &overview.upcoming, now, budget)
            .await
            .map_err(|error| error.to_string())
    }
}

#[async_trait]
impl ScheduledJob for ExpiryNoticeJob {
    fn name(&self) -> &'static str {
        "expiry_notices"
    }

    fn every_secs(&self) -> u64 {
        EVERY_SECS
    }

    async fn run(&self, now: Timestamp) -> Result<JobReport, JobError> {
        let partitions = self.partitions.list().await.map_err(JobError::failed)?;
        let mut budget = MAX_SENDS_PER_RUN;
        let mut total = super::TenantNotices::default();
        let mut failed_partitions = Vec::new();
        for partition in partitions
            .iter()
            .filter(|p| p.value.status == PartitionStatus::Active)
        {
            let tenant = &partition.value.id;
            match self.run_tenant(tenant, now, &mut budget).await {
                Ok(done) => {
                    total.sent += done.sent;
                    total.failed += done.failed;
                    total.deferred += done.deferred;
                }
                Err(error) => {
                    tracing::warn!(%tenant, %error,
                        "expiry notices failed for a partition; the others go on");
                    failed_partitions.push(tenant.to_string());
                }
            }
        }
        let summary = format!(
            "{} notices delivered, {} not delivered (retried next run), {} left for the next run",
            total.sent, total.failed, total.deferred
        );
        if !failed_partitions.is_empty() {
            return Err(JobError::failed(format!(
                "{summary}; partitions that failed: {}",
                failed_partitions.join(", ")
            )));
        }
        Ok(JobReport::new(
            u64::try_from(total.sent).unwrap_or(u64::MAX),
            summary,
        ))
    }
}
