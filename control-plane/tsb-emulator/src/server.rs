//! HTTP front: binding (plain, TLS, mTLS), partition selection, API-key groups, fault injection,
//! the admin API, and the lifecycle of a running emulator.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::{Method, StatusCode};
use poem::listener::{Acceptor, AcceptorExt, RustlsCertificate, RustlsConfig, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::config::{ClientAuth, EmulatorConfig, KeyGroup, Storage};
use crate::crypto::{self, KeyMaterial, KeySpec};
use crate::error::{EmulatorError, TsbError};
use crate::handlers;
use crate::model::{Partition, PartitionState};
use crate::storage::Persistence;
use crate::wire::{self, JsonOut};

/// Maximum accepted request body (larger → 400/612).
pub(crate) const MAX_BODY: usize = 2 * 1024 * 1024;

/// The emulator's clock: wall clock plus an offset the admin API can advance (SKA timelocks,
/// timeouts and expiry use it; approver timestamps are checked against the real wall clock).
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_secs.load(Ordering::SeqCst))
    }
    pub fn now_unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
}

/// An injected fault (admin API).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultIn {
    path_prefix: Option<String>,
    method: Option<String>,
    latency_ms: Option<u64>,
    status: Option<u16>,
    error_code: Option<u32>,
    drop_connection: Option<bool>,
    times: Option<u64>,
    partition: Option<String>,
}

#[derive(Clone, Debug)]
struct FaultRule {
    id: String,
    spec: FaultIn,
    remaining: Option<u64>,
}

impl FaultRule {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "pathPrefix": self.spec.path_prefix,
            "method": self.spec.method,
            "latencyMs": self.spec.latency_ms.unwrap_or(0),
            "status": self.spec.status,
            "errorCode": self.spec.error_code,
            "dropConnection": self.spec.drop_connection.unwrap_or(false),
            "times": self.remaining,
            "partition": self.spec.partition,
        })
    }
    fn matches(&self, method: &Method, path: &str, partition: &str) -> bool {
        self.spec
            .path_prefix
            .as_deref()
            .is_none_or(|p| path.starts_with(p))
            && self
                .spec
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
            && self
                .spec
                .partition
                .as_deref()
                .is_none_or(|p| p == partition)
    }
}

/// Connections that a fault may cut: keyed by the peer address.
#[derive(Default)]
pub(crate) struct ConnRegistry {
    flags: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

impl ConnRegistry {
    fn kill(&self, peer: &str) {
        let flags = self.flags.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = flags.get(peer) {
            f.store(true, Ordering::SeqCst);
        }
    }
}

/// Acceptor wrapper whose streams fail every read/write once their kill flag is set, so a
/// "dropConnection" fault closes the connection without any response bytes.
struct TrackedAcceptor<A> {
    inner: A,
    registry: Arc<ConnRegistry>,
}

struct TrackedIo<T> {
    inner: T,
    flag: Arc<AtomicBool>,
    key: String,
    registry: Arc<ConnRegistry>,
}

impl<T> Drop for TrackedIo<T> {
    fn drop(&mut self) {
        let mut flags = self
            .registry
            .flags
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if flags
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flag))
        {
            flags.remove(&self.key);
        }
    }
}

fn killed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "connection dropped by fault injection",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.flag.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.flag.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.flag.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<A: Acceptor> Acceptor for TrackedAcceptor<A> {
    type Io = TrackedIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        let key = remote.to_string();
        let flag = Arc::new(AtomicBool::new(false));
        self.registry
            .flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), flag.clone());
        Ok((
            TrackedIo {
                inner: io,
                flag,
                key,
                registry: self.registry.clone(),
            },
            local,
            remote,
            scheme,
        ))
    }
}

/// State shared by every request.
pub(crate) struct Shared {
    pub partitions: Vec<Arc<Partition>>,
    by_name: HashMap<String, usize>,
    key_owner: HashMap<String, usize>,
    pub persistence: Persistence,
    pub clock: Clock,
    faults: Mutex<Vec<FaultRule>>,
    admin_api: bool,
    /// The "attestation-key" that signs key descriptors' XML.
    pub attestation: KeyMaterial,
    /// The attestation key's X.509 certificate (PEM), self-signed by the emulator.
    pub attestation_certificate: String,
    conns: Arc<ConnRegistry>,
}

/// What a handler answers.
pub(crate) enum Reply {
    Json(JsonOut),
    File {
        content_type: &'static str,
        filename: String,
        body: Vec<u8>,
    },
}

impl From<JsonOut> for Reply {
    fn from(j: JsonOut) -> Self {
        Reply::Json(j)
    }
}

/// Per-request context for handlers.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub part: &'a Arc<Partition>,
    pub method: &'a Method,
    /// Path below the partition prefix, starting with `/v1`.
    pub path: &'a str,
    pub body: &'a [u8],
}

fn error_response(e: &TsbError) -> Response {
    Response::builder()
        .status(e.status())
        .content_type("application/json")
        .body(e.body().to_string())
}

/// A self-signed certificate of the attestation key (ten years; digital signature only). A real
/// TSB hands out the HSM's own, issued under the Securosys device and root certificates.
fn attestation_certificate(key: &KeyMaterial) -> Result<String, crypto::CryptoError> {
    let subject = crypto::SubjectAttributes {
        common_name: handlers::ATTESTATION_KEY_NAME.to_owned(),
        organization_name: Some("km-tsb-emulator".to_owned()),
        organization_unit_name: Some("PrimusHSM attestation (emulated)".to_owned()),
        ..crypto::SubjectAttributes::default()
    };
    crypto::self_signed_certificate(
        key,
        handlers::ATTESTATION_SIGNATURE_ALGORITHM,
        &subject,
        3650,
        &["DIGITAL_SIGNATURE".to_owned()],
        &[],
        false,
    )
}

fn group_for(path: &str) -> Option<KeyGroup> {
    const OPS: [&str; 17] = [
        "/v1/synchronousSign",
        "/v1/synchronousDecrypt",
        "/v1/synchronousUnwrap",
        "/v1/synchronousBlock",
        "/v1/synchronousUnblock",
        "/v1/synchronousHmac",
        "/v1/synchronousFileDecrypt",
        "/v1/sign",
        "/v1/decrypt",
        "/v1/unwrap",
        "/v1/block",
        "/v1/unblock",
        "/v1/encrypt",
        "/v1/verify",
        "/v1/wrap",
        "/v1/fileEncrypt",
        "/v1/createRfcTimestamp",
    ];
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if matches!(
        path,
        "/v1/versionInfo" | "/v1/licenseInfo" | "/v1/keystore/statistics"
    ) || under("/v1/hsm/log")
    {
        Some(KeyGroup::Service)
    } else if under("/v1/key")
        || under("/v1/dataObject")
        || under("/v1/attestation")
        || matches!(
            path,
            "/v1/importedKey" | "/v1/derivedKey" | "/v1/modify" | "/v1/synchronousModify"
        )
    {
        Some(KeyGroup::KeyManagement)
    } else if OPS.contains(&path)
        || under("/v1/certificate")
        || under("/v1/generateRandom")
        || under("/v1/request")
        || path == "/v1/filteredRequests"
    {
        Some(KeyGroup::KeyOperation)
    } else if (path.starts_with("/v1/filtered") && path.ends_with("ApprovalTask"))
        || matches!(path, "/v1/approval" | "/v1/task" | "/v1/approver/onboard")
    {
        Some(KeyGroup::Approver)
    } else if under("/v1/approverManagement") {
        Some(KeyGroup::ApproverKeyManagement)
    } else {
        None
    }
}

impl Shared {
    async fn handle(self: &Arc<Self>, mut req: Request) -> Response {
        let method = req.method().clone();
        let full_path = req.uri().path().to_owned();
        let peer = req.remote_addr().to_string();
        let api_key = req
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let authorization = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match req.take_body().into_bytes_limit(MAX_BODY).await {
            Ok(b) => b,
            Err(poem::error::ReadBodyError::PayloadTooLarge) => {
                return error_response(&TsbError::new(
                    612,
                    format!("request body larger than {MAX_BODY} bytes"),
                ));
            }
            Err(e) => {
                return error_response(&TsbError::new(
                    612,
                    format!("cannot read request body: {e}"),
                ));
            }
        };

        if full_path == "/_emulator" || full_path.starts_with("/_emulator/") {
            if !self.admin_api {
                return error_response(&TsbError::route_not_found());
            }
            return match self.admin(&method, &full_path, &body).await {
                Ok(j) => json_response(j),
                Err(e) => error_response(&e),
            };
        }

        // Partition selection.
        let (part_idx, path) = if let Some(rest) = full_path.strip_prefix("/partitions/") {
            let (name, sub) = rest.split_once('/').map_or((rest, ""), |(n, s)| (n, s));
            let Some(&idx) = self.by_name.get(name) else {
                return error_response(&TsbError::route_not_found());
            };
            (idx, format!("/{sub}"))
        } else {
            // The partition owning the presented key; otherwise (no key, or a key nobody owns)
            // the first partition, whose key groups then decide (an open group ignores keys).
            let idx = api_key
                .as_deref()
                .and_then(|k| self.key_owner.get(k).copied())
                .unwrap_or(0);
            (idx, full_path.clone())
        };
        let part = &self.partitions[part_idx];

        if !(path == "/v1" || path.starts_with("/v1/")) {
            return error_response(&TsbError::route_not_found());
        }

        // Fault injection.
        if let Some(fault) = self.take_fault(&method, &path, &part.name) {
            if let Some(ms) = fault.latency_ms.filter(|ms| *ms > 0) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if fault.drop_connection.unwrap_or(false) {
                tracing::info!(%method, path = %path, "fault injection: dropping connection");
                self.conns.kill(&peer);
                return Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .finish();
            }
            if fault.status.is_some() || fault.error_code.is_some() {
                let status = fault
                    .status
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let code =
                    fault
                        .error_code
                        .unwrap_or(if status.is_server_error() { 701 } else { 600 });
                let e = TsbError::new(code, "injected fault").with_status(status);
                return error_response(&e);
            }
        }

        // Bearer JWT (when the partition requires one), then the API key of the endpoint's
        // group: both are needed when both are configured.
        if let Some(jwt) = &part.jwt
            && let Err(e) = jwt.check(authorization.as_deref())
        {
            tracing::debug!(partition = %part.name, code = e.code, "bearer token rejected");
            return error_response(&e);
        }

        // API-key groups.
        if let Some(group) = group_for(&path) {
            let keys = part.api_keys.group(group);
            if !keys.is_empty() {
                let ok = api_key
                    .as_deref()
                    .is_some_and(|k| keys.iter().any(|x| x == k));
                if !ok {
                    tracing::debug!(partition = %part.name, ?group, "API key rejected");
                    return error_response(&TsbError::new(
                        631,
                        if api_key.is_some() {
                            "invalid API key"
                        } else {
                            "missing API key"
                        },
                    ));
                }
            }
        }

        let ctx = Ctx {
            shared: self,
            part,
            method: &method,
            path: &path,
            body: &body,
        };
        let res = handlers::dispatch(&ctx).await;
        match res {
            Ok(Reply::Json(j)) => {
                tracing::debug!(partition = %part.name, %method, path = %path, status = j.status, "request");
                json_response(j)
            }
            Ok(Reply::File {
                content_type,
                filename,
                body,
            }) => Response::builder()
                .status(StatusCode::OK)
                .content_type(content_type)
                .header(
                    "Content-Disposition",
                    format!("attachment; filename=\"{filename}\""),
                )
                .body(body),
            Err(e) => {
                tracing::debug!(partition = %part.name, %method, path = %path, code = e.code, "request failed");
                error_response(&e)
            }
        }
    }

    fn take_fault(&self, method: &Method, path: &str, partition: &str) -> Option<FaultIn> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let idx = faults
            .iter()
            .position(|f| f.matches(method, path, partition))?;
        let spec = faults[idx].spec.clone();
        if let Some(rem) = faults[idx].remaining.as_mut() {
            *rem = rem.saturating_sub(1);
            if *rem == 0 {
                faults.remove(idx);
            }
        }
        Some(spec)
    }

    async fn admin(
        self: &Arc<Self>,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Result<JsonOut, TsbError> {
        match (method.as_str(), path) {
            ("POST", "/_emulator/faults") => {
                let spec: FaultIn = wire::parse_body(body)?;
                if let Some(s) = spec.status
                    && StatusCode::from_u16(s).is_err()
                {
                    return Err(TsbError::validation("invalid status"));
                }
                if spec.times == Some(0) {
                    return Err(TsbError::new(619, "times must be at least 1 (or null)"));
                }
                let id = uuid::Uuid::new_v4().to_string();
                let rule = FaultRule {
                    id: id.clone(),
                    remaining: spec.times,
                    spec,
                };
                tracing::info!(fault = ?rule, "fault injected");
                self.faults
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(rule);
                Ok(JsonOut::created(json!({ "id": id })))
            }
            ("GET", "/_emulator/faults") => {
                let faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
                Ok(JsonOut::ok(Value::Array(
                    faults.iter().map(FaultRule::to_json).collect(),
                )))
            }
            ("DELETE", "/_emulator/faults") => {
                self.faults
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                Ok(JsonOut::ok(json!({})))
            }
            ("DELETE", p) if p.starts_with("/_emulator/faults/") => {
                let id = &p["/_emulator/faults/".len()..];
                let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
                let before = faults.len();
                faults.retain(|f| f.id != id);
                if faults.len() == before {
                    return Err(
                        TsbError::new(611, "no such fault").with_status(StatusCode::NOT_FOUND)
                    );
                }
                Ok(JsonOut::ok(json!({})))
            }
            ("POST", "/_emulator/clock/advance") => {
                #[derive(Deserialize)]
                struct Advance {
                    seconds: Option<i64>,
                }
                let a: Advance = wire::parse_body(body)?;
                let secs = wire::required(a.seconds, "seconds")?;
                if !(0..=100 * 365 * 86_400).contains(&secs) {
                    return Err(TsbError::new(
                        619,
                        "seconds must be between 0 and 100 years",
                    ));
                }
                self.clock.advance(secs);
                self.tick().await;
                Ok(JsonOut::ok(
                    json!({ "now": wire::iso8601(self.clock.now()) }),
                ))
            }
            ("GET", "/_emulator/clock") => Ok(JsonOut::ok(
                json!({ "now": wire::iso8601(self.clock.now()) }),
            )),
            _ => Err(TsbError::route_not_found()),
        }
    }

    /// Moves time-dependent requests forward (timelocks passing, timeouts expiring).
    pub(crate) async fn tick(self: &Arc<Self>) {
        for part in &self.partitions {
            let executions = {
                let mut st = part.state.lock().await;
                let now = self.clock.now_unix();
                let changes = handlers::workflow::refresh_all(self, &mut st, now);
                if let Err(e) = st
                    .flush(&self.persistence, &part.name, &changes.dirty)
                    .await
                {
                    tracing::error!(partition = %part.name, error = %e.message, "persisting request state failed");
                }
                changes.executions
            };
            if let Err(e) = handlers::workflow::drive_here(self, part, executions).await {
                tracing::error!(partition = %part.name, error = %e.message, "executing due requests failed");
            }
        }
    }
}

fn json_response(j: JsonOut) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(j.status).unwrap_or(StatusCode::OK))
        .content_type("application/json")
        .body(j.body.to_string())
}

struct App {
    shared: Arc<Shared>,
}

impl Endpoint for App {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        Ok(self.shared.handle(req).await)
    }
}

/// Entry point for starting emulators.
#[derive(Debug)]
pub struct Emulator;

/// A started emulator; dropping it without [`RunningEmulator::shutdown`] leaves the server task
/// running until the runtime ends.
pub struct RunningEmulator {
    local_addr: SocketAddr,
    scheme: &'static str,
    partitions: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    ticker: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("base_url", &self.base_url())
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl Emulator {
    /// Validates the configuration, loads persisted state, binds and serves in a tokio task.
    pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
        config.validate()?;
        let names: Vec<String> = config.partitions.iter().map(|p| p.name.clone()).collect();
        let persistence = {
            let storage = config.storage.clone();
            let names = names.clone();
            tokio::task::spawn_blocking(move || Persistence::open(&storage, &names))
                .await
                .map_err(|e| EmulatorError::Storage(e.to_string()))??
        };
        let mut partitions = Vec::new();
        let mut by_name = HashMap::new();
        let mut key_owner = HashMap::new();
        for (idx, p) in config.partitions.iter().enumerate() {
            let st = {
                let persistence = persistence.clone();
                let name = p.name.clone();
                tokio::task::spawn_blocking(move || PartitionState::load(&persistence, &name))
                    .await
                    .map_err(|e| EmulatorError::Storage(e.to_string()))??
            };
            by_name.insert(p.name.clone(), idx);
            for (_, keys) in p.api_keys.all() {
                for k in keys {
                    key_owner.insert(k.clone(), idx);
                }
            }
            let jwt = p
                .jwt
                .as_ref()
                .map(|j| {
                    crate::auth::JwtVerifier::new(j)
                        .map_err(|e| EmulatorError::Config(format!("partition {:?}: {e}", p.name)))
                })
                .transpose()?;
            partitions.push(Arc::new(Partition {
                name: p.name.clone(),
                api_keys: p.api_keys.clone(),
                jwt,
                state: tokio::sync::Mutex::new(st),
            }));
        }
        let attestation = crypto::generate(&KeySpec {
            algorithm: "EC",
            key_size: None,
            curve_oid: Some("1.2.840.10045.3.1.7"),
            algorithm_oid: None,
        })
        .map_err(|e| EmulatorError::Config(format!("cannot create the attestation key: {e}")))?;
        let attestation_certificate = attestation_certificate(&attestation).map_err(|e| {
            EmulatorError::Config(format!("cannot certify the attestation key: {e}"))
        })?;

        let conns = Arc::new(ConnRegistry::default());
        let shared = Arc::new(Shared {
            partitions,
            by_name,
            key_owner,
            persistence,
            clock: Clock::default(),
            faults: Mutex::new(Vec::new()),
            admin_api: config.admin_api,
            attestation,
            attestation_certificate,
            conns: conns.clone(),
        });

        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let tcp = TcpAcceptor::from_tokio(listener)?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = App {
            shared: shared.clone(),
        };
        let scheme;
        let server = if let Some(tls) = &config.tls {
            scheme = "https";
            let mut rc = RustlsConfig::new().fallback(
                RustlsCertificate::new()
                    .cert(tls.cert_chain_pem.clone().into_bytes())
                    .key(tls.private_key_pem.clone().into_bytes()),
            );
            match (tls.client_auth, &tls.client_ca_pem) {
                (ClientAuth::None, _) => {}
                (ClientAuth::Want, Some(ca)) => {
                    rc = rc.client_auth_optional(ca.clone().into_bytes())
                }
                (ClientAuth::Need, Some(ca)) => {
                    rc = rc.client_auth_required(ca.clone().into_bytes())
                }
                (_, None) => {
                    return Err(EmulatorError::Config(
                        "client authentication requires a client CA".into(),
                    ));
                }
            }
            // Validate the material now rather than on the first connection.
            let stream = poem::listener::IntoTlsConfigStream::into_stream(rc)
                .map_err(|e| EmulatorError::Tls(e.to_string()))?;
            let acceptor = TrackedAcceptor {
                inner: tcp.rustls(stream),
                registry: conns,
            };
            tokio::spawn(serve(acceptor, app, stop_rx))
        } else {
            scheme = "http";
            let acceptor = TrackedAcceptor {
                inner: tcp,
                registry: conns,
            };
            tokio::spawn(serve(acceptor, app, stop_rx))
        };
        let ticker_shared = shared.clone();
        let ticker = tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                ticker_shared.tick().await;
            }
        });
        let storage_desc = match &config.storage {
            Storage::Ephemeral => "ephemeral".to_string(),
            Storage::Directory(d) => d.display().to_string(),
        };
        tracing::info!(%local_addr, scheme, storage = %storage_desc, partitions = ?names, admin_api = config.admin_api, "TSB emulator started");
        Ok(RunningEmulator {
            local_addr,
            scheme,
            partitions: names,
            stop: Some(stop_tx),
            server,
            ticker,
        })
    }
}

async fn serve<A: Acceptor + 'static>(acceptor: A, app: App, stop: oneshot::Receiver<()>) {
    let res = poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            async move {
                let _ = stop.await;
            },
            Some(Duration::from_secs(5)),
        )
        .await;
    if let Err(e) = res {
        tracing::error!(error = %e, "emulator server stopped with an error");
    }
}

impl RunningEmulator {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT` or `https://...`, without a trailing slash; root `/v1` calls select
    /// the partition by API key (the first partition when no key is sent).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// The explicit base URL of one partition (`base_url()/partitions/{name}`).
    pub fn partition_url(&self, partition: &str) -> String {
        format!("{}/partitions/{partition}", self.base_url())
    }

    /// Names of the served partitions, in configuration order.
    pub fn partitions(&self) -> &[String] {
        &self.partitions
    }

    /// Stops accepting connections and waits (up to 5 s) for in-flight requests. Every
    /// acknowledged write is already durable, so nothing is flushed here.
    pub async fn shutdown(mut self) {
        self.ticker.abort();
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        // Wait until the ticker has released its handle on the state (and the directory lock).
        let _ = (&mut self.ticker).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        assert_eq!(group_for("/v1/key"), Some(KeyGroup::KeyManagement));
        assert_eq!(
            group_for("/v1/key/attributes"),
            Some(KeyGroup::KeyManagement)
        );
        assert_eq!(
            group_for("/v1/keystore/statistics"),
            Some(KeyGroup::Service)
        );
        assert_eq!(
            group_for("/v1/synchronousSign"),
            Some(KeyGroup::KeyOperation)
        );
        assert_eq!(
            group_for("/v1/synchronousModify"),
            Some(KeyGroup::KeyManagement)
        );
        assert_eq!(
            group_for("/v1/filteredSignApprovalTask"),
            Some(KeyGroup::Approver)
        );
        assert_eq!(
            group_for("/v1/approverManagement/create"),
            Some(KeyGroup::ApproverKeyManagement)
        );
        assert_eq!(group_for("/v1/dataObject/x"), Some(KeyGroup::KeyManagement));
        assert_eq!(
            group_for("/v1/certificate/synchronous/selfsign"),
            Some(KeyGroup::KeyOperation)
        );
        assert_eq!(group_for("/v1/keyx"), None);
    }
}
