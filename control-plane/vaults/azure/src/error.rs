//! Turning `azure_core` errors into [`VaultError`]s that say what happened and what to check.
//!
//! The SDK wraps errors in layers (retry policy, credential, transport); the useful text and the
//! HTTP status sit somewhere in the `source()` chain. Only `Display` texts of the chain are used:
//! they hold status lines, the service's error code and message, URLs and OS errors, never a
//! request body, so no secret value can end up in a `VaultError`.

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use azure_security_keyvault_secrets::models::KeyVaultError;
use km_core::{VaultError, VaultKind};

const BACKEND: VaultKind = VaultKind::Azure;

/// What an SDK error says, gathered from its whole chain.
#[derive(Debug)]
pub(crate) struct Facts {
    /// HTTP status of the first HTTP response error in the chain.
    pub status: Option<StatusCode>,
    /// The service's error code (`SecretNotFound`, `Forbidden`, an Entra `AADSTS` number, ...).
    pub code: Option<String>,
    /// Key Vault's `innererror.code` (`ObjectIsBeingDeleted`, `ForbiddenByRbac`, ...).
    pub inner_code: Option<String>,
    /// Whether getting a token failed (as opposed to the vault call itself).
    pub credential: bool,
    /// Whether the transport failed (connect, TLS, timeout, reset).
    pub transport: bool,
    /// The chain's messages, generic wrappers and repeats left out.
    pub message: String,
}

impl Facts {
    pub(crate) fn of(err: &azure_core::Error) -> Self {
        let mut facts = Facts {
            status: None,
            code: None,
            inner_code: None,
            credential: false,
            transport: false,
            message: String::new(),
        };
        let mut parts: Vec<String> = Vec::new();
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = current {
            if let Some(az) = e.downcast_ref::<azure_core::Error>() {
                match az.kind() {
                    ErrorKind::HttpResponse {
                        status,
                        error_code,
                        raw_response,
                    } if facts.status.is_none() => {
                        facts.status = Some(*status);
                        facts.code = error_code.clone();
                        let body = raw_response
                            .as_ref()
                            .and_then(|raw| {
                                azure_core::json::from_json::<_, KeyVaultError>(raw.body()).ok()
                            })
                            .and_then(|body| body.error);
                        if let Some(body) = body {
                            // The SDK falls back to "<status>: <raw body>" when the message has
                            // JSON escapes; use the parsed code and message instead.
                            if facts
                                .code
                                .as_deref()
                                .is_none_or(|c| c.parse::<u16>().is_ok())
                            {
                                facts.code = body.code.clone();
                            }
                            facts.inner_code = body.inner_error.and_then(|inner| inner.code);
                            if let Some(message) = body.message {
                                let message = one_line(&message);
                                if !message.is_empty()
                                    && !parts.iter().any(|p| p.contains(&message))
                                {
                                    parts.push(message);
                                }
                                current = e.source();
                                continue;
                            }
                        }
                    }
                    ErrorKind::Credential => facts.credential = true,
                    ErrorKind::Connection | ErrorKind::Io => facts.transport = true,
                    _ => {}
                }
            }
            let text = one_line(&e.to_string());
            let generic = GENERIC_WRAPPERS.iter().any(|g| text.starts_with(g));
            if !text.is_empty() && !generic && !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            current = e.source();
        }
        facts.message = parts.join(": ");
        facts
    }

    /// `HTTP 403 (Forbidden/ForbiddenByRbac)`-style prefix, empty without a status.
    fn status_text(&self) -> String {
        let Some(status) = self.status else {
            return String::new();
        };
        let codes: Vec<&str> = [self.code.as_deref(), self.inner_code.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if codes.is_empty() {
            format!("HTTP {} ", u16::from(status))
        } else {
            format!("HTTP {} ({}) ", u16::from(status), codes.join("/"))
        }
    }
}

/// Messages the SDK's retry policy wraps real errors in; they say nothing about the cause.
const GENERIC_WRAPPERS: &[&str] = &[
    "non-transport error occurred which will not be retried",
    "retry policy expired and the request will no longer be retried",
];

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `err` is an HTTP 404 from the vault.
pub(crate) fn is_not_found(err: &azure_core::Error) -> bool {
    let facts = Facts::of(err);
    !facts.credential && facts.status == Some(StatusCode::NotFound)
}

/// The soft-delete states Key Vault answers `409 Conflict` for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// The name is being deleted or purged (`ObjectIsBeingDeleted`, "currently being deleted"):
    /// it frees up within seconds.
    BeingDeleted,
    /// The name is deleted but recoverable (`ObjectIsDeletedButRecoverable`): it must be purged
    /// before it can be used again.
    DeletedButRecoverable,
}

/// Which soft-delete conflict `err` is, if it is one.
pub(crate) fn conflict(err: &azure_core::Error) -> Option<Conflict> {
    let facts = Facts::of(err);
    if facts.credential || facts.status != Some(StatusCode::Conflict) {
        return None;
    }
    let message = facts.message.to_ascii_lowercase();
    match facts.inner_code.as_deref() {
        Some("ObjectIsBeingDeleted") => Some(Conflict::BeingDeleted),
        Some("ObjectIsDeletedButRecoverable") => Some(Conflict::DeletedButRecoverable),
        _ if message.contains("deleted but recoverable") => Some(Conflict::DeletedButRecoverable),
        _ if message.contains("being deleted") => Some(Conflict::BeingDeleted),
        _ => None,
    }
}

/// Maps an SDK error from `what` (e.g. "reading secret p1-key") to a [`VaultError`].
/// `sign_in_hint` says what to check when Entra ID refuses the identity.
pub(crate) fn map(what: &str, err: &azure_core::Error, sign_in_hint: &str) -> VaultError {
    let facts = Facts::of(err);
    let status = facts.status.map(u16::from);
    let cause = format!("{}{}", facts.status_text(), facts.message);
    if facts.credential {
        return match status {
            Some(408 | 429 | 500..=599) => VaultError::Unavailable {
                backend: BACKEND,
                detail: format!("{what}: signing in to Entra ID failed: {cause}"),
            },
            None if facts.transport => VaultError::Unavailable {
                backend: BACKEND,
                detail: format!(
                    "{what}: cannot reach the token endpoint: {cause}{}",
                    tls_hint(&cause)
                ),
            },
            _ => VaultError::Denied {
                backend: BACKEND,
                detail: format!("{what}: signing in to Entra ID failed: {cause}; {sign_in_hint}"),
            },
        };
    }
    let detail = format!("{what}: {cause}");
    match status {
        Some(401) => VaultError::Denied {
            backend: BACKEND,
            detail: format!(
                "{detail}; the vault did not accept the token: check that the tenant of the identity is the vault's tenant"
            ),
        },
        Some(403) => VaultError::Denied {
            backend: BACKEND,
            detail: format!("{detail}; {PERMISSION_HINT}"),
        },
        Some(408 | 429 | 500..=599) => VaultError::Unavailable {
            backend: BACKEND,
            detail,
        },
        Some(_) => VaultError::Rejected {
            backend: BACKEND,
            detail,
        },
        None if facts.transport => VaultError::Unavailable {
            backend: BACKEND,
            detail: format!("{detail}{}", tls_hint(&detail)),
        },
        None => VaultError::Rejected {
            backend: BACKEND,
            detail,
        },
    }
}

/// A pointer to `ca_pem_file` when TLS verification failed.
fn tls_hint(text: &str) -> &'static str {
    if text.contains("certificate") {
        " (TLS: the server certificate is not trusted; for a private CA set ca_pem_file)"
    } else {
        ""
    }
}

/// What keymanager's identity needs at the vault.
pub(crate) const PERMISSION_HINT: &str = "keymanager's identity needs get, set, delete and purge on the vault's secrets (RBAC role \"Key Vault Secrets Officer\" or an access policy), and the vault's firewall must admit this host";

/// Hint for a refused `client_secret` sign-in.
pub(crate) const CLIENT_SECRET_HINT: &str = "check auth.tenant_id, auth.client_id and the client secret (its value, not its id; it may have expired), and authority_host";

/// Hint for a refused managed-identity sign-in.
pub(crate) const MANAGED_IDENTITY_HINT: &str = "check that this host has a managed identity (for a user-assigned one, that auth.client_id names an identity assigned to this host)";

/// A configuration problem found before any request.
pub(crate) fn config(detail: impl std::fmt::Display) -> VaultError {
    VaultError::Rejected {
        backend: BACKEND,
        detail: format!("invalid configuration: {detail}"),
    }
}

/// The shortest chain text of any error, on one line (for I/O errors while reading files).
pub(crate) fn chain_text(err: &dyn std::error::Error) -> String {
    let mut parts = vec![one_line(&err.to_string())];
    let mut current = err.source();
    while let Some(e) = current {
        let text = one_line(&e.to_string());
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}
