//! The current partition's dashboard (`/dashboard`): its registration and what its TSB reports,
//! its keys by state and algorithm, and the expiries and destructions of the next 30 days — and
//! the alert other pages show when such events are near ([`expiry_alert`],
//! partials/expiry_alert.html). Both read through `App` use cases (`read_dashboard`, which
//! readonly members hold too).

use km_core::keys::RequestProgress;
use std::sync::Arc;

use askama::Template;
use km_core::{DASHBOARD_HORIZON_SECS, InventoryOverview, RequestId, UpcomingEvent, UpcomingKind};
use km_domain::{Action, KeyState};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::fmt;
use crate::http;
use crate::pages::errors;
use crate::pages::keys::encode;
use crate::partitions::ConnectionView;
use crate::viewer::{self, Console, Layout, Need, PageMeta, PartitionView, Viewer};

/// The sidebar icon of the dashboard: four bars of a chart.
pub(crate) const ICON: &str = concat!(
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"18\" height=\"18\" viewBox=\"0 0 24 24\" ",
    "fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" stroke-linecap=\"round\" ",
    "stroke-linejoin=\"round\" aria-hidden=\"true\" focusable=\"false\">",
    "<path d=\"M3 21h18\"/><path d=\"M6 17v-5\"/><path d=\"M10.5 17V7\"/><path d=\"M15 17v-8\"/>",
    "<path d=\"M19.5 17V4\"/></svg>"
);

const DAY: u64 = 24 * 60 * 60;

/// The horizon in days, for the page's words.
const HORIZON_DAYS: u64 = DASHBOARD_HORIZON_SECS / DAY;

/// `in 5 days`, `in 3 h`, `overdue by 2 days`: how far `at` is from `now`.
fn relative(at: u64, now: u64) -> String {
    fn span(secs: u64) -> String {
        match secs {
            s if s >= 2 * DAY => format!("{} days", s / DAY),
            s if s >= DAY => "1 day".to_owned(),
            s if s >= 3_600 => format!("{} h", s / 3_600),
            s => format!("{} min", (s / 60).max(1)),
        }
    }
    if at > now {
        format!("in {}", span(at - now))
    } else {
        format!("overdue by {}", span(now - at))
    }
}

/// `1 key`, `3 keys`.
fn key_count(count: usize) -> String {
    if count == 1 {
        "1 key".to_owned()
    } else {
        format!("{count} keys")
    }
}

/// A bar drawn as SVG (a `width` attribute, so the strict CSP needs no inline style), `count`
/// of `max` long.
fn bar(count: u64, max: u64) -> String {
    let width = count
        .saturating_mul(100)
        .checked_div(max)
        .map_or(0, |width| width.max(u64::from(count > 0)));
    format!(
        "<svg class=\"dash-bar\" viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\" aria-hidden=\"true\" focusable=\"false\"><rect class=\"dash-bar-track\" width=\"100\" height=\"8\" rx=\"2\"/><rect class=\"dash-bar-fill\" width=\"{width}\" height=\"8\" rx=\"2\"/></svg>"
    )
}

// ----- the alert other pages show -----

/// What the alert banner says: how many keys of the current partition expire or are destroyed
/// within the dashboard's horizon, and how many of those are overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpiryAlert {
    /// Keys whose crypto-period ends.
    pub expiring: usize,
    /// Keys whose destruction is due.
    pub destroyed: usize,
    /// Of those, events whose time has passed (the scheduler has not got to them yet).
    pub overdue: usize,
}

impl ExpiryAlert {
    /// The alert for `events` at `now`; `None` when nothing is coming up.
    fn of(events: &[UpcomingEvent], now: u64) -> Option<Self> {
        let count = |kind| events.iter().filter(|e| e.kind == kind).count();
        let alert = Self {
            expiring: count(UpcomingKind::Expiry),
            destroyed: count(UpcomingKind::Destruction),
            overdue: events.iter().filter(|e| e.at <= now).count(),
        };
        (alert.expiring + alert.destroyed > 0).then_some(alert)
    }

    /// `3 keys expire or are destroyed within 30 days (1 overdue)`.
    pub fn message(&self) -> String {
        let total = self.expiring + self.destroyed;
        let what = match (self.expiring, self.destroyed) {
            (0, 1) => "1 key is destroyed".to_owned(),
            (0, n) => format!("{n} keys are destroyed"),
            (1, 0) => "1 key expires".to_owned(),
            (n, 0) => format!("{n} keys expire"),
            _ => format!("{} expire or are destroyed", key_count(total)),
        };
        let overdue = match self.overdue {
            0 => String::new(),
            n => format!(" ({n} overdue)"),
        };
        format!("{what} within {HORIZON_DAYS} days{overdue}")
    }
}

/// The alert for the viewer's current partition, when they may read its dashboard and keys
/// expire or are destroyed within the horizon. Never fails the page: an inventory that cannot
/// be read (or is still being built) shows no alert.
pub(crate) async fn expiry_alert(
    console: &Console,
    viewer: &Viewer,
    rid: &RequestId,
) -> Option<ExpiryAlert> {
    let tenant = viewer.tenant()?;
    if !viewer.may(Action::ReadDashboard, Some(tenant)) {
        return None;
    }
    match console
        .app
        .upcoming_key_events(&viewer.caller, rid, tenant)
        .await
    {
        Ok(Some(events)) => ExpiryAlert::of(&events, console.app.clock().now()),
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(%error, request_id = %rid, "key expiry alert unavailable");
            None
        }
    }
}

// ----- the dashboard page -----

/// One lifecycle state's line.
pub(crate) struct StateRow {
    state: KeyState,
    count: u64,
    bar: String,
    href: String,
}

/// One algorithm's line.
pub(crate) struct AlgorithmRow {
    algorithm: String,
    count: u64,
    bar: String,
    href: String,
}

/// One upcoming expiry or destruction.
pub(crate) struct UpcomingRow {
    label: String,
    href: String,
    kind: &'static str,
    kind_label: &'static str,
    date: String,
    relative: String,
    overdue: bool,
    state: KeyState,
    owner: String,
}

/// The keys part of the page.
pub(crate) struct InventoryView {
    total: u64,
    managed: u64,
    by_state: Vec<StateRow>,
    by_algorithm: Vec<AlgorithmRow>,
    upcoming: Vec<UpcomingRow>,
    overdue: usize,
}

impl InventoryView {
    fn of(overview: &InventoryOverview, now: u64) -> Self {
        let state_max = overview.by_state.values().copied().max().unwrap_or(0);
        let by_state = KeyState::ALL
            .into_iter()
            .map(|state| {
                let count = overview.by_state.get(&state).copied().unwrap_or(0);
                StateRow {
                    state,
                    count,
                    bar: bar(count, state_max),
                    href: format!("/keys?state={}", state.as_str()),
                }
            })
            .collect();
        let mut algorithms: Vec<(&String, u64)> = overview
            .by_algorithm
            .iter()
            .map(|(algorithm, count)| (algorithm, *count))
            .collect();
        algorithms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let algorithm_max = algorithms.first().map_or(0, |(_, count)| *count);
        let by_algorithm = algorithms
            .into_iter()
            .map(|(algorithm, count)| AlgorithmRow {
                algorithm: algorithm.clone(),
                count,
                bar: bar(count, algorithm_max),
                href: format!("/keys?algorithm={}", encode(algorithm)),
            })
            .collect();
        let upcoming: Vec<UpcomingRow> = overview
            .upcoming
            .iter()
            .map(|event| UpcomingRow {
                label: event.label.clone(),
                href: format!("/keys/{}", encode(&event.label)),
                kind: event.kind.as_str(),
                kind_label: match event.kind {
                    UpcomingKind::Expiry => "Expiry",
                    UpcomingKind::Destruction => "Destruction",
                },
                date: fmt::datetime(event.at),
                relative: relative(event.at, now),
                overdue: event.at <= now,
                state: event.state,
                owner: event.owner.clone().unwrap_or_default(),
            })
            .collect();
        Self {
            total: overview.total,
            managed: overview.managed,
            overdue: upcoming.iter().filter(|row| row.overdue).count(),
            by_state,
            by_algorithm,
            upcoming,
        }
    }
}

#[derive(Template)]
#[template(path = "pages/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    partition: PartitionView,
    /// What the TSB reported (`None` with `hsm_error`).
    report: Option<ConnectionView>,
    hsm_error: Option<String>,
    inventory: Option<InventoryView>,
    inventory_error: Option<String>,
    horizon_days: u64,
    generated_at: String,
    can_read_partition: bool,
    requests: Vec<RequestRow>,
    requests_error: Option<String>,
}

/// A key change waiting for approvals, as the dashboard lists it.
struct RequestRow {
    key: String,
    href: String,
    request_id: String,
    change: String,
    requested_by: String,
    requested_at: String,
    progress: String,
}

impl RequestRow {
    fn of(progress: &RequestProgress) -> Self {
        let request = &progress.request;
        Self {
            key: progress.key.clone(),
            href: format!("{}/policy", super::keys::key_href(&progress.key)),
            request_id: request.request_id.clone(),
            change: request.change.name().replace(['-', '_'], " "),
            requested_by: request.requested_by.clone(),
            requested_at: fmt::datetime(request.requested_at),
            progress: match progress.approvals_needed {
                Some(needed) => format!("{} of {needed}", progress.approvals_collected),
                None => progress.approvals_collected.to_string(),
            },
        }
    }
}

/// `GET /dashboard`: the current partition at a glance.
#[handler]
pub(crate) async fn show_dashboard(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match super::keys::current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let rid = http::request_id(req);
    let dashboard = match console.app.dashboard(&viewer.caller, &rid, &tenant).await {
        Ok(dashboard) => dashboard,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let now = dashboard.generated_at;
    let partition = PartitionView::new(&dashboard.partition, viewer.principal());
    let layout = viewer.layout(
        PageMeta::new("dashboard", "Partition", "Dashboard").subtitle(format!(
            "{} at a glance: its HSM, its keys, what falls due within {HORIZON_DAYS} days.",
            partition.name
        )),
        req,
    );
    http::html(
        StatusCode::OK,
        &DashboardPage {
            can_read_partition: viewer.may(Action::ReadPartition, Some(&tenant)),
            layout,
            partition,
            report: dashboard.hsm.as_ref().ok().map(ConnectionView::from),
            hsm_error: dashboard.hsm.as_ref().err().map(ToString::to_string),
            inventory: dashboard
                .overview
                .as_ref()
                .ok()
                .map(|overview| InventoryView::of(overview, now)),
            inventory_error: dashboard.overview.as_ref().err().map(ToString::to_string),
            horizon_days: dashboard.horizon_secs / DAY,
            generated_at: fmt::datetime(now),
            requests: dashboard
                .pending_requests
                .as_ref()
                .map(|requests| requests.iter().map(RequestRow::of).collect())
                .unwrap_or_default(),
            requests_error: dashboard
                .pending_requests
                .as_ref()
                .err()
                .map(ToString::to_string),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(label: &str, kind: UpcomingKind, at: u64) -> UpcomingEvent {
        UpcomingEvent {
            label: label.to_owned(),
            kind,
            at,
            state: KeyState::Active,
            owner: None,
        }
    }

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(1_000 + 5 * DAY + 7, 1_000), "in 5 days");
        assert_eq!(relative(1_000 + DAY + 60, 1_000), "in 1 day");
        assert_eq!(relative(1_000 + 3 * 3_600 + 5, 1_000), "in 3 h");
        assert_eq!(relative(1_000 + 10, 1_000), "in 1 min");
        assert_eq!(relative(1_000, 1_000 + 2 * DAY), "overdue by 2 days");
        assert_eq!(relative(1_000, 1_000), "overdue by 1 min");
    }

    #[test]
    fn the_alert_counts_kinds_and_overdue_events() {
        let now = 10 * DAY;
        assert_eq!(ExpiryAlert::of(&[], now), None);
        let one = ExpiryAlert::of(&[event("a", UpcomingKind::Expiry, now + DAY)], now);
        assert_eq!(
            one.map(|alert| alert.message()).as_deref(),
            Some("1 key expires within 30 days")
        );
        let destroyed = ExpiryAlert::of(
            &[
                event("a", UpcomingKind::Destruction, now + DAY),
                event("b", UpcomingKind::Destruction, now - DAY),
            ],
            now,
        );
        assert_eq!(
            destroyed.map(|alert| alert.message()).as_deref(),
            Some("2 keys are destroyed within 30 days (1 overdue)")
        );
        let mixed = ExpiryAlert::of(
            &[
                event("a", UpcomingKind::Expiry, now + DAY),
                event("b", UpcomingKind::Expiry, now + 2 * DAY),
                event("c", UpcomingKind::Destruction, now + 3 * DAY),
            ],
            now,
        );
        assert_eq!(
            mixed,
            Some(ExpiryAlert {
                expiring: 2,
                destroyed: 1,
                overdue: 0
            })
        );
        assert_eq!(
            mixed.map(|alert| alert.message()).as_deref(),
            Some("3 keys expire or are destroyed within 30 days")
        );
    }

    #[test]
    fn bars_scale_to_the_largest_count_and_never_vanish() {
        assert!(bar(5, 5).contains("dash-bar-fill\" width=\"100\""));
        assert!(bar(1, 1_000).contains("dash-bar-fill\" width=\"1\""));
        assert!(bar(0, 5).contains("dash-bar-fill\" width=\"0\""));
        assert!(bar(0, 0).contains("dash-bar-fill\" width=\"0\""));
    }
}
