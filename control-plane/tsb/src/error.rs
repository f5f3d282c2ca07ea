//! The SDK's error type. Callers branch on the TSB's numeric `errorCode` (the stable part of the
//! TSB error contract), so it is kept as a number next to the HTTP status.

use serde::Deserialize;

/// TSB error codes that callers commonly branch on (see the reference's error catalogue).
pub mod codes {
    /// `res.error.input.invalid.signature`: an approver signature did not verify.
    pub const INPUT_INVALID_SIGNATURE: u32 = 403;
    /// `res.error.input.timestamp.off`: approver timestamp outside the accepted window.
    pub const INPUT_TIMESTAMP_OFF: u32 = 404;
    /// `res.error.key.already.existing`.
    pub const KEY_ALREADY_EXISTING: u32 = 608;
    /// `res.error.invalid.key.name`.
    pub const INVALID_KEY_NAME: u32 = 610;
    /// `res.error.operation.forbidden.for.key`.
    pub const OPERATION_FORBIDDEN_FOR_KEY: u32 = 614;
    /// `res.error.data.object.already.existing` (create-if-absent lost the race).
    pub const DATA_OBJECT_ALREADY_EXISTING: u32 = 615;
    /// `res.error.data.object.invalid.value`.
    pub const DATA_OBJECT_INVALID_VALUE: u32 = 616;
    /// `res.error.key.password.mismatch`.
    pub const KEY_PASSWORD_MISMATCH: u32 = 620;
    /// `res.error.invalid.api.key`: triggers API-key rollover.
    pub const INVALID_API_KEY: u32 = 631;
    /// `res.error.approver.already.existing`.
    pub const APPROVER_ALREADY_EXISTING: u32 = 632;
    /// `res.error.key.not.existent`.
    pub const KEY_NOT_EXISTENT: u32 = 650;
    /// `res.error.request.not.existent`.
    pub const REQUEST_NOT_EXISTENT: u32 = 651;
    /// `res.error.task.not.existent`.
    pub const TASK_NOT_EXISTENT: u32 = 652;
    /// `res.error.data.object.not.existent`.
    pub const DATA_OBJECT_NOT_EXISTENT: u32 = 653;
    /// `res.error.approver.not.existent`.
    pub const APPROVER_NOT_EXISTENT: u32 = 654;
    /// `res.error.in.hsm`: the HSM refused or failed the operation.
    pub const IN_HSM: u32 = 701;
}

/// Everything that can go wrong talking to a TSB.
///
/// Never carries credentials: API keys, bearer tokens and passwords are not part of any variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsbError {
    /// The TSB answered with a non-success HTTP status. `error_code`/`reason` come from the
    /// TSB's JSON error body `{"errorCode", "reason", "message"}` when it had one.
    #[error("TSB error (HTTP {status}, code {}, {}): {message}",
        error_code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
        reason.as_deref().unwrap_or("no reason"))]
    Api {
        /// HTTP status code.
        status: u16,
        /// The TSB `errorCode`, if the body was a TSB error object.
        error_code: Option<u32>,
        /// The TSB `reason` (e.g. `res.error.key.not.existent`).
        reason: Option<String>,
        /// The TSB `message`, or (truncated) raw body text when the body was not JSON.
        message: String,
    },
    /// The call did not finish within the configured timeout.
    #[error("TSB call timed out: {0}")]
    Timeout(String),
    /// The TCP connection could not be established.
    #[error("could not connect to the TSB: {0}")]
    Connect(String),
    /// TLS handshake or certificate verification failed.
    #[error("TLS error talking to the TSB: {0}")]
    Tls(String),
    /// Any other transport-level failure (connection reset, HTTP protocol error, ...).
    #[error("transport error talking to the TSB: {0}")]
    Transport(String),
    /// The client was configured wrongly (bad URL, unreadable PEM, ...).
    #[error("invalid TSB client configuration: {0}")]
    Config(String),
    /// The TSB answered with success but the body did not have the expected shape.
    #[error("could not decode TSB response: {0}")]
    Decode(String),
    /// An argument was rejected before anything was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A local cryptographic operation (approver key parsing or signing) failed.
    #[error("approver key error: {0}")]
    Crypto(String),
    /// [`crate::TsbClient::wait_for_request`] gave up before the request reached a final state.
    #[error("request {id} did not reach a final state in time (last status {last_status})")]
    WaitTimeout {
        /// The request id that was polled.
        id: String,
        /// The last status seen.
        last_status: String,
    },
}

/// The JSON error body every TSB error response carries.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    error_code: Option<u32>,
    reason: Option<String>,
    message: Option<String>,
}

/// Longest raw (non-JSON) body text kept in an error message.
const MAX_RAW_BODY: usize = 512;

impl TsbError {
    /// Builds the [`TsbError::Api`] variant from an HTTP status and response body, falling back
    /// to the raw text (truncated) when the body is not a TSB error object.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body)
            && (parsed.error_code.is_some() || parsed.reason.is_some() || parsed.message.is_some())
        {
            return TsbError::Api {
                status,
                error_code: parsed.error_code,
                reason: parsed.reason,
                message: parsed.message.unwrap_or_default(),
            };
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            format!("HTTP {status} with empty body")
        } else if text.chars().count() > MAX_RAW_BODY {
            let cut: String = text.chars().take(MAX_RAW_BODY).collect();
            format!("{cut}…")
        } else {
            text.to_owned()
        };
        TsbError::Api {
            status,
            error_code: None,
            reason: None,
            message,
        }
    }

    /// The TSB `errorCode`, if this is an API error that carried one.
    pub fn tsb_code(&self) -> Option<u32> {
        match self {
            TsbError::Api { error_code, .. } => *error_code,
            _ => None,
        }
    }

    /// The HTTP status, if the TSB answered at all.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            TsbError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The TSB `reason` string, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            TsbError::Api { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }

    /// True for "does not exist" answers: HTTP 404 or codes 650–654 (key, request, task, data
    /// object, approver not existent).
    pub fn is_not_found(&self) -> bool {
        match self {
            TsbError::Api {
                status, error_code, ..
            } => *status == 404 || matches!(error_code, Some(650..=654)),
            _ => false,
        }
    }

    /// True for "already exists" answers (608 key, 615 data object, 632 approver) — what a
    /// create-if-absent caller needs to detect that it lost.
    pub fn is_already_existing(&self) -> bool {
        matches!(
            self.tsb_code(),
            Some(codes::KEY_ALREADY_EXISTING)
                | Some(codes::DATA_OBJECT_ALREADY_EXISTING)
                | Some(codes::APPROVER_ALREADY_EXISTING)
        )
    }

    /// True when the TSB rejected the credentials (HTTP 401/403, or codes 631/406/617/400).
    pub fn is_unauthorized(&self) -> bool {
        match self {
            TsbError::Api {
                status, error_code, ..
            } => matches!(status, 401 | 403) || matches!(error_code, Some(400 | 406 | 617 | 631)),
            _ => false,
        }
    }

    /// True for failures where the TSB was not reached or did not answer (timeouts, connect,
    /// TLS, transport) — the cases where a caller may consider the TSB unavailable.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            TsbError::Timeout(_) | TsbError::Connect(_) | TsbError::Tls(_) | TsbError::Transport(_)
        ) || matches!(
            self,
            TsbError::Api {
                status: 502..=504,
                ..
            }
        )
    }

    /// Maps a reqwest error into the SDK error, classifying TLS failures by walking the
    /// source chain for a rustls error. Only texts without credentials are kept (reqwest's
    /// messages name the URL, never headers).
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        let text = error_chain_text(&err);
        if is_tls_error(&err) {
            TsbError::Tls(text)
        } else if err.is_timeout() {
            TsbError::Timeout(text)
        } else if err.is_connect() {
            TsbError::Connect(text)
        } else if err.is_builder() {
            TsbError::Config(text)
        } else if err.is_decode() {
            TsbError::Decode(text)
        } else {
            TsbError::Transport(text)
        }
    }
}

fn error_chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn is_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        // io::Error hides its payload from `source()` (it returns the payload's source), and
        // TLS errors arrive as io::Error(io::Error(rustls::Error)): descend into the payload.
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}
