//! A protocol-level fake of Azure Key Vault (secrets) and of the Entra ID token endpoints, over
//! HTTPS on 127.0.0.1, for driving the official Azure SDK crates in tests. No Key Vault emulator
//! exists that runs here, so this speaks the wire protocol the SDK uses (api-version 2025-07-01):
//!
//! * **Challenge authentication**: a vault request without a valid bearer token gets `401` with
//!   `WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"`.
//!   Only tokens this fake issued (and that have not expired or been revoked) are accepted.
//! * **Entra ID** `POST /{tenant}/oauth2/v2.0/token` (client credentials): checks tenant, client
//!   id, client secret and scope, answering errors in Entra's shape (`invalid_client` with
//!   `AADSTS7000215` for a wrong secret), so the real `ClientSecretCredential` runs against it
//!   with `authority_host` = [`FakeKeyVault::authority_host`].
//! * **Managed identity**, App Service flavour: `GET /msi/token` with the `X-IDENTITY-HEADER`
//!   secret, as `ManagedIdentityCredential` calls it when `IDENTITY_ENDPOINT` and
//!   `IDENTITY_HEADER` are set ([`FakeKeyVault::identity_endpoint`], [`FakeKeyVault::identity_header`]).
//! * **Secrets**: `PUT /secrets/{name}` (new version), `GET /secrets/{name}[/{version}]` (also
//!   the SDK's trailing-slash form), `DELETE /secrets/{name}` (soft delete),
//!   `GET /deletedsecrets/{name}`, `DELETE /deletedsecrets/{name}` (purge). Errors use Key Vault's
//!   `{"error":{"code":..,"message":..,"innererror":{"code":..}}}` shape and codes.
//! * **Soft delete like the real service**: after a delete the name is "being deleted" for a
//!   moment (purge and set answer `409 Conflict`, "currently being deleted"), then "deleted but
//!   recoverable" (set answers `409`, `ObjectIsDeletedButRecoverable`; purge works), and after a
//!   purge it is still "being deleted" for a moment (set answers `409`, `ObjectIsBeingDeleted`)
//!   although reads already say 404. The latencies default to 25 ms each
//!   ([`FakeKeyVault::set_soft_delete_latency`]).
//!
//! Tests can read every request the fake saw ([`FakeKeyVault::requests`]; bodies verbatim,
//! including client secrets and secret values — that is the point), seed secrets
//! ([`FakeKeyVault::insert_secret`]), inspect a name's state ([`FakeKeyVault::secret_state`]) and
//! inject faults ([`FakeKeyVault::set_fault`]).
//!
//! Not modelled: secret listing, backup/restore, recover, attributes updates, versions' `nbf` and
//! `exp`, the IMDS (VM) managed-identity endpoint (its address is fixed), PoP tokens, CAE claims.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use poem::http::{HeaderValue, StatusCode};
use poem::listener::{Acceptor, AcceptorExt, RustlsCertificate, RustlsConfig, TcpAcceptor};
use poem::{Endpoint, Request, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::TestPki;

/// The audience Key Vault tokens are issued for.
pub const RESOURCE: &str = "https://vault.azure.net";

/// The scope `ClientSecretCredential` must ask for.
pub const SCOPE: &str = "https://vault.azure.net/.default";

/// The managed-identity (App Service) protocol version the SDK sends.
const MSI_API_VERSION: &str = "2019-08-01";

/// Largest secret value Key Vault accepts (25 KiB).
const MAX_VALUE_LEN: usize = 25 * 1024;

/// Lifetime of issued tokens.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Start a fake on 127.0.0.1 with a fresh CA; same as [`FakeKeyVault::start`].
pub async fn start() -> anyhow::Result<FakeKeyVault> {
    FakeKeyVault::start().await
}

/// A failure the fake can be told to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every vault request answers `503 ServiceUnavailable`.
    Unavailable,
    /// Every vault request answers `429 Throttled` with `Retry-After: 30`.
    Throttled,
    /// Vault requests with a valid token answer `403 Forbidden` (`ForbiddenByRbac`), as for an
    /// identity without a data-plane role.
    Forbidden,
    /// Purges answer `403` as on a vault with purge protection.
    PurgeProtection,
    /// The Entra token endpoint answers `503` (`temporarily_unavailable`).
    TokenEndpointUnavailable,
}

/// Where a secret name stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretState {
    /// Never written, or purged completely.
    Absent,
    /// Readable; `versions` versions written.
    Active {
        /// Number of versions.
        versions: usize,
    },
    /// Deleted a moment ago; not yet visible under `deletedsecrets`, cannot be purged yet.
    BeingDeleted,
    /// Deleted and recoverable: blocks the name until purged.
    Deleted,
    /// Purged a moment ago; reads say 404 but the name cannot be reused yet.
    BeingPurged,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/secrets/p1/`.
    pub path: String,
    /// Raw query string (without `?`), empty if none.
    pub query: String,
    /// The body as received (lossy UTF-8).
    pub body: String,
    /// The HTTP status the fake answered.
    pub status: u16,
}

/// A running fake; stops when dropped.
pub struct FakeKeyVault {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    base_url: url::Url,
    ca_pem: String,
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for FakeKeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKeyVault")
            .field("local_addr", &self.local_addr)
            .field("tenant_id", &self.shared.tenant_id)
            .field("client_id", &self.shared.client_id)
            .finish_non_exhaustive()
    }
}

impl FakeKeyVault {
    /// Starts the fake on 127.0.0.1 (port 0) with a fresh [`TestPki`]; trust
    /// [`ca_pem`](Self::ca_pem) to talk to it.
    pub async fn start() -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        let pki = TestPki::new("azure-key-vault-fake")?;
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the Key Vault fake")?;
        let local_addr = listener.local_addr()?;
        let tls = RustlsConfig::new().fallback(
            RustlsCertificate::new()
                .cert(pki.server.certificate_pem.clone().into_bytes())
                .key(pki.server.private_key_pem.clone().into_bytes()),
        );
        let acceptor = TcpAcceptor::from_tokio(listener)?.rustls(
            poem::listener::IntoTlsConfigStream::into_stream(tls)
                .context("TLS configuration of the Key Vault fake")?,
        );

        let base_url = url::Url::parse(&format!("https://{local_addr}/"))?;
        let random = RandomState::new();
        let shared = Arc::new(Shared {
            base: base_url.to_string(),
            tenant_id: "fake-tenant-0001".to_owned(),
            client_id: format!("{:016x}-client", random.hash_one(1u8)),
            client_secret: format!("fake-client-secret-{:016x}", random.hash_one(2u8)),
            identity_header: format!("fake-identity-header-{:016x}", random.hash_one(3u8)),
            managed_identity_client_id: format!("{:016x}-managed", random.hash_one(4u8)),
            random,
            state: Mutex::new(State {
                secrets: HashMap::new(),
                tokens: HashMap::new(),
                tokens_issued: 0,
                log: Vec::new(),
                fault: None,
                delete_latency: Duration::from_millis(25),
                purge_latency: Duration::from_millis(25),
                counter: 0,
            }),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(acceptor, FakeApp(shared.clone()), stopped));
        Ok(Self {
            shared,
            local_addr,
            base_url,
            ca_pem: pki.ca_pem,
            _stop: stop,
        })
    }

    /// `https://127.0.0.1:PORT/`: the vault URL to configure.
    pub fn vault_url(&self) -> url::Url {
        self.base_url()
    }

    /// `https://127.0.0.1:PORT/`: the Entra ID authority host to configure (same server).
    pub fn authority_host(&self) -> url::Url {
        self.base_url()
    }

    fn base_url(&self) -> url::Url {
        self.base_url.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The CA certificate (PEM) that issued the fake's server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The only tenant id the token endpoint knows.
    pub fn tenant_id(&self) -> &str {
        &self.shared.tenant_id
    }

    /// The only client (application) id the token endpoint knows.
    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// The client secret the token endpoint accepts for [`client_id`](Self::client_id).
    pub fn client_secret(&self) -> &str {
        &self.shared.client_secret
    }

    /// The managed-identity endpoint, for `IDENTITY_ENDPOINT`.
    pub fn identity_endpoint(&self) -> String {
        format!("{}msi/token", self.shared.base)
    }

    /// The value the managed-identity endpoint expects in `X-IDENTITY-HEADER`, for
    /// `IDENTITY_HEADER`.
    pub fn identity_header(&self) -> &str {
        &self.shared.identity_header
    }

    /// Client id of the one user-assigned identity the managed-identity endpoint knows (the
    /// system-assigned identity, with no client id, works too).
    pub fn managed_identity_client_id(&self) -> &str {
        &self.shared.managed_identity_client_id
    }

    /// Every request seen so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// How many access tokens the token endpoints issued.
    pub fn tokens_issued(&self) -> usize {
        self.shared.lock().tokens_issued
    }

    /// Makes the vault refuse every token issued so far (like a token for another tenant). The
    /// SDK's credentials cache their token, so a client that already signed in keeps being
    /// refused (`401`); a new client signs in afresh.
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Makes the fake fail (`Some`) or behave (`None`).
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.shared.lock().fault = fault;
    }

    /// How long a deleted secret stays "being deleted" before it can be purged, and how long a
    /// purged name stays blocked. Zero makes both steps immediate.
    pub fn set_soft_delete_latency(&self, deleting: Duration, purging: Duration) {
        let mut state = self.shared.lock();
        state.delete_latency = deleting;
        state.purge_latency = purging;
    }

    /// Stores a new version of `name` directly (bypassing authentication), e.g. a secret that
    /// keymanager did not write.
    pub fn insert_secret(&self, name: &str, value: &str, content_type: Option<&str>) {
        let mut state = self.shared.lock();
        let version = state.new_version_id(&self.shared.random);
        let key = name.to_ascii_lowercase();
        let entry = state.secrets.entry(key).or_insert_with(|| Entry {
            name: name.to_owned(),
            versions: Vec::new(),
            phase: Phase::Active,
            deleted_at: 0,
        });
        entry.phase = Phase::Active;
        entry.versions.push(Version {
            id: version,
            value: value.to_owned(),
            content_type: content_type.map(str::to_owned),
            tags: None,
            created: unix_now(),
        });
    }

    /// Soft-deletes `name` as if a `DELETE /secrets/{name}` had completed and nobody purged it
    /// (the state a delete cut off between its delete and purge steps leaves behind).
    pub fn soft_delete(&self, name: &str) {
        let mut state = self.shared.lock();
        if let Some(entry) = state.entry(name) {
            entry.deleted_at = unix_now();
            entry.phase = Phase::Deleted;
        }
    }

    /// Where `name` stands now.
    pub fn secret_state(&self, name: &str) -> SecretState {
        let mut state = self.shared.lock();
        match state.entry(name) {
            None => SecretState::Absent,
            Some(entry) => match entry.phase {
                Phase::Active => SecretState::Active {
                    versions: entry.versions.len(),
                },
                Phase::Deleting(_) => SecretState::BeingDeleted,
                Phase::Deleted => SecretState::Deleted,
                Phase::Purging(_) => SecretState::BeingPurged,
            },
        }
    }
}

async fn serve<A: Acceptor + 'static>(acceptor: A, app: FakeApp, stopped: oneshot::Receiver<()>) {
    let _ = poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            async move {
                let _ = stopped.await;
            },
            Some(Duration::from_secs(1)),
        )
        .await;
}

struct Shared {
    base: String,
    tenant_id: String,
    client_id: String,
    client_secret: String,
    identity_header: String,
    managed_identity_client_id: String,
    random: RandomState,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct State {
    secrets: HashMap<String, Entry>,
    tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    log: Vec<RecordedRequest>,
    fault: Option<Fault>,
    delete_latency: Duration,
    purge_latency: Duration,
    counter: u64,
}

impl State {
    /// The entry for `name` (case-insensitive) after applying due soft-delete transitions.
    fn entry(&mut self, name: &str) -> Option<&mut Entry> {
        let key = name.to_ascii_lowercase();
        let now = Instant::now();
        let purged = match self.secrets.get_mut(&key) {
            None => return None,
            Some(entry) => {
                if let Phase::Deleting(until) = entry.phase
                    && until <= now
                {
                    entry.phase = Phase::Deleted;
                }
                matches!(entry.phase, Phase::Purging(until) if until <= now)
            }
        };
        if purged {
            self.secrets.remove(&key);
            return None;
        }
        self.secrets.get_mut(&key)
    }

    fn new_version_id(&mut self, random: &RandomState) -> String {
        self.counter += 1;
        format!(
            "{:016x}{:016x}",
            random.hash_one((self.counter, 1u8)),
            random.hash_one((self.counter, 2u8))
        )
    }

    fn issue_token(&mut self, random: &RandomState) -> String {
        self.counter += 1;
        let token = format!(
            "fake-token-{:016x}{:016x}",
            random.hash_one((self.counter, 3u8)),
            random.hash_one((self.counter, 4u8))
        );
        self.tokens
            .insert(token.clone(), Instant::now() + TOKEN_LIFETIME);
        self.tokens_issued += 1;
        token
    }

    fn token_valid(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
            return false;
        };
        self.tokens
            .get(token.trim())
            .is_some_and(|expiry| *expiry > Instant::now())
    }
}

struct Entry {
    name: String,
    versions: Vec<Version>,
    phase: Phase,
    deleted_at: u64,
}

#[derive(Clone, Copy)]
enum Phase {
    Active,
    Deleting(Instant),
    Deleted,
    Purging(Instant),
}

struct Version {
    id: String,
    value: String,
    content_type: Option<String>,
    tags: Option<Value>,
    created: u64,
}

struct FakeApp(Arc<Shared>);

impl Endpoint for FakeApp {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let body = req.take_body().into_vec().await.unwrap_or_default();
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let authorization = header("authorization");
        let identity_header = header("x-identity-header");
        let response = self.0.handle(
            &method,
            &path,
            &query,
            &body,
            authorization.as_deref(),
            identity_header.as_deref(),
        );
        self.0.lock().log.push(RecordedRequest {
            method,
            path,
            query,
            body: String::from_utf8_lossy(&body).into_owned(),
            status: response.status().as_u16(),
        });
        Ok(response)
    }
}

impl Shared {
    fn handle(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        authorization: Option<&str>,
        identity_header: Option<&str>,
    ) -> Response {
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("POST", [tenant, "oauth2", "v2.0", "token"]) => self.token(tenant, body),
            ("GET", ["msi", "token"]) => self.managed_identity(&params, identity_header),
            (_, ["secrets" | "deletedsecrets", ..]) => {
                self.vault(method, &segments, &params, body, authorization)
            }
            _ => kv_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                None,
                &format!("No route for {method} {path}."),
            ),
        }
    }

    /// Entra ID v2 token endpoint, client-credentials grant.
    fn token(&self, tenant: &str, body: &[u8]) -> Response {
        if self.lock().fault == Some(Fault::TokenEndpointUnavailable) {
            return entra_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                90000,
                "AADSTS90000: The service is temporarily unavailable. Please retry later.",
            );
        }
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
        if tenant != self.tenant_id {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                &format!(
                    "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                ),
            );
        }
        if field("grant_type") != "client_credentials" {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                "AADSTS70003: The app requested an unsupported grant type.",
            );
        }
        if field("client_id") != self.client_id {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                &format!(
                    "AADSTS700016: Application with identifier '{}' was not found in the directory '{}'.",
                    field("client_id"),
                    self.tenant_id
                ),
            );
        }
        if field("client_secret") != self.client_secret {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    self.client_id
                ),
            );
        }
        if field("scope") != SCOPE {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                70011,
                &format!(
                    "AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope {} is not valid.",
                    field("scope")
                ),
            );
        }
        let token = self.lock().issue_token(&self.random);
        json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME.as_secs() - 1,
                "ext_expires_in": TOKEN_LIFETIME.as_secs() - 1,
                "access_token": token,
            }),
        )
    }

    /// App Service managed-identity endpoint (`IDENTITY_ENDPOINT`).
    fn managed_identity(
        &self,
        params: &HashMap<String, String>,
        identity_header: Option<&str>,
    ) -> Response {
        let msi_error = |status: StatusCode, message: &str| {
            json_response(
                status,
                &json!({ "statusCode": status.as_u16(), "message": message }),
            )
        };
        if identity_header != Some(self.identity_header.as_str()) {
            return msi_error(
                StatusCode::UNAUTHORIZED,
                "The X-IDENTITY-HEADER header is missing or wrong.",
            );
        }
        if params.get("api-version").map(String::as_str) != Some(MSI_API_VERSION) {
            return msi_error(
                StatusCode::BAD_REQUEST,
                "api-version is missing or not supported.",
            );
        }
        if params.get("resource").map(String::as_str) != Some(RESOURCE) {
            return msi_error(
                StatusCode::BAD_REQUEST,
                "The resource is missing or not supported by this endpoint.",
            );
        }
        let client_id = match params.get("client_id") {
            None if !params.contains_key("object_id") && !params.contains_key("msi_res_id") => {
                "system-assigned".to_owned()
            }
            Some(id) if *id == self.managed_identity_client_id => id.clone(),
            _ => {
                return msi_error(
                    StatusCode::BAD_REQUEST,
                    "Unable to load the proper Managed Identity.",
                );
            }
        };
        let token = self.lock().issue_token(&self.random);
        json_response(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "expires_on": (unix_now() + TOKEN_LIFETIME.as_secs()).to_string(),
                "resource": RESOURCE,
                "token_type": "Bearer",
                "client_id": client_id,
            }),
        )
    }

    /// Key Vault secrets endpoints.
    fn vault(
        &self,
        method: &str,
        segments: &[&str],
        params: &HashMap<String, String>,
        body: &[u8],
        authorization: Option<&str>,
    ) -> Response {
        if params.get("api-version").is_none_or(|v| v.is_empty()) {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                "The 'api-version' query parameter is missing.",
            );
        }
        let mut state = self.lock();
        match state.fault {
            Some(Fault::Unavailable) => {
                return kv_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    None,
                    "The service is temporarily unavailable.",
                );
            }
            Some(Fault::Throttled) => {
                let mut response = kv_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Throttled",
                    None,
                    "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
                );
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static("30"));
                return response;
            }
            _ => {}
        }
        if !state.token_valid(authorization) {
            let message = if authorization.is_none() {
                "AKV10000: Request is missing a Bearer or PoP token."
            } else {
                "AKV10022: Invalid token: it was not issued for this vault or has expired."
            };
            let mut response = kv_error(StatusCode::UNAUTHORIZED, "Unauthorized", None, message);
            let challenge = format!(
                "Bearer authorization=\"{}{}\", resource=\"{RESOURCE}\"",
                self.base, self.tenant_id
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert("www-authenticate", value);
            }
            return response;
        }
        if state.fault == Some(Fault::Forbidden) {
            return kv_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("ForbiddenByRbac"),
                "Caller is not authorized to perform action on resource. If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.",
            );
        }
        let (collection, name, version) = match segments {
            [collection, name] | [collection, name, ""] => (*collection, *name, None),
            ["secrets", name, version] => ("secrets", *name, Some(*version)),
            _ => {
                return kv_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    None,
                    "The requested resource was not found.",
                );
            }
        };
        if name.is_empty()
            || name.len() > 127
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                &format!("The request URI contains an invalid name: {name}"),
            );
        }
        match (method, collection, version) {
            ("PUT", "secrets", None) => self.set_secret(&mut state, name, body),
            ("GET", "secrets", version) => self.get_secret(&mut state, name, version),
            ("DELETE", "secrets", None) => self.delete_secret(&mut state, name),
            ("GET", "deletedsecrets", None) => self.get_deleted_secret(&mut state, name),
            ("DELETE", "deletedsecrets", None) => self.purge_deleted_secret(&mut state, name),
            _ => kv_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadParameter",
                None,
                &format!("The requested method {method} is not allowed here."),
            ),
        }
    }

    fn set_secret(&self, state: &mut State, name: &str, body: &[u8]) -> Response {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                "The request body is not valid JSON.",
            );
        };
        let Some(value) = request.get("value").and_then(Value::as_str) else {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                "Property 'value' is required.",
            );
        };
        if value.len() > MAX_VALUE_LEN {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                "The secret value exceeds the maximum size of 25 KiB.",
            );
        }
        let content_type = request
            .get("contentType")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let tags = request.get("tags").cloned();
        let version = state.new_version_id(&self.random);
        let phase = state.entry(name).map(|entry| entry.phase);
        match phase {
            Some(Phase::Deleting(_) | Phase::Purging(_)) => {
                return kv_error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    Some("ObjectIsBeingDeleted"),
                    &format!(
                        "Secret {name} is currently being deleted and cannot be re-created; retry later."
                    ),
                );
            }
            Some(Phase::Deleted) => {
                return kv_error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    Some("ObjectIsDeletedButRecoverable"),
                    &format!(
                        "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
                    ),
                );
            }
            Some(Phase::Active) | None => {}
        }
        let entry = state
            .secrets
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| Entry {
                name: name.to_owned(),
                versions: Vec::new(),
                phase: Phase::Active,
                deleted_at: 0,
            });
        entry.versions.push(Version {
            id: version,
            value: value.to_owned(),
            content_type,
            tags,
            created: unix_now(),
        });
        let bundle = self.bundle(entry, entry.versions.len() - 1, true);
        json_response(StatusCode::OK, &bundle)
    }

    fn get_secret(&self, state: &mut State, name: &str, version: Option<&str>) -> Response {
        let not_found = |what: &str| {
            kv_error(
                StatusCode::NOT_FOUND,
                "SecretNotFound",
                None,
                &format!(
                    "A secret with (name/id) {what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
                ),
            )
        };
        let Some(entry) = state.entry(name) else {
            return not_found(name);
        };
        if !matches!(entry.phase, Phase::Active) {
            return not_found(name);
        }
        let index = match version {
            None => entry.versions.len().checked_sub(1),
            Some(version) => entry.versions.iter().position(|v| v.id == version),
        };
        match index {
            Some(index) => json_response(StatusCode::OK, &self.bundle(entry, index, true)),
            None => not_found(&format!("{name}/{}", version.unwrap_or_default())),
        }
    }

    fn delete_secret(&self, state: &mut State, name: &str) -> Response {
        let latency = state.delete_latency;
        let Some(entry) = state.entry(name) else {
            return secret_not_found(name);
        };
        match entry.phase {
            Phase::Active => {}
            Phase::Deleting(_) | Phase::Purging(_) => {
                return kv_error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    Some("ObjectIsBeingDeleted"),
                    &format!("Secret {name} is currently being deleted."),
                );
            }
            Phase::Deleted => return secret_not_found(name),
        }
        entry.deleted_at = unix_now();
        entry.phase = if latency.is_zero() {
            Phase::Deleted
        } else {
            Phase::Deleting(Instant::now() + latency)
        };
        let bundle = self.deleted_bundle(entry);
        json_response(StatusCode::OK, &bundle)
    }

    fn get_deleted_secret(&self, state: &mut State, name: &str) -> Response {
        match state.entry(name) {
            Some(entry) if matches!(entry.phase, Phase::Deleted) => {
                json_response(StatusCode::OK, &self.deleted_bundle(entry))
            }
            _ => deleted_not_found(name),
        }
    }

    fn purge_deleted_secret(&self, state: &mut State, name: &str) -> Response {
        if state.fault == Some(Fault::PurgeProtection) {
            return kv_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("PurgeProtectionEnabled"),
                "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.",
            );
        }
        let latency = state.purge_latency;
        let Some(entry) = state.entry(name) else {
            return deleted_not_found(name);
        };
        match entry.phase {
            Phase::Deleted => {}
            Phase::Deleting(_) => {
                return kv_error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    Some("ObjectIsBeingDeleted"),
                    "Secret is currently being deleted.",
                );
            }
            Phase::Active | Phase::Purging(_) => return deleted_not_found(name),
        }
        if latency.is_zero() {
            state.secrets.remove(&name.to_ascii_lowercase());
        } else {
            entry.phase = Phase::Purging(Instant::now() + latency);
        }
        let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
        response.headers_mut().remove("content-type");
        response
    }

    /// A SecretBundle for version `index` of `entry`.
    fn bundle(&self, entry: &Entry, index: usize, with_value: bool) -> Value {
        let Some(version) = entry.versions.get(index) else {
            return json!({});
        };
        let mut bundle = json!({
            "id": format!("{}secrets/{}/{}", self.base, entry.name, version.id),
            "attributes": {
                "enabled": true,
                "created": version.created,
                "updated": version.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
        });
        if with_value {
            bundle["value"] = json!(version.value);
        }
        if let Some(content_type) = &version.content_type {
            bundle["contentType"] = json!(content_type);
        }
        if let Some(tags) = &version.tags {
            bundle["tags"] = tags.clone();
        }
        bundle
    }

    /// A DeletedSecretBundle (no value) for the latest version of `entry`.
    fn deleted_bundle(&self, entry: &Entry) -> Value {
        let mut bundle = self.bundle(entry, entry.versions.len().saturating_sub(1), false);
        bundle["recoveryId"] = json!(format!("{}deletedsecrets/{}", self.base, entry.name));
        bundle["deletedDate"] = json!(entry.deleted_at);
        bundle["scheduledPurgeDate"] = json!(entry.deleted_at + 90 * 24 * 3600);
        bundle
    }
}

fn secret_not_found(name: &str) -> Response {
    kv_error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        None,
        &format!(
            "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
    )
}

fn deleted_not_found(name: &str) -> Response {
    kv_error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        None,
        &format!("Deleted Secret not found: {name}"),
    )
}

/// Key Vault's error shape.
fn kv_error(status: StatusCode, code: &str, inner: Option<&str>, message: &str) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if let Some(inner) = inner {
        error["innererror"] = json!({ "code": inner });
    }
    json_response(status, &json!({ "error": error }))
}

/// Entra ID's OAuth error shape.
fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": unix_now(),
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        }),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
