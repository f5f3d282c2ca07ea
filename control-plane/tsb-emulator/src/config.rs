//! Emulator configuration: what `keymanager dev`, tests and the `tsb-emulator` binary hand to
//! [`crate::Emulator::start`]. Programmatic structs plus a strict TOML file format (unknown keys
//! are rejected so that a typo never silently turns authentication off).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::EmulatorError;

/// Everything needed to start one emulator instance.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Address to bind; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Where state lives; ephemeral by default so tests leave nothing behind.
    pub storage: Storage,
    /// HSM partitions served by this instance; the first one is the default for root `/v1` calls
    /// that carry no API key.
    pub partitions: Vec<PartitionConfig>,
    /// `None` = plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Exposes the `/_emulator/*` fault-injection and clock endpoints (the `--faults` flag).
    pub admin_api: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            storage: Storage::Ephemeral,
            partitions: vec![PartitionConfig::open("default")],
            tls: None,
            admin_api: false,
        }
    }
}

/// Where the emulator keeps its keys, data objects, requests and approvers.
#[derive(Clone, Debug)]
pub enum Storage {
    /// Memory only; everything is lost when the process ends.
    Ephemeral,
    /// Encrypted at rest (AES-256-GCM), one file per object, every acknowledged write fsynced.
    Directory(PathBuf),
}

/// One emulated HSM partition.
#[derive(Clone, Debug)]
pub struct PartitionConfig {
    /// Partition name; also the path segment of `/partitions/{name}/v1/...`.
    pub name: String,
    /// API keys per TSB key group; all empty = authentication off for this partition.
    pub api_keys: ApiKeyGroups,
    /// `Some` = every `/v1` call of this partition needs `Authorization: Bearer <jwt>`
    /// (reference §2), in addition to the API key of its group when that group has keys.
    pub jwt: Option<JwtConfig>,
}

impl PartitionConfig {
    /// A partition with the given API-key groups and no JWT requirement.
    pub fn new(name: &str, api_keys: ApiKeyGroups) -> Self {
        Self {
            name: name.to_owned(),
            api_keys,
            jwt: None,
        }
    }

    /// A partition without API-key authentication.
    pub fn open(name: &str) -> Self {
        Self::new(name, ApiKeyGroups::default())
    }

    /// Requires a bearer JWT on every call of this partition.
    pub fn with_jwt(mut self, jwt: JwtConfig) -> Self {
        self.jwt = Some(jwt);
        self
    }
}

/// How a partition verifies bearer JWTs: the signature key, the required `iss` and `aud`, and
/// `exp` (required, checked against the wall clock with `leeway_secs` of tolerance; `nbf` is
/// checked when present). Missing token → 401/406 `missing.access.token`; any other failure →
/// 401/617 `invalid.access.token`.
#[derive(Clone)]
pub struct JwtConfig {
    /// Signature algorithm and key.
    pub key: JwtKey,
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim (one of the token's audiences).
    pub audience: String,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds (60 by default, like Spring Security).
    pub leeway_secs: u64,
}

/// Signature key of [`JwtConfig`]. Only the named algorithm is accepted (a token whose header
/// names another one is invalid), so an HS256 token can never be checked against a public key.
#[derive(Clone)]
pub enum JwtKey {
    /// HS256 with a shared secret.
    Hs256(zeroize::Zeroizing<Vec<u8>>),
    /// RS256 with an RSA public key (PEM: `PUBLIC KEY` or `RSA PUBLIC KEY`).
    Rs256(String),
    /// ES256 with a P-256 public key (PEM `PUBLIC KEY`).
    Es256(String),
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKey::Hs256(_) => f.write_str("Hs256(<redacted>)"),
            JwtKey::Rs256(pem) => f.debug_tuple("Rs256").field(&pem.len()).finish(),
            JwtKey::Es256(pem) => f.debug_tuple("Es256").field(&pem.len()).finish(),
        }
    }
}

impl JwtConfig {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self::with_key(
            JwtKey::Hs256(zeroize::Zeroizing::new(secret.to_vec())),
            issuer,
            audience,
        )
    }

    /// RS256 with an RSA public key in PEM.
    pub fn rs256(public_key_pem: &str, issuer: &str, audience: &str) -> Self {
        Self::with_key(JwtKey::Rs256(public_key_pem.to_owned()), issuer, audience)
    }

    /// ES256 with a P-256 public key in PEM.
    pub fn es256(public_key_pem: &str, issuer: &str, audience: &str) -> Self {
        Self::with_key(JwtKey::Es256(public_key_pem.to_owned()), issuer, audience)
    }

    fn with_key(key: JwtKey, issuer: &str, audience: &str) -> Self {
        Self {
            key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_secs: 60,
        }
    }

    /// Sets the tolerated clock skew on `exp`/`nbf`.
    pub fn with_leeway_secs(mut self, secs: u64) -> Self {
        self.leeway_secs = secs;
        self
    }
}

impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

/// The TSB's API-key groups (`apiAuthentication.*Token` lists). Each group holds a list so that
/// clients can exercise key rollover; an empty list means that group needs no key.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeyGroups {
    /// `keyManagementToken`: keys, data objects, modify.
    pub key_management: Vec<String>,
    /// `keyOperationToken`: crypto operations, certificates, requests, random.
    pub key_operation: Vec<String>,
    /// `approverToken`: approval tasks, approvals, onboarding.
    pub approver: Vec<String>,
    /// `serviceToken`: versionInfo, licenseInfo, keystore statistics, logs.
    pub service: Vec<String>,
    /// `approverKeyManagementToken`: approver management.
    pub approver_key_management: Vec<String>,
}

impl ApiKeyGroups {
    /// True when no group has a key: the partition accepts any caller.
    pub fn is_open(&self) -> bool {
        self.all().all(|(_, keys)| keys.is_empty())
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = (KeyGroup, &Vec<String>)> {
        [
            (KeyGroup::KeyManagement, &self.key_management),
            (KeyGroup::KeyOperation, &self.key_operation),
            (KeyGroup::Approver, &self.approver),
            (KeyGroup::Service, &self.service),
            (
                KeyGroup::ApproverKeyManagement,
                &self.approver_key_management,
            ),
        ]
        .into_iter()
    }

    pub(crate) fn group(&self, group: KeyGroup) -> &[String] {
        match group {
            KeyGroup::KeyManagement => &self.key_management,
            KeyGroup::KeyOperation => &self.key_operation,
            KeyGroup::Approver => &self.approver,
            KeyGroup::Service => &self.service,
            KeyGroup::ApproverKeyManagement => &self.approver_key_management,
        }
    }
}

impl fmt::Debug for ApiKeyGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the keys themselves, only how many there are.
        f.debug_struct("ApiKeyGroups")
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

/// The TSB key group an endpoint belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyGroup {
    KeyManagement,
    KeyOperation,
    Approver,
    Service,
    ApproverKeyManagement,
}

/// Server TLS, optionally with client-certificate authentication (mTLS).
#[derive(Clone)]
pub struct TlsConfig {
    /// PEM chain, leaf first.
    pub cert_chain_pem: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key_pem: String,
    /// PEM CA certificates that client certificates must chain to (required for Want/Need).
    pub client_ca_pem: Option<String>,
    /// Whether a client certificate is required, optional or not asked for.
    pub client_auth: ClientAuth,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field(
                "cert_chain_pem",
                &format_args!("<{} bytes>", self.cert_chain_pem.len()),
            )
            .field("private_key_pem", &"<redacted>")
            .field(
                "client_ca_pem",
                &self.client_ca_pem.as_ref().map(|c| c.len()),
            )
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

/// The TSB's `tls.clientAuthentication` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate requested.
    None,
    /// Requested and verified when presented.
    Want,
    /// Required; handshakes without a valid client certificate fail.
    Need,
}

/// The `--config` TOML file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub ephemeral: bool,
    #[serde(default)]
    pub faults: bool,
    pub tls: Option<FileTls>,
    #[serde(default)]
    pub partitions: Vec<FilePartition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client_auth: Option<ClientAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilePartition {
    pub name: String,
    #[serde(default)]
    pub api_keys: ApiKeyGroups,
    pub jwt: Option<FileJwt>,
}

/// `[partitions.jwt]`: `algorithm` HS256 (with `secret`) or RS256/ES256 (with `public_key`, a
/// PEM file path), `issuer`, `audience`, optional `leeway_secs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileJwt {
    pub algorithm: String,
    pub secret: Option<String>,
    pub public_key: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: Option<u64>,
}

impl fmt::Debug for FileJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileJwt")
            .field("algorithm", &self.algorithm)
            .field("public_key", &self.public_key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl FileJwt {
    fn into_config(self, partition: &str) -> Result<JwtConfig, EmulatorError> {
        let err = |m: &str| EmulatorError::Config(format!("partition {partition:?}: jwt: {m}"));
        let pem = |path: &Option<PathBuf>| -> Result<String, EmulatorError> {
            let path = path
                .as_deref()
                .ok_or_else(|| err("public_key (a PEM file) is required for RS256/ES256"))?;
            read_pem_file(path, "JWT public key")
        };
        let mut cfg = match self.algorithm.as_str() {
            "HS256" => {
                if self.public_key.is_some() {
                    return Err(err("public_key is for RS256/ES256; HS256 takes secret"));
                }
                let secret = self
                    .secret
                    .as_deref()
                    .ok_or_else(|| err("secret is required for HS256"))?;
                JwtConfig::hs256(secret.as_bytes(), &self.issuer, &self.audience)
            }
            "RS256" | "ES256" => {
                if self.secret.is_some() {
                    return Err(err("secret is for HS256; RS256/ES256 take public_key"));
                }
                let pem = pem(&self.public_key)?;
                if self.algorithm == "RS256" {
                    JwtConfig::rs256(&pem, &self.issuer, &self.audience)
                } else {
                    JwtConfig::es256(&pem, &self.issuer, &self.audience)
                }
            }
            other => {
                return Err(err(&format!(
                    "unsupported algorithm {other:?} (HS256, RS256 or ES256)"
                )));
            }
        };
        if let Some(l) = self.leeway_secs {
            cfg.leeway_secs = l;
        }
        Ok(cfg)
    }
}

impl FileConfig {
    pub(crate) fn read(path: &Path) -> Result<Self, EmulatorError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            EmulatorError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        toml::from_str(&text).map_err(|e| {
            EmulatorError::Config(format!("invalid config file {}: {e}", path.display()))
        })
    }
}

pub(crate) fn read_pem_file(path: &Path, what: &str) -> Result<String, EmulatorError> {
    std::fs::read_to_string(path)
        .map_err(|e| EmulatorError::Config(format!("cannot read {what} {}: {e}", path.display())))
}

impl TlsConfig {
    pub(crate) fn from_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
        client_auth: Option<ClientAuth>,
    ) -> Result<Self, EmulatorError> {
        let client_ca_pem = client_ca
            .map(|p| read_pem_file(p, "client CA"))
            .transpose()?;
        let client_auth = client_auth.unwrap_or(if client_ca_pem.is_some() {
            ClientAuth::Need
        } else {
            ClientAuth::None
        });
        Ok(Self {
            cert_chain_pem: read_pem_file(cert, "TLS certificate")?,
            private_key_pem: read_pem_file(key, "TLS key")?,
            client_ca_pem,
            client_auth,
        })
    }
}

impl EmulatorConfig {
    /// Reads a `--config` TOML file (unknown keys rejected). Relative paths are taken as given
    /// (relative to the working directory).
    pub fn from_toml_file(path: &Path) -> Result<Self, EmulatorError> {
        let file = FileConfig::read(path)?;
        file.into_config()
    }

    pub(crate) fn validate(&self) -> Result<(), EmulatorError> {
        if self.partitions.is_empty() {
            return Err(EmulatorError::Config(
                "at least one partition is required".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut keys = std::collections::HashMap::new();
        for p in &self.partitions {
            if !valid_partition_name(&p.name) {
                return Err(EmulatorError::Config(format!(
                    "invalid partition name {:?}: use 1-64 characters of [A-Za-z0-9._-], not starting with '.'",
                    p.name
                )));
            }
            if let Some(jwt) = &p.jwt {
                crate::auth::JwtVerifier::new(jwt)
                    .map_err(|e| EmulatorError::Config(format!("partition {:?}: {e}", p.name)))?;
            }
            if !seen.insert(p.name.clone()) {
                return Err(EmulatorError::Config(format!(
                    "duplicate partition {:?}",
                    p.name
                )));
            }
            for (_, group) in p.api_keys.all() {
                for k in group {
                    if k.is_empty() {
                        return Err(EmulatorError::Config(format!(
                            "partition {:?} has an empty API key",
                            p.name
                        )));
                    }
                    if let Some(other) = keys.insert(k.clone(), p.name.clone())
                        && other != p.name
                    {
                        return Err(EmulatorError::Config(format!(
                            "an API key is shared by partitions {other:?} and {:?}; root /v1 calls select the partition by API key, so keys must be unique per partition",
                            p.name
                        )));
                    }
                }
            }
        }
        if let Some(tls) = &self.tls
            && tls.client_auth != ClientAuth::None
            && tls.client_ca_pem.is_none()
        {
            return Err(EmulatorError::Config(
                "client authentication (want/need) requires a client CA".into(),
            ));
        }
        Ok(())
    }
}

impl FileConfig {
    pub(crate) fn into_config(self) -> Result<EmulatorConfig, EmulatorError> {
        let mut cfg = EmulatorConfig::default();
        if let Some(listen) = self.listen {
            cfg.listen = listen;
        }
        if self.ephemeral && self.state_dir.is_some() {
            return Err(EmulatorError::Config(
                "state_dir and ephemeral are mutually exclusive".into(),
            ));
        }
        if let Some(dir) = self.state_dir {
            cfg.storage = Storage::Directory(dir);
        }
        cfg.admin_api = self.faults;
        if let Some(tls) = self.tls {
            cfg.tls = Some(TlsConfig::from_files(
                &tls.cert,
                &tls.key,
                tls.client_ca.as_deref(),
                tls.client_auth,
            )?);
        }
        if !self.partitions.is_empty() {
            cfg.partitions = self
                .partitions
                .into_iter()
                .map(|p| {
                    let jwt = p.jwt.map(|j| j.into_config(&p.name)).transpose()?;
                    Ok(PartitionConfig {
                        name: p.name,
                        api_keys: p.api_keys,
                        jwt,
                    })
                })
                .collect::<Result<_, EmulatorError>>()?;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

pub(crate) fn valid_partition_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\nfoo = 1\n");
        assert!(err.is_err());
        let err = toml::from_str::<FileConfig>(
            "[[partitions]]\nname = \"a\"\n[partitions.api_keys]\nkey_managment = [\"x\"]\n",
        );
        assert!(err.is_err(), "typo in a group name must be rejected");
    }

    #[test]
    fn file_config_parses() {
        let f: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9999\"\nephemeral = true\nfaults = true\n[[partitions]]\nname = \"a\"\n[partitions.api_keys]\nservice = [\"s1\", \"s2\"]\n[[partitions]]\nname = \"b\"\n",
        )
        .unwrap();
        let cfg = f.into_config().unwrap();
        assert_eq!(cfg.partitions.len(), 2);
        assert_eq!(cfg.partitions[0].api_keys.service, vec!["s1", "s2"]);
        assert!(cfg.partitions[1].api_keys.is_open());
        assert!(cfg.admin_api);
        let dbg = format!("{:?}", cfg.partitions[0].api_keys);
        assert!(!dbg.contains("s1"));
    }

    #[test]
    fn jwt_file_config() {
        let f: FileConfig = toml::from_str(
            "[[partitions]]\nname = \"a\"\n[partitions.jwt]\nalgorithm = \"HS256\"\nsecret = \"s3cret\"\nissuer = \"https://idp.test\"\naudience = \"tsb\"\nleeway_secs = 5\n",
        )
        .unwrap();
        let cfg = f.into_config().unwrap();
        let jwt = cfg.partitions[0].jwt.as_ref().unwrap();
        assert_eq!(
            (jwt.issuer.as_str(), jwt.audience.as_str(), jwt.leeway_secs),
            ("https://idp.test", "tsb", 5)
        );
        assert!(!format!("{jwt:?}").contains("s3cret"));
        // Typos and mismatched key kinds are errors.
        assert!(
            toml::from_str::<FileConfig>(
                "[[partitions]]\nname = \"a\"\n[partitions.jwt]\nalgorithm = \"HS256\"\nsecret = \"s\"\nissuer = \"i\"\naudiense = \"a\"\n",
            )
            .is_err()
        );
        for bad in [
            "algorithm = \"HS256\"\nissuer = \"i\"\naudience = \"a\"\n",
            "algorithm = \"RS256\"\nsecret = \"s\"\nissuer = \"i\"\naudience = \"a\"\n",
            "algorithm = \"none\"\nissuer = \"i\"\naudience = \"a\"\n",
        ] {
            let f: FileConfig = toml::from_str(&format!(
                "[[partitions]]\nname = \"a\"\n[partitions.jwt]\n{bad}"
            ))
            .unwrap();
            assert!(f.into_config().is_err(), "{bad}");
        }
        // A public key that is not a key is refused at start-up, not on the first call.
        let with = |jwt: JwtConfig| EmulatorConfig {
            partitions: vec![PartitionConfig::open("a").with_jwt(jwt)],
            ..EmulatorConfig::default()
        };
        assert!(
            with(JwtConfig::es256("not a pem", "i", "a"))
                .validate()
                .is_err()
        );
        assert!(
            with(JwtConfig::hs256(b"", "i", "a")).validate().is_err(),
            "empty HS256 secret"
        );
        assert!(with(JwtConfig::hs256(b"s", "", "a")).validate().is_err());
        assert!(with(JwtConfig::hs256(b"s", "i", "a")).validate().is_ok());
    }

    #[test]
    fn shared_keys_rejected() {
        let mut cfg = EmulatorConfig::default();
        let mut a = PartitionConfig::open("a");
        a.api_keys.service = vec!["k".into()];
        let mut b = PartitionConfig::open("b");
        b.api_keys.approver = vec!["k".into()];
        cfg.partitions = vec![a, b];
        assert!(cfg.validate().is_err());
    }
}
