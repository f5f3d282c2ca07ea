//! `TsbClient`: configuration (URL, credentials, TLS, timeouts) and the one request path every
//! endpoint goes through (API-key selection with rollover, bearer token, GET retries, error
//! mapping).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;
use zeroize::Zeroizing;

use crate::TsbError;

/// Default per-call timeout (whole request incl. body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default TCP/TLS connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of retries for idempotent GETs on connect errors and 502/503/504.
pub const DEFAULT_GET_RETRIES: u32 = 2;
/// Default base backoff between GET retries (multiplied by the attempt number).
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// The TSB API-key groups. Each endpoint is guarded by exactly one group (see the reference's
/// table); the client sends the current key of that group in `X-API-KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyGroup {
    /// `keyManagementToken`: keys, data objects, modify.
    KeyManagement,
    /// `keyOperationToken`: crypto, block/unblock, certificates, requests, random.
    KeyOperation,
    /// `approverToken`: approval tasks, approvals, onboarding.
    Approver,
    /// `serviceToken`: version, licence, keystore statistics.
    Service,
    /// `approverKeyManagementToken`: approver management.
    ApproverKeyManagement,
}

impl KeyGroup {
    fn index(self) -> usize {
        match self {
            KeyGroup::KeyManagement => 0,
            KeyGroup::KeyOperation => 1,
            KeyGroup::Approver => 2,
            KeyGroup::Service => 3,
            KeyGroup::ApproverKeyManagement => 4,
        }
    }

    /// The TSB configuration name of the group.
    pub fn config_name(self) -> &'static str {
        match self {
            KeyGroup::KeyManagement => "keyManagementToken",
            KeyGroup::KeyOperation => "keyOperationToken",
            KeyGroup::Approver => "approverToken",
            KeyGroup::Service => "serviceToken",
            KeyGroup::ApproverKeyManagement => "approverKeyManagementToken",
        }
    }
}

/// API keys per group. Each group is a list to support rollover: the client uses one key and,
/// when the TSB answers 401 with `errorCode` 631, moves on to the next one (remembered for all
/// clones of the client). An empty list sends no `X-API-KEY` header for that group.
#[derive(Clone, Default)]
pub struct ApiKeys {
    /// `keyManagementToken` keys.
    pub key_management: Vec<SecretString>,
    /// `keyOperationToken` keys.
    pub key_operation: Vec<SecretString>,
    /// `approverToken` keys.
    pub approver: Vec<SecretString>,
    /// `serviceToken` keys.
    pub service: Vec<SecretString>,
    /// `approverKeyManagementToken` keys.
    pub approver_key_management: Vec<SecretString>,
}

impl ApiKeys {
    /// The same key list for every group (single-key TSB setups, the emulator).
    pub fn all(keys: Vec<SecretString>) -> Self {
        ApiKeys {
            key_management: keys.clone(),
            key_operation: keys.clone(),
            approver: keys.clone(),
            service: keys.clone(),
            approver_key_management: keys,
        }
    }
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("key_management", &self.key_management.len())
            .field("key_operation", &self.key_operation.len())
            .field("approver", &self.approver.len())
            .field("service", &self.service.len())
            .field(
                "approver_key_management",
                &self.approver_key_management.len(),
            )
            .finish()
    }
}

/// The keys of one group plus the shared index of the key currently believed valid.
pub(crate) struct KeyRing {
    keys: Vec<SecretString>,
    index: AtomicUsize,
}

impl KeyRing {
    pub(crate) fn new(keys: Vec<SecretString>) -> Self {
        KeyRing {
            keys,
            index: AtomicUsize::new(0),
        }
    }

    /// Index of the key to start with, `None` when the group has no keys.
    pub(crate) fn start(&self) -> Option<usize> {
        if self.keys.is_empty() {
            None
        } else {
            Some(self.index.load(Ordering::Acquire) % self.keys.len())
        }
    }

    pub(crate) fn key(&self, i: usize) -> Option<&SecretString> {
        self.keys.get(i)
    }

    /// The key at `failed` was rejected (631) and `tried` keys have been tried for this call.
    /// Returns the next index to try, or `None` once every key was tried. Moves the shared
    /// index only if nobody else moved it meanwhile (so concurrent failures advance once).
    pub(crate) fn advance(&self, failed: usize, tried: usize) -> Option<usize> {
        let len = self.keys.len();
        if len == 0 || tried >= len {
            return None;
        }
        let next = (failed + 1) % len;
        let _ = self
            .index
            .compare_exchange(failed, next, Ordering::AcqRel, Ordering::Acquire);
        Some(next)
    }

    /// The key at `i` was accepted: make it the starting key for later calls.
    pub(crate) fn accepted(&self, i: usize) {
        self.index.store(i, Ordering::Release);
    }

    pub(crate) fn current_index(&self) -> usize {
        self.index.load(Ordering::Acquire)
    }
}

pub(crate) struct Inner {
    http: reqwest::Client,
    base: Url,
    rings: [KeyRing; 5],
    bearer: Option<SecretString>,
    get_retries: u32,
    retry_backoff: Duration,
}

/// A TSB REST client. Cheap to clone (an `Arc` inside); clones share the connection pool and
/// the API-key rollover state. All methods are `async` and honour the configured timeouts.
#[derive(Clone)]
pub struct TsbClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for TsbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsbClient")
            .field("base_url", &self.inner.base.as_str())
            .field(
                "bearer_token",
                &self.inner.bearer.as_ref().map(|_| "[REDACTED]"),
            )
            .field("get_retries", &self.inner.get_retries)
            .finish_non_exhaustive()
    }
}

/// Builder for [`TsbClient`]; all options combine (API keys + JWT + mTLS + private CA).
pub struct TsbClientBuilder {
    base_url: String,
    api_keys: ApiKeys,
    bearer: Option<SecretString>,
    root_ca_pems: Vec<Vec<u8>>,
    identity: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
    timeout: Duration,
    connect_timeout: Duration,
    get_retries: u32,
    retry_backoff: Duration,
    https_only: bool,
    user_agent: Option<String>,
}

impl std::fmt::Debug for TsbClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsbClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_keys", &self.api_keys)
            .field("bearer_token", &self.bearer.as_ref().map(|_| "[REDACTED]"))
            .field("root_cas", &self.root_ca_pems.len())
            .field("client_identity", &self.identity.is_some())
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("get_retries", &self.get_retries)
            .field("https_only", &self.https_only)
            .finish_non_exhaustive()
    }
}

impl TsbClient {
    /// Starts building a client for the TSB at `base_url` (e.g. `https://tsb.example:8080` or
    /// `http://127.0.0.1:9000/partitions/acme`); `/v1/...` is appended to its path.
    pub fn builder(base_url: impl Into<String>) -> TsbClientBuilder {
        TsbClientBuilder {
            base_url: base_url.into(),
            api_keys: ApiKeys::default(),
            bearer: None,
            root_ca_pems: Vec::new(),
            identity: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            get_retries: DEFAULT_GET_RETRIES,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            https_only: false,
            user_agent: None,
        }
    }

    /// The base URL this client talks to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }
}

impl TsbClientBuilder {
    /// API keys per group (replaces earlier ones).
    pub fn api_keys(mut self, keys: ApiKeys) -> Self {
        self.api_keys = keys;
        self
    }

    /// Bearer JWT sent as `Authorization: Bearer <jwt>` on every call.
    pub fn bearer_token(mut self, token: SecretString) -> Self {
        self.bearer = Some(token);
        self
    }

    /// Trust these CA certificates (PEM, one or more) — and only them — for the server
    /// certificate. May be called several times.
    pub fn root_ca_pem(mut self, pem: &[u8]) -> Self {
        self.root_ca_pems.push(pem.to_vec());
        self
    }

    /// Client certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8, PKCS#1 or
    /// SEC1) for mutual TLS.
    pub fn client_identity_pem(mut self, cert_pem: &[u8], key_pem: &[u8]) -> Self {
        self.identity = Some((cert_pem.to_vec(), Zeroizing::new(key_pem.to_vec())));
        self
    }

    /// Per-call timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retries for idempotent GETs on connect errors and HTTP 502/503/504 (default 2; 0 turns
    /// retries off). Non-GET calls are never retried (except for API-key rollover, which is
    /// safe because the TSB rejected the call before executing it).
    pub fn get_retries(mut self, retries: u32) -> Self {
        self.get_retries = retries;
        self
    }

    /// Base backoff between GET retries (attempt n waits n × backoff; default 100 ms).
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Refuse plain `http://` base URLs.
    pub fn https_only(mut self, enabled: bool) -> Self {
        self.https_only = enabled;
        self
    }

    /// Custom `User-Agent`.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }

    /// Validates the configuration and builds the client. TLS is rustls with the aws-lc-rs
    /// provider (the process default if one is installed, else aws-lc-rs explicitly); with
    /// root CAs given only those are trusted, otherwise the platform verifier is used.
    pub fn build(self) -> Result<TsbClient, TsbError> {
        let mut base = Url::parse(self.base_url.trim())
            .map_err(|e| TsbError::Config(format!("invalid TSB base URL: {e}")))?;
        match base.scheme() {
            "https" => {}
            "http" if !self.https_only => {}
            "http" => {
                return Err(TsbError::Config(
                    "https_only is set but the URL is http".into(),
                ));
            }
            other => {
                return Err(TsbError::Config(format!(
                    "unsupported URL scheme `{other}`"
                )));
            }
        }
        if base.cannot_be_a_base() || base.host_str().is_none() {
            return Err(TsbError::Config("TSB base URL has no host".into()));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(TsbError::Config(
                "credentials in the TSB base URL are not supported".into(),
            ));
        }
        base.set_query(None);
        base.set_fragment(None);

        for (name, keys) in [
            ("key_management", &self.api_keys.key_management),
            ("key_operation", &self.api_keys.key_operation),
            ("approver", &self.api_keys.approver),
            ("service", &self.api_keys.service),
            (
                "approver_key_management",
                &self.api_keys.approver_key_management,
            ),
        ] {
            for key in keys {
                if HeaderValue::from_str(key.expose_secret()).is_err()
                    || key.expose_secret().is_empty()
                {
                    return Err(TsbError::Config(format!(
                        "an API key of group {name} is empty or not a valid header value"
                    )));
                }
            }
        }
        if let Some(token) = &self.bearer
            && HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).is_err()
        {
            return Err(TsbError::Config(
                "bearer token is not a valid header value".into(),
            ));
        }

        let mut http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .https_only(self.https_only)
            .user_agent(
                self.user_agent
                    .unwrap_or_else(|| format!("km-tsb/{}", env!("CARGO_PKG_VERSION"))),
            );

        if !self.root_ca_pems.is_empty() {
            let mut certs = Vec::new();
            for pem in &self.root_ca_pems {
                let parsed = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| TsbError::Config(format!("invalid root CA PEM: {e}")))?;
                if parsed.is_empty() {
                    return Err(TsbError::Config("root CA PEM holds no certificate".into()));
                }
                certs.extend(parsed);
            }
            http = http.tls_certs_only(certs);
        }

        if let Some((cert_pem, key_pem)) = &self.identity {
            let mut combined =
                Zeroizing::new(Vec::with_capacity(cert_pem.len() + key_pem.len() + 1));
            combined.extend_from_slice(cert_pem);
            combined.push(b'\n');
            combined.extend_from_slice(key_pem);
            let identity = reqwest::Identity::from_pem(&combined).map_err(|e| {
                TsbError::Config(format!("invalid client certificate/key PEM: {e}"))
            })?;
            http = http.identity(identity);
        }

        let http = http
            .build()
            .map_err(|e| TsbError::Config(format!("HTTP client: {e}")))?;
        let keys = self.api_keys;
        Ok(TsbClient {
            inner: Arc::new(Inner {
                http,
                base,
                rings: [
                    KeyRing::new(keys.key_management),
                    KeyRing::new(keys.key_operation),
                    KeyRing::new(keys.approver),
                    KeyRing::new(keys.service),
                    KeyRing::new(keys.approver_key_management),
                ],
                bearer: self.bearer,
                get_retries: self.get_retries,
                retry_backoff: self.retry_backoff,
            }),
        })
    }
}

/// Builds `<base>/v1/<segments...>`, percent-encoding each segment (a `/` inside a label
/// becomes `%2F`). Empty segments are rejected so that e.g. an empty label cannot address the
/// collection endpoint.
pub(crate) fn endpoint_url(base: &Url, segments: &[&str]) -> Result<Url, TsbError> {
    if segments.iter().any(|s| s.is_empty()) {
        return Err(TsbError::InvalidInput("empty name in request path".into()));
    }
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| TsbError::Config("TSB base URL cannot carry a path".into()))?;
        path.pop_if_empty();
        path.push("v1");
        path.extend(segments);
    }
    Ok(url)
}

impl TsbClient {
    fn ring(&self, group: KeyGroup) -> &KeyRing {
        &self.inner.rings[group.index()]
    }

    /// Index of the API key currently used for `group` (for diagnostics and tests of rollover).
    pub fn api_key_index(&self, group: KeyGroup) -> usize {
        self.ring(group).current_index()
    }

    /// Sends one call that answers JSON and returns the success body (see [`Self::execute_accepting`]).
    pub(crate) async fn execute(
        &self,
        method: Method,
        group: KeyGroup,
        segments: &[&str],
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, TsbError> {
        self.execute_accepting(method, group, segments, body, "application/json")
            .await
    }

    /// Sends one call with `Accept: accept` and returns the success body. Handles API-key
    /// rollover (401 + 631) and GET retries; maps every failure into [`TsbError`].
    pub(crate) async fn execute_accepting(
        &self,
        method: Method,
        group: KeyGroup,
        segments: &[&str],
        body: Option<Vec<u8>>,
        accept: &'static str,
    ) -> Result<Vec<u8>, TsbError> {
        let url = endpoint_url(&self.inner.base, segments)?;
        let ring = self.ring(group);
        let mut key_index = ring.start();
        let mut keys_tried = 0usize;
        let mut retries = 0u32;
        let is_get = method == Method::GET;
        loop {
            let started = Instant::now();
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(ACCEPT, accept);
            if let Some(i) = key_index
                && let Some(key) = ring.key(i)
            {
                let mut value = HeaderValue::from_str(key.expose_secret())
                    .map_err(|_| TsbError::Config("API key is not a valid header value".into()))?;
                value.set_sensitive(true);
                request = request.header("X-API-KEY", value);
            }
            if let Some(token) = &self.inner.bearer {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| {
                        TsbError::Config("bearer token is not a valid header value".into())
                    })?;
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
            if let Some(body) = &body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }

            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    if is_get && e.is_connect() && retries < self.inner.get_retries {
                        retries += 1;
                        tracing::debug!(
                            path = url.path(),
                            retries,
                            "TSB GET connect error; retrying"
                        );
                        tokio::time::sleep(self.inner.retry_backoff * retries).await;
                        continue;
                    }
                    let err = TsbError::from_reqwest(e);
                    tracing::debug!(%method, path = url.path(), error = %err, "TSB call failed");
                    return Err(err);
                }
            };
            let status = response.status();
            let bytes = response.bytes().await.map_err(TsbError::from_reqwest)?;
            tracing::debug!(
                %method,
                path = url.path(),
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "TSB call"
            );
            if status.is_success() {
                if let Some(i) = key_index {
                    ring.accepted(i);
                }
                return Ok(bytes.to_vec());
            }
            let err = TsbError::from_response(status.as_u16(), &bytes);
            if status.as_u16() == 401
                && err.tsb_code() == Some(crate::error::codes::INVALID_API_KEY)
                && let Some(i) = key_index
            {
                keys_tried += 1;
                if let Some(next) = ring.advance(i, keys_tried) {
                    tracing::warn!(
                        group = group.config_name(),
                        from = i,
                        to = next,
                        "TSB rejected API key (631); rolling over to the next key of the group"
                    );
                    key_index = Some(next);
                    continue;
                }
                tracing::warn!(
                    group = group.config_name(),
                    "TSB rejected every API key of the group"
                );
                return Err(err);
            }
            if is_get && matches!(status.as_u16(), 502..=504) && retries < self.inner.get_retries {
                retries += 1;
                tokio::time::sleep(self.inner.retry_backoff * retries).await;
                continue;
            }
            return Err(err);
        }
    }

    pub(crate) async fn get_json<R: DeserializeOwned>(
        &self,
        group: KeyGroup,
        segments: &[&str],
    ) -> Result<R, TsbError> {
        let bytes = self.execute(Method::GET, group, segments, None).await?;
        decode_json(&bytes)
    }

    pub(crate) async fn send_json<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        group: KeyGroup,
        segments: &[&str],
        body: &B,
    ) -> Result<R, TsbError> {
        let bytes = self
            .execute(method, group, segments, Some(encode_json(body)?))
            .await?;
        decode_json(&bytes)
    }

    /// Sends a JSON call whose success body is a file (media types `accept`; errors still come
    /// as JSON) and returns its raw bytes.
    pub(crate) async fn send_for_file<B: Serialize + ?Sized>(
        &self,
        method: Method,
        group: KeyGroup,
        segments: &[&str],
        body: &B,
        accept: &'static str,
    ) -> Result<Vec<u8>, TsbError> {
        self.execute_accepting(method, group, segments, Some(encode_json(body)?), accept)
            .await
    }

    /// Sends a call whose success body is irrelevant (may be empty, `{}` or anything).
    pub(crate) async fn send_unit<B: Serialize + ?Sized>(
        &self,
        method: Method,
        group: KeyGroup,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<(), TsbError> {
        let body = match body {
            Some(b) => Some(encode_json(b)?),
            None => None,
        };
        self.execute(method, group, segments, body)
            .await
            .map(|_| ())
    }
}

pub(crate) fn encode_json<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, TsbError> {
    serde_json::to_vec(body)
        .map_err(|e| TsbError::InvalidInput(format!("cannot encode request: {e}")))
}

/// Decodes a success body. The error text keeps only the category and position, never the
/// offending value (it could be secret material such as a decrypted payload).
pub(crate) fn decode_json<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, TsbError> {
    let slice = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(slice).map_err(|e| {
        let text = e.to_string();
        let detail = if text.starts_with("missing field") {
            text
        } else {
            format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            )
        };
        TsbError::Decode(format!("unexpected response shape: {detail}"))
    })
}
