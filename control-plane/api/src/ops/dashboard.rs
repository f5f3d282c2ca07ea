//! The tenant dashboard (`/tenants/{tenant}/dashboard`): the partition, what its TSB reports,
//! its keys by state and algorithm, and the expiries and destructions of the next 30 days. A
//! part that cannot be read (the HSM does not answer, the partition is suspended) comes back as
//! `*_error` with a stable code beside the parts that could.

use super::key_policy::RequestProgressBody;
use km_core::{App, AppError, Dashboard, InventoryOverview, UpcomingEvent, UpcomingKind};
use km_domain::KeyState;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::keys::KeyStateName;
use super::partitions::{ConnectionReportBody, PartitionSummary};
use super::{ApiTags, fail, tenant};
use crate::context::{authenticate, request_id};
use crate::problem::ApiError;

/// The dashboard operation.
pub(crate) struct DashboardApi;

/// Why a part of the dashboard is missing.
#[derive(Debug, Clone, Object)]
pub struct SectionError {
    /// Stable code, as in problem+json (`partition_connection_failed`, `conflict`, ...).
    pub code: String,
    /// The more specific stable code (e.g. `partition_suspended`), when there is one.
    pub reason: Option<String>,
    /// What happened and what to check, for humans.
    pub message: String,
}

impl From<&AppError> for SectionError {
    fn from(error: &AppError) -> Self {
        Self {
            code: error.code().to_owned(),
            reason: Some(error.reason())
                .filter(|reason| *reason != error.code())
                .map(str::to_owned),
            message: error.to_string(),
        }
    }
}

/// How many keys are in one lifecycle state.
#[derive(Debug, Clone, Object)]
pub struct StateCount {
    /// The state.
    pub state: KeyStateName,
    /// Keys in it.
    pub count: u64,
}

/// How many keys use one algorithm.
#[derive(Debug, Clone, Object)]
pub struct AlgorithmCount {
    /// TSB algorithm name (`EC`, `RSA`, `ML-DSA-65`, ...).
    pub algorithm: String,
    /// Keys using it.
    pub count: u64,
}

/// What is coming up for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum UpcomingKindName {
    /// The key's crypto-period ends (the scheduler deactivates it).
    Expiry,
    /// The key's material is deleted (its destruction is scheduled).
    Destruction,
}

impl From<UpcomingKind> for UpcomingKindName {
    fn from(kind: UpcomingKind) -> Self {
        match kind {
            UpcomingKind::Expiry => Self::Expiry,
            UpcomingKind::Destruction => Self::Destruction,
        }
    }
}

/// A key's expiry or destruction within the horizon.
#[derive(Debug, Clone, Object)]
pub struct UpcomingBody {
    /// The key's label (alias).
    pub label: String,
    /// What happens.
    pub kind: UpcomingKindName,
    /// When (unix seconds).
    pub at: u64,
    /// Whether that time has passed already (the scheduler has not got to it yet).
    pub overdue: bool,
    /// The key's state now.
    pub state: KeyStateName,
    /// Who is responsible for the key, if recorded.
    pub owner: Option<String>,
}

impl UpcomingBody {
    fn of(event: &UpcomingEvent, now: u64) -> Self {
        Self {
            label: event.label.clone(),
            kind: event.kind.into(),
            at: event.at,
            overdue: event.at <= now,
            state: event.state.into(),
            owner: event.owner.clone(),
        }
    }
}

/// The partition's keys at a glance, from keymanager's inventory cache.
#[derive(Debug, Clone, Object)]
pub struct OverviewBody {
    /// Keys (managed aliases plus keys keymanager does not manage).
    pub total: u64,
    /// Keys keymanager manages.
    pub managed: u64,
    /// Keys per lifecycle state, every state in lifecycle order (zero included).
    pub by_state: Vec<StateCount>,
    /// Keys per algorithm, most used first.
    pub by_algorithm: Vec<AlgorithmCount>,
    /// Expiries and destructions up to `horizon_secs` from `generated_at`, and overdue ones,
    /// soonest first.
    pub upcoming: Vec<UpcomingBody>,
}

impl OverviewBody {
    fn of(overview: &InventoryOverview, now: u64) -> Self {
        let mut by_algorithm: Vec<AlgorithmCount> = overview
            .by_algorithm
            .iter()
            .map(|(algorithm, count)| AlgorithmCount {
                algorithm: algorithm.clone(),
                count: *count,
            })
            .collect();
        by_algorithm.sort_by(|a, b| b.count.cmp(&a.count).then(a.algorithm.cmp(&b.algorithm)));
        Self {
            total: overview.total,
            managed: overview.managed,
            by_state: KeyState::ALL
                .into_iter()
                .map(|state| StateCount {
                    state: state.into(),
                    count: overview.by_state.get(&state).copied().unwrap_or(0),
                })
                .collect(),
            by_algorithm,
            upcoming: overview
                .upcoming
                .iter()
                .map(|event| UpcomingBody::of(event, now))
                .collect(),
        }
    }
}

/// A tenant's dashboard.
#[derive(Debug, Clone, Object)]
pub struct DashboardBody {
    /// The partition.
    pub partition: PartitionSummary,
    /// TSB version, licence flags and keystore statistics, asked just now (absent when the TSB
    /// could not be asked: see `hsm_error`).
    pub hsm: Option<ConnectionReportBody>,
    /// Why `hsm` is absent.
    pub hsm_error: Option<SectionError>,
    /// The keys (absent when the inventory could not be read: see `overview_error`).
    pub overview: Option<OverviewBody>,
    /// Why `overview` is absent.
    pub overview_error: Option<SectionError>,
    /// Changes of the partition's keys waiting for approvals in the HSM, oldest first (absent
    /// when they could not be read: see `pending_requests_error`).
    pub pending_requests: Option<Vec<RequestProgressBody>>,
    /// Why `pending_requests` is absent.
    pub pending_requests_error: Option<SectionError>,
    /// How far ahead `overview.upcoming` looks (seconds; 30 days).
    pub horizon_secs: u64,
    /// When the dashboard was put together (unix seconds).
    pub generated_at: u64,
}

impl From<Dashboard> for DashboardBody {
    fn from(dashboard: Dashboard) -> Self {
        let now = dashboard.generated_at;
        Self {
            partition: PartitionSummary::from(&dashboard.partition),
            hsm_error: dashboard.hsm.as_ref().err().map(SectionError::from),
            hsm: dashboard.hsm.ok().map(ConnectionReportBody::from),
            overview_error: dashboard.overview.as_ref().err().map(SectionError::from),
            overview: dashboard
                .overview
                .as_ref()
                .ok()
                .map(|overview| OverviewBody::of(overview, now)),
            pending_requests_error: dashboard
                .pending_requests
                .as_ref()
                .err()
                .map(SectionError::from),
            pending_requests: dashboard
                .pending_requests
                .ok()
                .map(|requests| requests.into_iter().map(Into::into).collect()),
            horizon_secs: dashboard.horizon_secs,
            generated_at: now,
        }
    }
}

#[derive(Debug, ApiResponse)]
enum DashboardResponse {
    /// The dashboard.
    #[oai(status = 200)]
    Ok(Json<DashboardBody>),
}

#[OpenApi(tag = "ApiTags::Dashboard")]
impl DashboardApi {
    /// The partition at a glance, for readonly members too: its TSB's version, licence flags
    /// and keystore statistics; its keys by state and algorithm; the expiries and scheduled
    /// destructions of the next 30 days (and overdue ones). Answers even when the partition's
    /// HSM does not: the missing part is replaced by its error.
    #[oai(
        path = "/tenants/:tenant/dashboard",
        method = "get",
        operation_id = "get_dashboard"
    )]
    async fn dashboard(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<DashboardResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let dashboard = app
            .dashboard(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(DashboardResponse::Ok(Json(dashboard.into())))
    }
}
