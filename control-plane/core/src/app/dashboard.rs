//! The tenant dashboard (issue #5 item 9): a partition at a glance — its registration (name,
//! colour, status), what its TSB reports (version, licence flags, keystore statistics) and its
//! keys from the inventory cache (counts by state and algorithm, expiries and destructions within
//! [`DASHBOARD_HORIZON_SECS`]) — and the short form of the latter that the console's alerts use.
//!
//! A dashboard is most wanted when something is wrong, so a partition whose HSM does not answer
//! still gets one: each part that could not be read carries the error (with its stable code and
//! a message saying what to check) in place of its data, and the rest is shown. Only the checks
//! that decide whether the caller may see the partition at all fail the whole request.

use std::time::Duration;

use km_domain::{Action, TenantId};

use super::{App, AppError, Gate, RequestId};
use crate::identity::Caller;
use crate::keys::{InventoryOverview, RequestProgress, UpcomingEvent};
use crate::partitions::{ConnectionReport, PartitionRecord};

/// How far ahead the dashboard and the console's alerts look for expiries and destructions:
/// 30 days, long enough to rotate or re-key before a crypto-period ends.
pub const DASHBOARD_HORIZON_SECS: u64 = 30 * 24 * 60 * 60;

/// Longest the console's alerts wait for a tenant's inventory that is not built yet. A page must
/// not hang on a slow partition for a banner; the build goes on in the background and the next
/// page shows the alert.
const ALERT_WAIT: Duration = Duration::from_secs(1);

/// One tenant's dashboard. The HSM and inventory parts are `Err` with the reason when they could
/// not be read (HSM unreachable, credentials refused, partition suspended), so the caller still
/// sees everything else.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The partition's registration (name, colour, status).
    pub partition: PartitionRecord,
    /// TSB version, licence flags and keystore statistics, asked just now (as
    /// [`App::partition_status`] does, with the caller's own credentials if they keep some).
    pub hsm: Result<ConnectionReport, AppError>,
    /// The keys at a glance, from the inventory cache, with the events due within
    /// [`Dashboard::horizon_secs`] of [`Dashboard::generated_at`] (and overdue ones).
    pub overview: Result<InventoryOverview, AppError>,
    /// Changes of the partition's keys waiting for approvals in the HSM, oldest first, with
    /// their progress.
    pub pending_requests: Result<Vec<RequestProgress>, AppError>,
    /// The look-ahead of `overview.upcoming` ([`DASHBOARD_HORIZON_SECS`]).
    pub horizon_secs: u64,
    /// When the dashboard was put together (Unix seconds); events before it are overdue.
    pub generated_at: u64,
}

impl App {
    /// The tenant's dashboard (`read_dashboard`; readonly members may read it, another tenant's
    /// is "not found"). The TSB is asked while the inventory is read from the cache; when either
    /// fails, the dashboard still answers with the other (see [`Dashboard`]).
    pub async fn dashboard(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<Dashboard, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadDashboard)
            .await?;
        let partition = self.inner.partitions.get(tenant).await?.value.clone();
        let generated_at = self.inner.clock.now();
        let (hsm, overview, pending_requests) = tokio::join!(
            self.partition_status(caller, rid, tenant),
            self.inner.keys.overview(tenant, DASHBOARD_HORIZON_SECS),
            self.pending_key_requests(caller, rid, tenant),
        );
        if let Err(error) = &pending_requests {
            tracing::info!(request_id = %rid, tenant = %tenant, code = error.reason(),
                %error, "dashboard without the pending approval requests");
        }
        if let Err(error) = &hsm {
            tracing::info!(request_id = %rid, tenant = %tenant, code = error.reason(),
                %error, "dashboard without the partition's TSB status");
        }
        let overview = overview.map_err(AppError::from);
        if let Err(error) = &overview {
            tracing::info!(request_id = %rid, tenant = %tenant, code = error.reason(),
                %error, "dashboard without the key inventory");
        }
        Ok(Dashboard {
            partition,
            hsm,
            overview,
            pending_requests,
            horizon_secs: DASHBOARD_HORIZON_SECS,
            generated_at,
        })
    }

    /// The tenant's keys with an expiry or a destruction within [`DASHBOARD_HORIZON_SECS`] (or
    /// overdue), soonest first, for the console's alerts (`read_dashboard`). From the inventory
    /// cache; `Ok(None)` when the inventory is not built within a second (it is built in the
    /// background meanwhile), so a slow partition never holds up the page showing the alert.
    pub async fn upcoming_key_events(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<Option<Vec<UpcomingEvent>>, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadDashboard)
            .await?;
        let app = self.clone();
        let owned = tenant.clone();
        let overview = tokio::spawn(async move {
            app.inner
                .keys
                .overview(&owned, DASHBOARD_HORIZON_SECS)
                .await
        });
        match tokio::time::timeout(ALERT_WAIT, overview).await {
            Ok(Ok(overview)) => Ok(Some(overview?.upcoming)),
            Ok(Err(join)) => Err(AppError::internal("inventory overview task failed", &join)),
            Err(_) => Ok(None),
        }
    }
}
