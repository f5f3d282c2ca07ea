//! `keymanager serve` configuration: how to reach the management partition (the only state kept
//! outside the HSM, DESIGN §4.1) and how this replica serves.
//!
//! Layers, later ones winning key by key: built-in defaults → the TOML file (`--config`) →
//! environment variables `KM_<SECTION>__<KEY>` (e.g. `KM_MANAGEMENT__TSB_URL`). Unknown keys are
//! errors in every layer, naming the key (and the line or the variable); a `KM_` variable without
//! `__` belongs to some other tool and is ignored, unless it starts with a section name
//! (`KM_MANAGEMENT_TSB_URL`), where it is a typo and refused. Secrets can be given
//! directly or as `<name>_file` (Docker/Kubernetes secrets); the files are read once at start, and
//! an unreadable or empty one is an error naming the file. Secrets are held as
//! [`SecretString`]s: `Debug` and [`Config::summary`] print `[redacted]`, and no error message
//! quotes one.
//!
//! [`raw`] is the file as written (everything optional); [`Config::from_raw`] checks it and
//! produces typed values, with errors saying what to change. The reference for operators is
//! `deploy/keymanager.example.toml`.

mod layers;
mod raw;

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use km_core::{
    AuditConfig, IdentityConfig, KeyServiceConfig, NotificationConfig, SecondFactorPolicy,
    StateStoreConfig,
};
use km_tsb::ApiKeys;
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;
use zeroize::Zeroizing;

pub use layers::ENV_PREFIX;
use raw::{
    RawApiKeys, RawAudit, RawAuditStream, RawConfig, RawIdentity, RawKeys, RawManagement,
    RawNotifications, RawPartitions, RawSecondFactor, RawSecret, RawSecretList, RawServer,
    RawState, RawVault,
};

/// Lowest bcrypt cost `serve` accepts: below it a stolen hash is cheap to attack.
pub const MIN_BCRYPT_COST: u32 = 10;
/// bcrypt's own maximum.
const MAX_BCRYPT_COST: u32 = 31;
/// Default bcrypt cost (DESIGN §4.4).
const DEFAULT_BCRYPT_COST: u32 = 12;
/// Default listen address: all interfaces, for containers behind a load balancer.
const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default per-call timeout towards the TSB.
const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Why the configuration cannot be used. Every message says what to change, and none quotes a
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file cannot be read.
    #[error("cannot read the configuration file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema (unknown key, wrong type).
    #[error("configuration file {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Position and problem.
        message: String,
    },
    /// A `KM_*` variable is not a setting or has an unusable value.
    #[error("environment variable {variable}: {message}")]
    Env {
        /// The variable.
        variable: String,
        /// The problem.
        message: String,
    },
    /// A `*_file` secret (or certificate/key file) cannot be read or is empty.
    #[error("{key}: cannot use {}: {reason}", path.display())]
    SecretFile {
        /// The setting naming the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A value is missing, out of range or contradicts another.
    #[error("{key}: {message}")]
    Invalid {
        /// The setting to change.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// The checked configuration of `keymanager serve`.
#[derive(Debug)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[management]`
    pub management: ManagementConfig,
    /// `[identity]`
    pub identity: IdentitySettings,
    /// `[audit]`
    pub audit: AuditSettings,
    /// `[state]`
    pub state: StateSettings,
    /// `[notifications]`
    pub notifications: NotificationsSettings,
    /// `[keys]`: the key inventory cache.
    pub keys: KeyServiceConfig,
    /// `[partitions] default_vault`: the vault new partitions use (`hsm` when unset).
    pub default_vault: Option<String>,
    /// `[vaults.<id>]`: credential vaults besides the built-in `hsm`, by id.
    pub vaults: Vec<(String, VaultSpec)>,
    /// Which settings came from which `KM_*` variable (for [`Config::summary`]).
    from_env: BTreeMap<String, String>,
}

/// One configured credential vault.
#[derive(Debug)]
pub enum VaultSpec {
    /// Azure Key Vault.
    Azure(Box<km_vault_azure::AzureVaultConfig>),
    /// Google Cloud Secret Manager.
    Gcp(Box<km_vault_gcp::GcpVaultConfig>),
}

impl VaultSpec {
    /// The backend's name.
    pub fn backend(&self) -> &'static str {
        match self {
            VaultSpec::Azure(_) => "azure",
            VaultSpec::Gcp(_) => "gcp",
        }
    }
}

/// `[server]`
#[derive(Debug)]
pub struct ServerConfig {
    /// Where the control plane listens.
    pub listen: SocketAddr,
    /// The URL users and programs reach this installation at (behind the load balancer).
    pub public_url: Option<Url>,
    /// TLS terminated by keymanager itself; `None` when a proxy terminates it.
    pub tls: Option<ServerTls>,
}

/// `[server.tls]`, read at start.
pub struct ServerTls {
    /// Certificate chain file (PEM, leaf first).
    pub cert_file: PathBuf,
    /// Private key file (PEM).
    pub key_file: PathBuf,
    /// The chain.
    pub cert_pem: Vec<u8>,
    /// The key.
    pub key_pem: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// `[management]`: the management partition.
#[derive(Debug)]
pub struct ManagementConfig {
    /// Base URL of the partition on the TSB.
    pub tsb_url: Url,
    /// API keys per group (each a rollover list; `Debug` shows counts only).
    pub api_keys: ApiKeys,
    /// Bearer JWT (`Debug` shows `[REDACTED]`).
    pub bearer_token: Option<SecretString>,
    /// mTLS client identity.
    pub client_identity: Option<ClientIdentity>,
    /// Private CA for the TSB's certificate (else the platform's roots).
    pub ca: Option<CaFile>,
    /// Per-call timeout.
    pub timeout: Duration,
}

/// mTLS client certificate and key, read at start.
pub struct ClientIdentity {
    /// Certificate file.
    pub cert_file: PathBuf,
    /// Key file.
    pub key_file: PathBuf,
    /// Certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// Private key (PEM).
    pub key_pem: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// A CA bundle, read at start.
#[derive(Debug)]
pub struct CaFile {
    /// The file.
    pub path: PathBuf,
    /// Its PEM.
    pub pem: Vec<u8>,
}

/// `[identity]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    /// bcrypt cost for new password hashes.
    pub bcrypt_cost: u32,
    /// Default second-factor policy (until an operator changes the runtime setting).
    pub second_factor: SecondFactorPolicy,
    /// Issuer shown in authenticator apps.
    pub totp_issuer: String,
}

/// Where the audit log is streamed (the record itself is always on the HSM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditStream {
    /// JSON lines on standard output (logs go to stderr).
    Stdout,
    /// JSON lines appended to a file.
    File(PathBuf),
    /// No stream.
    Off,
}

/// `[audit]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// The stream.
    pub stream: AuditStream,
    /// Events between signed checkpoints.
    pub checkpoint_every: u64,
}

/// `[state]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    /// Read-cache lifetime (bounds how long another replica's write stays invisible).
    pub cache_ttl_secs: u64,
    /// This replica's name in locks and records.
    pub replica: String,
}

/// `[notifications]`: expiry-notification webhooks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotificationsSettings {
    /// Accept `http://` webhook URLs to loopback hosts (development only; https otherwise).
    pub allow_insecure_webhooks: bool,
}

impl Config {
    /// Loads `path` overlaid with the `KM_*` variables among `env` (pass
    /// `std::env::vars().collect()`), reads every `*_file`, and checks everything.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let layers = layers::read(path, env)?;
        // Each layer was checked on its own; the merge of valid layers is valid too, but any
        // error here still names the key.
        let raw: RawConfig =
            layers
                .merged
                .try_into()
                .map_err(|error: toml::de::Error| ConfigError::File {
                    path: path.to_owned(),
                    message: error.message().trim().to_owned(),
                })?;
        let replica_default = env
            .iter()
            .find(|(name, _)| name == "HOSTNAME")
            .map(|(_, value)| value.trim().to_owned())
            .filter(|name| !name.is_empty());
        let mut config = Self::from_raw(raw, replica_default)?;
        config.from_env = layers.from_env;
        Ok(config)
    }

    /// Checks a raw configuration and applies the defaults. `replica_default` names this replica
    /// when `state.replica` is not set (the host name; a random name otherwise).
    fn from_raw(raw: RawConfig, replica_default: Option<String>) -> Result<Self, ConfigError> {
        Self {
            server: server(raw.server.unwrap_or_default())?,
            management: management(raw.management.unwrap_or_default())?,
            identity: identity(raw.identity.unwrap_or_default())?,
            audit: audit(raw.audit.unwrap_or_default())?,
            state: state(raw.state.unwrap_or_default(), replica_default)?,
            notifications: notifications(raw.notifications.unwrap_or_default()),
            keys: keys(raw.keys.unwrap_or_default())?,
            default_vault: None,
            vaults: Vec::new(),
            from_env: BTreeMap::new(),
        }
        .with_vaults(
            raw.vaults.unwrap_or_default(),
            raw.partitions.unwrap_or_default(),
        )
    }

    fn with_vaults(
        mut self,
        vaults: BTreeMap<String, RawVault>,
        partitions: RawPartitions,
    ) -> Result<Self, ConfigError> {
        for (id, vault) in vaults {
            let key = format!("vaults.{id}");
            let slug = !id.is_empty()
                && id.len() <= 32
                && id.starts_with(|c: char| c.is_ascii_lowercase())
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !slug {
                return Err(invalid(
                    &key,
                    "a vault id is 1-32 of a-z, 0-9 and -, starting with a letter",
                ));
            }
            if id == crate::control_plane::HSM_VAULT_ID {
                return Err(invalid(
                    &key,
                    "`hsm` is the built-in vault on the management partition; choose another id",
                ));
            }
            let spec = match vault {
                RawVault::Azure(config) => VaultSpec::Azure(Box::new(config)),
                RawVault::Gcp(config) => VaultSpec::Gcp(Box::new(config)),
            };
            self.vaults.push((id, spec));
        }
        if let Some(default) = partitions.default_vault {
            let known = default == crate::control_plane::HSM_VAULT_ID
                || self.vaults.iter().any(|(id, _)| *id == default);
            if !known {
                return Err(invalid(
                    "partitions.default_vault",
                    format!("there is no vault {default:?}; use `hsm` or an id under [vaults]"),
                ));
            }
            self.default_vault = Some(default);
        }
        Ok(self)
    }

    /// Store tunables for km-core.
    pub fn store_config(&self) -> StateStoreConfig {
        StateStoreConfig {
            replica: self.state.replica.clone(),
            cache_ttl_secs: self.state.cache_ttl_secs,
            // A write in flight must not outlive its lock: keep the guard at least one TSB call.
            lock_guard_secs: StateStoreConfig::default()
                .lock_guard_secs
                .max(self.management.timeout.as_secs()),
            lock_ttl_secs: StateStoreConfig::default()
                .lock_ttl_secs
                .max(self.management.timeout.as_secs().saturating_mul(2)),
            ..StateStoreConfig::default()
        }
    }

    /// Audit tunables for km-core.
    pub fn audit_config(&self) -> AuditConfig {
        AuditConfig {
            checkpoint_every: self.audit.checkpoint_every,
            ..AuditConfig::default()
        }
    }

    /// Identity tunables for km-core.
    pub fn identity_config(&self) -> IdentityConfig {
        IdentityConfig {
            issuer: self.identity.totp_issuer.clone(),
            second_factor: self.identity.second_factor,
            ..IdentityConfig::default()
        }
    }

    /// Webhook rules for km-core's notification service.
    pub fn notification_config(&self) -> NotificationConfig {
        NotificationConfig {
            allow_insecure_webhooks: self.notifications.allow_insecure_webhooks,
        }
    }

    /// The effective configuration as `key = value` lines, secrets shown as `[redacted]` (with
    /// how many there are), and the `KM_*` variable next to each value it set. Printed by
    /// `serve --check-config` and logged at start.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: String| {
            let origin = self.origin(key);
            let _ = writeln!(out, "{key} = {value}{origin}");
        };
        let server = &self.server;
        line("server.listen", quoted(server.listen));
        line(
            "server.public_url",
            server
                .public_url
                .as_ref()
                .map_or_else(|| "(not set)".to_owned(), quoted),
        );
        match &server.tls {
            Some(tls) => {
                line("server.tls.cert_file", quoted(tls.cert_file.display()));
                line("server.tls.key_file", quoted(tls.key_file.display()));
            }
            None => line(
                "server.tls",
                "(off: plain HTTP, terminate TLS in front)".to_owned(),
            ),
        }
        let management = &self.management;
        line("management.tsb_url", quoted(&management.tsb_url));
        for (group, keys) in api_key_groups(&management.api_keys) {
            line(
                &format!("management.api_keys.{group}"),
                redacted_count(keys.len()),
            );
        }
        line(
            "management.bearer_token",
            management
                .bearer_token
                .as_ref()
                .map_or_else(|| "(not set)".to_owned(), |_| "[redacted]".to_owned()),
        );
        match &management.client_identity {
            Some(identity) => {
                line(
                    "management.client_cert_file",
                    quoted(identity.cert_file.display()),
                );
                line(
                    "management.client_key_file",
                    quoted(identity.key_file.display()),
                );
            }
            None => line(
                "management.client_cert_file",
                "(not set: no mTLS)".to_owned(),
            ),
        }
        line(
            "management.ca_file",
            management.ca.as_ref().map_or_else(
                || "(not set: platform trust roots)".to_owned(),
                |ca| quoted(ca.path.display()),
            ),
        );
        line(
            "management.timeout_secs",
            management.timeout.as_secs().to_string(),
        );
        line(
            "identity.bcrypt_cost",
            self.identity.bcrypt_cost.to_string(),
        );
        line(
            "identity.second_factor",
            quoted(match self.identity.second_factor {
                SecondFactorPolicy::Optional => "optional",
                SecondFactorPolicy::Mandatory => "mandatory",
            }),
        );
        line("identity.totp_issuer", quoted(&self.identity.totp_issuer));
        match &self.audit.stream {
            AuditStream::Stdout => line("audit.stream", quoted("stdout")),
            AuditStream::Off => line("audit.stream", quoted("off")),
            AuditStream::File(path) => {
                line("audit.stream", quoted("file"));
                line("audit.file", quoted(path.display()));
            }
        }
        line(
            "audit.checkpoint_every",
            self.audit.checkpoint_every.to_string(),
        );
        line(
            "state.cache_ttl_secs",
            self.state.cache_ttl_secs.to_string(),
        );
        line("state.replica", quoted(&self.state.replica));
        line(
            "notifications.allow_insecure_webhooks",
            self.notifications.allow_insecure_webhooks.to_string(),
        );
        line(
            "keys.inventory_ttl_secs",
            self.keys.inventory_ttl_secs.to_string(),
        );
        line(
            "keys.inventory_recheck_secs",
            self.keys.inventory_recheck_secs.to_string(),
        );
        line(
            "keys.inventory_concurrency",
            self.keys.inventory_concurrency.to_string(),
        );
        line(
            "partitions.default_vault",
            quoted(
                self.default_vault
                    .as_deref()
                    .unwrap_or(crate::control_plane::HSM_VAULT_ID),
            ),
        );
        for (id, spec) in &self.vaults {
            // Backend and id only: the settings hold credentials or paths to them.
            line(&format!("vaults.{id}.backend"), quoted(spec.backend()));
        }
        out
    }

    fn origin(&self, key: &str) -> String {
        // A `_file` variant set from the environment counts for its setting.
        let file_key = format!("{key}_file");
        self.from_env
            .iter()
            .filter(|(k, _)| {
                k.as_str() == key || *k == &file_key || k.starts_with(&format!("{key}."))
            })
            .map(|(_, variable)| variable.as_str())
            .next()
            .map(|variable| format!("   (from {variable})"))
            .unwrap_or_default()
    }
}

fn quoted(value: impl fmt::Display) -> String {
    format!("\"{value}\"")
}

fn redacted_count(count: usize) -> String {
    match count {
        0 => "(none)".to_owned(),
        1 => "[redacted] (1 key)".to_owned(),
        n => format!("[redacted] ({n} keys, rollover order)"),
    }
}

fn api_key_groups(keys: &ApiKeys) -> [(&'static str, &Vec<SecretString>); 5] {
    [
        ("key_management", &keys.key_management),
        ("key_operation", &keys.key_operation),
        ("approver", &keys.approver),
        ("service", &keys.service),
        ("approver_key_management", &keys.approver_key_management),
    ]
}

fn server(raw: RawServer) -> Result<ServerConfig, ConfigError> {
    let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text.trim().parse::<SocketAddr>().map_err(|_| {
        invalid(
            "server.listen",
            format!(
                "`{listen_text}` is not an address and port: write e.g. \"0.0.0.0:8443\" or \"[::]:8443\""
            ),
        )
    })?;
    let public_url = raw
        .public_url
        .map(|text| {
            let url = Url::parse(text.trim()).map_err(|error| {
                invalid(
                    "server.public_url",
                    format!("`{text}` is not a URL ({error}): write e.g. \"https://keys.example.com\""),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
            {
                return Err(invalid(
                    "server.public_url",
                    "must be an http(s) URL without user, query or fragment, e.g. \"https://keys.example.com\"",
                ));
            }
            Ok(url)
        })
        .transpose()?;
    let tls = raw
        .tls
        .map(|tls| -> Result<ServerTls, ConfigError> {
            let (Some(cert), Some(key)) = (tls.cert_file, tls.key_file) else {
                return Err(invalid(
                    "server.tls",
                    "needs both cert_file and key_file (or remove [server.tls] to serve plain HTTP behind a TLS proxy)",
                ));
            };
            let cert_file = PathBuf::from(cert);
            let key_file = PathBuf::from(key);
            let cert_pem = read_pem_certificates("server.tls.cert_file", &cert_file)?;
            let key_pem = read_pem_private_key("server.tls.key_file", &key_file)?;
            Ok(ServerTls { cert_file, key_file, cert_pem, key_pem })
        })
        .transpose()?;
    Ok(ServerConfig {
        listen,
        public_url,
        tls,
    })
}

fn management(raw: RawManagement) -> Result<ManagementConfig, ConfigError> {
    let url_text = raw.tsb_url.ok_or_else(|| {
        invalid(
            "management.tsb_url",
            "is required: the URL of the management partition on the TSB, e.g. \
             \"https://tsb.example.com:8080\" (or set KM_MANAGEMENT__TSB_URL)",
        )
    })?;
    let tsb_url = Url::parse(url_text.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        .ok_or_else(|| {
            invalid(
                "management.tsb_url",
                format!("`{url_text}` is not an http(s) URL: write e.g. \"https://tsb.example.com:8080\""),
            )
        })?;
    let api_keys = api_keys(raw.api_keys.unwrap_or_default())?;
    let bearer_token = secret_or_file(
        "management.bearer_token",
        raw.bearer_token,
        raw.bearer_token_file,
    )?;
    let client_identity = match (raw.client_cert_file, raw.client_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let cert_file = PathBuf::from(cert);
            let key_file = PathBuf::from(key);
            Some(ClientIdentity {
                cert_pem: read_pem_certificates("management.client_cert_file", &cert_file)?,
                key_pem: read_pem_private_key("management.client_key_file", &key_file)?,
                cert_file,
                key_file,
            })
        }
        (Some(_), None) => {
            return Err(invalid(
                "management.client_key_file",
                "is required with client_cert_file (mTLS needs the certificate and its key)",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "management.client_cert_file",
                "is required with client_key_file (mTLS needs the certificate and its key)",
            ));
        }
    };
    if client_identity.is_some() && tsb_url.scheme() != "https" {
        return Err(invalid(
            "management.tsb_url",
            "must be https:// when client_cert_file/client_key_file (mTLS) are set",
        ));
    }
    let ca = raw
        .ca_file
        .map(|path| -> Result<CaFile, ConfigError> {
            let path = PathBuf::from(path);
            let pem = read_pem_certificates("management.ca_file", &path)?;
            Ok(CaFile { path, pem })
        })
        .transpose()?;
    let timeout_secs = raw.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=600).contains(&timeout_secs) {
        return Err(invalid(
            "management.timeout_secs",
            format!(
                "{timeout_secs} is out of range: use 1 to 600 seconds (default {DEFAULT_TIMEOUT_SECS})"
            ),
        ));
    }
    let authenticated = bearer_token.is_some()
        || client_identity.is_some()
        || api_key_groups(&api_keys)
            .iter()
            .any(|(_, keys)| !keys.is_empty());
    if !authenticated {
        tracing::warn!(
            "no credentials configured for the management partition (api_keys, bearer_token or \
             client certificate): only a TSB without authentication will accept this"
        );
    }
    Ok(ManagementConfig {
        tsb_url,
        api_keys,
        bearer_token,
        client_identity,
        ca,
        timeout: Duration::from_secs(timeout_secs),
    })
}

fn api_keys(raw: RawApiKeys) -> Result<ApiKeys, ConfigError> {
    let group = |name: &str, keys: Option<RawSecretList>, file: Option<String>| {
        let key = format!("management.api_keys.{name}");
        match (keys, file) {
            (Some(_), Some(_)) => Err(both_set(&key)),
            (Some(RawSecretList(keys)), None) => {
                if keys.iter().any(|k| k.expose_secret().trim().is_empty()) {
                    return Err(invalid(&key, "contains an empty key"));
                }
                Ok(keys)
            }
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                let text = read_secret_file(&format!("{key}_file"), &path)?;
                Ok(text
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(|line| SecretString::from(line.to_owned()))
                    .collect())
            }
            (None, None) => Ok(Vec::new()),
        }
    };
    Ok(ApiKeys {
        key_management: group(
            "key_management",
            raw.key_management,
            raw.key_management_file,
        )?,
        key_operation: group("key_operation", raw.key_operation, raw.key_operation_file)?,
        approver: group("approver", raw.approver, raw.approver_file)?,
        service: group("service", raw.service, raw.service_file)?,
        approver_key_management: group(
            "approver_key_management",
            raw.approver_key_management,
            raw.approver_key_management_file,
        )?,
    })
}

fn identity(raw: RawIdentity) -> Result<IdentitySettings, ConfigError> {
    let bcrypt_cost = raw.bcrypt_cost.unwrap_or(DEFAULT_BCRYPT_COST);
    if bcrypt_cost < MIN_BCRYPT_COST {
        return Err(invalid(
            "identity.bcrypt_cost",
            format!(
                "{bcrypt_cost} is too low for production: use {MIN_BCRYPT_COST} or more \
                 ({DEFAULT_BCRYPT_COST} is the default)"
            ),
        ));
    }
    if bcrypt_cost > MAX_BCRYPT_COST {
        return Err(invalid(
            "identity.bcrypt_cost",
            format!(
                "{bcrypt_cost} is above bcrypt's maximum of {MAX_BCRYPT_COST}; {DEFAULT_BCRYPT_COST} is the default"
            ),
        ));
    }
    let second_factor = match raw.second_factor {
        None | Some(RawSecondFactor::Optional) => SecondFactorPolicy::Optional,
        Some(RawSecondFactor::Mandatory) => SecondFactorPolicy::Mandatory,
    };
    let totp_issuer = raw
        .totp_issuer
        .unwrap_or_else(|| IdentityConfig::default().issuer);
    if totp_issuer.trim().is_empty() || totp_issuer.contains(':') {
        return Err(invalid(
            "identity.totp_issuer",
            "must be a non-empty name without `:` (authenticator apps split on it)",
        ));
    }
    Ok(IdentitySettings {
        bcrypt_cost,
        second_factor,
        totp_issuer,
    })
}

fn audit(raw: RawAudit) -> Result<AuditSettings, ConfigError> {
    let stream = match (raw.stream.unwrap_or(RawAuditStream::Stdout), raw.file) {
        (RawAuditStream::File, Some(path)) if !path.trim().is_empty() => {
            AuditStream::File(PathBuf::from(path))
        }
        (RawAuditStream::File, _) => {
            return Err(invalid(
                "audit.file",
                "is required with stream = \"file\": the path the JSON lines are appended to",
            ));
        }
        (other, Some(_)) => {
            let name = if other == RawAuditStream::Stdout {
                "stdout"
            } else {
                "off"
            };
            return Err(invalid(
                "audit.file",
                format!(
                    "is only used with stream = \"file\" (stream is \"{name}\"): remove it or set stream = \"file\""
                ),
            ));
        }
        (RawAuditStream::Stdout, None) => AuditStream::Stdout,
        (RawAuditStream::Off, None) => AuditStream::Off,
    };
    let checkpoint_every = raw
        .checkpoint_every
        .unwrap_or(AuditConfig::default().checkpoint_every);
    if checkpoint_every > 1_000_000 {
        return Err(invalid(
            "audit.checkpoint_every",
            format!(
                "{checkpoint_every} leaves events unsigned for too long: use 1 to 1000000 (0 = only on demand)"
            ),
        ));
    }
    Ok(AuditSettings {
        stream,
        checkpoint_every,
    })
}

fn state(raw: RawState, replica_default: Option<String>) -> Result<StateSettings, ConfigError> {
    let cache_ttl_secs = raw
        .cache_ttl_secs
        .unwrap_or(StateStoreConfig::default().cache_ttl_secs);
    if cache_ttl_secs > 300 {
        return Err(invalid(
            "state.cache_ttl_secs",
            format!(
                "{cache_ttl_secs} would hide other replicas' writes for too long: use 0 to 300"
            ),
        ));
    }
    let replica = match raw.replica.or(replica_default) {
        Some(name) => {
            let name = name.trim().to_owned();
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(invalid(
                    "state.replica",
                    "use 1-64 characters of letters, digits, `-`, `_` and `.`",
                ));
            }
            name
        }
        None => StateStoreConfig::default().replica,
    };
    Ok(StateSettings {
        cache_ttl_secs,
        replica,
    })
}

/// `[keys]`: bounds keep a typo from hammering the HSM (tiny TTL, huge concurrency) or from
/// leaving the inventory blind to outside changes for hours.
fn keys(raw: RawKeys) -> Result<KeyServiceConfig, ConfigError> {
    let defaults = KeyServiceConfig::default();
    let ttl = raw
        .inventory_ttl_secs
        .unwrap_or(defaults.inventory_ttl_secs);
    if !(5..=3600).contains(&ttl) {
        return Err(invalid(
            "keys.inventory_ttl_secs",
            format!("{ttl} is out of range: use 5 to 3600 seconds"),
        ));
    }
    let recheck = raw
        .inventory_recheck_secs
        .unwrap_or(defaults.inventory_recheck_secs.max(ttl));
    if recheck < ttl || recheck > 86_400 {
        return Err(invalid(
            "keys.inventory_recheck_secs",
            format!(
                "{recheck} is out of range: use keys.inventory_ttl_secs ({ttl}) to 86400 seconds"
            ),
        ));
    }
    let concurrency = raw
        .inventory_concurrency
        .unwrap_or(defaults.inventory_concurrency as u64);
    if !(1..=256).contains(&concurrency) {
        return Err(invalid(
            "keys.inventory_concurrency",
            format!("{concurrency} is out of range: use 1 to 256 HSM calls in flight"),
        ));
    }
    Ok(KeyServiceConfig {
        inventory_ttl_secs: ttl,
        inventory_recheck_secs: recheck,
        inventory_concurrency: usize::try_from(concurrency).unwrap_or(256),
    })
}

fn notifications(raw: RawNotifications) -> NotificationsSettings {
    let allow_insecure_webhooks = raw.allow_insecure_webhooks.unwrap_or(false);
    if allow_insecure_webhooks {
        tracing::warn!(
            "notifications.allow_insecure_webhooks is on: tenants may send expiry notices over plain http:// to loopback hosts (meant for development)"
        );
    }
    NotificationsSettings {
        allow_insecure_webhooks,
    }
}

fn both_set(key: &str) -> ConfigError {
    invalid(key, format!("both {key} and {key}_file are set: keep one"))
}

/// A secret given inline or as a file.
fn secret_or_file(
    key: &str,
    inline: Option<RawSecret>,
    file: Option<String>,
) -> Result<Option<SecretString>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(both_set(key)),
        (Some(RawSecret(secret)), None) => {
            if secret.expose_secret().trim().is_empty() {
                return Err(invalid(key, "is empty: remove it or give a value"));
            }
            Ok(Some(secret))
        }
        (None, Some(path)) => {
            let text = read_secret_file(&format!("{key}_file"), Path::new(&path))?;
            Ok(Some(SecretString::from(text.trim().to_owned())))
        }
        (None, None) => Ok(None),
    }
}

/// Reads a secret file; empty (or whitespace-only) is an error, since it is always a mistake.
fn read_secret_file(key: &str, path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|error| ConfigError::SecretFile {
            key: key.to_owned(),
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    if text.trim().is_empty() {
        return Err(ConfigError::SecretFile {
            key: key.to_owned(),
            path: path.to_owned(),
            reason: "the file is empty".to_owned(),
        });
    }
    Ok(text)
}

/// Reads a PEM file that must hold at least one certificate.
fn read_pem_certificates(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let bytes = std::fs::read(path).map_err(|error| ConfigError::SecretFile {
        key: key.to_owned(),
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ConfigError::SecretFile {
            key: key.to_owned(),
            path: path.to_owned(),
            reason: format!("not a PEM certificate file: {error}"),
        })?;
    if certificates.is_empty() {
        return Err(ConfigError::SecretFile {
            key: key.to_owned(),
            path: path.to_owned(),
            reason: "holds no `BEGIN CERTIFICATE` block".to_owned(),
        });
    }
    Ok(bytes)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1). Parse errors name the file only.
fn read_pem_private_key(key: &str, path: &Path) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject as _;
    let bytes =
        std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|error| ConfigError::SecretFile {
                key: key.to_owned(),
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| ConfigError::SecretFile {
        key: key.to_owned(),
        path: path.to_owned(),
        reason: "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".to_owned(),
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;
