//! The HTTP surface of the control plane: liveness and readiness probes here, the REST API
//! (km-api, under `/api`) and the console (km-web, at `/`) mounted from their crates. Both
//! interfaces get the same [`App`], so they share one authentication, authorization and audit
//! path (DESIGN §1 principle 4).

use std::sync::Arc;

use km_core::app::App;
use km_core::{Readiness, ReadinessReport};
use km_web::ConsoleConfig;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use serde_json::json;

/// Everything the probe handlers share.
#[derive(Clone, Debug)]
struct ProbeState {
    /// Probes the management partition.
    readiness: Arc<Readiness>,
}

/// The route table of a replica: `/healthz`, `/readyz`, the REST API under `/api` (operations at
/// `/api/v1`, Swagger UI at `/api/docs`) and the console at `/` (with `/static`).
pub fn routes(app: App, readiness: Readiness, console: ConsoleConfig) -> impl poem::Endpoint {
    let probes = ProbeState {
        readiness: Arc::new(readiness),
    };
    Route::new()
        .at("/healthz", get(healthz).data(probes.clone()))
        .at("/readyz", get(readyz).data(probes))
        .nest_no_strip("/api", km_api::routes(app.clone()))
        .nest("/", km_web::routes(app, console))
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
async fn readyz(state: Data<&ProbeState>) -> Response {
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
