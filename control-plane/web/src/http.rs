//! HTTP plumbing of the console: security headers, cookies, redirects, request ids, CSRF checks
//! for anonymous forms, and the same-origin check on every POST.

use std::sync::Arc;

use askama::Template;
use km_core::{RequestId, SecretText};
use poem::http::{StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

/// The Content-Security-Policy of every console response: nothing but our own origin, no inline
/// script or style, no framing, forms only to ourselves.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The session cookie, shared with the REST API.
pub const SESSION_COOKIE: &str = "km_session";
/// The pending sign-in between password and second factor (path `/login` only).
pub const PENDING_COOKIE: &str = "km_pending";
/// Who is between password and second factor (display only; path `/login`).
pub const PENDING_USER_COOKIE: &str = "km_pending_user";
/// Binds the CSRF token of anonymous forms (setup, sign-in) to this browser.
pub const PRESESSION_COOKIE: &str = "km_presession";
/// The partition the person is working in.
pub const PARTITION_COOKIE: &str = "km_partition";
/// Binds a single sign-on in progress to the browser that started it: the `state` sent to the
/// identity provider (path `/login/sso` only; `SameSite=Lax`, because the provider's redirect
/// back is a cross-site navigation).
pub const SSO_STATE_COOKIE: &str = "km_sso_state";

/// Largest accepted request body (forms are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Value of a cookie from the request's `Cookie` headers.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// A cookie that only our pages can read and only same-site requests send.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: Option<u64>) -> String {
    cookie_text(name, value, path, max_age_secs, "Strict")
}

/// A cookie that only our pages can read, sent on same-site requests and on top-level
/// navigations from other sites (an identity provider's redirect back to us).
pub fn set_lax_cookie(name: &str, value: &str, path: &str, max_age_secs: u64) -> String {
    cookie_text(name, value, path, Some(max_age_secs), "Lax")
}

fn cookie_text(
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: Option<u64>,
    same_site: &str,
) -> String {
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; Secure; SameSite={same_site}");
    if let Some(age) = max_age_secs {
        text.push_str(&format!("; Max-Age={age}"));
    }
    text
}

/// Deletes a cookie (same name and path).
pub fn clear_cookie(name: &str, path: &str) -> String {
    format!("{name}=; Path={path}; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// A 303 redirect (after a POST, the browser GETs the target), with cookies to set.
pub fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location);
    for cookie in cookies {
        builder = builder.header(header::SET_COOKIE, cookie.as_str());
    }
    builder.finish()
}

/// Renders a template as an HTML response; a template failure is logged and becomes a plain 500
/// (templates are compile-time checked, so this is a bug, not an expected path).
pub fn html(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(error) => {
            tracing::error!(%error, "a console template failed to render");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for cookie in cookies {
        if let Ok(value) = header::HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The request id the middleware assigned (a fresh one if, impossibly, there is none).
pub fn request_id(req: &Request) -> RequestId {
    req.extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(RequestId::generate)
}

/// A fresh random value for the pre-session cookie (32 bytes, base64url).
pub fn random_token() -> Option<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether a POST comes from our own pages. Browsers say so in `Sec-Fetch-Site` (it must be
/// `same-origin`, or `none` for a user's own navigation); where they send an `Origin` other than
/// `null` (our `no-referrer` policy makes same-origin form posts say `null`), its host must be the
/// one the request was sent to. Defence in depth beside SameSite=Strict cookies and CSRF tokens.
pub fn same_origin(req: &Request) -> bool {
    if let Some(site) = req.header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match req.header(header::ORIGIN) {
        None | Some("null") => true,
        Some(origin) => {
            let Some(host) = request_host(req) else {
                return false;
            };
            let origin_host = origin
                .split_once("://")
                .map_or("", |(_, rest)| rest)
                .trim_end_matches('/');
            origin_host.eq_ignore_ascii_case(&host)
        }
    }
}

/// The host (and port) the request was sent to: its `Host` header, or the authority of an
/// HTTP/2 request. Only plain host text (letters, digits, `.-:[]`) counts.
pub fn request_host(req: &Request) -> Option<String> {
    let host = req
        .header(header::HOST)
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    plain.then_some(host)
}

/// Our own origin as the browser reached it: the request's scheme and [`request_host`] — the
/// host the same-origin check compares `Origin` with. Behind a proxy that terminates TLS, the
/// proxy's `X-Forwarded-Proto: https` makes it https (it can only ever upgrade the scheme; what
/// the origin is used for, an SSO redirect URI, is checked by the identity provider against the
/// registered one).
pub fn request_origin(req: &Request) -> Option<String> {
    let forwarded_https = req
        .header("x-forwarded-proto")
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let scheme = if forwarded_https || *req.scheme() == poem::http::uri::Scheme::HTTPS {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{}", request_host(req)?))
}

/// Only local paths are followed after sign-in or a partition switch (no open redirect).
pub fn safe_return_path(path: &str) -> &str {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.contains("://")
        && path.len() <= 512;
    if local { path } else { "/" }
}

/// Wraps the console: request id in, security headers and `X-Request-Id` out, router errors
/// (unknown path, unparsable form) rendered as pages.
pub async fn around<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let rid = req
        .header("x-request-id")
        .and_then(RequestId::from_client)
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(rid.clone());
    // Forms are small: read at most MAX_BODY_BYTES, whatever the framing (length or chunked).
    let too_large = req
        .header(header::CONTENT_LENGTH)
        .and_then(|length| length.parse::<usize>().ok())
        .is_some_and(|length| length > MAX_BODY_BYTES);
    let body = if too_large {
        Err(())
    } else {
        req.take_body()
            .into_bytes_limit(MAX_BODY_BYTES)
            .await
            .map_err(|_| ())
    };
    let outcome = match body {
        Ok(bytes) => {
            req.set_body(bytes);
            ep.call(req).await.map(IntoResponse::into_response)
        }
        Err(()) => Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE)),
    };
    let mut response = match outcome {
        Ok(response) => response,
        Err(error) => {
            let status = error.status();
            tracing::debug!(%error, %status, "console request refused by the router");
            crate::pages::errors::plain_error(status, &rid)
        }
    };
    let headers = response.headers_mut();
    let fixed = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    if let Ok(value) = header::HeaderValue::from_str(rid.as_str()) {
        headers.insert("x-request-id", value);
    }
    Ok(response)
}

/// Ensures the browser has a pre-session secret; returns it and the cookie to set when new.
pub fn presession(req: &Request) -> (Option<SecretText>, Option<String>) {
    if let Some(existing) = cookie(req, PRESESSION_COOKIE).filter(|v| v.len() <= 128) {
        return (Some(SecretText::new(existing)), None);
    }
    match random_token() {
        Some(fresh) => {
            let set = set_cookie(PRESESSION_COOKIE, &fresh, "/", None);
            (Some(SecretText::new(fresh)), Some(set))
        }
        None => (None, None),
    }
}

/// Response for a request whose body was not a form we understand.
pub fn bad_request() -> Response {
    (StatusCode::BAD_REQUEST, "bad request").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_return_path("/users?q=a"), "/users?q=a");
        assert_eq!(safe_return_path("//evil.example"), "/");
        assert_eq!(safe_return_path("https://evil.example"), "/");
        assert_eq!(safe_return_path("/\\evil.example"), "/");
        assert_eq!(safe_return_path("users"), "/");
    }

    #[test]
    fn cookies_are_strict() {
        let text = set_cookie(SESSION_COOKIE, "abc", "/", Some(60));
        assert_eq!(
            text,
            "km_session=abc; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=60"
        );
        assert!(clear_cookie(SESSION_COOKIE, "/").contains("Max-Age=0"));
        assert_eq!(
            set_lax_cookie(SSO_STATE_COOKIE, "s", "/login/sso", 600),
            "km_sso_state=s; Path=/login/sso; HttpOnly; Secure; SameSite=Lax; Max-Age=600"
        );
    }

    #[test]
    fn the_origin_is_the_scheme_and_host_the_request_was_sent_to() {
        let req = Request::builder()
            .uri_str("/login/sso/corp")
            .header(header::HOST, "127.0.0.1:8080")
            .finish();
        assert_eq!(
            request_origin(&req).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        let h2 = Request::builder()
            .uri_str("https://console.example:8443/login")
            .finish();
        assert_eq!(request_host(&h2).as_deref(), Some("console.example:8443"));
        let proxied = Request::builder()
            .header(header::HOST, "kms.example")
            .header("x-forwarded-proto", "https")
            .finish();
        assert_eq!(
            request_origin(&proxied).as_deref(),
            Some("https://kms.example")
        );
        let forged = Request::builder()
            .header(header::HOST, "evil.example/path?x")
            .finish();
        assert_eq!(request_origin(&forged), None);
    }

    #[test]
    fn cookie_header_is_parsed() {
        let req = Request::builder()
            .header(header::COOKIE, "a=1; km_session=tok; b=2")
            .finish();
        assert_eq!(cookie(&req, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&req, "missing"), None);
    }

    #[test]
    fn cross_origin_posts_are_detected() {
        let ok = Request::builder()
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "http://127.0.0.1:8080")
            .finish();
        assert!(same_origin(&ok));
        let bad = Request::builder()
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "http://evil.example")
            .finish();
        assert!(!same_origin(&bad));
        let none = Request::builder().header(header::HOST, "h").finish();
        assert!(same_origin(&none));
        let null = Request::builder()
            .header(header::HOST, "h")
            .header(header::ORIGIN, "null")
            .header("sec-fetch-site", "same-origin")
            .finish();
        assert!(same_origin(&null));
        let cross_site = Request::builder()
            .header(header::HOST, "h")
            .header(header::ORIGIN, "null")
            .header("sec-fetch-site", "cross-site")
            .finish();
        assert!(!same_origin(&cross_site));
    }
}
