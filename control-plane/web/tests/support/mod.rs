//! What the console's integration tests share: the console served in-process over the real app
//! layer (identity, audit, state store, partition registry, single sign-on) on the real TSB
//! emulator, and a browser reduced to a cookie jar.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    reason = "test support; each test crate uses part of it"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use km_auth::{BcryptConfig, HttpSso, HttpSsoConfig, identity_ports};
use km_core::app::{App, AppParts};
use km_core::identity::SetupStart;
use km_core::{
    ApiKeyCredentials, AuditConfig, AuditLog, Clock, Identity, IdentityConfig, NewPartition,
    NoSink, PartitionCredentials, PartitionTarget, Partitions, SecretText, SignatureVerifier,
    SsoService, StateStore, StateStoreConfig, SystemClock, VaultSet,
};
use km_domain::{AuthMode, DisplayName, TenantId, TsbEndpoint};
use km_hsm_tsb::{TsbHsm, TsbPartitionConnector};
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;
use km_tsb_emulator::{ApiKeyGroups, EmulatorConfig, PartitionConfig};
use km_vault_hsm::HsmVault;
use km_web::{CONTENT_SECURITY_POLICY, ConsoleConfig};
use poem::EndpointExt;
use poem::endpoint::BoxEndpoint;
use poem::http::{StatusCode, header};
use poem::test::{TestClient, TestResponse};

/// The console never verifies the audit log; refuse everything if it ever tried.
pub struct NoVerifier;

impl SignatureVerifier for NoVerifier {
    fn verify_ecdsa_p256_sha256(&self, _: &[u8], _: &[u8], _: &[u8]) -> bool {
        false
    }
}

pub struct World {
    pub fixture: EmulatorFixture,
    pub setup_token: String,
    pub client: TestClient<BoxEndpoint<'static, poem::Response>>,
}

/// Tenant partitions of the emulator: (id, display name, registered at start).
pub const PARTITIONS: [(&str, &str, bool); 3] = [
    ("acme", "Acme Corp", true),
    ("globex", "Globex", true),
    ("initech", "Initech", false),
];

/// The emulator's API key of a tenant partition (the same key for every group).
pub fn api_key(partition: &str) -> String {
    format!("key-of-{partition}-0123456789")
}

/// An emulator with the open management partition first (the default of root URLs) and the
/// tenant partitions, each with its own API key.
pub fn emulator_config() -> EmulatorConfig {
    let mut partitions = vec![PartitionConfig::open("management")];
    for (id, _, _) in PARTITIONS {
        let key = vec![api_key(id)];
        partitions.push(PartitionConfig::new(
            id,
            ApiKeyGroups {
                key_management: key.clone(),
                key_operation: key.clone(),
                approver: key.clone(),
                service: key.clone(),
                approver_key_management: key,
            },
        ));
    }
    EmulatorConfig {
        partitions,
        ..EmulatorConfig::default()
    }
}

pub async fn world() -> World {
    let fixture = EmulatorFixture::start(emulator_config()).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hsm = Arc::new(TsbHsm::new(
        TsbClient::builder(fixture.partition_url("management"))
            .build()
            .unwrap(),
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
        store: store.clone(),
        clock: clock.clone(),
        verifier: Arc::new(NoVerifier),
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
    for (id, name, registered) in PARTITIONS {
        if registered {
            let new = NewPartition {
                id: TenantId::parse(id).unwrap(),
                display_name: DisplayName::parse(name).unwrap(),
                colour: None,
                target: PartitionTarget {
                    endpoint: TsbEndpoint::parse(&fixture.partition_url(id)).unwrap(),
                    auth: AuthMode::ApiKeys,
                    ca_pem: None,
                },
                vault: None,
                credentials: PartitionCredentials {
                    api_keys: ApiKeyCredentials::single(SecretText::new(api_key(id))),
                    ..PartitionCredentials::default()
                },
            };
            app.partitions().onboard(new, "test").await.unwrap();
        }
    }
    let endpoint = km_web::routes(app, ConsoleConfig::default())
        .map_to_response()
        .boxed();
    World {
        fixture,
        setup_token: token.expose_secret().to_owned(),
        client: TestClient::new(endpoint),
    }
}

/// A browser's cookie jar, reduced to what the console sets.
#[derive(Default)]
pub struct Jar(pub BTreeMap<String, String>);

impl Jar {
    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn absorb(&mut self, response: &poem::Response) {
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

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: poem::http::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        between(&self.body, "name=\"csrf\" value=\"", "\"")
    }
}

pub fn between(text: &str, start: &str, end: &str) -> String {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in page:\n{text}"))
        + start.len();
    let rest = &text[from..];
    rest[..rest.find(end).unwrap()].to_owned()
}

pub async fn read(response: TestResponse, jar: &mut Jar) -> Page {
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
    pub async fn get(&self, path: &str, jar: &mut Jar) -> Page {
        let response = self
            .client
            .get(path)
            .header(header::COOKIE, jar.header())
            .send()
            .await;
        read(response, jar).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)], jar: &mut Jar) -> Page {
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

pub fn assert_security_headers(page: &Page) {
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

/// A form built from owned values, as `World::post` takes it.
pub fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

pub const ADMIN_PASSWORD: &str = "quiet harbour lantern 2026";
pub const READER_PASSWORD: &str = "amber meadow reading 77";

/// Sets the installation up through the console: `root`, admin on `*`, signed in.
pub async fn first_admin(world: &World) -> Jar {
    let mut jar = Jar::default();
    let setup = world.get("/setup", &mut jar).await;
    let done = world
        .post(
            "/setup",
            &[
                ("csrf", &setup.csrf()),
                ("token", &world.setup_token),
                ("username", "root"),
                ("display_name", "Root Admin"),
                ("password", ADMIN_PASSWORD),
                ("password_confirm", ADMIN_PASSWORD),
            ],
            &mut jar,
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    jar
}

/// Creates `reader`, readonly on the admin's current partition, through the users page, and signs
/// them in.
pub async fn signed_in_reader(world: &World, admin: &mut Jar) -> Jar {
    let users = world.get("/users", admin).await;
    let made = world
        .post(
            "/users",
            &[
                ("csrf", &users.csrf()),
                ("username", "reader"),
                ("password", READER_PASSWORD),
                ("role", "readonly"),
            ],
            admin,
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    sign_in(world, "reader", READER_PASSWORD).await
}

/// Signs in with a password (no second factor enrolled).
pub async fn sign_in(world: &World, username: &str, password: &str) -> Jar {
    let mut jar = Jar::default();
    let login = world.get("/login", &mut jar).await;
    let page = world
        .post(
            "/login",
            &[
                ("csrf", &login.csrf()),
                ("username", username),
                ("password", password),
            ],
            &mut jar,
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/"), "{}", page.body);
    jar
}
