//! Users and role bindings of the current partition (admins). Every list and change is an `App`
//! use case; the page only decides which controls to draw.

use std::sync::Arc;

use askama::Template;
use km_core::identity::{NewUser, UserAccount};
use km_core::{AppError, PageRequest, SecretText, UserUpdate};
use km_domain::{Action, Role, TenantId, TenantScope};
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::fmt;
use crate::http;
use crate::pages::{errors, form_ok};
use crate::viewer::{self, Console, Layout, Need, PageMeta, Viewer, initials};

/// Most users listed on one page (the app pages through them 200 at a time).
const MAX_LISTED: usize = 2_000;

pub(crate) struct UserRow {
    username: String,
    display: String,
    initials: String,
    role: String,
    via_platform: bool,
    totp: bool,
    disabled: bool,
    locked: bool,
    last_login: String,
    is_self: bool,
}

#[derive(Default)]
pub(crate) struct CreateForm {
    username: String,
    display_name: String,
    role: String,
    scope: String,
    must_change_password: bool,
}

#[derive(Template)]
#[template(path = "pages/users.html")]
struct UsersPage {
    layout: Layout,
    partition_name: String,
    users: Vec<UserRow>,
    total: usize,
    query: String,
    role_filter: String,
    roles: [Role; 3],
    can_create: bool,
    can_create_platform: bool,
    can_manage_bindings: bool,
    can_update: bool,
    can_delete: bool,
    min_password: usize,
    form: CreateForm,
    error: Option<String>,
}

fn row(user: &UserAccount, tenant: &TenantId, me: &str, now: u64) -> UserRow {
    let tenant_role = user
        .bindings
        .iter()
        .filter(|b| b.scope == TenantScope::Tenant(tenant.clone()))
        .map(|b| b.role)
        .max();
    let platform_role = user
        .bindings
        .iter()
        .filter(|b| b.scope == TenantScope::AllTenants)
        .map(|b| b.role)
        .max();
    let effective = tenant_role.max(platform_role);
    let display = user
        .display_name
        .clone()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| user.username.to_string());
    UserRow {
        username: user.username.to_string(),
        initials: initials(&display),
        display,
        role: effective.map_or("none", Role::as_str).to_owned(),
        via_platform: platform_role.is_some() && platform_role >= tenant_role,
        totp: user.totp_enrolled,
        disabled: user.disabled,
        locked: user.locked_until.is_some_and(|until| until > now),
        last_login: user
            .last_login_at
            .map_or_else(|| "never".to_owned(), fmt::datetime),
        is_self: user.username.as_str() == me,
    }
}

async fn all_users(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    tenant: &TenantId,
) -> Result<Vec<UserAccount>, AppError> {
    let rid = http::request_id(req);
    let mut users = Vec::new();
    let mut cursor = None;
    loop {
        let page = PageRequest {
            cursor,
            limit: Some(200),
        };
        let page = console
            .app
            .list_users(&viewer.caller, &rid, tenant, &page)
            .await?;
        users.extend(page.items);
        match page.next_cursor {
            Some(next) if users.len() < MAX_LISTED => cursor = Some(next),
            _ => break,
        }
    }
    Ok(users)
}

async fn users_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    form: CreateForm,
    error: Option<String>,
) -> Response {
    let Some(partition) = viewer.current.clone() else {
        return errors::forbidden(viewer, req);
    };
    let users = match all_users(console, viewer, req, &partition.id).await {
        Ok(users) => users,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let now = console.app.clock().now();
    let me = viewer.principal().subject.as_str().to_owned();
    let query = viewer::query_param(req, "q").unwrap_or_default();
    let role_filter = viewer::query_param(req, "role").unwrap_or_default();
    let needle = query.trim().to_lowercase();
    let total = users.len();
    let rows: Vec<UserRow> = users
        .iter()
        .map(|user| row(user, &partition.id, &me, now))
        .filter(|row| {
            needle.is_empty()
                || row.username.contains(&needle)
                || row.display.to_lowercase().contains(&needle)
        })
        .filter(|row| role_filter.is_empty() || row.role == role_filter)
        .collect();
    let tenant = Some(&partition.id);
    let layout = viewer.layout(
        PageMeta::new("users", "Users & roles", "Users & roles")
            .subtitle("Who can do what on this partition."),
        req,
    );
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = UsersPage {
        layout,
        partition_name: partition.display_name.to_string(),
        users: rows,
        total,
        query,
        role_filter,
        roles: [Role::Readonly, Role::User, Role::Admin],
        can_create: viewer.may(Action::CreateUser, tenant),
        can_create_platform: viewer.may(Action::ManagePlatformBindings, None),
        can_manage_bindings: viewer.may(Action::ManageRoleBindings, tenant),
        can_update: viewer.may(Action::UpdateUser, None),
        can_delete: viewer.may(Action::DeleteUser, None),
        min_password: console.password_min_chars,
        form,
        error,
    };
    http::html(status, &page)
}

#[handler]
pub(crate) async fn show_users(req: &Request, console: Data<&Arc<Console>>) -> Response {
    match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => {
            let form = CreateForm {
                role: "readonly".to_owned(),
                ..CreateForm::default()
            };
            users_page(&console, &viewer, req, form, None).await
        }
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    must_change_password: Option<String>,
}

/// A role by its name (`admin`, `user`, `readonly`).
pub(crate) fn parse_role(text: &str) -> Option<Role> {
    Role::ALL.into_iter().find(|role| role.as_str() == text)
}

/// Resolves the viewer and the current partition for a POST, checking the form's CSRF token.
async fn post_context(
    console: &Console,
    req: &Request,
    csrf: &str,
) -> Result<(Viewer, TenantId), Response> {
    let viewer = viewer::viewer(console, req, Need::Full).await?;
    if !form_ok(console, &viewer, req, csrf) {
        return Err(errors::app_error(&viewer, req, &AppError::CsrfInvalid));
    }
    let Some(tenant) = viewer.tenant().cloned() else {
        return Err(errors::forbidden(&viewer, req));
    };
    Ok((viewer, tenant))
}

#[handler]
pub(crate) async fn create_user(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<CreateUserForm>,
) -> Response {
    let (viewer, tenant) = match post_context(&console, req, &form.csrf).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let kept = CreateForm {
        username: form.username.clone(),
        display_name: form.display_name.clone(),
        role: form.role.clone(),
        scope: form.scope.clone(),
        must_change_password: form.must_change_password.is_some(),
    };
    let Some(role) = parse_role(&form.role) else {
        return users_page(
            &console,
            &viewer,
            req,
            kept,
            Some("Choose a role.".to_owned()),
        )
        .await;
    };
    let new = NewUser {
        username: form.username.clone(),
        display_name: Some(form.display_name.trim().to_owned()).filter(|name| !name.is_empty()),
        password: SecretText::new(form.password),
        role,
        must_change_password: form.must_change_password.is_some(),
    };
    let rid = http::request_id(req);
    let result = if form.scope == "*" {
        console
            .app
            .create_platform_user(&viewer.caller, &rid, new)
            .await
    } else {
        console
            .app
            .create_user(&viewer.caller, &rid, &tenant, new)
            .await
    };
    match result {
        Ok(_) => http::redirect("/users?done=user_created", &[]),
        Err(error @ (AppError::InvalidInput { .. } | AppError::Conflict { .. })) => {
            users_page(&console, &viewer, req, kept, Some(error.to_string())).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

#[handler]
pub(crate) async fn set_role(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<RoleForm>,
) -> Response {
    let (viewer, tenant) = match post_context(&console, req, &form.csrf).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let role = match form.role.as_str() {
        "none" => None,
        other => match parse_role(other) {
            Some(role) => Some(role),
            None => return http::bad_request(),
        },
    };
    match console
        .app
        .set_tenant_role(
            &viewer.caller,
            &http::request_id(req),
            &tenant,
            &form.username,
            role,
        )
        .await
    {
        Ok(_) => http::redirect("/users?done=role_changed", &[]),
        Err(error @ (AppError::InvalidInput { .. } | AppError::Conflict { .. })) => {
            users_page(
                &console,
                &viewer,
                req,
                CreateForm::default(),
                Some(error.to_string()),
            )
            .await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    disabled: String,
}

#[handler]
pub(crate) async fn set_status(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<StatusForm>,
) -> Response {
    let (viewer, _) = match post_context(&console, req, &form.csrf).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let disabled = form.disabled == "true";
    let update = UserUpdate {
        display_name: None,
        disabled: Some(disabled),
    };
    match console
        .app
        .update_user(
            &viewer.caller,
            &http::request_id(req),
            &form.username,
            update,
        )
        .await
    {
        Ok(_) if disabled => http::redirect("/users?done=user_disabled", &[]),
        Ok(_) => http::redirect("/users?done=user_enabled", &[]),
        Err(
            error @ (AppError::InvalidInput { .. }
            | AppError::Conflict { .. }
            | AppError::Forbidden {
                reason: "not_on_self",
                ..
            }),
        ) => {
            users_page(
                &console,
                &viewer,
                req,
                CreateForm::default(),
                Some(error.to_string()),
            )
            .await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
}

#[handler]
pub(crate) async fn delete_user(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let (viewer, _) = match post_context(&console, req, &form.csrf).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    match console
        .app
        .delete_user(&viewer.caller, &http::request_id(req), &form.username)
        .await
    {
        Ok(()) => http::redirect("/users?done=user_deleted", &[]),
        Err(
            error @ (AppError::Conflict { .. }
            | AppError::Forbidden {
                reason: "not_on_self",
                ..
            }),
        ) => {
            users_page(
                &console,
                &viewer,
                req,
                CreateForm::default(),
                Some(error.to_string()),
            )
            .await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}
