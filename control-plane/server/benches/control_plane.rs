//! Control-plane goals (DESIGN.md §9): P3 — session check + `authorize()` — and P6 — a storm of
//! concurrent bcrypt sign-ins while authenticated API traffic runs.
//!
//! Run: `cargo bench -p keymanager --bench control_plane` (release build). Knobs:
//! `KM_BENCH_P3_ITERATIONS` (timed session checks, default 20000), `KM_BENCH_SECONDS` (quiet load
//! phase, default 5), `KM_BENCH_CONCURRENCY` (load clients, default 8), `KM_BENCH_LOGINS` (sign-ins
//! in the storm, default 50), `KM_BENCH_BCRYPT_COST` (default 12), `KM_BENCH_BCRYPT_SLOTS`
//! (concurrent hashes, default: `BcryptConfig::default()`), `KM_BENCH_EMULATOR_LATENCY_MS` (latency
//! injected into every emulator call during P6, default 2 as in P1).
//!
//! The whole stack runs in this process, wired as the e2e suite and `keymanager serve` wire it:
//! the TSB emulator (ephemeral, admin API on, no authentication) ← km-tsb ← km-hsm-tsb ←
//! StateStore / AuditLog / Identity with the km-auth adapters ← `App` ← `km_api::routes` (plus a
//! `/readyz` like the binary's) served by poem on 127.0.0.1:0 and driven with reqwest. Emulator,
//! server and load generator share the machine's cores, so read P6 as a ratio within one run.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Stats, Verifier, micros, stats};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use km_auth::{BcryptConfig, HttpSso, HttpSsoConfig, identity_ports};
use km_core::identity::SetupStart;
use km_core::{
    App, AppParts, AuditConfig, AuditLog, Clock, Identity, IdentityConfig, NoSink, Readiness,
    ReadinessReport, SecretText, StateStore, StateStoreConfig, SystemClock,
};
use km_core::{Partitions, SsoService, VaultSet};
use km_domain::{Action, TenantId, authorize};
use km_hsm_tsb::{TsbHsm, TsbPartitionConnector};
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;
use km_tsb_emulator::EmulatorConfig;
use km_vault_hsm::HsmVault;
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use serde_json::{Value, json};

const ROOT_PASSWORD: &str = "violet harbour lantern nine";
const PASSWORD: &str = "copper meadow whistle seven";
const TENANT: &str = "acme";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The readiness probe as `keymanager serve` answers it (two calls to the management partition).
#[handler]
async fn readyz(readiness: Data<&Readiness>) -> Response {
    match readiness.check().await {
        ReadinessReport::Ready { .. } => StatusCode::OK.into_response(),
        ReadinessReport::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// The running stack.
struct Stack {
    fixture: EmulatorFixture,
    app: App,
    base: String,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Stack {
    async fn start(bcrypt: BcryptConfig) -> (Self, SecretText) {
        let fixture = EmulatorFixture::start(EmulatorConfig {
            admin_api: true,
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let hsm = Arc::new(TsbHsm::new(
            TsbClient::builder(fixture.base_url()).build().unwrap(),
        ));
        let store = StateStore::new(hsm.clone(), clock.clone(), StateStoreConfig::default());
        store.prepare().await.unwrap();
        let audit = AuditLog::new(
            hsm.clone(),
            store.clone(),
            clock.clone(),
            Arc::new(NoSink),
            AuditConfig::default(),
        );
        audit.prepare().await.unwrap();
        let identity = Identity::new(
            store.clone(),
            clock.clone(),
            identity_ports(bcrypt),
            IdentityConfig::default(),
        );
        let SetupStart::TokenIssued(setup_token) = identity.setup.begin("bench").await.unwrap()
        else {
            unreachable!("a fresh emulator has no administrator")
        };
        let app = App::new(AppParts {
            identity,
            audit,
            store: store.clone(),
            clock: clock.clone(),
            verifier: Arc::new(Verifier),
            partitions: Partitions::new(
                store.clone(),
                VaultSet::new().with("hsm", Arc::new(HsmVault::new(store.clone()))),
                Arc::new(TsbPartitionConnector::default()),
            ),
            sso: SsoService::new(
                store.clone(),
                clock.clone(),
                Arc::new(HttpSso::new(HttpSsoConfig::default()).unwrap()),
            ),
        });
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
        let endpoint = Route::new()
            .at("/readyz", get(readyz).data(Readiness::new(hsm)))
            .nest_no_strip("/api", km_api::routes(app.clone()));
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run(endpoint)
                .await;
        });
        let stack = Self {
            fixture,
            app,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            server,
        };
        (stack, setup_token)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs in; returns (cookie value, CSRF token).
    async fn login(&self, username: &str, password: &str) -> (String, String) {
        let response = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .and_then(|pair| pair.strip_prefix("km_session="))
            .expect("a session cookie")
            .to_owned();
        let body: Value = response.json().await.unwrap();
        let csrf = body["csrf_token"]
            .as_str()
            .or_else(|| body["session"]["csrf_token"].as_str())
            .expect("a CSRF token")
            .to_owned();
        (cookie, csrf)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One session check as every API request does it, then the permission decision.
async fn session_check_and_authorize(app: &App, cookie: &SecretText, tenant: &TenantId) {
    let caller = app
        .authenticate(None, Some(cookie.clone()))
        .await
        .unwrap()
        .expect("a session caller");
    black_box(authorize(caller.principal(), Some(tenant), Action::ListUsers).unwrap());
}

/// Median of `work` timed one call at a time, `iterations` times after `iterations / 10` warm-up
/// calls.
async fn timed<F, Fut>(iterations: usize, mut work: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..iterations / 10 {
        work().await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let began = Instant::now();
        work().await;
        samples.push(began.elapsed());
    }
    stats(samples)
}

async fn p3(stack: &Stack, cookie: &SecretText, iterations: usize) {
    let app = &stack.app;
    let tenant = TenantId::parse(TENANT).unwrap();
    let full = timed(iterations, || {
        session_check_and_authorize(app, cookie, &tenant)
    })
    .await;
    let check_only = timed(iterations, || async {
        black_box(app.authenticate(None, Some(cookie.clone())).await.unwrap());
    })
    .await;
    // authorize() alone is far below the clock's resolution: time batches and divide.
    let caller = app
        .authenticate(None, Some(cookie.clone()))
        .await
        .unwrap()
        .unwrap();
    let principal = caller.principal().clone();
    const BATCH: u32 = 1000;
    let batches = (iterations / 100).max(10);
    let mut per_call = Vec::with_capacity(batches);
    for _ in 0..batches {
        let began = Instant::now();
        for _ in 0..BATCH {
            let _ = black_box(authorize(
                black_box(&principal),
                Some(&tenant),
                Action::ListUsers,
            ));
        }
        per_call.push(began.elapsed() / BATCH);
    }
    let authorize_only = stats(per_call);

    println!("## P3: session check + authorize() (in-process, cache warm, {iterations} calls)\n");
    println!("| measurement | median | p90 | p99 | samples |\n|---|---|---|---|---|");
    for (name, s) in [
        (
            "`app.authenticate(None, Some(cookie))` + `authorize(.., ListUsers)`",
            &full,
        ),
        ("`app.authenticate` alone (session check)", &check_only),
        (
            "`authorize()` alone (per call, batches of 1000)",
            &authorize_only,
        ),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            micros(s.p50),
            micros(s.p90),
            micros(s.p99),
            s.samples
        );
    }

    // Where the time goes: the steps of `SessionService::validate`, reproduced through public
    // APIs (the store's typed decode is approximated by decoding into serde_json::Value).
    let digest = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        cookie.expose_secret().as_bytes(),
    ));
    let store = app.store();
    let raw_client = TsbClient::builder(stack.fixture.base_url())
        .build()
        .unwrap();
    let raw = |label: String| {
        let client = raw_client.clone();
        async move {
            client
                .get_data_object(&label)
                .await
                .map(|object| object.value)
                .unwrap_or_default()
        }
    };
    let session_raw = raw(format!("kms.session.{digest}")).await;
    let user_raw = raw("kms.user.root".to_owned()).await;
    let settings_raw = raw("kms.config.public".to_owned()).await;
    let n = iterations;
    let sha = timed(n, || async {
        black_box(hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            black_box(cookie.expose_secret().as_bytes()),
        )));
    })
    .await;
    let get = |kind: &'static str, id: String| {
        let store = store.clone();
        async move {
            black_box(store.get::<Value>(kind, &id).await.unwrap());
        }
    };
    let session_get = timed(n, || get("session", digest.clone())).await;
    let user_get = timed(n, || get("user", "root".to_owned())).await;
    let settings_get = timed(n, || get("config", "public".to_owned())).await;
    let parse = |bytes: &[u8]| {
        let bytes = bytes.to_vec();
        async move {
            if !bytes.is_empty() {
                black_box(serde_json::from_slice::<Value>(&bytes).unwrap());
            }
        }
    };
    let session_parse = timed(n, || parse(&session_raw)).await;
    let user_parse = timed(n, || parse(&user_raw)).await;

    println!("\n### Where the time of one session check goes (medians, each step timed alone)\n");
    println!("| step | median | p99 |\n|---|---|---|");
    let steps = [
        ("SHA-256 + hex of the cookie (record name)".to_owned(), &sha),
        (
            format!(
                "`store.get` session record (cache hit; {} B stored)",
                session_raw.len()
            ),
            &session_get,
        ),
        (
            format!(
                "`store.get` user record (cache hit; {} B stored)",
                user_raw.len()
            ),
            &user_get,
        ),
        (
            format!(
                "`store.get` runtime settings (cache hit; {})",
                if settings_raw.is_empty() {
                    "absent, defaults apply".to_owned()
                } else {
                    format!("{} B stored", settings_raw.len())
                }
            ),
            &settings_get,
        ),
        (
            "of which: `serde_json::from_slice` of the raw session object (copy + parse)"
                .to_owned(),
            &session_parse,
        ),
        (
            "of which: `serde_json::from_slice` of the raw user object (copy + parse)".to_owned(),
            &user_parse,
        ),
    ];
    for (name, s) in &steps {
        println!("| {name} | {} | {} |", micros(s.p50), micros(s.p99));
    }
    println!(
        "\nP3 goal ≤ 5 µs median: {} ({} median)\n",
        if full.p50 <= Duration::from_micros(5) {
            "met"
        } else {
            "MISSED"
        },
        micros(full.p50)
    );
}

/// One load sample: when the request started, how long it took, whether it answered 200.
type Sample = (Instant, Duration, bool);

/// `concurrency` clients, each alternating `GET /api/v1/account` (session cookie) and
/// `GET /readyz`, until `stop` is set. Returns (account samples, readyz samples).
fn start_load(
    stack: &Stack,
    cookie: &str,
    concurrency: u64,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(Vec<Sample>, Vec<Sample>)>> {
    (0..concurrency)
        .map(|_| {
            let http = stack.http.clone();
            let account = stack.url("/api/v1/account");
            let ready = stack.url("/readyz");
            let cookie = format!("km_session={cookie}");
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut a, mut r) = (Vec::new(), Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let ok = match http.get(&account).header("cookie", &cookie).send().await {
                        Ok(response) => {
                            let ok = response.status() == reqwest::StatusCode::OK;
                            ok && response.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    a.push((began, began.elapsed(), ok));
                    let began = Instant::now();
                    let ok = match http.get(&ready).send().await {
                        Ok(response) => response.status() == reqwest::StatusCode::OK,
                        Err(_) => false,
                    };
                    r.push((began, began.elapsed(), ok));
                }
                (a, r)
            })
        })
        .collect()
}

async fn finish_load(
    stop: &AtomicBool,
    tasks: Vec<tokio::task::JoinHandle<(Vec<Sample>, Vec<Sample>)>>,
) -> (Vec<Sample>, Vec<Sample>) {
    stop.store(true, Ordering::Relaxed);
    let (mut account, mut ready) = (Vec::new(), Vec::new());
    for task in tasks {
        let (a, r) = task.await.unwrap();
        account.extend(a);
        ready.extend(r);
    }
    (account, ready)
}

struct Phase {
    stats: Stats,
    per_second: f64,
    errors: usize,
}

/// The samples that started within `[from, to)`.
fn phase(samples: &[Sample], from: Instant, to: Instant) -> Phase {
    let within: Vec<&Sample> = samples
        .iter()
        .filter(|(began, _, _)| *began >= from && *began < to)
        .collect();
    Phase {
        stats: stats(within.iter().map(|(_, took, _)| *took).collect()),
        per_second: within.len() as f64 / (to - from).as_secs_f64(),
        errors: within.iter().filter(|(_, _, ok)| !ok).count(),
    }
}

async fn p6(
    stack: &Stack,
    cookie: &str,
    csrf: &str,
    bcrypt: BcryptConfig,
    latency_ms: u64,
) -> anyhow::Result<()> {
    let seconds = env_number("KM_BENCH_SECONDS", 5);
    let concurrency = env_number("KM_BENCH_CONCURRENCY", 8);
    let logins = env_number("KM_BENCH_LOGINS", 50) as usize;

    // The users who will sign in (one hash each at the bench's cost, two at a time like the
    // hasher's slots, so that creation never hits the queue timeout).
    let created_in = Instant::now();
    let statuses: Vec<reqwest::StatusCode> = futures_util::stream::iter(0..logins)
        .map(|i| {
            let request = stack
                .http
                .post(stack.url(&format!("/api/v1/tenants/{TENANT}/users")))
                .header("cookie", format!("km_session={cookie}"))
                .header("x-csrf-token", csrf)
                .json(
                    &json!({"username": format!("user{i:03}"), "password": PASSWORD,
                              "role": "user"}),
                );
            async move { request.send().await.map(|r| r.status()) }
        })
        .buffer_unordered(bcrypt.max_concurrent.max(1))
        .map(|status| status.unwrap())
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == reqwest::StatusCode::CREATED),
        "creating users: {statuses:?}"
    );
    let created_in = created_in.elapsed();

    if latency_ms > 0 {
        let fault = stack
            .http
            .post(format!("{}/_emulator/faults", stack.fixture.base_url()))
            .json(&json!({"pathPrefix": "/v1", "latencyMs": latency_ms}))
            .send()
            .await?;
        anyhow::ensure!(fault.status().is_success(), "latency fault refused");
    }

    // Quiet.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = start_load(stack, cookie, concurrency, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quiet_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let quiet_to = Instant::now();
    let (account, ready) = finish_load(&stop, tasks).await;
    let quiet = (
        phase(&account, quiet_from, quiet_to),
        phase(&ready, quiet_from, quiet_to),
    );

    // Storm: the same load, and all sign-ins at once.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = start_load(stack, cookie, concurrency, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let storm_from = Instant::now();
    let sign_ins = (0..logins).map(|i| {
        let request = stack
            .http
            .post(stack.url("/api/v1/auth/login"))
            .json(&json!({"username": format!("user{i:03}"), "password": PASSWORD}));
        async move {
            let began = Instant::now();
            let status = request.send().await.map(|r| r.status());
            (began.elapsed(), status)
        }
    });
    let results = futures_util::future::join_all(sign_ins).await;
    let storm_to = Instant::now();
    let (account, ready) = finish_load(&stop, tasks).await;
    let storm = (
        phase(&account, storm_from, storm_to),
        phase(&ready, storm_from, storm_to),
    );

    println!(
        "## P6: {logins} concurrent sign-ins (bcrypt cost {}, {} hashing slots) during API load\n",
        bcrypt.cost, bcrypt.max_concurrent
    );
    println!(
        "Load: {concurrency} clients, each alternating `GET /api/v1/account` (session cookie; \
         session check + authorize, cache reads) and `GET /readyz` (two management-partition \
         calls); emulator latency {latency_ms} ms on every call. Quiet phase {seconds} s; storm \
         phase = from the first sign-in sent to the last answered ({:.1} s). {logins} users \
         created beforehand in {:.1} s.\n",
        (storm_to - storm_from).as_secs_f64(),
        created_in.as_secs_f64()
    );
    println!("| request | phase | req/s | p50 | p90 | p99 | max | samples | errors |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, q, s) in [
        ("GET /api/v1/account", &quiet.0, &storm.0),
        ("GET /readyz", &quiet.1, &storm.1),
    ] {
        for (label, p) in [("quiet", q), ("storm", s)] {
            println!(
                "| {name} | {label} | {:.0} | {} | {} | {} | {} | {} | {} |",
                p.per_second,
                micros(p.stats.p50),
                micros(p.stats.p90),
                micros(p.stats.p99),
                micros(p.stats.max),
                p.stats.samples,
                p.errors
            );
        }
    }
    println!("\n| request | quiet p99 | storm p99 | ratio | goal ≤ 2× |\n|---|---|---|---|---|");
    for (name, q, s) in [
        ("GET /api/v1/account", &quiet.0, &storm.0),
        ("GET /readyz", &quiet.1, &storm.1),
    ] {
        let ratio = s.stats.p99.as_secs_f64() / q.stats.p99.as_secs_f64();
        println!(
            "| {name} | {} | {} | {ratio:.2}× | {} |",
            micros(q.stats.p99),
            micros(s.stats.p99),
            if ratio <= 2.0 { "met" } else { "MISSED" }
        );
    }

    let ok: Vec<Duration> = results
        .iter()
        .filter(|(_, status)| matches!(status, Ok(s) if *s == reqwest::StatusCode::OK))
        .map(|(took, _)| *took)
        .collect();
    let busy = results
        .iter()
        .filter(|(_, s)| matches!(s, Ok(s) if *s == reqwest::StatusCode::SERVICE_UNAVAILABLE))
        .count();
    let other = results.len() - ok.len() - busy;
    println!(
        "\n| sign-ins | 200 | 503 busy | other | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|---|"
    );
    if ok.is_empty() {
        println!(
            "| {} | 0 | {busy} | {other} | – | – | – | – |",
            results.len()
        );
    } else {
        let l = stats(ok.clone());
        println!(
            "| {} | {} | {busy} | {other} | {} | {} | {} | {} |",
            results.len(),
            ok.len(),
            micros(l.p50),
            micros(l.p90),
            micros(l.p99),
            micros(l.max)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let iterations = env_number("KM_BENCH_P3_ITERATIONS", 20_000) as usize;
    let defaults = BcryptConfig::default();
    let bcrypt = BcryptConfig {
        cost: env_number("KM_BENCH_BCRYPT_COST", 12) as u32,
        max_concurrent: env_number("KM_BENCH_BCRYPT_SLOTS", defaults.max_concurrent as u64)
            as usize,
        ..defaults
    };
    let latency_ms = env_number("KM_BENCH_EMULATOR_LATENCY_MS", 2);

    let (stack, setup_token) = Stack::start(bcrypt).await;
    let setup = stack
        .http
        .post(stack.url("/api/v1/auth/setup"))
        .json(
            &json!({"setup_token": setup_token.expose_secret(), "username": "root",
                      "password": ROOT_PASSWORD}),
        )
        .send()
        .await?;
    anyhow::ensure!(
        setup.status() == reqwest::StatusCode::CREATED,
        "setup: {}",
        setup.status()
    );
    let (cookie, csrf) = stack.login("root", ROOT_PASSWORD).await;

    p3(&stack, &SecretText::from(cookie.clone()), iterations).await;
    p6(&stack, &cookie, &csrf, bcrypt, latency_ms).await
}
