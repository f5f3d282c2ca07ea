//! The `[vaults.<id>]` configuration of an Azure Key Vault backend, as read from the server's TOML.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// How to reach one Azure Key Vault and which Entra ID identity keymanager uses there.
///
/// ```toml
/// vault_url = "https://contoso-km.vault.azure.net/"
/// auth = { method = "client_secret", tenant_id = "...", client_id = "...", client_secret_file = "/run/secrets/azure" }
/// ```
///
/// `Debug` never shows the client secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureVaultConfig {
    /// The vault's URL, `https://<name>.vault.azure.net/` (or the sovereign-cloud equivalent).
    pub vault_url: Url,
    /// The identity keymanager signs in with.
    pub auth: AzureAuth,
    /// The Entra ID authority for `client_secret` sign-in. Default
    /// `https://login.microsoftonline.com`; set it for sovereign clouds
    /// (`https://login.microsoftonline.us`, `https://login.chinacloudapi.cn`) or private test
    /// authorities. Ignored for managed identities, which ask their local endpoint.
    #[serde(default)]
    pub authority_host: Option<Url>,
    /// A PEM file of extra CA certificates to trust, in addition to the system roots, for both the
    /// vault and the authority. Only for private CAs (a TLS-inspecting proxy, a test double); the
    /// public Azure endpoints need nothing here.
    #[serde(default)]
    pub ca_pem_file: Option<PathBuf>,
    /// Whether the `resource` in the vault's authentication challenge must be a parent domain of
    /// the vault's host (the SDK's protection against a look-alike vault obtaining a token). Keep
    /// the default `true`; turn it off only for a vault reached through a host name outside the
    /// Key Vault domain (a private endpoint alias, a test double on 127.0.0.1).
    #[serde(default = "default_true")]
    pub verify_challenge_resource: bool,
    /// Deadline in seconds for one vault operation, including sign-in and the waits Key Vault's
    /// soft delete needs before a deleted name can be purged and reused. Default 30.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

impl AzureVaultConfig {
    /// A configuration with the defaults for everything but the vault and the identity.
    pub fn new(vault_url: Url, auth: AzureAuth) -> Self {
        Self {
            vault_url,
            auth,
            authority_host: None,
            ca_pem_file: None,
            verify_challenge_resource: true,
            timeout_seconds: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// The Entra ID identity keymanager uses at the vault. It needs, on secrets: get, set, delete and
/// purge (RBAC role "Key Vault Secrets Officer", or an access policy with those permissions).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum AzureAuth {
    /// An app registration (service principal) signing in with a client secret.
    ClientSecret {
        /// The directory (tenant) id.
        tenant_id: String,
        /// The application (client) id.
        client_id: String,
        /// The client secret value (not its id). Prefer `client_secret_file`; set exactly one.
        #[serde(default)]
        client_secret: Option<SecretString>,
        /// A file holding the client secret (surrounding whitespace is ignored).
        #[serde(default)]
        client_secret_file: Option<PathBuf>,
    },
    /// The managed identity of the Azure host keymanager runs on (VM, App Service, Container
    /// Apps), through `azure_identity`'s `ManagedIdentityCredential`.
    ManagedIdentity {
        /// Client id of a user-assigned identity; `None` for the system-assigned identity.
        #[serde(default)]
        client_id: Option<String>,
    },
}

impl AzureAuth {
    /// `client_secret` or `managed_identity`, as in the configuration.
    pub fn method(&self) -> &'static str {
        match self {
            AzureAuth::ClientSecret { .. } => "client_secret",
            AzureAuth::ManagedIdentity { .. } => "managed_identity",
        }
    }
}
