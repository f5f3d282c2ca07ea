//! The account area: profile, roles, session, password, and TOTP enrolment with a QR code.

use std::sync::Arc;

use askama::Template;
use km_core::identity::AuthMethod;
use km_core::{AppError, Me, SecretText};
use km_domain::{Action, Colour, Role, TenantScope};
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::fmt;
use crate::http::{self, SESSION_COOKIE};
use crate::pages::{errors, form_ok};
use crate::partitions::swatch_svg;
use crate::viewer::{self, Console, Layout, Need, PageMeta, Viewer};

pub(crate) struct AccountView {
    username: String,
    display_name: String,
    created: String,
    last_login: String,
    password_changed: String,
    totp_enrolled: bool,
    /// The identity provider of an SSO account (no password or TOTP here).
    sso_provider: Option<String>,
}

pub(crate) struct BindingView {
    scope: String,
    scope_name: String,
    role: &'static str,
    summary: &'static str,
    swatch: String,
}

pub(crate) struct SessionView {
    created: String,
    method: &'static str,
    idle_expires: String,
    absolute_expires: String,
}

#[derive(Template)]
#[template(path = "pages/account.html")]
struct AccountPage {
    layout: Layout,
    account: AccountView,
    bindings: Vec<BindingView>,
    session: SessionView,
    recovery_left: usize,
    can_manage_totp: bool,
    can_change_password: bool,
    must_change_password: bool,
    min_password: usize,
    error: Option<String>,
}

fn role_summary(role: Role) -> &'static str {
    match role {
        Role::Admin => "Everything, including users, roles and settings",
        Role::User => "Create, manage and use keys and certificates",
        Role::Readonly => "Read keys, certificates and status",
    }
}

fn method_label(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Password => "Password",
        AuthMethod::PasswordTotp => "Password and authenticator code",
        AuthMethod::PasswordRecoveryCode => "Password and recovery code",
        AuthMethod::Sso => "Single sign-on",
    }
}

async fn account_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    error: Option<String>,
) -> Response {
    let rid = http::request_id(req);
    let me: Me = match console.app.me(&viewer.caller, &rid).await {
        Ok(me) => me,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let (Some(account), Some(session)) = (me.account, me.session) else {
        return errors::app_error(viewer, req, &AppError::NotFound { what: "account" });
    };
    let recovery_left = if account.totp_enrolled {
        console
            .app
            .recovery_codes_left(&viewer.caller, &rid)
            .await
            .unwrap_or(0)
    } else {
        0
    };
    let mut bindings = Vec::new();
    for binding in &account.bindings {
        let (scope, scope_name, swatch) = match &binding.scope {
            TenantScope::AllTenants => ("*".to_owned(), "All partitions".to_owned(), String::new()),
            TenantScope::Tenant(id) => {
                // A binding on a partition that is not registered (yet, or any more) shows its id.
                let (name, colour) = viewer.partitions.iter().find(|p| p.id == *id).map_or_else(
                    || (id.to_string(), Colour::default_for(id)),
                    |p| (p.display_name.to_string(), p.colour.clone()),
                );
                (id.to_string(), name, swatch_svg(&colour, 10))
            }
        };
        bindings.push(BindingView {
            scope,
            scope_name,
            role: binding.role.as_str(),
            summary: role_summary(binding.role),
            swatch,
        });
    }
    let now = console.app.clock().now();
    let layout = viewer.layout(
        PageMeta::new("account", "Account", "Account & security")
            .subtitle("Your profile, sign-in methods and sessions."),
        req,
    );
    let page = AccountPage {
        layout,
        account: AccountView {
            username: account.username.to_string(),
            display_name: account.display_name.clone().unwrap_or_default(),
            created: fmt::datetime(account.created_at),
            last_login: account
                .last_login_at
                .map_or_else(|| "never".to_owned(), fmt::datetime),
            password_changed: fmt::datetime(account.password_changed_at),
            totp_enrolled: account.totp_enrolled,
            sso_provider: account.sso_provider.clone(),
        },
        bindings,
        session: SessionView {
            created: fmt::datetime(session.created_at),
            method: method_label(session.method),
            idle_expires: format!(
                "in {} without activity",
                fmt::duration(session.idle_expires_at.saturating_sub(now))
            ),
            absolute_expires: fmt::datetime(session.absolute_expires_at),
        },
        recovery_left,
        can_manage_totp: account.sso_provider.is_none() && viewer.may(Action::ManageOwnTotp, None),
        can_change_password: account.sso_provider.is_none()
            && viewer.may(Action::ChangeOwnPassword, None),
        must_change_password: session.must_change_password,
        min_password: console.password_min_chars,
        error: error.clone(),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    http::html(status, &page)
}

#[handler]
pub(crate) async fn show_account(req: &Request, console: Data<&Arc<Console>>) -> Response {
    match viewer::viewer(&console, req, Need::Onboarding).await {
        Ok(viewer) => account_page(&console, &viewer, req, None).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

#[handler]
pub(crate) async fn change_password(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Onboarding).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !form_ok(&console, &viewer, req, &form.csrf) {
        return errors::app_error(&viewer, req, &AppError::CsrfInvalid);
    }
    if form.new != form.confirm {
        return account_page(
            &console,
            &viewer,
            req,
            Some("The two new passwords differ.".to_owned()),
        )
        .await;
    }
    let rid = http::request_id(req);
    match console
        .app
        .change_own_password(
            &viewer.caller,
            &rid,
            &SecretText::new(form.current),
            &SecretText::new(form.new),
        )
        .await
    {
        Ok(()) => http::redirect(
            "/login?done=password_changed",
            &[http::clear_cookie(SESSION_COOKIE, "/")],
        ),
        Err(
            error @ (AppError::InvalidCredentials
            | AppError::InvalidInput { .. }
            | AppError::Locked { .. }),
        ) => account_page(&console, &viewer, req, Some(error.to_string())).await,
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(crate) async fn sign_out_everywhere(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Open).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !form_ok(&console, &viewer, req, &form.csrf) {
        return errors::app_error(&viewer, req, &AppError::CsrfInvalid);
    }
    match console
        .app
        .sign_out_everywhere(&viewer.caller, &http::request_id(req))
        .await
    {
        Ok(()) => http::redirect(
            "/login?done=signed_out_everywhere",
            &[http::clear_cookie(SESSION_COOKIE, "/")],
        ),
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

// ---------------------------------------------------------------- TOTP

pub(crate) struct ScanView {
    qr_data_url: String,
    secret_base32: String,
    minutes_left: u64,
}

pub(crate) enum TotpState {
    Start,
    Scan(ScanView),
    Codes(Vec<String>),
    Enrolled(usize),
}

#[derive(Template)]
#[template(path = "pages/totp.html")]
struct TotpPage {
    layout: Layout,
    state: TotpState,
    error: Option<String>,
}

fn totp_page(viewer: &Viewer, req: &Request, state: TotpState, error: Option<String>) -> Response {
    let layout = viewer.layout(
        PageMeta::new("account", "Account", "Two-step verification")
            .subtitle("Sign-in codes from an authenticator app."),
        req,
    );
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut page = TotpPage {
        layout,
        state,
        error,
    };
    if viewer.second_factor() == Some(km_core::identity::SecondFactorState::EnrolmentRequired) {
        page.layout.notice(
            "warning",
            "Two-step verification is mandatory on this keymanager: set it up to continue.",
        );
    }
    http::html(status, &page)
}

#[handler]
pub(crate) async fn show_totp(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Onboarding).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let rid = http::request_id(req);
    let me = match console.app.me(&viewer.caller, &rid).await {
        Ok(me) => me,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let enrolled = me.account.as_ref().is_some_and(|a| a.totp_enrolled);
    let state = if enrolled {
        TotpState::Enrolled(
            console
                .app
                .recovery_codes_left(&viewer.caller, &rid)
                .await
                .unwrap_or(0),
        )
    } else {
        TotpState::Start
    };
    totp_page(&viewer, req, state, None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct TotpForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

async fn begin(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    error: Option<String>,
) -> Response {
    let rid = http::request_id(req);
    match console.app.begin_totp_enrolment(&viewer.caller, &rid).await {
        Ok(setup) => {
            let now = console.app.clock().now();
            let scan = ScanView {
                qr_data_url: setup.artifacts.qr_png_data_url.expose_secret().to_owned(),
                secret_base32: setup.artifacts.secret_base32.expose_secret().to_owned(),
                minutes_left: setup.expires_at.saturating_sub(now) / 60,
            };
            totp_page(viewer, req, TotpState::Scan(scan), error)
        }
        Err(error) => errors::app_error(viewer, req, &error),
    }
}

#[handler]
pub(crate) async fn totp_submit(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<TotpForm>,
) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Onboarding).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !form_ok(&console, &viewer, req, &form.csrf) {
        return errors::app_error(&viewer, req, &AppError::CsrfInvalid);
    }
    let rid = http::request_id(req);
    match form.step.as_str() {
        "begin" => begin(&console, &viewer, req, None).await,
        "confirm" => {
            let code = SecretText::new(form.code.replace(' ', ""));
            match console
                .app
                .confirm_totp_enrolment(&viewer.caller, &rid, &code)
                .await
            {
                Ok(codes) => {
                    let codes = codes
                        .iter()
                        .map(|code| code.expose_secret().to_owned())
                        .collect();
                    totp_page(&viewer, req, TotpState::Codes(codes), None)
                }
                // The seed is shown only once, so a wrong code starts over with a new one.
                Err(AppError::SecondFactorInvalid | AppError::Conflict { .. }) => {
                    begin(
                        &console,
                        &viewer,
                        req,
                        Some(
                            "That code did not match, or the setup expired. For your security a new key was made: scan this new QR code and enter the code it shows."
                                .to_owned(),
                        ),
                    )
                    .await
                }
                Err(error) => errors::app_error(&viewer, req, &error),
            }
        }
        "recovery" => {
            match console
                .app
                .regenerate_recovery_codes(&viewer.caller, &rid, &SecretText::new(form.password))
                .await
            {
                Ok(codes) => {
                    let codes = codes
                        .iter()
                        .map(|code| code.expose_secret().to_owned())
                        .collect();
                    totp_page(&viewer, req, TotpState::Codes(codes), None)
                }
                Err(error @ (AppError::InvalidCredentials | AppError::Locked { .. })) => {
                    let left = console
                        .app
                        .recovery_codes_left(&viewer.caller, &rid)
                        .await
                        .unwrap_or(0);
                    totp_page(
                        &viewer,
                        req,
                        TotpState::Enrolled(left),
                        Some(error.to_string()),
                    )
                }
                Err(error) => errors::app_error(&viewer, req, &error),
            }
        }
        "remove" => {
            match console
                .app
                .remove_own_totp(&viewer.caller, &rid, &SecretText::new(form.password))
                .await
            {
                Ok(()) => http::redirect("/account?done=totp_removed", &[]),
                Err(error @ (AppError::InvalidCredentials | AppError::Locked { .. })) => {
                    let left = console
                        .app
                        .recovery_codes_left(&viewer.caller, &rid)
                        .await
                        .unwrap_or(0);
                    totp_page(
                        &viewer,
                        req,
                        TotpState::Enrolled(left),
                        Some(error.to_string()),
                    )
                }
                Err(error) => errors::app_error(&viewer, req, &error),
            }
        }
        _ => http::bad_request(),
    }
}
