//! Expiry notifications end to end: the REST API over real HTTP configures a tenant's webhook,
//! keys are created and scheduled for destruction in the TSB emulator, and the scheduler's
//! `ExpiryNoticeJob` runs against the world's `ManualClock`, delivering through the binary's own
//! reqwest adapter (`control-plane/server/src/webhook.rs`, compiled in here) to a real HTTP
//! receiver on 127.0.0.1 that records every delivery. Signatures are checked outside Rust, with
//! `openssl dgst -hmac` and Python's `hmac`.

#[path = "../../control-plane/server/src/webhook.rs"]
mod webhook;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use km_core::notifications::NOTICE_ACTION;
use km_core::scheduler::ScheduledJob as _;
use km_core::{App, Clock, ExpiryNoticeJob, NotificationConfig};
use km_domain::TenantId;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Route, handler, post};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{ApiWorld, Auth, PASSWORD, ROOT_PASSWORD};
use webhook::ReqwestWebhookSender;

const DAY: u64 = 24 * 60 * 60;
const SETTINGS: &str = "/api/v1/tenants/acme/notifications";

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    signature: String,
    delivery_id: String,
    content_type: String,
    user_agent: String,
    body: Vec<u8>,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on 127.0.0.1: `/hook` records and answers the status set with
/// [`Receiver::answer`]; `/redirect` records and answers 302 to `/hook`.
struct Receiver {
    base: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    status: Arc<AtomicU16>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct ReceiverState {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    status: Arc<AtomicU16>,
}

fn header(req: &poem::Request, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[handler]
async fn record(req: &poem::Request, body: Vec<u8>, state: Data<&ReceiverState>) -> poem::Response {
    state.deliveries.lock().unwrap().push(Delivery {
        path: req.uri().path().to_owned(),
        signature: header(req, "keymanager-signature"),
        delivery_id: header(req, "keymanager-delivery"),
        content_type: header(req, "content-type"),
        user_agent: header(req, "user-agent"),
        body,
    });
    let status = if req.uri().path() == "/redirect" {
        302
    } else {
        state.status.load(Ordering::SeqCst)
    };
    poem::Response::builder()
        .status(poem::http::StatusCode::from_u16(status).unwrap())
        .header("location", "/hook")
        .finish()
}

impl Receiver {
    async fn start() -> Self {
        let state = ReceiverState {
            deliveries: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
        };
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
        let routes = Route::new()
            .at("/hook", post(record))
            .at("/redirect", post(record))
            .data(state.clone());
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(routes).await;
        });
        Self {
            base: format!("http://{addr}"),
            deliveries: state.deliveries,
            status: state.status,
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn take(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.deliveries.lock().unwrap())
    }
}

/// The API world, its REST API served a second time by an app that delivers webhooks (the real
/// adapter, loopback http allowed as in `keymanager dev`); `world.base` points there.
struct World {
    api: ApiWorld,
    app: App,
    /// The world's own server: no webhook client, https only.
    strict_base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl World {
    async fn start() -> (Self, Auth) {
        let mut api = ApiWorld::start().await;
        api.set_up().await;
        let root = api.login("root", ROOT_PASSWORD).await;
        let app = api.app.clone().with_webhooks(
            Arc::new(ReqwestWebhookSender::new().unwrap()),
            NotificationConfig {
                allow_insecure_webhooks: true,
            },
        );
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
        let endpoint = km_api::routes(app.clone());
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run(endpoint)
                .await;
        });
        let strict_base = std::mem::replace(&mut api.base, format!("http://{addr}"));
        (
            Self {
                api,
                app,
                strict_base,
                server,
            },
            root,
        )
    }

    fn job(&self) -> ExpiryNoticeJob {
        ExpiryNoticeJob::new(
            self.app.partitions().clone(),
            self.app.keys().clone(),
            self.app.notifications().clone(),
        )
    }

    /// Runs the job at the clock's now; the number of notices delivered.
    async fn run(&self) -> u64 {
        self.job().run(self.api.clock.now()).await.unwrap().actions
    }

    /// Moves the clock on; sessions expire with it, so root signs in again.
    async fn advance(&self, secs: u64) -> Auth {
        self.api.clock.advance(secs);
        self.api.login("root", ROOT_PASSWORD).await
    }

    async fn create_key(&self, root: &Auth, label: &str, expires_at: Option<u64>) {
        let mut body = json!({"label": label, "algorithm": "EC", "curve": "P-256",
            "attributes": {"sign": true, "verify": true}});
        if let Some(at) = expires_at {
            body["expires_at"] = json!(at);
        }
        let created = self
            .api
            .call(Method::POST, "/api/v1/tenants/acme/keys", root, Some(body))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }

    async fn lifecycle(&self, root: &Auth, label: &str, event: &str) {
        let answer = self
            .api
            .call(
                Method::POST,
                &format!("/api/v1/tenants/acme/keys/{label}/lifecycle"),
                root,
                Some(json!({"event": event, "reason": "test"})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{event}: {}", answer.text);
    }

    /// Enables notifications to `url`; returns the signing secret made by that first save.
    async fn enable(&self, root: &Auth, url: &str) -> String {
        let saved = self
            .api
            .call(
                Method::PUT,
                SETTINGS,
                root,
                Some(json!({"enabled": true, "url": url, "lead_days": [30, 7, 1]})),
            )
            .await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
        saved.body["signing_secret"].as_str().unwrap().to_owned()
    }
}

/// HMAC-SHA256 hex by `openssl dgst -hmac` over `<t>.<body>`.
fn openssl_hmac(secret: &str, message: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    // "SHA2-256(stdin)= <hex>" (the prefix varies by version): the last word.
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned()
}

/// The same with Python's `hmac` module.
fn python_hmac(secret: &str, message: &[u8]) -> String {
    let script = "import hashlib, hmac, sys\n\
                  print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())";
    let mut child = Command::new("python3")
        .args(["-c", script, secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Checks `Keymanager-Signature` with both external tools; returns `t`.
fn assert_signed(delivery: &Delivery, secret: &str, now: u64) -> u64 {
    let (t, v1) = delivery
        .signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature header {:?}", delivery.signature));
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(&delivery.body);
    assert_eq!(openssl_hmac(secret, &message), v1, "openssl disagrees");
    assert_eq!(python_hmac(secret, &message), v1, "python disagrees");
    assert_ne!(
        openssl_hmac("kmwhsec_not-the-secret", &message),
        v1,
        "a wrong secret must not verify"
    );
    let t: u64 = t.parse().unwrap();
    assert_eq!(t, now, "t is the sending time");
    t
}

/// `PUT` of the settings at another server of the same world (`base`), as `auth` (a session).
async fn put_at(world: &ApiWorld, base: &str, auth: &Auth, body: Value) -> (StatusCode, Value) {
    let Auth::Session { cookie, csrf } = auth else {
        panic!("a session is needed");
    };
    let response = world
        .http
        .put(format!("{base}{SETTINGS}"))
        .header("cookie", format!("km_session={cookie}"))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn notices_are_signed_sent_once_per_lead_time_and_retried_after_a_failure() {
    let (world, root) = World::start().await;
    let receiver = Receiver::start().await;
    let secret = world.enable(&root, &receiver.url("/hook")).await;
    let start = world.api.clock.now();
    world
        .create_key(&root, "expiring", Some(start + 10 * DAY))
        .await;
    world.create_key(&root, "forever", None).await;

    // 10 days ahead: exactly one notice, for the 30-day lead time.
    assert_eq!(world.run().await, 1);
    let deliveries = receiver.take();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let first = &deliveries[0];
    assert_eq!(first.path, "/hook");
    assert_eq!(first.content_type, "application/json");
    assert!(
        first.user_agent.starts_with("keymanager/"),
        "{}",
        first.user_agent
    );
    let body = first.json();
    assert_eq!(body["type"], "key.expiry_upcoming");
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["key"], "expiring");
    assert_eq!(body["days_left"], 10);
    assert_eq!(body["state"], "active");
    assert_eq!(body["id"], first.delivery_id.as_str());
    assert!(first.delivery_id.starts_with("dlv_"));
    let at = time::OffsetDateTime::parse(
        body["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        at.unix_timestamp(),
        i64::try_from(start + 10 * DAY).unwrap()
    );
    assert_signed(first, &secret, start);

    // Again: nothing (the marker is on the management partition).
    assert_eq!(world.run().await, 0);
    assert!(receiver.take().is_empty());

    // Six days before: the 7-day notice, once.
    let root = world.advance(4 * DAY).await;
    assert_eq!(world.run().await, 1);
    let deliveries = receiver.take();
    assert_eq!(deliveries.len(), 1);
    let body = deliveries[0].json();
    assert_eq!(
        (body["key"].as_str(), body["days_left"].as_u64()),
        (Some("expiring"), Some(6))
    );
    assert_ne!(
        deliveries[0].delivery_id, first.delivery_id,
        "another notice, another id"
    );
    assert_signed(&deliveries[0], &secret, start + 4 * DAY);
    assert_eq!(world.run().await, 0);

    // A key scheduled for destruction (default waiting period 7 days): a destruction notice.
    world.create_key(&root, "retired", None).await;
    world.lifecycle(&root, "retired", "deactivate").await;
    world
        .lifecycle(&root, "retired", "schedule_destruction")
        .await;
    assert_eq!(world.run().await, 1);
    let deliveries = receiver.take();
    assert_eq!(deliveries.len(), 1);
    let body = deliveries[0].json();
    assert_eq!(body["type"], "key.destruction_upcoming");
    assert_eq!(body["key"], "retired");
    assert_eq!(body["state"], "destroy-scheduled");
    assert_eq!(body["days_left"], 7);

    // A receiver answering 500: nothing is marked, the next run sends the same notice again.
    world
        .create_key(&root, "flaky", Some(start + 4 * DAY + 20 * DAY))
        .await;
    receiver.answer(500);
    let failed = world.job().run(world.api.clock.now()).await.unwrap();
    assert_eq!(failed.actions, 0, "{failed:?}");
    let refused = receiver.take();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].json()["key"], "flaky");
    receiver.answer(204);
    world.advance(60).await;
    assert_eq!(world.run().await, 1);
    let retried = receiver.take();
    assert_eq!(retried.len(), 1);
    assert_eq!(
        retried[0].delivery_id, refused[0].delivery_id,
        "a retry keeps the id, so receivers can deduplicate"
    );
    assert_eq!(world.run().await, 0);

    // Every attempt is audited as system:scheduler; the secret is in no audit event.
    let events = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    let notices: Vec<_> = events
        .iter()
        .filter(|e| e.action == NOTICE_ACTION)
        .collect();
    assert_eq!(notices.len(), 2 * 5, "request and result of 5 attempts");
    assert!(notices.iter().all(|e| e.actor == "system:scheduler"));
    assert!(
        notices
            .iter()
            .any(|e| e.details.get("error").map(String::as_str) == Some("webhook_status_500")),
        "{notices:?}"
    );
    let secret_hex = &secret["kmwhsec_".len()..];
    for event in &events {
        let text = serde_json::to_string(event).unwrap();
        assert!(!text.contains(secret_hex), "the secret leaked into {text}");
    }
}

#[tokio::test]
async fn settings_refuse_plain_http_and_the_secret_is_shown_only_when_made() {
    let (world, root) = World::start().await;
    let receiver = Receiver::start().await;
    let tenant = TenantId::parse("acme").unwrap();

    // The defaults, before anything is saved.
    let fresh = world.api.call(Method::GET, SETTINGS, &root, None).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    assert_eq!(fresh.body["enabled"], false);
    assert_eq!(fresh.body["lead_days"], json!([30, 7, 1]));
    assert_eq!(fresh.body["signing_secret_set"], false);

    // https only: a non-loopback http URL is refused everywhere; loopback http only where the
    // deployment allows insecure webhooks.
    for base in [world.api.base.as_str(), world.strict_base.as_str()] {
        let (status, body) = put_at(
            &world.api,
            base,
            &root,
            json!({"enabled": true, "url": "http://hooks.example.com/km"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "invalid_input");
        assert_eq!(body["reason"], "invalid_webhook_url");
        assert!(
            body["detail"].as_str().unwrap().contains("https://"),
            "{body}"
        );
    }
    let (status, body) = put_at(
        &world.api,
        &world.strict_base,
        &root,
        json!({"enabled": true, "url": receiver.url("/hook")}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("allow_insecure_webhooks"),
        "{body}"
    );
    for (body, reason) in [
        (json!({"enabled": true}), "webhook_url_required"),
        (
            json!({"enabled": true, "url": "https://h.example/", "lead_days": [0]}),
            "invalid_lead_days",
        ),
        (
            json!({"enabled": true, "url": "https://u:p@h.example/"}),
            "invalid_webhook_url",
        ),
    ] {
        let answer = world
            .api
            .call(Method::PUT, SETTINGS, &root, Some(body))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert_eq!(answer.body["reason"], reason, "{}", answer.text);
    }
    // Nothing was saved, and no secret was made.
    let unchanged = world.api.call(Method::GET, SETTINGS, &root, None).await;
    assert_eq!(unchanged.body["signing_secret_set"], false);

    // The first enabling makes the secret and shows it; nothing else ever does.
    let secret = world.enable(&root, &receiver.url("/hook")).await;
    assert!(
        secret.starts_with("kmwhsec_") && secret.len() == 8 + 64,
        "{secret}"
    );
    let again = world
        .api
        .call(
            Method::PUT,
            SETTINGS,
            &root,
            Some(json!({"enabled": true, "url": receiver.url("/hook"), "lead_days": [14, 2]})),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert!(again.body["signing_secret"].is_null(), "{}", again.text);
    assert_eq!(again.body["settings"]["lead_days"], json!([14, 2]));
    let shown = world.api.call(Method::GET, SETTINGS, &root, None).await;
    assert_eq!(shown.body["enabled"], true);
    assert_eq!(shown.body["url"], receiver.url("/hook"));
    assert_eq!(shown.body["signing_secret_set"], true);
    assert!(!shown.text.contains(&secret[8..]), "{}", shown.text);

    // A test delivery, signed with that secret.
    let tested = world
        .api
        .call(Method::POST, &format!("{SETTINGS}/test"), &root, None)
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.text);
    assert_eq!(tested.body["delivered"], true, "{}", tested.text);
    assert_eq!(tested.body["status"], 200);
    let deliveries = receiver.take();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].json()["type"], "test");
    assert_eq!(deliveries[0].json()["id"], tested.body["delivery_id"]);
    assert_signed(&deliveries[0], &secret, world.api.clock.now());

    // Rotation: a new secret, shown once; the next delivery is signed with it.
    let rotated = world
        .api
        .call(Method::POST, &format!("{SETTINGS}/secret"), &root, None)
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_secret = rotated.body["signing_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    world
        .api
        .call(Method::POST, &format!("{SETTINGS}/test"), &root, None)
        .await;
    let deliveries = receiver.take();
    assert_signed(&deliveries[0], &new_secret, world.api.clock.now());
    let shown = world.api.call(Method::GET, SETTINGS, &root, None).await;
    assert!(!shown.text.contains(&new_secret[8..]) && !shown.text.contains(&secret[8..]));

    // Redirects are not followed; an unreachable receiver is explained.
    let redirect = receiver.url("/redirect");
    world
        .api
        .call(
            Method::PUT,
            SETTINGS,
            &root,
            Some(json!({"enabled": true, "url": redirect})),
        )
        .await;
    let tested = world
        .api
        .call(Method::POST, &format!("{SETTINGS}/test"), &root, None)
        .await;
    assert_eq!(tested.body["delivered"], false, "{}", tested.text);
    assert_eq!(tested.body["status"], 302);
    assert!(
        tested.body["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"),
        "{}",
        tested.text
    );
    let deliveries = receiver.take();
    assert_eq!(
        deliveries
            .iter()
            .map(|d| d.path.as_str())
            .collect::<Vec<_>>(),
        ["/redirect"],
        "the redirect's target was not called"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    world
        .api
        .call(
            Method::PUT,
            SETTINGS,
            &root,
            Some(json!({"enabled": true, "url": dead})),
        )
        .await;
    let tested = world
        .api
        .call(Method::POST, &format!("{SETTINGS}/test"), &root, None)
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.text);
    assert_eq!(tested.body["delivered"], false);
    assert!(tested.body["status"].is_null());
    assert!(
        tested.body["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the receiver"),
        "{}",
        tested.text
    );

    // Readers see the settings (never the secret) and change nothing.
    world
        .api
        .create_user(&root, "acme", "rob", "readonly")
        .await;
    let rob = world.api.login("rob", PASSWORD).await;
    let read = world.api.call(Method::GET, SETTINGS, &rob, None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert!(read.body.get("signing_secret").is_none());
    for (method, path, body) in [
        (
            Method::PUT,
            SETTINGS.to_owned(),
            Some(json!({"enabled": false})),
        ),
        (Method::POST, format!("{SETTINGS}/secret"), None),
        (Method::POST, format!("{SETTINGS}/test"), None),
    ] {
        let refused = world.api.call(method, &path, &rob, body).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.text
        );
    }

    // Neither the settings nor the services print a secret.
    let settings = world.app.notifications().settings(&tenant).await.unwrap();
    for text in [
        format!("{settings:?}"),
        format!("{:?}", world.app.notifications()),
        format!("{:?}", world.app),
    ] {
        assert!(
            !text.contains(&secret[8..]) && !text.contains(&new_secret[8..]),
            "{text}"
        );
    }
    let events = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.details.get("operation").map(String::as_str)
                == Some("rotate_notification_secret")),
        "rotation is audited"
    );
    for event in &events {
        let text = serde_json::to_string(event).unwrap();
        assert!(
            !text.contains(&secret[8..]) && !text.contains(&new_secret[8..]),
            "{text}"
        );
    }
}
