//! The HTTP surface of the control plane. Today: liveness and readiness probes; the REST API and
//! the console are mounted here as they arrive.

use std::sync::Arc;

use km_core::{Readiness, ReadinessReport};
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use serde_json::json;

/// Everything the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Probes the management partition.
    pub readiness: Arc<Readiness>,
}

/// Builds the route table.
pub fn routes(state: AppState) -> impl poem::Endpoint {
    Route::new().at("/healthz", get(healthz)).at("/readyz", get(readyz)).data(state)
}

/// Liveness: the process is up and serving. Never touches a dependency, so a slow HSM cannot get
/// healthy replicas restarted.
#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the management partition answers. 503 (problem+json) otherwise, so load balancers
/// stop routing to this replica until its HSM is back.
#[handler]
async fn readyz(state: Data<&AppState>) -> Response {
    match state.readiness.check().await {
        ReadinessReport::Ready { management } => Json(json!({
            "status": "ready",
            "management": { "version": management.version, "licenses": management.licenses },
        }))
        .into_response(),
        ReadinessReport::NotReady { reason } => {
            tracing::warn!(error = %reason, "readiness probe failed");
            let body = json!({
                "type": "about:blank",
                "title": "Not ready",
                "status": 503,
                "code": "management_partition_unavailable",
                "detail": "The management HSM partition does not answer; see the server log for the cause.",
            });
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .content_type("application/problem+json")
                .body(body.to_string())
        }
    }
}
