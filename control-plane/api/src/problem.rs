//! Errors as `application/problem+json` (RFC 9457) with a stable `code`, and the ONE exhaustive
//! mapping from the app layer's [`AppError`] to an HTTP status ([`status_of`]). 5xx answers never
//! carry internals: their detail is a fixed text, and the cause is in the server log under the
//! request id.

use km_core::{AppError, RequestId};
use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error body.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` plus the `code`).
    #[oai(rename = "type")]
    pub problem_type: String,
    /// Short summary of the status.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine-readable code (e.g. `forbidden`, `not_found`, `invalid_input`).
    pub code: String,
    /// A more specific stable code, when there is one (e.g. `user_exists`, `role_too_low`).
    pub reason: Option<String>,
    /// What happened, for humans.
    pub detail: String,
    /// The request id (also in `X-Request-Id`); quote it when reporting a problem.
    pub request_id: String,
}

/// Every error response of the API.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Malformed or invalid input.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Not authenticated, or the credential is invalid.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// Authenticated but not allowed (or a second factor / password change is due).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource (or one the caller may not know of).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Contradicts the current state.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// Well-formed, but a system it names refused it (a partition's TSB rejected the
    /// credentials or could not be reached); the detail carries that system's error.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many failed sign-ins: the account is locked for a while.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(
        Json<Problem>,
        /// Seconds until a retry can succeed.
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
    /// Internal error (details only in the server log).
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The HSM or the audit log is unavailable, or the service is busy; retry later.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(
        Json<Problem>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
}

/// The HTTP status of every [`AppError`]: the one mapping, exhaustive by construction (a new
/// variant does not compile until it has a status here).
pub fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        AppError::Unauthenticated { .. }
        | AppError::InvalidToken
        | AppError::InvalidCredentials
        | AppError::SecondFactorInvalid
        | AppError::LoginExpired => StatusCode::UNAUTHORIZED,
        AppError::CsrfInvalid
        | AppError::SecondFactorRequired
        | AppError::SecondFactorEnrolmentRequired
        | AppError::PasswordChangeRequired
        | AppError::AccountDisabled
        | AppError::Forbidden { .. }
        | AppError::SetupTokenInvalid
        | AppError::SsoRefused { .. } => StatusCode::FORBIDDEN,
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::Conflict { .. } | AppError::SetupAlreadyComplete => StatusCode::CONFLICT,
        AppError::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        AppError::PartitionConnection { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Busy
        | AppError::AuditUnavailable
        | AppError::HsmUnavailable
        | AppError::VaultUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Builds a problem body. For 5xx the detail is replaced by a fixed text.
pub fn problem(
    status: StatusCode,
    code: &str,
    reason: Option<&str>,
    detail: &str,
    rid: &RequestId,
) -> Problem {
    let detail = if status.is_server_error() {
        match status {
            StatusCode::SERVICE_UNAVAILABLE => detail.to_owned(),
            _ => "internal error; the server log has the details under this request id".to_owned(),
        }
    } else {
        detail.to_owned()
    };
    Problem {
        problem_type: format!("about:blank#{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        code: code.to_owned(),
        reason: reason.filter(|reason| *reason != code).map(str::to_owned),
        detail,
        request_id: rid.to_string(),
    }
}

impl ApiError {
    /// The response for an app-layer error.
    pub fn from_app(error: &AppError, rid: &RequestId) -> Self {
        let status = status_of(error);
        if status.is_server_error() {
            tracing::warn!(request_id = %rid, code = error.code(), "request failed: {error}");
        }
        let body = problem(
            status,
            error.code(),
            Some(error.reason()),
            &error.to_string(),
            rid,
        );
        Self::with_status(status, body, error.retry_after_secs())
    }

    /// An error of the HTTP layer itself (bad JSON, unknown route, ...) with an API code.
    pub fn with_status(status: StatusCode, body: Problem, retry_after: Option<u64>) -> Self {
        let body = Json(body);
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized(body),
            StatusCode::FORBIDDEN => Self::Forbidden(body),
            StatusCode::NOT_FOUND => Self::NotFound(body),
            StatusCode::CONFLICT => Self::Conflict(body),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(body),
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests(body, retry_after),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(body, retry_after),
            status if status.is_server_error() => Self::Internal(body),
            _ => Self::BadRequest(body),
        }
    }
}

/// A problem response for any status (used for framework errors whose status is not in
/// [`ApiError`], such as 405, 413 and 415).
pub fn problem_response(status: StatusCode, body: &Problem) -> poem::Response {
    let json = serde_json::json!({
        "type": body.problem_type,
        "title": body.title,
        "status": body.status,
        "code": body.code,
        "reason": body.reason,
        "detail": body.detail,
        "request_id": body.request_id,
    });
    poem::Response::builder()
        .status(status)
        .content_type(PROBLEM_JSON)
        .body(json.to_string())
}
