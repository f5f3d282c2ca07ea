//! km-vault-gcp — keeps partition credentials as Google Cloud Secret Manager secrets.
//!
//! Owns: the [`km_core::SecretVault`] adapter for Google Cloud Secret Manager
//! ([`GcpSecretManager`]), its configuration ([`GcpVaultConfig`], [`GcpCredentials`]) and the
//! mapping of the service's answers onto [`VaultError`]. It talks to the service only through the
//! official `google-cloud-secretmanager-v1` client (REST/JSON over reqwest with rustls), with
//! credentials from `google-cloud-auth` and bounded retries from `google-cloud-gax`.
//!
//! Must not depend on: other vault adapters (`km-vault-hsm`, `km-vault-azure`), HTTP servers
//! (poem, the API crates), the TSB SDK (`km-tsb`) or anything that pulls OpenSSL or `ring`.
//!
//! How the port maps onto Secret Manager (one secret per [`SecretName`], in one project):
//! - `put`: add a version carrying the payload's CRC32C (the service checks it); if the secret is
//!   absent, create it first (automatic replication, label `managed-by=keymanager`;
//!   `ALREADY_EXISTS` is fine) and add again. Then destroy every older enabled version, so a
//!   replaced credential cannot be read any more. Adding first saves a call on every
//!   replacement and lets an operator pre-create secrets for an identity without
//!   `secretmanager.secrets.create`.
//! - `get`: access `versions/latest`; `NOT_FOUND` is `None`; the returned `dataCrc32c` is checked
//!   ([`VaultError::Integrity`] on mismatch).
//! - `delete`: delete the secret with all its versions; `NOT_FOUND` is fine.
//! - `check`: list secrets with page size 1 (reads nothing secret, changes nothing).
//!
//! Secret values never appear in errors, logs or `Debug` output: errors carry the service's
//! status and message, the operation and the secret's name only.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use google_cloud_auth::credentials::Credentials;
use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt as _};
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model::{
    Replication, Secret, SecretPayload, replication::Automatic, secret_version,
};
use km_core::{SecretName, SecretValue, SecretVault, VaultError, VaultKind};
use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

/// The global Secret Manager endpoint, used when [`GcpVaultConfig::endpoint`] is not set.
pub const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";

/// Label put on every secret keymanager creates (`managed-by=keymanager`).
pub const MANAGED_BY_LABEL: (&str, &str) = ("managed-by", "keymanager");

/// Longest single attempt of a call (connect + request + answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// Longest a call may take in total, retries included.
const CALL_TIME_LIMIT: Duration = Duration::from_secs(8);
/// Attempts per call (only idempotent calls and connect failures are retried).
const MAX_ATTEMPTS: u32 = 3;
/// Versions listed per page when looking for older versions to destroy.
const VERSIONS_PAGE_SIZE: i32 = 100;

/// Hard bound on one client call, credentials included (a metadata server that does not answer
/// must not stall a caller): the retry budget plus a margin.
const CALL_GUARD: Duration = Duration::from_secs(10);

const BACKEND: VaultKind = VaultKind::Gcp;

/// Configuration of one Google Secret Manager vault (a `[vaults.<id>]` table with
/// `kind = "gcp"` in the server's TOML configuration).
///
/// ```toml
/// project = "acme-keymanager"
/// # endpoint = "https://secretmanager.europe-west3.rep.googleapis.com"  # optional
/// credentials = { method = "service_account", key_file = "/etc/keymanager/gcp-sa.json" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpVaultConfig {
    /// The Google Cloud project id (or number) that holds the secrets.
    pub project: String,
    /// Service endpoint; defaults to [`DEFAULT_ENDPOINT`]. Set it for a regional endpoint or a
    /// local test double.
    #[serde(default)]
    pub endpoint: Option<Url>,
    /// How keymanager authenticates to Google Cloud.
    pub credentials: GcpCredentials,
}

/// How keymanager authenticates to Google Cloud, chosen by `method`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawCredentials")]
pub enum GcpCredentials {
    /// Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`, the gcloud user
    /// credentials, or the metadata server of the workload (GCE, GKE workload identity, Cloud
    /// Run).
    ApplicationDefault,
    /// A service-account key file (JSON, as downloaded from IAM). The file is a secret: it is
    /// read once at [`connect`], its buffer is wiped afterwards, and only its path is ever shown.
    ServiceAccount {
        /// Path of the JSON key file.
        key_file: PathBuf,
    },
    /// No credentials at all. Only for local test doubles of Secret Manager; the real service
    /// refuses anonymous callers.
    Anonymous,
}

/// The TOML/serde shape of [`GcpCredentials`]. serde's internally tagged enums ignore unknown
/// fields next to a unit variant's tag, so the table is read flat and checked here.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    method: Method,
    #[serde(default)]
    key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Method {
    ApplicationDefault,
    ServiceAccount,
    Anonymous,
}

impl TryFrom<RawCredentials> for GcpCredentials {
    type Error = String;

    fn try_from(raw: RawCredentials) -> Result<Self, Self::Error> {
        match (raw.method, raw.key_file) {
            (Method::ServiceAccount, Some(key_file)) => Ok(Self::ServiceAccount { key_file }),
            (Method::ServiceAccount, None) => {
                Err("method \"service_account\" needs key_file (path of the JSON key)".into())
            }
            (Method::ApplicationDefault, None) => Ok(Self::ApplicationDefault),
            (Method::Anonymous, None) => Ok(Self::Anonymous),
            (Method::ApplicationDefault | Method::Anonymous, Some(_)) => {
                Err("key_file is only allowed with method = \"service_account\"".into())
            }
        }
    }
}

/// A Secret Manager project used as a [`SecretVault`]. Cheap to clone; clones share one
/// connection pool.
#[derive(Clone)]
pub struct GcpSecretManager {
    client: SecretManagerService,
    project: String,
    endpoint: String,
}

impl fmt::Debug for GcpSecretManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpSecretManager")
            .field("project", &self.project)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Builds a [`GcpSecretManager`] from `config`; see [`GcpSecretManager::connect`].
pub async fn connect(config: &GcpVaultConfig) -> Result<GcpSecretManager, VaultError> {
    GcpSecretManager::connect(config).await
}

impl GcpSecretManager {
    /// Builds the client: loads the credentials and sets bounded retries (at most
    /// 3 attempts, 4 s per attempt, 8 s per call, 10 s hard bound). It does not call Secret
    /// Manager (Application Default Credentials may ask the metadata server for the universe
    /// domain); call [`SecretVault::check`] to test reachability and permissions.
    ///
    /// Errors: [`VaultError::Rejected`] for an invalid project id, endpoint or key file;
    /// [`VaultError::Denied`] when Application Default Credentials cannot be found;
    /// [`VaultError::Unavailable`] when setting up the transport fails or takes too long.
    pub async fn connect(config: &GcpVaultConfig) -> Result<Self, VaultError> {
        validate_project(&config.project)?;
        let endpoint = match &config.endpoint {
            Some(url) => {
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(rejected(format!(
                        "endpoint {url} must be an http(s) URL with a host"
                    )));
                }
                url.as_str().trim_end_matches('/').to_string()
            }
            None => DEFAULT_ENDPOINT.to_string(),
        };
        let credentials = load_credentials(&config.credentials)?;
        let backoff = ExponentialBackoffBuilder::new()
            .with_initial_delay(Duration::from_millis(100))
            .with_maximum_delay(Duration::from_secs(1))
            .build()
            .map_err(|e| rejected(format!("invalid backoff policy: {e}")))?;
        let client = SecretManagerService::builder()
            .with_endpoint(endpoint.clone())
            .with_credentials(credentials)
            .with_retry_policy(
                Aip194Strict
                    .with_attempt_limit(MAX_ATTEMPTS)
                    .with_time_limit(CALL_TIME_LIMIT),
            )
            .with_backoff_policy(backoff)
            .with_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        // Building may ask the credentials for their universe domain (a metadata-server call
        // for Application Default Credentials on Google Cloud workloads): bound it too.
        let client = tokio::time::timeout(CALL_GUARD, client)
            .await
            .map_err(|_| VaultError::Unavailable {
                backend: BACKEND,
                detail: format!(
                    "setting up the Secret Manager client for {endpoint} took longer than {} s \
                     (the credentials did not answer)",
                    CALL_GUARD.as_secs()
                ),
            })?
            .map_err(|e| {
                let detail = format!("cannot set up the Secret Manager client for {endpoint}: {e}");
                if e.is_default_credentials() {
                    VaultError::Denied {
                        backend: BACKEND,
                        detail,
                    }
                } else if e.is_transport() {
                    VaultError::Unavailable {
                        backend: BACKEND,
                        detail,
                    }
                } else {
                    rejected(detail)
                }
            })?;
        Ok(Self {
            client,
            project: config.project.clone(),
            endpoint,
        })
    }

    /// The project holding the secrets.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The service endpoint in use.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn parent(&self) -> String {
        format!("projects/{}", self.project)
    }

    fn secret_path(&self, name: &SecretName) -> String {
        format!("projects/{}/secrets/{}", self.project, name.as_str())
    }

    async fn create_if_absent(&self, name: &SecretName) -> Result<(), VaultError> {
        let secret = Secret::new()
            .set_replication(Replication::new().set_automatic(Automatic::new()))
            .set_labels([MANAGED_BY_LABEL]);
        let call = self
            .client
            .create_secret()
            .set_parent(self.parent())
            .set_secret_id(name.as_str())
            .set_secret(secret)
            .send();
        match self.guarded("create secret", Some(name), call).await? {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some(Code::AlreadyExists) => Ok(()),
            Err(e) => Err(self.map_error("create secret", Some(name), &e)),
        }
    }

    /// Adds a version; `Ok(None)` when the secret vanished in between (a concurrent delete).
    async fn add_version(
        &self,
        name: &SecretName,
        value: &SecretValue,
    ) -> Result<Option<u64>, VaultError> {
        let bytes = value.expose_secret();
        let payload = SecretPayload::new()
            .set_data(bytes.to_vec())
            .set_data_crc32c(i64::from(crc32c::crc32c(bytes)));
        let call = self
            .client
            .add_secret_version()
            .set_parent(self.secret_path(name))
            .set_payload(payload)
            .send();
        match self.guarded("add version", Some(name), call).await? {
            Ok(version) => version_number(&version.name).map(Some).ok_or_else(|| {
                rejected(format!(
                    "add version to {}: the service named the new version {:?}, which has no version number",
                    self.secret_path(name),
                    version.name
                ))
            }),
            Err(e) if code(&e) == Some(Code::NotFound) => Ok(None),
            Err(e) => Err(self.map_error("add version", Some(name), &e)),
        }
    }

    /// Destroys every enabled version older than `newest`.
    async fn destroy_older(&self, name: &SecretName, newest: u64) -> Result<(), VaultError> {
        let mut older = Vec::new();
        let mut page_token = String::new();
        loop {
            let call = self
                .client
                .list_secret_versions()
                .set_parent(self.secret_path(name))
                .set_filter("state:ENABLED")
                .set_page_size(VERSIONS_PAGE_SIZE)
                .set_page_token(page_token.clone())
                .send();
            let page = self
                .guarded("list versions", Some(name), call)
                .await?
                .map_err(|e| self.map_error("list versions", Some(name), &e))?;
            older.extend(
                page.versions
                    .iter()
                    .filter(|v| v.state == secret_version::State::Enabled)
                    .filter_map(|v| version_number(&v.name))
                    .filter(|number| *number < newest),
            );
            if page.next_page_token.is_empty() || page.next_page_token == page_token {
                break;
            }
            page_token = page.next_page_token;
        }
        for number in older {
            let version = format!("{}/versions/{number}", self.secret_path(name));
            let call = self
                .client
                .destroy_secret_version()
                .set_name(version)
                .send();
            match self
                .guarded("destroy old version", Some(name), call)
                .await?
            {
                Ok(_) => {}
                // Already destroyed or gone (a concurrent put or delete got there first).
                Err(e) if matches!(code(&e), Some(Code::NotFound | Code::FailedPrecondition)) => {}
                Err(e) => return Err(self.map_error("destroy old version", Some(name), &e)),
            }
        }
        Ok(())
    }

    /// Runs one client call, bounded by [`CALL_GUARD`] whatever the retry policy and the
    /// credentials do.
    async fn guarded<T>(
        &self,
        op: &str,
        name: Option<&SecretName>,
        call: impl Future<Output = google_cloud_gax::Result<T>>,
    ) -> Result<google_cloud_gax::Result<T>, VaultError> {
        tokio::time::timeout(CALL_GUARD, call)
            .await
            .map_err(|_| VaultError::Unavailable {
                backend: BACKEND,
                detail: format!(
                    "{op} {}: no answer within {} s",
                    self.resource(name),
                    CALL_GUARD.as_secs()
                ),
            })
    }

    fn resource(&self, name: Option<&SecretName>) -> String {
        match name {
            Some(name) => self.secret_path(name),
            None => self.parent(),
        }
    }

    /// Turns a client error into a [`VaultError`] naming the operation and the resource; the
    /// detail carries the service's status and message, never a payload.
    fn map_error(&self, op: &str, name: Option<&SecretName>, e: &GaxError) -> VaultError {
        map_error(op, &self.resource(name), &self.project, e)
    }
}

#[async_trait]
impl SecretVault for GcpSecretManager {
    fn kind(&self) -> VaultKind {
        BACKEND
    }

    async fn put(&self, name: &SecretName, value: &SecretValue) -> Result<(), VaultError> {
        if value.len() > SecretValue::MAX_LEN {
            return Err(rejected(format!(
                "the value for {} is {} bytes; at most {} are accepted",
                self.secret_path(name),
                value.len(),
                SecretValue::MAX_LEN
            )));
        }
        if value.is_empty() {
            return Err(rejected(format!(
                "the value for {} is empty; Secret Manager stores no empty payloads",
                self.secret_path(name)
            )));
        }
        // Add first (the common case replaces a value, and a secret pre-created by an operator
        // needs no create permission); create only when the secret is absent. A concurrent
        // delete may remove it between create and add, hence the second round.
        for round in 0..3 {
            if round > 0 {
                self.create_if_absent(name).await?;
            }
            if let Some(newest) = self.add_version(name, value).await? {
                return self.destroy_older(name, newest).await;
            }
        }
        Err(rejected(format!(
            "add version to {}: the secret was deleted while it was being written; try again",
            self.secret_path(name)
        )))
    }

    async fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, VaultError> {
        let call = self
            .client
            .access_secret_version()
            .set_name(format!("{}/versions/latest", self.secret_path(name)))
            .send();
        let response = match self
            .guarded("access latest version", Some(name), call)
            .await?
        {
            Ok(response) => response,
            Err(e) if code(&e) == Some(Code::NotFound) => return Ok(None),
            Err(e) => return Err(self.map_error("access latest version", Some(name), &e)),
        };
        let Some(payload) = response.payload else {
            return Err(rejected(format!(
                "access latest version of {}: the answer has no payload",
                self.secret_path(name)
            )));
        };
        let expected = payload.data_crc32c;
        let value = SecretValue::new(Vec::<u8>::from(payload.data));
        if let Some(expected) = expected {
            let actual = i64::from(crc32c::crc32c(value.expose_secret()));
            if actual != expected {
                return Err(VaultError::Integrity {
                    backend: BACKEND,
                    detail: format!(
                        "{} ({}): the payload's CRC32C is {actual}, the service announced {expected}",
                        self.secret_path(name),
                        response.name
                    ),
                });
            }
        }
        Ok(Some(value))
    }

    async fn delete(&self, name: &SecretName) -> Result<(), VaultError> {
        let call = self
            .client
            .delete_secret()
            .set_name(self.secret_path(name))
            .send();
        match self.guarded("delete secret", Some(name), call).await? {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some(Code::NotFound) => Ok(()),
            Err(e) => Err(self.map_error("delete secret", Some(name), &e)),
        }
    }

    async fn check(&self) -> Result<(), VaultError> {
        let call = self
            .client
            .list_secrets()
            .set_parent(self.parent())
            .set_page_size(1)
            .send();
        self.guarded("list secrets", None, call)
            .await?
            .map(|_| ())
            .map_err(|e| self.map_error("list secrets", None, &e))
    }
}

fn rejected(detail: String) -> VaultError {
    VaultError::Rejected {
        backend: BACKEND,
        detail,
    }
}

/// Project ids are 6–30 characters of `[a-z0-9-]` (older ones may contain `.` and `:` for a
/// domain prefix); project numbers are digits. Reject anything that could change the URL path.
fn validate_project(project: &str) -> Result<(), VaultError> {
    let ok = project.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && project.len() <= 100
        && project
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(rejected(format!(
            "{project:?} is not a Google Cloud project id (lower-case letters, digits and '-')"
        )))
    }
}

fn load_credentials(method: &GcpCredentials) -> Result<Credentials, VaultError> {
    match method {
        GcpCredentials::Anonymous => {
            Ok(google_cloud_auth::credentials::anonymous::Builder::new().build())
        }
        GcpCredentials::ApplicationDefault => google_cloud_auth::credentials::Builder::default()
            .build()
            .map_err(|e| VaultError::Denied {
                backend: BACKEND,
                detail: format!(
                    "cannot load Application Default Credentials ({e}); set \
                     GOOGLE_APPLICATION_CREDENTIALS, run on a workload with a service account, \
                     or configure method = \"service_account\""
                ),
            }),
        GcpCredentials::ServiceAccount { key_file } => service_account(key_file),
    }
}

fn service_account(key_file: &Path) -> Result<Credentials, VaultError> {
    let shown = key_file.display();
    let bytes = Zeroizing::new(std::fs::read(key_file).map_err(|e| {
        rejected(format!(
            "cannot read the service-account key file {shown}: {e}"
        ))
    })?);
    // serde_json's messages may quote the input; report only where parsing failed.
    let key: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        rejected(format!(
            "the service-account key file {shown} is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let kind = key.get("type").and_then(serde_json::Value::as_str);
    if kind != Some("service_account") {
        return Err(rejected(format!(
            "{shown} is not a service-account key file (its \"type\" is {}, expected \
             \"service_account\")",
            kind.map_or_else(|| "missing".to_string(), |k| format!("{k:?}"))
        )));
    }
    google_cloud_auth::credentials::service_account::Builder::new(key)
        .build()
        .map_err(|e| {
            rejected(format!(
                "the service-account key file {shown} is incomplete: {}",
                if e.is_parsing() {
                    "it lacks client_email, private_key_id, private_key or project_id".to_string()
                } else {
                    e.to_string()
                }
            ))
        })
}

/// The trailing number of `projects/*/secrets/*/versions/N`.
fn version_number(name: &str) -> Option<u64> {
    name.rsplit_once("/versions/")?.1.parse().ok()
}

/// The service's status code, if the error is an answer from the service.
fn code(e: &GaxError) -> Option<Code> {
    e.status().map(|s| s.code)
}

fn map_error(op: &str, resource: &str, project: &str, e: &GaxError) -> VaultError {
    let http = e
        .http_status_code()
        .map(|c| format!(" (HTTP {c})"))
        .unwrap_or_default();
    if let Some(status) = e.status() {
        let detail = format!(
            "{op} {resource}: {}{http}: {}",
            status.code.name(),
            status.message.trim_end_matches('.')
        );
        return match status.code {
            Code::Unauthenticated => VaultError::Denied {
                backend: BACKEND,
                detail: format!(
                    "{detail}; check that the configured credentials are valid and not expired"
                ),
            },
            Code::PermissionDenied => VaultError::Denied {
                backend: BACKEND,
                detail: format!(
                    "{detail}; keymanager's identity needs roles/secretmanager.admin on \
                     project {project:?}, and the Secret Manager API must be enabled there"
                ),
            },
            Code::Unavailable | Code::DeadlineExceeded => VaultError::Unavailable {
                backend: BACKEND,
                detail,
            },
            _ => rejected(detail),
        };
    }
    if e.is_deserialization() {
        // The decoder's message may quote the answer, which may hold a secret.
        return rejected(format!(
            "{op} {resource}: the service's answer could not be decoded"
        ));
    }
    let chain = error_chain(e);
    if e.is_authentication() {
        let transient = e.is_transient_and_before_rpc();
        let detail = format!("{op} {resource}: cannot obtain an access token: {chain}");
        return if transient {
            VaultError::Unavailable {
                backend: BACKEND,
                detail,
            }
        } else {
            VaultError::Denied {
                backend: BACKEND,
                detail: format!("{detail}; check the configured credentials"),
            }
        };
    }
    let detail = format!("{op} {resource}{http}: {chain}");
    match e.http_status_code() {
        Some(401 | 403) => VaultError::Denied {
            backend: BACKEND,
            detail,
        },
        Some(502..=504) | None => VaultError::Unavailable {
            backend: BACKEND,
            detail,
        },
        Some(_) => rejected(detail),
    }
}

/// The error and its sources, `": "`-separated, without repeats.
fn error_chain(e: &GaxError) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn version_numbers_come_from_the_resource_name() {
        assert_eq!(
            version_number("projects/123/secrets/a/versions/17"),
            Some(17)
        );
        assert_eq!(version_number("projects/123/secrets/a"), None);
        assert_eq!(version_number("projects/1/secrets/a/versions/latest"), None);
    }

    #[test]
    fn project_ids_cannot_change_the_path() {
        assert!(validate_project("acme-prod").is_ok());
        assert!(validate_project("314159265358").is_ok());
        for bad in ["", "a/b", "A", "a b", "a?b", "../x"] {
            assert!(validate_project(bad).is_err(), "{bad}");
        }
    }
}
