//! What every request goes through before and after its operation: a request id (taken from a
//! plain client `X-Request-Id` or generated, echoed on every response), a body size limit, and the
//! conversion of every framework error (unknown route, bad JSON, wrong content type, oversized
//! body) into problem+json — so no request ever gets a non-problem error body or a 5xx for bad
//! input. And the per-request authentication helper the operations call.

use std::sync::Arc;

use km_core::identity::{Caller, SecretText};
use km_core::{App, AppError, RequestId};
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::error::{
    ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};

use crate::problem::{ApiError, PROBLEM_JSON, problem, problem_response};

/// Largest request body accepted (every body of this API is a small JSON document).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The session cookie.
pub const SESSION_COOKIE: &str = "km_session";
/// The header carrying the CSRF token with cookie authentication.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The request id header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest framework error detail passed on (parser messages), so nothing large is echoed.
const MAX_DETAIL_CHARS: usize = 300;

/// The request id of `req` (set by [`guard`]).
pub(crate) fn request_id(req: &Request) -> RequestId {
    req.extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(RequestId::generate)
}

/// Wraps the whole API: request id in, body limit, problem+json for framework errors, request id
/// out.
pub(crate) async fn guard<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let rid = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(RequestId::from_client)
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(rid.clone());
    let mut response = match limit_body(&mut req, &rid).await {
        Err(refused) => refused,
        Ok(()) => match ep.call(req).await {
            Ok(output) => {
                let response = output.into_response();
                if response.status().is_client_error() || response.status().is_server_error() {
                    ensure_problem(response, &rid)
                } else {
                    response
                }
            }
            // An operation's own error (an `ApiError` problem response) passes through as is.
            Err(error) if error.is_from_response() => ensure_problem(error.into_response(), &rid),
            Err(error) => framework_error(&error, &rid),
        },
    };
    if let Ok(value) = HeaderValue::from_str(rid.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

async fn limit_body(req: &mut Request, rid: &RequestId) -> Result<(), Response> {
    let too_large = || {
        let body = problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            None,
            &format!("the request body may have at most {MAX_BODY_BYTES} bytes"),
            rid,
        );
        problem_response(StatusCode::PAYLOAD_TOO_LARGE, &body)
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = req.take_body();
    match body.into_bytes_limit(MAX_BODY_BYTES).await {
        Ok(bytes) => {
            req.set_body(bytes);
            Ok(())
        }
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(too_large()),
        Err(_) => {
            let body = problem(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                Some("unreadable_body"),
                "the request body could not be read",
                rid,
            );
            Err(problem_response(StatusCode::BAD_REQUEST, &body))
        }
    }
}

/// A framework error as problem+json with a stable code.
fn framework_error(error: &poem::Error, rid: &RequestId) -> Response {
    let status = error.status();
    let (code, reason) = if error.is::<ParseRequestPayloadError>() {
        ("invalid_input", "bad_body")
    } else if error.is::<ParseParamError>() || error.is::<ParsePathError>() {
        ("invalid_input", "bad_parameter")
    } else if error.is::<ContentTypeError>() {
        ("unsupported_media_type", "unsupported_media_type")
    } else {
        match status {
            StatusCode::NOT_FOUND => ("not_found", "no_route"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method_not_allowed"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "payload_too_large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "unsupported_media_type")
            }
            status if status.is_server_error() => ("internal", "internal"),
            _ => ("invalid_input", "bad_request"),
        }
    };
    if status.is_server_error() {
        tracing::error!(request_id = %rid, %error, "request failed in the HTTP layer");
    }
    let detail: String = error.to_string().chars().take(MAX_DETAIL_CHARS).collect();
    let body = problem(status, code, Some(reason), &detail, rid);
    problem_response(status, &body)
}

/// Any error response that is not problem+json yet (e.g. from a panic guard) becomes one.
fn ensure_problem(response: Response, rid: &RequestId) -> Response {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_JSON));
    if is_problem {
        return response;
    }
    let status = response.status();
    let (code, detail) = if status.is_server_error() {
        ("internal", "internal error")
    } else {
        ("invalid_input", "the request was refused")
    };
    problem_response(status, &problem(status, code, None, detail, rid))
}

/// The credentials a request carries.
fn credentials(req: &Request) -> Result<(Option<SecretText>, Option<SecretText>), AppError> {
    let bearer = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| AppError::InvalidToken)?;
            let (scheme, token) = text.split_once(' ').ok_or(AppError::InvalidToken)?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return Err(AppError::InvalidToken);
            }
            Some(SecretText::from(token.trim()))
        }
    };
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| SecretText::from(value.trim()));
    Ok((bearer, cookie))
}

/// Authenticates the request (bearer API token, or the session cookie); anonymous is
/// `unauthenticated`. With cookie authentication, a state-changing method must carry the
/// session's CSRF token in `X-CSRF-Token`.
pub(crate) async fn authenticate(
    app: &App,
    req: &Request,
    rid: &RequestId,
) -> Result<Caller, ApiError> {
    let result = async {
        let (bearer, cookie) = credentials(req)?;
        let caller = app
            .authenticate(bearer, cookie)
            .await?
            .ok_or(AppError::Unauthenticated { ended: None })?;
        if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            let presented = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|value| value.to_str().ok());
            app.check_csrf(&caller, presented)?;
        }
        Ok::<_, AppError>(caller)
    }
    .await;
    result.map_err(|error| ApiError::from_app(&error, rid))
}

/// `Set-Cookie` value for a new session.
pub(crate) fn session_cookie(token: &SecretText, max_age_secs: u64) -> String {
    format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_secs}",
        token.expose_secret()
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub(crate) fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}
