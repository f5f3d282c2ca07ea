//! The configuration exactly as written: every field optional (defaults are applied during
//! validation, so "not set" and "set to the default" stay distinguishable), unknown keys rejected
//! at every level. [`super::Config::from_raw`] turns this into checked, typed values.

use std::fmt;

use secrecy::SecretString;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The whole file (and each environment layer, which is validated against the same schema).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: Option<RawServer>,
    pub management: Option<RawManagement>,
    pub identity: Option<RawIdentity>,
    pub audit: Option<RawAudit>,
    pub state: Option<RawState>,
    pub partitions: Option<RawPartitions>,
    pub notifications: Option<RawNotifications>,
    pub keys: Option<RawKeys>,
    /// `[vaults.<id>]`: credential vaults besides the built-in `hsm` (file only).
    pub vaults: Option<std::collections::BTreeMap<String, RawVault>>,
}

/// `[partitions]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartitions {
    /// Vault for new partitions' credentials (`hsm` when unset).
    pub default_vault: Option<String>,
}

/// `[keys]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    pub inventory_ttl_secs: Option<u64>,
    pub inventory_recheck_secs: Option<u64>,
    pub inventory_concurrency: Option<u64>,
}

/// `[notifications]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    pub allow_insecure_webhooks: Option<bool>,
}

/// `[vaults.<id>]`: `backend = "azure"` or `"gcp"` plus that backend's settings.
#[derive(Debug, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum RawVault {
    /// Azure Key Vault.
    Azure(km_vault_azure::AzureVaultConfig),
    /// Google Cloud Secret Manager.
    Gcp(km_vault_gcp::GcpVaultConfig),
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub tls: Option<RawServerTls>,
}

/// `[server.tls]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerTls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

/// `[management]`: how to reach the management partition — the only configuration that lives
/// outside the HSM (DESIGN §4.1).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManagement {
    pub tsb_url: Option<String>,
    pub api_keys: Option<RawApiKeys>,
    pub bearer_token: Option<RawSecret>,
    pub bearer_token_file: Option<String>,
    pub client_cert_file: Option<String>,
    pub client_key_file: Option<String>,
    pub ca_file: Option<String>,
    pub timeout_secs: Option<u64>,
}

/// `[management.api_keys]`: one entry per TSB API-key group, each a key or a list of keys
/// (rollover), or a `*_file` with one key per line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKeys {
    pub key_management: Option<RawSecretList>,
    pub key_management_file: Option<String>,
    pub key_operation: Option<RawSecretList>,
    pub key_operation_file: Option<String>,
    pub approver: Option<RawSecretList>,
    pub approver_file: Option<String>,
    pub service: Option<RawSecretList>,
    pub service_file: Option<String>,
    pub approver_key_management: Option<RawSecretList>,
    pub approver_key_management_file: Option<String>,
}

/// `[identity]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    pub bcrypt_cost: Option<u32>,
    pub second_factor: Option<RawSecondFactor>,
    pub totp_issuer: Option<String>,
}

/// `identity.second_factor`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawSecondFactor {
    Optional,
    Mandatory,
}

/// `[audit]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub stream: Option<RawAuditStream>,
    pub file: Option<String>,
    pub checkpoint_every: Option<u64>,
}

/// `audit.stream`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RawAuditStream {
    Stdout,
    File,
    Off,
}

/// `[state]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub cache_ttl_secs: Option<u64>,
    pub replica: Option<String>,
}

/// A secret as written in the file or the environment. Deserialises only from a string, and a
/// value of any other type is refused *without* echoing it (serde's usual "invalid type: integer
/// `1234`" would print a numeric secret into the error).
pub struct RawSecret(pub SecretString);

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawSecret([redacted])")
    }
}

struct SecretVisitor;

impl Visitor<'_> for SecretVisitor {
    type Value = RawSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSecret, E> {
        Ok(RawSecret(SecretString::from(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<RawSecret, E> {
        Ok(RawSecret(SecretString::from(v)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecret, E> {
        Err(not_a_string())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecret, E> {
        Err(not_a_string())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecret, E> {
        Err(not_a_string())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecret, E> {
        Err(not_a_string())
    }
}

fn not_a_string<E: de::Error>() -> E {
    E::custom("a secret must be a quoted string (its value is not shown)")
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// One secret or a list of them (API-key rollover), without echoing any value in errors.
#[derive(Debug)]
pub struct RawSecretList(pub Vec<SecretString>);

struct SecretListVisitor;

impl<'de> Visitor<'de> for SecretListVisitor {
    type Value = RawSecretList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSecretList, E> {
        Ok(RawSecretList(vec![SecretString::from(v.to_owned())]))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<RawSecretList, E> {
        Ok(RawSecretList(vec![SecretString::from(v)]))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawSecretList, A::Error> {
        let mut keys = Vec::new();
        while let Some(RawSecret(key)) = seq.next_element::<RawSecret>()? {
            keys.push(key);
        }
        Ok(RawSecretList(keys))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecretList, E> {
        Err(not_a_string())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecretList, E> {
        Err(not_a_string())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecretList, E> {
        Err(not_a_string())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecretList, E> {
        Err(not_a_string())
    }
}

impl<'de> Deserialize<'de> for RawSecretList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretListVisitor)
    }
}
