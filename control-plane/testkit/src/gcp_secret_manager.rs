//! A protocol-level fake of Google Cloud Secret Manager (REST/JSON API `v1`), for driving the
//! official `google-cloud-secretmanager-v1` client in tests. No real service or emulator is
//! reachable from the project's machines, so this fake speaks the same paths, query parameters,
//! JSON bodies and error shapes the official client uses (read from the SDK's generated
//! `transport.rs` and `model` serializers):
//!
//! | RPC | HTTP |
//! |---|---|
//! | ListSecrets | `GET /v1/projects/{p}/secrets?pageSize=&pageToken=&filter=` |
//! | CreateSecret | `POST /v1/projects/{p}/secrets?secretId={s}`, body: `Secret` |
//! | GetSecret | `GET /v1/projects/{p}/secrets/{s}` |
//! | DeleteSecret | `DELETE /v1/projects/{p}/secrets/{s}?etag=` |
//! | AddSecretVersion | `POST /v1/projects/{p}/secrets/{s}:addVersion`, body: `{"payload":{"data","dataCrc32c"}}` |
//! | ListSecretVersions | `GET /v1/projects/{p}/secrets/{s}/versions?pageSize=&pageToken=&filter=` |
//! | GetSecretVersion | `GET /v1/projects/{p}/secrets/{s}/versions/{v}` |
//! | AccessSecretVersion | `GET /v1/projects/{p}/secrets/{s}/versions/{v}:access` (`v` may be `latest`) |
//! | Destroy/Disable/EnableSecretVersion | `POST /v1/projects/{p}/secrets/{s}/versions/{v}:destroy` (`:disable`, `:enable`) |
//!
//! Like the real service it names resources by project *number* in its answers (and accepts
//! either the project id or the number in requests), numbers versions from 1, keeps version
//! states (`ENABLED`, `DISABLED`, `DESTROYED`; a destroyed version's data is wiped), returns
//! `dataCrc32c` with every access, checks a client-supplied `dataCrc32c` on `addVersion`, encodes
//! enums as integers when the client asks for `$alt=json;enum-encoding=int` (the Rust client
//! always does), and answers errors as `{"error":{"code":404,"message":"...","status":"NOT_FOUND"}}`.
//!
//! Authentication: [`FakeSecretManager::start`] accepts any caller (use anonymous credentials).
//! [`FakeSecretManager::start_with_service_account`] makes a throwaway RSA service-account key
//! ([`FakeSecretManager::service_account_key_json`]) and then requires every request to carry
//! the self-signed JWT the official `google-cloud-auth` service-account flow sends
//! (`Authorization: Bearer <RS256 JWT>` with `iss`/`sub` = the account's e-mail, `kid` = the key
//! id, a `cloud-platform` scope or an audience, and an unexpired `exp`), answering
//! `401 UNAUTHENTICATED` otherwise.
//!
//! Fault switches: deny everything with `403 PERMISSION_DENIED`, answer `503 UNAVAILABLE`, hang
//! without answering, corrupt the `dataCrc32c` of access responses. Requests are recorded
//! (method, path, query, whether a bearer token came), never their bodies.
//!
//! Simplifications: one global location (no `locations/{l}` paths), no IAM, no rotation, topics,
//! annotations or TTLs (they are echoed back if sent), and `filter` supports only `state:<STATE>`
//! on version lists.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use poem::http::{Method, StatusCode};
use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{Body, EndpointExt as _, Request, Response, handler};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

/// The project id the fake serves.
pub const PROJECT_ID: &str = "km-test-project";
/// The project number the fake uses in resource names of its answers.
pub const PROJECT_NUMBER: &str = "314159265358";
/// The e-mail of the service account made by [`FakeSecretManager::start_with_service_account`].
pub const SERVICE_ACCOUNT_EMAIL: &str = "keymanager@km-test-project.iam.gserviceaccount.com";
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Largest payload the real service accepts (64 KiB).
const MAX_PAYLOAD: usize = 64 * 1024;
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 25_000;

/// State of a secret version, as the service reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Readable.
    Enabled,
    /// Kept, but not readable until enabled again.
    Disabled,
    /// Data wiped for good.
    Destroyed,
}

impl VersionState {
    fn name(self) -> &'static str {
        match self {
            VersionState::Enabled => "ENABLED",
            VersionState::Disabled => "DISABLED",
            VersionState::Destroyed => "DESTROYED",
        }
    }

    fn number(self) -> i32 {
        match self {
            VersionState::Enabled => 1,
            VersionState::Disabled => 2,
            VersionState::Destroyed => 3,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "ENABLED" => Some(VersionState::Enabled),
            "DISABLED" => Some(VersionState::Disabled),
            "DESTROYED" => Some(VersionState::Destroyed),
            _ => None,
        }
    }
}

/// One version of a stored secret, as seen through [`FakeSecretManager::versions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Version number, from 1.
    pub number: u64,
    /// Current state.
    pub state: VersionState,
    /// Payload length in bytes (0 once destroyed).
    pub len: usize,
}

/// One request the fake received (never its body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/v1/projects/p/secrets/s:addVersion`.
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    /// Whether an `Authorization: Bearer` header came with it.
    pub bearer: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    deny: bool,
    unavailable: bool,
    hang: bool,
    corrupt_crc: bool,
}

#[derive(Debug)]
struct StoredVersion {
    state: VersionState,
    data: Vec<u8>,
    crc32c: u32,
    client_checksum: bool,
    create_time: String,
    destroy_time: Option<String>,
    etag: u64,
}

#[derive(Debug)]
struct StoredSecret {
    replication: Value,
    labels: Map<String, Value>,
    extra: Map<String, Value>,
    create_time: String,
    etag: u64,
    versions: Vec<StoredVersion>,
}

#[derive(Debug, Default)]
struct State {
    secrets: BTreeMap<String, StoredSecret>,
    next_etag: u64,
}

impl State {
    fn etag(&mut self) -> u64 {
        self.next_etag += 1;
        self.next_etag
    }
}

/// The public half of the throwaway service-account key, for checking bearer JWTs.
#[derive(Debug)]
struct Verifier {
    public_key: Vec<u8>,
    key_id: String,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<RecordedRequest>>,
    verifier: Option<Verifier>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not wedge the fake for the others.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running fake Secret Manager on `127.0.0.1` (plain HTTP, port chosen by the OS). It stops
/// when dropped.
#[derive(Debug)]
pub struct FakeSecretManager {
    endpoint: Url,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    key_json: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

/// Starts a fake that accepts unauthenticated callers; see [`FakeSecretManager::start`].
pub async fn start() -> anyhow::Result<FakeSecretManager> {
    FakeSecretManager::start().await
}

impl FakeSecretManager {
    /// Starts a fake that accepts any caller (for clients with anonymous credentials).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_inner(None, None).await
    }

    /// Starts a fake that requires the self-signed JWTs of a service account whose key it makes
    /// now; write [`service_account_key_json`](Self::service_account_key_json) to a file and
    /// point the client's service-account credentials at it.
    pub async fn start_with_service_account() -> anyhow::Result<Self> {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("cannot generate the test RSA key"))?;
        let pkcs8 = key
            .as_der()
            .map_err(|_| anyhow::anyhow!("cannot encode the test RSA key"))?;
        let key_id = format!("{:016x}{:016x}", rand_u64(), rand_u64());
        let pem = pem("PRIVATE KEY", pkcs8.as_ref());
        let verifier = Verifier {
            public_key: key.public_key().as_ref().to_vec(),
            key_id: key_id.clone(),
        };
        let key_json = |endpoint: &Url| {
            json!({
                "type": "service_account",
                "project_id": PROJECT_ID,
                "private_key_id": key_id,
                "private_key": pem,
                "client_email": SERVICE_ACCOUNT_EMAIL,
                "client_id": "100000000000000000001",
                "auth_uri": format!("{endpoint}o/oauth2/auth"),
                "token_uri": format!("{endpoint}token"),
                "universe_domain": "googleapis.com",
            })
            .to_string()
        };
        Self::start_inner(Some(verifier), Some(&key_json)).await
    }

    async fn start_inner(
        verifier: Option<Verifier>,
        key_json: Option<&dyn Fn(&Url) -> String>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the fake Secret Manager")?;
        let local_addr = listener.local_addr()?;
        let endpoint = Url::parse(&format!("http://{local_addr}/"))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Vec::new()),
            verifier,
        });
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let app = handle.data(shared.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        let _ = stop_rx.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await;
        });
        Ok(Self {
            key_json: key_json.map(|make| make(&endpoint)),
            endpoint,
            local_addr,
            shared,
            stop: Some(stop_tx),
            server,
        })
    }

    /// Base URL to give the client as its endpoint, e.g. `http://127.0.0.1:40123/`.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The project id to configure the client with ([`PROJECT_ID`]).
    pub fn project(&self) -> &str {
        PROJECT_ID
    }

    /// The project number used in resource names of answers ([`PROJECT_NUMBER`]).
    pub fn project_number(&self) -> &str {
        PROJECT_NUMBER
    }

    /// The service-account key file (JSON, in Google's format) whose JWTs this fake accepts;
    /// `None` for a fake started with [`start`](Self::start).
    pub fn service_account_key_json(&self) -> Option<&str> {
        self.key_json.as_deref()
    }

    /// Ids of the stored secrets, sorted.
    pub fn secret_ids(&self) -> Vec<String> {
        lock(&self.shared.state).secrets.keys().cloned().collect()
    }

    /// The versions of `secret_id`, oldest first, or `None` if there is no such secret.
    pub fn versions(&self, secret_id: &str) -> Option<Vec<VersionInfo>> {
        let state = lock(&self.shared.state);
        let secret = state.secrets.get(secret_id)?;
        Some(
            secret
                .versions
                .iter()
                .zip(1u64..)
                .map(|(v, number)| VersionInfo {
                    number,
                    state: v.state,
                    len: v.data.len(),
                })
                .collect(),
        )
    }

    /// The labels of `secret_id`, or `None` if there is no such secret.
    pub fn labels(&self, secret_id: &str) -> Option<BTreeMap<String, String>> {
        let state = lock(&self.shared.state);
        let secret = state.secrets.get(secret_id)?;
        Some(
            secret
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect(),
        )
    }

    /// The replication policy `secret_id` was created with, as JSON.
    pub fn replication(&self, secret_id: &str) -> Option<Value> {
        let state = lock(&self.shared.state);
        Some(state.secrets.get(secret_id)?.replication.clone())
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// When on, every request is answered `403 PERMISSION_DENIED`.
    pub fn set_deny(&self, on: bool) {
        lock(&self.shared.faults).deny = on;
    }

    /// When on, every request is answered `503 UNAVAILABLE`.
    pub fn set_unavailable(&self, on: bool) {
        lock(&self.shared.faults).unavailable = on;
    }

    /// When on, requests get no answer (the connection stays open for a minute).
    pub fn set_hang(&self, on: bool) {
        lock(&self.shared.faults).hang = on;
    }

    /// When on, access responses carry a wrong `dataCrc32c`.
    pub fn set_corrupt_crc(&self, on: bool) {
        lock(&self.shared.faults).corrupt_crc = on;
    }
}

impl Drop for FakeSecretManager {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.abort();
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// An error answer in Google's JSON shape.
#[derive(Debug)]
struct ApiError {
    http: StatusCode,
    status: &'static str,
    message: String,
}

impl ApiError {
    fn new(http: StatusCode, status: &'static str, message: impl Into<String>) -> Self {
        Self {
            http,
            status,
            message: message.into(),
        }
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
    fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", message)
    }
    fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }
    fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
    }

    fn into_response(self) -> Response {
        json_response(
            self.http,
            &json!({"error": {
                "code": self.http.as_u16(),
                "message": self.message,
                "status": self.status,
            }}),
        )
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=UTF-8")
        .body(body.to_string())
}

/// What a request asks for, after the path is parsed.
#[derive(Debug)]
enum Call<'a> {
    ListSecrets,
    CreateSecret,
    GetSecret(&'a str),
    DeleteSecret(&'a str),
    AddVersion(&'a str),
    ListVersions(&'a str),
    GetVersion(&'a str, &'a str),
    AccessVersion(&'a str, &'a str),
    SetVersionState(&'a str, &'a str, VersionState),
}

impl Call<'_> {
    /// The IAM permission the real service would check, for PERMISSION_DENIED messages.
    fn permission(&self) -> &'static str {
        match self {
            Call::ListSecrets => "secretmanager.secrets.list",
            Call::CreateSecret => "secretmanager.secrets.create",
            Call::GetSecret(_) => "secretmanager.secrets.get",
            Call::DeleteSecret(_) => "secretmanager.secrets.delete",
            Call::AddVersion(_) => "secretmanager.versions.add",
            Call::ListVersions(_) => "secretmanager.versions.list",
            Call::GetVersion(..) => "secretmanager.versions.get",
            Call::AccessVersion(..) => "secretmanager.versions.access",
            Call::SetVersionState(_, _, VersionState::Destroyed) => {
                "secretmanager.versions.destroy"
            }
            Call::SetVersionState(_, _, VersionState::Disabled) => "secretmanager.versions.disable",
            Call::SetVersionState(_, _, VersionState::Enabled) => "secretmanager.versions.enable",
        }
    }
}

/// Parses `/v1/projects/{p}/...[:verb]` into the project and the call.
fn route<'a>(method: &Method, path: &'a str) -> Result<(&'a str, Call<'a>), ApiError> {
    let unknown = || {
        ApiError::not_found(format!(
            "The requested URL {path} was not found on this server (fake Secret Manager)."
        ))
    };
    let rest = path.strip_prefix("/v1/").ok_or_else(unknown)?;
    let (rest, verb) = match rest.rsplit_once(':') {
        Some((rest, verb)) if !verb.contains('/') => (rest, Some(verb)),
        _ => (rest, None),
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let m = method.as_str();
    let call = match (segments.as_slice(), verb, m) {
        (["projects", _, "secrets"], None, "GET") => Call::ListSecrets,
        (["projects", _, "secrets"], None, "POST") => Call::CreateSecret,
        (["projects", _, "secrets", s], None, "GET") => Call::GetSecret(s),
        (["projects", _, "secrets", s], None, "DELETE") => Call::DeleteSecret(s),
        (["projects", _, "secrets", s], Some("addVersion"), "POST") => Call::AddVersion(s),
        (["projects", _, "secrets", s, "versions"], None, "GET") => Call::ListVersions(s),
        (["projects", _, "secrets", s, "versions", v], None, "GET") => Call::GetVersion(s, v),
        (["projects", _, "secrets", s, "versions", v], Some("access"), "GET") => {
            Call::AccessVersion(s, v)
        }
        (["projects", _, "secrets", s, "versions", v], Some("destroy"), "POST") => {
            Call::SetVersionState(s, v, VersionState::Destroyed)
        }
        (["projects", _, "secrets", s, "versions", v], Some("disable"), "POST") => {
            Call::SetVersionState(s, v, VersionState::Disabled)
        }
        (["projects", _, "secrets", s, "versions", v], Some("enable"), "POST") => {
            Call::SetVersionState(s, v, VersionState::Enabled)
        }
        _ => return Err(unknown()),
    };
    let project = segments.get(1).copied().ok_or_else(unknown)?;
    Ok((project, call))
}

#[handler]
async fn handle(req: &Request, body: Body, Data(shared): Data<&Arc<Shared>>) -> Response {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    lock(&shared.requests).push(RecordedRequest {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or_default().to_string(),
        bearer: bearer.is_some(),
    });
    let faults = *lock(&shared.faults);
    if faults.hang {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let ints = query
        .get("$alt")
        .is_some_and(|alt| alt.contains("enum-encoding=int"));
    let body = match body.into_bytes().await {
        Ok(body) => body,
        Err(e) => return ApiError::invalid(format!("cannot read the body: {e}")).into_response(),
    };
    let result = (|| {
        if let Some(verifier) = &shared.verifier {
            check_bearer(verifier, bearer.as_deref())?;
        }
        if faults.unavailable {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "The service is currently unavailable.",
            ));
        }
        let (project, call) = route(req.method(), req.uri().path())?;
        if project != PROJECT_ID && project != PROJECT_NUMBER {
            return Err(ApiError::denied(format!(
                "Permission denied on resource project {project}."
            )));
        }
        if faults.deny {
            let resource = req
                .uri()
                .path()
                .trim_start_matches("/v1/")
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            return Err(ApiError::denied(format!(
                "Permission '{}' denied for resource '{resource}' (or it may not exist).",
                call.permission()
            )));
        }
        let mut state = lock(&shared.state);
        let ctx = Ctx {
            state: &mut state,
            query: &query,
            body: &body,
            ints,
            corrupt_crc: faults.corrupt_crc,
        };
        ctx.dispatch(call)
    })();
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(e) => e.into_response(),
    }
}

fn check_bearer(verifier: &Verifier, token: Option<&str>) -> Result<(), ApiError> {
    let token = token.ok_or_else(|| {
        ApiError::unauthenticated(
            "Request is missing required authentication credential. Expected OAuth 2 access \
             token, login cookie or other valid authentication credential.",
        )
    })?;
    let invalid = |why: &str| {
        ApiError::unauthenticated(format!(
            "Request had invalid authentication credentials ({why}). Expected OAuth 2 access \
             token, login cookie or other valid authentication credential."
        ))
    };
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a JWT"));
    };
    let decode = |part: &str| -> Result<Vec<u8>, ApiError> {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| invalid("bad base64url"))
    };
    let header: Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| invalid("bad JWT header"))?;
    if header["alg"] != "RS256" {
        return Err(invalid("alg is not RS256"));
    }
    if header["kid"] != verifier.key_id.as_str() {
        return Err(invalid("unknown key id"));
    }
    let signed = token
        .rsplit_once('.')
        .map(|(signed, _)| signed)
        .unwrap_or_default();
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        &verifier.public_key,
    )
    .verify(signed.as_bytes(), &decode(signature)?)
    .map_err(|_| invalid("bad signature"))?;
    let claims: Value =
        serde_json::from_slice(&decode(claims)?).map_err(|_| invalid("bad JWT claims"))?;
    if claims["iss"] != SERVICE_ACCOUNT_EMAIL {
        return Err(invalid("unknown issuer"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if claims["exp"].as_u64().is_none_or(|exp| exp < now) {
        return Err(invalid("expired"));
    }
    let scoped = claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|s| s == CLOUD_PLATFORM_SCOPE));
    let audience = claims["aud"]
        .as_str()
        .is_some_and(|a| a.starts_with("https://secretmanager.googleapis.com"));
    if !scoped && !audience {
        return Err(invalid(
            "neither the cloud-platform scope nor a Secret Manager audience",
        ));
    }
    Ok(())
}

struct Ctx<'a> {
    state: &'a mut State,
    query: &'a BTreeMap<String, String>,
    body: &'a [u8],
    ints: bool,
    corrupt_crc: bool,
}

fn secret_name(id: &str) -> String {
    format!("projects/{PROJECT_NUMBER}/secrets/{id}")
}

fn version_name(id: &str, number: u64) -> String {
    format!("projects/{PROJECT_NUMBER}/secrets/{id}/versions/{number}")
}

fn valid_secret_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_labels(labels: &Map<String, Value>) -> bool {
    labels.len() <= 64
        && labels.iter().all(|(k, v)| {
            let ok = |s: &str, max: usize| {
                s.len() <= max
                    && s.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    })
            };
            k.starts_with(|c: char| c.is_ascii_lowercase())
                && ok(k, 63)
                && v.as_str().is_some_and(|v| ok(v, 63))
        })
}

/// `dataCrc32c` is an int64, which the JSON mapping sends as a string (numbers are accepted too).
fn parse_int64(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

impl Ctx<'_> {
    fn dispatch(self, call: Call<'_>) -> Result<Value, ApiError> {
        match call {
            Call::ListSecrets => self.list_secrets(),
            Call::CreateSecret => self.create_secret(),
            Call::GetSecret(id) => {
                let secret = self.secret(id)?;
                Ok(secret_json(id, secret))
            }
            Call::DeleteSecret(id) => self.delete_secret(id),
            Call::AddVersion(id) => self.add_version(id),
            Call::ListVersions(id) => self.list_versions(id),
            Call::GetVersion(id, v) => {
                let ints = self.ints;
                let (number, version) = self.version(id, v)?;
                Ok(version_json(id, number, version, ints))
            }
            Call::AccessVersion(id, v) => self.access(id, v),
            Call::SetVersionState(id, v, to) => self.set_state(id, v, to),
        }
    }

    fn body_json(&self) -> Result<Map<String, Value>, ApiError> {
        if self.body.is_empty() {
            return Ok(Map::new());
        }
        match serde_json::from_slice(self.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(ApiError::invalid(
                "Invalid JSON payload received. Expected an object.",
            )),
        }
    }

    fn secret(&self, id: &str) -> Result<&StoredSecret, ApiError> {
        self.state
            .secrets
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("Secret [{}] not found.", secret_name(id))))
    }

    fn version(&self, id: &str, v: &str) -> Result<(u64, &StoredVersion), ApiError> {
        let secret = self.state.secrets.get(id).ok_or_else(|| {
            ApiError::not_found(format!(
                "Secret [{}] not found or has no versions.",
                secret_name(id)
            ))
        })?;
        let number = if v == "latest" {
            u64::try_from(secret.versions.len()).unwrap_or(0)
        } else {
            v.parse::<u64>().map_err(|_| {
                ApiError::invalid(format!(
                    "Invalid version id [{v}]: not a number or 'latest'."
                ))
            })?
        };
        if v == "latest" && number == 0 {
            return Err(ApiError::not_found(format!(
                "Secret [{}] not found or has no versions.",
                secret_name(id)
            )));
        }
        let index = usize::try_from(number)
            .unwrap_or(usize::MAX)
            .wrapping_sub(1);
        let version = secret.versions.get(index).ok_or_else(|| {
            ApiError::not_found(format!(
                "Secret Version [{}] not found.",
                version_name(id, number)
            ))
        })?;
        Ok((number, version))
    }

    fn page(&self) -> Result<(usize, usize), ApiError> {
        let size = match self.query.get("pageSize").map(String::as_str) {
            None | Some("") | Some("0") => DEFAULT_PAGE_SIZE,
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("pageSize must be a positive integer"))?
                .min(MAX_PAGE_SIZE),
        };
        let offset = match self.query.get("pageToken").map(String::as_str) {
            None | Some("") => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("Invalid page token."))?,
        };
        Ok((offset, size))
    }

    fn list_secrets(self) -> Result<Value, ApiError> {
        if self.query.get("filter").is_some_and(|f| !f.is_empty()) {
            return Err(ApiError::invalid(
                "filter is not supported by the fake Secret Manager for secrets",
            ));
        }
        let (offset, size) = self.page()?;
        let all: Vec<Value> = self
            .state
            .secrets
            .iter()
            .map(|(id, s)| secret_json(id, s))
            .collect();
        Ok(page_json("secrets", all, offset, size))
    }

    fn create_secret(self) -> Result<Value, ApiError> {
        let id = self.query.get("secretId").cloned().unwrap_or_default();
        if !valid_secret_id(&id) {
            return Err(ApiError::invalid(format!(
                "Invalid secret id [{id}]: must be 1-255 characters of letters, digits, '-' and '_'."
            )));
        }
        let mut body = self.body_json()?;
        let replication = body.remove("replication").unwrap_or(Value::Null);
        let kinds = ["automatic", "userManaged"]
            .iter()
            .filter(|k| replication.get(**k).is_some())
            .count();
        if kinds != 1 {
            return Err(ApiError::invalid(
                "Secret.replication must set exactly one of automatic or userManaged.",
            ));
        }
        let labels = match body.remove("labels") {
            None => Map::new(),
            Some(Value::Object(labels)) if valid_labels(&labels) => labels,
            Some(_) => return Err(ApiError::invalid("Invalid labels.")),
        };
        for output_only in ["name", "createTime", "etag"] {
            body.remove(output_only);
        }
        if self.state.secrets.contains_key(&id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                format!("Secret [{}] already exists.", secret_name(&id)),
            ));
        }
        let etag = self.state.etag();
        let secret = StoredSecret {
            replication,
            labels,
            extra: body,
            create_time: now_rfc3339(),
            etag,
            versions: Vec::new(),
        };
        let answer = secret_json(&id, &secret);
        self.state.secrets.insert(id, secret);
        Ok(answer)
    }

    fn delete_secret(self, id: &str) -> Result<Value, ApiError> {
        let secret = self.secret(id)?;
        let etag = self.query.get("etag").map(String::as_str).unwrap_or("");
        if !etag.is_empty() && etag != format!("\"{:016x}\"", secret.etag) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "ABORTED",
                "The etag does not match the secret's current etag.",
            ));
        }
        self.state.secrets.remove(id);
        Ok(json!({}))
    }

    fn add_version(self, id: &str) -> Result<Value, ApiError> {
        let body = self.body_json()?;
        let payload = body.get("payload").cloned().unwrap_or(Value::Null);
        let data = match payload.get("data") {
            Some(Value::String(b64)) => STANDARD
                .decode(b64)
                .map_err(|_| ApiError::invalid("payload.data is not valid base64."))?,
            _ => Vec::new(),
        };
        if data.is_empty() {
            return Err(ApiError::invalid("Secret Payload cannot be empty."));
        }
        if data.len() > MAX_PAYLOAD {
            return Err(ApiError::invalid(format!(
                "Secret Payload cannot be larger than {MAX_PAYLOAD} bytes."
            )));
        }
        let crc = crc32c::crc32c(&data);
        let client_checksum = match payload.get("dataCrc32c") {
            None | Some(Value::Null) => false,
            Some(value) => {
                if parse_int64(value) != Some(i64::from(crc)) {
                    return Err(ApiError::invalid(
                        "Checksum mismatch: payload.dataCrc32c does not match the CRC32C of payload.data.",
                    ));
                }
                true
            }
        };
        let ints = self.ints;
        let etag = self.state.etag();
        let secret = self.state.secrets.get_mut(id).ok_or_else(|| {
            ApiError::not_found(format!("Secret [{}] not found.", secret_name(id)))
        })?;
        secret.versions.push(StoredVersion {
            state: VersionState::Enabled,
            data,
            crc32c: crc,
            client_checksum,
            create_time: now_rfc3339(),
            destroy_time: None,
            etag,
        });
        let number = u64::try_from(secret.versions.len()).unwrap_or(u64::MAX);
        let version = secret
            .versions
            .last()
            .ok_or_else(|| ApiError::invalid("no version"))?;
        Ok(version_json(id, number, version, ints))
    }

    fn list_versions(self, id: &str) -> Result<Value, ApiError> {
        let wanted = match self.query.get("filter").map(String::as_str) {
            None | Some("") => None,
            Some(filter) => {
                let state = filter
                    .strip_prefix("state:")
                    .or_else(|| filter.strip_prefix("state="))
                    .and_then(|s| VersionState::parse(s.trim()));
                match state {
                    Some(state) => Some(state),
                    None => {
                        return Err(ApiError::invalid(format!(
                            "Invalid filter [{filter}] (the fake supports only state:<STATE>)."
                        )));
                    }
                }
            }
        };
        let (offset, size) = self.page()?;
        let secret = self.secret(id)?;
        let all: Vec<Value> = secret
            .versions
            .iter()
            .zip(1u64..)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .filter(|(v, _)| wanted.is_none_or(|w| v.state == w))
            .map(|(v, n)| version_json(id, n, v, self.ints))
            .collect();
        Ok(page_json("versions", all, offset, size))
    }

    fn access(self, id: &str, v: &str) -> Result<Value, ApiError> {
        let corrupt = self.corrupt_crc;
        let (number, version) = self.version(id, v)?;
        if version.state != VersionState::Enabled {
            return Err(ApiError::precondition(format!(
                "Secret Version [{}] is in {} state.",
                version_name(id, number),
                version.state.name()
            )));
        }
        let crc = if corrupt {
            version.crc32c ^ 0x0000_0001
        } else {
            version.crc32c
        };
        Ok(json!({
            "name": version_name(id, number),
            "payload": {
                "data": STANDARD.encode(&version.data),
                "dataCrc32c": crc.to_string(),
            },
        }))
    }

    fn set_state(self, id: &str, v: &str, to: VersionState) -> Result<Value, ApiError> {
        let body = self.body_json()?;
        let ints = self.ints;
        let (number, current) = {
            let (number, version) = self.version(id, v)?;
            (number, version)
        };
        let etag = body.get("etag").and_then(Value::as_str).unwrap_or("");
        if !etag.is_empty() && etag != format!("\"{:016x}\"", current.etag) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "ABORTED",
                "The etag does not match the version's current etag.",
            ));
        }
        match (current.state, to) {
            (VersionState::Destroyed, _) => {
                return Err(ApiError::precondition(format!(
                    "Secret Version [{}] is in DESTROYED state.",
                    version_name(id, number)
                )));
            }
            (from, to) if from == to => {
                return Err(ApiError::precondition(format!(
                    "Secret Version [{}] is already in {} state.",
                    version_name(id, number),
                    to.name()
                )));
            }
            _ => {}
        }
        let etag = self.state.etag();
        let index = usize::try_from(number)
            .unwrap_or(usize::MAX)
            .wrapping_sub(1);
        let version = self
            .state
            .secrets
            .get_mut(id)
            .and_then(|s| s.versions.get_mut(index))
            .ok_or_else(|| ApiError::not_found("Secret Version not found."))?;
        version.state = to;
        version.etag = etag;
        if to == VersionState::Destroyed {
            // Wipe the data for good.
            version.data.iter_mut().for_each(|b| *b = 0);
            version.data.clear();
            version.destroy_time = Some(now_rfc3339());
        }
        Ok(version_json(id, number, version, ints))
    }
}

fn secret_json(id: &str, secret: &StoredSecret) -> Value {
    let mut out = secret.extra.clone();
    out.insert("name".into(), Value::String(secret_name(id)));
    out.insert("replication".into(), secret.replication.clone());
    out.insert(
        "createTime".into(),
        Value::String(secret.create_time.clone()),
    );
    if !secret.labels.is_empty() {
        out.insert("labels".into(), Value::Object(secret.labels.clone()));
    }
    out.insert(
        "etag".into(),
        Value::String(format!("\"{:016x}\"", secret.etag)),
    );
    Value::Object(out)
}

fn version_json(id: &str, number: u64, version: &StoredVersion, ints: bool) -> Value {
    let mut out = json!({
        "name": version_name(id, number),
        "createTime": version.create_time,
        "state": if ints { json!(version.state.number()) } else { json!(version.state.name()) },
        "etag": format!("\"{:016x}\"", version.etag),
        "clientSpecifiedPayloadChecksum": version.client_checksum,
    });
    if let (Some(at), Some(map)) = (&version.destroy_time, out.as_object_mut()) {
        map.insert("destroyTime".into(), Value::String(at.clone()));
    }
    out
}

fn page_json(field: &str, all: Vec<Value>, offset: usize, size: usize) -> Value {
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip(offset).take(size).collect();
    let mut out = Map::new();
    if !items.is_empty() {
        out.insert(field.into(), Value::Array(items));
    }
    if offset.saturating_add(size) < total {
        out.insert(
            "nextPageToken".into(),
            Value::String((offset + size).to_string()),
        );
    }
    out.insert("totalSize".into(), json!(total));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn routes_follow_the_rest_mapping_of_the_official_client() {
        let post = Method::POST;
        let get = Method::GET;
        assert!(matches!(
            route(&post, "/v1/projects/p/secrets/s:addVersion").unwrap(),
            ("p", Call::AddVersion("s"))
        ));
        assert!(matches!(
            route(&get, "/v1/projects/p/secrets/s/versions/latest:access").unwrap(),
            ("p", Call::AccessVersion("s", "latest"))
        ));
        assert!(matches!(
            route(&post, "/v1/projects/p/secrets/s/versions/3:destroy").unwrap(),
            (
                "p",
                Call::SetVersionState("s", "3", VersionState::Destroyed)
            )
        ));
        assert!(matches!(
            route(&get, "/v1/projects/p/secrets").unwrap(),
            ("p", Call::ListSecrets)
        ));
        assert!(route(&get, "/v1/projects/p/secrets/s:frobnicate").is_err());
        assert!(route(&get, "/v2/projects/p/secrets").is_err());
    }

    #[test]
    fn pages_carry_a_token_until_the_last() {
        let all: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let first = page_json("items", all.clone(), 0, 2);
        assert_eq!(first["nextPageToken"], "2");
        assert_eq!(first["totalSize"], 5);
        let last = page_json("items", all, 4, 2);
        assert!(last.get("nextPageToken").is_none());
        assert_eq!(last["items"], json!([4]));
    }
}
