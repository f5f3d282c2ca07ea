//! [`AzureKeyVault`]: the [`SecretVault`] port on Key Vault secrets, through the official SDK.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret as CredentialSecret, TokenCredential};
use azure_core::http::{ClientOptions, RequestContent, RetryOptions, Transport};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId,
};
use azure_security_keyvault_secrets::models::{Secret, SetSecretParameters};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use km_core::{SecretName, SecretValue, SecretVault, VaultError, VaultKind};
use secrecy::ExposeSecret;
use secrecy::zeroize::Zeroizing;
use url::Url;

use crate::config::{AzureAuth, AzureVaultConfig};
use crate::error::{self, Conflict};
use crate::retry::BoundedRetry;

/// Content type keymanager stores its (binary) values under, base64-encoded. `get` refuses a
/// secret with any other content type instead of guessing its encoding.
pub const CONTENT_TYPE: &str = "application/octet-stream; base64";

/// Default deadline of one operation (`timeout_seconds`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Authority used when `authority_host` is not set.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// TCP + TLS connect timeout of every request: an unreachable host fails in seconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest wait for response bytes once connected.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Secret read by [`SecretVault::check`]; it need not exist (404 proves access just as well).
const CHECK_PROBE: &str = "keymanager-access-check";

/// Longest pause between two polls while a deleted name settles.
const MAX_SETTLE_DELAY: Duration = Duration::from_secs(1);

/// An Azure Key Vault holding keymanager's secrets.
///
/// Each value is one Key Vault secret named like the [`SecretName`], holding the value in
/// base64 with content type [`CONTENT_TYPE`]; `put` adds a version. `delete` deletes and then
/// purges (Key Vault soft delete), waiting while the service reports the name as "being
/// deleted"; a `put` right after a purge waits the same way until the service frees the name, so
/// a name can be reused at once from the caller's point of view. A `put` on a name that is
/// deleted but not purged (an earlier delete cut off between its two steps, or a deletion made
/// outside keymanager) purges that leftover first.
///
/// Cheap to share between tasks (`&self` methods; the SDK client is internally shared).
pub struct AzureKeyVault {
    client: SecretClient,
    vault_url: Url,
    auth_method: &'static str,
    sign_in_hint: &'static str,
    timeout: Duration,
}

impl fmt::Debug for AzureKeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureKeyVault")
            .field("vault_url", &self.vault_url.as_str())
            .field("auth", &self.auth_method)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Builds the client for `config`; same as [`AzureKeyVault::connect`].
pub async fn connect(config: &AzureVaultConfig) -> Result<AzureKeyVault, VaultError> {
    AzureKeyVault::connect(config).await
}

impl AzureKeyVault {
    /// Builds the SDK client and credential for `config`: reads `client_secret_file` and
    /// `ca_pem_file` and validates the settings. It does not contact Azure (so a vault that is
    /// briefly down does not stop keymanager from starting); call [`SecretVault::check`] for that.
    ///
    /// Errors are [`VaultError::Rejected`] with a message naming the bad setting.
    pub async fn connect(config: &AzureVaultConfig) -> Result<Self, VaultError> {
        let vault_url = config.vault_url.clone();
        if vault_url.scheme() != "https" || vault_url.host_str().is_none() {
            return Err(error::config(format!(
                "vault_url must be an https URL such as https://<name>.vault.azure.net/, not {vault_url}"
            )));
        }
        let timeout = match config.timeout_seconds {
            None => DEFAULT_TIMEOUT,
            Some(0) => return Err(error::config("timeout_seconds must be at least 1")),
            Some(seconds) => Duration::from_secs(seconds),
        };

        let client_options = ClientOptions {
            transport: Some(Transport::new(Arc::new(
                http_client(config.ca_pem_file.as_deref()).await?,
            ))),
            retry: RetryOptions::custom(Arc::new(BoundedRetry)),
            ..Default::default()
        };

        let (credential, sign_in_hint): (Arc<dyn TokenCredential>, _) = match &config.auth {
            AzureAuth::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
                client_secret_file,
            } => {
                let secret =
                    client_secret_value(client_secret.as_ref(), client_secret_file).await?;
                let authority = config
                    .authority_host
                    .as_ref()
                    .map_or(DEFAULT_AUTHORITY_HOST, Url::as_str);
                if !authority.starts_with("https://") {
                    return Err(error::config(format!(
                        "authority_host must be an https URL, not {authority}"
                    )));
                }
                let mut cloud = CustomConfiguration::default();
                cloud.authority_host = authority.trim_end_matches('/').to_owned();
                let options = ClientSecretCredentialOptions {
                    client_options: ClientOptions {
                        cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
                        ..client_options.clone()
                    },
                };
                let credential = ClientSecretCredential::new(
                    tenant_id,
                    client_id.clone(),
                    CredentialSecret::new(secret.to_string()),
                    Some(options),
                )
                .map_err(|e| error::config(format!("auth: {}", error::chain_text(&e))))?;
                (
                    credential as Arc<dyn TokenCredential>,
                    error::CLIENT_SECRET_HINT,
                )
            }
            AzureAuth::ManagedIdentity { client_id } => {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: client_options.clone(),
                };
                let credential = ManagedIdentityCredential::new(Some(options))
                    .map_err(|e| error::config(format!("auth: {}", error::chain_text(&e))))?;
                (
                    credential as Arc<dyn TokenCredential>,
                    error::MANAGED_IDENTITY_HINT,
                )
            }
        };

        let options = SecretClientOptions {
            client_options,
            verify_challenge_resource: Some(config.verify_challenge_resource),
            ..Default::default()
        };
        let client = SecretClient::new(vault_url.as_str(), credential, Some(options))
            .map_err(|e| error::config(format!("vault_url: {}", error::chain_text(&e))))?;
        tracing::debug!(vault = %vault_url, auth = config.auth.method(), "Azure Key Vault client ready");
        Ok(Self {
            client,
            vault_url,
            auth_method: config.auth.method(),
            sign_in_hint,
            timeout,
        })
    }

    /// The vault's URL.
    pub fn vault_url(&self) -> &Url {
        &self.vault_url
    }

    /// Runs `operation` under the configured deadline.
    async fn within<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, VaultError>>,
    ) -> Result<T, VaultError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(VaultError::Unavailable {
                backend: VaultKind::Azure,
                detail: format!(
                    "{what}: no answer within {} s (timeout_seconds)",
                    self.timeout.as_secs()
                ),
            }),
        }
    }

    /// Waits between polls of a name that is still being deleted, until a bit before the
    /// operation's deadline (so the caller gets the service's last answer, not a bare timeout).
    fn settle(&self) -> Settle {
        Settle {
            until: Instant::now() + self.timeout * 2 / 3,
            delay: Duration::from_millis(50),
        }
    }

    fn map(&self, what: &str, err: &azure_core::Error) -> VaultError {
        error::map(what, err, self.sign_in_hint)
    }

    /// Purges the deleted secret `name`; absent is fine, "being deleted" is waited out.
    async fn purge(&self, name: &SecretName, settle: &mut Settle) -> Result<(), VaultError> {
        loop {
            match self.client.purge_deleted_secret(name.as_str(), None).await {
                Ok(_) => return Ok(()),
                Err(e) if error::is_not_found(&e) => return Ok(()),
                Err(e) if error::conflict(&e) == Some(Conflict::BeingDeleted) => {
                    if !settle.wait().await {
                        return Err(self.map(&format!("purging deleted secret {name}"), &e));
                    }
                }
                Err(e) => {
                    let what = format!("purging deleted secret {name}");
                    if error::Facts::of(&e)
                        .message
                        .to_ascii_lowercase()
                        .contains("purge protection")
                    {
                        return Err(VaultError::Rejected {
                            backend: VaultKind::Azure,
                            detail: format!(
                                "{what}: the vault has purge protection enabled, so a deleted name stays reserved for the whole retention period; keymanager needs a vault without purge protection ({})",
                                error::Facts::of(&e).message
                            ),
                        });
                    }
                    return Err(self.map(&what, &e));
                }
            }
        }
    }
}

#[async_trait]
impl SecretVault for AzureKeyVault {
    fn kind(&self) -> VaultKind {
        VaultKind::Azure
    }

    async fn put(&self, name: &SecretName, value: &SecretValue) -> Result<(), VaultError> {
        let what = format!("storing secret {name}");
        if value.len() > SecretValue::MAX_LEN {
            return Err(VaultError::Rejected {
                backend: VaultKind::Azure,
                detail: format!(
                    "{what}: the value has {} bytes, more than the {} allowed",
                    value.len(),
                    SecretValue::MAX_LEN
                ),
            });
        }
        self.within(&what, async {
            let encoded = Zeroizing::new(STANDARD.encode(value.expose_secret()));
            let mut settle = self.settle();
            let mut purged = false;
            loop {
                let parameters = SetSecretParameters {
                    value: Some(encoded.to_string()),
                    content_type: Some(CONTENT_TYPE.to_owned()),
                    ..Default::default()
                };
                let body = RequestContent::try_from(parameters).map_err(|e| self.map(&what, &e))?;
                let err = match self.client.set_secret(name.as_str(), body, None).await {
                    Ok(_) => {
                        tracing::debug!(vault = %self.vault_url, secret = %name, "stored secret");
                        return Ok(());
                    }
                    Err(err) => err,
                };
                match error::conflict(&err) {
                    Some(Conflict::DeletedButRecoverable) if !purged => {
                        tracing::info!(vault = %self.vault_url, secret = %name, "purging a deleted secret of the same name before storing");
                        purged = true;
                        self.purge(name, &mut settle).await?;
                    }
                    Some(_) if settle.wait().await => {}
                    _ => return Err(self.map(&what, &err)),
                }
            }
        })
        .await
    }

    async fn get(&self, name: &SecretName) -> Result<Option<SecretValue>, VaultError> {
        let what = format!("reading secret {name}");
        self.within(&what, async {
            let response = match self.client.get_secret(name.as_str(), None).await {
                Ok(response) => response,
                Err(e) if error::is_not_found(&e) => return Ok(None),
                Err(e) => return Err(self.map(&what, &e)),
            };
            let secret = response.into_model().map_err(|e| self.map(&what, &e))?;
            decode(name, secret).map(Some)
        })
        .await
    }

    async fn delete(&self, name: &SecretName) -> Result<(), VaultError> {
        let what = format!("deleting secret {name}");
        self.within(&what, async {
            let mut settle = self.settle();
            loop {
                match self.client.delete_secret(name.as_str(), None).await {
                    Ok(response) => {
                        // Without a recovery id the vault has no soft delete: nothing to purge.
                        let recoverable = response
                            .into_model()
                            .map_or(true, |deleted| deleted.recovery_id.is_some());
                        if !recoverable {
                            return Ok(());
                        }
                        break;
                    }
                    // Absent, or deleted earlier but not purged: purge any leftover below.
                    Err(e) if error::is_not_found(&e) => break,
                    Err(e) if error::conflict(&e).is_some() => {
                        if !settle.wait().await {
                            return Err(self.map(&what, &e));
                        }
                    }
                    Err(e) => return Err(self.map(&what, &e)),
                }
            }
            self.purge(name, &mut settle).await?;
            tracing::debug!(vault = %self.vault_url, secret = %name, "deleted and purged secret");
            Ok(())
        })
        .await
    }

    async fn check(&self) -> Result<(), VaultError> {
        let what = format!("checking access to {}", self.vault_url);
        self.within(&what, async {
            match self.client.get_secret(CHECK_PROBE, None).await {
                Ok(_) => Ok(()),
                Err(e) if error::is_not_found(&e) => Ok(()),
                Err(e) => Err(self.map(&what, &e)),
            }
        })
        .await
    }
}

/// Turns a Key Vault secret written by keymanager back into bytes.
fn decode(name: &SecretName, mut secret: Secret) -> Result<SecretValue, VaultError> {
    let encoded = Zeroizing::new(secret.value.take().unwrap_or_default());
    let content_type = secret.content_type.as_deref().map(str::trim);
    if !content_type.is_some_and(|ct| ct.eq_ignore_ascii_case(CONTENT_TYPE)) {
        let found = content_type.map_or_else(|| "none".to_owned(), |ct| format!("{ct:?}"));
        return Err(VaultError::Rejected {
            backend: VaultKind::Azure,
            detail: format!(
                "reading secret {name}: its content type is {found}, not \"{CONTENT_TYPE}\", so keymanager did not write it and will not guess its encoding; store the value again through keymanager"
            ),
        });
    }
    // The decode error would name the offending byte: leave it out.
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|_| VaultError::Integrity {
            backend: VaultKind::Azure,
            detail: format!(
                "secret {name} is marked \"{CONTENT_TYPE}\" but its value is not valid base64"
            ),
        })?;
    Ok(SecretValue::new(bytes))
}

/// Polls with a doubling pause until a deadline.
#[derive(Debug)]
struct Settle {
    until: Instant,
    delay: Duration,
}

impl Settle {
    /// Sleeps before the next poll; `false` (without sleeping) once the deadline would pass.
    async fn wait(&mut self) -> bool {
        if Instant::now() + self.delay > self.until {
            return false;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(MAX_SETTLE_DELAY);
        true
    }
}

/// The client secret from the configuration or its file.
async fn client_secret_value(
    inline: Option<&secrecy::SecretString>,
    file: &Option<std::path::PathBuf>,
) -> Result<Zeroizing<String>, VaultError> {
    let secret = match (inline, file) {
        (Some(secret), None) => Zeroizing::new(secret.expose_secret().trim().to_owned()),
        (None, Some(path)) => {
            let raw = Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|e| {
                error::config(format!(
                    "cannot read auth.client_secret_file {}: {}",
                    path.display(),
                    error::chain_text(&e)
                ))
            })?);
            Zeroizing::new(raw.trim().to_owned())
        }
        (Some(_), Some(_)) => {
            return Err(error::config(
                "set either auth.client_secret or auth.client_secret_file, not both",
            ));
        }
        (None, None) => {
            return Err(error::config(
                "method \"client_secret\" needs auth.client_secret_file (or auth.client_secret)",
            ));
        }
    };
    if secret.is_empty() {
        return Err(error::config("the client secret is empty"));
    }
    Ok(secret)
}

/// The HTTP client of every pipeline: short connect timeout, no redirects, and the extra CAs of
/// `ca_pem_file` trusted on top of the system roots.
async fn http_client(ca_pem_file: Option<&std::path::Path>) -> Result<reqwest::Client, VaultError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_pem_file {
        let pem = tokio::fs::read(path).await.map_err(|e| {
            error::config(format!(
                "cannot read ca_pem_file {}: {}",
                path.display(),
                error::chain_text(&e)
            ))
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            error::config(format!(
                "ca_pem_file {}: {}",
                path.display(),
                error::chain_text(&e)
            ))
        })?;
        if certificates.is_empty() {
            return Err(error::config(format!(
                "ca_pem_file {} holds no PEM certificate",
                path.display()
            )));
        }
        builder = builder.tls_certs_merge(certificates);
    }
    builder
        .build()
        .map_err(|e| error::config(format!("HTTP client: {}", error::chain_text(&e))))
}
