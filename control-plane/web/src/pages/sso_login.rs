//! Single sign-on in the browser: `GET /login/sso/{provider}` sends the person to the identity
//! provider, `GET /login/sso/{provider}/callback` brings them back and opens a session exactly as
//! a password sign-in does (the same cookies), or shows why the sign-in was refused.
//!
//! The App keeps the sign-in in progress (single use, ten minutes) under its `state`; the console
//! also binds that `state` to the browser that started it (an HttpOnly cookie on `/login/sso`), so
//! a callback URL taken from one browser cannot sign another one in (login CSRF), nor put a
//! provider's error text on our page. The callback's code and state are never logged.
//!
//! The callback is a navigation from the provider's site, so a redirect from it would not carry
//! the new `SameSite=Strict` session cookie; it answers with a page that moves on to the console
//! itself (a same-origin navigation, which does).

use std::sync::Arc;

use askama::Template;
use km_core::sso::PENDING_LOGIN_SECS;
use km_core::{AppError, RequestId};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use crate::http::{self, SSO_STATE_COOKIE};
use crate::pages::auth::{landing, sentence, session_cookies};
use crate::sso::is_provider_id;
use crate::viewer::{self, ASSET_VERSION, Console};

/// Where the browser binding of a sign-in in progress is sent.
const STATE_COOKIE_PATH: &str = "/login/sso";

/// What an expired, used or foreign callback says.
const EXPIRED: &str = "This sign-in has expired or was already used — start again.";

#[derive(Template)]
#[template(path = "pages/sso_refused.html")]
struct RefusedPage {
    asset_version: &'static str,
    status: u16,
    /// The App's stable reason (`not_in_allowed_group`, `login_expired`, ...).
    reason: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "pages/sso_continue.html")]
struct ContinuePage {
    asset_version: &'static str,
    /// A local path.
    next: String,
}

/// The "Sign-in refused" page for `error`, with `cookies` to set.
fn refused(error: &AppError, rid: &RequestId, cookies: &[String]) -> Response {
    let (status, message) = match error {
        AppError::SsoRefused { message, .. } => (StatusCode::FORBIDDEN, sentence(message)),
        AppError::LoginExpired => (StatusCode::BAD_REQUEST, EXPIRED.to_owned()),
        AppError::NotFound { .. } => (
            StatusCode::NOT_FOUND,
            "There is no such sign-in provider, or it is turned off. Choose another way to sign in."
                .to_owned(),
        ),
        AppError::Busy
        | AppError::AuditUnavailable
        | AppError::HsmUnavailable
        | AppError::VaultUnavailable { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, sentence(&error.to_string()))
        }
        AppError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Something went wrong on the server; the server log has the details (reference {rid})."
            ),
        ),
        // A disabled account, an account that is not the provider's, ...
        other => (StatusCode::FORBIDDEN, sentence(&other.to_string())),
    };
    let page = RefusedPage {
        asset_version: ASSET_VERSION,
        status: status.as_u16(),
        reason: error.reason(),
        message,
    };
    http::with_cookies(http::html(status, &page), cookies)
}

/// A `state` that can be kept in a cookie as it is (the App's are URL-safe random text).
fn plain_state(state: &str) -> bool {
    !state.is_empty()
        && state.len() <= 128
        && state
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// `GET /login/sso/{provider}`: starts a sign-in and sends the browser to the provider, which
/// sends it back to `<our origin>/login/sso/{provider}/callback`.
#[handler]
pub(crate) async fn begin(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(provider): Path<String>,
) -> Response {
    let rid = http::request_id(req);
    if !is_provider_id(&provider) {
        return refused(&AppError::NotFound { what: "provider" }, &rid, &[]);
    }
    let Some(origin) = console.origin(req) else {
        return http::bad_request();
    };
    let redirect_uri = format!("{origin}/login/sso/{provider}/callback");
    let url = match console.app.sso_begin(&provider, &redirect_uri).await {
        Ok(url) => url,
        Err(error) => return refused(&error, &rid, &[]),
    };
    let state = url
        .split_once('?')
        .and_then(|(_, query)| {
            viewer::query_value(query.split('#').next().unwrap_or(query), "state")
        })
        .filter(|state| plain_state(state));
    let Some(state) = state else {
        tracing::error!(%provider, request_id = %rid, "the authorization URL has no usable state");
        return refused(&AppError::Internal, &rid, &[]);
    };
    let binding = http::set_lax_cookie(
        SSO_STATE_COOKIE,
        &state,
        STATE_COOKIE_PATH,
        PENDING_LOGIN_SECS,
    );
    http::redirect(&url, &[binding])
}

/// `GET /login/sso/{provider}/callback?code=..&state=..` (or `?error=..`): the provider's answer.
#[handler]
pub(crate) async fn callback(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(provider): Path<String>,
) -> Response {
    let rid = http::request_id(req);
    // Whatever happens, the sign-in in progress is over for this browser.
    let done = [http::clear_cookie(SSO_STATE_COOKIE, STATE_COOKIE_PATH)];
    if !is_provider_id(&provider) {
        return refused(&AppError::NotFound { what: "provider" }, &rid, &done);
    }
    let state = viewer::query_param(req, "state").unwrap_or_default();
    let started_here = !state.is_empty()
        && http::cookie(req, SSO_STATE_COOKIE).is_some_and(|bound| bound == state);
    if !started_here {
        tracing::info!(
            %provider,
            request_id = %rid,
            "single sign-on callback without a sign-in started in this browser"
        );
        return refused(&AppError::LoginExpired, &rid, &done);
    }
    if let Some(error) = viewer::query_param(req, "error") {
        let description = viewer::query_param(req, "error_description");
        let refusal = console
            .app
            .sso_provider_error(&rid, &provider, &error, description.as_deref())
            .await;
        return refused(&refusal, &rid, &done);
    }
    let Some(code) = viewer::query_param(req, "code").filter(|code| !code.is_empty()) else {
        let incomplete = AppError::SsoRefused {
            reason: "invalid_response",
            message:
                "the identity provider's answer has no authorization code; start the sign-in again"
                    .to_owned(),
        };
        return refused(&incomplete, &rid, &done);
    };
    match console
        .app
        .sso_complete(&rid, &provider, &state, &code)
        .await
    {
        Ok(session) => {
            let mut cookies = session_cookies(&console, &session);
            cookies.extend(done);
            let page = ContinuePage {
                asset_version: ASSET_VERSION,
                next: landing(&session, "/"),
            };
            http::with_cookies(http::html(StatusCode::OK, &page), &cookies)
        }
        Err(error) => refused(&error, &rid, &done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_messages_read_as_sentences() {
        assert_eq!(sentence("not in a group; ask"), "Not in a group; ask.");
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn only_plain_states_are_kept_in_a_cookie() {
        assert!(plain_state("AbC-_09"));
        assert!(!plain_state(""));
        assert!(!plain_state("a;b"));
        assert!(!plain_state(&"a".repeat(129)));
    }
}
