//! Error pages, and the one mapping from `AppError` to what the console shows: a redirect where
//! the person can fix it (sign in, confirm the second factor, enrol, change the password), an
//! error page otherwise (403, 404, 503, 500 with the request id).

use askama::Template;
use km_core::{AppError, RequestId};
use poem::http::StatusCode;
use poem::{Request, Response};

use crate::http::{self, SESSION_COOKIE};
use crate::viewer::{ASSET_VERSION, Layout, PageMeta, Viewer};

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    heading: &'static str,
    message: String,
    request_id: String,
}

#[derive(Template)]
#[template(path = "pages/error_anon.html")]
struct AnonErrorPage {
    asset_version: &'static str,
    status: u16,
    heading: &'static str,
    message: String,
}

/// The status, heading and message an error page shows for `error`.
fn describe(error: &AppError) -> (StatusCode, &'static str, String) {
    match error {
        AppError::Forbidden { .. } => (
            StatusCode::FORBIDDEN,
            "You don't have access to this page",
            "Your role on this partition does not allow it. Ask an administrator if you need access."
                .to_owned(),
        ),
        AppError::NotFound { .. } => (
            StatusCode::NOT_FOUND,
            "Not found",
            "It does not exist, or it belongs to a partition you have no role on.".to_owned(),
        ),
        AppError::CsrfInvalid => (
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload the page and submit it again.".to_owned(),
        ),
        AppError::Busy
        | AppError::AuditUnavailable
        | AppError::HsmUnavailable
        | AppError::VaultUnavailable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            error.to_string(),
        ),
        AppError::PartitionConnection { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "The partition did not accept the connection",
            error.to_string(),
        ),
        AppError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server log has the details under the reference below.".to_owned(),
        ),
        other => (StatusCode::BAD_REQUEST, "Request refused", other.to_string()),
    }
}

/// What a signed-in page answers when a use case refused.
pub(crate) fn app_error(viewer: &Viewer, req: &Request, error: &AppError) -> Response {
    match error {
        AppError::Unauthenticated { .. } => {
            return http::redirect("/login", &[http::clear_cookie(SESSION_COOKIE, "/")]);
        }
        AppError::SecondFactorRequired => return http::redirect("/login/second-factor", &[]),
        AppError::SecondFactorEnrolmentRequired => return http::redirect("/account/totp", &[]),
        AppError::PasswordChangeRequired => return http::redirect("/account#password", &[]),
        _ => {}
    }
    let (status, heading, message) = describe(error);
    let rid = http::request_id(req);
    error_page(viewer, req, status, heading, message, &rid)
}

/// A signed-in error page with the given text.
pub(crate) fn error_page(
    viewer: &Viewer,
    req: &Request,
    status: StatusCode,
    heading: &'static str,
    message: String,
    rid: &RequestId,
) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => "Access denied",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
        _ if status.is_server_error() => "Error",
        _ => "Request refused",
    };
    let layout = viewer.layout(PageMeta::new("", "Error", title), req);
    let page = ErrorPage {
        layout,
        status: status.as_u16(),
        heading,
        message,
        request_id: if status.is_server_error() {
            rid.to_string()
        } else {
            String::new()
        },
    };
    http::html(status, &page)
}

/// The 403 page for a page the viewer's role does not allow (decided before calling a use case
/// when the page has nothing to ask the app for).
pub(crate) fn forbidden(viewer: &Viewer, req: &Request) -> Response {
    app_error(
        viewer,
        req,
        &AppError::Forbidden {
            reason: "role_too_low",
            message: String::new(),
        },
    )
}

/// An error page for requests without a usable session.
pub(crate) fn anonymous_error(error: &AppError, rid: &RequestId) -> Response {
    let (status, heading, mut message) = describe(error);
    if status.is_server_error() {
        message = format!("{message} (reference {rid})");
    }
    let page = AnonErrorPage {
        asset_version: ASSET_VERSION,
        status: status.as_u16(),
        heading,
        message,
    };
    http::html(status, &page)
}

/// Pages for errors the router raises before a handler runs (unknown path, bad form, too large).
pub(crate) fn plain_error(status: StatusCode, rid: &RequestId) -> Response {
    let (heading, message) = match status {
        StatusCode::NOT_FOUND => (
            "Page not found",
            "Check the address, or go back to the dashboard.".to_owned(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Not allowed",
            "This address does not accept that kind of request.".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("Too large", "The form was too large.".to_owned()),
        status if status.is_server_error() => (
            "Something went wrong",
            format!("The server log has the details (reference {rid})."),
        ),
        _ => (
            "Request refused",
            "The form could not be read. Reload the page and try again.".to_owned(),
        ),
    };
    let page = AnonErrorPage {
        asset_version: ASSET_VERSION,
        status: status.as_u16(),
        heading,
        message,
    };
    http::html(status, &page)
}
