//! Unit tests: URL and lead-time rules, which notice is due, the delivered-notices log, the
//! signature against a vector computed outside Rust (Python's `hmac`), and the service over the
//! real `StateStore`/`AuditLog` with the in-memory HSM fake and a recording sender: once-only
//! across runs and replicas, retries after failures, pruning, the run's budget, and secrets that
//! never leak. Over real HTTP and the emulator: tests/e2e/notifications.rs.

use std::sync::{Arc, Mutex};

use km_domain::{KeyState, TenantId};

use super::job::{lead_due, plan, rfc3339};
use super::*;
use crate::audit::{AuditConfig, NoSink};
use crate::identity::CryptoError;
use crate::keys::UpcomingKind;
use crate::state::test_hsm::FakeHsm;
use crate::{ManualClock, StateStoreConfig};

const START: Timestamp = 1_800_000_000;
const SECRET: &str = "kmwhsec_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// aws-lc-rs behind the port, as km-auth's `AwsLcCrypto`.
struct TestCrypto;

impl IdentityCrypto for TestCrypto {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        aws_lc_rs::rand::fill(out).map_err(|_| CryptoError("rng".to_owned()))
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref());
        out
    }

    fn hmac_sha256(&self, key: &[u8], message: &[u8]) -> [u8; 32] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        let mut out = [0u8; 32];
        out.copy_from_slice(aws_lc_rs::hmac::sign(&key, message).as_ref());
        out
    }

    fn constant_time_eq(&self, a: &[u8], b: &[u8]) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
    }
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    url: String,
    headers: Vec<(String, String)>,
    /// The exact bytes (what the signature covers).
    raw: Vec<u8>,
    body: serde_json::Value,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Records every delivery and answers `status` (or fails to connect when 0).
#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<Received>>,
    status: Mutex<u16>,
}

impl Recorder {
    fn answering(status: u16) -> Arc<Self> {
        let recorder = Arc::new(Self::default());
        recorder.set(status);
        recorder
    }

    fn set(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl WebhookSender for Recorder {
    async fn send(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<u16, WebhookError> {
        self.received.lock().unwrap().push(Received {
            url: url.to_owned(),
            headers: headers.to_vec(),
            raw: body.to_vec(),
            body: serde_json::from_slice(body).unwrap(),
        });
        match *self.status.lock().unwrap() {
            0 => Err(WebhookError::Connect("connection refused".to_owned())),
            status => Ok(status),
        }
    }
}

struct Rig {
    hsm: Arc<FakeHsm>,
    clock: Arc<ManualClock>,
}

impl Rig {
    fn new() -> Self {
        Self {
            hsm: Arc::new(FakeHsm::default()),
            clock: Arc::new(ManualClock::new(START)),
        }
    }

    /// One replica's service (own store and cache) delivering through `sender`.
    fn service(&self, sender: Arc<dyn WebhookSender>) -> (NotificationService, AuditLog) {
        let store = StateStore::new(
            self.hsm.clone(),
            self.clock.clone(),
            StateStoreConfig::default(),
        );
        let audit = AuditLog::new(
            self.hsm.clone(),
            store.clone(),
            self.clock.clone(),
            Arc::new(NoSink),
            AuditConfig {
                checkpoint_every: 0,
                ..AuditConfig::default()
            },
        );
        let service = NotificationService::new(
            store,
            self.clock.clone(),
            Arc::new(TestCrypto),
            audit.clone(),
            sender,
            NotificationConfig::default(),
        );
        (service, audit)
    }
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn event(label: &str, kind: UpcomingKind, at: Timestamp) -> UpcomingEvent {
    UpcomingEvent {
        label: label.to_owned(),
        kind,
        at,
        state: if kind == UpcomingKind::Expiry {
            KeyState::Active
        } else {
            KeyState::DestroyScheduled
        },
        owner: Some("alice".to_owned()),
    }
}

fn enabled(url: &str) -> NotificationUpdate {
    NotificationUpdate {
        enabled: true,
        url: Some(url.to_owned()),
        lead_days: DEFAULT_LEAD_DAYS.to_vec(),
    }
}

/// Verifies `Keymanager-Signature` with the secret, as a receiver does.
fn signature_ok(received: &Received, secret: &str) -> bool {
    let header = received.header(SIGNATURE_HEADER);
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(&received.raw);
    crate::identity::hex(&TestCrypto.hmac_sha256(secret.as_bytes(), &message)) == v1
}

// ----- pure rules -----

#[test]
fn urls_must_be_https_except_loopback_http_when_allowed() {
    let strict = NotificationConfig::default();
    let dev = NotificationConfig {
        allow_insecure_webhooks: true,
    };
    assert_eq!(
        validate_url(" https://hooks.example.com/km?x=1 ", strict).unwrap(),
        "https://hooks.example.com/km?x=1"
    );
    for loopback in [
        "http://127.0.0.1:9/h",
        "http://localhost/h",
        "http://[::1]:8080/",
    ] {
        assert!(validate_url(loopback, dev).is_ok(), "{loopback}");
        let refused = validate_url(loopback, strict).unwrap_err().to_string();
        assert!(refused.contains("allow_insecure_webhooks"), "{refused}");
    }
    for (bad, hint) in [
        ("http://hooks.example.com/h", "https://"),
        ("http://10.0.0.1/h", "https://"),
        ("ftp://hooks.example.com/", "scheme"),
        ("https://user:pw@hooks.example.com/", "user or password"),
        ("https://hooks.example.com/#x", "fragment"),
        ("hooks.example.com/h", "not a URL"),
        ("", "not a URL"),
    ] {
        let error = validate_url(bad, dev).unwrap_err();
        assert!(matches!(error, NotificationError::InvalidUrl(_)), "{bad}");
        assert!(error.to_string().contains(hint), "{bad}: {error}");
    }
    let long = format!("https://h.example/{}", "a".repeat(MAX_URL_CHARS));
    assert!(validate_url(&long, strict).is_err());
}

#[test]
fn lead_times_are_one_to_five_distinct_days_within_a_year() {
    assert_eq!(validate_lead_days(&[1, 30, 7]).unwrap(), vec![30, 7, 1]);
    assert_eq!(validate_lead_days(&[365]).unwrap(), vec![365]);
    for bad in [
        vec![],
        vec![0],
        vec![366],
        vec![7, 7],
        vec![1, 2, 3, 4, 5, 6],
    ] {
        assert!(
            matches!(
                validate_lead_days(&bad),
                Err(NotificationError::InvalidLeadDays(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn the_nearest_lead_time_crossed_is_due() {
    let leads = [30, 7, 1];
    assert_eq!(lead_due(31 * DAY, &leads), None);
    assert_eq!(lead_due(30 * DAY, &leads), Some(30));
    assert_eq!(lead_due(10 * DAY, &leads), Some(30));
    // First seen 3 days ahead: only the 7-day notice, not the 30-day one as well.
    assert_eq!(lead_due(3 * DAY, &leads), Some(7));
    assert_eq!(lead_due(DAY, &leads), Some(1));
    assert_eq!(lead_due(60, &leads), Some(1));
}

#[test]
fn a_plan_skips_past_events_and_lead_times_already_delivered() {
    let now = START;
    let soon = event("soon", UpcomingKind::Expiry, now + 10 * DAY);
    let gone = event("gone", UpcomingKind::Expiry, now - 1);
    let far = event("far", UpcomingKind::Destruction, now + 40 * DAY);
    let due = plan(
        &[soon.clone(), gone, far],
        &NoticeLog::default(),
        &[30, 7, 1],
        now,
    );
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event.label, "soon");
    assert_eq!((due[0].lead_days, due[0].days_left), (30, 10));

    let mut log = NoticeLog::default();
    log.remember(due[0].sent("dlv_1", now));
    assert!(plan(std::slice::from_ref(&soon), &log, &[30, 7, 1], now).is_empty());
    // Four days later it is 6 days ahead: the 7-day notice is due.
    let later = now + 4 * DAY;
    let due = plan(std::slice::from_ref(&soon), &log, &[30, 7, 1], later);
    assert_eq!((due[0].lead_days, due[0].days_left), (7, 6));
    log.remember(due[0].sent("dlv_2", later));
    assert_eq!(log.sent.len(), 1, "one entry per event");
    assert_eq!(log.delivered("soon", NoticeKind::Expiry, soon.at), Some(7));
    // A nearer notice delivered covers farther lead times added afterwards.
    assert!(plan(std::slice::from_ref(&soon), &log, &[30, 14, 7, 1], later).is_empty());
    // A changed expiry is another event.
    let moved = event("soon", UpcomingKind::Expiry, soon.at + DAY);
    assert_eq!(plan(&[moved], &log, &[30, 7, 1], later).len(), 1);
    // Rounded up: a few seconds short of 6 days is still "6 days left".
    let due = plan(
        std::slice::from_ref(&soon),
        &NoticeLog::default(),
        &[7],
        later + 5,
    );
    assert_eq!(due[0].days_left, 6);
}

#[test]
fn the_log_prunes_events_that_are_past() {
    let mut log = NoticeLog::default();
    let a = event("a", UpcomingKind::Expiry, START + DAY);
    let b = event("b", UpcomingKind::Destruction, START + 3 * DAY);
    for (event, lead) in [(&a, 1), (&b, 7)] {
        let due = plan(std::slice::from_ref(event), &log, &[lead], START);
        log.remember(due[0].sent("dlv", START));
    }
    assert!(!log.has_past(START));
    assert!(log.has_past(START + DAY));
    log.prune(START + DAY);
    assert_eq!(log.sent.len(), 1);
    assert_eq!(log.sent[0].key, "b");
}

#[test]
fn the_signature_matches_a_vector_computed_with_python_hmac() {
    // python3 -c 'import hmac,hashlib; print(hmac.new(SECRET.encode(),
    //   b"1800000000." + BODY, hashlib.sha256).hexdigest())'
    let body =
        br#"{"type":"test","id":"dlv_test_x","tenant":"acme","sent_at":"2027-01-15T08:00:00Z"}"#;
    assert_eq!(
        signature_header(&TestCrypto, &SecretText::from(SECRET), START, body),
        "t=1800000000,v1=3d87aab0c8fd5c723d594b5c1275048afbbea8ec97bfadba33f75beeee46374c"
    );
    assert_eq!(rfc3339(START), "2027-01-15T08:00:00Z");
    assert_eq!(
        job::test_payload("dlv_test_x", &acme(), START),
        body.to_vec(),
        "the test payload's exact bytes"
    );
}

// ----- the service -----

#[tokio::test]
async fn enabling_makes_a_secret_once_and_it_never_shows_again() {
    let rig = Rig::new();
    let (service, _) = rig.service(Arc::new(NoWebhookSender));
    let tenant = acme();
    assert_eq!(
        service.settings(&tenant).await.unwrap(),
        NotificationSettings::default()
    );
    // Saved disabled: no secret yet.
    let saved = service
        .save(
            &tenant,
            NotificationUpdate {
                enabled: false,
                ..enabled("https://hooks.example.com/a")
            },
            "ann",
        )
        .await
        .unwrap();
    assert!(saved.new_secret.is_none());
    assert_eq!(saved.settings.secret_created_at, None);

    let saved = service
        .save(&tenant, enabled("https://hooks.example.com/a"), "ann")
        .await
        .unwrap();
    let secret = saved.new_secret.clone().unwrap();
    assert!(secret.expose_secret().starts_with(SECRET_PREFIX));
    assert_eq!(secret.expose_secret().len(), SECRET_PREFIX.len() + 64);
    assert_eq!(saved.settings.secret_created_at, Some(START));
    assert!(!format!("{saved:?}").contains(secret.expose_secret()));
    assert!(!format!("{service:?}").contains(secret.expose_secret()));

    // Saving again keeps the secret and does not show it.
    let again = service
        .save(&tenant, enabled("https://hooks.example.com/b"), "ann")
        .await
        .unwrap();
    assert!(again.new_secret.is_none());
    assert_eq!(again.settings.secret_created_at, Some(START));
    let stored = serde_json::to_string(&service.settings(&tenant).await.unwrap()).unwrap();
    assert!(!stored.contains(secret.expose_secret()));
    // The secret's record is sealed: its bytes on the HSM do not contain it.
    let raw = rig.hsm.raw("kms.notify-secret.acme").unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains(&secret.expose_secret()[SECRET_PREFIX.len()..])
    );

    rig.clock.advance(60);
    let rotated = service.rotate_secret(&tenant, "ann").await.unwrap();
    assert_ne!(rotated.secret.expose_secret(), secret.expose_secret());
    assert_eq!(rotated.created_at, START + 60);
    assert_eq!(
        service.settings(&tenant).await.unwrap().secret_created_at,
        Some(START + 60)
    );
}

#[tokio::test]
async fn enabling_needs_a_url_and_refuses_plain_http() {
    let rig = Rig::new();
    let (service, _) = rig.service(Arc::new(NoWebhookSender));
    let no_url = NotificationUpdate {
        url: None,
        ..enabled("x")
    };
    assert!(matches!(
        service.save(&acme(), no_url, "ann").await,
        Err(NotificationError::UrlMissing)
    ));
    assert!(matches!(
        service
            .save(&acme(), enabled("http://hooks.example.com/"), "ann")
            .await,
        Err(NotificationError::InvalidUrl(_))
    ));
    assert!(matches!(
        service.send_test(&acme()).await,
        Err(NotificationError::UrlMissing)
    ));
}

#[tokio::test]
async fn each_notice_is_delivered_once_across_runs_and_replicas() {
    let rig = Rig::new();
    let recorder = Recorder::answering(204);
    let (service, audit) = rig.service(recorder.clone());
    let tenant = acme();
    let secret = service
        .save(&tenant, enabled("https://hooks.example.com/km"), "ann")
        .await
        .unwrap()
        .new_secret
        .unwrap();
    let expiring = event("web-signing", UpcomingKind::Expiry, START + 10 * DAY);
    let destroyed = event("old", UpcomingKind::Destruction, START + 7 * DAY);
    let events = [destroyed.clone(), expiring.clone()];

    let mut budget = MAX_SENDS_PER_RUN;
    let first = service
        .notify_tenant(&tenant, &events, START, &mut budget)
        .await
        .unwrap();
    assert_eq!(first.sent, 2);
    let received = recorder.take();
    assert_eq!(received.len(), 2);
    let by_type = |t: &str| received.iter().find(|r| r.body["type"] == t).unwrap();
    let destruction = by_type("key.destruction_upcoming");
    assert_eq!(destruction.body["key"], "old");
    assert_eq!(destruction.body["days_left"], 7);
    assert_eq!(destruction.body["state"], "destroy-scheduled");
    let expiry = by_type("key.expiry_upcoming");
    assert_eq!(expiry.url, "https://hooks.example.com/km");
    assert_eq!(expiry.body["tenant"], "acme");
    assert_eq!(expiry.body["key"], "web-signing");
    assert_eq!(expiry.body["days_left"], 10);
    assert_eq!(expiry.body["owner"], "alice");
    assert_eq!(expiry.body["at"], rfc3339(START + 10 * DAY));
    assert_eq!(expiry.body["sent_at"], rfc3339(START));
    assert_eq!(expiry.header(DELIVERY_HEADER), expiry.body["id"]);
    assert_eq!(expiry.header("content-type"), "application/json");
    assert!(signature_ok(expiry, secret.expose_secret()));
    assert!(!signature_ok(expiry, "kmwhsec_wrong"));

    // The next run, and another replica's run, find nothing to do.
    rig.clock.advance(60);
    let again = service
        .notify_tenant(&tenant, &events, START + 60, &mut budget)
        .await
        .unwrap();
    assert_eq!(again.sent, 0);
    let (other, _) = rig.service(recorder.clone());
    assert_eq!(
        other
            .notify_tenant(&tenant, &events, START + 60, &mut budget)
            .await
            .unwrap()
            .sent,
        0
    );
    assert!(recorder.take().is_empty());

    // Each attempt is audited as system:scheduler, without the secret.
    let log = audit.read(1..=u64::MAX).await.unwrap();
    let notices: Vec<_> = log.iter().filter(|e| e.action == NOTICE_ACTION).collect();
    assert_eq!(notices.len(), 4, "request and result of each delivery");
    for event in &notices {
        assert_eq!(event.actor, "system:scheduler");
        let text = serde_json::to_string(event).unwrap();
        assert!(!text.contains(&secret.expose_secret()[SECRET_PREFIX.len()..]));
    }
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_id_and_past_events_are_pruned() {
    let rig = Rig::new();
    let recorder = Recorder::answering(500);
    let (service, _) = rig.service(recorder.clone());
    let tenant = acme();
    service
        .save(&tenant, enabled("https://hooks.example.com/km"), "ann")
        .await
        .unwrap();
    let events = [
        event("a", UpcomingKind::Expiry, START + 2 * DAY),
        event("b", UpcomingKind::Expiry, START + 3 * DAY),
    ];
    let mut budget = MAX_SENDS_PER_RUN;
    let failed = service
        .notify_tenant(&tenant, &events, START, &mut budget)
        .await
        .unwrap();
    assert_eq!(
        (failed.sent, failed.failed),
        (0, 1),
        "stops at the first failure"
    );
    let first = recorder.take();
    assert_eq!(first.len(), 1);

    recorder.set(0);
    assert_eq!(
        service
            .notify_tenant(&tenant, &events, START + 60, &mut budget)
            .await
            .unwrap()
            .failed,
        1
    );
    let second = recorder.take();
    assert_eq!(
        second[0].body["id"], first[0].body["id"],
        "same notice, same id"
    );

    recorder.set(200);
    let done = service
        .notify_tenant(&tenant, &events, START + 120, &mut budget)
        .await
        .unwrap();
    assert_eq!(done.sent, 2);
    let third = recorder.take();
    assert_eq!(third[0].body["id"], first[0].body["id"]);

    // Once both events are past, their entries go.
    let store_log = || async {
        service
            .inner
            .store
            .get_fresh::<NoticeLog>(LOG_KIND, "acme")
            .await
            .unwrap()
            .unwrap()
            .value
    };
    assert_eq!(store_log().await.sent.len(), 2);
    service
        .notify_tenant(&tenant, &events, START + 4 * DAY, &mut budget)
        .await
        .unwrap();
    assert!(store_log().await.sent.is_empty());
}

#[tokio::test]
async fn a_run_sends_at_most_its_budget_and_disabled_tenants_nothing() {
    let rig = Rig::new();
    let recorder = Recorder::answering(200);
    let (service, _) = rig.service(recorder.clone());
    let tenant = acme();
    service
        .save(&tenant, enabled("https://hooks.example.com/km"), "ann")
        .await
        .unwrap();
    let events: Vec<_> = (1..=3)
        .map(|i| event(&format!("k{i}"), UpcomingKind::Expiry, START + i * DAY))
        .collect();
    let mut budget = 2;
    let run = service
        .notify_tenant(&tenant, &events, START, &mut budget)
        .await
        .unwrap();
    assert_eq!((run.sent, run.deferred, budget), (2, 1, 0));
    let mut budget = 2;
    assert_eq!(
        service
            .notify_tenant(&tenant, &events, START, &mut budget)
            .await
            .unwrap()
            .sent,
        1
    );
    recorder.take();

    service
        .save(
            &tenant,
            NotificationUpdate {
                enabled: false,
                ..enabled("https://hooks.example.com/km")
            },
            "ann",
        )
        .await
        .unwrap();
    let late = [event("k9", UpcomingKind::Expiry, START + DAY / 2)];
    let mut budget = 5;
    service
        .notify_tenant(&tenant, &late, START, &mut budget)
        .await
        .unwrap();
    assert!(recorder.take().is_empty());
}

#[tokio::test]
async fn a_test_delivery_reports_the_status_or_the_error() {
    let rig = Rig::new();
    let recorder = Recorder::answering(202);
    let (service, _) = rig.service(recorder.clone());
    let tenant = acme();
    let secret = service
        .save(&tenant, enabled("https://hooks.example.com/km"), "ann")
        .await
        .unwrap()
        .new_secret
        .unwrap();
    let report = service.send_test(&tenant).await.unwrap();
    assert!(report.delivered());
    assert_eq!(report.status, Some(202));
    let received = recorder.take();
    assert_eq!(received[0].body["type"], "test");
    assert_eq!(received[0].body["id"], report.delivery_id);
    assert!(signature_ok(&received[0], secret.expose_secret()));

    recorder.set(302);
    let redirected = service.send_test(&tenant).await.unwrap();
    assert!(!redirected.delivered());
    assert!(
        redirected
            .error
            .unwrap()
            .contains("redirects are not followed")
    );
    recorder.set(0);
    let down = service.send_test(&tenant).await.unwrap();
    assert_eq!(down.status, None);
    assert!(down.error.unwrap().contains("connection refused"));
    let (unwired, _) = rig.service(Arc::new(NoWebhookSender));
    let report = unwired.send_test(&tenant).await.unwrap();
    assert!(report.error.unwrap().contains("not available"));
}
