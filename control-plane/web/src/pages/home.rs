//! The overview page, and switching the current partition.

use std::sync::Arc;

use askama::Template;
use km_core::{AppError, AuditFilter, PageRequest};
use km_domain::Action;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::fmt;
use crate::http::{self, PARTITION_COOKIE};
use crate::pages::audit::EventRow;
use crate::pages::dashboard::{ExpiryAlert, expiry_alert};
use crate::pages::{errors, form_ok};
use crate::viewer::{self, Console, Layout, Need, PageMeta};

pub(crate) struct ChecklistItem {
    title: &'static str,
    detail: &'static str,
    href: &'static str,
    action: &'static str,
    done: bool,
}

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage {
    layout: Layout,
    totp_enrolled: bool,
    session_left: String,
    checklist: Vec<ChecklistItem>,
    recent: Option<Vec<EventRow>>,
    /// Keys of the current partition expiring or destroyed soon (partials/expiry_alert.html).
    expiry_alert: Option<ExpiryAlert>,
}

#[handler]
pub(crate) async fn show_home(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let rid = http::request_id(req);
    let me = match console.app.me(&viewer.caller, &rid).await {
        Ok(me) => me,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let totp_enrolled = me.account.as_ref().is_some_and(|a| a.totp_enrolled);
    let sso_account = me
        .account
        .as_ref()
        .is_some_and(|a| a.sso_provider.is_some());
    let now = console.app.clock().now();
    let session_left = me.session.as_ref().map_or_else(String::new, |session| {
        fmt::duration(session.absolute_expires_at.saturating_sub(now))
    });

    // SSO accounts prove their second factor at the identity provider.
    let mut checklist = Vec::new();
    if !sso_account {
        checklist.push(ChecklistItem {
            title: "Turn on two-step verification",
            detail: "A code from an authenticator app on every sign-in.",
            href: "/account/totp",
            action: "Set up",
            done: totp_enrolled,
        });
    }
    if let Some(tenant) = viewer.tenant()
        && viewer.may_here(Action::CreateUser)
    {
        let page = PageRequest {
            cursor: None,
            limit: Some(2),
        };
        let others = console
            .app
            .list_users(&viewer.caller, &rid, tenant, &page)
            .await
            .map(|page| page.items.len() > 1)
            .unwrap_or(false);
        checklist.push(ChecklistItem {
            title: "Give your team access",
            detail: "Create users and give them a role on this partition.",
            href: "/users#create-user",
            action: "Add users",
            done: others,
        });
    }
    if checklist.iter().all(|item| item.done) {
        checklist.clear();
    }

    let recent = match viewer.tenant() {
        Some(tenant) if viewer.may_here(Action::ReadAudit) => {
            let page = PageRequest {
                cursor: None,
                limit: Some(6),
            };
            match console
                .app
                .list_tenant_audit_events(
                    &viewer.caller,
                    &rid,
                    tenant,
                    AuditFilter::default(),
                    &page,
                )
                .await
            {
                Ok(page) => Some(page.items.iter().map(EventRow::from_event).collect()),
                Err(error) => {
                    tracing::warn!(%error, request_id = %rid, "recent activity unavailable");
                    None
                }
            }
        }
        _ => None,
    };

    let expiry_alert = expiry_alert(&console, &viewer, &rid).await;

    let subtitle = match &viewer.current {
        Some(partition) => format!(
            "Welcome back. You are working in {}.",
            partition.display_name
        ),
        None => "Welcome. You have no role on a partition yet.".to_owned(),
    };
    let layout = viewer.layout(
        PageMeta::new("home", "Overview", "Overview").subtitle(subtitle),
        req,
    );
    http::html(
        StatusCode::OK,
        &HomePage {
            layout,
            totp_enrolled,
            session_left,
            checklist,
            recent,
            expiry_alert,
        },
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct SwitchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    partition: String,
    #[serde(default)]
    return_to: String,
}

/// Makes another of the viewer's partitions the current one (a cookie; the partition must be
/// one the viewer may see).
#[handler]
pub(crate) async fn switch_partition(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<SwitchForm>,
) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !form_ok(&console, &viewer, req, &form.csrf) {
        return errors::app_error(&viewer, req, &AppError::CsrfInvalid);
    }
    let Some(partition) = viewer
        .partitions
        .iter()
        .find(|p| p.id.as_str() == form.partition)
    else {
        // Not one the viewer may switch to: refused, and a stale choice is forgotten.
        let refused = errors::app_error(&viewer, req, &AppError::NotFound { what: "partition" });
        return http::with_cookies(refused, &[http::clear_cookie(PARTITION_COOKIE, "/")]);
    };
    let target = http::safe_return_path(&form.return_to);
    http::redirect(
        target,
        &[http::set_cookie(
            PARTITION_COOKIE,
            partition.id.as_str(),
            "/",
            None,
        )],
    )
}
