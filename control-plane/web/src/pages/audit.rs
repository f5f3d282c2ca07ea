//! The audit viewer: the current partition's events (or, for platform readers who ask, the whole
//! log), newest first, with filters and paging by sequence number.

use std::sync::Arc;

use askama::Template;
use km_core::{AuditFilter, PageRequest};
use km_domain::{Action, AuditEvent, Outcome};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::fmt;
use crate::http;
use crate::pages::errors;
use crate::viewer::{self, Console, Layout, Need, PageMeta};

/// Events per page.
const PAGE_SIZE: u32 = 50;

/// One event as a table row.
pub(crate) struct EventRow {
    pub seq: u64,
    pub date: String,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub phase: String,
    pub target: String,
    pub tenant: String,
    pub outcome: &'static str,
    pub outcome_class: &'static str,
    /// The error code of a failed result, or the reason code of a denial.
    pub why: String,
}

impl EventRow {
    pub(crate) fn from_event(event: &AuditEvent) -> Self {
        let (date, time) = fmt::date_and_time(event.time);
        // `operation` names the use case when the action is a coarser permission.
        let action = event
            .details
            .get(km_core::app::OPERATION_DETAIL)
            .cloned()
            .unwrap_or_else(|| event.action.clone());
        Self {
            seq: event.seq,
            date,
            time,
            actor: event.actor.clone(),
            action,
            phase: event
                .details
                .get(km_core::audit::PHASE_DETAIL)
                .cloned()
                .unwrap_or_default(),
            target: event.target.clone().unwrap_or_default(),
            tenant: event
                .tenant
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default(),
            outcome: event.outcome.as_str(),
            why: event
                .details
                .get(km_core::audit::ERROR_DETAIL)
                .or_else(|| event.details.get("reason"))
                .cloned()
                .unwrap_or_default(),
            outcome_class: match event.outcome {
                Outcome::Success => "badge-success",
                Outcome::Denied => "badge-danger",
                Outcome::Failed => "badge-warning",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "pages/audit.html")]
struct AuditPage {
    layout: Layout,
    scope_label: String,
    events: Vec<EventRow>,
    query: String,
    outcome_filter: String,
    outcomes: [&'static str; 3],
    older: Option<String>,
    newer: bool,
    can_read_platform: bool,
    platform_scope: bool,
}

fn parse_outcome(text: &str) -> Option<Outcome> {
    [Outcome::Success, Outcome::Denied, Outcome::Failed]
        .into_iter()
        .find(|outcome| outcome.as_str() == text)
}

#[handler]
pub(crate) async fn show_audit(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let rid = http::request_id(req);
    let query = viewer::query_param(req, "q").unwrap_or_default();
    let outcome_filter = viewer::query_param(req, "outcome")
        .filter(|text| parse_outcome(text).is_some())
        .unwrap_or_default();
    let cursor = viewer::query_param(req, "before").filter(|c| !c.is_empty());
    let filter = AuditFilter {
        outcome: parse_outcome(&outcome_filter),
        ..AuditFilter::default()
    };
    let page = PageRequest {
        cursor: cursor.clone(),
        limit: Some(PAGE_SIZE),
    };
    // Platform readers may ask for the whole log (sign-ins, settings, ...); everybody else sees
    // the current partition's events.
    let can_read_platform = viewer.may(Action::ReadPlatformAudit, None);
    let platform_scope = viewer::query_param(req, "scope").as_deref() == Some("all")
        || (viewer.tenant().is_none() && can_read_platform);
    let (result, scope_label) = match viewer.tenant() {
        _ if platform_scope => (
            console
                .app
                .list_audit_events(&viewer.caller, &rid, filter, &page)
                .await,
            "Every event of this keymanager.".to_owned(),
        ),
        Some(tenant) => (
            console
                .app
                .list_tenant_audit_events(&viewer.caller, &rid, tenant, filter, &page)
                .await,
            format!(
                "Events about {}.",
                viewer
                    .current
                    .as_ref()
                    .map_or("", |p| p.display_name.as_str())
            ),
        ),
        None => return errors::forbidden(&viewer, req),
    };
    let page = match result {
        Ok(page) => page,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let needle = query.trim().to_lowercase();
    let events = page
        .items
        .iter()
        .map(EventRow::from_event)
        .filter(|row| {
            needle.is_empty()
                || row.actor.to_lowercase().contains(&needle)
                || row.action.to_lowercase().contains(&needle)
                || row.target.to_lowercase().contains(&needle)
        })
        .collect();
    let layout = viewer.layout(
        PageMeta::new("audit", "Audit log", "Audit log")
            .subtitle("Every change and every refused request, as recorded on the HSM."),
        req,
    );
    http::html(
        StatusCode::OK,
        &AuditPage {
            layout,
            scope_label,
            events,
            query,
            outcome_filter,
            outcomes: ["success", "denied", "failed"],
            older: page.next_cursor,
            newer: cursor.is_some(),
            can_read_platform,
            platform_scope,
        },
    )
}
