//! The REST API over real HTTP: `km_api::routes` served on 127.0.0.1:0 by poem, driven with
//! reqwest, on the whole real stack — km-core's `App` (identity, settings, audit) → StateStore →
//! km-hsm-tsb → km-tsb → HTTP → the TSB emulator, with the km-auth adapters (bcrypt at cost 4,
//! totp-rs, aws-lc-rs). Time is a `ManualClock`: TOTP steps and re-verification move it, nothing
//! sleeps.
//!
//! Self-contained (no `crate::` helpers from other areas).

mod bad_input;
mod drift;
mod fail_closed;
mod flow;
mod matrix;

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use km_auth::{BcryptConfig, HttpSso, HttpSsoConfig, TotpRsProvider, identity_ports};
use km_core::identity::{SetupStart, TotpSecret};
use km_core::{
    ApiKeyCredentials, NewPartition, PartitionCredentials, PartitionTarget, Partitions, SsoService,
    VaultSet,
};
use km_core::{
    App, AppParts, AuditConfig, AuditLog, Clock, Identity, IdentityConfig, ManualClock, NoSink,
    SecretText, SignatureVerifier, StateStore, StateStoreConfig,
};
use km_domain::{AuthMode, DisplayName, TenantId, TsbEndpoint};
use km_hsm_tsb::{TsbHsm, TsbPartitionConnector};
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;
use km_tsb_emulator::{ApiKeyGroups, EmulatorConfig, PartitionConfig};
use km_vault_hsm::HsmVault;
use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const START: u64 = 1_800_000_000;
pub const ROOT_PASSWORD: &str = "violet harbour lantern nine";
pub const PASSWORD: &str = "copper meadow whistle seven";
/// The tenant partitions every `ApiWorld` registers, each an emulator partition with its own API
/// key (the management partition is the emulator's first, open partition).
pub const TENANTS: [(&str, &str, &str); 2] = [
    ("acme", "Acme Corp", "acme-api-key-5f1c2e"),
    ("globex", "Globex", "globex-api-key-9b7d04"),
];

/// A second key the emulator's `acme` partition accepts (for credential rotation).
pub const ACME_NEXT_KEY: &str = "acme-api-key-next-77aa10";

/// The API key of tenant partition `tenant` in the emulator.
pub fn tenant_api_key(tenant: &str) -> &'static str {
    TENANTS
        .iter()
        .find(|(id, _, _)| *id == tenant)
        .map(|(_, _, key)| *key)
        .unwrap_or_else(|| panic!("no test tenant {tenant}"))
}

/// Adds the tenant partitions of [`TENANTS`] to an emulator configuration.
fn with_tenant_partitions(mut emulator: EmulatorConfig) -> EmulatorConfig {
    for (id, _, key) in TENANTS {
        if !emulator.partitions.iter().any(|p| p.name == id) {
            let mut keys = vec![key.to_owned()];
            if id == "acme" {
                keys.push(ACME_NEXT_KEY.to_owned());
            }
            let groups = ApiKeyGroups {
                key_management: keys.clone(),
                key_operation: keys.clone(),
                approver: keys.clone(),
                service: keys.clone(),
                approver_key_management: keys,
            };
            emulator.partitions.push(PartitionConfig::new(id, groups));
        }
    }
    emulator
}

/// aws-lc-rs behind the verifier port (as the binary wires it).
struct Verifier;

impl SignatureVerifier for Verifier {
    fn verify_ecdsa_p256_sha256(&self, spki: &[u8], message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki)
            .verify(message, signature)
            .is_ok()
    }
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    Anonymous,
    /// Session cookie and its CSRF token.
    Session {
        cookie: String,
        csrf: String,
    },
    /// `Authorization: Bearer …`
    Bearer(String),
    /// A raw `Authorization` header value.
    RawAuthorization(String),
}

/// One answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

/// A control plane serving the REST API over the emulator.
pub struct ApiWorld {
    /// The emulator behind the control plane (for fault injection and raw reads).
    pub emulator: EmulatorFixture,
    pub clock: Arc<ManualClock>,
    pub app: App,
    pub base: String,
    pub http: reqwest::Client,
    pub setup_token: Option<SecretText>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ApiWorld {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ApiWorld {
    pub async fn start() -> Self {
        Self::start_with(IdentityConfig::default()).await
    }

    pub async fn start_with(config: IdentityConfig) -> Self {
        Self::start_over(EmulatorConfig::default(), config).await
    }

    /// Over an emulator started with `emulator` (e.g. with its fault-injection admin API).
    pub async fn start_over(emulator: EmulatorConfig, config: IdentityConfig) -> Self {
        let fixture = EmulatorFixture::start(with_tenant_partitions(emulator))
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(START));
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
        let ports = identity_ports(BcryptConfig {
            cost: 4,
            ..BcryptConfig::default()
        });
        let identity = Identity::new(store.clone(), clock.clone(), ports, config);
        let setup_token = match identity.setup.begin("test").await.unwrap() {
            SetupStart::TokenIssued(token) => Some(token),
            _ => None,
        };
        let app = App::new(AppParts {
            identity,
            audit,
            store: store.clone(),
            clock: clock.clone() as Arc<dyn Clock>,
            verifier: Arc::new(Verifier),
            partitions: Partitions::new(
                store.clone(),
                VaultSet::new().with("hsm", Arc::new(HsmVault::new(store.clone()))),
                Arc::new(TsbPartitionConnector::default()),
            ),
            sso: SsoService::new(
                store.clone(),
                clock.clone() as Arc<dyn Clock>,
                Arc::new(HttpSso::new(HttpSsoConfig::default()).unwrap()),
            ),
        });
        for (id, name, key) in TENANTS {
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
                    api_keys: ApiKeyCredentials::single(SecretText::from(key)),
                    ..PartitionCredentials::default()
                },
            };
            app.partitions().onboard(new, "system:test").await.unwrap();
        }
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
        Self {
            emulator: fixture,
            clock,
            app,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            setup_token,
            server,
        }
    }

    /// A request with a JSON body (or none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
    ) -> Answer {
        self.send(method, path, auth, body.map(|body| body.to_string()), None)
            .await
    }

    /// A request with a raw body and optional extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<String>,
        request_id: Option<&str>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match auth {
            Auth::Anonymous => request,
            Auth::Session { cookie, csrf } => request
                .header("cookie", format!("km_session={cookie}"))
                .header("x-csrf-token", csrf),
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::RawAuthorization(value) => request.header("authorization", value),
        };
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        if let Some(request_id) = request_id {
            request = request.header("x-request-id", request_id);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// Completes setup over HTTP with `root` as the first administrator.
    pub async fn set_up(&self) {
        let token = self
            .setup_token
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        let answer = self
            .call(
                Method::POST,
                "/api/v1/auth/setup",
                &Auth::Anonymous,
                Some(json!({"setup_token": token, "username": "root", "password": ROOT_PASSWORD})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }

    /// Signs in with a password only (no second factor enrolled); returns the session.
    pub async fn login(&self, username: &str, password: &str) -> Auth {
        let answer = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                &Auth::Anonymous,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["status"], "signed_in", "{}", answer.text);
        session_from(&answer)
    }

    /// Creates `username` with `role` on `tenant` (or on `*` with `tenant == "*"`) as `admin`.
    pub async fn create_user(&self, admin: &Auth, tenant: &str, username: &str, role: &str) {
        let (path, body) = if tenant == "*" {
            (
                "/api/v1/platform/users".to_owned(),
                json!({"username": username, "password": PASSWORD, "role": role}),
            )
        } else {
            (
                format!("/api/v1/tenants/{tenant}/users"),
                json!({"username": username, "password": PASSWORD, "role": role}),
            )
        };
        let answer = self.call(Method::POST, &path, admin, Some(body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }
}

/// The session in a sign-in answer: cookie from `Set-Cookie`, CSRF token from the body.
pub fn session_from(answer: &Answer) -> Auth {
    let set_cookie = answer.header("set-cookie");
    let cookie = set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("km_session="))
        .unwrap_or_else(|| panic!("no session cookie in {set_cookie:?}"))
        .to_owned();
    let csrf = answer.body["csrf_token"]
        .as_str()
        .or_else(|| answer.body["session"]["csrf_token"].as_str())
        .unwrap()
        .to_owned();
    Auth::Session { cookie, csrf }
}

/// The TOTP code of `seed` at `at`.
pub fn totp(seed: &TotpSecret, at: u64) -> String {
    TotpRsProvider::new()
        .code_at(seed, at)
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// The seed from an enrolment answer.
pub fn seed_of(enrolment: &Value) -> TotpSecret {
    TotpRsProvider::new()
        .secret_from_base32(enrolment["secret_base32"].as_str().unwrap())
        .unwrap()
}
