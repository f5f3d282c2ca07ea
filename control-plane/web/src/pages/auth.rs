//! First-run setup, sign-in (password, then the second factor), re-verification and sign-out.
//!
//! Anonymous forms carry a CSRF token bound to a random `km_presession` cookie (HMAC'd by the
//! identity service, checked in constant time), on top of SameSite=Strict cookies and the origin
//! check. The pending sign-in between password and code lives in an HttpOnly cookie scoped to
//! `/login`.

use std::sync::Arc;

use askama::Template;
use km_core::identity::{LoginOutcome, NewSession, PendingLogin, SecondFactor, SecondFactorState};
use km_core::{AppError, CompleteSetup, LoginOptions, SecretText, Timestamp};
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::http::{self, PENDING_COOKIE, PENDING_USER_COOKIE, PRESESSION_COOKIE, SESSION_COOKIE};
use crate::pages::errors;
use crate::viewer::{self, ASSET_VERSION, Console, Need};

#[derive(Template)]
#[template(path = "pages/setup.html")]
struct SetupPage {
    asset_version: &'static str,
    csrf: String,
    error: Option<String>,
    username: String,
    display_name: String,
    min_password: usize,
}

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage {
    asset_version: &'static str,
    csrf: String,
    error: Option<String>,
    info: Option<String>,
    username: String,
    setup_complete: bool,
    /// Password sign-in is offered to everybody; otherwise only as the administrators'
    /// break-glass, folded away.
    local_login: bool,
    /// The enabled identity providers: (id, display name).
    providers: Vec<(String, String)>,
}

impl LoginPage {
    /// Whether the folded break-glass form starts open (after a refused attempt).
    fn break_glass_open(&self) -> bool {
        self.error.is_some() || !self.username.is_empty()
    }
}

#[derive(Template)]
#[template(path = "pages/second_factor.html")]
struct SecondFactorPage {
    asset_version: &'static str,
    csrf: String,
    error: Option<String>,
    reverify: bool,
    username: String,
}

/// The CSRF token of an anonymous form and the pre-session cookie to set, if new.
fn anonymous_csrf(console: &Console, req: &Request) -> (String, Vec<String>) {
    let (secret, set) = http::presession(req);
    let csrf = secret
        .map(|secret| console.app.identity().sessions.csrf_token(&secret))
        .unwrap_or_default();
    (csrf, set.into_iter().collect())
}

/// Checks an anonymous form: same origin, and a CSRF token matching the pre-session cookie.
fn anonymous_form_ok(console: &Console, req: &Request, presented: &str) -> bool {
    if !http::same_origin(req) {
        return false;
    }
    let Some(secret) = http::cookie(req, PRESESSION_COOKIE) else {
        return false;
    };
    console
        .app
        .identity()
        .sessions
        .verify_csrf(&SecretText::new(secret), presented.trim())
}

fn csrf_refused(req: &Request) -> Response {
    errors::anonymous_error(&AppError::CsrfInvalid, &http::request_id(req))
}

/// Seconds from now until `at` (for cookie lifetimes), at least one.
fn seconds_until(console: &Console, at: Timestamp) -> u64 {
    at.saturating_sub(console.app.clock().now()).max(1)
}

/// The cookies that start a session.
pub(crate) fn session_cookies(console: &Console, session: &NewSession) -> Vec<String> {
    vec![
        http::set_cookie(
            SESSION_COOKIE,
            session.token.expose_secret(),
            "/",
            Some(seconds_until(console, session.absolute_expires_at)),
        ),
        http::clear_cookie(PENDING_COOKIE, "/login"),
        http::clear_cookie(PENDING_USER_COOKIE, "/login"),
    ]
}

/// The cookies that carry a pending sign-in to the second-factor page.
fn pending_cookies(console: &Console, pending: &PendingLogin) -> Vec<String> {
    let max_age = Some(seconds_until(console, pending.expires_at));
    vec![
        http::set_cookie(
            PENDING_COOKIE,
            pending.token.expose_secret(),
            "/login",
            max_age,
        ),
        http::set_cookie(
            PENDING_USER_COOKIE,
            pending.username.as_str(),
            "/login",
            max_age,
        ),
    ]
}

/// The username of the pending sign-in, for display; only a valid username is shown.
fn pending_username(req: &Request) -> String {
    http::cookie(req, PENDING_USER_COOKIE)
        .and_then(|name| km_core::identity::parse_username(&name).ok())
        .map(|name| name.to_string())
        .unwrap_or_default()
}

/// Where a fresh session goes first: enrolment when it is mandatory and missing, the password
/// page when an administrator reset it, otherwise `next`.
pub(crate) fn landing(session: &NewSession, next: &str) -> String {
    if session.second_factor == SecondFactorState::EnrolmentRequired {
        "/account/totp".to_owned()
    } else if session.must_change_password {
        "/account#password".to_owned()
    } else {
        next.to_owned()
    }
}

/// The message shown on the form for a refused sign-in or setup step.
fn form_message(error: &AppError) -> String {
    match error {
        AppError::Internal => {
            "Something went wrong on the server; try again, or check the server log.".to_owned()
        }
        other => other.to_string(),
    }
}

/// `text` as a sentence: a capital first letter and a full stop (the App's messages are written
/// to follow a colon).
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.trim_end().chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

// ---------------------------------------------------------------- setup

#[derive(Debug, Deserialize)]
pub(crate) struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn setup_complete(console: &Console) -> Result<bool, AppError> {
    Ok(console.app.setup_status().await?.complete)
}

#[handler]
pub(crate) async fn setup_form(req: &Request, console: Data<&Arc<Console>>) -> Response {
    match setup_complete(&console).await {
        Ok(true) => return http::redirect("/login", &[]),
        Ok(false) => {}
        Err(error) => return errors::anonymous_error(&error, &http::request_id(req)),
    }
    let (csrf, cookies) = anonymous_csrf(&console, req);
    let page = SetupPage {
        asset_version: ASSET_VERSION,
        csrf,
        error: None,
        username: String::new(),
        display_name: String::new(),
        min_password: console.password_min_chars,
    };
    http::with_cookies(http::html(StatusCode::OK, &page), &cookies)
}

#[handler]
pub(crate) async fn setup_submit(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<SetupForm>,
) -> Response {
    if !anonymous_form_ok(&console, req, &form.csrf) {
        return csrf_refused(req);
    }
    let rid = http::request_id(req);
    let again = |error: String| {
        let (csrf, cookies) = anonymous_csrf(&console, req);
        let page = SetupPage {
            asset_version: ASSET_VERSION,
            csrf,
            error: Some(error),
            username: form.username.clone(),
            display_name: form.display_name.clone(),
            min_password: console.password_min_chars,
        };
        http::with_cookies(
            http::html(StatusCode::UNPROCESSABLE_ENTITY, &page),
            &cookies,
        )
    };
    if form.password != form.password_confirm {
        return again("The two passwords differ.".to_owned());
    }
    let display_name = Some(form.display_name.trim().to_owned()).filter(|name| !name.is_empty());
    let password = SecretText::new(form.password.clone());
    let request = CompleteSetup {
        setup_token: SecretText::new(form.token.trim().to_owned()),
        username: form.username.clone(),
        password: password.clone(),
        display_name,
    };
    match console.app.complete_setup(&rid, request).await {
        Ok(_) => {}
        Err(AppError::SetupAlreadyComplete) => {
            return http::redirect("/login", &[]);
        }
        Err(error) => return again(form_message(&error)),
    }
    // Sign the new administrator in straight away, through the ordinary sign-in use case.
    match console
        .app
        .login_password(&rid, &form.username, &password)
        .await
    {
        Ok(LoginOutcome::SignedIn(session)) => http::redirect(
            "/account/totp?done=setup",
            &session_cookies(&console, &session),
        ),
        Ok(LoginOutcome::SecondFactorRequired(pending)) => {
            http::redirect("/login/second-factor", &pending_cookies(&console, &pending))
        }
        Err(_) => http::redirect("/login", &[]),
    }
}

// ---------------------------------------------------------------- sign-in

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

fn ended_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "session_idle" => "You were signed out after a period of inactivity.",
        "session_expired" => "Your session reached its maximum lifetime. Sign in again.",
        "session_revoked" => {
            "Your session was ended (password or role change, or sign-out everywhere)."
        }
        "session_account_gone" => "Your account is no longer available.",
        "session_unknown" => "Your session has ended. Sign in again.",
        _ => return None,
    })
}

fn done_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "signed_out" => "You are signed out.",
        "password_changed" => "Password changed. Sign in with your new password.",
        "signed_out_everywhere" => "Every session of your account has ended.",
        "login_expired" => "The sign-in took too long. Enter your password again.",
        _ => return None,
    })
}

#[handler]
pub(crate) async fn login_form(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let complete = match setup_complete(&console).await {
        Ok(complete) => complete,
        Err(error) => return errors::anonymous_error(&error, &http::request_id(req)),
    };
    if !complete {
        return http::redirect("/setup", &[]);
    }
    // Already signed in: go to the dashboard.
    if let Some(token) = viewer::session_token(req)
        && let Ok(Some(_)) = console.app.authenticate(None, Some(token)).await
    {
        return http::redirect("/", &[]);
    }
    let info = viewer::query_param(req, "ended")
        .and_then(|code| ended_message(&code))
        .or_else(|| viewer::query_param(req, "done").and_then(|code| done_message(&code)))
        .map(str::to_owned);
    login_page(&console, req, StatusCode::OK, None, info, String::new()).await
}

/// The sign-in page: the identity providers' buttons and the password form (folded away as the
/// administrators' break-glass when password sign-in is turned off).
async fn login_page(
    console: &Console,
    req: &Request,
    status: StatusCode,
    error: Option<String>,
    info: Option<String>,
    username: String,
) -> Response {
    let options = match console.app.login_options().await {
        Ok(options) => options,
        Err(error) => {
            // The password form still works for whoever may use it; the App decides.
            tracing::warn!(%error, "sign-in options unavailable; offering the password form");
            LoginOptions {
                local_login: true,
                providers: Vec::new(),
            }
        }
    };
    let (csrf, cookies) = anonymous_csrf(console, req);
    let page = LoginPage {
        asset_version: ASSET_VERSION,
        csrf,
        error,
        info,
        username,
        setup_complete: true,
        local_login: options.local_login,
        providers: options.providers,
    };
    http::with_cookies(http::html(status, &page), &cookies)
}

#[handler]
pub(crate) async fn login_submit(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<LoginForm>,
) -> Response {
    if !anonymous_form_ok(&console, req, &form.csrf) {
        return csrf_refused(req);
    }
    let rid = http::request_id(req);
    let password = SecretText::new(form.password);
    match console
        .app
        .login_password(&rid, &form.username, &password)
        .await
    {
        Ok(LoginOutcome::SignedIn(session)) => http::redirect(
            &landing(&session, "/"),
            &session_cookies(&console, &session),
        ),
        Ok(LoginOutcome::SecondFactorRequired(pending)) => {
            http::redirect("/login/second-factor", &pending_cookies(&console, &pending))
        }
        Err(error) => {
            let status = match error {
                AppError::Busy | AppError::AuditUnavailable | AppError::HsmUnavailable => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                // Password sign-in is turned off (local_login_disabled).
                AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            let message = Some(form_message(&error));
            login_page(&console, req, status, message, None, form.username).await
        }
    }
}

// ---------------------------------------------------------------- second factor

#[derive(Debug, Deserialize)]
pub(crate) struct SecondFactorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
}

impl SecondFactorForm {
    fn factor(&self) -> SecondFactor {
        if self.code.trim().is_empty() && !self.recovery_code.trim().is_empty() {
            SecondFactor::RecoveryCode(SecretText::new(self.recovery_code.trim().to_owned()))
        } else {
            SecondFactor::Totp(SecretText::new(self.code.replace(' ', "")))
        }
    }
}

fn pending_token(req: &Request) -> Option<SecretText> {
    http::cookie(req, PENDING_COOKIE)
        .filter(|token| token.len() <= 256)
        .map(SecretText::new)
}

#[handler]
pub(crate) async fn second_factor_form(req: &Request, console: Data<&Arc<Console>>) -> Response {
    if pending_token(req).is_some() {
        let (csrf, cookies) = anonymous_csrf(&console, req);
        let page = SecondFactorPage {
            asset_version: ASSET_VERSION,
            csrf,
            error: None,
            reverify: false,
            username: pending_username(req),
        };
        return http::with_cookies(http::html(StatusCode::OK, &page), &cookies);
    }
    // A signed-in session whose second factor is due for re-verification.
    match viewer::viewer(&console, req, Need::Open).await {
        Ok(viewer) => {
            let due = matches!(
                viewer.second_factor(),
                Some(SecondFactorState::ReverificationDue { .. })
            );
            if !due {
                return http::redirect("/", &[]);
            }
            let page = SecondFactorPage {
                asset_version: ASSET_VERSION,
                csrf: viewer.csrf.clone(),
                error: None,
                reverify: true,
                username: viewer.principal().subject.to_string(),
            };
            http::html(StatusCode::OK, &page)
        }
        Err(response) => response,
    }
}

#[handler]
pub(crate) async fn second_factor_submit(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<SecondFactorForm>,
) -> Response {
    let rid = http::request_id(req);
    if let Some(pending) = pending_token(req) {
        if !anonymous_form_ok(&console, req, &form.csrf) {
            return csrf_refused(req);
        }
        return match console
            .app
            .login_second_factor(&rid, &pending, form.factor())
            .await
        {
            Ok(session) => http::redirect(
                &landing(&session, "/"),
                &session_cookies(&console, &session),
            ),
            Err(AppError::LoginExpired) => http::redirect(
                "/login?done=login_expired",
                &[
                    http::clear_cookie(PENDING_COOKIE, "/login"),
                    http::clear_cookie(PENDING_USER_COOKIE, "/login"),
                ],
            ),
            Err(error) => {
                let (csrf, cookies) = anonymous_csrf(&console, req);
                let page = SecondFactorPage {
                    asset_version: ASSET_VERSION,
                    csrf,
                    error: Some(form_message(&error)),
                    reverify: false,
                    username: pending_username(req),
                };
                http::with_cookies(http::html(StatusCode::UNAUTHORIZED, &page), &cookies)
            }
        };
    }
    let viewer = match viewer::viewer(&console, req, Need::Open).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !http::same_origin(req)
        || console
            .app
            .check_csrf(&viewer.caller, Some(&form.csrf))
            .is_err()
    {
        return errors::app_error(&viewer, req, &AppError::CsrfInvalid);
    }
    match console
        .app
        .reverify_second_factor(&viewer.caller, &rid, form.factor())
        .await
    {
        Ok(_) => http::redirect("/", &[]),
        Err(error @ (AppError::SecondFactorInvalid | AppError::Locked { .. })) => {
            let page = SecondFactorPage {
                asset_version: ASSET_VERSION,
                csrf: viewer.csrf.clone(),
                error: Some(form_message(&error)),
                reverify: true,
                username: viewer.principal().subject.to_string(),
            };
            http::html(StatusCode::UNAUTHORIZED, &page)
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// "Cancel" on the code page: abandons the pending sign-in, or signs out a session that owes
/// its re-verification.
#[handler]
pub(crate) async fn login_cancel(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(pending) = pending_token(req) {
        if !anonymous_form_ok(&console, req, &form.csrf) {
            return csrf_refused(req);
        }
        if let Err(error) = console.app.cancel_login(&pending).await {
            tracing::warn!(%error, "could not cancel a pending sign-in");
        }
        return http::redirect(
            "/login",
            &[
                http::clear_cookie(PENDING_COOKIE, "/login"),
                http::clear_cookie(PENDING_USER_COOKIE, "/login"),
            ],
        );
    }
    logout_with(&console, req, &form.csrf).await
}

// ---------------------------------------------------------------- sign-out

#[derive(Template)]
#[template(path = "pages/confirm_logout.html")]
struct ConfirmLogoutPage {
    layout: crate::viewer::Layout,
}

#[handler]
pub(crate) async fn logout_form(req: &Request, console: Data<&Arc<Console>>) -> Response {
    match viewer::viewer(&console, req, Need::Open).await {
        Ok(viewer) => {
            let layout =
                viewer.layout(crate::viewer::PageMeta::new("", "Account", "Sign out"), req);
            http::html(StatusCode::OK, &ConfirmLogoutPage { layout })
        }
        Err(_) => http::redirect("/login", &[]),
    }
}

#[handler]
pub(crate) async fn logout_submit(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    logout_with(&console, req, &form.csrf).await
}

async fn logout_with(console: &Console, req: &Request, csrf: &str) -> Response {
    let viewer = match viewer::viewer(console, req, Need::Open).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !http::same_origin(req) || console.app.check_csrf(&viewer.caller, Some(csrf)).is_err() {
        return errors::app_error(&viewer, req, &AppError::CsrfInvalid);
    }
    let rid = http::request_id(req);
    if let Err(error) = console.app.logout(&viewer.caller, &rid).await {
        tracing::warn!(%error, request_id = %rid, "sign-out failed; clearing the cookie anyway");
    }
    http::redirect(
        "/login?done=signed_out",
        &[http::clear_cookie(SESSION_COOKIE, "/")],
    )
}
