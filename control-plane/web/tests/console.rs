//! The console served in-process over the real app layer (identity, audit, state store) on the
//! real TSB emulator: the whole first-run journey through plain HTTP, as a browser would make it
//! (cookies kept by hand), plus the refusals — anonymous, CSRF, cross-origin, readonly.
//! The headless-Chromium version of this journey against the real binary is tests/browser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use km_auth::{BcryptConfig, TotpRsProvider, identity_ports};
use km_core::app::{App, AppParts};
use km_core::identity::SetupStart;
use km_core::{
    AuditConfig, AuditLog, Clock, Identity, IdentityConfig, NoSink, SignatureVerifier, StateStore,
    StateStoreConfig, SystemClock,
};
use km_domain::TenantId;
use km_hsm_tsb::TsbHsm;
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;
use km_web::{CONTENT_SECURITY_POLICY, ConsoleConfig, StaticPartitions};
use poem::EndpointExt;
use poem::endpoint::BoxEndpoint;
use poem::http::{StatusCode, header};
use poem::test::{TestClient, TestResponse};

/// The console never verifies the audit log; refuse everything if it ever tried.
struct NoVerifier;

impl SignatureVerifier for NoVerifier {
    fn verify_ecdsa_p256_sha256(&self, _: &[u8], _: &[u8], _: &[u8]) -> bool {
        false
    }
}

struct World {
    _fixture: EmulatorFixture,
    setup_token: String,
    client: TestClient<BoxEndpoint<'static, poem::Response>>,
}

async fn world() -> World {
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hsm = Arc::new(TsbHsm::new(
        TsbClient::builder(fixture.base_url()).build().unwrap(),
    ));
    let store = StateStore::new(hsm.clone(), clock.clone(), StateStoreConfig::default());
    store.prepare().await.unwrap();
    let audit = AuditLog::new(
        hsm,
        store.clone(),
        clock.clone(),
        Arc::new(NoSink),
        AuditConfig::default(),
    );
    audit.prepare().await.unwrap();
    let identity = Identity::new(
        store.clone(),
        clock.clone(),
        identity_ports(BcryptConfig {
            cost: 4,
            ..BcryptConfig::default()
        }),
        IdentityConfig::default(),
    );
    let SetupStart::TokenIssued(token) = identity.setup.begin("test").await.unwrap() else {
        panic!("a fresh installation issues a setup token");
    };
    let app = App::new(AppParts {
        identity,
        audit,
        store,
        clock,
        verifier: Arc::new(NoVerifier),
    });
    let partitions =
        StaticPartitions::from_ids(["acme", "globex"].map(|id| TenantId::parse(id).unwrap()));
    let config = ConsoleConfig {
        partitions: Arc::new(partitions),
        ..ConsoleConfig::default()
    };
    let endpoint = km_web::routes(app, config).map_to_response().boxed();
    World {
        _fixture: fixture,
        setup_token: token.expose_secret().to_owned(),
        client: TestClient::new(endpoint),
    }
}

/// A browser's cookie jar, reduced to what the console sets.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, response: &poem::Response) {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if text.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    headers: poem::http::HeaderMap,
    body: String,
}

impl Page {
    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        between(&self.body, "name=\"csrf\" value=\"", "\"")
    }
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in page:\n{text}"))
        + start.len();
    let rest = &text[from..];
    rest[..rest.find(end).unwrap()].to_owned()
}

async fn read(response: TestResponse, jar: &mut Jar) -> Page {
    let response = response.0;
    jar.absorb(&response);
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let headers = response.headers().clone();
    let body = response.into_body().into_string().await.unwrap();
    Page {
        status,
        location,
        headers,
        body,
    }
}

impl World {
    async fn get(&self, path: &str, jar: &mut Jar) -> Page {
        let response = self
            .client
            .get(path)
            .header(header::COOKIE, jar.header())
            .send()
            .await;
        read(response, jar).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)], jar: &mut Jar) -> Page {
        let response = self
            .client
            .post(path)
            .header(header::COOKIE, jar.header())
            .form(&form)
            .send()
            .await;
        read(response, jar).await
    }
}

fn assert_security_headers(page: &Page) {
    let get = |name: &str| {
        page.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        get("content-security-policy").as_deref(),
        Some(CONTENT_SECURITY_POLICY)
    );
    assert_eq!(get("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(get("referrer-policy").as_deref(), Some("no-referrer"));
    assert!(get("x-request-id").is_some());
}

#[tokio::test]
async fn first_run_journey_and_role_based_refusals() {
    let world = world().await;
    let mut admin = Jar::default();

    // Before setup, sign-in sends people to the setup page; pages need a session.
    let page = world.get("/login", &mut admin).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/setup"));
    let page = world.get("/users", &mut admin).await;
    assert_eq!(page.location.as_deref(), Some("/login"));

    let setup = world.get("/setup", &mut admin).await;
    assert_eq!(setup.status, StatusCode::OK);
    assert_security_headers(&setup);
    assert!(setup.body.contains("Create administrator"));
    assert!(
        !setup.body.contains("style="),
        "no inline styles under the CSP"
    );
    let csrf = setup.csrf();

    // A form without the right CSRF token changes nothing.
    let form = [
        ("csrf", "forged"),
        ("token", world.setup_token.as_str()),
        ("username", "root"),
        ("display_name", "Root Admin"),
        ("password", "quiet harbour lantern 2026"),
        ("password_confirm", "quiet harbour lantern 2026"),
    ];
    let refused = world.post("/setup", &form, &mut admin).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Another browser (no pre-session cookie) cannot replay this browser's token.
    let mut stranger = Jar::default();
    let mut replay = form;
    replay[0].1 = &csrf;
    let refused = world.post("/setup", &replay, &mut stranger).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut wrong_token = replay;
    wrong_token[1].1 = "not-the-token";
    let page = world.post("/setup", &wrong_token, &mut admin).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("setup token is wrong"), "{}", page.body);

    let done = world.post("/setup", &replay, &mut admin).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account/totp?done=setup"));
    let session_cookie = done
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("km_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    // Setup happens once.
    let page = world.get("/setup", &mut admin).await;
    assert_eq!(page.location.as_deref(), Some("/login"));

    // TOTP enrolment: start, read the seed, confirm with a code computed from it.
    let totp = world.get("/account/totp?done=setup", &mut admin).await;
    assert_eq!(totp.status, StatusCode::OK);
    assert!(totp.body.contains("first administrator"));
    let scan = world
        .post(
            "/account/totp",
            &[("csrf", &totp.csrf()), ("step", "begin")],
            &mut admin,
        )
        .await;
    assert_eq!(scan.status, StatusCode::OK);
    assert!(scan.body.contains("src=\"data:image/png;base64,"));
    let seed = between(&scan.body, "data-testid=\"totp-secret\">", "<");
    let provider = TotpRsProvider::new();
    let secret = provider.secret_from_base32(&seed).unwrap();
    let code = provider.code_at(&secret, SystemClock.now()).unwrap();
    let codes = world
        .post(
            "/account/totp",
            &[
                ("csrf", &scan.csrf()),
                ("step", "confirm"),
                ("code", code.expose_secret()),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(codes.status, StatusCode::OK, "{}", codes.body);
    assert!(codes.body.contains("data-testid=\"recovery-codes\""));

    // The admin sees the admin pages and both demo partitions.
    let home = world.get("/", &mut admin).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("href=\"/users\""));
    assert!(home.body.contains("data-partition=\"globex\""));
    let users = world.get("/users", &mut admin).await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.body.contains("data-username=\"root\""));

    // A cross-origin POST is refused even with a valid token.
    let response = world
        .client
        .post("/users")
        .header(header::COOKIE, admin.header())
        .header(header::HOST, "console.example")
        .header(header::ORIGIN, "https://evil.example")
        .form(&[
            ("csrf", users.csrf().as_str()),
            ("username", "mallory"),
            ("password", "a long enough password"),
            ("role", "admin"),
        ])
        .send()
        .await;
    assert_eq!(response.0.status(), StatusCode::FORBIDDEN);

    let created = world
        .post(
            "/users",
            &[
                ("csrf", &users.csrf()),
                ("username", "reader"),
                ("display_name", "Read Only"),
                ("password", "amber meadow reading 77"),
                ("role", "readonly"),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/users?done=user_created")
    );
    let users = world.get("/users?done=user_created", &mut admin).await;
    assert!(users.body.contains("data-username=\"reader\""));
    assert!(users.body.contains("User created."));

    // Sign out, then the reader signs in (no second factor enrolled: straight in).
    let out = world
        .post("/logout", &[("csrf", &users.csrf())], &mut admin)
        .await;
    assert_eq!(out.location.as_deref(), Some("/login?done=signed_out"));
    assert!(!admin.0.contains_key("km_session"));

    let mut reader = Jar::default();
    let login = world.get("/login", &mut reader).await;
    let page = world
        .post(
            "/login",
            &[
                ("csrf", &login.csrf()),
                ("username", "reader"),
                ("password", "wrong password here"),
            ],
            &mut reader,
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("wrong username or password"));
    let page = world
        .post(
            "/login",
            &[
                ("csrf", &page.csrf()),
                ("username", "reader"),
                ("password", "amber meadow reading 77"),
            ],
            &mut reader,
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/"));

    let home = world.get("/", &mut reader).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        !home.body.contains("href=\"/users\""),
        "no admin nav for readonly"
    );
    assert!(
        home.body
            .contains("data-testid=\"current-partition\">acme<")
    );
    assert!(!home.body.contains("data-partition=\"globex\""));
    // Direct URL of the admin page: refused by the app layer.
    let users = world.get("/users", &mut reader).await;
    assert_eq!(users.status, StatusCode::FORBIDDEN);
    assert!(users.body.contains("data-status=\"403\""));
    // And its form, even with a valid CSRF token.
    let refused = world
        .post(
            "/users",
            &[
                ("csrf", &home.csrf()),
                ("username", "sneaky"),
                ("password", "sneaky password 123"),
                ("role", "admin"),
            ],
            &mut reader,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Settings: the partition card, not the platform settings.
    let settings = world.get("/settings", &mut reader).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(!settings.body.contains("data-testid=\"platform-settings\""));
    let refused = world
        .post(
            "/settings",
            &[
                ("csrf", &home.csrf()),
                ("second_factor", "optional"),
                ("reverify_hours", "12"),
                ("session_idle_minutes", "30"),
                ("session_absolute_hours", "12"),
                ("lockout_threshold", "5"),
                ("lockout_minutes", "15"),
            ],
            &mut reader,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // The audit log of its partition is readable (readonly may read audit).
    let audit = world.get("/audit", &mut reader).await;
    assert_eq!(audit.status, StatusCode::OK);

    // The admin signs in again: password, then the TOTP step.
    let login = world.get("/login", &mut admin).await;
    let step = world
        .post(
            "/login",
            &[
                ("csrf", &login.csrf()),
                ("username", "root"),
                ("password", "quiet harbour lantern 2026"),
            ],
            &mut admin,
        )
        .await;
    assert_eq!(step.location.as_deref(), Some("/login/second-factor"));
    assert!(admin.0.contains_key("km_pending"));
    let form = world.get("/login/second-factor", &mut admin).await;
    assert_eq!(form.status, StatusCode::OK);
    let bad = world
        .post(
            "/login/second-factor",
            &[("csrf", &form.csrf()), ("code", "000000")],
            &mut admin,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    // The enrolment used up the current time step; the authenticator's next code (one step
    // ahead, inside the ±1 step tolerance) signs in.
    let code = provider
        .code_at(&secret, SystemClock.now().saturating_add(30))
        .unwrap();
    let signed_in = world
        .post(
            "/login/second-factor",
            &[("csrf", &bad.csrf()), ("code", code.expose_secret())],
            &mut admin,
        )
        .await;
    assert_eq!(
        signed_in.location.as_deref(),
        Some("/"),
        "{}",
        signed_in.body
    );
    assert!(admin.0.contains_key("km_session"));
    assert!(!admin.0.contains_key("km_pending"));
    let home = world.get("/", &mut admin).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("href=\"/users\""));
}

#[tokio::test]
async fn static_assets_and_unknown_paths() {
    let world = world().await;
    let mut jar = Jar::default();
    let css = world.get("/static/console.css", &mut jar).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/css; charset=utf-8"
    );
    assert!(css.body.contains("prefers-color-scheme: dark"));
    assert_security_headers(&css);
    let js = world.get("/static/console.js", &mut jar).await;
    assert_eq!(js.status, StatusCode::OK);
    let missing = world.get("/static/nope.js", &mut jar).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let unknown = world.get("/no/such/page", &mut jar).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("Page not found"));
    assert_security_headers(&unknown);
}
