//! Expiry notifications (issue #5 item 10): a tenant's webhook, called before a key's
//! crypto-period ends or its scheduled destruction happens. The console shows the same events as
//! alerts (from `KeyService::overview`); this module is the outbound side.
//!
//! | record | sealed | contents |
//! |---|---|---|
//! | `kms.notifications.<tenant>` | no | enabled, webhook URL, lead days, when the signing secret was made |
//! | `kms.notify-secret.<tenant>` | **yes** | the signing secret |
//! | `kms.notices.<tenant>` | no | which notices were delivered (pruned when their event is past) |
//!
//! # Delivery
//!
//! `POST <url>` with a JSON body and `Content-Type: application/json`:
//!
//! ```json
//! {"type": "key.expiry_upcoming", "id": "dlv_…", "tenant": "acme", "key": "web-signing",
//!  "at": "2027-01-31T12:00:00Z", "days_left": 7, "state": "active", "owner": "alice",
//!  "sent_at": "2027-01-24T12:00:15Z"}
//! ```
//!
//! `type` is `key.expiry_upcoming` (end of the crypto-period: the scheduler deactivates the key
//! then), `key.destruction_upcoming` (the key material is deleted then) or `test` (sent on
//! request, with only `type`, `id`, `tenant` and `sent_at`). `days_left` is the time left in
//! whole days, rounded up. `id` is the same for every attempt of one notice (a retry after a
//! failure or a crash re-sends the same id), so receivers can drop duplicates; it is also sent as
//! the `Keymanager-Delivery` header.
//!
//! # Signature
//!
//! `Keymanager-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, where
//! the key is the signing secret exactly as shown (all its characters, ASCII) and the message is
//! the decimal `t`, a `.`, and the raw request body bytes. A receiver recomputes the HMAC,
//! compares in constant time, and refuses a `t` too far from its own clock (e.g. 5 minutes) to
//! stop replays; for example `printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$secret"`.
//!
//! # Which notices are sent
//!
//! A tenant chooses up to five lead times in days (default 30, 7 and 1). For each upcoming event
//! the notice due is the *nearest* lead time that the event is already within: an event 10 days
//! ahead gets the 30-day notice, one first seen 3 days ahead gets only the 7-day notice (not the
//! 30-day one as well), and a later 1-day notice follows when it is 1 day ahead. Each (key, kind,
//! time, lead) is delivered once: the marker is written after the receiver answered 2xx, so a
//! failure is retried at the next run. The log of markers is read fresh from the HSM and written
//! with the store's lock and revision check, so another replica taking the lead sends nothing
//! twice — except the notice in flight when a leader stopped between the receiver's answer and
//! the marker write, which the next leader re-sends under the same `id`.
//!
//! # Safety limits
//!
//! Only `https://` URLs, unless the host is a loopback address *and* the deployment allows
//! insecure webhooks (`[notifications] allow_insecure_webhooks`, off by default; `keymanager dev`
//! turns it on). No credentials, no fragment, at most 2048 characters. The HTTP adapter follows
//! no redirects and gives up after 10 seconds. The secret is generated here (32 random bytes from
//! the crypto port), shown once when made, kept only in the sealed record, and never logged,
//! audited or printed by `Debug`.

mod job;
mod sender;
mod signing;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use km_domain::{EventDraft, Outcome, TenantId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

pub use job::{
    ExpiryNoticeJob, MAX_SENDS_PER_RUN, NOTICE_ACTION, NoticeKind, NoticeLog, SentNotice,
};
pub use sender::{NoWebhookSender, WebhookError, WebhookSender};
pub use signing::{DELIVERY_HEADER, SECRET_PREFIX, SIGNATURE_HEADER, signature_header};

use crate::audit::{AuditError, AuditLog};
use crate::identity::{CryptoError, IdentityCrypto, SecretText};
use crate::keys::UpcomingEvent;
use crate::scheduler::SCHEDULER_ACTOR;
use crate::{Clock, Sealing, StateStore, StoreError, Timestamp, Versioned};

/// State-store kind of the settings record.
pub const SETTINGS_KIND: &str = "notifications";
/// State-store kind of the sealed signing-secret record.
pub const SECRET_KIND: &str = "notify-secret";
/// State-store kind of the delivered-notices record.
pub const LOG_KIND: &str = "notices";
/// Lead times of a tenant that never chose any.
pub const DEFAULT_LEAD_DAYS: [u16; 3] = [30, 7, 1];
/// Most lead times a tenant may choose.
pub const MAX_LEAD_TIMES: usize = 5;
/// Longest lead time (one year).
pub const MAX_LEAD_DAYS: u16 = 365;
/// Longest webhook URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Seconds per day.
pub(crate) const DAY: u64 = 24 * 60 * 60;

/// Deployment-wide rules for webhooks (from the server configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotificationConfig {
    /// Accept `http://` URLs whose host is a loopback address (development only).
    pub allow_insecure_webhooks: bool,
}

/// A tenant's notification settings (`kms.notifications.<tenant>`, plain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// Whether the scheduler sends notices.
    pub enabled: bool,
    /// Where to (validated when saved, and again before every delivery).
    #[serde(default)]
    pub url: Option<String>,
    /// Lead times in days, largest first.
    pub lead_days: Vec<u16>,
    /// When the current signing secret was made; `None` while there is none.
    #[serde(default)]
    pub secret_created_at: Option<Timestamp>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            url: None,
            lead_days: DEFAULT_LEAD_DAYS.to_vec(),
            secret_created_at: None,
        }
    }
}

/// What an administrator saves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationUpdate {
    /// Send notices.
    pub enabled: bool,
    /// The webhook URL (required when enabled).
    pub url: Option<String>,
    /// Lead times in days (1–365, at most five, no repeats).
    pub lead_days: Vec<u16>,
}

/// The outcome of [`NotificationService::save`].
#[derive(Debug, Clone)]
pub struct SavedNotifications {
    /// The settings now in force.
    pub settings: NotificationSettings,
    /// The signing secret, when this save enabled notifications for the first time and made it:
    /// shown once, never again.
    pub new_secret: Option<SecretText>,
}

/// A new signing secret (from [`NotificationService::rotate_secret`]): shown once.
#[derive(Debug, Clone)]
pub struct RotatedSecret {
    /// The secret; HMAC key of every later delivery.
    pub secret: SecretText,
    /// When it was made.
    pub created_at: Timestamp,
}

/// How one delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The delivery id (`id` in the body, `Keymanager-Delivery` header).
    pub delivery_id: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it did not answer (connection, TLS, timeout), or why a status is not a success.
    pub error: Option<String>,
}

impl DeliveryReport {
    /// Whether the receiver accepted it (2xx).
    pub fn delivered(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }

    /// Stable code of an undelivered attempt for audit results: `webhook_status_<status>` or
    /// `webhook_unreachable`.
    pub fn failure_code(&self) -> String {
        self.status.map_or_else(
            || "webhook_unreachable".to_owned(),
            |status| format!("webhook_status_{status}"),
        )
    }
}

/// Why a notification use case failed.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The webhook URL breaks a rule (the message says which).
    #[error("{0}")]
    InvalidUrl(String),
    /// The lead times break a rule.
    #[error("{0}")]
    InvalidLeadDays(String),
    /// Enabling (or testing) needs a URL.
    #[error("set a webhook URL first")]
    UrlMissing,
    /// Deliveries need a signing secret.
    #[error("generate a signing secret first")]
    SecretMissing,
    /// The crypto port failed (randomness).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The audit log could not record a delivery, so it was not made.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The sealed signing secret.
#[derive(Serialize, Deserialize)]
struct SecretRecord {
    secret: String,
}

impl Drop for SecretRecord {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// Settings, signing secrets and deliveries of every tenant. Cheap to clone.
#[derive(Clone)]
pub struct NotificationService {
    inner: Arc<Inner>,
}

struct Inner {
    store: StateStore,
    clock: Arc<dyn Clock>,
    crypto: Arc<dyn IdentityCrypto>,
    audit: AuditLog,
    sender: Arc<dyn WebhookSender>,
    config: NotificationConfig,
}

impl std::fmt::Debug for NotificationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl NotificationService {
    /// The service over the store, with randomness and HMAC from `crypto`, deliveries through
    /// `sender` (audited into `audit`) and the deployment's URL rules.
    pub fn new(
        store: StateStore,
        clock: Arc<dyn Clock>,
        crypto: Arc<dyn IdentityCrypto>,
        audit: AuditLog,
        sender: Arc<dyn WebhookSender>,
        config: NotificationConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                crypto,
                audit,
                sender,
                config,
            }),
        }
    }

    /// The same service delivering through `sender` under `config`.
    pub fn with_sender(&self, sender: Arc<dyn WebhookSender>, config: NotificationConfig) -> Self {
        let inner = &self.inner;
        Self::new(
            inner.store.clone(),
            inner.clock.clone(),
            inner.crypto.clone(),
            inner.audit.clone(),
            sender,
            config,
        )
    }

    /// The tenant's settings (the defaults until saved).
    pub async fn settings(&self, tenant: &TenantId) -> Result<NotificationSettings, StoreError> {
        Ok(self
            .inner
            .store
            .get::<NotificationSettings>(SETTINGS_KIND, tenant.as_str())
            .await?
            .map(|record| record.value)
            .unwrap_or_default())
    }

    /// Checks an update without saving it: the URL against [`validate_url`], the lead times, and
    /// that an enabled configuration has a URL. Returns the normalised values.
    pub fn check(
        &self,
        update: &NotificationUpdate,
    ) -> Result<NotificationUpdate, NotificationError> {
        let url = match update
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            Some(url) => Some(validate_url(url, self.inner.config)?),
            None => None,
        };
        if update.enabled && url.is_none() {
            return Err(NotificationError::UrlMissing);
        }
        Ok(NotificationUpdate {
            enabled: update.enabled,
            url,
            lead_days: validate_lead_days(&update.lead_days)?,
        })
    }

    /// Validates and saves the tenant's settings. Enabling a tenant without a signing secret
    /// makes one and returns it (once).
    pub async fn save(
        &self,
        tenant: &TenantId,
        update: NotificationUpdate,
        actor: &str,
    ) -> Result<SavedNotifications, NotificationError> {
        let update = self.check(&update)?;
        let mut new_secret = None;
        let mut secret_at = self.secret_made_at(tenant).await?;
        if update.enabled && secret_at.is_none() {
            let secret = self.generate_secret()?;
            let record = SecretRecord {
                secret: secret.expose_secret().to_owned(),
            };
            // Create-if-absent: of two concurrent first saves, one secret wins and only its
            // maker is shown it.
            match self
                .inner
                .store
                .create(SECRET_KIND, tenant.as_str(), record, actor, Sealing::Sealed)
                .await
            {
                Ok(written) => {
                    secret_at = Some(written.updated_at);
                    new_secret = Some(secret);
                }
                Err(StoreError::AlreadyExists { .. }) => {
                    secret_at = self.secret_made_at(tenant).await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        let saved = self
            .inner
            .store
            .modify::<_, NotificationError, _>(
                SETTINGS_KIND,
                tenant.as_str(),
                Sealing::Plain,
                actor,
                |_: Option<Versioned<NotificationSettings>>| {
                    Ok(NotificationSettings {
                        enabled: update.enabled,
                        url: update.url.clone(),
                        lead_days: update.lead_days.clone(),
                        secret_created_at: secret_at,
                    })
                },
            )
            .await?;
        Ok(SavedNotifications {
            settings: saved.value,
            new_secret,
        })
    }

    /// Replaces the tenant's signing secret with a new one and returns it (once). Deliveries
    /// from now on are signed with it; the old one stops working at once.
    pub async fn rotate_secret(
        &self,
        tenant: &TenantId,
        actor: &str,
    ) -> Result<RotatedSecret, NotificationError> {
        let secret = self.generate_secret()?;
        let written = self
            .inner
            .store
            .modify::<_, StoreError, _>(
                SECRET_KIND,
                tenant.as_str(),
                Sealing::Sealed,
                actor,
                |_: Option<Versioned<SecretRecord>>| {
                    Ok(SecretRecord {
                        secret: secret.expose_secret().to_owned(),
                    })
                },
            )
            .await?;
        let created_at = written.updated_at;
        self.inner
            .store
            .modify::<_, StoreError, _>(
                SETTINGS_KIND,
                tenant.as_str(),
                Sealing::Plain,
                actor,
                |current: Option<Versioned<NotificationSettings>>| {
                    let mut settings = current.map(|c| c.value).unwrap_or_default();
                    settings.secret_created_at = Some(created_at);
                    Ok(settings)
                },
            )
            .await?;
        Ok(RotatedSecret { secret, created_at })
    }

    /// Sends a `test` delivery to the tenant's saved URL, signed with its secret, whether or not
    /// notices are enabled. The receiver's failure is a report, not an error.
    pub async fn send_test(&self, tenant: &TenantId) -> Result<DeliveryReport, NotificationError> {
        let settings = self.settings(tenant).await?;
        let url = settings.url.ok_or(NotificationError::UrlMissing)?;
        let secret = self
            .secret(tenant)
            .await?
            .ok_or(NotificationError::SecretMissing)?;
        let mut random = zeroize::Zeroizing::new([0u8; 16]);
        self.inner.crypto.fill_random(random.as_mut_slice())?;
        let delivery_id = format!("dlv_test_{}", crate::identity::hex(random.as_slice()));
        let now = self.inner.clock.now();
        let body = job::test_payload(&delivery_id, tenant, now);
        Ok(self.deliver(&url, &secret, &delivery_id, &body, now).await)
    }

    /// Delivers the notices due for `tenant` among `events` (the tenant's upcoming expiries and
    /// destructions) at `now`, at most `budget` attempts (decremented). See the module docs for
    /// which notices are due; each attempt is audited as `system:scheduler` with the write-ahead
    /// pattern, and a receiver that fails ends the tenant's run (the rest waits for the next).
    pub async fn notify_tenant(
        &self,
        tenant: &TenantId,
        events: &[UpcomingEvent],
        now: Timestamp,
        budget: &mut usize,
    ) -> Result<TenantNotices, NotificationError> {
        let mut outcome = TenantNotices::default();
        let settings = self.settings(tenant).await?;
        let Some(url) = settings.url.clone().filter(|_| settings.enabled) else {
            return Ok(outcome);
        };
        let log = self
            .inner
            .store
            .get_fresh::<NoticeLog>(LOG_KIND, tenant.as_str())
            .await?
            .map(|record| record.value)
            .unwrap_or_default();
        let due = job::plan(events, &log, &settings.lead_days, now);
        if due.is_empty() {
            if log.has_past(now) {
                self.update_log(tenant, now, None).await?;
            }
            return Ok(outcome);
        }
        // Unsealed (an HSM round trip) only when something is due.
        let Some(secret) = self.secret(tenant).await? else {
            tracing::warn!(%tenant, "notifications are enabled but no signing secret exists; nothing is sent");
            return Ok(outcome);
        };
        for notice in due {
            if *budget == 0 {
                outcome.deferred += 1;
                continue;
            }
            *budget -= 1;
            let delivery_id = self.delivery_id(tenant, &notice);
            let draft = EventDraft::new(
                SCHEDULER_ACTOR,
                NOTICE_ACTION,
                Outcome::Success,
                format!("scheduler-{}", uuid::Uuid::new_v4().simple()),
            )
            .with_tenant(tenant.clone())
            .with_target(notice.event.label.as_str())
            .with_detail("kind", notice.kind.payload_type())
            .with_detail("lead_days", notice.lead_days.to_string())
            .with_detail("delivery_id", delivery_id.as_str());
            let action = self.inner.audit.begin(draft).await?;
            let body = job::notice_payload(&notice, &delivery_id, tenant, now);
            let report = self.deliver(&url, &secret, &delivery_id, &body, now).await;
            if report.delivered() {
                let marked = self
                    .update_log(tenant, now, Some(notice.sent(&delivery_id, now)))
                    .await;
                if let Err(error) = action.succeeded().await {
                    tracing::error!(%error, "a delivered notice is not recorded yet (kept in the outbox)");
                }
                marked?;
                outcome.sent += 1;
            } else {
                if let Err(error) = action.failed(&report.failure_code()).await {
                    tracing::error!(%error, "a failed notice is not recorded yet (kept in the outbox)");
                }
                tracing::warn!(%tenant, key = %notice.event.label, status = ?report.status,
                    error = report.error.as_deref().unwrap_or(""),
                    "a notice was not delivered; it is tried again at the next run");
                outcome.failed += 1;
                break;
            }
        }
        Ok(outcome)
    }

    /// When the tenant's signing secret was made (`None` while there is none).
    async fn secret_made_at(&self, tenant: &TenantId) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .inner
            .store
            .get::<SecretRecord>(SECRET_KIND, tenant.as_str())
            .await?
            .map(|record| record.updated_at))
    }

    /// The tenant's signing secret, if any.
    async fn secret(&self, tenant: &TenantId) -> Result<Option<SecretText>, StoreError> {
        Ok(self
            .inner
            .store
            .get::<SecretRecord>(SECRET_KIND, tenant.as_str())
            .await?
            .map(|record| SecretText::from(record.value.secret.as_str())))
    }

    /// `kmwhsec_` and 32 random bytes in hex.
    fn generate_secret(&self) -> Result<SecretText, CryptoError> {
        let mut raw = zeroize::Zeroizing::new([0u8; 32]);
        self.inner.crypto.fill_random(raw.as_mut_slice())?;
        let hex = zeroize::Zeroizing::new(crate::identity::hex(raw.as_slice()));
        Ok(SecretText::new(format!("{SECRET_PREFIX}{}", hex.as_str())))
    }

    /// The stable id of one notice: the same on every attempt, different for every (tenant,
    /// key, kind, time, lead).
    fn delivery_id(&self, tenant: &TenantId, notice: &job::DueNotice) -> String {
        let name = format!(
            "{tenant}|{}|{}|{}|{}",
            notice.kind.payload_type(),
            notice.event.label,
            notice.event.at,
            notice.lead_days
        );
        let digest = self.inner.crypto.sha256(name.as_bytes());
        format!("dlv_{}", crate::identity::hex(&digest[..16]))
    }

    /// Signs and posts one body; never fails (the report says what happened).
    async fn deliver(
        &self,
        url: &str,
        secret: &SecretText,
        delivery_id: &str,
        body: &[u8],
        now: Timestamp,
    ) -> DeliveryReport {
        let report = |status, error| DeliveryReport {
            delivery_id: delivery_id.to_owned(),
            status,
            error,
        };
        // The rules may have tightened since the URL was saved.
        if let Err(error) = validate_url(url, self.inner.config) {
            return report(None, Some(error.to_string()));
        }
        let signature = signature_header(&*self.inner.crypto, secret, now, body);
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (SIGNATURE_HEADER.to_owned(), signature),
            (DELIVERY_HEADER.to_owned(), delivery_id.to_owned()),
        ];
        match self.inner.sender.send(url, &headers, body).await {
            Ok(status) if (200..300).contains(&status) => report(Some(status), None),
            Ok(status) if (300..400).contains(&status) => report(
                Some(status),
                Some(format!(
                    "the receiver answered {status} (a redirect); redirects are not followed: use the final URL"
                )),
            ),
            Ok(status) => report(
                Some(status),
                Some(format!(
                    "the receiver answered {status}; only 2xx counts as delivered"
                )),
            ),
            Err(error) => report(None, Some(error.to_string())),
        }
    }

    /// Prunes markers of past events and adds `sent` (replacing the marker of the same event),
    /// under the record's lock.
    async fn update_log(
        &self,
        tenant: &TenantId,
        now: Timestamp,
        sent: Option<SentNotice>,
    ) -> Result<(), StoreError> {
        self.inner
            .store
            .modify::<_, StoreError, _>(
                LOG_KIND,
                tenant.as_str(),
                Sealing::Plain,
                SCHEDULER_ACTOR,
                |current: Option<Versioned<NoticeLog>>| {
                    let mut log = current.map(|c| c.value).unwrap_or_default();
                    log.prune(now);
                    if let Some(sent) = &sent {
                        log.remember(sent.clone());
                    }
                    Ok(log)
                },
            )
            .await?;
        Ok(())
    }
}

/// What [`NotificationService::notify_tenant`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantNotices {
    /// Delivered (2xx) and marked.
    pub sent: usize,
    /// Attempted and not delivered (tried again next run).
    pub failed: usize,
    /// Due but left for the next run (the run's budget was spent).
    pub deferred: usize,
}

/// Checks a webhook URL: `https://` (or `http://` to a loopback host when `config` allows
/// insecure webhooks), a host, no user or password, no fragment, at most
/// [`MAX_URL_CHARS`] characters. Returns it normalised.
pub fn validate_url(text: &str, config: NotificationConfig) -> Result<String, NotificationError> {
    let text = text.trim();
    if text.chars().count() > MAX_URL_CHARS {
        return Err(NotificationError::InvalidUrl(format!(
            "the webhook URL is longer than {MAX_URL_CHARS} characters"
        )));
    }
    let url = url::Url::parse(text).map_err(|error| {
        NotificationError::InvalidUrl(format!(
            "the webhook URL is not a URL ({error}); write e.g. https://hooks.example.com/keymanager"
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(NotificationError::InvalidUrl(
            "the webhook URL must not carry a user or password; receivers authenticate deliveries by their signature".to_owned(),
        ));
    }
    if url.fragment().is_some() {
        return Err(NotificationError::InvalidUrl(
            "the webhook URL must not have a #fragment".to_owned(),
        ));
    }
    let loopback = match url.host() {
        None => {
            return Err(NotificationError::InvalidUrl(
                "the webhook URL has no host".to_owned(),
            ));
        }
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => Ok(url.into()),
        "http" if loopback && config.allow_insecure_webhooks => Ok(url.into()),
        "http" if loopback => Err(NotificationError::InvalidUrl(
            "http:// webhooks to loopback hosts are allowed only when the deployment sets \
             [notifications] allow_insecure_webhooks = true (development); use https://"
                .to_owned(),
        )),
        "http" => Err(NotificationError::InvalidUrl(
            "the webhook URL must use https:// (plain http:// is refused so that notices and \
             their signatures cannot be read or altered on the way)"
                .to_owned(),
        )),
        other => Err(NotificationError::InvalidUrl(format!(
            "the webhook URL's scheme `{other}` is not supported: use https://"
        ))),
    }
}

/// Checks lead times (1–365 days, at least one, at most five, no repeats) and sorts them, largest
/// first.
pub fn validate_lead_days(days: &[u16]) -> Result<Vec<u16>, NotificationError> {
    if days.is_empty() || days.len() > MAX_LEAD_TIMES {
        return Err(NotificationError::InvalidLeadDays(format!(
            "choose 1 to {MAX_LEAD_TIMES} lead times (days before the event)"
        )));
    }
    if let Some(bad) = days.iter().find(|d| !(1..=MAX_LEAD_DAYS).contains(*d)) {
        return Err(NotificationError::InvalidLeadDays(format!(
            "a lead time of {bad} days is out of range: use 1 to {MAX_LEAD_DAYS}"
        )));
    }
    let mut sorted = days.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    if sorted.len() != days.len() {
        return Err(NotificationError::InvalidLeadDays(
            "each lead time may appear once".to_owned(),
        ));
    }
    Ok(sorted)
}
