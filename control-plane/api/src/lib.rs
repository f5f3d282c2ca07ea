//! km-api — keymanager's REST API under `/api/v1` (DESIGN §6).
//!
//! Owns: the poem-openapi operations, their JSON shapes, the OpenAPI document
//! (`/api/v1/openapi.json`, committed as `control-plane/api/openapi.json` with a drift check),
//! Swagger UI (`/api/docs`), per-request authentication (bearer `km_…` API token or the
//! `km_session` cookie with an `X-CSRF-Token` on state-changing requests), and the one mapping
//! from the app layer's errors to HTTP (`application/problem+json` with a stable `code`).
//!
//! Every operation is a thin translation: it authenticates, calls exactly one use case of
//! [`km_core::App`] — the same one the console calls — and converts the answer. Authorization and
//! audit happen there, never here.
//!
//! Must not depend on: the TSB SDK, adapters, or the console. Only the `keymanager` binary wires
//! it (with [`routes`]).

// Errors are returned once per request and carry a full problem body; boxing them would only add
// noise to every operation.
#![allow(clippy::result_large_err)]

mod context;
mod models;
mod ops;
mod problem;

use km_core::App;
use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use context::{CSRF_HEADER, MAX_BODY_BYTES, REQUEST_ID_HEADER, SESSION_COOKIE};
pub use problem::{PROBLEM_JSON, Problem, status_of};

/// Where the API lives.
pub const API_PREFIX: &str = "/api/v1";
/// The document's version (the API's, not the binary's).
pub const API_VERSION: &str = "1.0.0";

type Apis = (
    ops::auth::AuthApi,
    ops::account::AccountApi,
    ops::users::UsersApi,
    ops::platform::PlatformApi,
    ops::platform::SettingsApi,
    ops::audit::AuditApi,
    ops::partitions::PartitionsApi,
    ops::sso::SsoApi,
    ops::keys::KeysApi,
    ops::notifications::NotificationsApi,
    ops::key_attestation::KeyAttestationApi,
    ops::key_policy::KeyPolicyApi,
    ops::dashboard::DashboardApi,
);

fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            ops::auth::AuthApi,
            ops::account::AccountApi,
            ops::users::UsersApi,
            ops::platform::PlatformApi,
            ops::platform::SettingsApi,
            ops::audit::AuditApi,
            ops::partitions::PartitionsApi,
            ops::sso::SsoApi,
            ops::keys::KeysApi,
            ops::notifications::NotificationsApi,
            ops::key_attestation::KeyAttestationApi,
            ops::key_policy::KeyPolicyApi,
            ops::dashboard::DashboardApi,
        ),
        "keymanager",
        API_VERSION,
    )
    .description(
        "Multi-tenant control plane for HSM keys. Authenticate with `Authorization: Bearer km_…` \
         (API token) or the `km_session` cookie from `POST /auth/login` (then send `X-CSRF-Token` \
         with every state-changing request). Errors are `application/problem+json` with a stable \
         `code`; every response carries `X-Request-Id`.",
    )
    .server(API_PREFIX)
}

/// The REST API: everything under `/api` — the operations under `/api/v1`, the document at
/// `/api/v1/openapi.json` and Swagger UI at `/api/docs`. Paths are absolute, so mount it without
/// stripping the prefix, e.g. `Route::new().nest_no_strip("/api", km_api::routes(app))`.
pub fn routes(app: App) -> impl poem::Endpoint {
    let service = service();
    let spec = service.spec_endpoint();
    let docs = service.swagger_ui();
    Route::new()
        .at("/api/v1/openapi.json", spec)
        .nest("/api/docs", docs)
        .nest(API_PREFIX, service)
        .data(app)
        .with(poem::middleware::CatchPanic::new())
        .around(context::guard)
}

/// The OpenAPI document as served at `/api/v1/openapi.json` (for the committed copy and its drift
/// check).
pub fn openapi_json() -> String {
    service().spec()
}
